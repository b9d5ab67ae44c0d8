-- Event rules (sql/tags.sql, docs/tags.md): tag rules with conditions over an attached event
-- table's columns, compiled as literals into the table's enriched view, per event and per
-- address column; rule changes replace the view (as the table's owner, grants kept); bad
-- columns and values refused with their SQLSTATE; no path for a rule writer to run code.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql

CREATE ROLE ev_owner LOGIN;
CREATE ROLE ev_reader LOGIN;
CREATE ROLE ev_tagger LOGIN;
CREATE ROLE ev_mallory LOGIN;
GRANT EXECUTE ON FUNCTION ip_inventory_attach(regclass, text[], text), ip_inventory_enriched_view(regclass, text, text) TO ev_owner;
CREATE SCHEMA sensors AUTHORIZATION ev_owner;
GRANT USAGE ON SCHEMA sensors TO ev_reader, ev_tagger, ev_mallory;
GRANT SELECT, INSERT, UPDATE, DELETE ON ip_inventory_tag_rules TO ev_tagger;
GRANT SELECT ON ip_inventory TO ev_reader;

SET ROLE ev_owner;
CREATE DOMAIN sensors.port AS int CHECK (VALUE BETWEEN 0 AND 65535);
CREATE TABLE sensors.events (id int PRIMARY KEY, ts timestamptz NOT NULL, src_ip inet, dst_ip inet,
                             dst_port int, protocol text, bytes bigint, ok boolean, port2 sensors.port);
SELECT ip_inventory_attach('sensors.events', ARRAY['src_ip', 'dst_ip'], 'ts');
INSERT INTO sensors.events VALUES
    (1, '2026-03-01 10:00+00', '81.2.69.160', '10.0.0.1', 22, 'ssh', 100, true, 22),
    (2, '2026-03-01 11:00+00', '81.2.69.160', '10.0.0.1', 443, 'https', 5000, true, 443),
    (3, '2026-03-01 12:00+00', '216.160.83.56', '10.0.0.2', 2222, 'ssh', 50, false, 2222),
    (4, '2026-03-01 13:00+00', '89.160.20.112', '10.0.0.2', 23, 'telnet', NULL, NULL, 23),
    (5, '2026-03-02 09:00+00', '216.160.83.56', '10.0.0.1', NULL, NULL, 70000, true, NULL);
SELECT ip_inventory_enriched_view('sensors.events');
GRANT SELECT ON sensors.events, sensors.events_enriched, sensors.events_enriched_tag_report,
                sensors.events_enriched_daily_tag TO ev_reader;
RESET ROLE;

\echo '-- without event rules the event tag columns are empty'
SELECT id, src_event_tags, src_event_tag_confidence, dst_event_tags FROM sensors.events_enriched ORDER BY id;

\echo '-- a granted role writes event rules; the view is replaced as the table''s owner'
SET ROLE ev_tagger;
INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition, event_table) VALUES
    ('ssh-probe', 'scanning', 0.7, '{"event": {"column": "dst_port", "in": [22, 2222]}}', 'sensors.events'),
    ('ssh-probe', 'scanning', 0.9, '{"event": [{"column": "protocol", "eq": "ssh"}, {"column": "ok", "eq": false}]}', 'sensors.events'),
    ('gb-not-web', 'recon', 0.4, '{"country": ["GB"], "event": {"column": "dst_port", "not_in": [80, 443]}}', 'sensors.events'),
    ('big-transfer', 'exfil', 0.5, '{"event": {"column": "bytes", "min": 1000, "max": 100000}}', 'sensors.events'),
    ('to-10-0-0-2', NULL, 0.3, '{"event": {"column": "dst_ip", "eq": "10.0.0.2"}}', 'sensors.events');
RESET ROLE;
SELECT c.relowner::regrole AS view_owner, has_table_privilege('ev_reader', c.oid, 'SELECT') AS reader_keeps_grant
FROM pg_class AS c WHERE c.oid = 'sensors.events_enriched'::regclass;
SELECT event_tables, enabled_rules AS address_rules FROM ip_inventory_tag_state;
-- Address rules only are materialized: event rules give no address tags.
SELECT count(*) FILTER (WHERE tags <> '{}') AS tagged_addresses FROM ip_inventory;

\echo '-- event tags per event and address column (the address part is matched per column)'
SET ROLE ev_reader;
SELECT id, dst_port, protocol, bytes, ok, src_country, src_event_tags, src_event_tag_confidence, dst_event_tags
FROM sensors.events_enriched ORDER BY id;
\echo '-- events and average confidence by event tag (docs/tags.md)'
SELECT t.tag, count(*) AS events, round(avg((e.src_event_tag_confidence ->> t.tag)::numeric), 3) AS avg_confidence
FROM sensors.events_enriched AS e, unnest(e.src_event_tags) AS t(tag) GROUP BY t.tag ORDER BY t.tag;
RESET ROLE;

