#!/usr/bin/env bash
# Tag rules (bench/tags.sql): evaluation, retag, enrich_pending with 0 and 10 rules, the
# report views, and an event table's enriched view and tag report with 0 and 1 event rule;
# then the tag reports and the tags of N events against the ip4r peer (the same rules at query
# time in plain SQL, the list as an ip4r GiST join), whose answers must equal the extension's
# (the run fails otherwise). Called by bench/run.sh with its cluster (PGHOST set, City and ASN
# configured, ip4r installed); run alone it starts a throwaway cluster of the installed
# PostgreSQL (PG_BIN, ip4r installed) with MaxMind's City and ASN test databases.
# Environment: IPI_BENCH_TAG_ROWS (default 100000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/cluster.sh
. "$ROOT/scripts/cluster.sh"
IPI_LOG_TAG=bench-tags
ROWS=${IPI_BENCH_TAG_ROWS:-100000}
if [ -z "${PGHOST:-}" ]; then
    RUN_DIR=$(mktemp -d /tmp/ipi_bench_tags.XXXXXX)
    chmod 755 "$RUN_DIR"
    trap 'ipi_cluster_stop; rm -rf "$RUN_DIR"' EXIT
    mkdir -p "$RUN_DIR/db"
    cp "$ROOT/pg_tests/fixtures/maxmind/test-data/GeoIP2-City-Test.mmdb" \
       "$ROOT/pg_tests/fixtures/maxmind/test-data/GeoLite2-ASN-Test.mmdb" "$RUN_DIR/db/"
    chmod -R a+rX "$RUN_DIR/db"
    ipi_cluster_start "$RUN_DIR/cluster" "shared_preload_libraries = 'ip_inventory'" \
        "ip_inventory.city_db = '$RUN_DIR/db/GeoIP2-City-Test.mmdb'" \
        "ip_inventory.asn_db = '$RUN_DIR/db/GeoLite2-ASN-Test.mmdb'" \
        "shared_buffers = 1GB" "work_mem = 64MB" "max_parallel_workers_per_gather = 0"
    ipi_psql -d postgres -c "CREATE EXTENSION ip_inventory" >/dev/null
fi
ipi_log "tag rules: $ROWS inventory rows"
ipi_psql -d postgres -X -v rows="$ROWS" -f "$ROOT/bench/tags.sql"
