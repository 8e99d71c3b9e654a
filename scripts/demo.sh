#!/usr/bin/env bash
# The main job: build and install the extension, start a private PostgreSQL cluster, create a
# fresh demo database with the extension and the demo grid, replay every sample payload in
# ../shared/examples through the consumers' calls, and show what happened; then a small storm in
# which predicted outages appear, roll up and restore, with the notifications a dashboard receives.
#
# The cluster lives in /tmp/oms_correlation/demo on 127.0.0.1:${OMS_DEMO_PORT:-25429}; the next run
# reuses it and recreates the database. `scripts/cluster.sh destroy demo` removes it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
port="${OMS_DEMO_PORT:-25429}"
examples="${OMS_EXAMPLES_DIR:-$here/../shared/examples}"
export PATH="$HOME/.cargo/bin:$PATH"

scripts/bootstrap.sh
echo "[demo] building and installing the extension"
scripts/install.sh
scripts/cluster.sh start demo "$port"

psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS oms_demo WITH (FORCE)" -c "CREATE DATABASE oms_demo"
"${psql[@]}" -d oms_demo -c "CREATE EXTENSION oms_correlation"
"${psql[@]}" -d oms_demo -f demo/grid.sql
echo "[demo] database oms_demo: extension $("${psql[@]}" -d oms_demo -At -c "SELECT extversion FROM pg_extension WHERE extname = 'oms_correlation'") and the demo grid loaded"
echo

/usr/bin/python3 demo/replay.py --dsn "host=127.0.0.1 port=$port dbname=oms_demo user=postgres" --examples "$examples"
echo
/usr/bin/python3 demo/storm.py --dsn "host=127.0.0.1 port=$port dbname=oms_demo user=postgres"

echo
echo "[demo] explore: psql -h 127.0.0.1 -p $port -U postgres oms_demo"
