-- Network lists: tables of networks registered under a name (ip_list_register), looked up by
-- longest-prefix match (ip_list_match) and membership (ip_list_contains); loaded with COPY
-- from CSV files (pg_tests/fixtures/lists); every answer checked against a brute-force query.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\set sensors_csv :fixtures/lists/sensors.csv
\set blocklist_csv :fixtures/lists/blocklist.csv

-- A list table: network (cidr or inet), an optional label, any other columns are attributes.
CREATE TABLE sensors (network cidr PRIMARY KEY, label text, site text, since date);
COPY sensors FROM :'sensors_csv' (FORMAT csv, HEADER);
SELECT ip_list_register('sensors', 'sensors', 'Our honeypot sensors');
SELECT list_name, list_table, description, registered_by, registered_at <= now() AS registered
FROM ip_inventory_lists;

-- The most specific network answers, with its label and attributes; NULL when none holds the
-- address. IPv4-mapped addresses are looked up as IPv4.
SELECT ip, m.network, m.label, m.attributes, ip_list_contains(ip, 'sensors') AS member
FROM unnest(ARRAY['203.0.113.66', '203.0.113.67', '203.0.113.200', '198.51.100.7', '10.9.8.7',
                  '::ffff:203.0.113.66', '2001:db8:5e:1::99', '2001:db8:5e:2::1', '192.0.2.1',
                  '2001:db8::1']::inet[]) AS ip
LEFT JOIN LATERAL ip_list_match(ip, 'sensors') AS m ON true;

-- A blocklist of 2000 networks (nested and disjoint, IPv4 and IPv6) loaded with COPY, a
-- table without a label column (inet networks, host bits are ignored), 20 000 probes: the same
-- answers as a brute-force query.
CREATE TABLE blocklist (network inet NOT NULL, reason text);
COPY blocklist FROM :'blocklist_csv' (FORMAT csv);
SELECT ip_list_register('blocklist', 'blocklist');
CREATE TEMP TABLE probes AS
SELECT DISTINCT ip FROM (
    SELECT host(b.network)::inet + k AS ip FROM blocklist AS b, generate_series(0, 4) AS k
    UNION ALL SELECT ('45.' || (i % 64) || '.' || (i * 7 % 256) || '.' || (i * 13 % 256))::inet FROM generate_series(1, 10000) AS i
    UNION ALL SELECT ('2a0e:' || to_hex(i % 16) || '::' || to_hex(i))::inet FROM generate_series(1, 1000) AS i) AS p;
SELECT count(*) AS probes,
       count(*) FILTER (WHERE (ip_list_match(p.ip, 'blocklist')).network IS DISTINCT FROM
           (SELECT network(b.network) FROM blocklist AS b WHERE b.network >>= p.ip
            ORDER BY masklen(b.network) DESC LIMIT 1)) AS match_mismatches,
       count(*) FILTER (WHERE ip_list_contains(p.ip, 'blocklist') IS DISTINCT FROM
           EXISTS (SELECT FROM blocklist AS b WHERE b.network >>= p.ip)) AS contains_mismatches,
       count(*) FILTER (WHERE ip_list_contains(p.ip, 'blocklist')) AS members
FROM probes AS p;
SELECT (ip_list_match('45.0.38.200', 'blocklist')).*;
SELECT _ip_inventory_list_stats('blocklist') - 'bytes' AS stats;

-- Changes are seen at the next call: in this session at once (its own uncommitted changes
-- too, and no more once rolled back), in others once committed, without reconnecting.
INSERT INTO sensors VALUES ('192.0.2.0/24', 'new-sensors', 'lon1', '2025-01-01');
SELECT (ip_list_match('192.0.2.1', 'sensors')).label AS after_insert;
BEGIN;
UPDATE sensors SET label = 'renamed' WHERE network = '192.0.2.0/24';
SELECT (ip_list_match('192.0.2.1', 'sensors')).label AS own_uncommitted;
ROLLBACK;
SELECT (ip_list_match('192.0.2.1', 'sensors')).label AS after_rollback;
\setenv PGDATABASE :DBNAME
\! psql -X -q -c "DELETE FROM sensors WHERE network = '192.0.2.0/24'"
SELECT ip_list_match('192.0.2.1', 'sensors') IS NULL AS deleted_by_another_session;
\! psql -X -q -c "INSERT INTO blocklist VALUES ('192.0.2.128/25', 'late')"
SELECT (ip_list_match('192.0.2.200', 'blocklist')).network AS inserted_by_another_session;
\! psql -X -q -c "TRUNCATE blocklist"
SELECT ip_list_contains('45.0.38.200', 'blocklist') AS after_truncate;

