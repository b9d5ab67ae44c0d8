-- The inventory's ISP and connection-type columns (isp, isp_organization, mobile_country_code,
-- mobile_network_code, connection_type): NULL while the ISP / Connection-Type slots are not
-- configured, written by every MaxMind writer once they are (recording, re-enrichment, rows
-- added by cascade_refresh_now), compared with MaxMind's source JSON of GeoIP2-ISP-Test and
-- GeoIP2-Connection-Type-Test; a database that cannot be used leaves them NULL with a WARNING;
-- the enriched view's columns; tag rule conditions over them, checked when written and
-- compiled as quoted literals.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\set isp_db :testdata/GeoIP2-ISP-Test.mmdb
\set ct_db :testdata/GeoIP2-Connection-Type-Test.mmdb
\set isp_json :fixtures/maxmind/source-data/GeoIP2-ISP-Test.json
\set ct_json :fixtures/maxmind/source-data/GeoIP2-Connection-Type-Test.json

-- A source JSON as (net, rec), IPv4-compatible networks as IPv4 (as source_data does).
CREATE FUNCTION load_source(path text) RETURNS TABLE (net cidr, rec jsonb) LANGUAGE sql AS $$
    SELECT CASE WHEN family(k::inet) = 6 AND masklen(k::inet) >= 96 AND network(k::inet) <<= '::/96'
                THEN network(set_masklen('0.0.0.0'::inet + (host(k::inet)::inet - '::'::inet),
                                         masklen(k::inet) - 96))
                ELSE network(k::inet) END,
           v
    FROM jsonb_array_elements(pg_read_file(path)::jsonb) AS e, jsonb_each(e) AS kv(k, v)
$$;
CREATE TABLE isp_src AS SELECT * FROM load_source(:'isp_json');
CREATE TABLE ct_src AS SELECT * FROM load_source(:'ct_json');
-- What the JSON says of an address: the record of the most specific network holding it.
CREATE FUNCTION want(ip inet, OUT isp text, OUT isp_organization text, OUT mobile_country_code text,
                     OUT mobile_network_code text, OUT connection_type text) LANGUAGE sql AS $$
    SELECT r.rec ->> 'isp', r.rec ->> 'organization', r.rec ->> 'mobile_country_code',
           r.rec ->> 'mobile_network_code',
           (SELECT c.rec ->> 'connection_type' FROM ct_src AS c WHERE c.net >>= ip ORDER BY masklen(c.net) DESC LIMIT 1)
    FROM (SELECT NULL) AS one
    LEFT JOIN LATERAL (SELECT s.rec FROM isp_src AS s WHERE s.net >>= ip ORDER BY masklen(s.net) DESC LIMIT 1) AS r ON true
$$;
-- Inventory rows whose columns differ from the JSON (public addresses; others stay NULL).
CREATE VIEW mismatches AS
SELECT i.ip_address FROM ip_inventory AS i, want(i.ip_address) AS w, LATERAL (SELECT i.ip_class = 'public') AS p(public)
WHERE (i.isp, i.isp_organization, i.mobile_country_code, i.mobile_network_code, i.connection_type)
      IS DISTINCT FROM (CASE WHEN p.public THEN w.isp END, CASE WHEN p.public THEN w.isp_organization END,
                        CASE WHEN p.public THEN w.mobile_country_code END,
                        CASE WHEN p.public THEN w.mobile_network_code END,
                        CASE WHEN p.public THEN w.connection_type END);

CREATE TABLE events (ts timestamptz NOT NULL, src_ip inet, dst_port int);
SELECT ip_inventory_attach('events', ARRAY['src_ip'], 'ts');

