#!/usr/bin/env bash
# Installs what building and testing oms_correlation needs, and skips what is already there:
# Debian packages, cargo-pgrx at the version pinned in Cargo.toml, and `cargo pgrx init` against
# the system PostgreSQL 15. Safe to run again; it takes a second when nothing is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pg_config=/usr/lib/postgresql/15/bin/pg_config

log() { printf '[bootstrap] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

packages=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo python3-psycopg2 python3-pytest)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    log "Debian packages present"
fi

# The packaged cluster is not ours to run; tests and the demo start private clusters.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
    log "note: the system PostgreSQL cluster is running; ours use their own ports"
fi

export PATH="$HOME/.cargo/bin:$PATH"
pgrx_version="$(sed -n 's/^pgrx = "=\(.*\)"/\1/p' "$here/Cargo.toml")"
[ -n "$pgrx_version" ] || { echo "cannot read the pinned pgrx version from Cargo.toml" >&2; exit 1; }
if cargo pgrx --version 2>/dev/null | grep -qx "cargo-pgrx $pgrx_version"; then
    log "cargo-pgrx $pgrx_version present"
else
    log "installing cargo-pgrx $pgrx_version (about 7 minutes on 2 cores)"
    cargo install cargo-pgrx --version "$pgrx_version" --locked
fi

if grep -qs "^pg15 = \"$pg_config\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
    log "cargo pgrx is initialised for PostgreSQL 15"
else
    log "cargo pgrx init --pg15 $pg_config"
    cargo pgrx init --pg15 "$pg_config"
fi