-- Unknown lists, bad names, tables that cannot be lists.
SELECT try($$SELECT ip_list_match('1.1.1.1', 'nope')$$) AS unknown_list;
SELECT try($$SELECT ip_list_register('Bad-Name', 'sensors')$$) AS bad_name;
CREATE TABLE not_a_list (addr inet);
SELECT try($$SELECT ip_list_register('not_a_list', 'not_a_list')$$) AS no_network_column;
CREATE TABLE wrong_type (network text);
SELECT try($$SELECT ip_list_register('wrong_type', 'wrong_type')$$) AS text_network;
CREATE VIEW sensor_view AS SELECT * FROM sensors;
SELECT try($$SELECT ip_list_register('a_view', 'sensor_view')$$) AS a_view;

-- Unregistering forgets the list and removes the trigger; the table stays.
SELECT ip_list_unregister('blocklist');
SELECT try($$SELECT ip_list_contains('1.1.1.1', 'blocklist')$$) AS unregistered,
       (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'blocklist'::regclass) AS triggers_left;

-- Privileges. A list is written by whoever may write its table (its owner, roles granted
-- INSERT/UPDATE/DELETE), read by roles with SELECT on it; registering is not for PUBLIC, and
-- needs the table's ownership.
CREATE ROLE list_owner;
CREATE ROLE list_writer;
CREATE ROLE list_reader;
CREATE ROLE list_outsider;
GRANT CREATE ON SCHEMA public TO list_owner;
GRANT EXECUTE ON FUNCTION ip_list_register(text, regclass, text), ip_list_unregister(text) TO list_owner, list_outsider;
SET ROLE list_owner;
CREATE TABLE allowlist (network cidr PRIMARY KEY, label text);
INSERT INTO allowlist VALUES ('100.64.0.0/10', 'carrier');
SELECT ip_list_register('allowlist', 'allowlist');
GRANT SELECT, INSERT, UPDATE, DELETE ON allowlist TO list_writer;
GRANT SELECT ON allowlist TO list_reader;
RESET ROLE;
SET ROLE list_writer;
INSERT INTO allowlist VALUES ('100.64.1.0/24', 'office');
SELECT (ip_list_match('100.64.1.1', 'allowlist')).label AS writer_sees_own_change;
RESET ROLE;
SET ROLE list_reader;
SELECT (ip_list_match('100.64.1.1', 'allowlist')).label AS reader;
SELECT try($$INSERT INTO allowlist VALUES ('0.0.0.0/0', 'everything')$$) AS reader_writes;
RESET ROLE;
SET ROLE list_outsider;
SELECT try($$SELECT ip_list_match('100.64.1.1', 'allowlist')$$) AS outsider_match;
SELECT try($$SELECT ip_list_contains('100.64.1.1', 'allowlist')$$) AS outsider_contains;
SELECT try($$DELETE FROM allowlist$$) AS outsider_deletes;
SELECT try($$SELECT ip_list_register('allowlist', 'sensors')$$) AS outsider_repoints_list;
SELECT try($$SELECT ip_list_unregister('allowlist')$$) AS outsider_unregisters;
SELECT try($$UPDATE ip_inventory_lists SET list_table = 'sensors'::regclass$$) AS outsider_edits_registry;
SELECT try($$DROP TRIGGER _ip_inventory_list_changed ON allowlist$$) AS outsider_drops_trigger;
RESET ROLE;
SET ROLE list_writer;
SELECT try($$SELECT ip_list_register('mine', 'allowlist')$$) AS writer_registers;
RESET ROLE;

-- A list table is read as its owner in a security-restricted operation: a policy its owner
-- planted runs as the owner, not as the superuser looking the list up, and cannot change role.
SET ROLE list_owner;
CREATE TABLE spy_log (who text, what text);
CREATE FUNCTION spy() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.spy_log VALUES (current_user, 'read');
    BEGIN
        EXECUTE 'SET ROLE postgres';
        INSERT INTO public.spy_log VALUES (current_user, 'escalated');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO public.spy_log VALUES (current_user, SQLERRM);
    END;
    RETURN true;
END $$;
CREATE TABLE trap (network cidr, label text);
INSERT INTO trap VALUES ('198.18.0.0/15', 'bench');
ALTER TABLE trap ENABLE ROW LEVEL SECURITY;
ALTER TABLE trap FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON trap USING (public.spy());
SELECT ip_list_register('trap', 'trap');
RESET ROLE;
SELECT (ip_list_match('198.18.0.1', 'trap')).label AS superuser_reads_trap;
SELECT DISTINCT who, what FROM spy_log ORDER BY 1, 2;

DROP OWNED BY list_owner, list_writer, list_reader, list_outsider CASCADE;
DROP ROLE list_owner, list_writer, list_reader, list_outsider;
