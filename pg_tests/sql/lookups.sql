-- MaxMind lookups: enrich_ip, the scalar accessors, settings, maxmind_info, maxmind_age.
\ir helpers.psql
CREATE EXTENSION ip_inventory;

-- Nothing configured: private addresses still classify, lookups say what to set.
SELECT * FROM enrich_ip('10.1.2.3');
SELECT try($$SELECT enrich_ip('81.2.69.160')$$);
SELECT try($$SELECT ip_country('81.2.69.160')$$);
SELECT try($$SELECT ip_asn('81.2.69.160')$$);
SELECT try($$SELECT maxmind_age()$$);
SELECT name, path, status, error FROM maxmind_info();

-- A directory holding GeoLite2-City.mmdb and GeoLite2-ASN.mmdb.
\! mkdir -p "$IPI_SCRATCH/geoip" && cp "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" "$IPI_SCRATCH/geoip/GeoLite2-City.mmdb" && cp "$IPI_FIXTURES/maxmind/test-data/GeoLite2-ASN-Test.mmdb" "$IPI_SCRATCH/geoip/GeoLite2-ASN.mmdb"
\set geoip :scratch/geoip
ALTER SYSTEM SET ip_inventory.maxmind_dir = :'geoip';
SELECT pg_reload_conf();
\c

