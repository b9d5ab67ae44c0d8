-- 6to4 (2002::/16) and Teredo (2001::/32) addresses are answered as libmaxminddb answers them:
-- MaxMind's databases alias both prefixes to the IPv4 tree, so the answer is the record of
-- the embedded IPv4 address (the 6to4 gateway, the Teredo server). ip_class still names them.
-- The known answers are libmaxminddb's own: pg_tests/fixtures/libmaxminddb/reference.tsv,
-- written by mmdblookup (make_reference.py) for every IPv4 network of the test databases.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql

SELECT ip, ip_class(ip::inet) AS class
FROM unnest(ARRAY['2002:5102:45a0::1', '2001:0:5102:45a0::1', '192.88.99.1', '2002:a00:1::']) AS ip;

-- libmaxminddb's answers: per database, the paths compared, and how many addresses it found.
\set reference :fixtures/libmaxminddb/reference.tsv
CREATE TEMP TABLE ref (slot text, ip inet, path text, value_text text);
COPY ref FROM :'reference';
CREATE TEMP VIEW reference AS
SELECT slot, ip, string_to_array(path, ' ') AS path, nullif(value_text, '')::jsonb AS value FROM ref;
SELECT slot, array_to_string(path, '.') AS path, count(*) AS answers,
       count(value) AS found, count(*) FILTER (WHERE ip <<= '2002::/16') AS six_to_four,
       count(*) FILTER (WHERE ip <<= '2001::/32') AS teredo
FROM reference GROUP BY 1, 2 ORDER BY 1, 2;

-- mmdb_lookup with the same path: no difference from libmaxminddb.
SELECT count(*) AS compared,
       count(*) FILTER (WHERE mmdb_lookup(ip, slot, path) IS DISTINCT FROM value) AS mismatches
FROM reference;

-- enrich_ip and the accessors: no difference either (names in English, the default).
SELECT count(*) AS compared,
       count(*) FILTER (WHERE to_jsonb(CASE r.path[1]
                 WHEN 'country' THEN e.country_code
                 WHEN 'city' THEN e.city
                 WHEN 'autonomous_system_organization' THEN e.asn_org END)
              IS DISTINCT FROM r.value AND r.path[1] <> 'autonomous_system_number') AS enrich_text_mismatches,
       count(*) FILTER (WHERE r.path[1] = 'autonomous_system_number'
                          AND to_jsonb(e.asn) IS DISTINCT FROM r.value) AS enrich_asn_mismatches,
       count(*) FILTER (WHERE r.path = '{country,iso_code}' AND to_jsonb(ip_country(r.ip)) IS DISTINCT FROM r.value) AS ip_country_mismatches,
       count(*) FILTER (WHERE r.path = '{autonomous_system_number}' AND to_jsonb(ip_asn(r.ip)) IS DISTINCT FROM r.value) AS ip_asn_mismatches,
       count(*) FILTER (WHERE r.path = '{autonomous_system_organization}' AND to_jsonb(ip_asn_org(r.ip)) IS DISTINCT FROM r.value) AS ip_asn_org_mismatches
FROM reference AS r, LATERAL enrich_ip(r.ip) AS e;

-- The matched network is the prefix walked in the IPv6 tree: 81.2.69.160/27 seen through
-- 6to4 is 2002:5102:45a0::/43 (16 bits more), through Teredo 2001:0:5102:45a0::/59.
SELECT ip, e.ip_class, e.network, e.country_code, e.city, e.asn, e.asn_network
FROM unnest(ARRAY['81.2.69.160', '2002:5102:45a0::1', '2001:0:5102:45a0::1',
                  '1.128.0.1', '2002:180:1::', '2001:0:180:1::']::inet[]) AS ip,
     LATERAL enrich_ip(ip) AS e;

-- The IPv4 address a 6to4 or Teredo address embeds may itself be private: nothing is known.
SELECT e.ip_class, e.country_code, e.asn, e.maxmind_build IS NOT NULL AS consulted
FROM enrich_ip('2002:c0a8:101::') AS e;
-- Other non-public classes are still not looked up.
SELECT e.ip_class, e.maxmind_build IS NULL AS not_consulted FROM enrich_ip('2001:db8::1') AS e;

-- The inventory enriches them from MaxMind too (and sends them to no network source).
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events VALUES (now(), '2002:5102:45a0::1'), (now(), '2001:0:5102:45a0::1'), (now(), '81.2.69.160');
SELECT ip_address, ip_class, geo_country, geo_city, geo_network, maxmind_ts IS NOT NULL AS enriched
FROM ip_inventory ORDER BY ip_address;

-- enrich_pending and cascade_refresh('maxmind') select them as they select public rows.
UPDATE ip_inventory SET maxmind_ts = NULL, geo_country = NULL;
SET client_min_messages = warning;
CALL ip_inventory_enrich_pending() \gset
RESET client_min_messages;
SELECT ip_address, geo_country FROM ip_inventory ORDER BY ip_address;
UPDATE ip_inventory SET maxmind_ts = NULL, geo_country = NULL;
SELECT cascade_refresh('maxmind')->>'selected' AS selected;
SELECT ip_address, geo_country FROM ip_inventory ORDER BY ip_address;
