-- ip_inventory_stats: lookups, misses, sampled latency and errors by kind per database;
-- network requests, latency, failures by kind and answers per source; inventory writes
-- (counted only when committed); reloads; gauges; reset; who may read and reset.
-- Counters are cluster-wide, so the test starts with a reset and no other session runs.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
ALTER SYSTEM SET ip_inventory.network_concurrency = 1;
SELECT pg_reload_conf();

-- One counter (0 when it does not exist, so a misspelt name shows up as a wrong number).
CREATE FUNCTION stat(src text, m text, k text DEFAULT NULL) RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(sum(value), 0)::bigint FROM ip_inventory_stats
    WHERE source = src AND metric = m AND error_kind IS NOT DISTINCT FROM k $$;
-- The number of workers an EXPLAIN ANALYZE of the query launched (it runs the query).
CREATE FUNCTION workers_launched(query text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
        IF line ~ 'Workers Launched: \d+' THEN
            RETURN substring(line FROM 'Workers Launched: (\d+)')::int;
        END IF;
    END LOOP;
    RETURN 0;
END $$;

SELECT ip_inventory_stats_reset() BETWEEN now() AND clock_timestamp() AS reset;
SELECT count(*) FILTER (WHERE kind = 'counter') AS counters,
       count(*) FILTER (WHERE kind = 'counter' AND value <> 0) AS nonzero,
       count(*) FILTER (WHERE kind = 'counter' AND stats_reset IS NULL) AS without_reset_time
FROM ip_inventory_stats;
-- What is counted, per source (error kinds in brackets).
SELECT source, string_agg(metric || coalesce('[' || error_kind || ']', ''), ' ' ORDER BY metric, error_kind) AS metrics
FROM ip_inventory_stats GROUP BY source ORDER BY source;

-- MaxMind lookups: every lookup is counted for its database; misses; addresses that are not
-- public never reach a database.
SELECT ip_country('81.2.69.160') AS gb, ip_country('8.8.8.8') AS unknown, ip_country('10.0.0.1') AS private,
       ip_asn('89.160.20.128') AS asn, ip_asn_org('89.160.20.128') AS org;
SELECT (enrich_ip('81.2.69.160')).country_code, (mmdb_lookup('81.2.69.160', 'city') IS NOT NULL) AS custom_path;
SELECT stat('city', 'lookups') AS city_lookups, stat('city', 'not_found') AS city_misses,
       stat('asn', 'lookups') AS asn_lookups, stat('asn', 'not_found') AS asn_misses,
       stat('maxmind', 'not_public') AS not_public;
-- Latency is sampled: one lookup in 64 is timed.
SELECT count(ip_country(('81.2.69.' || i % 250)::inet)) AS with_country FROM generate_series(1, 640) AS i;
SELECT stat('city', 'lookups') AS city_lookups,
       stat('city', 'lookup_samples') BETWEEN 10 AND 12 AS sampled_one_in_64,
       stat('city', 'lookup_ns_sum') > 0 AS timed;

-- Counts reach the shared counters at the end of each transaction (another session sees
-- them), and during a long one every 4096 counts, so a big statement shows progress.
SELECT count(ip_country('81.2.69.160')) FROM generate_series(1, 5);
\! $IPI_PGBIN/psql -X -At -c "SELECT 'other session: ' || value FROM ip_inventory_stats WHERE source = 'city' AND metric = 'lookups'"
CREATE TABLE mark AS SELECT stat('city', 'lookups') AS lookups;
BEGIN;
SELECT count(ip_country('81.2.69.160')) FROM generate_series(1, 10000);
\! $IPI_PGBIN/psql -X -At -c "SELECT 'other session, mid-transaction: ' || (value - lookups BETWEEN 4096 AND 9999) FROM ip_inventory_stats, mark WHERE source = 'city' AND metric = 'lookups'"
COMMIT;
\! $IPI_PGBIN/psql -X -At -c "SELECT 'other session, after commit: ' || value - lookups FROM ip_inventory_stats, mark WHERE source = 'city' AND metric = 'lookups'"

-- Parallel workers count their lookups too (at the end of their part of the query).
CREATE TABLE addresses AS SELECT ('81.2.69.' || (i % 250))::inet AS ip FROM generate_series(1, 20000) AS i;
ANALYZE addresses;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT stat('city', 'lookups') AS before \gset
SELECT workers_launched('SELECT count(ip_country(ip)) FROM addresses') > 0 AS ran_in_parallel;
SELECT stat('city', 'lookups') - :before AS lookups_counted;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- Inventory writes: observations (address appearances), new addresses, MaxMind enrichments.
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
INSERT INTO raw_events VALUES
    ('2026-11-20', '81.2.69.160', '10.0.0.1'), ('2026-11-20', '81.2.69.160', '10.0.0.1'),
    ('2026-11-20', '89.160.20.128', NULL), ('2026-11-20', '8.8.8.8', '10.0.0.1');
SELECT stat('inventory', 'observations') AS observations, stat('inventory', 'new_addresses') AS new_addresses,
       stat('inventory', 'maxmind_enriched') AS maxmind_enriched;
-- A rolled-back insert recorded nothing, and counts nothing.
BEGIN;
INSERT INTO raw_events VALUES ('2026-11-20', '81.2.69.161', '81.2.69.162');
ROLLBACK;
SELECT stat('inventory', 'observations') AS observations_after_rollback;
-- Backfill counts what it records; enrich_pending counts what it enriches.
CREATE TABLE old_events (ts timestamptz, ip inet);
INSERT INTO old_events SELECT '2026-01-01', ('81.2.69.' || (i % 3 + 170))::inet FROM generate_series(1, 9) AS i;
SET ip_inventory.ingest_enrichment = off;
SET client_min_messages = warning;
CALL ip_inventory_backfill('old_events', ARRAY['ip'], 'ts') \gset
SELECT stat('inventory', 'observations') AS observations, stat('inventory', 'new_addresses') AS new_addresses,
       stat('inventory', 'maxmind_enriched') AS maxmind_enriched;
CALL ip_inventory_enrich_pending() \gset
RESET client_min_messages;
RESET ip_inventory.ingest_enrichment;
SELECT stat('inventory', 'maxmind_enriched') AS maxmind_enriched;
SELECT sum(observation_count) AS observation_count_in_inventory FROM ip_inventory;

-- Errors by kind: a failed lookup counts as its kind whether it raises or (recording
-- events) only warns; reports such as maxmind_info() are not lookups. Each setting change
-- is tried in a new session: one that has a database in service keeps it.
\set missing /nonexistent/GeoLite2-City.mmdb
\set not_mmdb :scratch/not-mmdb.mmdb
\! echo 'not a MaxMind DB' > "$IPI_SCRATCH/not-mmdb.mmdb"
ALTER SYSTEM SET ip_inventory.city_db = :'missing';
ALTER SYSTEM RESET ip_inventory.asn_db;
SELECT pg_reload_conf();
\c
SELECT try($$SELECT ip_country('81.2.69.160')$$);
SELECT try($$SELECT ip_country('81.2.69.161')$$);
SELECT try($$SELECT ip_asn('81.2.69.160')$$);
SELECT status FROM maxmind_info() WHERE name = 'city';
INSERT INTO raw_events VALUES ('2026-11-20', '81.2.69.180', NULL);
SELECT stat('city', 'errors', 'unreadable') AS unreadable, stat('asn', 'errors', 'not_configured') AS not_configured;
ALTER SYSTEM SET ip_inventory.city_db = :'not_mmdb';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT ip_country('81.2.69.160')$$);
SELECT stat('city', 'errors', 'invalid') AS invalid;
SELECT try($$SELECT mmdb_lookup('81.2.69.160', '/nonexistent/Custom.mmdb')$$);
SELECT stat('custom', 'errors', 'unreadable') AS custom_unreadable, stat('custom', 'lookups') AS custom_lookups;
SELECT sum(value) AS errors_of_any_database FROM ip_inventory_stats
WHERE metric = 'errors' AND source IN ('city', 'asn', 'custom');

