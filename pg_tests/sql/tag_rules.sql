-- Tag rules (sql/tags.sql, docs/tags.md) and the anonymizer flag columns: rules over every
-- condition kind against known inventory rows (MaxMind's City, ASN and Anonymous-IP test
-- databases, a network list loaded from a file, GreyNoise and reverse DNS answers stored as
-- the cascade stores them), tags materialized after enrichment and after rule changes, the
-- report views, the enriched view columns, and attacks on the rules.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\set anon_db :testdata/GeoIP2-Anonymous-IP-Test.mmdb
\set sensors_csv :fixtures/lists/sensors.csv

CREATE TABLE sensors (network cidr PRIMARY KEY, label text, site text, since date);
COPY sensors FROM :'sensors_csv' (FORMAT csv, HEADER);
SELECT ip_list_register('sensors', 'sensors', 'Our honeypot sensors');

CREATE TABLE events (ts timestamptz NOT NULL, src_ip inet, dst_port int);
SELECT ip_inventory_attach('events', ARRAY['src_ip'], 'ts');

\echo '-- without an Anonymous-IP database the flags stay NULL; without rules, no tags'
-- Address k of the list appears k times.
INSERT INTO events
SELECT '2026-03-01 10:00+00'::timestamptz + (a.k * 10 + i) * interval '5 hours', a.ip::inet, a.port
FROM (VALUES (1, '81.2.69.160', 22), (2, '1.124.213.1', 22), (3, '216.160.83.56', 80),
             (4, '89.160.20.112', 2222), (5, '203.0.113.66', 22), (6, '71.160.223.5', 443),
             (7, '1.128.0.1', 22)) AS a(k, ip, port),
     generate_series(1, a.k) AS i;
SELECT ip_address, observation_count AS n, geo_country, asn_number, is_anonymous, is_tor_exit_node,
       tags, tag_confidence, tags_generation
FROM ip_inventory ORDER BY ip_address;
SELECT * FROM ip_inventory_tag_status;

\echo '-- with it, re-enrichment (cascade_refresh_now) writes the flags from MaxMind''s Anonymous-IP test database'
ALTER SYSTEM SET ip_inventory.anonymous_db = :'anon_db';
SELECT pg_reload_conf();
\c
-- Batch NOTICEs carry rates: not part of the expected output.
SET client_min_messages = warning;
SELECT cascade_refresh_now('maxmind', ARRAY(SELECT ip_address FROM ip_inventory)) ->> 'selected' AS refreshed;
SELECT ip_address, is_anonymous, is_anonymous_vpn, is_hosting_provider, is_public_proxy,
       is_residential_proxy, is_tor_exit_node,
       to_jsonb(ip_anonymous(ip_address)) IS NOT DISTINCT FROM
           CASE WHEN is_anonymous IS NOT NULL THEN jsonb_build_object(
               'is_anonymous', is_anonymous, 'is_anonymous_vpn', is_anonymous_vpn,
               'is_hosting_provider', is_hosting_provider, 'is_public_proxy', is_public_proxy,
               'is_residential_proxy', is_residential_proxy, 'is_tor_exit_node', is_tor_exit_node) END AS as_ip_anonymous
FROM ip_inventory ORDER BY ip_address;

