#!/usr/bin/env bash
# All tests: formatting and lints, the core's unit tests (plain cargo test, no Postgres), a
# short run of each fuzz target, the SQL regression tests against a throwaway cluster, and the
# fault and load run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== upgrade script current (make upgrade-script)"
bash scripts/upgrade_script.sh --check
echo "== core unit tests"
cargo test -p ip_inventory_core --locked
echo "== fuzz smoke run (each target ${FUZZ_SMOKE_SECONDS:-5} s; make fuzz runs longer)"
FUZZ_FRESH=1 FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-5} bash scripts/fuzz.sh
echo "== SQL regression tests"
bash pg_tests/run.sh
echo "== fault and load run"
IPI_SKIP_INSTALL=1 bash pg_tests/chaos.sh
