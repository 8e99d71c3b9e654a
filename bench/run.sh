#!/usr/bin/env bash
# The benchmark suite in one command: release build, a private cluster with synchronous_commit
# off (fsync on), the synthetic grid, then bench/run.py. The report goes to stdout.
#   bench/run.sh [--quick] [--seconds N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
port="${OMS_BENCH_PORT:-25433}"
export PATH="$HOME/.cargo/bin:$PATH"

scripts/bootstrap.sh >&2
echo "[bench] release build and install (first time: a few minutes)" >&2
scripts/install.sh --release
# The release the A/B part measures against, built in release mode too.
echo "[bench] the baseline release, ${OMS_BENCH_BASELINE:-0.2.0}, release build (first time: a few minutes)" >&2
scripts/previous_release.sh "${OMS_BENCH_BASELINE:-0.2.0}" --release >/dev/null
scripts/cluster.sh start bench "$port" >&2
grep -q "max_wal_size" /tmp/oms_correlation/bench/data/postgresql.auto.conf 2>/dev/null || {
    psql -X -q -h 127.0.0.1 -p "$port" -U postgres -c "ALTER SYSTEM SET max_wal_size = '8GB'" \
        -c "ALTER SYSTEM SET checkpoint_timeout = '15min'" -c "SELECT pg_reload_conf()" >/dev/null
}
echo "[bench] machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r), PostgreSQL $(psql -h 127.0.0.1 -p "$port" -U postgres -Atc 'SHOW server_version')" >&2
/usr/bin/python3 bench/run.py --port "$port" "$@"
