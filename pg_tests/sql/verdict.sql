-- ip_verdict(): what a live consumer (a honeypot orchestrator) gets for an address it
-- escalates: known, stale and unknown addresses; stale answers are queued (shared memory)
-- and the next cascade_refresh() of the source asks about them first; an unknown address is
-- added by that refresh; the queue is bounded; the verdict never waits while a refresh or a
-- recorder holds the row; only roles granted EXECUTE may call it.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT '2026-11-20', ip::inet FROM unnest(ARRAY[
    '8.8.8.8', '8.8.8.8', '71.6.135.131', '81.2.69.160', '192.168.1.1']) AS ip;
SELECT cascade_refresh('all', 100) ->> 'failed' AS failed;
-- A dump of a verdict without the times, which the test compares instead of printing.
CREATE FUNCTION show(ip inet) RETURNS TABLE (v jsonb, times jsonb) LANGUAGE sql AS $$
    SELECT to_jsonb(v) - ARRAY['first_seen_at', 'last_seen_at', 'maxmind_ts', 'cymru_ts', 'greynoise_ts', 'rdns_ts'],
           jsonb_build_object('seen', v.first_seen_at IS NOT NULL, 'maxmind', v.maxmind_ts IS NOT NULL,
                              'cymru', v.cymru_ts IS NOT NULL, 'greynoise', v.greynoise_ts IS NOT NULL,
                              'rdns', v.rdns_ts IS NOT NULL)
    FROM ip_verdict(ip) AS v $$;

-- Known and fresh: everything the sources said, nothing stale, nothing queued.
SELECT jsonb_pretty(v) AS fresh, times FROM show('8.8.8.8');
SELECT v ->> 'geo_country' AS country, v ->> 'geo_city' AS city, v ->> 'stale' AS stale, v ->> 'queued' AS queued
FROM show('81.2.69.160');
-- IPv4-mapped form: the inventory's canonical address.
SELECT v ->> 'ip_address' AS canonical, v ->> 'known' AS known FROM show('::ffff:8.8.8.8');
-- Not public: nothing to ask anyone.
SELECT v ->> 'known' AS known, v ->> 'ip_class' AS class, v ->> 'stale' AS stale, v ->> 'queued' AS queued
FROM show('192.168.1.1');
SELECT count(*) AS queued_so_far FROM ip_inventory_refresh_queue();

-- Stale: GreyNoise answered 8 days ago (TTL 7 days), reverse DNS never (a failed refresh
-- cleared it here by hand): both are named and the address is queued for both.
UPDATE ip_inventory SET greynoise_ts = now() - interval '8 days', rdns_ts = NULL WHERE ip_address = '8.8.8.8';
SELECT v ->> 'stale' AS stale, v ->> 'queued' AS queued, v ->> 'is_scanner' AS scanner,
       v ->> 'greynoise_riot' AS riot, times ->> 'rdns' AS rdns_answered
FROM show('8.8.8.8');
-- Asked again: still one entry, for the same sources.
SELECT v ->> 'queued' AS queued_again FROM show('8.8.8.8');
SELECT ip_address, sources, queued_at <= now() AS queued_at_ok FROM ip_inventory_refresh_queue();

-- Unknown: MaxMind answers now (2.125.160.216 is in the test City database); every network
-- source is missing, and the address is queued.
SELECT jsonb_pretty(v) AS unknown, times FROM show('2.125.160.216');
SELECT ip_address, sources FROM ip_inventory_refresh_queue() ORDER BY ip_address;
SELECT count(*) AS not_added_by_the_verdict FROM ip_inventory WHERE ip_address = '2.125.160.216';

-- The next scheduled refresh asks about queued addresses first (longest queued first; within
-- a second, in address order): a busier due row waits.
INSERT INTO raw_events SELECT '2026-11-21', '1.1.1.1' FROM generate_series(1, 50);
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
SELECT cascade_refresh('greynoise', 1) - 'elapsed' - 'quota_remaining' AS queued_first;
SELECT l FROM fake_log('greynoise') AS l WHERE l LIKE 'GET%';
SELECT v ->> 'stale' AS stale_after_greynoise FROM show('8.8.8.8');
-- Reverse DNS: the queued unknown address is asked about, with 8.8.8.8, before the busier
-- 1.1.1.1, and added to the inventory (no observation yet) with the answer.
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
SELECT cascade_refresh('rdns', 2) - 'elapsed' AS queued_first;
SELECT l FROM fake_log('dns') AS l ORDER BY l;
SELECT ip_address, observation_count, first_seen_at = last_seen_at AS seen_when_added,
       geo_country, rdns_ts IS NOT NULL AS rdns_answered, cymru_ts IS NULL AS cymru_due
FROM ip_inventory WHERE ip_address = '2.125.160.216';
SELECT ip_address, sources FROM ip_inventory_refresh_queue() ORDER BY ip_address;
SELECT v ->> 'known' AS known, v ->> 'observation_count' AS observations, v ->> 'stale' AS stale
FROM show('2.125.160.216');
-- Its first event gives it its first and last seen.
INSERT INTO raw_events VALUES ('2026-11-01', '2.125.160.216');
SELECT observation_count, first_seen_at = '2026-11-01' AND last_seen_at = '2026-11-01' AS seen_from_events
FROM ip_inventory WHERE ip_address = '2.125.160.216';
SELECT cascade_refresh('cymru', 100) ->> 'failed' AS failed;
SELECT ip_address, sources FROM ip_inventory_refresh_queue() ORDER BY ip_address;

