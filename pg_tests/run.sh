#!/usr/bin/env bash
# SQL regression tests: runs pg_tests/sql/NAME.sql through psql against a throwaway cluster
# and compares the output with pg_tests/expected/NAME.out (like pg_regress, plus the
# substitution of the per-run directory by @TESTDIR@ so expected files are location-free).
#
# Usage: pg_tests/run.sh [NAME...]       (default: every test in pg_tests/schedule)
# Environment: IPI_SKIP_INSTALL=1 uses the installed extension as is;
#              IPI_ACCEPT=1 copies results over expected files (review the diff!).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/cluster.sh
. "$ROOT/scripts/cluster.sh"
IPI_LOG_TAG=pg_tests
TESTS_DIR=$ROOT/pg_tests

[ -n "${IPI_SKIP_INSTALL:-}" ] || ipi_install "$ROOT"

RUN_DIR=$(mktemp -d /tmp/ipi_tests.XXXXXX)
chmod 755 "$RUN_DIR"
failed=()
trap 'ipi_finish_run "$RUN_DIR" "$([ ${#failed[@]} -eq 0 ] && echo yes || echo no)"' EXIT

export IPI_FIXTURES=$RUN_DIR/fixtures IPI_SCRATCH=$RUN_DIR/scratch IPI_PGBIN=$PG_BIN
ipi_copy_fixtures "$ROOT" "$IPI_FIXTURES" >/dev/null
mkdir -p "$IPI_SCRATCH" "$RUN_DIR/results"
chmod 755 "$IPI_SCRATCH"

# Loopback stand-ins for Team Cymru, GreyNoise and DNS (pg_tests/fake_sources.py), for the
# whole run; tests read their addresses from IPI_FAKE_* and reset their fault state.
ipi_fake_sources_start "$ROOT" "$RUN_DIR/fake"

# The schedule: "<phase> <test>" lines. A phase is a server configuration:
#   preload     shared_preload_libraries = 'ip_inventory'
#   no_preload  without it
#   cron        with pg_cron too (its settings are in postgresql.conf from the start: ALTER
#               SYSTEM refuses cron.* while pg_cron is not loaded)
phase_settings() {
    case $1 in
        preload) echo "ALTER SYSTEM SET shared_preload_libraries = 'ip_inventory'" ;;
        # An empty string would be a list holding one library named "".
        no_preload) echo "ALTER SYSTEM RESET shared_preload_libraries" ;;
        cron) echo "ALTER SYSTEM SET shared_preload_libraries = 'ip_inventory', 'pg_cron'" ;;
        *) return 1 ;;
    esac
}
apply_phase_settings() {
    local statement
    while read -r statement; do
        ipi_psql -d postgres -c "$statement" >/dev/null
    done < <(phase_settings "$1")
}
mapfile -t schedule < <(grep -Ev '^\s*(#|$)' "$TESTS_DIR/schedule")
if [ $# -gt 0 ]; then
    wanted=" $* "
    mapfile -t schedule < <(printf '%s\n' "${schedule[@]}" | while read -r phase name; do
        [[ $wanted == *" $name "* ]] && echo "$phase $name"; done)
fi

# The cron phase needs pg_cron, which Debian packages for PostgreSQL 15 (setup.sh installs it)
# but nothing here provides for the PostgreSQL 18 build: on another major without it, those
# tests are skipped, and the run says so. On 15 a missing pg_cron is a failure, not a skip.
skipped=()
if [ "$PG" != 15 ] && [ ! -f "$("$PG_CONFIG" --pkglibdir)/pg_cron.so" ]; then
    mapfile -t skipped < <(printf '%s\n' "${schedule[@]}" | awk '$1 == "cron" {print $2}')
    mapfile -t schedule < <(printf '%s\n' "${schedule[@]}" | awk 'NF && $1 != "cron"')
    for name in "${skipped[@]}"; do
        printf 'SKIP  %s (cron): pg_cron is not installed for PostgreSQL %s (%s)\n' \
            "$name" "$PG" "$("$PG_CONFIG" --pkglibdir)"
    done
fi

# pg_cron runs its jobs over the cluster's socket, from the postgres database.
ipi_cluster_start "$RUN_DIR/cluster" "cron.database_name = 'postgres'" "cron.host = '$RUN_DIR/cluster'"
phase=""
export PGDATABASE=ipi_test PGTZ=UTC PGDATESTYLE='ISO, YMD' LC_MESSAGES=C LC_ALL=C.UTF-8

for entry in "${schedule[@]}"; do
    read -r want_phase name <<<"$entry"
    if [ "$want_phase" != "$phase" ]; then
        phase_settings "$want_phase" >/dev/null || { ipi_log "unknown phase $want_phase"; exit 2; }
        apply_phase_settings "$want_phase"
        ipi_cluster_restart
        phase=$want_phase
        if [ "$phase" = cron ]; then
            ipi_psql -d postgres -c "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null
        fi
    fi
    # Each test starts from a fresh database and the phase's settings.
    PGOPTIONS="-c client_min_messages=warning" ipi_psql -d postgres -c "ALTER SYSTEM RESET ALL" >/dev/null
    apply_phase_settings "$phase"
    PGOPTIONS="-c client_min_messages=warning" ipi_psql -d postgres -c "SELECT pg_reload_conf()" \
        -c "DROP DATABASE IF EXISTS ipi_test" -c "CREATE DATABASE ipi_test" >/dev/null
    rm -rf "${IPI_SCRATCH:?}"/*
    # The store of verified copies remembers, per path, the copy last in service: tests reuse
    # paths under the scratch directory, so each starts without one.
    ipi_as_owner rm -rf "$IPI_DIR/data/ip_inventory"
    out=$RUN_DIR/results/$name.out
    (cd "$TESTS_DIR/sql" && "$PG_BIN/psql" -X -a -q <"$name.sql" >"$out" 2>&1) || true
    sed -i "s|$RUN_DIR|@TESTDIR@|g" "$out"
    if [ -n "${IPI_ACCEPT:-}" ]; then
        cp "$out" "$TESTS_DIR/expected/$name.out"
    fi
    if diff -u "$TESTS_DIR/expected/$name.out" "$out" >"$RUN_DIR/results/$name.diff" 2>&1; then
        printf 'ok    %s (%s)\n' "$name" "$phase"
    else
        printf 'FAIL  %s (%s)\n' "$name" "$phase"
        cat "$RUN_DIR/results/$name.diff"
        failed+=("$name")
    fi
done

# A crashed backend shows in the server log even when its test output looked right.
if grep -E "terminated by signal|was terminated by|PANIC" "$RUN_DIR/cluster/server.log"; then
    ipi_log "the server log shows a crashed process"
    failed+=("server-log")
fi

# Secrets never reach the server log: the GreyNoise keys the tests used (right and wrong)
# and the pseudonymization salt.
if grep -F -e "$IPI_FAKE_KEY" -e "wrong-key-0000" -e "the-server-salt-0001" "$RUN_DIR/cluster/server.log"; then
    ipi_log "the server log shows a secret (a GreyNoise key or the salt)"
    failed+=("server-log-secret")
fi

if [ ${#failed[@]} -gt 0 ]; then
    ipi_log "FAILED: ${failed[*]}"
    exit 1
fi
ipi_log "all ${#schedule[@]} SQL tests passed on PostgreSQL $PG$([ ${#skipped[@]} -eq 0 ] || echo " (skipped: ${skipped[*]})")"