-- Reloads and refused reloads; the generation gauge is the shared generation.
SELECT try($$SELECT maxmind_reload()$$) LIKE '%Nothing was reloaded%' AS refused;
ALTER SYSTEM SET ip_inventory.city_db = :'city';
ALTER SYSTEM SET ip_inventory.asn_db = :'asn';
SELECT pg_reload_conf();
\c
SELECT (maxmind_reload() ->> 'generation')::bigint = stat('maxmind', 'generation') AS generation_gauge;
SELECT stat('maxmind', 'reloads') AS reloads, stat('maxmind', 'reload_failures') AS reload_failures;
-- Database age, from the build time in the file's metadata.
SELECT source, value > 0 AS has_age FROM ip_inventory_stats WHERE metric = 'build_age_seconds' ORDER BY source;

-- Network sources: requests (one whois session per batch, one HTTP request or DNS query
-- per address), answers per address, failures by kind, latency.
INSERT INTO raw_events SELECT '2026-11-20', ('77.77.77.' || i)::inet, NULL FROM generate_series(1, 5) AS i, generate_series(1, 10 - i);
UPDATE ip_inventory SET cymru_ts = now() WHERE ip_address <> '8.8.8.8';
SELECT cascade_refresh('cymru', 100) ->> 'refreshed' AS cymru_refreshed;
SELECT stat('cymru', 'requests') AS requests, stat('cymru', 'request_successes') AS successes,
       stat('cymru', 'found') AS found, stat('cymru', 'request_ns_sum') > 0 AS timed;
