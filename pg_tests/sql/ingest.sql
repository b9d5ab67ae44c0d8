-- Net new: the observe trigger on an event table (the raw_events example).
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql

CREATE TABLE raw_events (
    event_id  text PRIMARY KEY,
    event_ts  timestamptz NOT NULL,
    src_ip    inet,
    dst_ip    inet,
    payload   text
);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
SELECT event_table, ip_columns, ts_column, enabled FROM ip_inventory_observed_tables;
SELECT tgname, tgtype, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'raw_events'::regclass;

-- One statement, many rows: one aggregated upsert. Counts are appearances; first and last
-- seen come from event_ts; new public addresses are enriched from MaxMind inline, others not;
-- addresses are kept in canonical form (IPv4-mapped as IPv4, no netmask).
INSERT INTO raw_events VALUES
    ('e1', '2026-11-01 10:00+00', '81.2.69.160', '10.0.0.5', 'ssh login'),
    ('e2', '2026-11-01 10:02+00', '81.2.69.160', '10.0.0.5', 'ssh login'),
    ('e3', '2026-11-01 09:00+00', '89.160.20.128', '10.0.0.5', 'http GET /'),
    ('e4', '2026-11-01 11:00+00', '::ffff:216.160.83.56', '10.0.0.6', 'telnet'),
    ('e4b', '2026-11-01 11:01+00', '216.160.83.56/24', NULL, 'same host: IPv4, with a netmask'),
    ('e5', '2026-11-01 11:30+00', NULL, '10.0.0.6', 'no source'),
    ('e6', '2026-11-01 12:00+00', '10.0.0.6', '10.0.0.6', 'same address twice');
SELECT ip_address, observation_count, first_seen_at, last_seen_at, ip_class, geo_country, geo_city,
       asn_number, asn_source, maxmind_ts IS NOT NULL AS enriched, maxmind_build
FROM ip_inventory ORDER BY ip_address;

-- Existing addresses only get their observation columns updated.
SELECT maxmind_ts AS ts_before FROM ip_inventory WHERE ip_address = '81.2.69.160' \gset
INSERT INTO raw_events VALUES ('e7', '2026-10-01 08:00+00', '81.2.69.160', NULL, 'older event');
SELECT observation_count, first_seen_at, last_seen_at, maxmind_ts = :'ts_before' AS not_re_enriched
FROM ip_inventory WHERE ip_address = '81.2.69.160';

-- Exactly once: replaying the same events with ON CONFLICT DO NOTHING counts nothing.
SELECT sum(observation_count) AS total_before FROM ip_inventory \gset
INSERT INTO raw_events VALUES
    ('e1', '2026-11-01 10:00+00', '81.2.69.160', '10.0.0.5', 'ssh login'),
    ('e3', '2026-11-01 09:00+00', '89.160.20.128', '10.0.0.5', 'http GET /')
ON CONFLICT DO NOTHING;
-- A replay mixing old and new events counts only the new one.
INSERT INTO raw_events VALUES
    ('e2', '2026-11-01 10:02+00', '81.2.69.160', '10.0.0.5', 'ssh login'),
    ('e8', '2026-11-02 10:00+00', '81.2.69.160', NULL, 'new')
ON CONFLICT DO NOTHING;
SELECT sum(observation_count) - :total_before AS counted_by_replays FROM ip_inventory;
-- A rolled-back insert leaves no trace.
BEGIN;
INSERT INTO raw_events VALUES ('e9', '2026-11-03 10:00+00', '1.2.3.4', '81.2.69.160', 'rolled back');
SELECT count(*) AS visible_inside FROM ip_inventory WHERE ip_address = '1.2.3.4';
ROLLBACK;
SELECT count(*) AS after_rollback FROM ip_inventory WHERE ip_address = '1.2.3.4';
SELECT observation_count FROM ip_inventory WHERE ip_address = '81.2.69.160';
-- A failed statement (duplicate key) leaves no trace either.
INSERT INTO raw_events VALUES ('e10', '2026-11-03 10:00+00', '1.2.3.4', NULL, 'x'), ('e1', now(), '1.2.3.4', NULL, 'dup');
SELECT count(*) AS after_failed_insert FROM ip_inventory WHERE ip_address = '1.2.3.4';

-- COPY fires the statement trigger too.
COPY raw_events FROM STDIN (FORMAT csv);
c1,2026-11-04 10:00+00,1.2.3.4,,copied
c2,2026-11-04 10:01+00,1.2.3.4,,copied
c3,2026-11-04 10:02+00,2001:218::1,fd00::1,copied
\.
SELECT ip_address, observation_count, ip_class, geo_country FROM ip_inventory
WHERE ip_address IN ('1.2.3.4', '2001:218::1', 'fd00::1') ORDER BY 1;

-- The inventory always equals what the events say (appearances per address).
SELECT count(*) AS mismatching_addresses FROM (
    SELECT ip, count(*) AS n, min(event_ts) AS f, max(event_ts) AS l
    FROM (SELECT ip_canonical(src_ip) AS ip, event_ts FROM raw_events
          UNION ALL SELECT ip_canonical(dst_ip), event_ts FROM raw_events) AS x
    WHERE ip IS NOT NULL GROUP BY ip) AS truth
FULL JOIN ip_inventory AS inv ON inv.ip_address = truth.ip
WHERE truth.n IS DISTINCT FROM inv.observation_count OR truth.f IS DISTINCT FROM inv.first_seen_at
   OR truth.l IS DISTINCT FROM inv.last_seen_at;

-- The switch for fast historical imports: counts are kept, enrichment waits for
-- ip_inventory_enrich_pending().
SET ip_inventory.ingest_enrichment = off;
INSERT INTO raw_events VALUES ('h1', '2025-01-01', '175.16.199.1', NULL, 'import'),
                              ('h2', '2025-01-02', '175.16.199.1', NULL, 'import');