\echo '-- rules over every condition kind'
INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition, comment) VALUES
    ('tor-exit', 'anonymization', 0.9, '{"is_tor_exit_node": true}', 'MaxMind says Tor exit'),
    ('hosting', 'anonymization', 0.6, '{"is_hosting_provider": true}', NULL),
    ('hosting', 'anonymization', 0.95, '{"network": ["71.160.223.0/24"]}', 'a known hoster: higher'),
    ('telstra', NULL, 0.3, '{"asn": [1221]}', NULL),
    ('own-sensor', 'internal', 1, '{"in_list": ["sensors"]}', NULL),
    ('gn-malicious', 'scanning', 0.8, '{"greynoise_classification": ["malicious"], "greynoise_noise": true}', NULL),
    ('gn-riot', 'benign', 0.7, '{"greynoise_riot": true}', NULL),
    ('cloud-rdns', 'hosting', 0.4, '{"rdns_regex": "\\.(amazonaws\\.com|googleusercontent\\.com)$"}', NULL),
    ('eu-clean', NULL, 0.2, '{"country": ["GB", "SE"], "not": {"is_anonymous": true}}', NULL),
    ('us-or-bredband', 'scanning', 0.5, '{"any": [{"country": ["US"]}, {"network": ["89.160.20.0/24"]}]}', NULL),
    ('documentation', NULL, 0.1, '{"ip_class": ["documentation"]}', NULL),
    ('disabled', NULL, 1, '{"ip_class": ["public"]}', NULL);
UPDATE ip_inventory_tag_rules SET enabled = false WHERE tag = 'disabled';
SELECT generation, enabled_rules, stale_rows, tagged_rows FROM ip_inventory_tag_status;

\echo '-- a rule change makes rows stale; ip_inventory_retag tags them (in batches, resumable)'
CALL ip_inventory_retag(batch_size => 3, max_rows => 4) \gset
SELECT :'summary'::jsonb - 'seconds' AS summary;
SELECT job, status, done_rows, total_rows FROM ip_inventory_progress WHERE job = 'retag';
SELECT stale_rows FROM ip_inventory_tag_status;
CALL ip_inventory_retag(batch_size => 3) \gset
SELECT :'summary'::jsonb - 'seconds' AS summary;
SELECT job, status, done_rows FROM ip_inventory_progress WHERE job = 'retag';
SELECT ip_address, geo_country, asn_number, ip_class, is_anonymous, is_hosting_provider, is_tor_exit_node,
       tags, tag_confidence, tags_generation = (SELECT generation FROM ip_inventory_tag_state) AS current
FROM ip_inventory ORDER BY ip_address;

\echo '-- GreyNoise and reverse DNS answers, stored as the cascade stores them, retag their rows at once'
SELECT _ip_inventory_store_answers('greynoise',
    '[{"ip": "216.160.83.56", "outcome": "found", "answer": {"noise": true, "riot": false, "classification": "malicious", "name": "unknown"}},
      {"ip": "89.160.20.112", "outcome": "found", "answer": {"noise": false, "riot": true, "classification": "benign", "name": "Bredband"}},
      {"ip": "1.128.0.1", "outcome": "failed", "answer": null, "detail": "timeout"}]', '{}') ->> 'refreshed' AS greynoise_refreshed;
SELECT _ip_inventory_store_answers('rdns',
    '[{"ip": "1.128.0.1", "outcome": "found", "answer": {"name": "EC2-1-128-0-1.compute-1.AMAZONAWS.com"}},
      {"ip": "81.2.69.160", "outcome": "found", "answer": {"name": "mail.example.co.uk"}}]', '{}') ->> 'refreshed' AS rdns_refreshed;
SELECT ip_address, tags, tag_confidence FROM ip_inventory
WHERE ip_address IN ('216.160.83.56', '89.160.20.112', '1.128.0.1', '81.2.69.160') ORDER BY ip_address;

\echo '-- a new address is tagged when it is recorded'
INSERT INTO events VALUES ('2026-03-05 12:00+00', '175.16.199.7', 23), ('2026-03-05 13:00+00', '203.0.113.70', 22);
SELECT ip_address, geo_country, tags, tag_confidence FROM ip_inventory
WHERE ip_address IN ('175.16.199.7', '203.0.113.70') ORDER BY ip_address;
INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition) VALUES
    ('cn', 'botnet', 0.5, '{"country": ["CN"]}');
CALL ip_inventory_retag() \gset
SELECT :'summary'::jsonb - 'seconds' AS summary;

