#!/bin/sh
# Installs a file as the live City database for reload.sql, the way operators must: copy it
# beside the live file, then rename it over (never rewrite the live file: backends map it).
#   lite | geoip2       the GeoLite2 / GeoIP2 City test databases
#   asn                 the ASN test database (wrong type for the City slot)
#   subtly-corrupt      GeoLite2-City-Test with a broken string deep in its data: metadata,
#                       type and first records are fine, so only full verification finds it
set -eu
data="$IPI_FIXTURES/maxmind/test-data"
live="$IPI_SCRATCH/City.mmdb"
new="$live.new"
case "$1" in
    lite) cp "$data/GeoLite2-City-Test.mmdb" "$new" ;;
    geoip2) cp "$data/GeoIP2-City-Test.mmdb" "$new" ;;
    asn) cp "$data/GeoLite2-ASN-Test.mmdb" "$new" ;;
    subtly-corrupt)
        cp "$data/GeoLite2-City-Test.mmdb" "$new"
        # 8 bytes of 0xFF into a string 1200 bytes before the metadata marker (at 20822).
        printf '\377\377\377\377\377\377\377\377' | dd of="$new" bs=1 seek=19622 conv=notrunc status=none
        ;;
    *) echo "unknown file $1" >&2; exit 2 ;;
esac
mv "$new" "$live"