\echo '-- without ISP and Connection-Type databases the columns stay NULL'
INSERT INTO events VALUES
    ('2026-03-01 10:00+00', '149.101.100.1', 22), ('2026-03-01 10:01+00', '1.128.0.1', 22),
    ('2026-03-01 10:02+00', '1.0.1.5', 23), ('2026-03-01 10:03+00', '216.160.83.57', 80),
    ('2026-03-01 10:04+00', '12.87.118.5', 443), ('2026-03-01 10:05+00', '2001:1700::1', 22),
    ('2026-03-01 10:06+00', '10.0.0.1', 22);
SELECT ip_address, geo_country, isp, isp_organization, mobile_country_code, mobile_network_code, connection_type
FROM ip_inventory ORDER BY ip_address;
-- The JSON has data for most of them: the comparison below sees the difference.
SELECT count(*) AS differ_from_json FROM mismatches;

\echo '-- with them, re-enrichment (cascade_refresh_now) writes the columns as MaxMind''s source JSON says'
ALTER SYSTEM SET ip_inventory.isp_db = :'isp_db';
ALTER SYSTEM SET ip_inventory.connection_type_db = :'ct_db';
SELECT pg_reload_conf();
\c
SET client_min_messages = warning;
SELECT cascade_refresh_now('maxmind', ARRAY(SELECT ip_address FROM ip_inventory)) ->> 'selected' AS refreshed;
SELECT ip_address, isp, isp_organization, mobile_country_code, mobile_network_code, connection_type
FROM ip_inventory ORDER BY ip_address;
SELECT count(*) AS mismatches FROM mismatches;
-- The columns are ip_isp() and ip_connection_type() as stored.
SELECT count(*) AS differ_from_accessors FROM ip_inventory AS i
WHERE i.ip_class = 'public'
  AND ((ip_isp(i.ip_address)).isp, (ip_isp(i.ip_address)).organization, (ip_isp(i.ip_address)).mobile_country_code,
       (ip_isp(i.ip_address)).mobile_network_code, ip_connection_type(i.ip_address))
      IS DISTINCT FROM (i.isp, i.isp_organization, i.mobile_country_code, i.mobile_network_code, i.connection_type);

\echo '-- new addresses get them when recorded, and when added by cascade_refresh_now'
INSERT INTO events VALUES ('2026-03-02 10:00+00', '214.78.120.5', 22), ('2026-03-02 10:01+00', '1.0.200.1', 22);
SELECT cascade_refresh_now('maxmind', ARRAY['67.43.156.1'::inet, '12.81.92.7']) ->> 'selected' AS refreshed;
SELECT ip_address, observation_count AS n, isp, isp_organization, connection_type FROM ip_inventory
WHERE ip_address IN ('214.78.120.5', '1.0.200.1', '67.43.156.1', '12.81.92.7') ORDER BY ip_address;
SELECT count(*) AS rows, (SELECT count(*) FROM mismatches) AS mismatches FROM ip_inventory;

\echo '-- the enriched view has them per address column, commented'
SELECT ip_inventory_enriched_view('events');
SELECT src_ip, src_isp, src_isp_organization, src_mobile_country_code, src_mobile_network_code, src_connection_type
FROM events_enriched ORDER BY src_ip;
SELECT a.attname, col_description(a.attrelid, a.attnum)
FROM pg_attribute AS a WHERE a.attrelid = 'events_enriched'::regclass
  AND a.attname IN ('src_isp', 'src_connection_type', 'src_mobile_country_code') ORDER BY a.attname;
SELECT a.attname, col_description(a.attrelid, a.attnum) IS NOT NULL AS commented
FROM pg_attribute AS a WHERE a.attrelid = 'ip_inventory'::regclass
  AND a.attname IN ('isp', 'isp_organization', 'mobile_country_code', 'mobile_network_code', 'connection_type')
ORDER BY a.attnum;