\echo '-- the reports: events (observations) by tag, average confidence by tag and by attack type'
SELECT * FROM ip_inventory_tag_report ORDER BY tag;
SELECT * FROM ip_inventory_attack_type_report ORDER BY attack_type;
-- The same figures from the events themselves: no difference.
SELECT count(*) AS report_differences FROM (
    (SELECT t.tag, count(*) AS events FROM events AS e
     JOIN ip_inventory AS i ON i.ip_address = ip_canonical(e.src_ip), unnest(i.tags) AS t(tag) GROUP BY t.tag)
    EXCEPT (SELECT tag, events FROM ip_inventory_tag_report)) AS d;

\echo '-- the enriched view: tags and flags per address column; the daily view by tag'
SELECT ip_inventory_enriched_view('events');
SELECT src_ip, dst_port, src_tags, src_tag_confidence, src_is_tor_exit_node, src_is_hosting_provider
FROM events_enriched WHERE ts = (SELECT min(ts) FROM events AS e2 WHERE e2.src_ip = events_enriched.src_ip)
ORDER BY src_ip;
SELECT tag, sum(events) AS events, sum(addresses) AS address_days, max(avg_confidence) AS confidence
FROM events_enriched_daily_tag GROUP BY tag ORDER BY tag NULLS FIRST;
SELECT col_description('events_enriched'::regclass,
                       (SELECT attnum FROM pg_attribute WHERE attrelid = 'events_enriched'::regclass AND attname = 'src_tags')) AS src_tags_comment;

\echo '-- changing, disabling and deleting rules: retag follows'
UPDATE ip_inventory_tag_rules SET confidence = 0.55 WHERE tag = 'cn';
UPDATE ip_inventory_tag_rules SET enabled = false WHERE tag = 'tor-exit';
DELETE FROM ip_inventory_tag_rules WHERE tag = 'own-sensor';
SELECT enabled_rules, stale_rows > 0 AS stale FROM ip_inventory_tag_status;
CALL ip_inventory_retag() \gset
SELECT :'summary'::jsonb - 'seconds' AS summary;
SELECT ip_address, tags, tag_confidence FROM ip_inventory
WHERE ip_address IN ('1.124.213.1', '81.2.69.160', '175.16.199.7', '203.0.113.66') ORDER BY ip_address;
-- No rule enabled: retag clears every tag; the inventory is then not stale.
UPDATE ip_inventory_tag_rules SET enabled = false;
SELECT enabled_rules, stale_rows, tagged_rows FROM ip_inventory_tag_status;
CALL ip_inventory_retag() \gset
SELECT :'summary'::jsonb - 'seconds' AS summary;
SELECT enabled_rules, stale_rows, tagged_rows FROM ip_inventory_tag_status;
SELECT count(*) FILTER (WHERE tags <> '{}' OR tag_confidence <> '{}') AS still_tagged FROM ip_inventory;
UPDATE ip_inventory_tag_rules SET enabled = true;
CALL ip_inventory_retag() \gset
SELECT :'summary'::jsonb - 'seconds' AS summary;

\echo '-- a change of a list a rule names starts a new generation: the next ip_inventory_retag re-tags (no rule statement)'
INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition) VALUES
    ('own-sensor', 'internal', 1, '{"in_list": ["sensors"]}');
