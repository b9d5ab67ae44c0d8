-- tools/ip-inventory-update against the loopback download server, which speaks MaxMind's
-- download API as geoipupdate uses it (the build's MD5 and date from the metadata route, then
-- the archive, or a redirect to a storage server on another port): credentials to the
-- configured server only, no download when the installed file is current, a lock, limits on
-- what it unpacks, server-side verification and canary, an all-or-nothing install with
-- backups, reload and rollback, named databases, DB-IP. Every failure exits non-zero with one
-- line and leaves the files in service untouched. update_tool.sh masks the extension's own
-- error text (tested elsewhere); its raw output is in $IPI_SCRATCH/update.out.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\! mkdir -p "$IPI_SCRATCH/geoip" && printf 'fake-license-key-0001\n' > "$IPI_SCRATCH/license.key"
-- The server reads the live files from the directory by their MaxMind names.
\set geoip :scratch/geoip
ALTER SYSTEM SET ip_inventory.maxmind_dir = :'geoip';
SELECT pg_reload_conf();
\c
\! python3 ../fake_sources.py reset "$IPI_FAKE_DIR"
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb"
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-ASN "$IPI_FIXTURES/maxmind/test-data/GeoLite2-ASN-Test.mmdb"

-- The first install: nothing in service before.
SELECT split_part(try($$SELECT ip_country('81.2.69.160')$$), ':', 1) AS before_any_file;
\! ../update_tool.sh
\! ls "$IPI_SCRATCH/geoip"
\c
SELECT ip_country('81.2.69.160') AS country, ip_asn('1.128.0.0') AS asn;
SELECT name, status, database_type FROM maxmind_info() ORDER BY name;
\! cd "$IPI_SCRATCH/geoip" && sha256sum GeoLite2-City.mmdb GeoLite2-ASN.mmdb > ../in-service.sha256 && stat -c '%n %i %y' GeoLite2-City.mmdb GeoLite2-ASN.mmdb > ../in-service.stat

-- Nothing new on the server: the tool asks for the metadata only (no download), leaves the
-- files alone (same inodes, same modification times) and does not reload.
\! python3 ../fake_sources.py reset "$IPI_FAKE_DIR" && ../update_tool.sh
\! cat "$IPI_FAKE_DIR/download.log"
\! cd "$IPI_SCRATCH/geoip" && stat -c '%n %i %y' GeoLite2-City.mmdb GeoLite2-ASN.mmdb | cmp -s - ../in-service.stat && echo "same inodes, same modification times"

