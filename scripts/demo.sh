#!/usr/bin/env bash
# The demo: builds and installs ip_inventory, starts a throwaway PostgreSQL cluster (15, or 18
# with PG=18) under a temporary directory (as the `postgres` user when run as root), points it at the bundled
# MaxMind test databases (or at IPI_MAXMIND_DIR, a directory with real GeoLite2 files), and
# prints enrichment of a handful of addresses and maxmind_info(). Removes everything after.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster.sh
. "$ROOT/scripts/cluster.sh"
IPI_LOG_TAG=demo

[ -n "${IPI_SKIP_INSTALL:-}" ] || ipi_install "$ROOT"

DEMO_DIR=$(mktemp -d /tmp/ipi_demo.XXXXXX)
chmod 755 "$DEMO_DIR"
trap 'ipi_cluster_stop; rm -rf "$DEMO_DIR"' EXIT

if [ -n "${IPI_MAXMIND_DIR:-}" ]; then
    # Configure each slot whose file is there (a directory setting would make a missing ASN
    # file an error, which is right in production but not what a demo wants).
    settings=()
    for f in GeoIP2-City GeoLite2-City; do
        [ -f "$IPI_MAXMIND_DIR/$f.mmdb" ] && { settings+=("ip_inventory.city_db = '$IPI_MAXMIND_DIR/$f.mmdb'"); break; }
    done
    for f in GeoIP2-ISP GeoLite2-ASN; do
        [ -f "$IPI_MAXMIND_DIR/$f.mmdb" ] && { settings+=("ip_inventory.asn_db = '$IPI_MAXMIND_DIR/$f.mmdb'"); break; }
    done
    ipi_log "using the databases in $IPI_MAXMIND_DIR: ${settings[*]}"
else
    data=$(ipi_copy_fixtures "$ROOT" "$DEMO_DIR/fixtures")/maxmind/test-data
    # GeoIP2-City-Test is the richer of the two City test databases (it has traits).
    settings=("ip_inventory.city_db = '$data/GeoIP2-City-Test.mmdb'"
              "ip_inventory.asn_db = '$data/GeoLite2-ASN-Test.mmdb'")
    ipi_log "using MaxMind's bundled test databases (small synthetic data, not GeoLite2)"
fi
ipi_cluster_start "$DEMO_DIR/cluster" "shared_preload_libraries = 'ip_inventory'" "${settings[@]}"
ipi_log "cluster running in $DEMO_DIR (port $IPI_PORT)"

ipi_psql -d postgres <<'SQL'
\pset footer off
CREATE EXTENSION ip_inventory;
\echo
\echo '== enrich_ip() for a handful of addresses (FROM t, LATERAL enrich_ip(t.ip) e)'
SELECT t.ip, e.ip_class, e.country_code AS cc, e.country_name, e.subdivision_name AS region,
       e.city, e.latitude AS lat, e.longitude AS lon, e.time_zone, e.network,
       e.asn, e.asn_org, e.asn_network
FROM (VALUES (inet '81.2.69.160'), ('216.160.83.56'), ('89.160.20.128'), ('::ffff:175.16.199.1'),
             ('2001:218::1'), ('8.8.8.8'), ('10.1.2.3'), ('100.64.7.7'), ('192.0.2.10')) AS t(ip),
     LATERAL enrich_ip(t.ip) AS e;
\echo
\echo '== the whole composite for one address'
\x on
SELECT * FROM enrich_ip('81.2.69.160');
\x off
\echo
\echo '== hot-path accessors'
SELECT ip_country('216.160.83.56') AS ip_country, ip_asn('216.160.83.56') AS ip_asn,
       ip_class('198.51.100.1') AS ip_class;
\echo
\echo '== maxmind_info() and maxmind_age()'
SELECT name, database_type, build_time, age, ip_version, node_count, file_size, generation, status
FROM maxmind_info();
SELECT maxmind_age();
SQL
ipi_log "done; the cluster is stopped and removed"
