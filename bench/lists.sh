#!/usr/bin/env bash
# Network lists against ip4r and inet GiST joins (bench/lists.sql). Called by bench/run.sh
# with its cluster (PGHOST set, ip4r installed); run alone it starts a throwaway cluster of
# the installed PostgreSQL (PG_BIN) with the extension preloaded (ip4r must be installed).
# Environment: IPI_BENCH_LIST_NETWORKS (default 100000), IPI_BENCH_LIST_ROWS (default 200000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/cluster.sh
. "$ROOT/scripts/cluster.sh"
IPI_LOG_TAG=bench-lists
NETS=${IPI_BENCH_LIST_NETWORKS:-100000}
ROWS=${IPI_BENCH_LIST_ROWS:-200000}
if [ -z "${PGHOST:-}" ]; then
    RUN_DIR=$(mktemp -d /tmp/ipi_bench_lists.XXXXXX)
    chmod 755 "$RUN_DIR"
    trap 'ipi_cluster_stop; rm -rf "$RUN_DIR"' EXIT
    ipi_cluster_start "$RUN_DIR/cluster" "shared_preload_libraries = 'ip_inventory'" \
        "shared_buffers = 1GB" "work_mem = 64MB" "max_parallel_workers_per_gather = 0"
    ipi_psql -d postgres -c "CREATE EXTENSION ip_inventory" >/dev/null
fi
ipi_log "network lists: $NETS networks, $ROWS probes"
ipi_psql -d postgres -X -v nets="$NETS" -v rows="$ROWS" -f "$ROOT/bench/lists.sql"
