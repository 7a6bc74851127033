#!/usr/bin/env sh
# Installs reflecto for the current user (or under --prefix): the release binary, shell
# completions, man pages and the `reflecto-listen.service` systemd user unit (not enabled),
# then checks what it installed.
set -eu

prefix="${HOME}/.local"
unit_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; unit_dir="$2/lib/systemd/user"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; unit_dir="$prefix/lib/systemd/user"; shift ;;
    -h|--help) echo "usage: ./install.sh [--prefix DIR]   (default: ~/.local; the systemd user unit goes to ~/.config/systemd/user, or DIR/lib/systemd/user)"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

[ -n "$unit_dir" ] || unit_dir="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
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
# The listener's user unit, pointing at the binary just installed; installed, never enabled.
install -d "$unit_dir"
sed "s|@BIN@|$prefix/bin/reflecto|" "$here/dist/reflecto-listen.service" > "$unit_dir/reflecto-listen.service.tmp"
chmod 0644 "$unit_dir/reflecto-listen.service.tmp"
mv "$unit_dir/reflecto-listen.service.tmp" "$unit_dir/reflecto-listen.service"

# Verify: the installed binary runs and matches the build, and the docs are where we put them.
"$prefix/bin/reflecto" --version >/dev/null
cmp -s "$bin" "$prefix/bin/reflecto" || { echo "install.sh: installed binary differs from the build" >&2; exit 1; }
for f in "$prefix/share/man/man1/reflecto.1" "$prefix/share/bash-completion/completions/reflecto" \
         "$prefix/share/zsh/site-functions/_reflecto" "$prefix/share/fish/vendor_completions.d/reflecto.fish" \
         "$unit_dir/reflecto-listen.service"; do
  [ -s "$f" ] || { echo "install.sh: $f is missing" >&2; exit 1; }
done
echo "installed $("$prefix/bin/reflecto" --version) into $prefix"
grep -q "^ExecStart=$prefix/bin/reflecto listen\$" "$unit_dir/reflecto-listen.service" || { echo "install.sh: the unit does not run $prefix/bin/reflecto" >&2; exit 1; }
echo "installed the user unit $unit_dir/reflecto-listen.service (not enabled); after \`reflecto pair CODE\`:"
echo "  systemctl --user daemon-reload && systemctl --user enable --now reflecto-listen.service"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "note: add $prefix/bin to your PATH" ;; esac
