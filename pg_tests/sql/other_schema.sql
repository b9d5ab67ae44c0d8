-- The extension in a schema of its own that is on nobody's search_path: every workflow still
-- works, because everything the extension names is qualified (@extschema@. in the SQL files,
-- the extension's schema in SQL that Rust builds). A name left unqualified fails here with
-- "does not exist" (42883 / 42P01), as it would for a user who installs it this way. Every
-- function of the extension is in that schema.
\ir helpers.psql
CREATE SCHEMA ipi;
CREATE EXTENSION ip_inventory SCHEMA ipi;
\ir use_test_databases.psql
\ir use_fake_sources.psql
SHOW search_path;
SELECT n.nspname AS schema, count(*) > 0 AS has_functions FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.oid IN (SELECT objid FROM pg_depend WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ip_inventory')
                AND deptype = 'e' AND classid = 'pg_proc'::regclass)
GROUP BY n.nspname;

-- Lookups.
SELECT ipi.ip_country('81.2.69.160') AS country, ipi.ip_asn('1.128.0.1') AS asn,
       (ipi.enrich_ip('81.2.69.160')).city AS city, ipi.ip_class('10.1.2.3') AS class,
       ipi.mmdb_lookup('81.2.69.160', 'city', ARRAY['country', 'iso_code']) AS by_path;

-- Net new, by trigger, on two address columns.
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet);
SELECT ipi.ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
INSERT INTO raw_events SELECT now() - interval '1 day' + i * interval '1 min',
       ('81.2.69.' || (140 + i % 20))::inet, '10.0.0.1'
FROM generate_series(1, 200) AS i;
SELECT count(*) AS addresses, sum(observation_count) AS observations,
       count(*) FILTER (WHERE geo_country IS NOT NULL) AS enriched
FROM ipi.ip_inventory;

-- A historical import backfilled (and attached), enrich_pending and retention (dry run), as
-- pg_cron runs them: a new session with the default search_path.
CREATE TABLE old_events (event_ts timestamptz NOT NULL, src_ip inet);
INSERT INTO old_events SELECT now() - interval '500 days' + i * interval '1 min', ('89.160.20.' || (128 + i % 12))::inet
FROM generate_series(1, 120) AS i;
\c
SET client_min_messages = warning;
CALL ipi.ip_inventory_backfill('old_events', ARRAY['src_ip'], 'event_ts', 50, attach => true, summary => NULL) \gset backfill_
SELECT (:'backfill_summary'::jsonb) - 'seconds' AS backfill;
UPDATE ipi.ip_inventory SET maxmind_ts = NULL, maxmind_build = NULL WHERE ip_address << '81.2.69.0/24';
CALL ipi.ip_inventory_enrich_pending(5) \gset pending_
SELECT (:'pending_summary'::jsonb) ->> 'enriched' AS enriched_again;
CALL ipi.ip_inventory_retention(interval '365 days') \gset retention_
SELECT (:'retention_summary'::jsonb) - 'seconds' - 'cutoff' AS retention;
RESET client_min_messages;
INSERT INTO old_events VALUES (now() - interval '499 days', '89.160.20.128');
SELECT count(*) AS addresses, sum(observation_count) AS observations FROM ipi.ip_inventory;
SELECT event_table, ip_columns FROM ipi.ip_inventory_observed_tables ORDER BY 1;

-- The cascade, every source, against the loopback stand-ins.
SELECT s.key AS source, (s.value ->> 'selected')::int > 0 AS selected_some, s.value ->> 'error' AS error
FROM ipi.cascade_refresh('all', 50) AS r, jsonb_each(r -> 'sources') AS s ORDER BY 1;
SELECT count(*) FILTER (WHERE cymru_ts IS NOT NULL) > 0 AS cymru_answered,
       count(*) FILTER (WHERE greynoise_ts IS NOT NULL) > 0 AS greynoise_answered,
       count(*) FILTER (WHERE rdns_ts IS NOT NULL) > 0 AS rdns_answered
FROM ipi.ip_inventory;

-- Reports and health read the same way by a psql user or a BI tool.
SELECT "check", status FROM ipi.ip_inventory_health() ORDER BY 1;
SELECT count(*) AS checks_that_failed FROM ipi.ip_inventory_health() WHERE detail ~ 'does not exist|permission denied';
SELECT count(*) > 0 AS coverage FROM ipi.ip_inventory_coverage;
SELECT count(*) > 0 AS top_countries FROM ipi.ip_inventory_top_countries;
SELECT count(*) > 0 AS top_asns FROM ipi.ip_inventory_top_asns;
SELECT count(*) > 0 AS staleness FROM ipi.ip_inventory_staleness;
SELECT count(*) > 0 AS asn_sources FROM ipi.ip_inventory_asn_sources;
SELECT count(*) >= 0 AS progress FROM ipi.ip_inventory_progress;
SELECT count(*) > 0 AS stats FROM ipi.ip_inventory_stats;
SELECT ipi.maxmind_reload() IS NOT NULL AS reloaded;

-- Network lists: registration puts a trigger that calls the extension's function.
CREATE TABLE sensors (network cidr NOT NULL, label text);
INSERT INTO sensors VALUES ('81.2.69.0/24', 'edge'), ('81.2.69.128/25', 'edge-b');
SELECT ipi.ip_list_register('sensors', 'sensors', 'Our sensors');
SELECT m.network, m.label FROM ipi.ip_list_match('81.2.69.160', 'sensors') AS m;
INSERT INTO sensors VALUES ('81.2.69.160/32', 'one');
SELECT m.network, m.label FROM ipi.ip_list_match('81.2.69.160', 'sensors') AS m;
SELECT ipi.ip_list_unregister('sensors');

-- Detach and drop leave nothing behind.
SELECT ipi.ip_inventory_detach('raw_events'), ipi.ip_inventory_detach('old_events');
SELECT count(*) AS triggers_left FROM pg_trigger
WHERE tgrelid IN ('raw_events'::regclass, 'old_events'::regclass, 'sensors'::regclass) AND NOT tgisinternal;
DROP EXTENSION ip_inventory;
DROP SCHEMA ipi;
