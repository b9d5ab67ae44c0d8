-- tools/ip-inventory-update against the loopback download server: checksum, server-side
-- verification, canary, atomic install with a backup, reload, and rollback; every failure
-- exits non-zero with one line and leaves the files in service untouched.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\! mkdir -p "$IPI_SCRATCH/geoip" && printf 'fake-license-key-0001\n' > "$IPI_SCRATCH/license.key"
-- The server reads the live files from the directory by their MaxMind names.
\set geoip :scratch/geoip
ALTER SYSTEM SET ip_inventory.maxmind_dir = :'geoip';
SELECT pg_reload_conf();
\c
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb"
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-ASN "$IPI_FIXTURES/maxmind/test-data/GeoLite2-ASN-Test.mmdb"

-- The first install: nothing in service before.
SELECT try($$SELECT ip_country('81.2.69.160')$$) AS before_any_file;
\! ../update_tool.sh
\! ls "$IPI_SCRATCH/geoip"
\c
SELECT ip_country('81.2.69.160') AS country, ip_asn('1.128.0.0') AS asn;
SELECT name, status, database_type FROM maxmind_info() ORDER BY name;
\! cd "$IPI_SCRATCH/geoip" && sha256sum GeoLite2-City.mmdb GeoLite2-ASN.mmdb > ../in-service.sha256

-- Failures, each leaving the files in service as they were (and no .new file behind).
-- A rejected license key.
\! printf 'wrong-key\n' > "$IPI_SCRATCH/license.key" && ../update_tool.sh; printf 'fake-license-key-0001\n' > "$IPI_SCRATCH/license.key"
-- No key at all.
\! ../update_tool.sh --license-key-file /dev/null
-- A download whose published checksum does not match.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" bad-checksum && ../update_tool.sh
-- A truncated database (its checksum matches: the server's verification refuses it).
\! head -c 9000 "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" > "$IPI_SCRATCH/truncated.mmdb" && python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_SCRATCH/truncated.mmdb" && ../update_tool.sh
-- An ASN database published as City.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-ASN-Test.mmdb" && ../update_tool.sh
-- A valid database that fails the canary.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" && ../update_tool.sh --canary city:81.2.69.160=US
-- An edition the server does not have, and a server that is not there.
\! ../update_tool.sh --editions GeoIP2-ISP
\! ../update_tool.sh --url http://127.0.0.1:9
-- Bad usage.
\! ../update_tool.sh --editions GeoLite2-Country
\! cd "$IPI_SCRATCH/geoip" && sha256sum --quiet -c ../in-service.sha256 && echo "files in service unchanged" && ls
SELECT ip_country('81.2.69.160') AS still_answering;

-- A new City build: installed, the previous one kept as .bak, every backend switched.
\! ../update_tool.sh --editions GeoLite2-City
\! cd "$IPI_SCRATCH/geoip" && ls && sha256sum GeoLite2-City.mmdb.bak | sed 's/  .*//' > ../bak.sha && grep -q -f ../bak.sha ../in-service.sha256 && echo "the backup is the previous file"
SELECT name, status, database_type, file_size FROM maxmind_info() WHERE name = 'city';

-- A reload that fails after the install (another configured database is broken): the
-- backup goes back into place.
\! cd "$IPI_SCRATCH/geoip" && sha256sum GeoLite2-City.mmdb > ../before-rollback.sha256
\! head -c 100 "$IPI_FIXTURES/maxmind/test-data/GeoLite2-ASN-Test.mmdb" > "$IPI_SCRATCH/broken.mmdb"
\set broken 'extra=':scratch/broken.mmdb
ALTER SYSTEM SET ip_inventory.databases = :'broken';
SELECT pg_reload_conf();
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb" && ../update_tool.sh --editions GeoLite2-City
\! cd "$IPI_SCRATCH/geoip" && sha256sum --quiet -c ../before-rollback.sha256 && echo "rolled back to the file in service before" && ls
ALTER SYSTEM RESET ip_inventory.databases;
SELECT pg_reload_conf();

-- DB-IP Lite: this month's .mmdb.gz, no account needed.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" dbip-city-lite "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb" && ../update_tool.sh --source dbip --editions dbip-city-lite --no-reload
\! ls "$IPI_SCRATCH/geoip"
-- What the download server saw: the key was sent as HTTP basic auth.
\! grep -c 'auth=valid' "$IPI_FAKE_DIR/download.log"; grep -c 'auth=wrong' "$IPI_FAKE_DIR/download.log"
