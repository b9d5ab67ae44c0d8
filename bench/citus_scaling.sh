#!/usr/bin/env bash
# One node against a Citus cluster (a coordinator and two workers) on this machine, for
# docs/scaling.md: backfill of 1M events, enrich over the event table (a lookup per row), and
# enrich_pending of the whole inventory after a MaxMind update. Needs Citus installed in the
# PostgreSQL of PG_CONFIG (docs/development.md) and the full-size GeoLite2 files:
#   IPI_CITY=.../GeoLite2-City.mmdb IPI_ASN=.../GeoLite2-ASN.mmdb bash bench/citus_scaling.sh
# (make bench fetches them). EVENTS (default 1000000) and ADDRESSES (default 200000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/cluster.sh
. "$ROOT/scripts/cluster.sh"
# shellcheck source=../pg_tests/citus_cluster.sh
. "$ROOT/pg_tests/citus_cluster.sh"
IPI_LOG_TAG=citus-bench
citus_installed || { echo "citus bench: skipped (Citus is not installed in $("$PG_CONFIG" --sharedir)/extension)"; exit 0; }
: "${IPI_CITY:?the full-size GeoLite2 City file}" "${IPI_ASN:?the full-size GeoLite2 ASN file}"
EVENTS=${EVENTS:-1000000}
ADDRESSES=${ADDRESSES:-200000}
[ -n "${IPI_SKIP_INSTALL:-}" ] || ipi_install "$ROOT"

RUN_DIR=$(mktemp -d /tmp/ipi_citus_bench.XXXXXX)
chmod 755 "$RUN_DIR"
trap 'citus_cluster_stop; ipi_cluster_stop; [ -n "${IPI_KEEP:-}" ] || rm -rf "$RUN_DIR"' EXIT
mkdir -p "$RUN_DIR/db"
cp "$IPI_CITY" "$RUN_DIR/db/City.mmdb"
cp "$IPI_ASN" "$RUN_DIR/db/ASN.mmdb"
python3 "$ROOT/pg_tests/sql/set_build_epoch.py" "$RUN_DIR/db/City.mmdb" "$RUN_DIR/db/City.next" 1770850169
chmod -R a+rX "$RUN_DIR/db"
SETTINGS=("ip_inventory.city_db = '$RUN_DIR/db/City.mmdb'" "ip_inventory.asn_db = '$RUN_DIR/db/ASN.mmdb'"
          "shared_buffers = '1GB'" "max_wal_size = '4GB'" "checkpoint_timeout = '30min'")

# The same events on both: ADDRESSES random public IPv4 addresses, EVENTS events over them.
LOAD="
CREATE TABLE raw_events (id bigint NOT NULL, src_ip inet NOT NULL, ts timestamptz NOT NULL);
DISTRIBUTE
INSERT INTO raw_events
SELECT i, ('0.0.0.0'::inet + (16777216 + (hashint4(i % $ADDRESSES) & 2147483647) % 3500000000)), timestamptz '2026-01-01' + i * interval '1 second'
FROM generate_series(1, $EVENTS) AS i;
VACUUM ANALYZE raw_events;"

ms() { # ms PORT SQL: wall time of one statement in a new session, in ms
    local start end
    start=$(date +%s%N)
    PGOPTIONS="-c client_min_messages=warning" ipi_psql -p "$1" -c "$2" >/dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

results=()
run_bench() { # run_bench LABEL PORT BACKFILL_SQL ENRICH_PENDING_SQL RELOAD_SQL
    local label=$1 port=$2
    results+=("$label | backfill $EVENTS events | $(ms "$port" "$3") ms")
    results+=("$label | SELECT count(*) FROM raw_events e, LATERAL enrich_ip(e.src_ip) x WHERE x.country_code = 'US' | $(ms "$port" "SELECT count(*) FROM raw_events e, LATERAL enrich_ip(e.src_ip) x WHERE x.country_code = 'US'") ms")
    results+=("$label | SELECT ip_country(src_ip), count(*) FROM raw_events GROUP BY 1 | $(ms "$port" "SELECT ip_country(src_ip), count(*) FROM raw_events GROUP BY 1") ms")
    cp "$RUN_DIR/db/City.next" "$RUN_DIR/db/City.tmp" && mv "$RUN_DIR/db/City.tmp" "$RUN_DIR/db/City.mmdb"
    ipi_psql -p "$port" -c "$5" >/dev/null
    results+=("$label | enrich_pending after a City update ($(ipi_psql -p "$port" -Atc "SELECT count(*) FROM ip_inventory") rows) | $(ms "$port" "$4") ms")
    python3 "$ROOT/pg_tests/sql/set_build_epoch.py" "$IPI_CITY" "$RUN_DIR/db/City.tmp" 1500000000 && mv "$RUN_DIR/db/City.tmp" "$RUN_DIR/db/City.mmdb"
}

ipi_log "one node"
ipi_cluster_start "$RUN_DIR/single" "shared_preload_libraries = 'ip_inventory'" "${SETTINGS[@]}"
ipi_psql -c "CREATE EXTENSION ip_inventory" >/dev/null
ipi_psql <<<"${LOAD/DISTRIBUTE/}" >/dev/null
run_bench "one node" "$IPI_PORT" \
    "CALL ip_inventory_backfill('raw_events', ARRAY['src_ip'], 'ts', 50000)" \
    "CALL ip_inventory_enrich_pending(50000)" "SELECT maxmind_reload()"
ipi_cluster_stop
IPI_DIR=

ipi_log "Citus: a coordinator and two workers"
python3 "$ROOT/pg_tests/sql/set_build_epoch.py" "$IPI_CITY" "$RUN_DIR/db/City.tmp" 1500000000 && mv "$RUN_DIR/db/City.tmp" "$RUN_DIR/db/City.mmdb"
chmod a+r "$RUN_DIR/db/City.mmdb"
citus_cluster_start "$RUN_DIR/citus" "${SETTINGS[@]}"
ipi_psql -c "CREATE EXTENSION ip_inventory" >/dev/null
DIST="SELECT ip_inventory_distribute('raw_events', 'src_ip');"
ipi_psql <<<"${LOAD/DISTRIBUTE/$DIST}" >/dev/null
run_bench "Citus 1+2" "$CITUS_COORD" \
    "SELECT ip_inventory_citus_backfill('raw_events', ARRAY['src_ip'], 'ts', 50000)" \
    "SELECT ip_inventory_citus_enrich_pending(50000)" "SELECT * FROM ip_inventory_citus_reload()"
{
    echo "Plan on Citus: EXPLAIN (COSTS OFF) SELECT count(*) FROM raw_events e, LATERAL enrich_ip(e.src_ip) x WHERE x.country_code = 'US'"
    ipi_psql -At -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM raw_events e, LATERAL enrich_ip(e.src_ip) x WHERE x.country_code = 'US'"
    echo "Plan on Citus: EXPLAIN (COSTS OFF) SELECT ip_country(src_ip), count(*) FROM raw_events GROUP BY 1"
    ipi_psql -At -c "EXPLAIN (COSTS OFF) SELECT ip_country(src_ip), count(*) FROM raw_events GROUP BY 1"
} >"$RUN_DIR/plans.txt"
printf '%s\n' "${results[@]}"
cat "$RUN_DIR/plans.txt"
