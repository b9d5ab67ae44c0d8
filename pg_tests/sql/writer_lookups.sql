-- The lookups of the writers of new inventory rows: the observe trigger (and backfill, through
-- the same _ip_inventory_record) and the rows cascade_refresh_now adds enrich only the addresses
-- new to the inventory that MaxMind serves. A batch of known addresses runs no lookup at all:
-- the MaxMind part of a new row is a gated subquery, and a form that let the planner pull it
-- up built every known address's columns and dropped them (docs/benchmarks.md, issue 20
-- round 3). Counted per transaction with track_functions = all. _ip_inventory_maxmind_json is
-- not strict: it is the call an ungated form makes for known addresses (checked: without the
-- OFFSET 0 in _ip_inventory_record, the batch of known addresses below calls it once per
-- address). The Citus writers have the same form and are checked by make citus-check.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\set anon_db :testdata/GeoIP2-Anonymous-IP-Test.mmdb
\set isp_db :testdata/GeoIP2-ISP-Test.mmdb
\set ct_db :testdata/GeoIP2-Connection-Type-Test.mmdb
ALTER SYSTEM SET ip_inventory.anonymous_db = :'anon_db';
ALTER SYSTEM SET ip_inventory.isp_db = :'isp_db';
ALTER SYSTEM SET ip_inventory.connection_type_db = :'ct_db';
\ir use_test_databases.psql

CREATE TABLE ev (ts timestamptz NOT NULL DEFAULT now(), ip inet);
SELECT ip_inventory_attach('ev', ARRAY['ip'], 'ts');

-- The calls of each lookup a writer of new rows makes, since the last call of lookups(): the
-- backend's pending counts (pg_stat_get_xact_function_calls) keep growing until they are
-- flushed, which may happen between two transactions, so each step is read as a difference.
CREATE TABLE counted (lookup text PRIMARY KEY, calls bigint);
CREATE FUNCTION counts() RETURNS TABLE (lookup text, calls bigint) LANGUAGE sql AS $$
    SELECT p.proname::text, coalesce(pg_stat_get_xact_function_calls(p.oid), 0)
    FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public'
      AND p.proname IN ('_ip_inventory_maxmind', '_ip_inventory_anonymous', '_ip_inventory_isp',
                        '_ip_inventory_connection_type', '_ip_inventory_maxmind_json') $$;
CREATE FUNCTION lookups() RETURNS TABLE (lookup text, calls bigint) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT c.lookup, c.calls - coalesce(o.calls, 0) FROM counts() AS c
    LEFT JOIN counted AS o ON o.lookup = c.lookup ORDER BY 1;
    DELETE FROM counted;
    INSERT INTO counted SELECT * FROM counts();
END $$;

-- Three new public addresses (one of them twice), one private, one 6to4 carrying a public
-- IPv4 address: four lookups of each kind.
BEGIN;
SET LOCAL track_functions = 'all';
SELECT count(*) AS lookups_counted FROM lookups();
INSERT INTO ev (ip) VALUES ('81.2.69.160'), ('81.2.69.160'), ('89.160.20.128'), ('10.0.0.1'),
                           ('216.160.83.56'), ('2002:5102:45a0::1');
SELECT * FROM lookups();
COMMIT;
SELECT ip_address, ip_class, geo_country, maxmind_ts IS NOT NULL AS enriched
FROM ip_inventory ORDER BY ip_address;

-- Known addresses only, many events, one new private address: no lookup.
BEGIN;
SET LOCAL track_functions = 'all';
SELECT count(*) AS lookups_counted FROM lookups();
INSERT INTO ev (ip)
SELECT (ARRAY['81.2.69.160', '89.160.20.128', '216.160.83.56', '10.0.0.1', '10.0.0.2'])[1 + g % 5]::inet
FROM generate_series(1, 500) AS g;
SELECT * FROM lookups();
COMMIT;

-- Known addresses beside one new public address: one lookup of each kind.
BEGIN;
SET LOCAL track_functions = 'all';
SELECT count(*) AS lookups_counted FROM lookups();
INSERT INTO ev (ip)
SELECT (ARRAY['81.2.69.160', '89.160.20.128', '216.160.83.56', '2.125.160.216'])[1 + g % 4]::inet
FROM generate_series(1, 400) AS g;
SELECT * FROM lookups();
COMMIT;

-- Inline enrichment off: new addresses are recorded without a lookup.
BEGIN;
SET LOCAL track_functions = 'all';
SELECT count(*) AS lookups_counted FROM lookups();
SET LOCAL ip_inventory.ingest_enrichment = off;
INSERT INTO ev (ip) VALUES ('175.16.199.1'), ('81.2.69.160');
SELECT * FROM lookups();
COMMIT;
SELECT ip_address, maxmind_ts IS NOT NULL AS enriched FROM ip_inventory
WHERE ip_address IN ('175.16.199.1', '2.125.160.216') ORDER BY 1;

-- Rows cascade_refresh_now and the refresh queue add (_ip_inventory_add): the two new public
-- addresses are looked up; the new private one is added without; the known one is skipped.
BEGIN;
SET LOCAL track_functions = 'all';
SELECT count(*) AS lookups_counted FROM lookups();
SELECT _ip_inventory_add(ARRAY['81.2.69.142', '89.160.20.112', '81.2.69.160', '10.9.9.9']::inet[]) AS added;
SELECT * FROM lookups();
COMMIT;
SELECT ip_address, observation_count, geo_country, maxmind_ts IS NOT NULL AS enriched
FROM ip_inventory WHERE ip_address IN ('81.2.69.142', '89.160.20.112', '10.9.9.9') ORDER BY 1;
