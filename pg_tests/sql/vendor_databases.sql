-- Other vendors' free databases as City and ASN sources: DB-IP Lite (MaxMind's layout) and
-- IPinfo Lite (a flat layout), mapped onto enrich_ip's fields by the database's type. The
-- files are small ones in those layouts (pg_tests/fixtures/vendors, written by
-- make_vendor_dbs.py from the JSON beside them): the first and last address of every network
-- must answer exactly what its source JSON says, through enrich_ip, the accessors and
-- mmdb_lookup. Then IPinfo Lite's hostile AS values, one file in both slots, wrong slots.
\ir helpers.psql
CREATE EXTENSION ip_inventory;

\set vendors :fixtures/vendors
\set dbip_city :vendors/dbip-city-lite-test.mmdb
\set dbip_country :vendors/dbip-country-lite-test.mmdb
\set dbip_asn :vendors/dbip-asn-lite-test.mmdb
\set ipinfo :vendors/ipinfo-lite-test.mmdb
\set dbip_city_json :vendors/dbip-city-lite-test.json
\set dbip_country_json :vendors/dbip-country-lite-test.json
\set dbip_asn_json :vendors/dbip-asn-lite-test.json
\set ipinfo_json :vendors/ipinfo-lite-test.json

-- A source JSON as (net, rec), and its probes: each network's first and last address with
-- the record of the most specific network holding it.
CREATE FUNCTION load_source(path text) RETURNS TABLE (net cidr, rec jsonb) LANGUAGE sql AS $$
    SELECT k::cidr, v FROM jsonb_array_elements(pg_read_file(path)::jsonb) AS e, jsonb_each(e) AS kv(k, v)
$$;
CREATE FUNCTION probes(path text) RETURNS TABLE (ip inet, net cidr, rec jsonb) LANGUAGE sql AS $$
    WITH src AS (SELECT * FROM load_source(path))
    SELECT p.ip, s.net, s.rec
    FROM (SELECT host(net)::inet AS ip FROM src UNION SELECT host(broadcast(net))::inet FROM src) AS p,
         LATERAL (SELECT * FROM src WHERE src.net >>= p.ip ORDER BY masklen(src.net) DESC LIMIT 1) AS s
