-- Every network of MaxMind's source JSON, checked through enrich_ip(): the first and last
-- address of each listed network must carry the record of the most specific listed network
-- containing it. Expected answers come from the JSON only.
\ir helpers.psql
CREATE EXTENSION ip_inventory;

-- Loads a source JSON into (net, rec); IPv4 networks written in IPv4-compatible form
-- (::a.b.c.d/N) become IPv4 networks, which is where the database keeps them.
CREATE FUNCTION load_source(path text) RETURNS TABLE (net cidr, rec jsonb) LANGUAGE sql AS $$
    SELECT CASE WHEN family(k::cidr) = 6 AND masklen(k::cidr) >= 96 AND k::cidr <<= '::/96'
                THEN set_masklen('0.0.0.0'::inet + (host(k::cidr)::inet - '::'::inet),
                                 masklen(k::cidr) - 96)::cidr
                ELSE k::cidr END,
           v
    FROM jsonb_array_elements(pg_read_file(path)::jsonb) AS e, jsonb_each(e) AS kv(k, v)
$$;

-- The probes of a source: each listed network's first and last address, with the record the
-- database must return for it.
CREATE FUNCTION probes(path text) RETURNS TABLE (ip inet, rec jsonb) LANGUAGE sql AS $$
    WITH src AS (SELECT * FROM load_source(path))
    SELECT p.ip, (SELECT s.rec FROM src s WHERE s.net >>= p.ip ORDER BY masklen(s.net) DESC LIMIT 1)
    FROM (SELECT host(net)::inet AS ip FROM src
          UNION SELECT host(broadcast(net))::inet FROM src) AS p
$$;

