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
fake_pid=""
status=1
cleanup() {
    [ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null || true
    ipi_cluster_stop
    if [ "$status" = 0 ] && [ -z "${IPI_KEEP:-}" ]; then
        rm -rf "$RUN_DIR"
    else
        ipi_log "kept $RUN_DIR (server log: $RUN_DIR/cluster/server.log)"
    fi
}
trap cleanup EXIT

export IPI_FIXTURES=$RUN_DIR/fixtures IPI_SCRATCH=$RUN_DIR/scratch IPI_PGBIN=$PG_BIN
ipi_copy_fixtures "$ROOT" "$IPI_FIXTURES" >/dev/null
mkdir -p "$IPI_SCRATCH"
chmod 777 "$IPI_SCRATCH"

export IPI_FAKE_DIR=$RUN_DIR/fake
python3 "$ROOT/pg_tests/fake_sources.py" serve "$IPI_FAKE_DIR" &
fake_pid=$!
for _ in $(seq 100); do [ -f "$IPI_FAKE_DIR/ports.env" ] && break; sleep 0.1; done
[ -f "$IPI_FAKE_DIR/ports.env" ] || { ipi_log "the fake sources did not start"; exit 1; }
set -a
# shellcheck disable=SC1091
. "$IPI_FAKE_DIR/ports.env"
set +a
export IPI_FAKE_CTL="python3 $ROOT/pg_tests/fake_sources.py"

# Default log levels: what an operator's server would record.
ipi_cluster_start "$RUN_DIR/cluster" "shared_preload_libraries = 'ip_inventory'" \
    "max_connections = 60"
export IPI_DATA=$RUN_DIR/cluster/data IPI_SERVER_LOG=$RUN_DIR/cluster/server.log
if [ "$(id -u)" = 0 ]; then export IPI_AS_OWNER="runuser -u postgres --"; else export IPI_AS_OWNER=""; fi
export PGTZ=UTC LC_MESSAGES=C

if python3 "$ROOT/pg_tests/chaos.py"; then status=0; fi
exit $status