-- Verified copies of the files (in the store under the data directory) are mapped by each
-- backend on its first lookup, never by the postmaster; the operator's files never are.
CREATE FUNCTION mappings(pid int, pattern text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM regexp_split_to_table(pg_read_file('/proc/' || pid || '/maps'), E'\n') AS l
    WHERE l LIKE pattern
$$;
SELECT mappings(pg_backend_pid(), '%/ip_inventory/%.mmdb') AS backend_before_lookup;
SELECT ip_country('81.2.69.160');
SELECT mappings(pg_backend_pid(), '%/ip_inventory/%.mmdb') AS backend_after_lookup,
       mappings(split_part(pg_read_file('postmaster.pid'), E'\n', 1)::int, '%/ip_inventory/%.mmdb') AS postmaster,
       mappings(pg_backend_pid(), '%/geoip/GeoLite2-%.mmdb') AS operators_file;

-- Every field, for a London address (values as in source-data/GeoLite2-City-Test.json).
\x on
SELECT * FROM enrich_ip('81.2.69.160');
-- IPv6, and an address the ASN database knows.
SELECT * FROM enrich_ip('2001:218::1');
SELECT * FROM enrich_ip('89.160.20.128');
\x off

-- The accessors; IPv4-mapped IPv6 is looked up as IPv4; a netmask is ignored (the address
-- is looked up); unknown addresses give NULL; non-public ones are never looked up.
SELECT ip, ip_class(ip), ip_country(ip), ip_asn(ip), ip_asn_org(ip)
FROM (VALUES (inet '81.2.69.160'), ('::ffff:81.2.69.160'), ('81.2.69.160/8'), ('89.160.20.128'),
             ('::ffff:89.160.20.128'), ('216.160.83.56'), ('2001:218::1'), ('2a02:cf40::1'),
             ('1.2.3.4'), ('10.0.0.1'), ('127.0.0.1'), ('::1'), ('192.0.2.1')) AS v(ip);

-- A non-public address carries only its class, even with databases configured.
SELECT * FROM enrich_ip('192.168.1.1');
SELECT * FROM enrich_ip('::ffff:10.0.0.1');

-- The way to enrich a table: one call per row with LATERAL.
CREATE TABLE events (src_ip inet);
INSERT INTO events VALUES ('81.2.69.160'), ('89.160.20.128'), ('10.9.9.9'), (NULL), ('2001:218::1');
SELECT ev.src_ip, e.ip_class, e.country_code, e.city, e.asn, e.network, e.asn_network
FROM events ev LEFT JOIN LATERAL enrich_ip(ev.src_ip) e ON true ORDER BY 1;

-- In parallel workers (all lookup functions are PARALLEL SAFE): same answers as serially.
CREATE TABLE many AS SELECT ('81.2.69.' || (i % 256))::inet AS ip FROM generate_series(1, 20000) AS i
UNION ALL SELECT ('89.160.20.' || (i % 256))::inet FROM generate_series(1, 20000) AS i;
ANALYZE many;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT e.country_code, count(*) FROM many, LATERAL enrich_ip(many.ip) AS e GROUP BY 1;
CREATE TABLE parallel_answers AS
SELECT e.country_code, e.city, e.asn, count(*) AS n FROM many, LATERAL enrich_ip(many.ip) AS e GROUP BY 1, 2, 3;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT e.country_code, e.city, e.asn, count(*) AS n,
       count(*) = (SELECT p.n FROM parallel_answers p WHERE p.country_code IS NOT DISTINCT FROM e.country_code
                   AND p.city IS NOT DISTINCT FROM e.city AND p.asn IS NOT DISTINCT FROM e.asn) AS same_in_parallel
FROM many, LATERAL enrich_ip(many.ip) AS e GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
RESET ALL;

-- Names follow ip_inventory.language and fall back to English where a name is missing.
SET ip_inventory.language = 'de';
SELECT country_name, subdivision_name, city FROM enrich_ip('81.2.69.160');
SET ip_inventory.language = 'ja';
SELECT country_name, city FROM enrich_ip('89.160.20.128');
SET ip_inventory.language = 'xx';
SELECT country_name FROM enrich_ip('81.2.69.160');
SET ip_inventory.language = 'en; DROP TABLE x';
RESET ip_inventory.language;
SELECT country_name FROM enrich_ip('81.2.69.160');

-- Settings are checked when set.
ALTER SYSTEM SET ip_inventory.city_db = 'relative/GeoLite2-City.mmdb';
ALTER SYSTEM SET ip_inventory.databases = 'city=/srv/x.mmdb';
-- (ALTER SYSTEM cannot run in try(): the message is read from psql, with PostgreSQL 18's
-- units in the range, "(-1 s .. 86400 s)", reduced to 15's "(-1 .. 86400)".)
\set VERBOSITY sqlstate
ALTER SYSTEM SET ip_inventory.file_check_interval = -2;
\set VERBOSITY default
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '\((-?\d+) [a-z]+ \.\. (-?\d+) [a-z]+\)$', '(\1 .. \2)') AS file_check_interval_refused;
-- Paths are server-wide settings (postgresql.conf, ALTER SYSTEM), not per session.
SET ip_inventory.city_db = '/x.mmdb';

-- What is in service. Age is measured from the databases' build_epoch, not file times.
SELECT name, path, database_type, build_time, ip_version, node_count, record_size, file_size,
       languages, status, error
FROM maxmind_info();
SELECT maxmind_age() = (SELECT now() - min(build_time) FROM maxmind_info()) AS age_from_build_epoch,
       maxmind_age() > interval '0' AS positive,
       (SELECT bool_and(age = now() - build_time) FROM maxmind_info()) AS info_age_consistent;

-- An explicit path takes precedence over the directory.
\set geoip2_city :testdata/GeoIP2-City-Test.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'geoip2_city';
SELECT pg_reload_conf();
\c
SELECT name, path, database_type FROM maxmind_info();
SELECT ip_country('149.101.100.0') AS geoip2_only_country;

-- _ip_inventory_maxmind_json (enrichment->'maxmind' of inventory rows) equals the SQL it
-- replaced, nullif(jsonb_strip_nulls(jsonb_build_object(...)), '{}'), as text and as jsonb:
-- for the first address of every network of the City database, and for made-up values
-- (all NULL, empty and non-ASCII strings, quotes and newlines, the extreme radii).
CREATE TEMP TABLE json_cases AS
SELECT e.continent_code, e.registered_country_code, e.subdivision_code, e.postal_code,
       e.accuracy_radius, e.time_zone, e.is_anonymous_proxy, e.is_satellite_provider, e.is_anycast
FROM mmdb_networks('city') AS n, LATERAL enrich_ip(host(n.network)::inet) AS e
UNION ALL
VALUES (NULL::text, NULL::text, NULL::text, NULL::text, NULL::int, NULL::text, NULL::boolean, NULL::boolean, NULL::boolean),
       ('', 'ÄÖ', E'é"\\', E'a\nb', 0, 'Europe/Zürich', false, true, false),
       (NULL, NULL, NULL, NULL, -2147483648, NULL, NULL, NULL, true),
       ('EU', NULL, NULL, NULL, 2147483647, NULL, NULL, NULL, NULL);
SELECT count(*) AS cases, count(native) AS objects,
       count(*) FILTER (WHERE native::text IS DISTINCT FROM by_sql::text OR native IS DISTINCT FROM by_sql) AS differ
FROM (SELECT _ip_inventory_maxmind_json(c.continent_code, c.registered_country_code, c.subdivision_code,
             c.postal_code, c.accuracy_radius, c.time_zone, c.is_anonymous_proxy, c.is_satellite_provider,
             c.is_anycast) AS native,
             nullif(jsonb_strip_nulls(jsonb_build_object(
                 'continent_code', c.continent_code, 'registered_country_code', c.registered_country_code,
                 'subdivision_code', c.subdivision_code, 'postal_code', c.postal_code,
                 'accuracy_radius', c.accuracy_radius, 'time_zone', c.time_zone,
                 'is_anonymous_proxy', c.is_anonymous_proxy, 'is_satellite_provider', c.is_satellite_provider,
                 'is_anycast', c.is_anycast)), '{}') AS by_sql
      FROM json_cases AS c) AS s;
SELECT _ip_inventory_maxmind_json('', 'ÄÖ', E'é"\\', E'a\nb', 0, 'Europe/Zürich', false, true, false) AS made_up;
