#!/usr/bin/env bash
# All tests (`make test`): the version check, formatting and lints (both majors), the core's
# unit tests (plain cargo test, no Postgres), a short run of each fuzz target, then on
# PostgreSQL 15 and on PostgreSQL 18 the SQL regression tests against a throwaway cluster and
# the fault and load run, and last the packages: built, installed, used and removed again.
#
# PG_BIN / PG_CONFIG, if set, name the PostgreSQL 15 to test (e.g. a private copy of Debian's);
# PostgreSQL 18 is always the tree scripts/setup.sh unpacked into this checkout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=cluster.sh
. "$ROOT/scripts/cluster.sh"   # ipi_default_bin
PG18_CONFIG=$(ipi_default_bin 18)/pg_config

step() { # step TITLE COMMAND...: runs it, then says how long it took
    local title=$1 start=$SECONDS
    shift
    echo "== $title"
    "$@"
    echo "== $title: $((SECONDS - start)) s"
}
pg15() { env PG=15 "$@"; }
pg18() { env -u PG_BIN -u PG_CONFIG PG=18 "$@"; }

step "version check" bash scripts/check_version.sh
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo fmt --check (fuzz)" cargo fmt --manifest-path fuzz/Cargo.toml -- --check
step "cargo clippy (PostgreSQL 15)" cargo clippy --workspace --all-targets --locked -- -D warnings
# (PGRX_PG_CONFIG_PATH: this checkout's PostgreSQL 18 whatever ~/.pgrx/config.toml says.)
step "cargo clippy (PostgreSQL 18)" env PGRX_PG_CONFIG_PATH="$PG18_CONFIG" \
    cargo clippy --workspace --all-targets --locked --no-default-features --features pg18 -- -D warnings
step "upgrade script current (make upgrade-script)" bash scripts/upgrade_script.sh --check
step "core unit tests" cargo test -p ip_inventory_core --locked
step "fuzz smoke run (each target ${FUZZ_SMOKE_SECONDS:-5} s; make fuzz runs longer)" \
    env FUZZ_FRESH=1 FUZZ_SECONDS="${FUZZ_SMOKE_SECONDS:-5}" bash scripts/fuzz.sh
step "SQL regression tests (PostgreSQL 15)" pg15 bash pg_tests/run.sh
step "fault and load run (PostgreSQL 15)" pg15 env IPI_SKIP_INSTALL=1 bash pg_tests/chaos.sh
step "SQL regression tests (PostgreSQL 18)" pg18 bash pg_tests/run.sh
step "fault and load run (PostgreSQL 18)" pg18 env IPI_SKIP_INSTALL=1 bash pg_tests/chaos.sh
# Last: the .deb goes into Debian's PostgreSQL 15 directories (what was installed there is
# moved aside and put back afterwards).
step "packages (make package)" bash scripts/package.sh
step "package test" bash pg_tests/package_check.sh
echo "== all tests passed in $((SECONDS / 60)) min $((SECONDS % 60)) s"
