#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for the demo and the tests: its own data directory under
# $OMS_CLUSTER_ROOT (default /tmp/oms_correlation), a port on 127.0.0.1, run as user postgres
# (PostgreSQL refuses to run as root). Reused when it exists.
#
#   scripts/cluster.sh start NAME PORT    initdb if needed, then start
#   scripts/cluster.sh stop NAME          fast shutdown
#   scripts/cluster.sh destroy NAME       stop and remove the data directory
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
root="${OMS_CLUSTER_ROOT:-/tmp/oms_correlation}"

as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

cmd="${1:?usage: cluster.sh start|stop|destroy NAME [PORT]}"
name="${2:?cluster name}"
dir="$root/$name"

case "$cmd" in
start)
    port="${3:?port}"
    mkdir -p "$root"
    chmod 755 "$root"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir"
        chown postgres "$dir"
        as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --locale=C.UTF-8 -E UTF8 >"$dir/initdb.log"
        cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 100
# Each database with the extension has a correlator worker while it is busy (a test run has a few).
max_worker_processes = 32
shared_buffers = 256MB
fsync = on
log_min_messages = warning
CONF
    fi
    if as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        echo "[cluster] $name already running on port $port"
    else
        # Our ports (254xx) sit below Linux's ephemeral range (32768-60999), so no client socket
        # can take one (a pytest connection to the test cluster holding the crash cluster's port
        # stops it from starting). A port held by something else gets retries, then the log is shown.
        for attempt in 1 2 3 4 5; do
            if as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-p $port" start >/dev/null; then
                break
            fi
            if [ "$attempt" -eq 5 ]; then
                echo "[cluster] $name did not start; the end of $dir/server.log:" >&2
                tail -n 20 "$dir/server.log" >&2 || true
                exit 1
            fi
            echo "[cluster] $name did not start (attempt $attempt), retrying" >&2
            sleep 2
        done
        echo "[cluster] $name started on 127.0.0.1:$port (data: $dir/data, log: $dir/server.log)"
    fi
    ;;
stop)
    if [ -f "$dir/data/PG_VERSION" ]; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    fi
    ;;
destroy)
    if [ -f "$dir/data/PG_VERSION" ]; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
