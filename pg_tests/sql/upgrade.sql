-- ALTER EXTENSION ip_inventory UPDATE from 0.1.0 (the pinned install script in sql/install)
-- to this version: the upgraded schema equals a fresh install, object by object
-- (describe_extension.psql), every row survives, and lookups, recording, jobs and refresh
-- work afterwards. Fails when a fresh install changes and the upgrade script does not.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'ip_inventory';
\o :scratch/fresh.txt
\ir describe_extension.psql
\o

-- A 0.1.0 database with data in every table the extension owns.
\c postgres
DROP DATABASE IF EXISTS ipi_upgrade;
CREATE DATABASE ipi_upgrade;
\c ipi_upgrade
\ir helpers.psql
CREATE EXTENSION ip_inventory VERSION '0.1.0';
SELECT extversion AS old_version FROM pg_extension WHERE extname = 'ip_inventory';
\ir use_test_databases.psql
\ir use_fake_sources.psql
ALTER SYSTEM SET ip_inventory.network_concurrency = 1;
SELECT pg_reload_conf();
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
INSERT INTO raw_events SELECT '2026-11-01'::timestamptz + i * interval '1 min', ip::inet, '10.0.0.1'
FROM unnest(ARRAY['81.2.69.160', '89.160.20.128', '66.66.66.1', '77.77.77.1', '71.6.135.131', '8.8.8.8']) AS ip,
     generate_series(1, 3) AS i;
CREATE TABLE old_events (event_ts timestamptz NOT NULL, src_ip inet);
INSERT INTO old_events VALUES ('2026-10-01', '81.2.69.142'), ('2026-10-02', '2001:218::1');
SET client_min_messages = warning;
CALL ip_inventory_backfill('old_events', ARRAY['src_ip'], 'event_ts') \gset
CALL ip_inventory_enrich_pending() \gset
RESET client_min_messages;
SELECT cascade_refresh('cymru', 100) ->> 'failed' AS cymru_failed;
SELECT cascade_refresh('greynoise', 100) ->> 'failed' AS greynoise_failed;
SELECT (SELECT count(*) FROM ip_inventory) AS addresses, (SELECT count(*) FROM ip_inventory_jobs) AS jobs,
       (SELECT count(*) FROM ip_inventory_failures) AS failures, (SELECT count(*) FROM ip_inventory_quota) AS quota_rows;
-- A fingerprint of every row of every table the extension owns, over the columns 0.1.0 had
-- (its first ncols: the upgrade adds columns at the end, and renames keep their place).
CREATE FUNCTION fingerprint(tbl regclass, ncols int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE format('SELECT md5(coalesce(string_agg(t::text, ''|'' ORDER BY t::text), '''')) FROM (SELECT %s FROM %s) AS t',
                   (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM (
                        SELECT attname, attnum FROM pg_attribute WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped
                        ORDER BY attnum LIMIT ncols) AS a), tbl) INTO r;
    RETURN r;
END $$;
CREATE TABLE before_upgrade AS
SELECT t AS tbl, n.ncols, fingerprint(t::regclass, n.ncols) AS rows
FROM unnest(ARRAY['ip_inventory', 'ip_inventory_jobs', 'ip_inventory_failures', 'ip_inventory_quota']) AS t,
     LATERAL (SELECT count(*)::int AS ncols FROM pg_attribute
              WHERE attrelid = t::regclass AND attnum > 0 AND NOT attisdropped) AS n;

ALTER EXTENSION ip_inventory UPDATE;
SELECT extversion = default_version AS updated_to_default
FROM pg_extension, pg_available_extensions WHERE extname = 'ip_inventory' AND name = extname;
\o :scratch/upgraded.txt
\ir describe_extension.psql
\o
\! test "$(grep -c '^ member ' "$IPI_SCRATCH/fresh.txt")" -gt 40 && echo "a fresh install describes its members"
\! diff -u "$IPI_SCRATCH/fresh.txt" "$IPI_SCRATCH/upgraded.txt" && echo "the upgraded schema equals a fresh install"

-- Every row is still there.
SELECT b.tbl, b.rows = fingerprint(b.tbl::regclass, b.ncols) AS same_rows FROM before_upgrade AS b ORDER BY b.tbl;
SELECT event_table, ip_columns, ts_column FROM ip_inventory_observed_tables ORDER BY event_table::text;

-- And everything works: lookups, recording, jobs, refresh.
\c
SELECT ip_country('81.2.69.160'), ip_asn('89.160.20.128'), (enrich_ip('81.2.69.160')).city;
INSERT INTO raw_events VALUES ('2026-11-30', '81.2.69.160', NULL), ('2026-11-30', '175.16.199.1', NULL);
SELECT ip_address, observation_count, geo_country FROM ip_inventory
WHERE ip_address IN ('81.2.69.160', '175.16.199.1') ORDER BY 1;
SET client_min_messages = warning;
CALL ip_inventory_enrich_pending() \gset
RESET client_min_messages;
SELECT :'summary'::jsonb ->> 'status' AS enrich_pending;
SELECT cascade_refresh('rdns', 100) ->> 'selected' AS rdns_selected;
SELECT count(*) > 0 AS health_rows FROM ip_inventory_health();
\c postgres
DROP DATABASE ipi_upgrade;
