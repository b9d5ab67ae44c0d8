-- Concurrent refreshes split the work (claims in shared memory): two Team Cymru refreshers
-- each get their own rows, no address is asked twice; four GreyNoise refreshers never make
-- more calls than the daily quota. A refresh waiting on a slow source stops promptly on
-- statement_timeout and pg_cancel_backend, and the backend lives on.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
-- 100 public addresses MaxMind has no ASN for (Team Cymru: not announced).
INSERT INTO raw_events SELECT '2026-11-20', ('5.5.' || i / 256 || '.' || i % 256)::inet FROM generate_series(1, 100) AS i;
CREATE TABLE runs (who text, result jsonb);

-- Two refreshers at once, each asking for 50; every whois answer takes 0.3 s, so both
-- hold their rows while the other selects.
ALTER SYSTEM SET ip_inventory.cymru_batch_size = 10;
SELECT pg_reload_conf();
\! $IPI_FAKE_CTL delay "$IPI_FAKE_DIR" whois 300
\! for w in a b; do "$IPI_PGBIN/psql" -X -q -c "INSERT INTO runs SELECT '$w', cascade_refresh('cymru', 50)" & done; wait
SELECT who, result ->> 'selected' AS selected, result ->> 'not_found' AS answered FROM runs ORDER BY who;
SELECT count(*) AS addresses_asked, count(DISTINCT a) AS distinct_addresses
FROM fake_log('whois') AS l, unnest(string_to_array(split_part(l, 'addresses=', 2), ' ')) WITH ORDINALITY AS t(a, n)
WHERE n > 1;
SELECT count(*) FILTER (WHERE cymru_ts IS NOT NULL) AS refreshed_rows FROM ip_inventory;

-- Four GreyNoise refreshers at once, with 10 calls left of today's quota (the count is
-- cluster-wide: earlier tests made calls today too).
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
SELECT used + 10 AS quota FROM greynoise_quota() \gset
ALTER SYSTEM SET ip_inventory.greynoise_daily_quota = :quota;
SELECT pg_reload_conf();
\! $IPI_FAKE_CTL delay "$IPI_FAKE_DIR" greynoise 100
TRUNCATE runs;
\! for w in a b c d; do "$IPI_PGBIN/psql" -X -q -c "INSERT INTO runs SELECT '$w', cascade_refresh('greynoise', 25)" & done; wait
SELECT count(*) AS runs, sum((result ->> 'selected')::int) AS selected,
       sum((result ->> 'not_found')::int + (result ->> 'refreshed')::int + (result ->> 'failed')::int) AS called,
       sum((result ->> 'skipped')::int) AS skipped
FROM runs;
SELECT count(*) AS calls_received FROM fake_log('greynoise');
SELECT used = :quota AS used_all, remaining FROM greynoise_quota();
SELECT count(*) AS answered_rows FROM ip_inventory WHERE greynoise_ts IS NOT NULL;

-- An event insert for an address a refresh has claimed completes while the source is still
-- answering: a refresh holds no row lock while it waits on the network.
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
\! $IPI_FAKE_CTL delay "$IPI_FAKE_DIR" whois 3000
ALTER SYSTEM SET ip_inventory.cymru_timeout = '10s';
SELECT pg_reload_conf();
-- Ten addresses due: one whois batch, answered after 3 s.
UPDATE ip_inventory SET cymru_ts = CASE WHEN ip_address <= '5.5.0.10' THEN NULL ELSE cymru_ts END;
\! ("$IPI_PGBIN/psql" -X -q -c "SELECT cascade_refresh('cymru', 10)" >/dev/null) &
SELECT pg_sleep(1);
SELECT count(*) AS refreshes_waiting_on_whois FROM pg_stat_activity
WHERE query = 'SELECT cascade_refresh(''cymru'', 10)' AND state = 'active';
SET statement_timeout = '1s';
INSERT INTO raw_events VALUES ('2026-11-21', '5.5.0.1');
RESET statement_timeout;
SELECT observation_count AS recorded_while_claimed FROM ip_inventory WHERE ip_address = '5.5.0.1';
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE query = 'SELECT cascade_refresh(''cymru'', 10)');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT count(*) FILTER (WHERE ip_address <= '5.5.0.10' AND cymru_ts IS NOT NULL) AS refreshed_after_the_wait,
       count(*) FILTER (WHERE ip_address <= '5.5.0.10' AND cymru_ts IS NULL) AS still_due
FROM ip_inventory;

-- Cancellation while waiting on a source that answers after 20 s (time limit 60 s).
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
\! $IPI_FAKE_CTL delay "$IPI_FAKE_DIR" whois 20000
ALTER SYSTEM SET ip_inventory.cymru_timeout = '60s';
SELECT pg_reload_conf();
UPDATE ip_inventory SET cymru_ts = NULL;
-- Like try(), for cancellation (which WHEN OTHERS does not catch).
CREATE FUNCTION try_cancel(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN query_canceled THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '500ms';
SELECT try_cancel($$SELECT cascade_refresh('cymru', 10)$$) AS statement_timeout;
RESET statement_timeout;
SELECT clock_timestamp() - :'t0' < interval '3 seconds' AS stopped_promptly;
-- pg_cancel_backend from another session.
SELECT pg_backend_pid() AS me \gset
\setenv IPI_ME :me
\! (sleep 0.5; "$IPI_PGBIN/psql" -X -q -At -c "SELECT pg_cancel_backend($IPI_ME)" >/dev/null) &
SELECT clock_timestamp() AS t0 \gset
SELECT try_cancel($$SELECT cascade_refresh('cymru', 10)$$) AS cancelled;
SELECT clock_timestamp() - :'t0' < interval '3 seconds' AS stopped_promptly;
-- The backend is alive, nothing was written, and the rows are still due.
SELECT count(*) FILTER (WHERE cymru_ts IS NULL) AS still_due, (SELECT count(*) FROM ip_inventory_failures) AS failures
FROM ip_inventory;
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
