-- Backfill: counting an existing event table into the inventory, in batches that commit with
-- their position; exact after a failure, a killed backend, reruns and appends.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql

-- History loaded before the extension existed: 30 000 events.
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet, payload text);
INSERT INTO raw_events
SELECT '2026-01-01'::timestamptz + i * interval '1 minute',
       CASE i % 4 WHEN 0 THEN ('81.2.69.' || (128 + i % 64)) WHEN 1 THEN ('89.160.20.' || (128 + i % 100))
                  WHEN 2 THEN ('2001:218::' || to_hex(i % 50)) ELSE ('10.1.' || (i % 7) || '.1') END::inet,
       CASE WHEN i % 3 = 0 THEN ('192.168.0.' || (i % 5))::inet END,
       repeat('x', 40)
FROM generate_series(1, 30000) AS i;
-- A sentinel event in the middle, and a failure injected when the inventory records it.
UPDATE raw_events SET src_ip = '203.0.113.77' WHERE event_ts = '2026-01-01'::timestamptz + 15000 * interval '1 minute';
CREATE TABLE fault (on_sentinel boolean, sleep_per_batch float8);
INSERT INTO fault VALUES (true, 0);
-- (The recording statement pins search_path to pg_catalog: the test's own trigger names its table.)
CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ip_address = '203.0.113.77' AND (SELECT on_sentinel FROM public.fault) THEN
        RAISE EXCEPTION 'injected failure';
    END IF;
    PERFORM pg_sleep((SELECT sleep_per_batch FROM public.fault)) WHERE NEW.ip_address = '81.2.69.128';
    RETURN NEW;
END $$;
CREATE TRIGGER inject_fault BEFORE INSERT ON ip_inventory FOR EACH ROW EXECUTE FUNCTION inject_fault();

-- The other event tables used below (filled later).
CREATE TABLE small (ts timestamptz, ip inet);
CREATE TABLE honeypot_log (seen timestamptz, peer inet);
CREATE TABLE live_events (ts timestamptz, src inet);
-- What the events of all these tables say, to compare with.
CREATE VIEW truth AS
SELECT ip, count(*) AS n, min(event_ts) AS first_seen, max(event_ts) AS last_seen
FROM (SELECT ip_canonical(src_ip) AS ip, event_ts FROM raw_events
      UNION ALL SELECT ip_canonical(dst_ip), event_ts FROM raw_events
      UNION ALL SELECT ip, ts FROM small
      UNION ALL SELECT peer, seen FROM honeypot_log
      UNION ALL SELECT src, ts FROM live_events) AS x
WHERE ip IS NOT NULL GROUP BY ip;
CREATE VIEW mismatches AS
SELECT count(*) AS mismatching_addresses FROM truth
FULL JOIN ip_inventory AS inv ON inv.ip_address = truth.ip
WHERE truth.n IS DISTINCT FROM inv.observation_count OR truth.first_seen IS DISTINCT FROM inv.first_seen_at
   OR truth.last_seen IS DISTINCT FROM inv.last_seen_at;

-- The first run fails in the batch holding the sentinel; the batches before it stay committed.
SET client_min_messages = warning;
CALL ip_inventory_backfill('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts', 2500);
RESET client_min_messages;
SELECT job, status, done_rows > 0 AND done_rows < 30000 AS partly_done, batches > 0 AS some_batches
FROM ip_inventory_progress;
-- What is counted is exactly the rows before the committed position.
SELECT (SELECT sum(observation_count) FROM ip_inventory)
     = (SELECT count(src_ip) + count(dst_ip) FROM raw_events
        WHERE ctid <= (SELECT resume_after FROM ip_inventory_jobs WHERE job = 'backfill:public.raw_events'))
       AS counted_exactly_the_committed_batches;
-- Fixed, the rerun continues there and ends exact.
UPDATE fault SET on_sentinel = false;
SET client_min_messages = warning;
CALL ip_inventory_backfill('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts', 2500) \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) - 'seconds' - 'batches' - 'this_run_rows' AS summary;
SELECT * FROM mismatches;
SELECT job, status, done_rows, total_rows, percent FROM ip_inventory_progress;
-- New public addresses were enriched inline; private ones never.
SELECT ip_class, count(*) AS addresses, count(maxmind_ts) AS enriched FROM ip_inventory GROUP BY 1 ORDER BY 1;

-- A rerun counts nothing; rows appended since are counted at the next run, once.
SET client_min_messages = warning;
CALL ip_inventory_backfill('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts', 2500) \gset
SELECT (:'summary'::jsonb) ->> 'this_run_rows' AS rerun_rows;
INSERT INTO raw_events VALUES ('2026-03-01', '81.2.69.130', '1.2.3.4', 'late'), ('2026-03-02', '1.2.3.4', NULL, 'late');
CALL ip_inventory_backfill('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts', 2500) \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) ->> 'this_run_rows' AS appended_rows;
SELECT * FROM mismatches;

