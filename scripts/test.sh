#!/usr/bin/env bash
# All tests: formatting and lints, the core's unit tests (plain cargo test, no Postgres),
# the SQL regression tests against a throwaway cluster, and the fault and load run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== upgrade script current (make upgrade-script)"
bash scripts/upgrade_script.sh --check
echo "== core unit tests"
cargo test -p ip_inventory_core --locked
echo "== SQL regression tests"
bash pg_tests/run.sh
echo "== fault and load run"
IPI_SKIP_INSTALL=1 bash pg_tests/chaos.sh
