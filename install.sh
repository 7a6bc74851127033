#!/usr/bin/env sh
# Installs reflecto for the current user (or under --prefix): the binary, shell completions, man
# pages and the `reflecto-listen.service` systemd user unit (not enabled), then checks what it
# installed. `--system` (as root) also installs the relay's hardened system unit
# `reflecto.service`, its `reflecto` user and a root-only /etc/reflecto/env for its settings.
#
# A `reflecto` of this source's version that is already installed (FILE given with --bin or
# REFLECTO_BIN, PREFIX/bin/reflecto, the one on PATH, or, under sudo, the invoking user's
# ~/.cargo/bin/reflecto from `cargo install`) is reused: nothing is built twice. Only when there
# is none (or with --build) does this run `cargo build --release`.
set -eu

usage="usage: ./install.sh [--prefix DIR] [--bin FILE] [--build]
       sudo ./install.sh --system [--prefix DIR] [--bin FILE] [--build]
       ./install.sh --system --root DIR [--prefix DIR] [--bin FILE] [--build]

  --prefix DIR  where the binary, man pages and completions go (default: ~/.local, or
                /usr/local with --system); the user unit goes to ~/.config/systemd/user, or
                DIR/lib/systemd/user when --prefix or --system is given
  --bin FILE    use this reflecto binary (also REFLECTO_BIN=FILE); it must be this version
  --build       build with cargo even when a reflecto of this version is installed
  --system      also install the relay's system unit /etc/systemd/system/reflecto.service and
                the 'reflecto' user (needs root); settings go in /etc/reflecto/env
  --root DIR    with --system: install under DIR as if it were / (staging, packaging); no
                user is created and nothing outside DIR is touched"

prefix=""
prefix_given=""
system=""
root=""
build=""
bin="${REFLECTO_BIN:-}"
need() { [ $# -ge 2 ] || { echo "install.sh: $1 needs a value (try --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) need "$@"; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --bin) need "$@"; bin="$2"; shift 2 ;;
    --bin=*) bin="${1#--bin=}"; shift ;;
    --root) need "$@"; root="$2"; shift 2 ;;
    --root=*) root="${1#--root=}"; shift ;;
    --system) system=1; shift ;;
    --build) build=1; shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

