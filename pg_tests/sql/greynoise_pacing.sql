-- GreyNoise quota pacing (docs/pg_cron.md): a simulated UTC day of the documented schedule,
-- cascade_refresh('all') every ten minutes, against the loopback GreyNoise. The day is
-- simulated with ip_inventory.quota_clock (superusers only, tests only): the time the quota
-- and its pace take as now. Each run makes at most the calls left today divided by the runs
-- left until midnight UTC; the count never passes the quota, the whole quota is used, and
-- no hour takes much more than its share (the old schedule spent it all by 03:20).
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
-- A small daily quota keeps the run short; the pace is the same arithmetic at 10,000.
ALTER SYSTEM SET ip_inventory.greynoise_daily_quota = 1000;
-- Only GreyNoise is of interest here: the other network sources are switched off.
ALTER SYSTEM SET ip_inventory.cymru_enabled = off;
ALTER SYSTEM SET ip_inventory.rdns_enabled = off;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SHOW ip_inventory.greynoise_refresh_interval;
SHOW ip_inventory.greynoise_refresh_limit;

-- 1,500 public IPv4 addresses due for GreyNoise: more than a day's quota.
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT '2026-01-14', '45.1.0.0'::inet + i FROM generate_series(1, 1500) AS i;
SELECT count(*) AS due FROM ip_inventory WHERE greynoise_ts IS NULL AND ip_class = 'public';

-- Only a superuser may set the clock.
CREATE ROLE pacing_operator LOGIN;
GRANT EXECUTE ON FUNCTION cascade_refresh(text, int) TO pacing_operator;
SET ROLE pacing_operator;
SELECT try($$SET ip_inventory.quota_clock = '2026-01-15 00:00:00'$$) AS clock_for_others;
RESET ROLE;
SELECT try($$SET ip_inventory.quota_clock = 'tomorrow'$$) AS bad_clock;

