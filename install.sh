#!/usr/bin/env sh
# Installs reflecto for the current user (or under --prefix): the release binary, shell
# completions and man pages, then checks what it installed.
set -eu

prefix="${HOME}/.local"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    -h|--help) echo "usage: ./install.sh [--prefix DIR]   (default: ~/.local)"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

here="$(cd "$(dirname "$0")" && pwd)"
cargo build --release --locked --manifest-path "$here/Cargo.toml"
bin="$here/target/release/reflecto"

install -d "$prefix/bin" "$prefix/share/man/man1" \
  "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
  "$prefix/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$prefix/bin/reflecto"
install -m 0644 "$here"/man/*.1 "$prefix/share/man/man1/"
install -m 0644 "$here/completions/reflecto.bash" "$prefix/share/bash-completion/completions/reflecto"
install -m 0644 "$here/completions/_reflecto" "$prefix/share/zsh/site-functions/_reflecto"
install -m 0644 "$here/completions/reflecto.fish" "$prefix/share/fish/vendor_completions.d/reflecto.fish"

# Verify: the installed binary runs and matches the build, and the docs are where we put them.
"$prefix/bin/reflecto" --version >/dev/null
cmp -s "$bin" "$prefix/bin/reflecto" || { echo "install.sh: installed binary differs from the build" >&2; exit 1; }
for f in "$prefix/share/man/man1/reflecto.1" "$prefix/share/bash-completion/completions/reflecto" \
         "$prefix/share/zsh/site-functions/_reflecto" "$prefix/share/fish/vendor_completions.d/reflecto.fish"; do
  [ -s "$f" ] || { echo "install.sh: $f is missing" >&2; exit 1; }
done
echo "installed $("$prefix/bin/reflecto" --version) into $prefix"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "note: add $prefix/bin to your PATH" ;; esac
