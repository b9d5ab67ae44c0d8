#!/usr/bin/env bash
# The package test (the last step of `make test`, after scripts/package.sh):
#   1. the .deb and the PostgreSQL 18 tarball hold exactly the expected files (the library,
#      the control file of this version, its install script and every upgrade script of
#      sql/upgrade, byte for byte; never the pinned old install scripts), and the .deb's
#      control fields are right;
#   2. the .deb installs with dpkg -i into Debian's PostgreSQL 15, a fresh cluster creates the
#      extension from it and answers a lookup from the bundled MaxMind test database and
#      maxmind_info(), the upgrade path from each packaged upgrade script is there; then
#      dpkg -r removes every file it installed.
# Step 2 writes into /usr/lib/postgresql/15 and /usr/share/postgresql/15: the ip_inventory
# files found there (a `cargo pgrx install` of the SQL tests) are moved aside first, so that
# the cluster sees only what the package installs, and put back afterwards, whatever happens.
#
# Environment: IPI_SKIP_DPKG=1 runs step 1 only, and says so (for a machine where another
# run uses Debian's PostgreSQL 15 at the same time).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The package is for Debian's PostgreSQL 15, whatever PG_BIN the caller set.
export PG=15 PG_BIN=/usr/lib/postgresql/15/bin PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
# shellcheck source=../scripts/cluster.sh
. "$ROOT/scripts/cluster.sh"
IPI_LOG_TAG=package_check

VERSION=$(python3 -c 'import tomllib, sys; print(tomllib.load(open(sys.argv[1], "rb"))["workspace"]["package"]["version"])' "$ROOT/Cargo.toml")
ARCH=$(dpkg --print-architecture)
NAME=postgresql-15-ip-inventory
DEB=$ROOT/target/package/${NAME}_${VERSION}_${ARCH}.deb
TARBALL=$ROOT/target/package/ip_inventory-$VERSION-pg18-$ARCH.tar.gz
for f in "$DEB" "$TARBALL"; do
    [ -f "$f" ] || { ipi_log "missing $f: run scripts/package.sh (make package) first"; exit 1; }
done

failures=0
check() { # check DESCRIPTION EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        printf 'ok    %s\n' "$1"
    else
        printf 'FAIL  %s\n      expected: %s\n      found:    %s\n' "$1" "$2" "$3"
        failures=$((failures + 1))
    fi
}

# ---- 1. contents ----
mapfile -t upgrade_scripts < <(cd "$ROOT/sql/upgrade" && ls ip_inventory--*--*.sql)
EXT=usr/share/postgresql/15/extension
expected_files() { # the files below PREFIX_LIB and PREFIX_EXT, sorted
    {
        echo "$1/ip_inventory.so"
        echo "$2/ip_inventory.control"
        echo "$2/ip_inventory--$VERSION.sql"
        for s in "${upgrade_scripts[@]}"; do echo "$2/$s"; done
        [ -z "${3:-}" ] || printf '%s\n' "$3"/{CHANGELOG.md.gz,README.md,copyright}
    } | sort
}
check "the .deb holds the library, the control file, the $VERSION script and the ${#upgrade_scripts[@]} upgrade script(s), and its docs" \
    "$(expected_files usr/lib/postgresql/15/lib "$EXT" "usr/share/doc/$NAME" | tr '\n' ' ')" \
    "$(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {sub(/^\.\//, "", $6); print $6}' | sort | tr '\n' ' ')"
check "the PostgreSQL 18 tarball holds the same below lib/ and share/extension/" \
    "$(expected_files lib share/extension | tr '\n' ' ')" \
    "$(tar -tzf "$TARBALL" | grep -v '/$' | sort | tr '\n' ' ')"
check "the .deb's control fields" \
    "$NAME $VERSION $ARCH postgresql-15" \
    "$(dpkg-deb -f "$DEB" Package Version Architecture Depends | awk -F': ' '{printf "%s%s", (NR > 1 ? " " : ""), $2}')"
