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

-- Latency histograms with fixed buckets, Prometheus style: MaxMind lookups per database
-- family (timed lookups only, one in 64) and network requests per source. le: the buckets'
-- upper bounds in seconds; buckets: cumulative counts, one per bound; count: every
-- observation (the +Inf bucket); sum_seconds: their total time.
CREATE VIEW @extschema@.ip_inventory_latency AS
SELECT h.source, h.metric, h.le, h.buckets, h.sum_seconds, h.count
FROM @extschema@._ip_inventory_latency_histograms() AS h;

-- The backlog: per network source, the rows its next cascade_refresh would consider due,
-- with the refresh's own predicate (sql/cascade.sql, _ip_inventory_refresh_network): the rows
-- the source serves, never answered or answered longer ago than its TTL, outside its skip
-- list; Team Cymru waits for MaxMind's chance at a row while a MaxMind database is in
-- service. A switched-off source has no backlog. Each count is one statement with the
-- source as a constant, so it is planned with that source's partial due-row index and reads
-- only the due rows; it stops at cap (capped: at least cap rows are due). SECURITY DEFINER:
-- monitoring roles need EXECUTE on it, not SELECT on ip_inventory.
CREATE FUNCTION @extschema@.ip_inventory_backlog(cap bigint DEFAULT 10000)
RETURNS TABLE (source text, enabled boolean, ttl interval, due bigint, capped boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    maxmind_ready boolean := EXISTS (SELECT FROM @extschema@._ip_inventory_builds() AS b
                                     WHERE b.city_build IS NOT NULL OR b.asn_build IS NOT NULL);
BEGIN
    IF cap IS NULL OR cap < 1 THEN
        RAISE EXCEPTION 'ip_inventory_backlog: cap must be at least 1, not %', coalesce(cap::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    FOREACH source IN ARRAY ARRAY['cymru', 'greynoise', 'rdns'] LOOP
        enabled := @extschema@._ip_inventory_source_enabled(source);
        ttl := @extschema@.ip_inventory_ttl(source);
        due := 0;
        IF enabled THEN
            EXECUTE format($sql$
                SELECT count(*) FROM (
                    SELECT FROM @extschema@.ip_inventory AS i
                    WHERE @extschema@._ip_inventory_source_serves(%1$L, i.ip_address, i.ip_class, i.asn_source)
                      AND (i.%2$I IS NULL OR i.%2$I < now() - $1)
                      AND (%1$L <> 'cymru' OR i.maxmind_ts IS NOT NULL OR NOT $2)
                      AND NOT i.ip_address <<= ANY ($3)
                    LIMIT $4) AS d $sql$,
                source, source || '_ts')
              INTO due
              USING ttl, maxmind_ready, @extschema@._ip_inventory_skip_networks(source)::cidr[], cap;
        END IF;
        capped := due >= cap;
        RETURN NEXT;
    END LOOP;
END $$;

-- Coverage per source: of the rows a source serves (outside its skip list), how many it has
-- answered at least once, and how many are pending (never answered, or older than the TTL;
-- MaxMind: never answered or answered by another build than the one in service). From
-- ip_inventory_staleness: one pass over ip_inventory per source, so for a slow scrape
-- (postgres_exporter cache_seconds), not every 15 s. maxmind is enabled when a City or ASN
-- database is in service.
CREATE FUNCTION @extschema@.ip_inventory_source_coverage()
RETURNS TABLE (source text, enabled boolean, eligible bigint, answered bigint, pending bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.source,
           CASE WHEN s.source = 'maxmind'
                THEN EXISTS (SELECT FROM @extschema@._ip_inventory_builds() AS b
                             WHERE b.city_build IS NOT NULL OR b.asn_build IS NOT NULL)
                ELSE @extschema@._ip_inventory_source_enabled(s.source) END,
           s.eligible, s.eligible - s.never, s.never + s.stale
    FROM @extschema@.ip_inventory_staleness AS s
$$;

-- Monitoring roles (postgres_exporter runs as a member of pg_monitor) read it; resetting is
-- for superusers and roles granted EXECUTE.
GRANT SELECT ON @extschema@.ip_inventory_stats TO pg_monitor;
-- A view's functions are checked against the user reading it: the counters behind it are for
-- the same monitoring roles, not for PUBLIC.
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_stats_counters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._ip_inventory_stats_counters() TO pg_monitor;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_latency_histograms() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._ip_inventory_latency_histograms() TO pg_monitor;
GRANT SELECT ON @extschema@.ip_inventory_latency TO pg_monitor;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_backlog(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.ip_inventory_backlog(bigint) TO pg_monitor;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_source_coverage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.ip_inventory_source_coverage() TO pg_monitor;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_count_recorded(bigint, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_stats_reset() FROM PUBLIC;

COMMENT ON VIEW @extschema@.ip_inventory_stats IS
    'Operational counters, cluster-wide since the server started or ip_inventory_stats_reset(): MaxMind lookups, misses, sampled latency and errors by kind per database (city, asn, custom); City record cache hits and misses; requests, latency, failures by kind and answers per network source (cymru, greynoise, rdns); inventory writes; reloads; gauges for the generation, GreyNoise quota and database age. Needs shared_preload_libraries.';
COMMENT ON FUNCTION @extschema@._ip_inventory_stats_counters() IS
    'The counters and the generation behind ip_inventory_stats (this session''s pending counts included).';
COMMENT ON VIEW @extschema@.ip_inventory_latency IS
    'Latency histograms, cluster-wide since the server started or ip_inventory_stats_reset(): MaxMind lookups per database family (lookup_seconds, timed lookups only) and network requests per source (request_seconds). le: bucket upper bounds in seconds; buckets: cumulative counts per bound; count: all (+Inf); sum_seconds. Needs shared_preload_libraries.';
COMMENT ON FUNCTION @extschema@._ip_inventory_latency_histograms() IS
    'The latency histograms behind ip_inventory_latency (this session''s pending counts included).';
COMMENT ON FUNCTION @extschema@.ip_inventory_backlog(bigint) IS
    'Per network source (cymru, greynoise, rdns): switched on, TTL, rows its next cascade_refresh would consider due (counted up to cap, with the due-row indexes), and whether the count stopped at cap.';
COMMENT ON FUNCTION @extschema@.ip_inventory_source_coverage() IS
    'Per source (maxmind, cymru, greynoise, rdns): whether it is in service, rows it serves, rows it answered at least once, rows pending (never answered or stale; MaxMind: another build). Reads the whole inventory.';
COMMENT ON FUNCTION @extschema@.ip_inventory_stats_reset() IS
    'Zeroes every ip_inventory_stats counter cluster-wide (gauges stay) and returns the reset time.';
COMMENT ON FUNCTION @extschema@._ip_inventory_count_recorded(bigint, bigint, bigint) IS
    'Counts inventory writes of the current transaction for ip_inventory_stats (internal: called by the observe trigger, backfill and enrich_pending; needs INSERT or UPDATE on ip_inventory).';
