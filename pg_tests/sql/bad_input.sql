-- Bad input at the SQL surface: NULLs, netmasks, IPv6 zones, extreme prefixes, huge
-- batches, negative limits, unknown names. Each case shows its documented result or its
-- error (SQLSTATE, message, detail, hint); none may be an internal error (XX000) or crash.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
-- The value of an expression as text ('NULL' for NULL), or its error like try().
CREATE FUNCTION outcome(expr text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT (%s)::text', expr) INTO result;
    RETURN coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN try(format('SELECT (%s)::text', expr));
END $$;
CREATE TABLE raw_events (event_ts timestamptz, src_ip inet, dst_ip inet, note text);

-- Lookups: NULL is NULL; a netmask is ignored (the address is looked up); zones are not
-- inet syntax; the extremes of each family are reserved or not found; an unknown language
-- is accepted (names fall back to English).
SELECT expr, outcome(expr) FROM (VALUES
    ($$ip_country(NULL)$$),
    ($$ip_asn(NULL)$$),
    ($$ip_asn_org(NULL)$$),
    ($$enrich_ip(NULL)$$),
    ($$ip_class(NULL)$$),
    ($$ip_canonical(NULL)$$),
    ($$ip_country('81.2.69.160/24')$$),
    ($$ip_country('81.2.69.0/24')$$),
    ($$ip_country('0.0.0.0/0')$$),
    ($$ip_country('::/0')$$),
    ($$ip_country('::ffff:81.2.69.160')$$),
    ($$ip_country('::ffff:81.2.69.160/128')$$),
    ($$ip_country('fe80::1%eth0')$$),
    ($$ip_country('81.2.69.160%1')$$),
    ($$ip_country('81.2.69.160/33')$$),
    ($$ip_country('2001:db8::1/129')$$),
    ($$ip_country('not an address')$$),
    ($$ip_country('')$$),
    ($$ip_country('0.0.0.0')$$),
    ($$ip_country('255.255.255.255')$$),
    ($$ip_country('::')$$),
    ($$ip_country('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')$$),
    ($$ip_asn('1.128.0.0/11')$$),
    ($$ip_class('100.64.0.1/10')$$),
    ($$ip_class('fe80::1')$$),
    ($$ip_class('::')$$),
    ($$ip_class('::ffff:10.1.2.3')$$),
    ($$ip_canonical('::ffff:1.2.3.4/120')$$),
    ($$ip_canonical('1.2.3.4/8')$$),
    ($$(enrich_ip('81.2.69.160/0')).country_code$$),
    ($$(enrich_ip('10.0.0.1')).ip_class$$),
    ($$mmdb_lookup(NULL, current_setting('ip_inventory.city_db'))$$),
    ($$mmdb_lookup('1.2.3.4', NULL)$$),
    ($$mmdb_lookup('1.2.3.4', '')$$),
    ($$mmdb_lookup('1.2.3.4', 'relative/GeoIP2-City-Test.mmdb')$$),
    ($$mmdb_lookup('1.2.3.4', '/no/such/file.mmdb')$$),
    ($$mmdb_lookup('81.2.69.160/8', 'city') -> 'data' -> 'country' ->> 'iso_code'$$)
) AS t(expr);

-- A huge batch in one statement: 300 000 lookups, no error, nothing skipped.
SELECT count(*) AS rows, count(e.ip_class) AS classified
FROM generate_series(1, 300000) AS g, LATERAL enrich_ip('1.0.0.0'::inet + g::bigint * 9973) AS e;

-- Settings: out-of-range or unknown values are refused when set. (PostgreSQL 18 prints the
-- bounds of a range with their unit, "(100 ms .. 600000 ms)": reduced to 15's "(100 .. 600000)".)
SELECT expr, regexp_replace(try(expr), '\((-?\d+) [a-z]+ \.\. (-?\d+) [a-z]+\)$', '(\1 .. \2)') AS try
FROM (VALUES
    ($$SET ip_inventory.language = 'xx'$$),
    ($$SET ip_inventory.language = ''$$),
    ($$SET ip_inventory.language = 'pt-BR'$$),
    ($$SET ip_inventory.file_check_interval = -1$$),
    ($$SET ip_inventory.cymru_batch_size = 0$$),
    ($$SET ip_inventory.greynoise_daily_quota = -1$$),
    ($$SET ip_inventory.cymru_mode = 'carrier-pigeon'$$),
    ($$SET ip_inventory.cymru_timeout = '0'$$)
) AS t(expr);
RESET ip_inventory.language;

-- The cascade: NULLs, unknown sources, negative and huge limits.
SELECT expr, outcome(expr) FROM (VALUES
    ($$cascade_refresh(NULL, 10)$$),
    ($$cascade_refresh('maxmind', NULL) - 'elapsed'$$),
    ($$cascade_refresh('nope')$$),
    ($$cascade_refresh('MaxMind')$$),
    ($$cascade_refresh('')$$),
    ($$cascade_refresh('maxmind', -1)$$),
    ($$cascade_refresh('maxmind', 100001)$$),
    ($$cascade_refresh('maxmind', 0) - 'elapsed'$$),
    ($$ip_inventory_ttl('nope')$$),
    ($$ip_inventory_ttl(NULL)$$),
    ($$(SELECT count(*) FROM ip_inventory_fetch('nope', ARRAY['1.2.3.4']))$$),
    ($$(SELECT count(*) FROM ip_inventory_fetch('cymru', NULL))$$),
    ($$(SELECT count(*) FROM ip_inventory_fetch('cymru', '{}'))$$),
    ($$(SELECT outcome || ': ' || detail FROM ip_inventory_fetch('cymru', ARRAY['not-an-ip']))$$),
    ($$(SELECT outcome || ': ' || detail FROM ip_inventory_fetch('greynoise', ARRAY[NULL]))$$)
) AS t(expr);

-- Observing tables: bad column lists are refused before any trigger exists.
SELECT expr, try(expr) FROM (VALUES
    ($$SELECT ip_inventory_attach('raw_events', NULL)$$),
    ($$SELECT ip_inventory_attach('raw_events', '{}')$$),
    ($$SELECT ip_inventory_attach('raw_events', ARRAY[NULL])$$),
    ($$SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'src_ip'])$$),
    ($$SELECT ip_inventory_attach('raw_events', ARRAY['note'])$$),
    ($$SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'note')$$),
    ($$SELECT ip_inventory_attach('raw_events', ARRAY['no_such_column'])$$),
    ($$SELECT ip_inventory_attach('no_such_table', ARRAY['src_ip'])$$),
    ($$SELECT ip_inventory_attach('ip_inventory', ARRAY['ip_address'])$$),
    ($$SELECT ip_inventory_attach(NULL, ARRAY['src_ip'])$$)
) AS t(expr);
SELECT count(*) AS triggers FROM ip_inventory_observed_tables;

