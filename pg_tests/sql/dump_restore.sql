-- pg_dump carries the inventory's rows (pg_extension_config_dump): a dump restored into a
-- new database holds the same inventory, job state and trigger, and counts on from there.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\set city :testdata/GeoIP2-City-Test.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
SELECT pg_reload_conf();
\c
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet);
INSERT INTO raw_events SELECT '2026-01-01'::timestamptz + i * interval '1 min',
       ('81.2.69.' || (128 + i % 60))::inet, ('10.0.' || (i % 3) || '.1')::inet
FROM generate_series(1, 5000) AS i;
SET client_min_messages = warning;
CALL ip_inventory_backfill('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts', 1000, attach => true) \gset
RESET client_min_messages;
INSERT INTO raw_events VALUES ('2026-02-01', '89.160.20.128', NULL);

-- A fingerprint of every column of every row.
CREATE FUNCTION inventory_fingerprint() RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(i::text, '|' ORDER BY i.ip_address)) FROM ip_inventory AS i
$$;
SELECT count(*) AS addresses, sum(observation_count) AS observations FROM ip_inventory;

\! "$IPI_PGBIN/pg_dump" -Fc -f "$IPI_SCRATCH/ipi_test.dump" ipi_test && "$IPI_PGBIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS ipi_restore" -c "CREATE DATABASE ipi_restore" && "$IPI_PGBIN/pg_restore" -d ipi_restore "$IPI_SCRATCH/ipi_test.dump" && echo restored
\set restored `"$IPI_PGBIN/psql" -X -At -d ipi_restore -c "SELECT inventory_fingerprint()"`
SELECT inventory_fingerprint() = :'restored' AS same_rows_after_restore;
\c ipi_restore
SELECT count(*) AS addresses, sum(observation_count) AS observations FROM ip_inventory;
SELECT job, status, done_rows FROM ip_inventory_progress;
SELECT event_table, ip_columns, ts_column FROM ip_inventory_observed_tables;
-- The restored trigger counts on, once.
INSERT INTO raw_events VALUES ('2026-02-02', '89.160.20.128', NULL);
SELECT observation_count, geo_country FROM ip_inventory WHERE ip_address = '89.160.20.128';
\c postgres
DROP DATABASE ipi_restore;