CALL ip_inventory_retag() \gset
CREATE ROLE list_writer;
GRANT SELECT, INSERT, DELETE ON sensors TO list_writer;
SELECT generation AS gen_before FROM ip_inventory_tag_state \gset
SELECT ip_address, tags FROM ip_inventory WHERE ip_address = '216.160.83.56';
-- The list's writer holds nothing on the rules: the check runs as the extension's owner.
SET ROLE list_writer;
INSERT INTO sensors VALUES ('216.160.83.0/24', 'new-sensor', 'sea1', '2026-03-01');
RESET ROLE;
SELECT generation = :gen_before + 1 AS one_new_generation, stale_rows > 0 AS rows_stale FROM ip_inventory_tag_status;
CALL ip_inventory_retag() \gset
SELECT ip_address, tags, tag_confidence FROM ip_inventory WHERE ip_address = '216.160.83.56';
SET ROLE list_writer;
DELETE FROM sensors WHERE network = '216.160.83.0/24';
RESET ROLE;
CALL ip_inventory_retag() \gset
SELECT ip_address, tags FROM ip_inventory WHERE ip_address = '216.160.83.56';
-- One statement, one generation, however many networks it loads (COPY, INSERT ... SELECT).
SELECT generation AS gen_before FROM ip_inventory_tag_state \gset
INSERT INTO sensors SELECT format('10.%s.%s.0/24', i / 256, i % 256)::cidr, 'bulk', NULL, NULL FROM generate_series(0, 9999) AS i;
SELECT generation - :gen_before AS generations FROM ip_inventory_tag_state;
DELETE FROM sensors WHERE label = 'bulk';
CALL ip_inventory_retag() \gset
-- Many statements in one transaction: one generation. An address recorded in it after the
-- generation moved stays stale (tagged with what the transaction had then), and the next
-- retag tags it with what it committed: here a network added after the address was recorded.
SELECT generation AS gen_before FROM ip_inventory_tag_state \gset
BEGIN;
INSERT INTO sensors VALUES ('216.160.83.0/25', 'one', NULL, NULL);
INSERT INTO events VALUES ('2026-03-05 10:00+00', '216.160.83.200', 22);
INSERT INTO sensors VALUES ('216.160.83.128/25', 'two', NULL, NULL);
INSERT INTO sensors VALUES ('216.160.84.0/24', 'three', NULL, NULL);
COMMIT;
SELECT generation - :gen_before AS generations FROM ip_inventory_tag_state;
SELECT ip_address, tags, tags_generation IS NULL AS stale FROM ip_inventory WHERE ip_address = '216.160.83.200';
CALL ip_inventory_retag() \gset
SELECT ip_address, tags, tags_generation IS NULL AS stale FROM ip_inventory WHERE ip_address = '216.160.83.200';
DELETE FROM sensors WHERE label IN ('one', 'two', 'three');
CALL ip_inventory_retag() \gset
-- A list no enabled rule names: no new generation.
CREATE TABLE spare_nets (network cidr);
SELECT ip_list_register('spare', 'spare_nets');
SELECT generation AS gen_before FROM ip_inventory_tag_state \gset
INSERT INTO spare_nets VALUES ('216.160.83.0/24');
SELECT generation = :gen_before AS unchanged, stale_rows FROM ip_inventory_tag_status;
REVOKE ALL ON sensors FROM list_writer;
DROP ROLE list_writer;
DELETE FROM ip_inventory_tag_rules WHERE tag = 'own-sensor';
CALL ip_inventory_retag() \gset

\echo '-- an unregistered list matches nothing; enrichment and retag keep working'
SELECT ip_list_unregister('sensors');
INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('sensor-again', 1, '{"ip_class": ["documentation"]}');
CALL ip_inventory_retag() \gset
SELECT :'summary'::jsonb - 'seconds' AS summary;
SELECT ip_address, tags FROM ip_inventory WHERE ip_class = 'documentation' ORDER BY ip_address;

\echo '-- conditions are checked when written: clear errors'
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"contry": ["US"]}')$$) AS unknown_key;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"country": "US"}')$$) AS wrong_type;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"country": ["us"]}')$$) AS lower_case_country;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"asn": ["AS13335"]}')$$) AS asn_as_text;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"network": ["10.0.0.1/8"]}')$$) AS host_bits;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{}')$$) AS empty;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '[1]')$$) AS not_an_object;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"any": []}')$$) AS empty_any;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"in_list": ["nope"]}')$$) AS unknown_list;
SELECT split_part(try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 1.5, '{"country": ["US"]}')$$), E'\n', 1) AS confidence_above_1;
SELECT split_part(try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('Bad Tag', 0.5, '{"country": ["US"]}')$$), E'\n', 1) AS bad_tag;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition) VALUES ('cn', 'other', 0.5, '{"country": ["HK"]}')$$) AS second_attack_type;
SELECT try(format($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, %L)$$,
                  repeat('{"not": ', 10) || '{"country": ["US"]}' || repeat('}', 10))) AS too_deep;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"rdns_regex": "(a"}')$$) AS bad_regex;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"rdns_regex": "^(a+)+\\1$"}')$$) AS backreference;