-- The day: 2026-01-15 (UTC), a run at 5 seconds past every tenth minute, exactly the
-- scheduled command of docs/pg_cron.md; one manual cascade_refresh('greynoise', 100) at
-- noon (an operator's ask, not paced) is absorbed by the runs after it.
CREATE TABLE sim (run_at timestamp PRIMARY KEY, kind text, paced_limit int, selected int, used bigint, remaining bigint);
DO $$
DECLARE
    t timestamp;
    r jsonb;
    q record;
BEGIN
    FOR t IN SELECT generate_series(timestamp '2026-01-15 00:00:05', '2026-01-15 23:50:05', interval '10 minutes') LOOP
        PERFORM set_config('ip_inventory.quota_clock', t::text, false);
        r := cascade_refresh('all');
        SELECT * INTO q FROM greynoise_quota();
        INSERT INTO sim VALUES (t, 'scheduled', (r -> 'sources' -> 'greynoise' ->> 'paced_limit')::int,
                                (r -> 'sources' -> 'greynoise' ->> 'selected')::int, q.used, q.remaining);
        IF t = '2026-01-15 12:00:05' THEN
            PERFORM set_config('ip_inventory.quota_clock', '2026-01-15 12:01:00', false);
            r := cascade_refresh('greynoise', 100);
            SELECT * INTO q FROM greynoise_quota();
            INSERT INTO sim VALUES ('2026-01-15 12:01:00', 'manual', NULL, (r ->> 'selected')::int, q.used, q.remaining);
        END IF;
    END LOOP;
END $$;
-- The quota as greynoise_quota() shows it on the simulated day.
SET ip_inventory.quota_clock = '2026-01-15 23:59:00';
SELECT day, daily_quota, used, remaining FROM greynoise_quota();

-- Never over the quota; all of it used by the end of the day; every call was a call.
SELECT count(*) FILTER (WHERE kind = 'scheduled') AS scheduled_runs, max(used) AS max_used,
       max(used) <= 1000 AS within_quota, bool_and(remaining >= 0) AS never_negative,
       sum(selected) AS selected, (SELECT count(*) FROM fake_log('greynoise')) AS calls
FROM sim;
-- The used count only grows, and each scheduled run took what the pace allowed.
SELECT bool_and(used >= coalesce(prev, 0)) AS monotonic,
       bool_and(selected = paced_limit) FILTER (WHERE kind = 'scheduled') AS took_the_pace
FROM (SELECT *, lag(used) OVER (ORDER BY run_at) AS prev FROM sim) AS s;
-- Spread over the day: calls per UTC hour (the manual 100 in hour 12).
SELECT extract(hour FROM run_at)::int AS hour, sum(selected) AS calls, max(used) AS used_by_then,
       min(paced_limit) AS min_pace, max(paced_limit) AS max_pace
FROM sim GROUP BY 1 ORDER BY 1;
-- By 03:20 (where 500 every ten minutes ran out of a 10,000 quota) at most a seventh of
-- the quota is spent; half of it by about noon.
SELECT max(used) FILTER (WHERE run_at <= '2026-01-15 03:20:05') AS used_by_0320,
       max(used) FILTER (WHERE run_at <= '2026-01-15 03:20:05') <= 1000 * 200 / 1440 + 7 AS spread_0320,
       max(used) FILTER (WHERE run_at < '2026-01-15 12:00:00') AS used_before_noon
FROM sim;

-- After the last run the day's quota is gone: a late run is paced to nothing and calls no one.
SET ip_inventory.quota_clock = '2026-01-15 23:58:00';
SELECT (cascade_refresh('all') -> 'sources' -> 'greynoise') - 'elapsed' AS after_the_last_run;
-- Midnight UTC: a new quota, paced again; the old documented schedule ('all', 500) is paced
-- too (in 'all' GreyNoise is always paced).
SET ip_inventory.quota_clock = '2026-01-16 00:00:05';
SELECT (cascade_refresh('all', 500) -> 'sources' -> 'greynoise') - 'elapsed' AS next_day_old_schedule;
SELECT day, used, remaining FROM greynoise_quota();
-- A smaller ip_inventory.greynoise_refresh_limit caps the pace; the saved count is the
-- simulated day's.
ALTER SYSTEM SET ip_inventory.greynoise_refresh_limit = 2;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SET ip_inventory.quota_clock = '2026-01-16 00:10:05';
SELECT cascade_refresh('greynoise') -> 'paced_limit' AS capped;
SELECT source, day, used FROM ip_inventory_quota;
-- A longer interval: fewer runs left, a bigger share each.
ALTER SYSTEM RESET ip_inventory.greynoise_refresh_limit;
ALTER SYSTEM SET ip_inventory.greynoise_refresh_interval = '1h';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SET ip_inventory.quota_clock = '2026-01-16 00:20:05';
SELECT cascade_refresh('greynoise') -> 'paced_limit' AS hourly_pace;

-- The thresholds of calls left (ip_inventory.greynoise_quota_warning, _critical) decide the
-- health check and are exported for the alerting rules.
SELECT "check", status, value FROM ip_inventory_health() WHERE "check" = 'greynoise_quota';
ALTER SYSTEM SET ip_inventory.greynoise_quota_warning = 995;
ALTER SYSTEM SET ip_inventory.greynoise_quota_critical = 10;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT "check", status, value, detail FROM ip_inventory_health() WHERE "check" = 'greynoise_quota';
SELECT metric, value FROM ip_inventory_stats WHERE source = 'greynoise' AND kind = 'gauge' ORDER BY metric;

RESET ip_inventory.quota_clock;
ALTER SYSTEM RESET ip_inventory.greynoise_daily_quota;
ALTER SYSTEM RESET ip_inventory.greynoise_refresh_interval;
ALTER SYSTEM RESET ip_inventory.greynoise_quota_warning;
ALTER SYSTEM RESET ip_inventory.greynoise_quota_critical;
ALTER SYSTEM RESET ip_inventory.cymru_enabled;
ALTER SYSTEM RESET ip_inventory.rdns_enabled;
SELECT pg_reload_conf();
DROP OWNED BY pacing_operator;
DROP ROLE pacing_operator;