for f in Maintainer Description; do
    check "the .deb has a $f" yes "$([ -n "$(dpkg-deb -f "$DEB" "$f")" ] && echo yes || echo no)"
done
check "the packaged control file installs version $VERSION" "default_version = '$VERSION'" \
    "$(dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - "./$EXT/ip_inventory.control" | grep '^default_version')"
for s in "${upgrade_scripts[@]}"; do
    check "$s is packaged as in sql/upgrade (.deb, tarball)" "same same" \
        "$(dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - "./$EXT/$s" | cmp -s - "$ROOT/sql/upgrade/$s" && echo same || echo differs) $(tar -xOzf "$TARBALL" "share/extension/$s" | cmp -s - "$ROOT/sql/upgrade/$s" && echo same || echo differs)"
done

# ---- 2. installed and used: the tarball in this checkout's PostgreSQL 18, the .deb in
# Debian's PostgreSQL 15. In each, the ip_inventory files already there (an install of the SQL
# tests) are moved aside first, so that the cluster sees only what the package brings, and put
# back afterwards, whatever happens.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
RUN_DIR=$(mktemp -d /tmp/ipi_package.XXXXXX)
chmod 755 "$RUN_DIR"
data=$(ipi_copy_fixtures "$ROOT" "$RUN_DIR/fixtures")/maxmind/test-data
SAVED=""      # where the files of the installation under test are moved aside, if they are
UNINSTALL=""  # how to remove the package under test, while it is installed

