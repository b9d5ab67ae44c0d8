-- mmdb_lookup(): the whole record of any MaxMind DB file, by configured name or by path;
-- maxmind_verify().
\ir helpers.psql
CREATE EXTENSION ip_inventory;

\set anon :testdata/GeoIP2-Anonymous-IP-Test.mmdb
\set decoder :testdata/MaxMind-DB-test-decoder.mmdb
\set v4only :testdata/MaxMind-DB-test-ipv4-24.mmdb
\set v6test :testdata/MaxMind-DB-test-ipv6-24.mmdb
\set lite_city :testdata/GeoLite2-City-Test.mmdb
\set lite_asn :testdata/GeoLite2-ASN-Test.mmdb
\set databases 'anon=' :anon ', decoder=' :decoder ', v4only=' :v4only
ALTER SYSTEM SET ip_inventory.databases = :'databases';
ALTER SYSTEM SET ip_inventory.city_db = :'lite_city';
ALTER SYSTEM SET ip_inventory.asn_db = :'lite_asn';
SELECT pg_reload_conf();
\c

-- Named databases appear in maxmind_info() after city and asn.
SELECT name, database_type, status FROM maxmind_info();

-- Every type of the format, converted to JSON: bytes as hex, a uint128 beyond JSON's exact
-- range as a decimal string.
SELECT jsonb_pretty(mmdb_lookup('1.1.1.1', 'decoder'));

-- The record of every network of the Anonymous-IP source JSON, exactly.
SELECT count(*) AS networks,
       count(*) FILTER (WHERE mmdb_lookup(host(net)::inet, 'anon')->'data' = rec) AS equal,
       count(*) FILTER (WHERE (mmdb_lookup(host(net)::inet, 'anon')->>'network')::cidr >>= host(net)::inet) AS network_holds_address
FROM (SELECT CASE WHEN family(k::cidr) = 6 AND k::cidr <<= '::/96'
                  THEN set_masklen('0.0.0.0'::inet + (host(k::cidr)::inet - '::'::inet), masklen(k::cidr) - 96)::cidr
                  ELSE k::cidr END AS net, v AS rec
      FROM jsonb_array_elements(pg_read_file(:'fixtures' || '/maxmind/source-data/GeoIP2-Anonymous-IP-Test.json')::jsonb) e,
           jsonb_each(e) AS kv(k, v)) AS src;

-- The MaxMind slots by name; the matched network comes with the record.
SELECT mmdb_lookup('81.2.69.160', 'city')->>'network' AS network,
       mmdb_lookup('81.2.69.160', 'city')->'data'->'city'->'names'->>'en' AS city,
       mmdb_lookup('89.160.20.128', 'asn') AS asn_record;

-- No record: NULL. An IPv6 address in an IPv4-only database: NULL.
SELECT mmdb_lookup('10.0.0.1', 'anon') IS NULL AS private_not_in_db,
       mmdb_lookup('1.1.1.1', 'v4only') IS NOT NULL AS v4_found,
       mmdb_lookup('2001:db8::1', 'v4only') IS NULL AS v6_in_v4_db;

-- Unlike the MaxMind functions, any address is looked up: a custom database may describe
-- reserved or private space (this test database holds ::1:ffff:ffff).
SELECT ip_class('::1:ffff:ffff') AS class, mmdb_lookup('::1:ffff:ffff', :'v6test') AS record;

-- Unknown names are errors that list what is configured.
SELECT try($$SELECT mmdb_lookup('1.1.1.1', 'nope')$$);
SELECT try($$SELECT mmdb_lookup('1.1.1.1', 'relative/path.mmdb')$$);

-- A path reads server files: superusers and pg_read_server_files members only.
CREATE ROLE ipi_analyst;
CREATE ROLE ipi_loader IN ROLE pg_read_server_files;
GRANT EXECUTE ON FUNCTION maxmind_verify(text, text) TO ipi_analyst, ipi_loader;
SET ROLE ipi_analyst;
SELECT mmdb_lookup('1.1.1.1', 'decoder')->'data'->>'utf8_string' AS named_ok;
SELECT try(format('SELECT mmdb_lookup(%L, %L)', '1.1.1.1', :'decoder'));
SELECT try(format('SELECT maxmind_verify(%L)', :'decoder'));
RESET ROLE;
SET ROLE ipi_loader;
SELECT mmdb_lookup('1.1.1.1', :'decoder')->'data'->>'uint16' AS path_ok;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION maxmind_verify(text, text) FROM ipi_analyst, ipi_loader;
DROP ROLE ipi_analyst;
DROP ROLE ipi_loader;

-- maxmind_verify(): full verification without installing; kind checks the type.
SELECT maxmind_verify(:'lite_city', 'city') - 'path' AS verified;
SELECT try(format('SELECT maxmind_verify(%L, %L)', :'lite_asn', 'city'));
SELECT try(format('SELECT maxmind_verify(%L, %L)', :'lite_asn', 'geo'));
-- A file MaxMind's verifier refuses only for its empty metadata description (other vendors'
-- files may lack one) is walked node by node and record by record instead: sound, accepted.
-- A broken one is refused.
SELECT try(format('SELECT maxmind_verify(%L)', :'fixtures' || '/maxmind/bad-data/libmaxminddb/libmaxminddb-corrupt-search-tree.mmdb'));
SELECT try(format('SELECT maxmind_verify(%L)', :'fixtures' || '/maxmind/test-data/MaxMind-DB-test-broken-pointers-24.mmdb'));
