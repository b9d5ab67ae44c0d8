-- Without shared_preload_libraries: lookups work, replaced files are still noticed by each
-- backend on its own, and what needs shared memory says so.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
SHOW shared_preload_libraries;
\! cp "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" "$IPI_SCRATCH/City.mmdb"
\set city :scratch/City.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
ALTER SYSTEM SET ip_inventory.file_check_interval = 0;
SELECT pg_reload_conf();
\c
SELECT ip_country('81.2.69.160') AS country, ip_country('149.101.100.0') AS unknown_here;
SELECT name, database_type, generation, status FROM maxmind_info();
SELECT try('SELECT maxmind_reload()');
-- A replaced file is picked up at the next statement all the same.
\! cp "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb" "$IPI_SCRATCH/City.mmdb.new" && mv "$IPI_SCRATCH/City.mmdb.new" "$IPI_SCRATCH/City.mmdb"
SELECT ip_country('149.101.100.0') AS country, (SELECT database_type FROM maxmind_info() WHERE name = 'city');
-- The GreyNoise quota lives in shared memory: without preload GreyNoise is refused (the
-- other sources do not need it), and the health check says why.
INSERT INTO ip_inventory (ip_address, first_seen_at, last_seen_at, observation_count, ip_class)
VALUES ('71.6.135.131', now(), now(), 1, 'public');
SELECT try($$SELECT cascade_refresh('greynoise', 10)$$) AS greynoise;
SELECT try($$SELECT * FROM greynoise_quota()$$) AS quota;
SELECT "check", status, detail FROM ip_inventory_health() WHERE "check" = 'greynoise_quota';
SELECT greynoise_ts IS NULL AS still_due FROM ip_inventory;
-- The counters live in shared memory too: without preload nothing is counted, lookups and
-- recording work as before, and the stats say why they are empty.
SELECT try($$SELECT * FROM ip_inventory_stats$$) AS stats;
SELECT try($$SELECT ip_inventory_stats_reset()$$) AS reset;
CREATE TABLE raw_events (event_ts timestamptz, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events VALUES (now(), '81.2.69.160'), (now(), '81.2.69.160');
SELECT observation_count, geo_country FROM ip_inventory WHERE ip_address = '81.2.69.160';