use_pg() { # MAJOR: the installation the next steps work in
    PG=$1 PG_BIN=$(ipi_default_bin "$1")
    PG_CONFIG=$PG_BIN/pg_config
    LIBDIR=$("$PG_CONFIG" --pkglibdir)
    EXTDIR=$("$PG_CONFIG" --sharedir)/extension
}
move_aside() {
    SAVED=$RUN_DIR/saved-pg$PG
    mkdir -p "$SAVED/lib" "$SAVED/extension"
    shopt -s nullglob
    for f in "$LIBDIR"/ip_inventory.so; do as_root mv "$f" "$SAVED/lib/"; done
    for f in "$EXTDIR"/ip_inventory.control "$EXTDIR"/ip_inventory--*.sql; do as_root mv "$f" "$SAVED/extension/"; done
    shopt -u nullglob
    ipi_log "PostgreSQL $PG: moved aside for the test: $(cd "$SAVED" && find . -type f | sort | tr '\n' ' ')"
}
put_back() {
    [ -n "$SAVED" ] || return 0
    [ -z "$(ls -A "$SAVED/lib")" ] || as_root cp -p "$SAVED"/lib/* "$LIBDIR/"
    [ -z "$(ls -A "$SAVED/extension")" ] || as_root cp -p "$SAVED"/extension/* "$EXTDIR/"
    SAVED=""
}
uninstall_tarball() {
    local prefix f
    prefix=$(dirname "$PG_BIN")
    while read -r f; do rm -f "${prefix:?}/$f"; done < <(tar -tzf "$TARBALL" | grep -v '/$')
}
uninstall_deb() { as_root dpkg -r "$NAME" >>"$RUN_DIR/dpkg.log" 2>&1; }
cleanup() {
    ipi_cluster_stop
    [ -z "$UNINSTALL" ] || $UNINSTALL || ipi_log "could not remove the package under test ($UNINSTALL)"
    put_back
    if [ "$failures" = 0 ] && [ -z "${IPI_KEEP:-}" ]; then rm -rf "$RUN_DIR"; else ipi_log "kept $RUN_DIR"; fi
}
trap cleanup EXIT

installed_files() { ls -d "$LIBDIR"/ip_inventory.so "$EXTDIR"/ip_inventory* 2>/dev/null | sort | tr '\n' ' ' || true; }

# A fresh cluster of PG: CREATE EXTENSION from what the package installed, a City and an ASN
# lookup against the bundled MaxMind test databases, maxmind_info(), the upgrade paths.
smoke() {
    local label=$1 expected out s from
    ipi_cluster_start "$RUN_DIR/cluster-pg$PG" "shared_preload_libraries = 'ip_inventory'" \
        "ip_inventory.city_db = '$data/GeoIP2-City-Test.mmdb'" "ip_inventory.asn_db = '$data/GeoLite2-ASN-Test.mmdb'"
    out=$(ipi_psql -d postgres -At -F ' ' 2>&1 <<SQL || true
CREATE EXTENSION ip_inventory;
SELECT extversion FROM pg_extension WHERE extname = 'ip_inventory';
SELECT ip_class, country_code, city, network FROM enrich_ip('81.2.69.160');
SELECT ip_asn('1.128.0.1'), ip_asn_org('1.128.0.1');
SELECT name, database_type, status FROM maxmind_info() ORDER BY name DESC;
SELECT source || '->' || target || ': ' || path FROM pg_extension_update_paths('ip_inventory')
WHERE target = '$VERSION' AND path IS NOT NULL ORDER BY source;
SQL
    )
    ipi_cluster_stop
    expected="$VERSION
public GB London 81.2.69.160/27
1221 Telstra Pty Ltd
city GeoIP2-City ok
asn GeoLite2-ASN ok"
    for s in "${upgrade_scripts[@]}"; do
        from=${s#ip_inventory--}
        from=${from%%--*}
        expected+=$'\n'"$from->$VERSION: $from--$VERSION"
    done
    check "$label: CREATE EXTENSION, enrich_ip, ip_asn, maxmind_info, the upgrade paths (PostgreSQL $PG)" \
        "$expected" "$out"
}

# The tarball, in this checkout's PostgreSQL 18 (nobody else's: setup.sh unpacked it here).
use_pg 18
ipi_check_pg
move_aside
UNINSTALL=uninstall_tarball
tar -xzf "$TARBALL" -C "$(dirname "$PG_BIN")"
check "the tarball unpacks into the PostgreSQL 18 installation's lib/ and share/extension/" \
    "$(expected_files "$LIBDIR" "$EXTDIR" | tr '\n' ' ')" "$(installed_files)"
smoke "$(basename "$TARBALL")"
uninstall_tarball
UNINSTALL=""
put_back

if [ -n "${IPI_SKIP_DPKG:-}" ]; then
    echo "SKIP  dpkg -i / CREATE EXTENSION / dpkg -r of $(basename "$DEB"): IPI_SKIP_DPKG is set"
else
    use_pg 15
    if dpkg-query -W -f='${Status}' "$NAME" 2>/dev/null | grep -q 'install ok installed'; then
        ipi_log "$NAME was installed before this test: removing it first"
        uninstall_deb
    fi
    move_aside
    UNINSTALL=uninstall_deb
    as_root dpkg -i "$DEB" >"$RUN_DIR/dpkg.log" 2>&1 || { cat "$RUN_DIR/dpkg.log"; failures=$((failures + 1)); exit 1; }
    check "dpkg -i $(basename "$DEB")" "install ok installed $VERSION" \
        "$(dpkg-query -W -f='${Status} ${Version}' "$NAME")"
    check "the .deb installs into Debian's PostgreSQL 15 directories" \
        "$(expected_files "$LIBDIR" "$EXTDIR" | tr '\n' ' ')" "$(installed_files)"
    smoke "$(basename "$DEB")"
    uninstall_deb
    UNINSTALL=""
    state=$(dpkg-query -W -f='${Status}' "$NAME" 2>/dev/null | grep -q 'install ok installed' && echo installed || echo 'not installed')
    left=$(installed_files)
    check "dpkg -r removes the package and every file it installed" "not installed; files left: none" \
        "$state; files left: ${left:-none}"
    put_back
fi

[ "$failures" = 0 ] || { ipi_log "$failures check(s) FAILED"; exit 1; }
ipi_log "the packages install, work and uninstall; the files moved aside are back"
