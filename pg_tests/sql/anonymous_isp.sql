-- ip_anonymous(), ip_isp(), ip_connection_type(): every network of MaxMind's source JSON
-- checked through the typed accessors (Anonymous-IP, Anonymous Plus, ISP, Connection-Type,
-- and Enterprise serving all three), the first and last address of each listed network must
-- carry the record of the most specific listed network containing it. Expected answers come
-- from the JSON only. Then the slots' configuration, errors and privileges.
\ir helpers.psql
CREATE EXTENSION ip_inventory;

-- As in source_data: a source JSON as (net, rec), IPv4-compatible networks as IPv4; a
-- network written with host bits (the Enterprise source has ::74.209.24.0/116) as its network.
CREATE FUNCTION load_source(path text) RETURNS TABLE (net cidr, rec jsonb) LANGUAGE sql AS $$
    SELECT CASE WHEN family(k::inet) = 6 AND masklen(k::inet) >= 96 AND network(k::inet) <<= '::/96'
                THEN network(set_masklen('0.0.0.0'::inet + (host(k::inet)::inet - '::'::inet),
                                         masklen(k::inet) - 96))
                ELSE network(k::inet) END,
           v
    FROM jsonb_array_elements(pg_read_file(path)::jsonb) AS e, jsonb_each(e) AS kv(k, v)
$$;
CREATE FUNCTION probes(path text) RETURNS TABLE (ip inet, rec jsonb) LANGUAGE sql AS $$
    WITH src AS (SELECT * FROM load_source(path))
    SELECT p.ip, (SELECT s.rec FROM src s WHERE s.net >>= p.ip ORDER BY masklen(s.net) DESC LIMIT 1)
    FROM (SELECT host(net)::inet AS ip FROM src
          UNION SELECT host(broadcast(net))::inet FROM src) AS p
$$;

-- The answer a record must give: the flags (absent = false) when it carries any, else NULL;
-- the ISP fields when it carries any, else NULL. `t` is the record or its traits.
CREATE FUNCTION want_anonymous(t jsonb) RETURNS ip_anonymizer LANGUAGE sql AS $$
    SELECT CASE WHEN t ?| ARRAY['is_anonymous', 'is_anonymous_vpn', 'is_hosting_provider',
                                'is_public_proxy', 'is_residential_proxy', 'is_tor_exit_node']
           THEN ROW(coalesce((t->>'is_anonymous')::boolean, false),
                    coalesce((t->>'is_anonymous_vpn')::boolean, false),
                    coalesce((t->>'is_hosting_provider')::boolean, false),
                    coalesce((t->>'is_public_proxy')::boolean, false),
                    coalesce((t->>'is_residential_proxy')::boolean, false),
                    coalesce((t->>'is_tor_exit_node')::boolean, false))::ip_anonymizer END
$$;
CREATE FUNCTION want_isp(t jsonb) RETURNS ip_isp_data LANGUAGE sql AS $$
    SELECT CASE WHEN t ?| ARRAY['isp', 'organization', 'autonomous_system_number',
                                'autonomous_system_organization', 'mobile_country_code',
                                'mobile_network_code']
           THEN ROW(t->>'isp', t->>'organization', (t->>'autonomous_system_number')::bigint,
                    t->>'autonomous_system_organization', t->>'mobile_country_code',
                    t->>'mobile_network_code')::ip_isp_data END
$$;

-- Whether a composite answer is there at all (IS NOT NULL on a row asks whether every field
-- is non-null; num_nonnulls asks about the value itself).
CREATE FUNCTION answered(v anyelement) RETURNS boolean LANGUAGE sql AS $$ SELECT num_nonnulls(v) = 1 $$;

