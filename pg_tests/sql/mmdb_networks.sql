-- mmdb_lookup(ip, database, path): one value of the record; mmdb_networks(database, within):
-- every network of a database with its record, as a table. Known answers from MaxMind's
-- source JSON (pg_tests/fixtures/maxmind/source-data).
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\set decoder :testdata/MaxMind-DB-test-decoder.mmdb
\set v4only :testdata/MaxMind-DB-test-ipv4-24.mmdb
\set anon :testdata/GeoIP2-Anonymous-IP-Test.mmdb
\set databases 'decoder=' :decoder ', v4only=' :v4only ', anon=' :anon
ALTER SYSTEM SET ip_inventory.databases = :'databases';
SELECT pg_reload_conf();
\ir use_test_databases.psql

-- Paths: map keys; array indexes, negative from the end (MaxMind's data path).
SELECT mmdb_lookup('2.125.160.216', 'city', '{country,iso_code}') AS country,
       mmdb_lookup('2.125.160.216', 'city', '{subdivisions,0,iso_code}') AS first_subdivision,
       mmdb_lookup('2.125.160.216', 'city', '{subdivisions,-1,iso_code}') AS last_subdivision,
       mmdb_lookup('2.125.160.216', 'city', '{location}') AS location,
       mmdb_lookup('2.125.160.216', 'city', '{country,iso_code}') #>> '{}' AS as_text;
-- The empty path is the whole record (what mmdb_lookup(ip, database)->'data' holds).
SELECT mmdb_lookup('81.2.69.160', 'city', '{}') = mmdb_lookup('81.2.69.160', 'city')->'data' AS whole_record;
-- Nothing there: NULL (a missing key, an index beyond the array, a path through a string, no
-- record for the address).
SELECT mmdb_lookup('2.125.160.216', 'city', '{no_such_key}') IS NULL AS missing_key,
       mmdb_lookup('2.125.160.216', 'city', '{subdivisions,5}') IS NULL AS beyond_array,
       mmdb_lookup('2.125.160.216', 'city', '{subdivisions,first}') IS NULL AS not_an_index,
       mmdb_lookup('2.125.160.216', 'city', '{country,iso_code,x}') IS NULL AS through_string,
       mmdb_lookup('10.0.0.1', 'city', '{country}') IS NULL AS no_record;
-- Every type of the format at its path, as mmdb_lookup converts it.
SELECT p AS path, mmdb_lookup('1.1.1.1', 'decoder', string_to_array(p, '.')) AS value
FROM unnest(ARRAY['array', 'array.-1', 'boolean', 'bytes', 'double', 'float', 'int32', 'uint128',
                  'uint64', 'utf8_string', 'map.mapX.arrayX.1', 'map.mapX.utf8_stringX']) AS p;
-- The value at a path equals that value of the whole record, for every network of the
-- Anonymous-IP source JSON and each of its keys.
SELECT count(*) AS compared,
       count(*) FILTER (WHERE mmdb_lookup(host(net)::inet, 'anon', ARRAY[k]) IS DISTINCT FROM v) AS mismatches
FROM (SELECT CASE WHEN family(n::cidr) = 6 AND n::cidr <<= '::/96'
                  THEN set_masklen('0.0.0.0'::inet + (host(n::cidr)::inet - '::'::inet), masklen(n::cidr) - 96)::cidr
                  ELSE n::cidr END AS net, rec
      FROM jsonb_array_elements(pg_read_file(:'fixtures' || '/maxmind/source-data/GeoIP2-Anonymous-IP-Test.json')::jsonb) e,
           jsonb_each(e) AS kv(n, rec)) AS src,
     jsonb_each(src.rec) AS f(k, v);
-- Bad arguments.
SELECT try($$SELECT mmdb_lookup('1.1.1.1', 'city', ARRAY['a', NULL])$$) AS null_element;
SELECT try($$SELECT mmdb_lookup('1.1.1.1', 'city', array_fill('a'::text, ARRAY[65]))$$) AS too_long;
SELECT try($$SELECT mmdb_lookup('1.1.1.1', 'nope', '{a}')$$) AS unknown_database;
SELECT mmdb_lookup('1.1.1.1', 'city', NULL) IS NULL AS strict;

-- mmdb_networks: the networks under a prefix, in address order, with their records.
SELECT network, data->'city'->'names'->>'en' AS city, data->'location'->>'accuracy_radius' AS radius
FROM mmdb_networks('city', '81.2.69.0/24');
-- Every network of the ASN database, compared with the source JSON: the same networks (a
-- network may be merged with a neighbour holding the same record) and the same records.
CREATE TEMP TABLE asn_source AS
SELECT CASE WHEN family(n::cidr) = 6 AND n::cidr <<= '::/96'
            THEN set_masklen('0.0.0.0'::inet + (host(n::cidr)::inet - '::'::inet), masklen(n::cidr) - 96)::cidr
            ELSE n::cidr END AS net, rec
FROM jsonb_array_elements(pg_read_file(:'fixtures' || '/maxmind/source-data/GeoLite2-ASN-Test.json')::jsonb) e,
     jsonb_each(e) AS kv(n, rec);
CREATE TEMP TABLE asn_scan AS SELECT * FROM mmdb_networks('asn');
SELECT (SELECT count(*) FROM asn_scan) AS scanned, (SELECT count(*) FROM asn_source) AS listed,
       (SELECT count(*) FROM asn_scan s WHERE NOT EXISTS (
            SELECT 1 FROM asn_source l WHERE s.network >>= l.net AND l.rec = s.data)) AS scanned_not_in_source,
       (SELECT count(*) FROM asn_source l WHERE NOT EXISTS (
            SELECT 1 FROM asn_scan s WHERE s.network >>= l.net AND s.data = l.rec)) AS listed_not_scanned,
       (SELECT count(*) FROM asn_scan WHERE network <<= '2002::/16' OR network <<= '2001::/32' OR network <<= '::ffff:0:0/96') AS aliases;
-- All networks of one AS, ready to become a network list.
SELECT count(*) AS networks, count(*) FILTER (WHERE family(network) = 4) AS ipv4,
       string_agg(network::text, ', ') FILTER (WHERE family(network) = 4) AS ipv4_networks
FROM mmdb_networks('asn') WHERE (data->>'autonomous_system_number')::bigint = 237;
-- Under 6to4 and Teredo: the IPv4 networks as libmaxminddb reaches them, in IPv6 form.
SELECT network, data->'country'->>'iso_code' AS country FROM mmdb_networks('city', '2002:5102:4500::/40');
SELECT count(*) AS teredo_networks FROM mmdb_networks('city', '2001:0:5102:4500::/56');
-- An IPv4-mapped prefix is its IPv4 network; an IPv6 prefix in an IPv4-only database and a
-- prefix without data are empty; inside a network, the network holding it.
SELECT (SELECT count(*) FROM mmdb_networks('city', '::ffff:81.2.69.0/120')) AS mapped,
       (SELECT count(*) FROM mmdb_networks('v4only', '2001:db8::/32')) AS v6_in_v4_db,
       (SELECT count(*) FROM mmdb_networks('city', '10.0.0.0/8')) AS private,
       (SELECT network FROM mmdb_networks('city', '81.2.69.160/30')) AS inside;
-- Streaming: LIMIT stops the scan (rows come one at a time; interrupts are checked per row).
SELECT network FROM mmdb_networks('asn') LIMIT 3;
SELECT try($$SELECT * FROM mmdb_networks(NULL)$$) AS null_database;
SELECT try($$SELECT * FROM mmdb_networks('nope')$$) AS unknown_database;

-- Privileges: mmdb_networks exports a whole database: not granted to PUBLIC. A path needs
-- pg_read_server_files as mmdb_lookup's does.
CREATE ROLE scan_analyst;
CREATE ROLE scan_reader;
GRANT EXECUTE ON FUNCTION mmdb_networks(text, cidr) TO scan_analyst;
SET ROLE scan_reader;
SELECT try($$SELECT count(*) FROM mmdb_networks('asn')$$) AS reader_scan;
SELECT mmdb_lookup('81.2.69.160', 'city', '{country,iso_code}') AS reader_path_lookup;
SELECT try(format('SELECT mmdb_lookup(%L, %L, %L)', '81.2.69.160', :'city', '{country}')) AS reader_by_path;
RESET ROLE;
SET ROLE scan_analyst;
SELECT count(*) AS analyst_scan FROM mmdb_networks('asn');
SELECT try(format('SELECT count(*) FROM mmdb_networks(%L)', :'city')) AS analyst_by_path;
RESET ROLE;
SELECT count(*) > 0 AS superuser_by_path FROM mmdb_networks(:'city');
DROP OWNED BY scan_analyst;
DROP ROLE scan_analyst, scan_reader;