\echo '-- the per-table tag report and the daily tag view count address and event tags'
-- An address rule giving an event rule's tag: an event with the tag from both counts once,
-- at the higher confidence (event 1: event rule 0.4, address 0.3; event 2: address only).
INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition) VALUES
    ('gb-not-web', 'recon', 0.3, '{"country": ["GB"]}');
SET client_min_messages = warning;
CALL ip_inventory_retag() \gset
SET ROLE ev_reader;
SELECT * FROM sensors.events_enriched_tag_report ORDER BY ip_column, tag NULLS LAST;
SELECT * FROM sensors.events_enriched_daily_tag ORDER BY day, ip_column, tag NULLS LAST;
\echo '-- events and average confidence by attack type (for a role that reads the rules)'
RESET ROLE;
SELECT a.attack_type, sum(r.events) AS events, round(sum(r.avg_confidence * r.events) / sum(r.events), 3) AS avg_confidence
FROM sensors.events_enriched_tag_report AS r
JOIN (SELECT DISTINCT tag, attack_type FROM ip_inventory_tag_rules WHERE attack_type IS NOT NULL) AS a ON a.tag = r.tag
WHERE r.ip_column = 'src_ip' GROUP BY a.attack_type ORDER BY a.attack_type;
DELETE FROM ip_inventory_tag_rules WHERE event_table IS NULL;
CALL ip_inventory_retag() \gset
RESET client_min_messages;

\echo '-- attacks: a grant on the report views shows nothing without SELECT on the enriched view and the events'
SET ROLE ev_owner;
GRANT SELECT ON sensors.events_enriched_tag_report, sensors.events_enriched_daily_tag TO ev_mallory;
RESET ROLE;
SET ROLE ev_mallory;
SELECT try($$SELECT count(*) FROM sensors.events_enriched_tag_report$$) AS mallory_report;
SELECT try($$SELECT count(*) FROM sensors.events_enriched_daily_tag$$) AS mallory_daily;
RESET ROLE;
SET ROLE ev_owner;
GRANT SELECT ON sensors.events_enriched TO ev_mallory;
RESET ROLE;
SET ROLE ev_mallory;
SELECT try($$SELECT count(*) FROM sensors.events_enriched_tag_report$$) AS mallory_report_with_view;
RESET ROLE;
SET ROLE ev_owner;
REVOKE ALL ON sensors.events_enriched, sensors.events_enriched_tag_report, sensors.events_enriched_daily_tag FROM ev_mallory;
RESET ROLE;

\echo '-- rule changes are in the view at once (no ip_inventory_enriched_view call)'
SET ROLE ev_tagger;
UPDATE ip_inventory_tag_rules SET confidence = 0.75 WHERE tag = 'ssh-probe' AND confidence = 0.7;
UPDATE ip_inventory_tag_rules SET enabled = false WHERE tag = 'big-transfer';
DELETE FROM ip_inventory_tag_rules WHERE tag = 'to-10-0-0-2';
INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition, event_table) VALUES
    ('telnet', 'scanning', 0.6, '{"event": {"column": "protocol", "in": ["telnet"]}, "not": {"country": ["US"]}}', 'sensors.events');
RESET ROLE;
SET ROLE ev_reader;
SELECT id, src_event_tags, src_event_tag_confidence, dst_event_tags FROM sensors.events_enriched ORDER BY id;
RESET ROLE;
-- The views over the enriched view follow its replacement.
SET ROLE ev_reader;
SELECT * FROM sensors.events_enriched_tag_report WHERE ip_column = 'src_ip' ORDER BY tag NULLS LAST;
RESET ROLE;
\echo '-- all event rules disabled: empty again'
UPDATE ip_inventory_tag_rules SET enabled = false WHERE event_table IS NOT NULL;
SELECT event_tables FROM ip_inventory_tag_state;
SELECT id, src_event_tags, dst_event_tags FROM sensors.events_enriched ORDER BY id;
UPDATE ip_inventory_tag_rules SET enabled = true WHERE tag <> 'big-transfer';