RESET ip_inventory.ingest_enrichment;
SELECT ip_address, observation_count, geo_country, maxmind_ts IS NULL AS pending FROM ip_inventory
WHERE ip_address = '175.16.199.1';

-- Events without a time column are seen now.
CREATE TABLE web_hits (client inet, path text);
SELECT ip_inventory_attach('web_hits', ARRAY['client']);
BEGIN;
INSERT INTO web_hits VALUES ('202.196.224.1', '/'), ('202.196.224.1', '/admin');
SELECT observation_count, first_seen_at = now() AS seen_now, geo_country FROM ip_inventory WHERE ip_address = '202.196.224.1';
COMMIT;
SELECT event_table, ip_columns, ts_column, enabled FROM ip_inventory_observed_tables ORDER BY 1;
SELECT ip_inventory_detach('web_hits');
INSERT INTO web_hits VALUES ('202.196.224.1', '/again');
SELECT observation_count AS not_counted_after_detach FROM ip_inventory WHERE ip_address = '202.196.224.1';

-- Unusable MaxMind databases never block ingest: the rows wait, one WARNING per session.
\! cp "$IPI_FIXTURES/maxmind/test-data/GeoLite2-ASN-Test.mmdb" "$IPI_SCRATCH/not-a-city.mmdb"
\set bad :scratch/not-a-city.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'bad';
SELECT pg_reload_conf();
\c
INSERT INTO raw_events VALUES ('w1', '2026-11-05', '67.43.156.1', NULL, 'city broken');
INSERT INTO raw_events VALUES ('w2', '2026-11-05', '67.43.156.2', NULL, 'no second warning');
SELECT ip_address, observation_count, geo_country, asn_number, maxmind_build IS NULL AS no_city_build,
       maxmind_asn_build IS NOT NULL AS asn_consulted
FROM ip_inventory WHERE ip_address << '67.43.156.0/24' ORDER BY 1;
ALTER SYSTEM RESET ip_inventory.city_db;
ALTER SYSTEM RESET ip_inventory.asn_db;
SELECT pg_reload_conf();
\c
INSERT INTO raw_events VALUES ('w3', '2026-11-05', '67.43.156.3', NULL, 'nothing configured');
SELECT ip_address, observation_count, maxmind_ts IS NULL AS pending FROM ip_inventory WHERE ip_address = '67.43.156.3';

-- ip_canonical(), and the constraint that keeps the inventory canonical.
SELECT ip_canonical('::ffff:1.2.3.4/120'), ip_canonical('10.1.2.3/8'), ip_canonical('2001:db8::1/64'),
       ip_canonical('2001:db8::1');
SELECT try($$INSERT INTO ip_inventory (ip_address, first_seen_at, last_seen_at, observation_count, ip_class)
             VALUES ('::ffff:9.9.9.9', '2026-01-01', '2026-01-01', 1, 'public')$$);

-- Attaching checks the columns.
CREATE TABLE bad_events (src text, ts text, a inet);
SELECT try($$SELECT ip_inventory_attach('bad_events', ARRAY['src'])$$);
SELECT try($$SELECT ip_inventory_attach('bad_events', ARRAY['missing'])$$);
SELECT try($$SELECT ip_inventory_attach('bad_events', ARRAY['a'], 'ts')$$);
SELECT try($$SELECT ip_inventory_attach('bad_events', ARRAY['a', 'a'])$$);
SELECT try($$SELECT ip_inventory_attach('bad_events', ARRAY[]::text[])$$);
SELECT try($$SELECT ip_inventory_attach('ip_inventory', ARRAY['ip_address'])$$);
-- The trigger function refuses other uses.
CREATE TRIGGER wrong AFTER INSERT ON bad_events FOR EACH ROW EXECUTE FUNCTION ip_inventory_observe('{a}', '');
SELECT try($$INSERT INTO bad_events VALUES ('x', 'y', '1.2.3.4')$$);

-- Everything works for a session whose search_path does not include the extension's schema.
ALTER SYSTEM SET ip_inventory.city_db = :'city';
SELECT pg_reload_conf();
\c
SET search_path = pg_catalog;
INSERT INTO public.raw_events VALUES ('sp1', '2026-11-06', '175.16.199.2', NULL, 'other search_path');
CREATE TABLE public.sp_events (ts timestamptz, ip inet);
INSERT INTO public.sp_events VALUES ('2026-11-06', '175.16.199.3');
SET client_min_messages = warning;
CALL public.ip_inventory_backfill('public.sp_events', ARRAY['ip'], 'ts') \gset
CALL public.ip_inventory_enrich_pending() \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) - 'seconds' AS backfill;
-- The backfill is the same job whatever the search_path or the table's name: a rerun from
-- a session with the default search_path, after a rename, counts nothing again.
RESET search_path;
ALTER TABLE sp_events RENAME TO sp_events_renamed;
SET client_min_messages = warning;
CALL ip_inventory_backfill('sp_events_renamed', ARRAY['ip'], 'ts') \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) ->> 'job' AS job, (:'summary'::jsonb) ->> 'this_run_rows' AS counted_again;
SET search_path = pg_catalog;
SELECT ip_address, observation_count, geo_country, maxmind_ts IS NOT NULL AS enriched
FROM public.ip_inventory WHERE ip_address IN ('175.16.199.2', '175.16.199.3') ORDER BY 1;
SELECT job, source FROM public.ip_inventory_progress;
SELECT "check", status FROM public.ip_inventory_health() WHERE "check" = 'observed_tables';
RESET search_path;
