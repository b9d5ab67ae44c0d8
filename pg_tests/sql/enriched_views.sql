-- Enriched events for BI (ip_inventory_enriched_view): a view of the events joined to the
-- inventory per address column, daily views by country and ASN, owned by the event table's
-- owner with security_invoker, dropped by detach.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql

CREATE ROLE bi_loader LOGIN;
CREATE ROLE bi_reader LOGIN;
CREATE ROLE bi_stranger LOGIN;
GRANT EXECUTE ON FUNCTION ip_inventory_attach(regclass, text[], text), ip_inventory_detach(regclass),
                          ip_inventory_enriched_view(regclass, text, text) TO bi_loader;
CREATE SCHEMA sensors AUTHORIZATION bi_loader;
GRANT USAGE ON SCHEMA sensors TO bi_reader, bi_stranger;

SET ROLE bi_loader;
CREATE TABLE sensors.events (event_ts timestamptz NOT NULL, src_ip inet, dst_addr cidr, note text);
COMMENT ON COLUMN sensors.events.note IS 'What the sensor said.';
SELECT ip_inventory_attach('sensors.events', ARRAY['src_ip', 'dst_addr'], 'event_ts');
-- Two days of events: MaxMind test addresses, an IPv4-mapped IPv6 address (recorded as IPv4),
-- private and missing addresses.
INSERT INTO sensors.events
SELECT '2026-03-01 22:00+00'::timestamptz + i * interval '1 hour',
       (ARRAY['81.2.69.160', '::ffff:81.2.69.160', '89.160.20.128', '2001:218::1', '10.0.0.1', NULL])[1 + i % 6]::inet,
       (ARRAY['1.128.0.0/32', '89.160.20.112', '81.2.69.142', NULL])[1 + i % 4]::cidr,
       'event ' || i
FROM generate_series(0, 29) AS i;
-- Not ours: a relation already holds the name the next call would give.
CREATE TABLE sensors.clash_daily_asn (x int);
RESET ROLE;

-- GreyNoise and reverse DNS answers, written as the cascade would.
UPDATE ip_inventory SET enrichment = enrichment || '{"greynoise": {"classification": "malicious", "noise": true, "riot": false, "name": "unknown"}, "rdns": {"name": "host.example.net"}}',
                        greynoise_ts = now(), rdns_ts = now()
WHERE ip_address = '81.2.69.160';

\echo '-- who may call it: not PUBLIC, only the table''s owner'
SELECT has_function_privilege('bi_reader', 'ip_inventory_enriched_view(regclass, text, text)', 'EXECUTE') AS reader_may;
SET ROLE bi_stranger;
SELECT try($$SELECT ip_inventory_enriched_view('sensors.events')$$) AS stranger;
RESET ROLE;
GRANT EXECUTE ON FUNCTION ip_inventory_enriched_view(regclass, text, text) TO bi_stranger;
SET ROLE bi_stranger;
SELECT try($$SELECT ip_inventory_enriched_view('sensors.events')$$) AS stranger_with_execute;
RESET ROLE;
SET ROLE bi_loader;
CREATE TABLE sensors.unattached (ts timestamptz, ip inet);
SELECT try($$SELECT ip_inventory_enriched_view('sensors.unattached')$$) AS unattached;

\echo '-- created as the table''s owner'
SELECT ip_inventory_enriched_view('sensors.events') AS views;
RESET ROLE;
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, c.relnamespace::regnamespace AS schema, c.reloptions
FROM pg_class AS c WHERE c.relname LIKE 'events_enriched%' ORDER BY 1;
SELECT event_table, enriched_views FROM ip_inventory_observed_tables;

\echo '-- the columns: the events'', then per address column, prefixed (src_ip: src, dst_addr: dst)'
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute AS a WHERE a.attrelid = 'sensors.events_enriched'::regclass AND a.attnum > 0 ORDER BY a.attnum;

\echo '-- every column of every view has a comment'
SELECT c.relname, count(*) AS columns, count(col_description(c.oid, a.attnum)) AS commented,
       obj_description(c.oid, 'pg_class') IS NOT NULL AS view_commented
