-- monitoring/: the postgres_exporter queries and the Grafana dashboard, checked against this
-- cluster by pg_tests/monitoring_check.py: every query runs and returns what it declares, a
-- real postgres_exporter serves every metric, and a real Prometheus evaluates every panel's
-- expression with at least one series; the alerting rules pass promtool and evaluate.
-- Before that, the numbers behind the new metrics against a known inventory: the backlog
-- per source, the latency histograms, the City record cache's hits.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
\c
-- The exporter's role: pg_monitor is all it needs.
CREATE ROLE ipi_exporter LOGIN IN ROLE pg_monitor;
GRANT USAGE ON SCHEMA public TO ipi_exporter;
-- A role with nothing granted.
CREATE ROLE ipi_nobody;
-- Some activity, so that the series carry numbers.
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT now(), ('81.2.69.' || i)::inet FROM generate_series(150, 170) AS i;
SELECT count(ip_country(ip_address)) > 0 AS looked_up FROM ip_inventory;
SELECT maxmind_reload() IS NOT NULL AS reloaded;

-- Latency histograms: from zero, 640 enrich_ip calls of one address (a City and an ASN
-- lookup each; one lookup in 64 per database is timed) and two DNS questions to the loopback
-- DNS server. Buckets are cumulative, one per bound; the count is every timed lookup or
-- request, the same number as lookup_samples / requests.
SELECT ip_inventory_stats_reset() IS NOT NULL AS reset;
SELECT count(enrich_ip('81.2.69.160')) AS enriched FROM generate_series(1, 640);
SELECT count(*) AS asked FROM ip_inventory_fetch('rdns', ARRAY['81.2.69.160', '81.2.69.161']);
SELECT h.source, h.metric, cardinality(h.le) AS bounds, h.le[1] AS first_le, h.le[cardinality(h.le)] AS last_le,
       cardinality(h.buckets) = cardinality(h.le) AS one_per_bound,
       (SELECT bool_and(a < b) FROM unnest(h.le[:cardinality(h.le) - 1], h.le[2:]) AS u(a, b)) AS le_increasing,
       (SELECT bool_and(a <= b) FROM unnest(h.buckets[:cardinality(h.buckets) - 1], h.buckets[2:]) AS u(a, b)) AS cumulative,
       h.buckets[cardinality(h.buckets)] <= h.count AS within_count,
       h.count, s.value AS counted, h.sum_seconds > 0 AS has_sum
FROM ip_inventory_latency AS h
JOIN ip_inventory_stats AS s
  ON s.source = h.source AND s.metric = CASE h.metric WHEN 'lookup_seconds' THEN 'lookup_samples' ELSE 'requests' END
WHERE h.source IN ('city', 'asn', 'custom', 'rdns', 'cymru')
ORDER BY h.metric, h.source;
-- The sum is the same total time as the counters that gave the mean before.
SELECT bool_and(abs(h.sum_seconds - s.value / 1e9) < 1e-9) AS sums_match
FROM ip_inventory_latency AS h
JOIN ip_inventory_stats AS s
  ON s.source = h.source AND s.metric = CASE h.metric WHEN 'lookup_seconds' THEN 'lookup_ns_sum' ELSE 'request_ns_sum' END;

-- City lookups that decoded no record (hits) and those that did (misses), counted at
-- transaction end and when the counters are read: the 640 lookups were answered by the
-- pre-decoded records. Without them, the backend's cache: the first lookup decodes the
-- record, the others are answered from the cache.
SELECT metric, value FROM ip_inventory_stats WHERE metric LIKE 'city_cache_%' ORDER BY metric;
SET ip_inventory.predecoded_city = off;
SELECT count(enrich_ip('81.2.69.160')) AS enriched_again FROM generate_series(1, 100);
RESET ip_inventory.predecoded_city;
SELECT metric, value FROM ip_inventory_stats WHERE metric LIKE 'city_cache_%' ORDER BY metric;

