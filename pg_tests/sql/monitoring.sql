-- monitoring/: the postgres_exporter queries and the Grafana dashboard, checked against this
-- cluster by pg_tests/monitoring_check.py: every query runs and returns what it declares, a
-- real postgres_exporter serves every metric, and a real Prometheus evaluates every panel's
-- expression with at least one series; the alerting rules pass promtool and evaluate.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
-- The exporter's role: pg_monitor is all it needs.
CREATE ROLE ipi_exporter LOGIN IN ROLE pg_monitor;
GRANT USAGE ON SCHEMA public TO ipi_exporter;
-- Some activity, so that the series carry numbers.
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT now(), ('81.2.69.' || i)::inet FROM generate_series(150, 170) AS i;
SELECT count(ip_country(ip_address)) > 0 AS looked_up FROM ip_inventory;
SELECT maxmind_reload() IS NOT NULL AS reloaded;
\! PGUSER=ipi_exporter python3 ../monitoring_check.py ../../monitoring/postgres_exporter/queries.yaml ../../monitoring/grafana/ip_inventory.json ../../monitoring/prometheus/alerts.yml
REVOKE USAGE ON SCHEMA public FROM ipi_exporter;
DROP ROLE ipi_exporter;