FROM pg_class AS c JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.relnamespace = 'sensors'::regnamespace AND c.relkind = 'v' GROUP BY c.oid, c.relname ORDER BY 1;
SELECT col_description('sensors.events_enriched'::regclass, 4) AS note, col_description('sensors.events_enriched'::regclass, 5) AS src_country;

\echo '-- one row per event, values of the inventory row of each canonical address'
SELECT (SELECT count(*) FROM sensors.events_enriched) AS view_rows, (SELECT count(*) FROM sensors.events) AS events;
SELECT count(*) FILTER (WHERE v.src_country IS DISTINCT FROM i.geo_country OR v.src_country_name IS DISTINCT FROM i.geo_country_name
                           OR v.src_city IS DISTINCT FROM i.geo_city OR v.src_latitude IS DISTINCT FROM i.geo_latitude
                           OR v.src_longitude IS DISTINCT FROM i.geo_longitude OR v.src_asn IS DISTINCT FROM i.asn_number
                           OR v.src_asn_org IS DISTINCT FROM i.asn_org OR v.src_first_seen IS DISTINCT FROM i.first_seen_at
                           OR v.src_last_seen IS DISTINCT FROM i.last_seen_at OR v.src_greynoise_noise IS DISTINCT FROM i.is_scanner) AS src_differs,
       count(*) FILTER (WHERE v.src_ip IS NOT NULL AND i.ip_address IS NULL) AS src_not_in_inventory
FROM sensors.events_enriched AS v LEFT JOIN ip_inventory AS i ON i.ip_address = ip_canonical(v.src_ip);
SELECT count(*) FILTER (WHERE v.dst_country IS DISTINCT FROM i.geo_country OR v.dst_asn IS DISTINCT FROM i.asn_number
                           OR v.dst_asn_org IS DISTINCT FROM i.asn_org OR v.dst_city IS DISTINCT FROM i.geo_city) AS dst_differs,
       count(*) FILTER (WHERE v.dst_addr IS NOT NULL AND i.ip_address IS NULL) AS dst_not_in_inventory
FROM sensors.events_enriched AS v LEFT JOIN ip_inventory AS i ON i.ip_address = ip_canonical(v.dst_addr::inet);
SELECT DISTINCT src_ip, src_country, src_city, src_asn, src_greynoise_classification, src_greynoise_noise,
       src_greynoise_riot, src_greynoise_name, src_rdns_name, src_first_seen, src_last_seen
FROM sensors.events_enriched ORDER BY src_ip;
SELECT DISTINCT dst_addr, dst_country, dst_asn, dst_asn_org FROM sensors.events_enriched ORDER BY dst_addr;

\echo '-- the daily views equal a GROUP BY over the events'
SELECT day, ip_column, country, country_name, events, addresses FROM sensors.events_enriched_daily_country ORDER BY 1, 2, 3;
(SELECT day, ip_column, country, events, addresses FROM sensors.events_enriched_daily_country
 EXCEPT
 SELECT (e.event_ts AT TIME ZONE 'UTC')::date, x.col, i.geo_country, count(*), count(DISTINCT ip_canonical(x.ip))
 FROM sensors.events AS e
 CROSS JOIN LATERAL (VALUES ('src_ip', e.src_ip), ('dst_addr', e.dst_addr::inet)) AS x(col, ip)
 LEFT JOIN ip_inventory AS i ON i.ip_address = ip_canonical(x.ip)
 WHERE x.ip IS NOT NULL GROUP BY 1, 2, 3)
UNION ALL
(SELECT (e.event_ts AT TIME ZONE 'UTC')::date, x.col, i.geo_country, count(*), count(DISTINCT ip_canonical(x.ip))
 FROM sensors.events AS e
 CROSS JOIN LATERAL (VALUES ('src_ip', e.src_ip), ('dst_addr', e.dst_addr::inet)) AS x(col, ip)
 LEFT JOIN ip_inventory AS i ON i.ip_address = ip_canonical(x.ip)
 WHERE x.ip IS NOT NULL GROUP BY 1, 2, 3
 EXCEPT
 SELECT day, ip_column, country, events, addresses FROM sensors.events_enriched_daily_country);