$$;
-- The source's strings as a reader answers them: control characters as U+FFFD.
CREATE FUNCTION cleaned(t text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(t, '[\x01-\x1f\x7f-\x9f]', U&'\FFFD', 'g') $$;
CREATE FUNCTION cleaned(j jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT regexp_replace(j::text, '\\u00(0[1-9a-f]|1[0-9a-f]|7f|[89][0-9a-f])', '\\ufffd', 'gi')::jsonb $$;
-- One counter of ip_inventory_stats.
CREATE FUNCTION stat(src text, m text) RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(sum(value), 0)::bigint FROM ip_inventory_stats WHERE source = src AND metric = m $$;

-- A probe whose answers differ from a DB-IP Lite City/Country record (MaxMind's layout,
-- without registered country, postal code, time zone or accuracy radius).
CREATE FUNCTION dbip_city_mismatch(e ip_enrichment, p_ip inet, p_net cidr, p_rec jsonb) RETURNS boolean
LANGUAGE sql AS $$
    SELECT e.country_code IS DISTINCT FROM p_rec->'country'->>'iso_code'
        OR e.country_name IS DISTINCT FROM p_rec->'country'->'names'->>'en'
        OR e.continent_code IS DISTINCT FROM p_rec->'continent'->>'code'
        OR e.subdivision_name IS DISTINCT FROM p_rec->'subdivisions'->0->'names'->>'en'
        OR e.city IS DISTINCT FROM p_rec->'city'->'names'->>'en'
        OR e.latitude IS DISTINCT FROM (p_rec->'location'->>'latitude')::float8
        OR e.longitude IS DISTINCT FROM (p_rec->'location'->>'longitude')::float8
        OR num_nonnulls(e.registered_country_code, e.subdivision_code, e.postal_code, e.time_zone,
                        e.accuracy_radius) > 0
        OR e.network IS DISTINCT FROM p_net
        OR ip_country(p_ip) IS DISTINCT FROM e.country_code
        OR mmdb_lookup(p_ip, 'city') IS DISTINCT FROM jsonb_build_object('network', p_net, 'data', p_rec)
$$;

-- DB-IP City Lite and ASN Lite in the City and ASN slots.
ALTER SYSTEM SET ip_inventory.city_db = :'dbip_city';
ALTER SYSTEM SET ip_inventory.asn_db = :'dbip_asn';
SELECT pg_reload_conf();
\c
SELECT name, database_type, status FROM maxmind_info() ORDER BY name;
-- 185.199.108.0/22 carries names of 600 to 850 bytes (multibyte among them): more than an
-- enrich_ip row holds in place (ROW_BYTES in src/mmdb/lookup.rs), so its last values are
-- allocated apart, and must answer the same.
SELECT count(*) AS probes, count(*) FILTER (WHERE dbip_city_mismatch(e, p.ip, p.net, p.rec)) AS mismatches
FROM probes(:'dbip_city_json') AS p, LATERAL enrich_ip(p.ip) AS e;
SELECT count(*) AS probes,
       count(*) FILTER (WHERE e.asn IS DISTINCT FROM (p.rec->>'autonomous_system_number')::bigint
                           OR e.asn_org IS DISTINCT FROM p.rec->>'autonomous_system_organization'
                           OR e.asn_network IS DISTINCT FROM p.net
                           OR ip_asn(p.ip) IS DISTINCT FROM e.asn
                           OR ip_asn_org(p.ip) IS DISTINCT FROM e.asn_org
                           OR mmdb_lookup(p.ip, 'asn') IS DISTINCT FROM
                              jsonb_build_object('network', p.net, 'data', p.rec)) AS mismatches
FROM probes(:'dbip_asn_json') AS p, LATERAL enrich_ip(p.ip) AS e;
SELECT e.country_code, e.country_name, e.city, e.subdivision_name, e.latitude, e.asn, e.asn_org
FROM enrich_ip('5.9.1.2') AS e;
-- Names in another language where the record has them (DB-IP Lite carries a few).
SET ip_inventory.language = 'de';
SELECT e.country_name, e.city, e.subdivision_name FROM enrich_ip('8.8.8.8') AS e;
RESET ip_inventory.language;

-- DB-IP Country Lite in the City slot.
ALTER SYSTEM SET ip_inventory.city_db = :'dbip_country';
SELECT pg_reload_conf();
\c
SELECT count(*) AS probes, count(*) FILTER (WHERE dbip_city_mismatch(e, p.ip, p.net, p.rec)) AS mismatches
FROM probes(:'dbip_country_json') AS p, LATERAL enrich_ip(p.ip) AS e;

-- IPinfo Lite: one file answers country and AS, so it fills both slots.
ALTER SYSTEM SET ip_inventory.city_db = :'ipinfo';
ALTER SYSTEM SET ip_inventory.asn_db = :'ipinfo';
SELECT pg_reload_conf();
\c
SELECT name, database_type, status FROM maxmind_info() ORDER BY name;
-- The AS an IPinfo record names: "AS<number>" within 32 bits, else NULL.
CREATE FUNCTION ipinfo_asn(t text) RETURNS bigint LANGUAGE sql AS $$
    SELECT CASE WHEN t ~ '^AS[0-9]{1,10}$' AND substr(t, 3)::bigint <= 4294967295
                THEN substr(t, 3)::bigint END $$;
SELECT count(*) AS probes,
       count(*) FILTER (WHERE
              e.country_code IS DISTINCT FROM p.rec->>'country_code'
           OR e.country_name IS DISTINCT FROM p.rec->>'country'
           OR e.continent_code IS DISTINCT FROM p.rec->>'continent_code'
           OR num_nonnulls(e.registered_country_code, e.subdivision_code, e.subdivision_name, e.city,
                           e.postal_code, e.latitude, e.longitude, e.accuracy_radius, e.time_zone) > 0
           OR e.network IS DISTINCT FROM p.net
           OR e.asn IS DISTINCT FROM ipinfo_asn(p.rec->>'asn')
           OR e.asn_org IS DISTINCT FROM cleaned(p.rec->>'as_name')
           OR e.asn_network IS DISTINCT FROM p.net
           OR ip_country(p.ip) IS DISTINCT FROM e.country_code
           OR ip_asn(p.ip) IS DISTINCT FROM e.asn
           OR ip_asn_org(p.ip) IS DISTINCT FROM e.asn_org
           OR mmdb_lookup(p.ip, 'city') IS DISTINCT FROM jsonb_build_object('network', p.net, 'data', cleaned(p.rec))
           OR mmdb_lookup(p.ip, 'asn') IS DISTINCT FROM mmdb_lookup(p.ip, 'city')) AS mismatches
FROM probes(:'ipinfo_json') AS p, LATERAL enrich_ip(p.ip) AS e;
-- Each network's answers, the hostile ones last: an AS that is no AS number is NULL (and
-- counted), a control character in a name is U+FFFD, a record without AS has none.
SELECT p.net, e.country_code, e.country_name, e.continent_code, e.asn, e.asn_org, p.rec->>'asn' AS source_asn
FROM probes(:'ipinfo_json') AS p, LATERAL enrich_ip(p.ip) AS e
WHERE p.ip = host(p.net)::inet ORDER BY p.net;
SELECT mmdb_lookup('45.0.0.1', 'asn') -> 'data' ->> 'as_name' = U&'Bad\FFFDName' AS json_name_cleaned;

-- Malformed AS values are counted (maxmind / bad_values), once per lookup that meets one
-- (counts reach the shared counters at the end of each transaction).
SELECT ip_inventory_stats_reset() IS NOT NULL AS reset;
SELECT ip_asn('45.0.0.1') AS xyz, ip_asn('45.0.1.1') AS too_big, ip_asn('45.0.2.1') AS no_prefix,
       ip_asn('45.0.3.1') AS no_as, ip_asn('8.8.8.8') AS google;
SELECT (enrich_ip('45.0.0.1')).asn AS enrich_xyz;
SELECT stat('maxmind', 'bad_values') AS bad_values;

-- Slots that do not take these files, by their type.
ALTER SYSTEM SET ip_inventory.asn_db = :'dbip_city';
ALTER SYSTEM SET ip_inventory.anonymous_db = :'ipinfo';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT ip_asn('8.8.8.8')$$) AS dbip_city_as_asn;
SELECT try($$SELECT ip_anonymous('8.8.8.8')$$) AS ipinfo_as_anonymous;
ALTER SYSTEM RESET ip_inventory.asn_db;
ALTER SYSTEM RESET ip_inventory.anonymous_db;
ALTER SYSTEM RESET ip_inventory.city_db;
SELECT pg_reload_conf();

