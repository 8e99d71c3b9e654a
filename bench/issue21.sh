#!/usr/bin/env bash
# The storm-speed figures (issue 21), on a freshly created bench cluster each time: the SCADA
# check against its floor, the A/B against 0.2.0, the storm replay with its lag, the backlog drain,
# the correlator against the floor of its writes, and the correlated storm.
#   bench/issue21.sh [RUNS]      default 2; each run's report goes to /tmp/oms_bench_issue21_N.md
#   OMS_BENCH_PARTS="storm backlog" bench/issue21.sh 2    only those parts
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
port="${OMS_BENCH_PORT:-25433}"
for run in $(seq 1 "${1:-2}"); do
    out="/tmp/oms_bench_issue21_$run.md"
    scripts/cluster.sh destroy bench
    {
        echo "## Run $run, $(date -u '+%Y-%m-%d %H:%M') UTC, $(git rev-parse --short HEAD)"
        for part in ${OMS_BENCH_PARTS:-scada ab storm backlog capacity correlated}; do
            echo
            bench/run.sh --only "$part" --seconds 10 2>>"$out.log"
        done
    } >"$out"
    echo "[bench] run $run: $out"
done
