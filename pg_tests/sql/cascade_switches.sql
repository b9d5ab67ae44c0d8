-- Per-source switches (docs/cascade.md, "Switching sources off"): each network source on
-- or off (ip_inventory.<source>_enabled), networks a source never asks about
-- (ip_inventory.<source>_skip_networks), each source's own limit in cascade_refresh()
-- without lim (ip_inventory.<source>_refresh_limit); all changed with ALTER SYSTEM and a
-- reload, and honoured by cascade_refresh('all'), ip_inventory_fetch() and the health check.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql

CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT '2026-11-20', ip::inet FROM unnest(ARRAY[
    '8.8.8.8', '1.1.1.1', '71.6.135.131', '9.9.9.9', '45.83.64.1', '2620:fe::fe']) AS ip;
SELECT name, setting, context FROM pg_settings
WHERE name ~ '^ip_inventory\.(\w+_enabled|\w+_skip_networks|\w+_refresh_limit)$' ORDER BY name;

-- Reverse DNS off: cascade_refresh('rdns') refreshes nothing and says so (a NOTICE and
-- "disabled" in its result, not an error: a scheduled job keeps running); ('all') skips it;
-- a direct fetch is refused; the health check reports it disabled, not stale.
ALTER SYSTEM SET ip_inventory.rdns_enabled = off;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SHOW ip_inventory.rdns_enabled;
SET client_min_messages = notice;
SELECT cascade_refresh('rdns') - 'elapsed' AS rdns_off;
RESET client_min_messages;
SELECT (r -> 'sources' -> 'rdns') - 'elapsed' AS rdns_in_all, r ->> 'selected' AS selected_in_all,
       (r -> 'sources' -> 'cymru' ->> 'selected')::int AS cymru_selected
FROM cascade_refresh('all') AS r;
SELECT count(*) FILTER (WHERE rdns_ts IS NOT NULL) AS rdns_answered,
       count(*) FILTER (WHERE cymru_ts IS NOT NULL) AS cymru_answered
FROM ip_inventory;
SELECT count(*) AS dns_questions FROM fake_log('dns') AS l WHERE l LIKE 'PTR %';
SELECT try($$SELECT * FROM ip_inventory_fetch('rdns', ARRAY['8.8.8.8'])$$) AS direct_fetch;
-- A refresh on demand does not switch it back on either.
SELECT r ->> 'disabled' AS now_disabled, r ->> 'selected' AS now_selected
FROM cascade_refresh_now('rdns', ARRAY['8.8.8.8'::inet]) AS r;
SELECT "check", status, value, detail FROM ip_inventory_health() WHERE "check" IN ('rdns_stale', 'cymru_stale') ORDER BY 1;

-- Back on: the rows are due and asked.
ALTER SYSTEM RESET ip_inventory.rdns_enabled;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT cascade_refresh('rdns') ->> 'selected' AS rdns_back_on;
SELECT "check", status, value FROM ip_inventory_health() WHERE "check" = 'rdns_stale';

-- GreyNoise off: no call, and its quota check says disabled instead of counting.
ALTER SYSTEM SET ip_inventory.greynoise_enabled = off;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT (r -> 'sources' -> 'greynoise') - 'elapsed' AS greynoise_in_all FROM cascade_refresh('all') AS r;
SELECT count(*) AS greynoise_calls FROM fake_log('greynoise');
-- A live consumer's verdict neither names it stale nor queues the address for it.
BEGIN;
UPDATE ip_inventory SET greynoise_ts = NULL, rdns_ts = now(), cymru_ts = now() WHERE ip_address = '8.8.8.8';
SELECT v.stale, v.queued FROM ip_verdict('8.8.8.8') AS v;
ROLLBACK;
SELECT "check", status, value, detail FROM ip_inventory_health() WHERE "check" IN ('greynoise_quota', 'greynoise_stale') ORDER BY 1;
ALTER SYSTEM RESET ip_inventory.greynoise_enabled;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);

-- Skip networks: no reverse DNS for 8.8.8.0/24 and 1.1.1.1; they are not selected, not
-- counted as stale, and a direct fetch skips them without asking.
UPDATE ip_inventory SET rdns_ts = NULL;
ALTER SYSTEM SET ip_inventory.rdns_skip_networks = '8.8.8.0/24, 1.1.1.1, 2001:db8::/32';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SHOW ip_inventory.rdns_skip_networks;
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
SELECT cascade_refresh('rdns') ->> 'selected' AS rdns_selected;
SELECT ip_address, rdns_ts IS NOT NULL AS asked FROM ip_inventory WHERE ip_class = 'public' ORDER BY 1;
SELECT l FROM fake_log('dns') AS l WHERE l LIKE 'PTR 8.8.8.8%' OR l LIKE 'PTR 1.1.1.1%';
SELECT source, eligible, never FROM ip_inventory_staleness WHERE source = 'rdns';
SELECT ip, outcome, detail FROM ip_inventory_fetch('rdns', ARRAY['8.8.8.8', '2001:db8::1']) ORDER BY ip;
-- Nor on demand, and a live consumer's verdict does not wait for it.
SELECT r ->> 'selected' AS now_selected FROM cascade_refresh_now('rdns', ARRAY['8.8.8.8'::inet]) AS r;
SELECT v.stale, v.queued FROM ip_verdict('8.8.8.8') AS v;
-- Other sources are not affected by rdns' list.
SELECT eligible FROM ip_inventory_staleness WHERE source = 'cymru';

-- Values are checked when set, with a clear error; the previous value stays.
ALTER SYSTEM SET ip_inventory.rdns_skip_networks = '10.0.0.1/8';
ALTER SYSTEM SET ip_inventory.rdns_skip_networks = '10.0.0.0/8; 11.0.0.0/8';
ALTER SYSTEM SET ip_inventory.greynoise_skip_networks = 'example.com';
ALTER SYSTEM SET ip_inventory.cymru_enabled = maybe;
ALTER SYSTEM SET ip_inventory.rdns_refresh_limit = 100001;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SHOW ip_inventory.rdns_skip_networks;
-- They are server settings: a session cannot switch a source for itself.
SELECT try($$SET ip_inventory.rdns_enabled = off$$) AS session_switch;
ALTER SYSTEM RESET ip_inventory.rdns_skip_networks;

-- Each source of cascade_refresh() without lim takes its own limit; an explicit lim
-- replaces them all.
UPDATE ip_inventory SET rdns_ts = NULL, cymru_ts = NULL;
ALTER SYSTEM SET ip_inventory.cymru_refresh_limit = 2;
ALTER SYSTEM SET ip_inventory.rdns_refresh_limit = 3;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT (r -> 'sources' -> 'cymru' ->> 'selected')::int AS cymru, (r -> 'sources' -> 'rdns' ->> 'selected')::int AS rdns
FROM cascade_refresh('all') AS r;
UPDATE ip_inventory SET rdns_ts = NULL;
SELECT cascade_refresh('rdns', 5) ->> 'selected' AS explicit_lim;
ALTER SYSTEM RESET ip_inventory.cymru_refresh_limit;
ALTER SYSTEM RESET ip_inventory.rdns_refresh_limit;
SELECT pg_reload_conf();