-- Events with odd addresses: NULLs are skipped, netmasks dropped, IPv4-mapped addresses
-- counted as IPv4; the inventory holds one canonical row per address.
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
INSERT INTO raw_events VALUES
    ('2026-11-20 10:00', NULL, NULL, 'no address'),
    ('2026-11-20 10:01', '81.2.69.160/24', NULL, 'netmask'),
    ('2026-11-20 10:02', '::ffff:81.2.69.160', '81.2.69.160', 'mapped and plain'),
    (NULL, '10.1.2.3', '::', 'no time, private and unspecified'),
    ('2026-11-20 10:03', '0.0.0.0/0', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128', 'extremes');
SELECT ip_address, observation_count, ip_class, geo_country FROM ip_inventory ORDER BY ip_address;
SELECT try($$INSERT INTO raw_events VALUES (now(), 'fe80::1%eth0', NULL, 'zone')$$) AS zone_insert;

-- Jobs: NULLs, zero and negative sizes, unknown tables and columns.
SELECT stmt, try(stmt) FROM (VALUES
    ($$CALL ip_inventory_enrich_pending(0)$$),
    ($$CALL ip_inventory_enrich_pending(-5)$$),
    ($$CALL ip_inventory_enrich_pending(NULL)$$),
    ($$CALL ip_inventory_enrich_pending(10, -1)$$),
    ($$CALL ip_inventory_backfill(NULL, ARRAY['src_ip'])$$),
    ($$CALL ip_inventory_backfill('raw_events', NULL)$$),
    ($$CALL ip_inventory_backfill('raw_events', ARRAY['src_ip'], 'event_ts', 0)$$),
    ($$CALL ip_inventory_backfill('raw_events', ARRAY['src_ip'], 'event_ts', -1)$$),
    ($$CALL ip_inventory_backfill('raw_events', ARRAY['nope'])$$),
    ($$CALL ip_inventory_backfill('no_such_table', ARRAY['src_ip'])$$)
) AS t(stmt);
