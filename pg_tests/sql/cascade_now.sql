-- cascade_refresh_now(): refresh chosen addresses or the rows within a network now, whatever
-- their TTL, through one source or all: fresh rows are asked again, missing addresses are
-- added, the GreyNoise quota, the claims of a concurrent refresh and failure records hold as
-- in cascade_refresh(); only roles granted EXECUTE may call it; bad arguments.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT '2026-11-20', ip::inet FROM unnest(ARRAY[
    '8.8.8.8', '8.8.4.4', '1.1.1.1', '71.6.135.131', '81.2.69.160']) AS ip;
SELECT cascade_refresh('all', 100) ->> 'failed' AS failed;
SELECT cascade_refresh('rdns', 100) ->> 'selected' AS nothing_due;
CREATE TEMP TABLE before AS SELECT ip_address, rdns_ts, greynoise_ts, cymru_ts, maxmind_ts FROM ip_inventory;

-- A fresh row, forced: asked again, its time moves; the others stay as they were.
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
SELECT cascade_refresh_now('rdns', ARRAY['8.8.8.8'::inet]) - 'elapsed' AS forced;
SELECT l FROM fake_log('dns') AS l;
SELECT i.ip_address, i.rdns_ts > b.rdns_ts AS rdns_refreshed
FROM ip_inventory AS i JOIN before AS b USING (ip_address) ORDER BY 1;

-- A network: the inventory rows within it (busiest first, up to lim); nothing outside it.
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
SELECT cascade_refresh_now('greynoise', within => '8.8.0.0/16') - 'elapsed' - 'quota_remaining' AS within_network;
SELECT l FROM fake_log('greynoise') AS l WHERE l LIKE 'GET%' ORDER BY l;
SELECT cascade_refresh_now('greynoise', within => '8.8.0.0/16', lim => 1) ->> 'selected' AS limited;

-- MaxMind, forced: the row is looked up again (its build has not changed: unchanged).
SELECT cascade_refresh_now('maxmind', ARRAY['81.2.69.160'::inet]) - 'elapsed' AS maxmind_forced;
SELECT i.maxmind_ts > b.maxmind_ts AS maxmind_refreshed FROM ip_inventory AS i JOIN before AS b USING (ip_address)
WHERE ip_address = '81.2.69.160';

-- Addresses not in the inventory are added (no observation yet) and asked, by every source;
-- the IPv4-mapped form is the same address.
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
CREATE TEMP TABLE run AS SELECT cascade_refresh_now('all', ARRAY['9.9.9.9', '::ffff:2.125.160.216', '8.8.8.8']::inet[]) AS r;
SELECT r - 'elapsed' - 'sources' - 'quota_remaining' AS totals FROM run;
SELECT e.source, e.v - 'elapsed' - 'quota_remaining' AS counts
FROM run, jsonb_each(r -> 'sources') AS e(source, v) ORDER BY array_position(ARRAY['maxmind', 'cymru', 'greynoise', 'rdns'], e.source);
SELECT ip_address, observation_count, geo_country, asn_number, asn_source,
       cymru_ts IS NOT NULL AS cymru, greynoise_ts IS NOT NULL AS greynoise, rdns_ts IS NOT NULL AS rdns
FROM ip_inventory WHERE ip_address IN ('9.9.9.9', '2.125.160.216') ORDER BY 1;

-- The GreyNoise quota: one call left today; the others are skipped and stay as they were.
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
SELECT used + 1 AS quota FROM greynoise_quota() \gset
ALTER SYSTEM SET ip_inventory.greynoise_daily_quota = :quota;
SELECT pg_reload_conf();
\c
SELECT cascade_refresh_now('greynoise', ARRAY['8.8.8.8', '8.8.4.4', '1.1.1.1']::inet[]) - 'elapsed' - 'quota_remaining' AS one_call_left;
SELECT count(*) AS calls_received FROM fake_log('greynoise') WHERE fake_log LIKE 'GET%';
SELECT remaining FROM greynoise_quota();
ALTER SYSTEM RESET ip_inventory.greynoise_daily_quota;
SELECT pg_reload_conf();

