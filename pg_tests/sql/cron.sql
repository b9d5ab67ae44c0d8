-- pg_cron (preloaded, as in production) runs the jobs of docs/pg_cron.md, here every minute
-- instead of weekly/daily/monthly; each job's effect is checked, and pg_cron's own record of
-- each run says it succeeded.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
-- A historical import without inline enrichment leaves rows pending.
SET ip_inventory.ingest_enrichment = off;
INSERT INTO raw_events SELECT '2025-01-01'::timestamptz + i * interval '1 h',
       (ARRAY['81.2.69.160', '89.160.20.128', '216.160.83.56', '2001:218::1'])[1 + i % 4]::inet
FROM generate_series(1, 40) AS i;
RESET ip_inventory.ingest_enrichment;
SELECT count(*) FILTER (WHERE maxmind_ts IS NULL) AS pending FROM ip_inventory;
SELECT max(generation) AS generation_before FROM maxmind_info() \gset
-- The tables the daily and monthly jobs write to (docs/pg_cron.md).
CREATE TABLE ip_inventory_health_log AS
    SELECT now() AS taken_at, * FROM ip_inventory_health() WITH NO DATA;
CREATE TABLE ip_inventory_monthly_report (
    taken_at timestamptz NOT NULL, report text NOT NULL, data jsonb NOT NULL);
CREATE TABLE ip_inventory_refresh_log (run_at timestamptz NOT NULL, result jsonb NOT NULL);

-- The schedules as docs/pg_cron.md has them, every minute here.
\c postgres
SELECT cron.schedule_in_database('ip_inventory_maxmind_reload', '* * * * *',
    'SELECT maxmind_reload()', 'ipi_test') > 0 AS scheduled;
SELECT cron.schedule_in_database('ip_inventory_enrich_pending', '* * * * *',
    'CALL ip_inventory_enrich_pending(10000)', 'ipi_test') > 0 AS scheduled;
SELECT cron.schedule_in_database('ip_inventory_health', '* * * * *', $$
    INSERT INTO ip_inventory_health_log SELECT now(), * FROM ip_inventory_health();
    DO $do$
    DECLARE r record;
    BEGIN
        FOR r IN SELECT * FROM ip_inventory_health() WHERE status <> 'ok' LOOP
            RAISE WARNING 'ip_inventory health: % is % (%): %', r."check", r.status, r.value, r.detail;
        END LOOP;
    END $do$;
$$, 'ipi_test') > 0 AS scheduled;
SELECT cron.schedule_in_database('ip_inventory_monthly_report', '* * * * *', $$
    INSERT INTO ip_inventory_monthly_report
    SELECT now(), 'coverage', to_jsonb(c) FROM ip_inventory_coverage AS c
    UNION ALL SELECT now(), 'asn_sources', coalesce(jsonb_agg(to_jsonb(s)), '[]')
              FROM ip_inventory_asn_sources AS s
    UNION ALL SELECT now(), 'top_countries', coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.rank), '[]')
              FROM (SELECT * FROM ip_inventory_top_countries WHERE rank <= 10) AS t
    UNION ALL SELECT now(), 'top_asns', coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.rank), '[]')
              FROM (SELECT * FROM ip_inventory_top_asns WHERE rank <= 10) AS t;
$$, 'ipi_test') > 0 AS scheduled;
SELECT cron.schedule_in_database('ip_inventory_refresh', '* * * * *', $$
    INSERT INTO ip_inventory_refresh_log SELECT now(), cascade_refresh('all');
$$, 'ipi_test') > 0 AS scheduled;
-- pg_cron starts jobs at the top of a minute; wait (up to three) until all five have a
-- finished run.
DO $$ BEGIN
    FOR i IN 1..1800 LOOP
        EXIT WHEN (SELECT count(DISTINCT j.jobname) FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid)
                   WHERE j.jobname LIKE 'ip_inventory_%' AND d.status IN ('succeeded', 'failed')) = 5;
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT j.jobname, (array_agg(d.status ORDER BY d.runid))[1] AS first_run
FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid)
WHERE j.jobname LIKE 'ip_inventory_%' GROUP BY j.jobname ORDER BY 1;
SELECT cron.unschedule(jobname) FROM cron.job WHERE jobname LIKE 'ip_inventory_%';
\c ipi_test
-- Their effects.
SELECT max(generation) > :generation_before AS reloaded FROM maxmind_info();
SELECT count(*) FILTER (WHERE maxmind_ts IS NULL) AS pending, count(geo_country) AS with_country FROM ip_inventory;
SELECT count(DISTINCT "check") AS health_checks_logged FROM ip_inventory_health_log;
-- The refresh asked the network sources (the loopback stand-ins) about the public rows.
SELECT result ->> 'source' AS source, (result ->> 'selected')::int > 0 AS selected_rows,
       result -> 'sources' -> 'rdns' ->> 'not_found' AS rdns_no_name
FROM ip_inventory_refresh_log WHERE run_at = (SELECT min(run_at) FROM ip_inventory_refresh_log);
SELECT report, jsonb_typeof(data) AS kind FROM ip_inventory_monthly_report
WHERE taken_at = (SELECT min(taken_at) FROM ip_inventory_monthly_report) ORDER BY 1;
