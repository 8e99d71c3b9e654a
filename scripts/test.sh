#!/usr/bin/env bash
# The whole test suite, from a fresh machine: bootstrap, then the three layers.
#   1. unit tests and #[pg_test]s     cargo pgrx test (as root: --runas postgres)
#   2. pg_regress and isolation specs scripts/regress.sh, scripts/isolation.sh
#   3. integration through psycopg2   pytest tests/integration, against a private cluster, on a
#                                     fresh install with the correlator's worker (deferred, the
#                                     default) and again with each call correlating (immediate),
#                                     then on an adopted legacy database, then on a database
#                                     updated from the previous release
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export PATH="$HOME/.cargo/bin:$PATH"
pg_config=/usr/lib/postgresql/15/bin/pg_config

scripts/bootstrap.sh

echo "== 1/3 unit tests and #[pg_test]s =="
# `cargo pgrx test` installs its build over the library in place; unlinked first, a running server's
# worker that has it mapped keeps its copy (see scripts/install.sh).
rm -f "$("$pg_config" --pkglibdir)/oms_correlation.so"
if [ "$(id -u)" -eq 0 ]; then
    cargo pgrx test pg15 --runas postgres --pgdata /tmp/oms_correlation-pgrx
else
    cargo pgrx test pg15
fi

echo "== 2/3 pg_regress and isolation specs =="
# `cargo pgrx test` installed a build with the test schema; install the real one.
scripts/install.sh
scripts/regress.sh
scripts/isolation.sh

echo "== 3/3 integration (psycopg2, as the consumers call; the worker correlates: deferred) =="
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
echo "== 3/3 integration again, each ingest call correlating before it returns (OMS_TEST_CORRELATE=immediate) =="
OMS_TEST_CORRELATE=immediate /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
echo "== 3/3 integration again, on an adopted legacy database (OMS_TEST_BASE=legacy) =="
OMS_TEST_BASE=legacy /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
echo "== 3/3 integration again, on a database updated from the previous release (OMS_TEST_BASE=upgraded) =="
OMS_TEST_BASE=upgraded /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