\echo '-- bad event conditions are refused when written'
SET ROLE ev_tagger;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_prot", "eq": 22}}', 'sensors.events')$$) AS unknown_column;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "eq": "22"}}', 'sensors.events')$$) AS string_for_int;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "protocol", "in": ["ssh", 22]}}', 'sensors.events')$$) AS number_for_text;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "ok", "eq": 1}}', 'sensors.events')$$) AS number_for_bool;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "eq": 99999999999}}', 'sensors.events')$$) AS out_of_range;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "eq": 22.5}}', 'sensors.events')$$) AS fraction_for_int;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_ip", "in": ["not-an-ip"]}}', 'sensors.events')$$) AS bad_inet;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "protocol", "min": 1}}', 'sensors.events')$$) AS range_on_text;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "eq": 22, "in": [22]}}', 'sensors.events')$$) AS two_operators;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "like": "2%"}}', 'sensors.events')$$) AS unknown_operator;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "in": []}}', 'sensors.events')$$) AS empty_in;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": []}', 'sensors.events')$$) AS empty_event;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "port2", "eq": 22}}', 'sensors.events')$$) AS domain_column;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "ts", "eq": "2026-03-01"}}', 'sensors.events')$$) AS timestamp_column;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "eq": 22}}')$$) AS event_without_table;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"country": ["GB"]}', 'sensors.events')$$) AS table_without_event;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "eq": 22}, "any": [{"event": {"column": "dst_port", "eq": 23}}]}', 'sensors.events')$$) AS nested_event;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "eq": 22}, "any": [{"in_list": ["x"]}]}', 'sensors.events')$$) AS unknown_list_in_event_rule;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "eq": 22}}', 'sensors.nope')$$) AS no_such_table;
SELECT try($$UPDATE ip_inventory_tag_rules SET condition = '{"event": {"column": "nope", "eq": 1}}' WHERE tag = 'telnet'$$) AS bad_update;
RESET ROLE;
\echo '-- in_list is refused in event rules (the view runs as its reader)'
CREATE TABLE public.own_nets (network cidr PRIMARY KEY, label text);
SELECT ip_list_register('own', 'public.own_nets', NULL) IS NOT NULL AS registered;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('x', 0.5, '{"event": {"column": "dst_port", "eq": 22}, "any": [{"in_list": ["own"]}]}', 'sensors.events')$$) AS in_list_in_event_rule;

\echo '-- attacks: ev_mallory may not write rules nor replace views; values are data, column names checked'
SET ROLE ev_mallory;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES ('pwn', 1, '{"event": {"column": "dst_port", "eq": 22}}', 'sensors.events')$$) AS mallory_insert;
SELECT try($$SELECT _ip_inventory_enriched_view_refresh('sensors.events')$$) AS mallory_refresh;
SELECT try($$SELECT _ip_inventory_tag_event_tags_sql('sensors.events', 'i1')$$) AS mallory_compile;
RESET ROLE;
SET ROLE ev_tagger;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table)
             VALUES ('inject', 0.5, '{"event": {"column": "dst_port\" OR pg_sleep(1) IS NULL OR \"x", "eq": 1}}', 'sensors.events')$$) AS column_with_sql;
SELECT try($$INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table)
             VALUES ('inject', 0.5, '{"event": {"column": "protocol", "in": ["ssh''::text) OR (SELECT pg_sleep(1) IS NULL) OR (''x"]}}', 'sensors.events')$$) AS value_with_sql;
SELECT try($$SELECT _ip_inventory_enriched_view_refresh('sensors.events')$$) AS tagger_refresh;
RESET ROLE;
SET ROLE ev_reader;
-- The value is one literal: had it become SQL, its OR would tag every event.
SELECT count(*) FILTER (WHERE 'inject' = ANY (src_event_tags)) AS injected, count(*) AS events FROM sensors.events_enriched;
RESET ROLE;
SELECT strpos(pg_get_viewdef('sensors.events_enriched'),
              quote_literal($v$ssh'::text) OR (SELECT pg_sleep(1) IS NULL) OR ('x$v$)) > 0 AS value_is_one_literal,
       c.relowner::regrole AS view_owner
FROM pg_class AS c WHERE c.oid = 'sensors.events_enriched'::regclass;
-- A reader needs nothing of the rules.
SELECT has_table_privilege('ev_reader', 'ip_inventory_tag_rules', 'SELECT') AS reader_reads_rules;

\echo '-- a dropped view or an unattached table does not block rule changes; a new view has the rules'
SET ROLE ev_owner;
DROP VIEW sensors.events_enriched CASCADE;
CREATE TABLE sensors.unattached (port int);
RESET ROLE;
SET ROLE ev_tagger;
UPDATE ip_inventory_tag_rules SET confidence = 0.8 WHERE tag = 'ssh-probe' AND confidence = 0.75;
INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES
    ('other', 0.5, '{"event": {"column": "port", "eq": 1}}', 'sensors.unattached');
