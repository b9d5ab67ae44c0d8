#!/usr/bin/env bash
# The fault and load run (`make chaos`, also part of `make test`): a throwaway cluster with the
# extension preloaded, the loopback stand-ins for the network sources, and pg_tests/chaos.py,
# which attacks the extension and prints what it tried and what survived.
#
# Environment: IPI_SKIP_INSTALL=1 uses the installed extension as is; IPI_KEEP=1 keeps the
# run directory; IPI_CHAOS_ONLY="corrupt reload ..." runs only those parts.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/cluster.sh
. "$ROOT/scripts/cluster.sh"
IPI_LOG_TAG=chaos

[ -n "${IPI_SKIP_INSTALL:-}" ] || ipi_install "$ROOT"

RUN_DIR=$(mktemp -d /tmp/ipi_chaos.XXXXXX)
chmod 755 "$RUN_DIR"
status=1
trap 'ipi_finish_run "$RUN_DIR" "$([ "$status" = 0 ] && echo yes || echo no)"' EXIT

export IPI_FIXTURES=$RUN_DIR/fixtures IPI_SCRATCH=$RUN_DIR/scratch IPI_PGBIN=$PG_BIN
ipi_copy_fixtures "$ROOT" "$IPI_FIXTURES" >/dev/null
mkdir -p "$IPI_SCRATCH"
chmod 777 "$IPI_SCRATCH"

ipi_fake_sources_start "$ROOT" "$RUN_DIR/fake"

# Default log levels: what an operator's server would record.
ipi_cluster_start "$RUN_DIR/cluster" "shared_preload_libraries = 'ip_inventory'" \
    "max_connections = 60"
export IPI_DATA=$RUN_DIR/cluster/data IPI_SERVER_LOG=$RUN_DIR/cluster/server.log
if [ "$(id -u)" = 0 ]; then export IPI_AS_OWNER="runuser -u postgres --"; else export IPI_AS_OWNER=""; fi
export PGTZ=UTC LC_MESSAGES=C

if python3 "$ROOT/pg_tests/chaos.py"; then status=0; fi
exit $status
