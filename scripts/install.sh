#!/usr/bin/env bash
# Builds and installs the extension into PostgreSQL 15's folders (cargo pgrx install), without
# harming a running server: the old library is unlinked first, so a correlator worker that has it
# mapped keeps its copy, where overwriting the file in place kills that worker (SIGBUS) and
# restarts its server.
#   scripts/install.sh [--release]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
pg_config=/usr/lib/postgresql/15/bin/pg_config
rm -f "$("$pg_config" --pkglibdir)/oms_correlation.so"
cd "$here"
cargo pgrx install --pg-config "$pg_config" "$@" >/dev/null
