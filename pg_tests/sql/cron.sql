-- pg_cron (preloaded, as in production) runs the weekly enrich_pending job; its effect is
-- checked, and pg_cron's own record of the run says it succeeded.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\set city :testdata/GeoIP2-City-Test.mmdb
\set asn :testdata/GeoLite2-ASN-Test.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
ALTER SYSTEM SET ip_inventory.asn_db = :'asn';
SELECT pg_reload_conf();
\c
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
-- A historical import without inline enrichment leaves rows pending.
SET ip_inventory.ingest_enrichment = off;
INSERT INTO raw_events SELECT '2025-01-01'::timestamptz + i * interval '1 h',
       (ARRAY['81.2.69.160', '89.160.20.128', '216.160.83.56', '2001:218::1'])[1 + i % 4]::inet
FROM generate_series(1, 40) AS i;
RESET ip_inventory.ingest_enrichment;
SELECT count(*) FILTER (WHERE maxmind_ts IS NULL) AS pending FROM ip_inventory;

-- The schedule as docs/pg_cron.md has it, at every minute here instead of weekly.
\c postgres
SELECT cron.schedule_in_database('ip_inventory_enrich_pending', '* * * * *',
                                 'CALL ip_inventory_enrich_pending(10000)', 'ipi_test') > 0 AS scheduled;
\c ipi_test
-- pg_cron starts jobs at the top of a minute; wait up to three.
DO $$ BEGIN
    FOR i IN 1..1800 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM ip_inventory WHERE maxmind_ts IS NULL AND ip_class = 'public');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT count(*) FILTER (WHERE maxmind_ts IS NULL) AS pending, count(geo_country) AS with_country FROM ip_inventory;
SELECT job, status FROM ip_inventory_progress;
\c postgres
DO $$ BEGIN
    FOR i IN 1..300 LOOP
        EXIT WHEN EXISTS (SELECT FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid)
                          WHERE j.jobname = 'ip_inventory_enrich_pending' AND d.status IN ('succeeded', 'failed'));
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT d.status, d.return_message, d.database FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid)
WHERE j.jobname = 'ip_inventory_enrich_pending' ORDER BY d.runid LIMIT 1;
SELECT cron.unschedule('ip_inventory_enrich_pending');