-- The verdict never waits: another session holds the row (an uncommitted update, as a
-- refresh storing its answers holds it) and the verdict answers from its snapshot at once;
-- lock_timeout would fail it if it ever waited for a row lock.
UPDATE ip_inventory SET greynoise_ts = now() - interval '8 days' WHERE ip_address = '71.6.135.131';
\! ("$IPI_PGBIN/psql" -X -q -c "BEGIN" -c "UPDATE ip_inventory SET greynoise_ts = now(), enrichment = enrichment || '{\"greynoise\": {\"noise\": false}}' WHERE ip_address = '71.6.135.131'" -c "SELECT pg_sleep(30) /* holding */" -c "COMMIT" >/dev/null 2>&1) &
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        EXIT WHEN EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30) /* holding */%' AND state = 'active');
        PERFORM pg_sleep(0.1);
        PERFORM pg_stat_clear_snapshot();   -- a fresh look at the other sessions
    END LOOP;
END $$;
SELECT count(*) AS row_locks_held FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE a.query LIKE 'SELECT pg_sleep(30) /* holding */%' AND l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock';
SET lock_timeout = '2s';
SELECT v ->> 'is_scanner' AS scanner_before_commit, v ->> 'stale' AS stale, v ->> 'queued' AS queued
FROM show('71.6.135.131');
RESET lock_timeout;
SELECT pg_cancel_backend(pid) AS stopped FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30) /* holding */%';
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30) /* holding */%');
        PERFORM pg_sleep(0.1);
        PERFORM pg_stat_clear_snapshot();   -- a fresh look at the other sessions
    END LOOP;
END $$;

-- Bounded: a flood of 6000 unknown addresses fills the queue (4096 slots at most) and the
-- rest are answered but not queued; nothing grows beyond it.
-- (How many fit depends on what else holds slots and on where the addresses hash: the
-- bound is what counts.)
SELECT count(*) AS verdicts, count(*) FILTER (WHERE v.queued) BETWEEN 3500 AND 4096 AS queue_filled_up_to_its_bound,
       count(*) FILTER (WHERE NOT v.queued) >= 6000 - 4096 AS rest_refused,
       count(*) FILTER (WHERE v.stale = '{cymru,greynoise,rdns}') AS all_stale
FROM generate_series(1, 6000) AS n, ip_verdict('5.0.0.0'::inet + n * 7) AS v;
SELECT count(*) <= 4096 AS bounded, count(*) > 2048 AS mostly_filled FROM ip_inventory_refresh_queue();
SELECT count(*) AS inventory_unchanged_by_verdicts FROM ip_inventory WHERE ip_address << '5.0.0.0/8';
-- Another database sees none of this database's queue.
CREATE DATABASE ipi_verdict_other;
\! "$IPI_PGBIN/psql" -X -q -A -t -d ipi_verdict_other -c "CREATE EXTENSION ip_inventory" -c "SELECT count(*) AS other_database_queue FROM ip_inventory_refresh_queue()"
DROP DATABASE ipi_verdict_other;
-- Empty it again (what the refreshes would do, without asking anyone).
SELECT _ip_inventory_queue_done(s, ARRAY(SELECT host(q.ip_address) FROM ip_inventory_refresh_queue() AS q))
FROM unnest(ARRAY['cymru', 'greynoise', 'rdns']) AS s;
SELECT count(*) AS emptied FROM ip_inventory_refresh_queue();

-- Privileges: not PUBLIC (it writes the queue); a consumer role granted EXECUTE needs
-- nothing on the inventory.
CREATE ROLE verdict_consumer LOGIN;
CREATE ROLE verdict_stranger LOGIN;
GRANT EXECUTE ON FUNCTION ip_verdict(inet) TO verdict_consumer;
SET ROLE verdict_stranger;
SELECT try($$SELECT ip_verdict('8.8.8.8')$$) AS stranger;
SELECT try($$SELECT * FROM ip_inventory_refresh_queue()$$) AS stranger_queue;
SELECT try($$SELECT _ip_inventory_queue('8.8.8.8', ARRAY['rdns'])$$) AS stranger_queue_write;
SET ROLE verdict_consumer;
SELECT v.known, v.geo_country, v.asn_number FROM ip_verdict('81.2.69.160') AS v;
SELECT try($$SELECT count(*) FROM ip_inventory$$) AS consumer_reads_inventory;
RESET ROLE;
SELECT has_function_privilege('public', 'ip_verdict(inet)', 'EXECUTE') AS public_may_call;
SELECT ip_verdict(NULL) IS NULL AS null_in_null_out;
REVOKE EXECUTE ON FUNCTION ip_verdict(inet) FROM verdict_consumer;
DROP ROLE verdict_consumer, verdict_stranger;
