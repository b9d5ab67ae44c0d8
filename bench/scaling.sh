#!/usr/bin/env bash
# The measurements behind docs/scaling.md: parallel query on this machine with the
# full-size GeoLite2 databases (fetched into target/bench/cache by `make bench`). Starts a
# throwaway cluster, loads 2M random public IPv4 addresses, and times three queries with 0, 1
# and 2 parallel workers (best of 3), printing the plans. About 3 minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/cluster.sh
. "$ROOT/scripts/cluster.sh"
IPI_LOG_TAG=scaling
CACHE=$ROOT/target/bench/cache
for f in GeoLite2-City.mmdb GeoLite2-ASN.mmdb; do
    [ -f "$CACHE/$f" ] || { ipi_log "$CACHE/$f is missing: run make bench once (it fetches the databases)"; exit 2; }
done
[ -n "${IPI_SKIP_INSTALL:-}" ] || ipi_install "$ROOT"

RUN_DIR=$(mktemp -d /tmp/ipi_scaling.XXXXXX)
chmod 755 "$RUN_DIR"
cp "$CACHE"/GeoLite2-*.mmdb "$RUN_DIR/" && chmod 644 "$RUN_DIR"/*.mmdb
trap 'ipi_finish_run "$RUN_DIR" yes' EXIT
ipi_cluster_start "$RUN_DIR/cluster" "shared_preload_libraries = 'ip_inventory'" \
    "ip_inventory.maxmind_dir = '$RUN_DIR'" "max_worker_processes = 8" "max_parallel_workers = 8"
export PGDATABASE=postgres
ipi_psql -c "CREATE EXTENSION ip_inventory" \
    -c "CREATE TABLE addresses AS SELECT ip FROM (SELECT ('0.0.0.0'::inet + (random() * 4294967295)::bigint) AS ip FROM generate_series(1, 2400000)) AS r WHERE ip_class(ip) = 'public' LIMIT 2000000" \
    -c "VACUUM ANALYZE addresses" >/dev/null

QUERIES=(
    "SELECT count(ip_country(ip)) FROM addresses"
    "SELECT count(*) FROM addresses AS a, LATERAL enrich_ip(a.ip) AS e WHERE e.country_code = 'US'"
    "SELECT ip_country(ip) AS country, count(*) FROM addresses GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
)
echo "| query | 0 workers | 1 worker | 2 workers | speed-up with 2 |"
echo "|---|---:|---:|---:|---:|"
for q in "${QUERIES[@]}"; do
    row="| \`$q\` |"
    first=""
    for w in 0 1 2; do
        settings="SET max_parallel_workers_per_gather = $w; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;"
        best=""
        for _ in 1 2 3; do
            ms=$(ipi_psql -At -c "$settings" -c '\timing on' -c "$q" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
            best=$(python3 -c "print(min(float(x) for x in '$best $ms'.split()))")
        done
        [ -n "$first" ] || first=$best
        row="$row $(python3 -c "print(f'{$best:.0f} ms')") |"
        last=$best
    done
    echo "$row $(python3 -c "print(f'{$first / $last:.2f}x')") |"
done
echo
for q in "${QUERIES[@]}"; do
    echo "Plan with 2 workers: \`$q\`"
    echo '```'
    ipi_psql -At -c "SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;" \
        -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $q"
    echo '```'
done