-- Claims: a scheduled refresh waiting on a slow whois holds its rows; the forced refresh of
-- the same addresses at the same time skips them (no address is asked twice).
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
\! $IPI_FAKE_CTL delay "$IPI_FAKE_DIR" whois 3000
ALTER SYSTEM SET ip_inventory.cymru_timeout = '10s';
SELECT pg_reload_conf();
\c
UPDATE ip_inventory SET cymru_ts = NULL WHERE ip_address IN ('8.8.8.8', '8.8.4.4');
\! ("$IPI_PGBIN/psql" -X -q -c "SELECT cascade_refresh('cymru', 10)" >/dev/null) &
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        EXIT WHEN EXISTS (SELECT FROM pg_stat_activity WHERE query = 'SELECT cascade_refresh(''cymru'', 10)' AND state = 'active')
              AND (SELECT count(*) FROM regexp_split_to_table(pg_read_file(current_setting('ipi.fake_dir') || '/whois.log'), E'\n') AS l WHERE l <> '') > 0;
        PERFORM pg_sleep(0.1);
        PERFORM pg_stat_clear_snapshot();   -- a fresh look at the other sessions
    END LOOP;
END $$;
SELECT cascade_refresh_now('cymru', ARRAY['8.8.8.8', '8.8.4.4']::inet[]) - 'elapsed' AS while_claimed;
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE query = 'SELECT cascade_refresh(''cymru'', 10)');
        PERFORM pg_sleep(0.1);
        PERFORM pg_stat_clear_snapshot();   -- a fresh look at the other sessions
    END LOOP;
END $$;
SELECT l FROM fake_log('whois') AS l;
SELECT count(*) FILTER (WHERE cymru_ts IS NOT NULL) AS refreshed_once FROM ip_inventory WHERE ip_address IN ('8.8.8.8', '8.8.4.4');
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
ALTER SYSTEM SET ip_inventory.cymru_timeout = '1s';
SELECT pg_reload_conf();

-- Failures are recorded as by the scheduled refresh (66.66.66.3: a garbage whois line).
SELECT cascade_refresh_now('cymru', ARRAY['66.66.66.3'::inet]) ->> 'failed' AS failed;
SELECT ip_address, source, attempts FROM ip_inventory_failures;
SELECT cascade_refresh_now('cymru', ARRAY['66.66.66.3'::inet]) ->> 'failed' AS failed_again_no;
SELECT count(*) AS failures_left FROM ip_inventory_failures;

-- Privileges: not PUBLIC; an operator granted EXECUTE needs nothing else.
CREATE ROLE now_operator LOGIN;
CREATE ROLE now_stranger LOGIN;
GRANT EXECUTE ON FUNCTION cascade_refresh_now(text, inet[], cidr, int) TO now_operator;
SET ROLE now_stranger;
SELECT try($$SELECT cascade_refresh_now('rdns', ARRAY['8.8.8.8'::inet])$$) AS stranger;
SET ROLE now_operator;
SELECT cascade_refresh_now('rdns', ARRAY['8.8.8.8'::inet]) ->> 'selected' AS operator;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION cascade_refresh_now(text, inet[], cidr, int) FROM now_operator;
DROP ROLE now_operator, now_stranger;

-- Bad arguments.
SELECT try($$SELECT cascade_refresh_now('shodan', ARRAY['8.8.8.8'::inet])$$) AS unknown_source;
SELECT try($$SELECT cascade_refresh_now(NULL, ARRAY['8.8.8.8'::inet])$$) AS null_source;
SELECT try($$SELECT cascade_refresh_now('rdns')$$) AS nothing_named;
SELECT try($$SELECT cascade_refresh_now('rdns', ARRAY['8.8.8.0/24'::inet])$$) AS network_as_address;
SELECT try($$SELECT cascade_refresh_now('rdns', ARRAY['8.8.8.8', NULL]::inet[])$$) AS null_address;
SELECT try($$SELECT cascade_refresh_now('rdns', ARRAY['8.8.8.8', '8.8.4.4']::inet[], lim => 1)$$) AS more_than_lim;
SELECT try($$SELECT cascade_refresh_now('rdns', within => '0.0.0.0/0', lim => 1000000)$$) AS huge_limit;
SELECT cascade_refresh_now('rdns', '{}'::inet[]) - 'elapsed' AS empty_list;
