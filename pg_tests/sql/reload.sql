-- Hot reload across sessions. This session keeps its connection throughout each part while
-- "another session" (a separate psql started with \!) replaces files and reloads.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\set city :scratch/City.mmdb
-- install_city.sh puts a file in place by rename; "$IPI_PGBIN/psql" is the other session.
\! ./install_city.sh lite

-- Part 1: only maxmind_reload() switches (automatic file checks off).
ALTER SYSTEM SET ip_inventory.city_db = :'city';
ALTER SYSTEM SET ip_inventory.file_check_interval = -1;
SELECT pg_reload_conf();
\c
-- 149.101.100.0 is unknown to GeoLite2-City-Test and US in GeoIP2-City-Test.
SELECT ip_country('149.101.100.0') AS country, database_type FROM maxmind_info() WHERE name = 'city';
SELECT generation AS gen0 FROM maxmind_info() WHERE name = 'city' \gset
-- The other session installs the new file; without a reload nothing changes here.
\! ./install_city.sh geoip2
SELECT ip_country('149.101.100.0') AS country, database_type, generation - :gen0 AS generations_later
FROM maxmind_info() WHERE name = 'city';
-- The other session reloads: files are validated in full, then the generation moves.
\! "$IPI_PGBIN/psql" -X -q -At -c "SELECT maxmind_reload()->'databases'->0->>'database_type' AS reloaded"
-- This session, without reconnecting, answers from the new file at its next lookup.
SELECT ip_country('149.101.100.0') AS country, database_type, generation - :gen0 AS generations_later
FROM maxmind_info() WHERE name = 'city';

-- An invalid replacement: maxmind_reload() refuses it and nothing changes anywhere.
\! ./install_city.sh asn
\! "$IPI_PGBIN/psql" -X -q -At -c "SELECT maxmind_reload()" 2>&1
SELECT ip_country('149.101.100.0') AS country, database_type, generation - :gen0 AS generations_later
FROM maxmind_info() WHERE name = 'city';
-- A session that starts now is answered from the verified copy last in service, with a warning.
\! "$IPI_PGBIN/psql" -X -q -At -c "SELECT ip_country('149.101.100.0') AS fresh_session_country" 2>&1

-- Part 2: automatic checks at every statement (file_check_interval = 0).
\! ./install_city.sh geoip2
ALTER SYSTEM SET ip_inventory.file_check_interval = 0;
SELECT pg_reload_conf();
\c
SELECT ip_country('149.101.100.0') AS country, database_type FROM maxmind_info() WHERE name = 'city';
-- A valid replacement without any reload: picked up at the next statement.
\! ./install_city.sh lite
SELECT ip_country('149.101.100.0') AS country, database_type FROM maxmind_info() WHERE name = 'city';
-- An invalid one: this session warns once and keeps answering from the previous file;
-- maxmind_info() shows it as stale with the reason.
\! ./install_city.sh asn
SELECT ip_country('81.2.69.160') AS country;
SELECT ip_country('81.2.69.160') AS country_no_second_warning;
SELECT database_type, status, error FROM maxmind_info() WHERE name = 'city';
-- A file that passes the quick check but was refused by maxmind_reload(): no backend picks
-- it up on its own either.
\! ./install_city.sh geoip2
SELECT ip_country('149.101.100.0') AS country, database_type, status FROM maxmind_info() WHERE name = 'city';
\! ./install_city.sh subtly-corrupt
\! "$IPI_PGBIN/psql" -X -q -At -c "SELECT maxmind_reload()" 2>&1
SELECT ip_country('149.101.100.0') AS country, database_type, status, error FROM maxmind_info() WHERE name = 'city';
-- Once a good file is installed and reloaded, all is well again.
\! ./install_city.sh lite
\! "$IPI_PGBIN/psql" -X -q -At -c "SELECT maxmind_reload()->'databases'->0->>'database_type' AS reloaded"
SELECT ip_country('149.101.100.0') AS country, database_type, status, error FROM maxmind_info() WHERE name = 'city';

-- Part 3: with file_check_interval = N > 0 a backend checks at most every N seconds. Before
-- N seconds have passed since its last check it may not switch; after, its next statement does.
ALTER SYSTEM SET ip_inventory.file_check_interval = 3;
SELECT pg_reload_conf();
\c
-- The check runs at the start of a statement, so statement_timestamp() is when it happened.
SELECT coalesce(ip_country('149.101.100.0'), 'none') AS country, statement_timestamp() AS checked_at
FROM maxmind_info() WHERE name = 'city' \gset
SELECT :'country' AS country_in_service;
\! ./install_city.sh geoip2
SELECT statement_timestamp() - :'checked_at' >= interval '3 s' OR ip_country('149.101.100.0') IS NULL
       AS no_switch_within_interval;
SELECT pg_sleep(3.2);
SELECT ip_country('149.101.100.0') AS country_after_interval, database_type FROM maxmind_info() WHERE name = 'city';
