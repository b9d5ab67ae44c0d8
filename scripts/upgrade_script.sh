#!/usr/bin/env bash
# Assembles (or with --check, verifies) the upgrade scripts still being developed: those of
# sql/upgrade/ip_inventory--FROM--TO.sql whose parts directory sql/upgrade/FROM--TO exists
# (scripts/upgrade_script.py). Released versions have no parts directory: frozen.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
check=()
[ "${1:-}" = --check ] && check=(--check)
feature=${PGRX_FEATURE:-pg15}
cargo pgrx schema "$feature" -o target/schema.sql >/dev/null 2>&1 \
    || { cargo pgrx schema "$feature" -o target/schema.sql; exit 1; }
for parts in sql/upgrade/*--*/; do
    [ -d "$parts" ] || continue
    step=$(basename "$parts")
    python3 scripts/upgrade_script.py "${check[@]}" target/schema.sql "sql/upgrade/ip_inventory--$step.sql"
done
