-- Operational counters for dashboards and alerts (Prometheus via postgres_exporter, BI tools,
-- psql). Counters are cluster-wide, in shared memory: they start at zero when the server
-- starts and when ip_inventory_stats_reset() is called; Prometheus' rate() copes with both.

CREATE VIEW @extschema@.ip_inventory_stats AS
SELECT s.source, s.metric, s.error_kind, s.kind, s.value, s.stats_reset
FROM @extschema@._ip_inventory_stats_counters() AS s
UNION ALL
-- How old the data in service is (build_epoch, not file time), as this session sees it.
SELECT i.name, 'build_age_seconds', NULL, 'gauge', extract(epoch FROM i.age)::bigint, NULL
FROM @extschema@.maxmind_info() AS i
WHERE i.age IS NOT NULL
UNION ALL
-- The GreyNoise quota of the current UTC day, as cascade_refresh() counts it, and the
-- thresholds of calls left that ip_inventory_health() and the alerting rules use.
SELECT 'greynoise', g.metric, NULL, 'gauge', g.value, NULL
FROM @extschema@.greynoise_quota() AS q,
     LATERAL (VALUES ('quota_used', q.used), ('quota_limit', q.daily_quota),
                     ('quota_warning', current_setting('ip_inventory.greynoise_quota_warning')::bigint),
                     ('quota_critical', current_setting('ip_inventory.greynoise_quota_critical')::bigint)) AS g(metric, value);

-- Monitoring roles (postgres_exporter runs as a member of pg_monitor) read it; resetting is
-- for superusers and roles granted EXECUTE.
GRANT SELECT ON @extschema@.ip_inventory_stats TO pg_monitor;
-- A view's functions are checked against the user reading it: the counters behind it are for
-- the same monitoring roles, not for PUBLIC.
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_stats_counters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._ip_inventory_stats_counters() TO pg_monitor;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_count_recorded(bigint, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_stats_reset() FROM PUBLIC;

COMMENT ON VIEW @extschema@.ip_inventory_stats IS
    'Operational counters, cluster-wide since the server started or ip_inventory_stats_reset(): MaxMind lookups, misses, sampled latency and errors by kind per database (city, asn, custom); requests, latency, failures by kind and answers per network source (cymru, greynoise, rdns); inventory writes; reloads; gauges for the generation, GreyNoise quota and database age. Needs shared_preload_libraries.';
COMMENT ON FUNCTION @extschema@._ip_inventory_stats_counters() IS
    'The counters and the generation behind ip_inventory_stats (this session''s pending counts included).';
COMMENT ON FUNCTION @extschema@.ip_inventory_stats_reset() IS
    'Zeroes every ip_inventory_stats counter cluster-wide (gauges stay) and returns the reset time.';
COMMENT ON FUNCTION @extschema@._ip_inventory_count_recorded(bigint, bigint, bigint) IS
    'Counts inventory writes of the current transaction for ip_inventory_stats (internal: called by the observe trigger, backfill and enrich_pending; needs INSERT or UPDATE on ip_inventory).';