SELECT try(format($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, %L)$$,
                  jsonb_build_object('rdns_regex', repeat('a', 300)))) AS long_regex;
SELECT try($$UPDATE ip_inventory_tag_rules SET condition = '{"bogus": true}' WHERE tag = 'cn'$$) AS bad_update;

\echo '-- privileges: not PUBLIC; a role granted the table may write rules and runs no code by them'
CREATE ROLE mallory LOGIN;
CREATE ROLE tagger LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON ip_inventory_tag_rules TO tagger;
SELECT r.rolname,
       has_table_privilege(r.rolname, 'ip_inventory_tag_rules', 'SELECT') AS read_rules,
       has_table_privilege(r.rolname, 'ip_inventory_tag_rules', 'INSERT') AS write_rules,
       has_table_privilege(r.rolname, 'ip_inventory_tag_state', 'UPDATE') AS write_state,
       has_table_privilege(r.rolname, 'ip_inventory_tag_report', 'SELECT') AS report,
       has_function_privilege(r.rolname, '_ip_inventory_tag(inet[])', 'EXECUTE') AS tag_rows,
       has_function_privilege(r.rolname, 'ip_inventory_retag(int, bigint, jsonb)', 'EXECUTE') AS retag
FROM pg_roles AS r WHERE r.rolname IN ('mallory', 'tagger') ORDER BY r.rolname;
SET ROLE mallory;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('pwn', 1, '{"ip_class": ["public"]}')$$) AS mallory_insert;
SELECT try($$SELECT count(*) FROM ip_inventory_tag_rules$$) AS mallory_read;
SELECT try($$UPDATE ip_inventory_tag_state SET compiled = 'pg_sleep(1)'$$) AS mallory_state;
SELECT try($$SELECT _ip_inventory_tag(ARRAY['1.2.3.4'::inet])$$) AS mallory_tag;
SELECT try($$CALL ip_inventory_retag()$$) AS mallory_retag;
SELECT try($$SELECT _ip_inventory_tag_rules_changed()$$) AS mallory_trigger_fn;
RESET ROLE;
SET ROLE tagger;
-- Values that would be code in SQL text are data here: a quoted literal, or refused.
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition)
             VALUES ('inject', 0.5, '{"rdns_regex": "^x''; DROP TABLE public.events; --$"}')$$) AS regex_with_sql;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition)
             VALUES ('inject', 0.5, '{"country": ["US'') OR true --"]}')$$) AS country_with_sql;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition)
             VALUES ('inject', 0.5, '{"is_anonymous\" = true OR pg_sleep(1) IS NULL OR \"x": true}')$$) AS key_with_sql;
SELECT try($$ALTER TABLE ip_inventory_tag_rules DISABLE TRIGGER ip_inventory_tag_rule_check$$) AS disable_check;
SELECT try($$CREATE TRIGGER mine BEFORE INSERT ON ip_inventory_tag_rules FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()$$) AS own_trigger;
SELECT created_by FROM ip_inventory_tag_rules WHERE tag = 'inject';
RESET ROLE;
CALL ip_inventory_retag() \gset
SELECT :'summary'::jsonb - 'seconds' AS summary;
SELECT to_regclass('public.events') IS NOT NULL AS no_code_ran,
       (SELECT count(*) FROM ip_inventory WHERE 'inject' = ANY (tags)) AS injected_tagged;