UPDATE ip_inventory SET greynoise_ts = now() WHERE NOT ip_address << '77.77.77.0/24';
SELECT cascade_refresh('greynoise', 100) - 'elapsed' - 'first_failure' - 'quota_remaining' AS greynoise;
-- (The quota gauges are the day's, shared with the tests before this one.)
SELECT metric, error_kind, value FROM ip_inventory_stats
WHERE source = 'greynoise' AND value <> 0 AND metric NOT IN ('request_ns_sum', 'quota_limit', 'quota_used')
ORDER BY metric, error_kind;
SELECT stat('greynoise', 'quota_used') = (SELECT used FROM greynoise_quota()) AS quota_used_gauge;
-- A limit of what is used already: the next run is all skipped.
SELECT used AS used_today FROM greynoise_quota() \gset
ALTER SYSTEM SET ip_inventory.greynoise_daily_quota = :used_today;
SELECT pg_reload_conf();
SELECT pg_sleep(2.2);
SELECT cascade_refresh('greynoise', 100) ->> 'skipped' AS skipped_for_quota;
SELECT stat('greynoise', 'errors', 'quota_exhausted') AS quota_exhausted,
       stat('greynoise', 'quota_used') = stat('greynoise', 'quota_limit') AS quota_used_up,
       stat('greynoise', 'quota_limit') = :used_today AS quota_limit_gauge;
ALTER SYSTEM RESET ip_inventory.greynoise_daily_quota;
SELECT pg_reload_conf();
UPDATE ip_inventory SET rdns_ts = now() WHERE ip_address NOT IN ('77.77.77.1', '8.8.8.8');
SELECT cascade_refresh('rdns', 100) ->> 'failed' AS rdns_failed;
SELECT stat('rdns', 'requests') AS requests, stat('rdns', 'errors', 'server_error') AS servfail,
       stat('rdns', 'failed') AS failed_addresses;

-- Reset: every counter back to zero, gauges kept, the time recorded.
SELECT ip_inventory_stats_reset() AS reset_at \gset
SELECT count(*) FILTER (WHERE value <> 0) AS nonzero_counters,
       bool_and(stats_reset = :'reset_at') AS reset_time_shown
FROM ip_inventory_stats WHERE kind = 'counter';
SELECT stat('maxmind', 'generation') > 1 AS generation_kept;

-- Privileges: monitoring roles (pg_monitor) read; resetting and counting writes are not for
-- everyone.
CREATE ROLE ipi_stats_reader LOGIN IN ROLE pg_monitor;
CREATE ROLE ipi_stats_nobody LOGIN;
GRANT USAGE ON SCHEMA public TO ipi_stats_nobody, ipi_stats_reader;
SET ROLE ipi_stats_reader;
SELECT count(*) > 0 AS monitor_reads FROM ip_inventory_stats;
SELECT try($$SELECT ip_inventory_stats_reset()$$);
SET ROLE ipi_stats_nobody;
SELECT try($$SELECT count(*) FROM ip_inventory_stats$$);
SELECT try($$SELECT _ip_inventory_count_recorded(1000000, 0, 0)$$);
-- Even with EXECUTE on it, a role that cannot write the inventory cannot claim writes.
RESET ROLE;
GRANT EXECUTE ON FUNCTION _ip_inventory_count_recorded(bigint, bigint, bigint) TO ipi_stats_nobody;
SET ROLE ipi_stats_nobody;
SELECT try($$SELECT _ip_inventory_count_recorded(1000000, 0, 0)$$);
RESET ROLE;
REVOKE ALL ON FUNCTION _ip_inventory_count_recorded(bigint, bigint, bigint) FROM ipi_stats_nobody;
SELECT stat('inventory', 'observations') AS observations_not_inflated;
REVOKE USAGE ON SCHEMA public FROM ipi_stats_nobody, ipi_stats_reader;
DROP ROLE ipi_stats_reader;
DROP ROLE ipi_stats_nobody;
