#!/usr/bin/env bash
# Builds a released version of the extension from its commit and installs it beside the current
# one, so that the upgrade tests run that release's own code (issue 13), not today's library under
# an old script:
#   - the library as $libdir/oms_correlation-VERSION.so;
#   - the frozen install script sql/released/oms_correlation--VERSION.sql, bound to that library.
# The commit of each release is the one sql/released/README.md names. Sources are taken with
# `git archive`, so the clone needs the release's commit (a shallow clone does not have it).
#
#   scripts/previous_release.sh VERSION [--release]   prints the source directory it built in
# (--release: an optimised build, for benchmarks against the release; the tests use the debug one)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:?usage: previous_release.sh VERSION [--release]}"
profile=debug suffix="" release_flag=""
if [ "${2:-}" = "--release" ]; then profile=release suffix=-release release_flag=--release; fi
pg_config=/usr/lib/postgresql/15/bin/pg_config
export PATH="$HOME/.cargo/bin:$PATH"

commit="$(sed -n "s/^| $version | \([0-9a-f]\{7,40\}\) .*/\1/p" "$here/sql/released/README.md")"
[ -n "$commit" ] || { echo "sql/released/README.md names no commit for $version" >&2; exit 1; }
git -C "$here" cat-file -e "$commit^{commit}" 2>/dev/null || {
    echo "commit $commit of release $version is not in this clone (a shallow clone? git fetch --unshallow)" >&2
    exit 1
}

src="${OMS_RELEASES_DIR:-/tmp/oms_correlation-releases}/$version"
rm -rf "$src"
mkdir -p "$src"
git -C "$here" archive "$commit" | tar -x -C "$src"
# One target directory for every old release: they share their dependencies' builds. Their cdylibs
# share one path there too (target/previous-releases/debug/deps/liboms_correlation.so), so cargo may
# call a release "fresh" while that file holds another release's build: the crate is always built
# again (its sources are touched), and each release's library is kept by commit in built/, which
# later runs install from without building.
cache="$here/target/previous-releases/built/$commit$suffix.so"
if [ ! -f "$cache" ]; then
    touch "$src/src/lib.rs"
    (cd "$src" && CARGO_TARGET_DIR="$here/target/previous-releases" \
        cargo build --locked --lib --quiet $release_flag)
    mkdir -p "$(dirname "$cache")"
    cp "$here/target/previous-releases/$profile/liboms_correlation.so" "$cache.partial"
    mv "$cache.partial" "$cache"
fi

libdir="$("$pg_config" --pkglibdir)"
sharedir="$("$pg_config" --sharedir)/extension"
# Unlinked first: a running server that has it mapped keeps its copy (overwriting kills it).
rm -f "$libdir/oms_correlation-$version.so"
install -m 755 "$cache" "$libdir/oms_correlation-$version.so"
sed "s|'MODULE_PATHNAME'|'\$libdir/oms_correlation-$version'|g" \
    "$here/sql/released/oms_correlation--$version.sql" >"$sharedir/oms_correlation--$version.sql"
echo "$src"
