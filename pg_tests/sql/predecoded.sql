-- Pre-decoded City records (ip_inventory.predecoded_city, core/src/mmdb/decoded.rs): every
-- record of the City database decoded once per language into a file beside its verified copy
-- in the store, mapped by every backend. What they answer must be exactly what decoding the
-- record answers, in every language; no file is made for a language the database does not
-- list, nor with the setting off.
\ir helpers.psql
CREATE EXTENSION ip_inventory;

-- Copies of MaxMind's City test database with build times of their own, so that no other
-- test's lookups made their files in the store (the cluster's, shared by the tests).
\! ./set_build_epoch.py "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb" "$IPI_SCRATCH/predecoded-1.mmdb" 1767225601
\! ./set_build_epoch.py "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" "$IPI_SCRATCH/predecoded-2.mmdb" 1767225602
\set city :scratch/predecoded-1.mmdb
\set city2 :scratch/predecoded-2.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'city';
\set asn :testdata/GeoLite2-ASN-Test.mmdb
ALTER SYSTEM SET ip_inventory.asn_db = :'asn';
SELECT pg_reload_conf();
\c

-- The store's pre-decoded files of a copy, its hash written as <copy>.
SELECT encode(sha256(pg_read_binary_file(:'city')), 'hex') AS copy_hash \gset
CREATE FUNCTION decoded_files(copy_hash text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT replace(f, copy_hash, '<copy>')
    FROM pg_ls_dir(current_setting('data_directory') || '/ip_inventory') AS f
    WHERE f LIKE copy_hash || '%.decoded' ORDER BY f $$;

-- The first lookup builds the file of the session's language.
SHOW ip_inventory.predecoded_city;
SELECT city, country_name, time_zone FROM enrich_ip('81.2.69.160');
SELECT * FROM decoded_files(:'copy_hash');

-- Every network's first and last address, in every language the database lists (its
-- metadata: only these get a file, so that the setting cannot fill the disk) and in others
-- its records have names in, or not ('ko': English names): the same row with the records
-- pre-decoded as decoded.
SELECT languages FROM maxmind_info() WHERE name = 'city';
CREATE TEMP TABLE probes AS
SELECT DISTINCT ip FROM mmdb_networks('city') AS n,
       LATERAL (VALUES (host(n.network)::inet), (host(broadcast(n.network))::inet)) AS p(ip);
SELECT count(*) > 100 AS many_probes FROM probes;
CREATE TEMP TABLE answers (language text, predecoded boolean, ip inet, row jsonb);
DO $$
DECLARE
    lang text;
    predecoded boolean;
BEGIN
    FOREACH lang IN ARRAY (SELECT languages FROM maxmind_info() WHERE name = 'city') || ARRAY['de', 'ja', 'ko'] LOOP
        FOREACH predecoded IN ARRAY ARRAY[true, false] LOOP
            PERFORM set_config('ip_inventory.language', lang, true);
            PERFORM set_config('ip_inventory.predecoded_city', predecoded::text, true);
            INSERT INTO answers SELECT lang, predecoded, p.ip, to_jsonb(e) FROM probes AS p, enrich_ip(p.ip) AS e;
        END LOOP;
    END LOOP;
END $$;
SELECT language, count(*) AS probes, count(*) FILTER (WHERE a.row->>'city' IS NOT NULL) AS with_city,
       count(*) FILTER (WHERE a.row IS DISTINCT FROM b.row) AS differ
FROM answers AS a JOIN answers AS b USING (language, ip)
WHERE a.predecoded AND NOT b.predecoded
GROUP BY language ORDER BY language;
-- Names in the language asked for (decoded or pre-decoded alike).
SELECT language, a.row->>'city' AS city FROM answers AS a
WHERE a.ip = '81.2.69.160' AND a.predecoded ORDER BY language;
-- One file per language the database lists; none for the others.
SELECT * FROM decoded_files(:'copy_hash');
-- A role with no privilege beyond PUBLIC's, trying languages the database does not list:
-- answers, and no file.
CREATE ROLE predecoded_nobody;
SET ROLE predecoded_nobody;
CREATE TEMP TABLE nobody_answers (language text, city text);
DO $$
DECLARE
    lang text;
