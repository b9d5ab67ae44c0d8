-- Unusable database files: each is a clear ERROR with a real SQLSTATE, the path and a hint;
-- no hostile file crashes or hangs a backend (the runner also checks the server log).
\ir helpers.psql
CREATE EXTENSION ip_inventory;
SET statement_timeout = '60s';

-- Prepare bad files in the scratch directory.
\! cd "$IPI_SCRATCH" && mkdir -p a-directory.mmdb && : > empty.mmdb && printf 'network,geoname_id\n1.0.0.0/24,2077456\n' > text.mmdb && head -c 10000 "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" > truncated.mmdb && cp "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" unreadable.mmdb && chmod 000 unreadable.mmdb

-- Each as the City database: configure, reconnect, look up.
CREATE TABLE bad_city (file text);
INSERT INTO bad_city VALUES ('missing.mmdb'), ('a-directory.mmdb'), ('unreadable.mmdb'),
    ('empty.mmdb'), ('text.mmdb'), ('truncated.mmdb');
\set city :scratch/missing.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT enrich_ip('81.2.69.160')$$);
\set city :scratch/a-directory.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT enrich_ip('81.2.69.160')$$);
\set city :scratch/unreadable.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT ip_country('81.2.69.160')$$);
\set city :scratch/empty.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT ip_country('81.2.69.160')$$);
\set city :scratch/text.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT ip_country('81.2.69.160')$$);
\set city :scratch/truncated.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT ip_country('81.2.69.160')$$);
-- An ASN database configured as City.
\set city :testdata/GeoLite2-ASN-Test.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT ip_country('81.2.69.160')$$);
-- A City database configured as ASN.
\set asn :testdata/GeoLite2-City-Test.mmdb
ALTER SYSTEM RESET ip_inventory.city_db;
ALTER SYSTEM SET ip_inventory.asn_db = :'asn';
SELECT pg_reload_conf();
\c
SELECT try($$SELECT ip_asn('81.2.69.160')$$);
-- maxmind_info() reports instead of raising.
SELECT name, status, error FROM maxmind_info();

-- Every corrupt file MaxMind's reader maintainers collected, and the broken and
-- denial-of-service test databases: looked up by path and verified in full. Verification
-- refuses every one; a lookup either fails cleanly or answers from what the file holds.
SET statement_timeout = '20s';
CREATE TABLE hostile AS
SELECT dir || '/' || f AS file
FROM unnest(ARRAY['bad-data/libmaxminddb', 'bad-data/maxminddb-golang', 'bad-data/maxminddb-python']) AS dir,
     LATERAL pg_ls_dir(:'fixtures' || '/maxmind/' || dir) AS f
UNION ALL
SELECT 'test-data/' || f FROM pg_ls_dir(:'testdata') AS f
WHERE f ~ '(Broken|Invalid|broken|dos|limit|budget)';
SELECT file,
       split_part(try(format('SELECT mmdb_lookup(%L, %L)', '1.1.1.1', :'fixtures' || '/maxmind/' || file)), E'\n', 1) AS lookup,
       split_part(try(format('SELECT maxmind_verify(%L)', :'fixtures' || '/maxmind/' || file)), ':', 1) AS verify
FROM hostile ORDER BY file;
SELECT count(*) AS files, count(*) FILTER (WHERE try(format('SELECT maxmind_verify(%L)', :'fixtures' || '/maxmind/' || file)) <> 'ok') AS refused_by_verify
FROM hostile;
-- The same files as the City database: every one is refused, and the backend lives on.
SELECT count(*) AS refused_as_city FROM hostile
WHERE try(format('SELECT maxmind_verify(%L, %L)', :'fixtures' || '/maxmind/' || file, 'city')) <> 'ok';
SELECT 'backend alive' AS status;
