#!/usr/bin/env bash
# The pg_regress suite (tests/pg_regress): SQL-visible scenarios with expected output, run with
# PostgreSQL's own pg_regress against the private test cluster. `cargo pgrx regress` does the same
# but cannot start its cluster as root; this script works as root and as a normal user.
#
#   scripts/regress.sh            run the suite (expects the extension installed)
#   scripts/regress.sh --accept   after a run, take the actual output as the expected output
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here/tests/pg_regress"
port="${OMS_TEST_PORT:-25430}"
pg_regress=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress

if [ "${1:-}" = "--accept" ]; then
    for f in results/*.out; do cp "$f" expected/; done
    echo "[regress] accepted $(ls results/*.out | wc -l) outputs; review them with git diff"
    exit 0
fi

"$here/scripts/cluster.sh" start test "$port"
# The suite reads outages right after each ingest in the same session: each call correlates before
# it returns (the integration suite runs both modes).
psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "DROP DATABASE IF EXISTS oms_regress WITH (FORCE)" \
    -c "CREATE DATABASE oms_regress" -c "ALTER DATABASE oms_regress SET oms_correlation.correlate = 'immediate'"
tests=(setup)
for f in sql/*.sql; do
    name="$(basename "$f" .sql)"
    [ "$name" = setup ] || tests+=("$name")
done
mkdir -p results
"$pg_regress" --use-existing --host=127.0.0.1 --port="$port" --user=postgres --dbname=oms_regress \
    --bindir=/usr/lib/postgresql/15/bin --inputdir=. --outputdir=. "${tests[@]}"
