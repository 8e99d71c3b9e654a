#!/usr/bin/env bash
# Removes every file of ours that an earlier build or test run left on this machine, so that the
# next build and test start as on a fresh machine (issue 20: a stale oms_correlation.so in the
# library folder once hid a missing install step from every test run):
#   - oms_correlation* in PostgreSQL's library folder and extension folder (this build's library,
#     previous releases' libraries and scripts, the control file);
#   - the private test clusters and their data (scripts/cluster.sh: test, crash, crashbatch, preload; the
#     `cargo pgrx test` cluster; previous releases' build sources).
# The demo and bench clusters are left alone: they are the user's, not the tests'.
#
# Removing from PostgreSQL's folders needs root (or sudo without a password). Without it this
# script stops with an error naming the files: it never skips a removal silently.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pg_config=/usr/lib/postgresql/15/bin/pg_config
libdir="$("$pg_config" --pkglibdir)"
extdir="$("$pg_config" --sharedir)/extension"

log() { printf '[uninstall] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        echo "[uninstall] removing $* needs root: run as root, or give this user password-less sudo" >&2
        exit 1
    fi
}

for name in test crash crashbatch preload; do
    "$here/scripts/cluster.sh" destroy "$name"
done
for dir in /tmp/oms_correlation-pgrx /tmp/oms_correlation-releases; do
    if [ -e "$dir" ]; then
        as_root rm -rf "$dir"
    fi
done

shopt -s nullglob
installed=("$libdir"/oms_correlation* "$extdir"/oms_correlation*)
if [ ${#installed[@]} -gt 0 ]; then
    log "removing ${#installed[@]} installed file(s): ${installed[*]}"
    as_root rm -f "${installed[@]}"
fi
left=("$libdir"/oms_correlation* "$extdir"/oms_correlation*)
if [ ${#left[@]} -gt 0 ]; then
    echo "[uninstall] could not remove: ${left[*]}" >&2
    exit 1
fi
log "no oms_correlation file left in $libdir or $extdir; test clusters removed"