SELECT day, ip_column, asn, asn_org, events, addresses FROM sensors.events_enriched_daily_asn ORDER BY 1, 2, 3;
(SELECT day, ip_column, asn, events, addresses FROM sensors.events_enriched_daily_asn
 EXCEPT
 SELECT (e.event_ts AT TIME ZONE 'UTC')::date, x.col, i.asn_number, count(*), count(DISTINCT ip_canonical(x.ip))
 FROM sensors.events AS e
 CROSS JOIN LATERAL (VALUES ('src_ip', e.src_ip), ('dst_addr', e.dst_addr::inet)) AS x(col, ip)
 LEFT JOIN ip_inventory AS i ON i.ip_address = ip_canonical(x.ip)
 WHERE x.ip IS NOT NULL GROUP BY 1, 2, 3)
UNION ALL
(SELECT (e.event_ts AT TIME ZONE 'UTC')::date, x.col, i.asn_number, count(*), count(DISTINCT ip_canonical(x.ip))
 FROM sensors.events AS e
 CROSS JOIN LATERAL (VALUES ('src_ip', e.src_ip), ('dst_addr', e.dst_addr::inet)) AS x(col, ip)
 LEFT JOIN ip_inventory AS i ON i.ip_address = ip_canonical(x.ip)
 WHERE x.ip IS NOT NULL GROUP BY 1, 2, 3
 EXCEPT
 SELECT day, ip_column, asn, events, addresses FROM sensors.events_enriched_daily_asn);

\echo '-- security_invoker: SELECT on the views alone reads no event and no inventory row'
SET ROLE bi_loader;
GRANT SELECT ON sensors.events_enriched, sensors.events_enriched_daily_country TO bi_reader;
RESET ROLE;
SET ROLE bi_reader;
SELECT try($$SELECT * FROM sensors.events_enriched$$) AS view_only;
SELECT try($$SELECT * FROM sensors.events_enriched_daily_country$$) AS daily_view_only;
RESET ROLE;
SET ROLE bi_loader;
GRANT SELECT ON sensors.events TO bi_reader;
RESET ROLE;
SET ROLE bi_reader;
SELECT try($$SELECT * FROM sensors.events_enriched$$) AS with_events_no_inventory;
RESET ROLE;
GRANT SELECT ON ip_inventory TO bi_reader;
SET ROLE bi_reader;
SELECT count(*) AS reader_rows, count(src_country) AS with_country FROM sensors.events_enriched;
RESET ROLE;
-- A policy of the owner's applies to the reader through the view, as it does on the table.
SET ROLE bi_loader;
ALTER TABLE sensors.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_day_one ON sensors.events FOR SELECT TO bi_reader USING (event_ts < '2026-03-02');
RESET ROLE;
SET ROLE bi_reader;
SELECT count(*) AS reader_rows_under_policy FROM sensors.events_enriched;
SELECT sum(events) AS reader_daily_events_under_policy FROM sensors.events_enriched_daily_country;
RESET ROLE;