-- Backlog: a known inventory. The 21 addresses have no ASN (Team Cymru serves them) and a
-- MaxMind answer, except .170 (Team Cymru waits for MaxMind's chance at it).
UPDATE ip_inventory SET asn_number = NULL, asn_org = NULL, asn_network = NULL, asn_source = NULL,
       cymru_ts = CASE WHEN ip_address BETWEEN '81.2.69.150' AND '81.2.69.159' THEN now()
                       WHEN ip_address IN ('81.2.69.160', '81.2.69.161', '81.2.69.162') THEN now() - interval '100 days' END,
       greynoise_ts = CASE WHEN ip_address IN ('81.2.69.150', '81.2.69.151') THEN now()
                           WHEN ip_address = '81.2.69.152' THEN now() - interval '8 days' END,
       rdns_ts = NULL,
       maxmind_ts = CASE WHEN ip_address = '81.2.69.170' THEN NULL ELSE maxmind_ts END;
-- Team Cymru: TTL 90 days: 3 stale + 8 never answered - .170 = 10 due. GreyNoise: 19 never
-- or stale, 8 of them in its skip list = 11 due. rDNS: switched off.
ALTER SYSTEM SET ip_inventory.greynoise_skip_networks = '81.2.69.160/29';
ALTER SYSTEM SET ip_inventory.rdns_enabled = off;
SELECT pg_reload_conf();
\c
SELECT * FROM ip_inventory_backlog() ORDER BY source;
-- Counted up to cap.
SELECT source, due, capped FROM ip_inventory_backlog(5) ORDER BY source;
SELECT try($$SELECT * FROM ip_inventory_backlog(0)$$) AS zero_cap;
-- The same rows as ip_inventory_staleness (never + stale) where no other rule applies:
-- GreyNoise.
SELECT b.due = s.never + s.stale AS greynoise_matches_staleness
FROM ip_inventory_backlog() AS b JOIN ip_inventory_staleness AS s USING (source)
WHERE source = 'greynoise';
-- Coverage: answered at least once, of the rows each source serves; MaxMind's pending rows.
SELECT * FROM ip_inventory_source_coverage() ORDER BY source;

-- Privileges: monitoring roles read all of it, PUBLIC and other roles nothing.
SELECT o.name, has_function_privilege('public', o.name, 'EXECUTE') AS public_may_run,
       has_function_privilege('pg_monitor', o.name, 'EXECUTE') AS pg_monitor_may_run
FROM unnest(ARRAY['_ip_inventory_latency_histograms()', 'ip_inventory_backlog(bigint)',
                  'ip_inventory_source_coverage()', '_ip_inventory_stats_counters()']) AS o(name);
SELECT has_table_privilege('public', 'ip_inventory_latency', 'SELECT') AS public_may_read_latency,
       has_table_privilege('pg_monitor', 'ip_inventory_latency', 'SELECT') AS pg_monitor_may_read_latency;
SET ROLE ipi_nobody;
SELECT try($$SELECT * FROM ip_inventory_latency$$) AS latency;
SELECT try($$SELECT * FROM ip_inventory_backlog()$$) AS backlog;
SELECT try($$SELECT * FROM ip_inventory_source_coverage()$$) AS coverage;
RESET ROLE;
SET ROLE ipi_exporter;
SELECT count(*) AS backlog_rows FROM ip_inventory_backlog();
SELECT count(*) AS histograms FROM ip_inventory_latency;
RESET ROLE;

\! PGUSER=ipi_exporter python3 ../monitoring_check.py ../../monitoring/postgres_exporter/queries.yaml ../../monitoring/grafana/ip_inventory.json ../../monitoring/prometheus/alerts.yml
ALTER SYSTEM RESET ip_inventory.greynoise_skip_networks;
ALTER SYSTEM RESET ip_inventory.rdns_enabled;
SELECT pg_reload_conf();
REVOKE USAGE ON SCHEMA public FROM ipi_exporter;
DROP ROLE ipi_exporter;
DROP ROLE ipi_nobody;
