-- Reports for BI tools, and the morning health check.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
-- An empty inventory: the views answer, percentages are NULL rather than a division error.
SELECT * FROM ip_inventory_coverage;
SELECT "check", status FROM ip_inventory_health();

CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
INSERT INTO raw_events SELECT now() - i * interval '1 min',
       (ARRAY['81.2.69.160', '81.2.69.161', '81.2.69.162', '89.160.20.128', '89.160.20.129',
              '216.160.83.56', '2001:218::1', '1.2.3.4', '10.0.0.1'])[1 + i % 9]::inet,
       CASE WHEN i % 2 = 0 THEN '10.0.0.1'::inet END
FROM generate_series(0, 89) AS i;
-- Answers of the cascade's sources, written by hand: a Cymru ASN, GreyNoise verdicts (one
-- older than its TTL), a stale reverse-DNS answer.
UPDATE ip_inventory SET asn_number = 64500, asn_org = 'Example Net', asn_source = 'cymru', cymru_ts = now() - interval '10 days'
WHERE ip_address = '1.2.3.4';
UPDATE ip_inventory SET greynoise_ts = now() - interval '1 day',
       enrichment = enrichment || '{"greynoise": {"noise": true, "riot": false, "classification": "malicious"}}'
WHERE ip_address IN ('81.2.69.160', '89.160.20.128');
UPDATE ip_inventory SET greynoise_ts = now() - interval '30 days',
       enrichment = enrichment || '{"greynoise": {"noise": false, "riot": true, "name": "Example CDN"}}'
WHERE ip_address = '216.160.83.56';
UPDATE ip_inventory SET rdns_ts = now() - interval '2 days' WHERE ip_address = '2001:218::1';

SELECT * FROM ip_inventory_coverage;
SELECT * FROM ip_inventory_asn_sources ORDER BY ips DESC;
SELECT * FROM ip_inventory_top_countries ORDER BY rank, geo_country;
SELECT * FROM ip_inventory_top_asns ORDER BY rank, asn_number;
SELECT source, ttl, eligible, never, stale FROM ip_inventory_staleness;
SELECT ip_inventory_ttl('cymru') AS cymru, ip_inventory_ttl('greynoise') AS greynoise, ip_inventory_ttl('rdns') AS rdns;
SELECT try($$SELECT ip_inventory_ttl('shodan')$$);

-- The health check (the age in "value" changes daily, so it is left out here).
SELECT "check", status, CASE WHEN "check" IN ('maxmind_age', 'last_observation') THEN '-' ELSE value END AS value,
       detail
FROM ip_inventory_health();
-- Thresholds are settings.
ALTER SYSTEM SET ip_inventory.maxmind_age_warning = '3650d';
ALTER SYSTEM SET ip_inventory.maxmind_age_critical = '7300d';
ALTER SYSTEM SET ip_inventory.greynoise_ttl = '60d';
SELECT pg_reload_conf();
\c
SELECT "check", status FROM ip_inventory_health() WHERE "check" IN ('maxmind_age', 'greynoise_stale');
-- The operators' one query for the morning.
SELECT "check", status FROM ip_inventory_health() WHERE status <> 'ok' ORDER BY 1;

-- The optional slots, when configured: their database (status, type, error) and its age
-- against the same thresholds; one of them holds a file of the wrong type.
\set anon_db :testdata/GeoIP2-Anonymous-IP-Test.mmdb
\set city_db :testdata/GeoIP2-City-Test.mmdb
ALTER SYSTEM SET ip_inventory.anonymous_db = :'anon_db';
ALTER SYSTEM SET ip_inventory.connection_type_db = :'city_db';
SELECT pg_reload_conf();
\c
SELECT "check", status, CASE WHEN "check" LIKE '%\_age' THEN '-' ELSE value END AS value, detail
FROM ip_inventory_health() WHERE "check" LIKE 'maxmind%' ORDER BY 1;
ALTER SYSTEM RESET ip_inventory.anonymous_db;
ALTER SYSTEM RESET ip_inventory.connection_type_db;

-- Other vendors' files (pg_tests/fixtures/vendors, all built at one time): DB-IP publishes
-- its Lite files monthly, so they may be 31 days older than the thresholds; IPinfo Lite (daily)
-- may not. Thresholds 20 and 10 days short of the files' age: DB-IP Lite is still ok, IPinfo
-- Lite critical.
SELECT extract(epoch FROM now() - to_timestamp(1764460800))::bigint AS vendor_age \gset
SELECT :vendor_age - 20 * 86400 AS warn, :vendor_age - 10 * 86400 AS crit \gset
ALTER SYSTEM SET ip_inventory.maxmind_age_warning = :warn;
ALTER SYSTEM SET ip_inventory.maxmind_age_critical = :crit;
\set vendors :fixtures/vendors
\set dbip_city :vendors/dbip-city-lite-test.mmdb
\set dbip_asn :vendors/dbip-asn-lite-test.mmdb
\set ipinfo :vendors/ipinfo-lite-test.mmdb
ALTER SYSTEM SET ip_inventory.city_db = :'dbip_city';
ALTER SYSTEM SET ip_inventory.asn_db = :'dbip_asn';
SELECT pg_reload_conf();
\c
SELECT "check", status, regexp_replace(detail, 'after [0-9][^,(;]*', 'after … ', 'g') AS detail
FROM ip_inventory_health() WHERE "check" = 'maxmind_age';
ALTER SYSTEM SET ip_inventory.city_db = :'ipinfo';
ALTER SYSTEM SET ip_inventory.asn_db = :'ipinfo';
SELECT pg_reload_conf();
\c
SELECT "check", status, regexp_replace(detail, 'after [0-9][^,(;]*', 'after … ', 'g') AS detail
FROM ip_inventory_health() WHERE "check" IN ('maxmind_age', 'maxmind_city_database', 'maxmind_asn_database');
ALTER SYSTEM RESET ip_inventory.maxmind_age_warning;
ALTER SYSTEM RESET ip_inventory.maxmind_age_critical;
ALTER SYSTEM RESET ip_inventory.city_db;
ALTER SYSTEM RESET ip_inventory.asn_db;
SELECT pg_reload_conf();