\echo '-- names: a relation that is not ours is refused; ours are replaced; a name of one''s own'
SET ROLE bi_loader;
SELECT try($$SELECT ip_inventory_enriched_view('sensors.events', 'clash')$$) AS clash;
SELECT ip_inventory_enriched_view('sensors.events') AS again;
RESET ROLE;
CREATE SCHEMA bi AUTHORIZATION bi_loader;
CREATE SCHEMA not_theirs;
SET ROLE bi_loader;
-- The owner needs CREATE on the schema: the views are created as the owner.
SELECT try($$SELECT ip_inventory_enriched_view('sensors.events', 'ev', 'not_theirs')$$) AS no_create;
SELECT ip_inventory_enriched_view('sensors.events', 'ev', 'bi') AS elsewhere;
RESET ROLE;
SELECT n.nspname, c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'v' AND n.nspname IN ('sensors', 'bi') ORDER BY 1, 2;
SELECT enriched_views FROM ip_inventory_observed_tables;
SET ROLE bi_loader;
SELECT try($$SELECT ip_inventory_enriched_view('sensors.events', 'missing', 'no_such_schema')$$) AS no_schema;
SELECT try($$SELECT ip_inventory_enriched_view('sensors.events', repeat('v', 60))$$) AS too_long;
-- An event column with a generated name.
CREATE TABLE sensors.odd (ts timestamptz, src_ip inet, src_country text);
SELECT ip_inventory_attach('sensors.odd', ARRAY['src_ip'], NULL);
SELECT try($$SELECT ip_inventory_enriched_view('sensors.odd')$$) AS column_clash;
-- An address column whose type changed since attach is refused, as the trigger refuses it.
CREATE TABLE sensors.retyped (ts timestamptz, ip inet);
SELECT ip_inventory_attach('sensors.retyped', ARRAY['ip'], 'ts');
ALTER TABLE sensors.retyped ALTER COLUMN ip TYPE text;
SELECT try($$SELECT ip_inventory_enriched_view('sensors.retyped')$$) AS retyped;
-- Without an event time: the enriched view only; two columns with the same prefix keep their names.
CREATE TABLE sensors.notime (peer_ip inet, peer_addr inet, ip inet);
SELECT ip_inventory_attach('sensors.notime', ARRAY['peer_ip', 'peer_addr', 'ip'], NULL);
SELECT ip_inventory_enriched_view('sensors.notime') AS notime;
SELECT string_agg(a.attname, ' ' ORDER BY a.attnum) FILTER (WHERE a.attname LIKE '%country') AS country_columns
FROM pg_attribute AS a WHERE a.attrelid = 'sensors.notime_enriched'::regclass AND a.attnum > 0;

\echo '-- pg_dump and pg_restore keep the views, their owner and options, and the record of them'
RESET ROLE;
\! "$IPI_PGBIN/pg_dump" -Fc -f "$IPI_SCRATCH/ipi_bi.dump" ipi_test && "$IPI_PGBIN/psql" -X -q -d postgres -c "CREATE DATABASE ipi_bi_restore" && "$IPI_PGBIN/pg_restore" -d ipi_bi_restore "$IPI_SCRATCH/ipi_bi.dump" && echo restored
\c ipi_bi_restore
SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) AS owner, c.reloptions,
       (SELECT count(*) FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attnum > 0 AND col_description(c.oid, a.attnum) IS NULL) AS uncommented
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'v' AND n.nspname IN ('sensors', 'bi') ORDER BY 1, 2;
SELECT event_table, enriched_views FROM ip_inventory_observed_tables ORDER BY 1;
SELECT count(*) AS rows, count(src_country) AS with_country FROM bi.ev;
SET ROLE bi_loader;
SELECT ip_inventory_detach('sensors.events');
RESET ROLE;
SELECT count(*) AS views_left FROM pg_class AS c WHERE c.relkind = 'v' AND c.relnamespace IN ('sensors'::regnamespace, 'bi'::regnamespace);
\c postgres
DROP DATABASE ipi_bi_restore;
\c ipi_test
SET ROLE bi_loader;

\echo '-- detach drops the views it recorded, nothing else'
SELECT ip_inventory_detach('sensors.events');
SELECT ip_inventory_detach('sensors.notime');
RESET ROLE;
SELECT n.nspname, c.relname, c.relkind FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname IN ('sensors', 'bi') AND c.relkind IN ('v', 'r') ORDER BY 1, 2;
SELECT event_table FROM ip_inventory_observed_tables ORDER BY 1;
-- A recorded view dropped by its owner is skipped; a relation given its name later is not ours.
SET ROLE bi_loader;
SELECT ip_inventory_attach('sensors.events', ARRAY['src_ip', 'dst_addr'], 'event_ts');
SELECT ip_inventory_enriched_view('sensors.events', 'mine') AS mine;
DROP VIEW sensors.mine CASCADE;
CREATE TABLE sensors.mine (x int);
SELECT try($$SELECT ip_inventory_enriched_view('sensors.events', 'mine')$$) AS not_ours_any_more;
SELECT ip_inventory_detach('sensors.events');
RESET ROLE;
SELECT c.relname, c.relkind FROM pg_class AS c WHERE c.relname LIKE 'mine%' ORDER BY 1;