-- Progress NOTICEs, one per batch (rates and times masked here).
INSERT INTO small SELECT '2026-02-01'::timestamptz + i * interval '1 s', ('81.2.69.' || (128 + i % 10))::inet
FROM generate_series(1, 500) AS i;
ANALYZE small;
\! "$IPI_PGBIN/psql" -X -q -c "CALL ip_inventory_backfill('small', ARRAY['ip'], 'ts', 200)" 2>&1 | sed -E 's/[0-9]+ rows\/s/N rows\/s/; s/ETA .*/ETA .../; s/"seconds": [0-9.]+/"seconds": S/' | grep -E 'NOTICE|rows'

-- Killed mid-run: the session's end releases the job; the rerun continues from the last
-- committed batch. (Each batch is slowed down so the kill lands mid-run.)
INSERT INTO honeypot_log SELECT '2026-04-01'::timestamptz + i * interval '1 s',
       CASE WHEN i % 100 = 0 THEN '81.2.69.128' ELSE ('89.160.20.' || (128 + i % 90)) END::inet
FROM generate_series(1, 20000) AS i;
ANALYZE honeypot_log;
UPDATE fault SET sleep_per_batch = 0.3;
\! "$IPI_PGBIN/psql" -X -q -c "CALL ip_inventory_backfill('honeypot_log', ARRAY['peer'], 'seen', 1000)" > /dev/null 2>&1 &
DO $$ BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN (SELECT batches FROM ip_inventory_jobs WHERE job = 'backfill:public.honeypot_log') >= 2;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT status AS while_running FROM ip_inventory_progress WHERE job = 'backfill:public.honeypot_log';
-- A second run of the same job meanwhile is refused.
SELECT regexp_replace(regexp_replace(try($$CALL ip_inventory_backfill('honeypot_log', ARRAY['peer'], 'seen', 1000)$$),
                      'process [0-9]+', 'process N', 'g'), 'backend\([0-9]+\)', 'backend(N)') AS second_run;
SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
WHERE query LIKE 'CALL ip_inventory_backfill(''honeypot_log''%' AND pid <> pg_backend_pid();
DO $$ BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'CALL ip_inventory_backfill(''honeypot_log''%'
                              AND pid <> pg_backend_pid());
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT status AS after_kill, done_rows < 20000 AS unfinished FROM ip_inventory_progress WHERE job = 'backfill:public.honeypot_log';
UPDATE fault SET sleep_per_batch = 0;
SET client_min_messages = warning;
CALL ip_inventory_backfill('honeypot_log', ARRAY['peer'], 'seen', 1000) \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) ->> 'status' AS status, (:'summary'::jsonb) ->> 'event_rows' AS event_rows;
SELECT * FROM mismatches;

-- A live table: attach => true reads the rest under a lock that holds off inserts and
-- attaches the trigger in the same transaction; later inserts are counted by the trigger.
INSERT INTO live_events SELECT '2026-05-01'::timestamptz + i * interval '1 s', '175.16.199.1' FROM generate_series(1, 3000) AS i;
SET client_min_messages = warning;
CALL ip_inventory_backfill('live_events', ARRAY['src'], 'ts', 1000, attach => true) \gset
RESET client_min_messages;
SELECT (:'summary'::jsonb) ->> 'attached' AS attached;
SELECT event_table, ip_columns, ts_column FROM ip_inventory_observed_tables WHERE event_table = 'live_events'::regclass;
INSERT INTO live_events VALUES ('2026-06-01', '175.16.199.1');
SELECT observation_count, last_seen_at FROM ip_inventory WHERE ip_address = '175.16.199.1';
-- Everything counted once, by the backfills or the triggers.
SELECT * FROM mismatches;
-- An observed table is refused: its rows would be counted twice.
SELECT try($$CALL ip_inventory_backfill('live_events', ARRAY['src'], 'ts')$$);

-- Other refusals.
SELECT try($$CALL ip_inventory_backfill('raw_events', ARRAY['src_ip'], 'event_ts')$$);
SELECT try($$CALL ip_inventory_backfill('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts', 0)$$);
SELECT try($$CALL ip_inventory_backfill('raw_events', ARRAY['payload'], 'event_ts')$$);
SELECT try($$CALL ip_inventory_backfill('no_such_table', ARRAY['src_ip'])$$);
-- Procedures that commit cannot run inside a transaction block.
BEGIN;
CALL ip_inventory_backfill('small', ARRAY['ip'], 'ts');
ROLLBACK;