-- ip_inventory.maxmind_dir finds vendors' files by their published names, after MaxMind's
-- (docs/maxmind.md, "Configure"): IPinfo Lite alone fills both slots; DB-IP's files come
-- before it, the newest dated name first.
\! mkdir -p "$IPI_SCRATCH/vendors-dir" && cp "$IPI_FIXTURES/vendors/ipinfo-lite-test.mmdb" "$IPI_SCRATCH/vendors-dir/ipinfo_lite.mmdb"
\set vdir :scratch/vendors-dir
ALTER SYSTEM SET ip_inventory.maxmind_dir = :'vdir';
SELECT pg_reload_conf();
\c
SELECT name, replace(path, :'vdir', 'DIR') AS path, database_type, status FROM maxmind_info() ORDER BY name;
SELECT ip_country('1.1.1.1') AS country, (enrich_ip('1.1.1.1')).city, ip_asn('1.1.1.1') AS asn;
-- Two months of DB-IP City Lite (the newer one holds the Country Lite test data, so that the
-- answers tell them apart) and one of ASN Lite; a new session lists the directory again.
\! cd "$IPI_SCRATCH/vendors-dir" && cp "$IPI_FIXTURES/vendors/dbip-city-lite-test.mmdb" dbip-city-lite-2026-10.mmdb && cp "$IPI_FIXTURES/vendors/dbip-country-lite-test.mmdb" dbip-city-lite-2026-11.mmdb && cp "$IPI_FIXTURES/vendors/dbip-asn-lite-test.mmdb" dbip-asn-lite-2026-11.mmdb
\c
SELECT name, replace(path, :'vdir', 'DIR') AS path, database_type, status FROM maxmind_info() ORDER BY name;
SELECT ip_country('1.1.1.1') AS country, (enrich_ip('1.1.1.1')).city, ip_asn('1.1.1.1') AS asn;
-- MaxMind's name wins over both.
\! cp "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" "$IPI_SCRATCH/vendors-dir/GeoLite2-City.mmdb"
\c
SELECT name, replace(path, :'vdir', 'DIR') AS path, database_type FROM maxmind_info() WHERE name = 'city';
ALTER SYSTEM RESET ip_inventory.maxmind_dir;
SELECT pg_reload_conf();
