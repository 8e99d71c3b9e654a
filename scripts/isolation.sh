#!/usr/bin/env bash
# Isolation specs (tests/isolation): concurrent interleavings that matter, run by PostgreSQL's
# pg_isolation_regress against the private test cluster (expects the extension installed).
#   scripts/isolation.sh [--accept]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here/tests/isolation"
port="${OMS_TEST_PORT:-25430}"
runner=/usr/lib/postgresql/15/lib/pgxs/src/test/isolation/pg_isolation_regress

if [ "${1:-}" = "--accept" ]; then
    for f in output_iso/results/*.out; do cp "$f" expected/; done
    echo "[isolation] accepted $(ls output_iso/results/*.out | wc -l) outputs; review them with git diff"
    exit 0
fi

"$here/scripts/cluster.sh" start test "$port"
psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c "DROP DATABASE IF EXISTS oms_isolation WITH (FORCE)" -c "CREATE DATABASE oms_isolation"
specs=()
for f in specs/*.spec; do specs+=("$(basename "$f" .spec)"); done
"$runner" --use-existing --host=127.0.0.1 --port="$port" --user=postgres --dbname=oms_isolation \
    --inputdir=. --outputdir=output_iso "${specs[@]}"
