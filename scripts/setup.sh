#!/usr/bin/env bash
# Installs everything ip_inventory needs to build, test and demo on a Debian 12 machine
# with PostgreSQL 15. Run as root (or with sudo available). A no-op when all is present.
set -euo pipefail

PGRX_VERSION=0.18.1
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo
              postgresql-15-cron mmdb-bin
              # pg_tests/sql/monitoring.sql: the queries file, dashboard and alerts, for real
              python3-yaml prometheus-postgres-exporter prometheus)

log() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing apt packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
else
    log "apt packages present"
fi

# Debian's postgresql package creates a default cluster and may start it; we never use it,
# and our throwaway clusters pick their own ports, so it is left alone.

export PATH="$HOME/.cargo/bin:$PATH"
have_pgrx=$(cargo pgrx --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have_pgrx" != "$PGRX_VERSION" ]; then
    log "installing cargo-pgrx $PGRX_VERSION (found: ${have_pgrx:-none}); takes ~6 min"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --force
else
    log "cargo-pgrx $PGRX_VERSION present"
fi

# cargo fuzz (scripts/fuzz.sh: make fuzz, and the smoke run of make test). Its builds use the
# stable compiler with RUSTC_BOOTSTRAP=1; no nightly toolchain is needed.
CARGO_FUZZ_VERSION=0.13.2
if cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz present ($(cargo fuzz --version))"
else
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION; takes ~2 min"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# `cargo pgrx init` writes ~/.pgrx/config.toml; it needs no network with an existing pg_config.
if ! grep -qs "pg15 = \"$PG_CONFIG\"" "$HOME/.pgrx/config.toml"; then
    log "cargo pgrx init --pg15 $PG_CONFIG"
    cargo pgrx init --pg15 "$PG_CONFIG"
else
    log "pgrx already initialised for $PG_CONFIG"
fi

# `cargo pgrx install` writes into Debian's PostgreSQL directories; the test and demo
# clusters run as the `postgres` user, which must be able to read this checkout's fixtures.
log "setup complete"