RESET ROLE;
SELECT event_tables FROM ip_inventory_tag_state;
SET ROLE ev_owner;
SELECT ip_inventory_enriched_view('sensors.events') IS NOT NULL AS recreated;
RESET ROLE;
SELECT id, src_event_tags, src_event_tag_confidence FROM sensors.events_enriched ORDER BY id;

\echo '-- a rule no longer valid for its table (column of another type) matches nothing, the view still builds'
SET ROLE ev_owner;
DROP VIEW sensors.events_enriched CASCADE;
ALTER TABLE sensors.events ALTER COLUMN protocol TYPE int USING NULL;
SELECT ip_inventory_enriched_view('sensors.events') IS NOT NULL AS recreated;
RESET ROLE;
SELECT id, src_event_tags, src_event_tag_confidence FROM sensors.events_enriched ORDER BY id;

\echo '-- pg_dump / pg_restore: event rules and the view come back, and rule changes still replace it'
CREATE TABLE view_before AS SELECT id, src_event_tags, src_event_tag_confidence FROM sensors.events_enriched;
\! "$IPI_PGBIN/pg_dump" -Fc -f "$IPI_SCRATCH/ipi_event_rules.dump" ipi_test && "$IPI_PGBIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS ipi_restore_ev" -c "CREATE DATABASE ipi_restore_ev" && "$IPI_PGBIN/pg_restore" -d ipi_restore_ev "$IPI_SCRATCH/ipi_event_rules.dump" && echo restored
\c ipi_restore_ev
SELECT count(*) AS differences FROM (
    (SELECT id, src_event_tags, src_event_tag_confidence FROM sensors.events_enriched
     EXCEPT SELECT * FROM view_before)
    UNION ALL (SELECT * FROM view_before
     EXCEPT SELECT id, src_event_tags, src_event_tag_confidence FROM sensors.events_enriched)) AS d;
SELECT count(*) AS event_rules, (SELECT event_tables FROM ip_inventory_tag_state) AS event_tables
FROM ip_inventory_tag_rules WHERE event_table IS NOT NULL;
-- The rule on protocol (now an integer column) came back, still matching nothing.
SELECT rule_id, tag, condition -> 'event' -> 0 ->> 'column' AS column FROM ip_inventory_tag_rules WHERE condition @> '{"event": [{"column": "protocol"}]}';
UPDATE ip_inventory_tag_rules SET confidence = 0.85 WHERE tag = 'ssh-probe' AND confidence = 0.8;
SELECT id, src_event_tags, src_event_tag_confidence FROM sensors.events_enriched WHERE id = 1;
\c postgres
DROP DATABASE ipi_restore_ev;

\c ipi_test
\echo '-- ip_inventory_health reports event rules whose table was dropped or detached'
SELECT "check", status, value FROM ip_inventory_health() WHERE "check" = 'event_rules';
SET ROLE ev_owner;
CREATE TABLE sensors.gone (id int, src_ip inet, port int);
SELECT ip_inventory_attach('sensors.gone', ARRAY['src_ip']);
SELECT ip_inventory_enriched_view('sensors.gone');
RESET ROLE;
INSERT INTO ip_inventory_tag_rules (tag, confidence, condition, event_table) VALUES
    ('gone-port', 0.5, '{"event": {"column": "port", "eq": 1}}', 'sensors.gone');
SELECT rule_id AS gone_rule FROM ip_inventory_tag_rules WHERE tag = 'gone-port' \gset
SELECT "check", status, value FROM ip_inventory_health() WHERE "check" = 'event_rules';
SET ROLE ev_owner;
DROP TABLE sensors.gone CASCADE;
RESET ROLE;
SELECT "check", status, value,
       regexp_replace(detail, 'table [0-9]+ dropped', 'table <oid> dropped', 'g') AS detail
FROM ip_inventory_health() WHERE "check" = 'event_rules';
-- The DELETE the detail gives clears both.
DELETE FROM ip_inventory_tag_rules AS r WHERE r.event_table IS NOT NULL AND NOT EXISTS (SELECT FROM ip_inventory_observed_tables AS o WHERE o.event_table = r.event_table);
SELECT "check", status, value FROM ip_inventory_health() WHERE "check" = 'event_rules';
SELECT count(*) AS rules_left, count(*) FILTER (WHERE rule_id = :gone_rule) AS gone_rule_left FROM ip_inventory_tag_rules WHERE event_table IS NOT NULL;

\echo '-- ip_inventory_detach drops the tag report with the other views'
SELECT enriched_views FROM ip_inventory_observed_tables WHERE event_table = 'sensors.events'::regclass;
SELECT ip_inventory_detach('sensors.events');
SELECT count(*) AS views_left FROM pg_class WHERE relnamespace = 'sensors'::regnamespace AND relkind = 'v';