-- Failures, each leaving the files in service as they were (and no temporary file behind).
-- A rejected license key.
\! printf 'wrong-key\n' > "$IPI_SCRATCH/license.key" && ../update_tool.sh; printf 'fake-license-key-0001\n' > "$IPI_SCRATCH/license.key"
-- No key at all.
\! ../update_tool.sh --license-key-file /dev/null
-- A download whose MD5 is not the published one.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" bad-checksum && ../update_tool.sh
-- A truncated database (its MD5 matches: the server's verification refuses it).
\! head -c 9000 "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" > "$IPI_SCRATCH/truncated.mmdb" && python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_SCRATCH/truncated.mmdb" && ../update_tool.sh
-- An ASN database published as City (the server's error names the type it found).
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-ASN-Test.mmdb" && ../update_tool.sh; grep -c '"GeoLite2-ASN"' "$IPI_SCRATCH/update.out"
-- A valid database that fails the canary.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" && ../update_tool.sh --canary city:81.2.69.160=US
-- Limits on unpacking: a database larger than --max-size; a 64 MiB member of zeros (64 KiB
-- packed) before the database (at most 16 MiB besides the database); the database named
-- outside the archive's folder; the database as a symlink.
\! ../update_tool.sh --max-size 20000
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" bomb && ../update_tool.sh
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" traversal && ../update_tool.sh
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" link && ../update_tool.sh
-- Redirects: one that never ends; one from https to plain http, refused before any request
-- reaches the plain-http server.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoLite2-City-Test.mmdb" && python3 ../fake_sources.py download-mode "$IPI_FAKE_DIR" loop && ../update_tool.sh
\! python3 ../fake_sources.py download-mode "$IPI_FAKE_DIR" redirect && ../update_tool.sh --url "$IPI_FAKE_HTTPS"; python3 ../fake_sources.py download-mode "$IPI_FAKE_DIR" direct
\! wc -l < "$IPI_FAKE_DIR/storage.log"
-- Another run holds the lock.
\! flock "$IPI_SCRATCH/geoip/.ip-inventory-update.lock" ../update_tool.sh
-- An edition the server does not have, and a server that is not there.
\! ../update_tool.sh --editions GeoIP2-ISP
\! ../update_tool.sh --url http://127.0.0.1:9
-- A database name that ip_inventory.databases does not have; an edition name that is a path.
\! ../update_tool.sh --edition GeoIP2-Anonymous-IP=anon
\! ../update_tool.sh --edition ../../etc/passwd
\! cd "$IPI_SCRATCH/geoip" && sha256sum --quiet -c ../in-service.sha256 && echo "files in service unchanged" && ls -A
SELECT ip_country('81.2.69.160') AS still_answering;

-- The real service's shape: the download answers 302 to presigned storage, another origin.
-- The credentials go to the configured server (metadata and download requests) and nowhere
-- else: the storage server logs every request with its headers, and refuses credentials.
\! python3 ../fake_sources.py reset "$IPI_FAKE_DIR" && python3 ../fake_sources.py download-mode "$IPI_FAKE_DIR" redirect && ../update_tool.sh --editions GeoLite2-City
\! cat "$IPI_FAKE_DIR/download.log"
\! sed -E -e 's/(\| [A-Za-z-]+): [^|]*/\1 /g' -e 's/ +$//' "$IPI_FAKE_DIR/storage.log"; grep -c -i -e authorization -e fake-license-key -e "$(printf 999999:fake-license-key-0001 | base64)" "$IPI_FAKE_DIR/storage.log"
\! python3 ../fake_sources.py download-mode "$IPI_FAKE_DIR" direct
\! cd "$IPI_SCRATCH/geoip" && ls && sha256sum GeoLite2-City.mmdb.bak | sed 's/  .*//' > ../bak.sha && grep -q -f ../bak.sha ../in-service.sha256 && echo "the backup is the previous file"
SELECT name, status, database_type, file_size FROM maxmind_info() WHERE name = 'city';

-- All or nothing: a new City build and a second edition (an extra database in the
-- directory) whose place is taken by a directory. Nothing is installed: the City in service
-- and its backup stay as they were.
\! cd "$IPI_SCRATCH/geoip" && sha256sum GeoLite2-City.mmdb GeoLite2-City.mmdb.bak > ../before.sha256 && stat -c '%n %i %y' GeoLite2-City.mmdb GeoLite2-City.mmdb.bak > ../before.stat && mkdir -p GeoIP2-Anonymous-IP.mmdb/in-the-way
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoLite2-City "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb" && python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoIP2-Anonymous-IP "$IPI_FIXTURES/maxmind/test-data/GeoIP2-Anonymous-IP-Test.mmdb" && ../update_tool.sh --edition GeoLite2-City --edition GeoIP2-Anonymous-IP
\! cd "$IPI_SCRATCH/geoip" && sha256sum --quiet -c ../before.sha256 && stat -c '%n %i %y' GeoLite2-City.mmdb GeoLite2-City.mmdb.bak | cmp -s - ../before.stat && echo "the City and its backup as before (same inodes)" && rm -r GeoIP2-Anonymous-IP.mmdb && ls
SELECT name, status, database_type FROM maxmind_info() ORDER BY name;

-- A reload that fails after the install (another configured database is broken): the
-- previous file goes back into place, the backup stays the older one.
\! cd "$IPI_SCRATCH/geoip" && sha256sum GeoLite2-City.mmdb GeoLite2-City.mmdb.bak > ../before-rollback.sha256
\! head -c 100 "$IPI_FIXTURES/maxmind/test-data/GeoLite2-ASN-Test.mmdb" > "$IPI_SCRATCH/broken.mmdb"
\set broken 'extra=':scratch/broken.mmdb
ALTER SYSTEM SET ip_inventory.databases = :'broken';
SELECT pg_reload_conf();
\! ../update_tool.sh --editions GeoLite2-City
\! cd "$IPI_SCRATCH/geoip" && sha256sum --quiet -c ../before-rollback.sha256 && echo "the file in service and its backup as before" && ls

-- A named database: GeoIP2-Anonymous-IP as "anon", installed at the path
-- ip_inventory.databases gives it (another directory), checked with its own canary.
\! mkdir -p "$IPI_SCRATCH/named"
\set anon 'anon=':scratch/named/anonymous.mmdb
ALTER SYSTEM SET ip_inventory.databases = :'anon';
SELECT pg_reload_conf();
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoIP2-Anonymous-IP "$IPI_FIXTURES/maxmind/test-data/GeoIP2-Anonymous-IP-Test.mmdb" && ../update_tool.sh --edition GeoIP2-Anonymous-IP=anon --canary 'anon:1.2.0.0={"is_tor_exit_node": true}'
\! ../update_tool.sh --edition GeoIP2-Anonymous-IP=anon --canary 'anon:1.2.0.0={"is_anonymous": true}'
\! ls "$IPI_SCRATCH/named"
SELECT mmdb_lookup('1.2.0.0', 'anon') -> 'data' AS anon;
ALTER SYSTEM RESET ip_inventory.databases;
SELECT pg_reload_conf();

-- DB-IP Lite: this month's .mmdb.gz, no account needed. DB-IP publishes no checksum to ask
-- first: the same file again is downloaded, found equal and left alone. A gzip bomb (64 MiB
-- of zeros, a 1 MB limit) is refused.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" dbip-city-lite "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb" bomb && ../update_tool.sh --source dbip --editions dbip-city-lite --max-size 1000000
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" dbip-city-lite "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb" && ../update_tool.sh --source dbip --editions dbip-city-lite --no-reload
\! ../update_tool.sh --source dbip --editions dbip-city-lite --no-reload
\! ls -A "$IPI_SCRATCH/geoip"

-- The optional MaxMind slots: =anonymous, =isp, =connection_type install where the server
-- reads that slot (its ip_inventory.<slot>_db, else DIR/EDITION.mmdb, a name the server looks
-- for in ip_inventory.maxmind_dir) and are verified as that kind: a City file published as
-- Connection-Type is refused, the real one installed and answered.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoIP2-Connection-Type "$IPI_FIXTURES/maxmind/test-data/GeoIP2-City-Test.mmdb" && ../update_tool.sh --edition GeoIP2-Connection-Type=connection_type
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoIP2-Connection-Type "$IPI_FIXTURES/maxmind/test-data/GeoIP2-Connection-Type-Test.mmdb" && ../update_tool.sh --edition GeoIP2-Connection-Type=connection_type --canary 'connection_type:1.0.1.0={"connection_type": "Cellular"}'
\c
SELECT ip_connection_type('1.0.1.0') AS connection_type;
-- An Anonymous-IP edition under its own name is verified as an Anonymous-IP file too, and a
-- canary given for the edition's name is its canary.
\! python3 ../fake_sources.py publish "$IPI_FAKE_DIR" GeoIP2-Anonymous-IP "$IPI_FIXTURES/maxmind/test-data/GeoIP2-Anonymous-IP-Test.mmdb" && ../update_tool.sh --edition GeoIP2-Anonymous-IP --canary 'GeoIP2-Anonymous-IP:1.2.0.0={"is_tor_exit_node": true}'
\! ../update_tool.sh --edition GeoIP2-Anonymous-IP --canary 'GeoIP2-Anonymous-IP:1.2.0.0={"is_anonymous": true}'
\c
SELECT (ip_anonymous('1.2.0.0')).is_anonymous AS anonymous;

-- IPinfo Lite (--source ipinfo, edition ipinfo_lite): the .mmdb itself, the token in the
-- query as IPinfo takes it (never shown in messages, never sent to the storage a download
-- redirects to). One file answers country and AS, so it is verified as both and must answer
-- both canaries (its AS as "AS15169"). A wrong token, no token, a failed AS canary; then the
-- install, the same file again (up to date), and the file serving both slots.
\! printf 'fake-ipinfo-token-0001\n' > "$IPI_SCRATCH/ipinfo.token" && printf 'wrong-token\n' > "$IPI_SCRATCH/ipinfo.wrong"
\! python3 ../fake_sources.py reset "$IPI_FAKE_DIR" && python3 ../fake_sources.py publish "$IPI_FAKE_DIR" ipinfo_lite "$IPI_FIXTURES/vendors/ipinfo-lite-test.mmdb"
\! ../update_tool.sh --source ipinfo --token-file "$IPI_SCRATCH/ipinfo.wrong"
\! env -u IPINFO_TOKEN ../update_tool.sh --source ipinfo
\! ../update_tool.sh --source ipinfo --token-file "$IPI_SCRATCH/ipinfo.token" --canary asn:8.8.8.8=13335
\! ../update_tool.sh --source ipinfo --token-file "$IPI_SCRATCH/ipinfo.token" --canary asn:8.8.8.8=15169 --no-reload
\! python3 ../fake_sources.py download-mode "$IPI_FAKE_DIR" redirect && ../update_tool.sh --source ipinfo --token-file "$IPI_SCRATCH/ipinfo.token" --canary asn:8.8.8.8=15169 --no-reload; python3 ../fake_sources.py download-mode "$IPI_FAKE_DIR" direct
\! cat "$IPI_FAKE_DIR/download.log"
\! grep -c 'GET /storage/ipinfo_lite.mmdb?X-Amz-Signature' "$IPI_FAKE_DIR/storage.log"; grep -c 'fake-ipinfo-token' "$IPI_FAKE_DIR/storage.log" "$IPI_SCRATCH/update.out"
\! ls -A "$IPI_SCRATCH/geoip" | grep ipinfo
\set ipinfo :scratch/geoip/ipinfo_lite.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'ipinfo';
ALTER SYSTEM SET ip_inventory.asn_db = :'ipinfo';
SELECT pg_reload_conf();
\c
SELECT ip_country('81.2.69.160') AS country, ip_asn('8.8.8.8') AS asn, ip_asn_org('8.8.8.8') AS org;
SELECT name, database_type, status FROM maxmind_info() WHERE name IN ('city', 'asn') ORDER BY name;
ALTER SYSTEM RESET ip_inventory.city_db;
ALTER SYSTEM RESET ip_inventory.asn_db;
SELECT pg_reload_conf();
