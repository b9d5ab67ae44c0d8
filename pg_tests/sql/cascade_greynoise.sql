-- GreyNoise through cascade_refresh('greynoise'): answers parsed into the inventory, 404
-- "not observed" answers, IPv6 never selected (GreyNoise Community knows IPv4 only), the daily quota, faults (500, timeout, reset,
-- garbage, 429 with Retry-After, 401), the key's three forms, and who may see or use what.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
-- One call at a time, so that which address a stop or the quota hits is deterministic.
ALTER SYSTEM SET ip_inventory.network_concurrency = 1;
SELECT pg_reload_conf();

CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT '2026-11-20', ip::inet FROM unnest(ARRAY[
    '71.6.135.131', '71.6.135.131', '71.6.135.131', '45.83.64.1', '45.83.64.1', '8.8.8.8',
    '9.9.9.9', '2620:fe::fe', '10.0.0.1']) AS ip;

SELECT cascade_refresh('greynoise', 100) - 'elapsed' AS result;
SELECT ip_address, is_scanner, enrichment -> 'greynoise' ->> 'riot' AS riot,
       enrichment -> 'greynoise' ->> 'classification' AS classification,
       enrichment -> 'greynoise' ->> 'name' AS name, scanner_ts IS NOT NULL AS asked
FROM ip_inventory ORDER BY ip_address;
-- GreyNoise does not serve IPv6 rows: the refresh, the due-row index and the staleness view
-- agree (the row is not eligible), and a direct fetch says why.
SELECT enrichment -> 'greynoise' AS ipv6_answer FROM ip_inventory WHERE ip_address = '2620:fe::fe';
SELECT eligible FROM ip_inventory_staleness WHERE source = 'greynoise';
SELECT outcome, detail FROM ip_inventory_fetch('greynoise', ARRAY['2620:fe::fe']);
SELECT enrichment -> 'greynoise' AS kept_fields FROM ip_inventory WHERE ip_address = '71.6.135.131';
-- Four calls, each with the key; none for the IPv6 or private address.
SELECT * FROM fake_log('greynoise');
SELECT used, remaining, daily_quota, paused_until FROM greynoise_quota();
SELECT cascade_refresh('greynoise', 100) - 'elapsed' AS nothing_due;

-- The daily quota: never exceeded; what it stops stays due. (Thresholds of calls left for
-- the health check that suit a quota this small: greynoise_pacing.sql tests the defaults.)
ALTER SYSTEM SET ip_inventory.greynoise_daily_quota = 6;
ALTER SYSTEM SET ip_inventory.greynoise_quota_warning = 10;
ALTER SYSTEM SET ip_inventory.greynoise_quota_critical = 1;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
INSERT INTO raw_events SELECT '2026-11-20', ('5.5.5.' || i)::inet FROM generate_series(1, 5) AS i;
SELECT cascade_refresh('greynoise', 100) - 'elapsed' AS quota_hit;
SELECT count(*) AS calls FROM fake_log('greynoise');
SELECT ip_address, greynoise_ts IS NULL AS still_due FROM ip_inventory WHERE ip_address << '5.5.5.0/24' ORDER BY 1;
SELECT used, remaining FROM greynoise_quota();
SELECT source, used, day = (now() AT TIME ZONE 'UTC')::date AS today FROM ip_inventory_quota;
SELECT "check", status, value FROM ip_inventory_health() WHERE "check" = 'greynoise_quota';
SELECT cascade_refresh('greynoise', 100) - 'elapsed' AS still_used_up;
SELECT count(*) AS calls FROM fake_log('greynoise');

-- Faults, one call at a time in order of observations: HTTP 500, timeout, reset, garbage,
-- then 429 with Retry-After: 2, which stops the batch (the 5.5.5.x rows are not asked).
ALTER SYSTEM SET ip_inventory.greynoise_daily_quota = 100;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
INSERT INTO raw_events SELECT '2026-11-20', ('77.77.77.' || i)::inet FROM generate_series(1, 5) AS i, generate_series(1, 10 - i);
SELECT cascade_refresh('greynoise', 100) - 'elapsed' AS faults;
SELECT ip_address, attempts, error FROM ip_inventory_failures ORDER BY ip_address;
-- While GreyNoise asked to wait, nothing is called.
SELECT cascade_refresh('greynoise', 100) - 'elapsed' AS paused;
SELECT paused_until > now() AS paused FROM greynoise_quota();
SELECT "check", status FROM ip_inventory_health() WHERE "check" = 'greynoise_quota';
SELECT pg_sleep(2.2);
SELECT cascade_refresh('greynoise', 100) - 'elapsed' AS after_the_wait;
SELECT count(*) AS failures_left FROM ip_inventory_failures;