\set anon_db :testdata/GeoIP2-Anonymous-IP-Test.mmdb
\set anon_plus_db :testdata/GeoIP-Anonymous-Plus-Test.mmdb
\set isp_db :testdata/GeoIP2-ISP-Test.mmdb
\set ct_db :testdata/GeoIP2-Connection-Type-Test.mmdb
\set ent_db :testdata/GeoIP2-Enterprise-Test.mmdb
\set city_db :testdata/GeoIP2-City-Test.mmdb
\set anon_json :fixtures/maxmind/source-data/GeoIP2-Anonymous-IP-Test.json
\set anon_plus_json :fixtures/maxmind/source-data/GeoIP-Anonymous-Plus-Test.json
\set isp_json :fixtures/maxmind/source-data/GeoIP2-ISP-Test.json
\set ct_json :fixtures/maxmind/source-data/GeoIP2-Connection-Type-Test.json
\set ent_json :fixtures/maxmind/source-data/GeoIP2-Enterprise-Test.json

-- Not configured: a clear error naming the settings, as for City and ASN.
SELECT try($$SELECT ip_anonymous('81.2.69.1')$$) AS anonymous;
SELECT try($$SELECT ip_isp('81.2.69.1')$$) AS isp;
SELECT try($$SELECT ip_connection_type('81.2.69.1')$$) AS connection_type;
-- Unconfigured optional slots are not listed by maxmind_info().
SELECT name, status FROM maxmind_info();

ALTER SYSTEM SET ip_inventory.anonymous_db = :'anon_db';
ALTER SYSTEM SET ip_inventory.isp_db = :'isp_db';
ALTER SYSTEM SET ip_inventory.connection_type_db = :'ct_db';
SELECT pg_reload_conf();
\c
SELECT name, database_type, status FROM maxmind_info();
SELECT (maxmind_reload()->'databases') @> '[{"name": "anonymous"}, {"name": "isp"}, {"name": "connection_type"}]' AS reloaded;

-- GeoIP2-Anonymous-IP-Test: probes, public probes checked, mismatches (must be 0), and
-- non-public probes answered anyway (must be 0).
SELECT count(*) AS probes,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public') AS public_checked,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public'
                        AND ip_anonymous(p.ip) IS DISTINCT FROM want_anonymous(p.rec)) AS mismatches,
       count(*) FILTER (WHERE ip_class(p.ip) NOT IN ('public', '6to4', 'teredo')
                        AND answered(ip_anonymous(p.ip))) AS non_public_answered
FROM probes(:'anon_json') AS p;
SELECT p.ip, ip_anonymous(p.ip), want_anonymous(p.rec) FROM probes(:'anon_json') AS p
WHERE ip_class(p.ip) = 'public' AND ip_anonymous(p.ip) IS DISTINCT FROM want_anonymous(p.rec) LIMIT 5;
-- Every flag is answered true somewhere, and an address outside the data is NULL.
SELECT bool_or(a.is_anonymous) AS anonymous, bool_or(a.is_anonymous_vpn) AS vpn,
       bool_or(a.is_hosting_provider) AS hosting, bool_or(a.is_public_proxy) AS public_proxy,
       bool_or(a.is_residential_proxy) AS residential_proxy, bool_or(a.is_tor_exit_node) AS tor
FROM probes(:'anon_json') AS p, LATERAL ip_anonymous(p.ip) AS a;
SELECT NOT answered(ip_anonymous('8.8.8.8')) AS unlisted_is_null, NOT answered(ip_anonymous('10.0.0.1')) AS private_is_null,
       NOT answered(ip_isp('10.0.0.1')) AS private_isp_is_null;
SELECT (ip_anonymous('81.2.69.1')).*;

-- GeoIP2-ISP-Test.
SELECT count(*) AS probes,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public') AS public_checked,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public'
                        AND ip_isp(p.ip) IS DISTINCT FROM want_isp(p.rec)) AS mismatches,
       count(*) FILTER (WHERE ip_class(p.ip) NOT IN ('public', '6to4', 'teredo')
                        AND answered(ip_isp(p.ip))) AS non_public_answered,
       count(*) FILTER (WHERE (ip_isp(p.ip)).mobile_country_code IS NOT NULL) AS with_mobile_codes
FROM probes(:'isp_json') AS p;
SELECT p.ip, ip_isp(p.ip), want_isp(p.rec) FROM probes(:'isp_json') AS p
WHERE ip_class(p.ip) = 'public' AND ip_isp(p.ip) IS DISTINCT FROM want_isp(p.rec) LIMIT 5;
SELECT (ip_isp('1.128.0.1')).*;