BEGIN
    FOREACH lang IN ARRAY ARRAY['xx', 'yy-1', 'ko', 'a-very-long-code'] LOOP
        PERFORM set_config('ip_inventory.language', lang, false);
        INSERT INTO nobody_answers SELECT lang, e.city FROM enrich_ip('81.2.69.160') AS e;
    END LOOP;
END $$;
SELECT * FROM nobody_answers;
RESET ROLE;
RESET ip_inventory.language;
SELECT * FROM decoded_files(:'copy_hash');
DROP ROLE predecoded_nobody;

-- ip_country reads the country code from them too (the same in every language's file).
CREATE TEMP TABLE countries AS SELECT ip, ip_country(ip) AS predecoded FROM probes;
SET ip_inventory.predecoded_city = off;
SELECT count(*) AS probes, count(c.predecoded) AS with_country,
       count(*) FILTER (WHERE c.predecoded IS DISTINCT FROM ip_country(c.ip)) AS differ
FROM countries AS c;
RESET ip_inventory.predecoded_city;

-- ip_country answers IPv4 addresses from the file's country map, without walking the tree:
-- with the map doctored to say that 81.2.0.0/16 holds no record, a new session answers NULL
-- there (IPv4-mapped form too), and still GB in another /16; with the setting off, the lookup
-- answers GB. The doctored file is then removed, and built again by the next session.
SELECT format('%s/ip_inventory/%s.city-en.decoded', current_setting('data_directory'), :'copy_hash') AS decoded_en \gset
\! cp doctor_country_map.py "$IPI_SCRATCH/"
SELECT format('COPY (SELECT 1) TO PROGRAM %L',
              format('python3 %s/doctor_country_map.py %s 81.2.69.160', :'scratch', :'decoded_en'))
    AS doctor \gset
:doctor;
\c
SELECT ip_country('81.2.69.160') AS doctored, ip_country('::ffff:81.2.69.160') AS doctored_mapped,
       ip_country('2.125.160.216') AS other_16;
SET ip_inventory.predecoded_city = off;
SELECT ip_country('81.2.69.160') AS looked_up;
RESET ip_inventory.predecoded_city;
SELECT format('COPY (SELECT 1) TO PROGRAM %L', format('rm %s', :'decoded_en')) AS remove_doctored \gset
:remove_doctored;
\c
SELECT ip_country('81.2.69.160') AS rebuilt;
SELECT * FROM decoded_files(:'copy_hash');

-- With the setting off nothing is built: another City database, looked up with it off,
-- gets its file once the setting is on.
SELECT encode(sha256(pg_read_binary_file(:'city2')), 'hex') AS copy2_hash \gset
ALTER SYSTEM SET ip_inventory.city_db = :'city2';
ALTER SYSTEM SET ip_inventory.predecoded_city = off;
SELECT pg_reload_conf();
\c
SELECT city FROM enrich_ip('81.2.69.160');
SELECT * FROM decoded_files(:'copy2_hash');
SET ip_inventory.predecoded_city = on;
SELECT city FROM enrich_ip('81.2.69.160');
SELECT * FROM decoded_files(:'copy2_hash');

-- A file that cannot be written (where it would go, a directory the server made): a WARNING
-- naming the operator's file, and the same answers, decoded.
\! ./set_build_epoch.py "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" "$IPI_SCRATCH/predecoded-3.mmdb" 1767225603
\set city3 :scratch/predecoded-3.mmdb
SELECT encode(sha256(pg_read_binary_file(:'city3')), 'hex') AS copy3_hash \gset
SELECT format('COPY (SELECT 1) TO PROGRAM %L',
              format('mkdir -p %s/ip_inventory/%s.city-en.decoded/x', current_setting('data_directory'), :'copy3_hash'))
    AS make_dir \gset
:make_dir;
ALTER SYSTEM SET ip_inventory.city_db = :'city3';
ALTER SYSTEM RESET ip_inventory.predecoded_city;
SELECT pg_reload_conf();
\c
SELECT city FROM enrich_ip('81.2.69.160');
SELECT city FROM enrich_ip('81.2.69.160');
SELECT format('COPY (SELECT 1) TO PROGRAM %L',
              format('rm -r %s/ip_inventory/%s.city-en.decoded', current_setting('data_directory'), :'copy3_hash'))
    AS remove_dir \gset
:remove_dir;