-- 401: the run stops with an error naming the setting, never the key; rows stay due.
INSERT INTO raw_events VALUES ('2026-11-20', '6.6.6.6');
\! printf 'wrong-key-0000\n' > "$IPI_SCRATCH/wrong.key"
\set wrongkey 'file:' :scratch/wrong.key
ALTER SYSTEM SET ip_inventory.greynoise_api_key = :'wrongkey';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT try($$SELECT cascade_refresh('greynoise', 100)$$) AS unauthorized;
SELECT greynoise_ts IS NULL AS still_due FROM ip_inventory WHERE ip_address = '6.6.6.6';
SELECT l FROM fake_log('greynoise') AS l WHERE l LIKE '%6.6.6.6%';
-- In cascade_refresh('all') the rejected key is reported and the other sources still run.
-- ('all' paces GreyNoise over the rest of the UTC day: with 80 calls left, a run in the
-- first hours of the UTC day is allowed none and never calls it. The quota clock is set late in
-- today so the run is allowed calls whatever the hour the test runs at.)
SELECT set_config('ip_inventory.quota_clock',
                  to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ' 23:30:00', false) IS NOT NULL AS late_clock;
SELECT r -> 'sources' -> 'greynoise' AS greynoise, r -> 'sources' -> 'rdns' ->> 'selected' AS rdns_selected
FROM cascade_refresh('all', 100) AS r;
RESET ip_inventory.quota_clock;

-- The key from the server's environment (env:NAME) or a file (file:/path); never the key
-- itself (the server would log it on reload), refused without quoting it.
-- (A refused statement is logged with its text like any failed statement, so these use a
-- made-up value; the runner checks the server log never shows the keys actually used.)
ALTER SYSTEM SET ip_inventory.greynoise_api_key = 'made-up-plain-key';
SELECT try($$SET ip_inventory.greynoise_api_key = 'made-up-plain-key'$$) AS plain_key_in_session;
ALTER SYSTEM SET ip_inventory.greynoise_api_key = 'env:IPI_FAKE_KEY';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT cascade_refresh('greynoise', 100) ->> 'not_found' AS answered_with_env_key;
\! printf '%s\n' "$IPI_FAKE_KEY" > "$IPI_SCRATCH/greynoise.key"
\set keyfile 'file:' :scratch/greynoise.key
ALTER SYSTEM SET ip_inventory.greynoise_api_key = :'keyfile';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
UPDATE ip_inventory SET greynoise_ts = NULL WHERE ip_address = '6.6.6.6';
SELECT cascade_refresh('greynoise', 100) ->> 'not_found' AS answered_with_file_key;
ALTER SYSTEM SET ip_inventory.greynoise_api_key = 'env:IPI_NO_SUCH_VARIABLE';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
UPDATE ip_inventory SET greynoise_ts = NULL WHERE ip_address = '6.6.6.6';
SELECT try($$SELECT cascade_refresh('greynoise', 100)$$) AS missing_variable;
SELECT try($$SET ip_inventory.greynoise_api_key = 'file:relative/path'$$) AS relative_path;
ALTER SYSTEM SET ip_inventory.greynoise_api_key = 'env:IPI_FAKE_KEY';
SELECT pg_reload_conf();

-- Privileges: the key is for superusers' eyes only; network functions need a grant;
-- nobody else can point a source elsewhere.
CREATE ROLE analyst LOGIN;
CREATE ROLE enrich_operator LOGIN;
-- The operator's grants as docs/security.md gives them.
GRANT EXECUTE ON FUNCTION cascade_refresh(text, int), greynoise_quota() TO enrich_operator;
SET ROLE analyst;
-- (The SQLSTATE only: PostgreSQL 18 words this server message differently from 15.)
SELECT split_part(try($$SHOW ip_inventory.greynoise_api_key$$), ':', 1) AS show_key;
SELECT split_part(try($$SELECT current_setting('ip_inventory.greynoise_api_key')$$), ':', 1) AS current_setting_key;
SELECT count(*) AS key_rows_in_pg_settings FROM pg_settings WHERE name = 'ip_inventory.greynoise_api_key';
SELECT count(*) AS rows_showing_the_key FROM pg_settings WHERE setting LIKE '%IPI_FAKE_KEY%' OR setting LIKE '%test-key%';
SELECT try($$SET ip_inventory.greynoise_url = 'http://attacker.example'$$) AS set_url;
SELECT try($$SET ip_inventory.cymru_whois_server = 'attacker.example:43'$$) AS set_whois;
SELECT try($$SELECT cascade_refresh('greynoise', 1)$$) AS refresh_without_grant;
SELECT try($$SELECT * FROM ip_inventory_fetch('greynoise', ARRAY['1.2.3.4'])$$) AS raw_fetch;
SELECT try($$SELECT * FROM greynoise_quota()$$) AS quota_without_grant;
SET ROLE enrich_operator;
SELECT remaining >= 0 AS quota_readable FROM greynoise_quota();
RESET ROLE;
INSERT INTO raw_events VALUES ('2026-11-20', '6.6.7.7');
SET ROLE enrich_operator;
SELECT try($$SELECT cascade_refresh('greynoise', 10)$$) AS refresh_with_grant;
RESET ROLE;
SELECT enrichment -> 'greynoise' ->> 'noise' AS noise FROM ip_inventory WHERE ip_address = '6.6.7.7';
-- Roles are cluster-wide: gone again for the tests after this one.
DROP OWNED BY analyst, enrich_operator;
DROP ROLE analyst, enrich_operator;