-- GeoIP2-Connection-Type-Test.
SELECT count(*) AS probes,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public') AS public_checked,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public'
                        AND ip_connection_type(p.ip) IS DISTINCT FROM p.rec->>'connection_type') AS mismatches,
       count(*) FILTER (WHERE ip_class(p.ip) NOT IN ('public', '6to4', 'teredo')
                        AND ip_connection_type(p.ip) IS NOT NULL) AS non_public_answered,
       count(DISTINCT ip_connection_type(p.ip)) AS types
FROM probes(:'ct_json') AS p;
SELECT p.ip, ip_connection_type(p.ip), p.rec FROM probes(:'ct_json') AS p
WHERE ip_class(p.ip) = 'public' AND ip_connection_type(p.ip) IS DISTINCT FROM p.rec->>'connection_type' LIMIT 5;

-- GeoIP-Anonymous-Plus-Test in the anonymous slot.
ALTER SYSTEM SET ip_inventory.anonymous_db = :'anon_plus_db';
SELECT pg_reload_conf();
\c
SELECT count(*) AS probes,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public') AS public_checked,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public'
                        AND ip_anonymous(p.ip) IS DISTINCT FROM want_anonymous(p.rec)) AS mismatches
FROM probes(:'anon_plus_json') AS p;

-- GeoIP2-Enterprise-Test in all three slots: the answers of the record's traits.
ALTER SYSTEM SET ip_inventory.anonymous_db = :'ent_db';
ALTER SYSTEM SET ip_inventory.isp_db = :'ent_db';
ALTER SYSTEM SET ip_inventory.connection_type_db = :'ent_db';
SELECT pg_reload_conf();
\c
SELECT name, database_type, status FROM maxmind_info();
SELECT count(*) AS probes,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public') AS public_checked,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public'
                        AND ip_isp(p.ip) IS DISTINCT FROM want_isp(p.rec->'traits')) AS isp_mismatches,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public'
                        AND ip_connection_type(p.ip) IS DISTINCT FROM p.rec->'traits'->>'connection_type') AS connection_type_mismatches,
       count(*) FILTER (WHERE ip_class(p.ip) = 'public'
                        AND ip_anonymous(p.ip) IS DISTINCT FROM want_anonymous(p.rec->'traits')) AS anonymous_mismatches,
       count(*) FILTER (WHERE answered(ip_isp(p.ip))) AS with_isp,
       count(*) FILTER (WHERE ip_connection_type(p.ip) IS NOT NULL) AS with_connection_type
FROM probes(:'ent_json') AS p;

-- A database of the wrong type is refused, naming the setting; the slot names are reserved
-- in ip_inventory.databases and looked up by mmdb_lookup().
ALTER SYSTEM SET ip_inventory.isp_db = :'city_db';
SELECT pg_reload_conf();
\c
SELECT regexp_replace(try($$SELECT ip_isp('1.128.0.1')$$), '"/[^"]*/', '"…/', 'g') AS wrong_type;
ALTER SYSTEM SET ip_inventory.databases = 'isp=/srv/x.mmdb';
SELECT mmdb_lookup('214.78.120.1', 'connection_type')->'data'->'traits'->>'connection_type' AS mmdb_lookup,
       ip_connection_type('214.78.120.1') AS accessor;

-- The lookups are counted per database family.
SELECT source, count(*) FILTER (WHERE metric = 'lookups' AND value > 0) AS counted
FROM ip_inventory_stats WHERE source IN ('anonymous', 'isp', 'connection_type') GROUP BY source ORDER BY source;

-- Anyone may look addresses up (they reveal no path); the settings name no secret.
CREATE ROLE anon_analyst;
SET ROLE anon_analyst;
SELECT ip_connection_type('214.78.120.1') AS as_analyst, NOT answered(ip_anonymous('214.78.120.1')) AS no_flags;
SELECT try($$SELECT * FROM maxmind_info()$$) AS info_refused;
RESET ROLE;
DROP ROLE anon_analyst;