# Refuse before building or writing anything.
if [ -n "$root" ]; then
  [ -n "$system" ] || { echo "install.sh: --root stages a --system install; add --system" >&2; exit 2; }
  case "$root" in /*) ;; *) root="$(pwd)/$root" ;; esac
  root="${root%/}"
elif [ -n "$system" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: --system installs into /etc and ${prefix:-/usr/local} and creates the 'reflecto' user: run it as root (sudo ./install.sh --system), or stage it with --root DIR" >&2
  exit 2
fi
if [ -n "$system" ]; then
  prefix="${prefix:-/usr/local}"
  unit_dir="$root$prefix/lib/systemd/user"
elif [ -n "$prefix" ]; then
  prefix_given=1
  unit_dir="$prefix/lib/systemd/user"
else
  prefix="${HOME}/.local"
  unit_dir="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
fi
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
dest="$root$prefix"

here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/Cargo.toml" | head -n 1)"
want="reflecto $version"
is_this_version() { [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "$want" ]; }
absolute() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }

# Which binary: the one named, else one of this version already installed, else a build.
if [ -n "$bin" ]; then
  if ! is_this_version "$bin"; then
    found="$( ("$bin" --version 2>/dev/null || echo "not runnable") | head -n 1)"
    echo "install.sh: $bin is not $want (this source) but '$found'; pass the $want binary, or --build" >&2
    exit 2
  fi
  bin="$(absolute "$bin")"
  echo "using $bin ($want)"
else
  if [ -z "$build" ]; then
    on_path="$(command -v reflecto 2>/dev/null || true)"
    cargo_home=""
    [ -n "${SUDO_USER:-}" ] && cargo_home="$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin/reflecto"
    for candidate in "$dest/bin/reflecto" "$on_path" "$cargo_home"; do
      if [ -n "$candidate" ] && is_this_version "$candidate"; then
        bin="$(absolute "$candidate")"
        echo "reusing the installed $bin ($want): not building"
        break
      fi
    done
  fi
  if [ -z "$bin" ]; then
    command -v cargo >/dev/null || { echo "install.sh: no installed $want found (PATH, $dest/bin) and no cargo to build it; pass --bin FILE" >&2; exit 1; }
    cargo build --release --locked --manifest-path "$here/Cargo.toml"
    bin="$here/target/release/reflecto"
  fi
fi

# Where it runs from: a system service never runs out of a home directory (ProtectHome=), so
# --system puts it in PREFIX/bin, as does an explicit --prefix; the default user install keeps a
# binary that is already on PATH (e.g. ~/.cargo/bin) instead of a second copy in ~/.local/bin.
installed="$prefix/bin/reflecto"
if [ -z "$system" ] && [ -z "$prefix_given" ]; then
  case ":$PATH:" in *":$(dirname "$bin"):"*) installed="$bin" ;; esac
fi
install -d "$dest/share/man/man1" \
  "$dest/share/bash-completion/completions" "$dest/share/zsh/site-functions" \
  "$dest/share/fish/vendor_completions.d"
if [ "$installed" = "$prefix/bin/reflecto" ] && ! [ "$bin" -ef "$dest/bin/reflecto" ]; then
  install -d "$dest/bin"
  install -m 0755 "$bin" "$dest/bin/reflecto.tmp"
  mv "$dest/bin/reflecto.tmp" "$dest/bin/reflecto"
fi
install -m 0644 "$here"/man/*.1 "$dest/share/man/man1/"
install -m 0644 "$here/completions/reflecto.bash" "$dest/share/bash-completion/completions/reflecto"
install -m 0644 "$here/completions/_reflecto" "$dest/share/zsh/site-functions/_reflecto"
install -m 0644 "$here/completions/reflecto.fish" "$dest/share/fish/vendor_completions.d/reflecto.fish"

# A unit from dist/ with @BIN@ replaced, written whole or not at all.
place_unit() { # template target
  esc="$(printf '%s' "$installed" | sed 's/[\\&|]/\\&/g')"
  sed "s|@BIN@|$esc|" "$1" > "$2.tmp"
  chmod 0644 "$2.tmp"
  mv "$2.tmp" "$2"
}
# The listener's user unit, pointing at the binary installed; installed, never enabled.
install -d "$unit_dir"
place_unit "$here/dist/reflecto-listen.service" "$unit_dir/reflecto-listen.service"

if [ -n "$system" ]; then
  system_unit="$root/etc/systemd/system/reflecto.service"
  env_file="$root/etc/reflecto/env"
  install -d "$root/etc/systemd/system" "$root/etc/reflecto"
  place_unit "$here/dist/reflecto.service" "$system_unit"
  # Settings, the database URL among them, live here: read by systemd as root, never on a
  # command line. Kept if it exists, but always root-only.
  if ! [ -e "$env_file" ]; then
    ( umask 077; cat > "$env_file" <<'EOF'
# reflecto.service settings: REFLECTO_* variables, one per line (see `reflecto serve --help`).
# Read by systemd as root (keep this file mode 0600) and passed to the relay; never in `ps`.
# Quote values so `sh` can read this file too (`reflecto admin`, see README.md).
#REFLECTO_DATABASE_URL="postgres://reflecto:PASSWORD@db.internal/reflecto"
#REFLECTO_TRUST_PROXY="true"
#REFLECTO_VAPID_SUBJECT="mailto:you@example.org"
EOF
    )
  fi
  chmod 0600 "$env_file"
  if [ -z "$root" ]; then
    chown root:root "$env_file"
    if ! getent passwd reflecto >/dev/null; then
      useradd --system --user-group --home-dir /var/lib/reflecto --no-create-home \
        --shell /usr/sbin/nologin --comment "reflecto relay" reflecto
      echo "created the system user 'reflecto'"
    fi
  fi
fi

# Verify: the binary runs and is this version, what was copied matches, the docs are in place.
is_this_version "$root$installed" || { echo "install.sh: $root$installed is not $want" >&2; exit 1; }
if [ "$installed" = "$prefix/bin/reflecto" ]; then
  cmp -s "$bin" "$dest/bin/reflecto" || { echo "install.sh: installed binary differs from $bin" >&2; exit 1; }
fi
for f in "$dest/share/man/man1/reflecto.1" "$dest/share/bash-completion/completions/reflecto" \
         "$dest/share/zsh/site-functions/_reflecto" "$dest/share/fish/vendor_completions.d/reflecto.fish" \
         "$unit_dir/reflecto-listen.service" ${system:+"$system_unit"} ${system:+"$env_file"}; do
  [ -s "$f" ] || { echo "install.sh: $f is missing" >&2; exit 1; }
done
grep -qxF "ExecStart=$installed listen" "$unit_dir/reflecto-listen.service" || { echo "install.sh: the user unit does not run $installed" >&2; exit 1; }
if [ "$installed" = "$bin" ]; then
  echo "$want stays where it is installed: $bin"
else
  echo "installed $want into $dest"
fi
echo "installed the user unit $unit_dir/reflecto-listen.service (not enabled); after \`reflecto pair CODE\`:"
echo "  systemctl --user daemon-reload && systemctl --user enable --now reflecto-listen.service"
if [ -n "$system" ]; then
  grep -qxF "ExecStart=$installed serve" "$system_unit" || { echo "install.sh: the system unit does not run $installed" >&2; exit 1; }
  if [ -z "$root" ] && command -v systemd-analyze >/dev/null; then
    systemd-analyze verify --man=no "$system_unit" || { echo "install.sh: systemd-analyze verify rejects $system_unit" >&2; exit 1; }
  fi
  echo "installed the relay's system unit $system_unit (not enabled); settings such as"
  echo "REFLECTO_DATABASE_URL go in $env_file (root-only), then:"
  echo "  sudo systemctl daemon-reload && sudo systemctl enable --now reflecto.service"
  [ -z "$root" ] || echo "on the target system, create its user: useradd --system --user-group --home-dir /var/lib/reflecto --no-create-home --shell /usr/sbin/nologin reflecto"
fi
case ":$PATH:" in *":$(dirname "$installed"):"*) ;; *) echo "note: add $(dirname "$installed") to your PATH" ;; esac
