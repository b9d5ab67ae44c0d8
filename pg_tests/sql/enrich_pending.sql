-- enrich_pending: rows without MaxMind data, and rows from another database build, are
-- exactly the ones enriched; observation columns are never touched; resumable.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\! cp "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" "$IPI_SCRATCH/City.mmdb" && cp "$IPI_FIXTURES/maxmind/test-data/GeoLite2-ASN-Test.mmdb" "$IPI_SCRATCH/ASN.mmdb"
\set city :scratch/City.mmdb
\set asn :scratch/ASN.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
ALTER SYSTEM SET ip_inventory.asn_db = :'asn';
SELECT pg_reload_conf();
\c

CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
-- 20 addresses enriched at ingest, 12 imported with enrichment off, 3 private.
INSERT INTO raw_events SELECT '2026-11-01'::timestamptz + i * interval '1 min', ('81.2.69.' || (140 + i))::inet
FROM generate_series(1, 20) AS i;
SET ip_inventory.ingest_enrichment = off;
INSERT INTO raw_events SELECT '2025-06-01'::timestamptz + i * interval '1 min', ('89.160.20.' || (128 + i))::inet
FROM generate_series(1, 12) AS i;
RESET ip_inventory.ingest_enrichment;
INSERT INTO raw_events VALUES ('2026-11-02', '10.0.0.1'), ('2026-11-02', '10.0.0.2'), ('2026-11-02', '10.0.0.3');
-- Team Cymru answered for two addresses MaxMind has no ASN for, and for one it has
-- (written by hand here).
UPDATE ip_inventory SET asn_number = 64500, asn_org = 'Cymru Example', asn_source = 'cymru', cymru_ts = now()
WHERE ip_address IN ('81.2.69.141', '81.2.69.142', '89.160.20.130');
CREATE TABLE observations_before AS
SELECT ip_address, observation_count, first_seen_at, last_seen_at FROM ip_inventory;

SELECT source, eligible, never, stale FROM ip_inventory_staleness WHERE source = 'maxmind';
SELECT "check", status, value FROM ip_inventory_health() WHERE "check" = 'maxmind_pending';
SET client_min_messages = warning;
CALL ip_inventory_enrich_pending(5) \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) - 'seconds' AS summary;
SELECT count(*) FILTER (WHERE maxmind_ts IS NULL) AS public_never_enriched,
       count(*) FILTER (WHERE geo_country = 'SE') AS swedish
FROM ip_inventory WHERE ip_class = 'public';

-- A newer City build is installed: every public row the old build answered is pending, and
-- exactly those are enriched, in two runs (the first stops at max_rows).
\! ./set_build_epoch.py "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" "$IPI_SCRATCH/City.mmdb.new" 1770850169 && mv "$IPI_SCRATCH/City.mmdb.new" "$IPI_SCRATCH/City.mmdb"
SELECT maxmind_reload() -> 'databases' -> 0 ->> 'build_time' AS new_city_build;
SELECT maxmind_build, count(*) FROM ip_inventory WHERE ip_class = 'public' GROUP BY 1 ORDER BY 1;
SELECT source, eligible, never, stale FROM ip_inventory_staleness WHERE source = 'maxmind';
SET client_min_messages = warning;
CALL ip_inventory_enrich_pending(batch_size => 7, max_rows => 10) \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) - 'seconds' AS first_run;
SELECT job, status, done_rows, total_rows FROM ip_inventory_progress WHERE job = 'enrich_pending';
SET client_min_messages = warning;
CALL ip_inventory_enrich_pending(batch_size => 7) \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) ->> 'enriched' AS second_run_enriched;
SELECT job, status, done_rows, total_rows FROM ip_inventory_progress WHERE job = 'enrich_pending';
SELECT maxmind_build, maxmind_asn_build, count(*) FROM ip_inventory WHERE ip_class = 'public' GROUP BY 1, 2 ORDER BY 1;
SELECT source, never, stale FROM ip_inventory_staleness WHERE source = 'maxmind';
-- Nothing pending now: a rerun enriches nothing.
SET client_min_messages = warning;
CALL ip_inventory_enrich_pending() \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) ->> 'enriched' AS rerun_enriched;

-- Observation columns are exactly as before; private rows were never touched.
SELECT count(*) AS changed_observations FROM observations_before AS b
JOIN ip_inventory AS i USING (ip_address)
WHERE (b.observation_count, b.first_seen_at, b.last_seen_at) IS DISTINCT FROM (i.observation_count, i.first_seen_at, i.last_seen_at);
SELECT ip_address, maxmind_ts, geo_country FROM ip_inventory WHERE ip_class = 'private' ORDER BY 1;
-- Team Cymru's ASNs stay where MaxMind has none; MaxMind's win where it has one.
SELECT ip_address, asn_number, asn_org, asn_source FROM ip_inventory
WHERE ip_address IN ('81.2.69.141', '81.2.69.142', '89.160.20.129', '89.160.20.130') ORDER BY 1;

-- Each batch's UPDATE probes the primary key per address and never hashes the whole
-- inventory: on 20,000 rows in 20 batches, the planner left to its costs scanned the table
-- once per batch (21 sequential scans); now only the job's count reads it whole.
TRUNCATE ip_inventory, ip_inventory_jobs;
INSERT INTO ip_inventory (ip_address, first_seen_at, last_seen_at, observation_count, ip_class)
SELECT '11.0.0.0'::inet + g, now(), now(), 1, 'public' FROM generate_series(1, 20000) AS g;
ANALYZE ip_inventory;
SELECT pg_stat_force_next_flush();
CREATE TEMP TABLE seq_before AS SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'ip_inventory'::regclass;
-- With the default work_mem the hash looks too big to the planner anyway; 64MB is common.
SET work_mem = '64MB';
SET client_min_messages = warning;
CALL ip_inventory_enrich_pending(1000) \gset
RESET client_min_messages;
RESET work_mem;
SELECT pg_stat_force_next_flush();
SELECT s.seq_scan - b.seq_scan AS inventory_seq_scans
FROM pg_stat_user_tables AS s, seq_before AS b WHERE s.relid = 'ip_inventory'::regclass;
SELECT (:'summary'::jsonb) ->> 'batches' AS batches, count(*) AS enriched FROM ip_inventory WHERE maxmind_ts IS NOT NULL;

-- Refusals: nothing configured, bad arguments.
SELECT try($$CALL ip_inventory_enrich_pending(0)$$);
SELECT try($$CALL ip_inventory_enrich_pending(10, -1)$$);
ALTER SYSTEM RESET ip_inventory.city_db;
ALTER SYSTEM RESET ip_inventory.asn_db;
SELECT pg_reload_conf();
\c
SELECT try($$CALL ip_inventory_enrich_pending()$$);