\echo '-- tag rules over them'
INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition) VALUES
    ('mobile', NULL, 0.5, '{"connection_type": ["Cellular"]}'),
    ('corporate-or-satellite', NULL, 0.4, '{"connection_type": ["Corporate", "Satellite"]}'),
    ('verizon', NULL, 0.6, '{"isp": ["Verizon Wireless"]}'),
    ('att', NULL, 0.3, '{"isp_regex": "^at&t"}'),
    ('us-mobile', NULL, 0.7, '{"mobile_country_code": ["310"], "mobile_network_code": ["004", "012"]}'),
    ('telstra-not-mobile', NULL, 0.2, '{"isp": ["Telstra Internet"], "not": {"connection_type": ["Cellular"]}}');
CALL ip_inventory_retag() \gset
SELECT ip_address, isp, connection_type, tags, tag_confidence FROM ip_inventory ORDER BY ip_address;
-- The same tags from the columns directly: no difference.
SELECT count(*) AS tag_differences FROM ip_inventory AS i
WHERE i.tags IS DISTINCT FROM ARRAY(SELECT t FROM (VALUES
        ('mobile', i.connection_type = 'Cellular'),
        ('corporate-or-satellite', i.connection_type IN ('Corporate', 'Satellite')),
        ('verizon', i.isp = 'Verizon Wireless'),
        ('att', i.isp ~* '^at&t'),
        ('us-mobile', i.mobile_country_code = '310' AND i.mobile_network_code IN ('004', '012')),
        ('telstra-not-mobile', i.isp = 'Telstra Internet' AND i.connection_type IS DISTINCT FROM 'Cellular'))
        AS x(t, m) WHERE m ORDER BY t);

\echo '-- values enter the compiled SQL as quoted literals only'
SELECT _ip_inventory_tag_condition_sql('{"isp": ["x'') OR true; --"], "isp_regex": "a''b", "connection_type": ["Dialup"]}');
INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES
    ('quoted', 1, '{"isp": ["x'') OR true; --", "Verizon Wireless''"]}');
CALL ip_inventory_retag() \gset
SELECT count(*) AS tagged_quoted FROM ip_inventory WHERE 'quoted' = ANY (tags);

\echo '-- conditions are checked when written: clear errors'
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"connection_type": ["cellular"]}')$$) AS lower_case_type;
-- (The first line only: the hint lists every condition key.)
SELECT split_part(try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"connection_type": "Cellular"}')$$), E'\n', 1) AS not_an_array;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"mobile_country_code": [310]}')$$) AS mcc_as_number;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"mobile_network_code": ["4"]}')$$) AS short_mnc;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"isp": [""]}')$$) AS empty_isp;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"isp": []}')$$) AS no_isp;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"isp_regex": "(a)\\1"}')$$) AS backreference;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"isp_regex": "(unclosed"}')$$) AS bad_regex;
SELECT split_part(try($$UPDATE ip_inventory_tag_rules SET condition = '{"isp_regex": ["^at&t"]}' WHERE tag = 'att'$$), E'\n', 1) AS regex_as_array;
SELECT count(*) AS rules FROM ip_inventory_tag_rules;

\echo '-- a slot unset again: re-enrichment writes NULL; a database that cannot be used: NULL and one WARNING'
ALTER SYSTEM RESET ip_inventory.connection_type_db;
ALTER SYSTEM SET ip_inventory.isp_db = :'city';
SELECT pg_reload_conf();
\c
SET client_min_messages = warning;
SELECT cascade_refresh_now('maxmind', ARRAY(SELECT ip_address FROM ip_inventory)) ->> 'selected' AS refreshed;
SELECT count(*) AS rows, count(*) FILTER (WHERE maxmind_ts IS NOT NULL) AS enriched,
       count(isp) AS with_isp, count(connection_type) AS with_connection_type,
       count(*) FILTER (WHERE geo_country IS NOT NULL) AS with_country
FROM ip_inventory;
SELECT try($$SELECT ip_isp('149.101.100.1')$$) AS strict_accessor;

ALTER SYSTEM RESET ip_inventory.isp_db;
SELECT pg_reload_conf();