-- A City probe whose enrich_ip() answer differs from the source record.
CREATE FUNCTION city_mismatch(e ip_enrichment, ip inet, rec jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT e.country_code IS DISTINCT FROM rec->'country'->>'iso_code'
        OR e.country_name IS DISTINCT FROM rec->'country'->'names'->>'en'
        OR e.continent_code IS DISTINCT FROM rec->'continent'->>'code'
        OR e.registered_country_code IS DISTINCT FROM rec->'registered_country'->>'iso_code'
        OR e.subdivision_code IS DISTINCT FROM rec->'subdivisions'->0->>'iso_code'
        OR e.subdivision_name IS DISTINCT FROM rec->'subdivisions'->0->'names'->>'en'
        OR e.city IS DISTINCT FROM rec->'city'->'names'->>'en'
        OR e.postal_code IS DISTINCT FROM rec->'postal'->>'code'
        OR e.latitude IS DISTINCT FROM (rec->'location'->>'latitude')::float8
        OR e.longitude IS DISTINCT FROM (rec->'location'->>'longitude')::float8
        OR e.accuracy_radius IS DISTINCT FROM (rec->'location'->>'accuracy_radius')::int
        OR e.time_zone IS DISTINCT FROM rec->'location'->>'time_zone'
        OR e.is_anycast IS DISTINCT FROM (rec->'traits'->>'is_anycast')::boolean
        OR e.is_anonymous_proxy IS DISTINCT FROM (rec->'traits'->>'is_anonymous_proxy')::boolean
        OR e.is_satellite_provider IS DISTINCT FROM (rec->'traits'->>'is_satellite_provider')::boolean
        OR e.network IS NULL OR NOT e.network >>= ip
$$;

CREATE FUNCTION asn_mismatch(e ip_enrichment, ip inet, rec jsonb) RETURNS boolean LANGUAGE sql AS $$
    SELECT e.asn IS DISTINCT FROM (rec->>'autonomous_system_number')::bigint
        OR e.asn_org IS DISTINCT FROM rec->>'autonomous_system_organization'
        OR e.asn_network IS NULL OR NOT e.asn_network >>= ip
$$;

\set lite_city :testdata/GeoLite2-City-Test.mmdb
\set geoip2_city :testdata/GeoIP2-City-Test.mmdb
\set lite_asn :testdata/GeoLite2-ASN-Test.mmdb
\set lite_city_json :fixtures/maxmind/source-data/GeoLite2-City-Test.json
\set geoip2_city_json :fixtures/maxmind/source-data/GeoIP2-City-Test.json
\set lite_asn_json :fixtures/maxmind/source-data/GeoLite2-ASN-Test.json

ALTER SYSTEM SET ip_inventory.city_db = :'lite_city';
ALTER SYSTEM SET ip_inventory.asn_db = :'lite_asn';
SELECT pg_reload_conf();
\c

-- GeoLite2-City-Test: public probes checked, mismatches (must be 0), and non-public probes
-- that were looked up anyway (must be 0).
SELECT count(*) AS probes,
       count(*) FILTER (WHERE e.ip_class = 'public') AS public_checked,
       count(*) FILTER (WHERE e.ip_class = 'public' AND city_mismatch(e, p.ip, p.rec)) AS mismatches,
       count(*) FILTER (WHERE e.ip_class <> 'public' AND e.maxmind_build IS NOT NULL) AS non_public_looked_up
FROM probes(:'lite_city_json') AS p, LATERAL enrich_ip(p.ip) AS e;
SELECT p.ip, e.country_code, e.city, e.network FROM probes(:'lite_city_json') AS p,
       LATERAL enrich_ip(p.ip) AS e WHERE e.ip_class = 'public' AND city_mismatch(e, p.ip, p.rec) LIMIT 5;

-- The scalar accessor agrees with enrich_ip on every probe.
SELECT count(*) FILTER (WHERE ip_country(p.ip) IS DISTINCT FROM e.country_code) AS accessor_disagrees
FROM probes(:'lite_city_json') AS p, LATERAL enrich_ip(p.ip) AS e;

-- GeoLite2-ASN-Test.
SELECT count(*) AS probes,
       count(*) FILTER (WHERE e.ip_class = 'public') AS public_checked,
       count(*) FILTER (WHERE e.ip_class = 'public' AND asn_mismatch(e, p.ip, p.rec)) AS mismatches,
       count(*) FILTER (WHERE ip_asn(p.ip) IS DISTINCT FROM e.asn) AS accessor_disagrees,
       count(*) FILTER (WHERE ip_asn_org(p.ip) IS DISTINCT FROM e.asn_org) AS org_accessor_disagrees
FROM probes(:'lite_asn_json') AS p, LATERAL enrich_ip(p.ip) AS e;
SELECT p.ip, e.asn, e.asn_org, e.asn_network FROM probes(:'lite_asn_json') AS p,
       LATERAL enrich_ip(p.ip) AS e WHERE e.ip_class = 'public' AND asn_mismatch(e, p.ip, p.rec) LIMIT 5;

-- GeoIP2-City-Test (the commercial layout, with traits).
ALTER SYSTEM SET ip_inventory.city_db = :'geoip2_city';
SELECT pg_reload_conf();
\c
SELECT count(*) AS probes,
       count(*) FILTER (WHERE e.ip_class = 'public') AS public_checked,
       count(*) FILTER (WHERE e.ip_class = 'public' AND city_mismatch(e, p.ip, p.rec)) AS mismatches,
       count(*) FILTER (WHERE e.is_anycast) AS anycast_probes
FROM probes(:'geoip2_city_json') AS p, LATERAL enrich_ip(p.ip) AS e;
SELECT p.ip, e.country_code, e.city, e.network FROM probes(:'geoip2_city_json') AS p,
       LATERAL enrich_ip(p.ip) AS e WHERE e.ip_class = 'public' AND city_mismatch(e, p.ip, p.rec) LIMIT 5;

-- Names in every language the source lists: the source's name in that language, or the
-- English one where the source has none in that language (Gibraltar lacks zh-CN).
SELECT lang, count(*) AS checked,
       count(*) FILTER (WHERE rec->'country'->'names' ? lang) AS in_that_language,
       count(*) FILTER (WHERE name IS DISTINCT FROM coalesce(rec->'country'->'names'->>lang,
                                                              rec->'country'->'names'->>'en')) AS mismatches
FROM (SELECT DISTINCT jsonb_object_keys(rec->'country'->'names') AS lang
      FROM probes(:'geoip2_city_json') WHERE rec ? 'country') AS langs,
     LATERAL (SELECT p.rec, (SELECT set_config('ip_inventory.language', lang, true)) AS set,
                     (enrich_ip(p.ip)).country_name AS name
              FROM probes(:'geoip2_city_json') AS p WHERE p.rec ? 'country' AND ip_class(p.ip) = 'public') AS x
GROUP BY lang ORDER BY lang;
