-- Reverse DNS through cascade_refresh('rdns'): PTR names (IPv4 and IPv6), NXDOMAIN
-- recorded as "no name", faults recorded and retried, the TTL; and the MaxMind source and
-- cascade_refresh('all') with the counts it returns; bad arguments.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql

CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT '2026-11-20', ip::inet FROM unnest(ARRAY[
    '8.8.8.8', '8.8.8.8', '1.1.1.1', '2620:fe::fe', '71.6.135.131', '9.9.9.9', '192.168.1.1',
    '77.77.77.1', '77.77.77.2', '77.77.77.4']) AS ip;

SELECT cascade_refresh('rdns', 100) - 'elapsed' AS result;
SELECT ip_address, enrichment -> 'rdns' ->> 'name' AS name, enrichment -> 'rdns' ->> 'status' AS status,
       rdns_ts IS NOT NULL AS asked
FROM ip_inventory ORDER BY ip_address;
SELECT ip_address, attempts, regexp_replace(error, '127.0.0.1:\d+', 'DNS_SERVER') AS error
FROM ip_inventory_failures ORDER BY ip_address;
SELECT l FROM fake_log('dns') AS l WHERE l LIKE 'PTR e.f%' OR l LIKE 'PTR 8.8%';
SELECT cascade_refresh('rdns', 100) - 'elapsed' AS retried;
SELECT count(*) AS failures_left FROM ip_inventory_failures;
SELECT cascade_refresh('rdns', 100) - 'elapsed' AS nothing_due;
-- TTL: ip_inventory.rdns_ttl (1 day by default).
UPDATE ip_inventory SET rdns_ts = now() - interval '25 hours' WHERE ip_address = '8.8.8.8';
UPDATE ip_inventory SET rdns_ts = now() - interval '23 hours' WHERE ip_address = '1.1.1.1';
SELECT cascade_refresh('rdns', 100) - 'elapsed' AS one_stale;

-- MaxMind: rows never enriched (ingest enrichment off) or from another build.
SET ip_inventory.ingest_enrichment = off;
INSERT INTO raw_events VALUES ('2026-11-20', '81.2.69.160'), ('2026-11-20', '81.2.69.160'), ('2026-11-20', '2.125.160.216');
RESET ip_inventory.ingest_enrichment;
SELECT cascade_refresh('maxmind', 1) - 'elapsed' AS busiest_first;
SELECT ip_address, geo_country, maxmind_ts IS NOT NULL AS enriched FROM ip_inventory
WHERE ip_address IN ('81.2.69.160', '2.125.160.216') ORDER BY 1;
SELECT cascade_refresh('maxmind', 100) - 'elapsed' AS the_rest;

-- All sources in cascade order; totals and per-source counts.
INSERT INTO raw_events VALUES ('2026-11-20', '8.8.4.1'), ('2026-11-20', '81.2.69.192');
CREATE TEMP TABLE run AS SELECT cascade_refresh('all', 100) AS r;
SELECT r - 'elapsed' - 'sources' - 'quota_remaining' AS totals, r ? 'elapsed' AS has_elapsed FROM run;
SELECT e.source, (e.v ->> 'selected')::int AS selected, (e.v ->> 'refreshed')::int AS refreshed,
       (e.v ->> 'unchanged')::int AS unchanged, (e.v ->> 'not_found')::int AS not_found,
       (e.v ->> 'failed')::int AS failed, (e.v ->> 'skipped')::int AS skipped
FROM run, jsonb_each(r -> 'sources') WITH ORDINALITY AS e(source, v, n) ORDER BY array_position(ARRAY['maxmind', 'cymru', 'greynoise', 'rdns'], e.source);
SELECT ip_address, geo_country, asn_number, asn_source, is_scanner, enrichment -> 'rdns' ->> 'status' AS rdns
FROM ip_inventory WHERE ip_address IN ('8.8.4.1', '81.2.69.192') ORDER BY 1;

-- Bad arguments.
SELECT try($$SELECT cascade_refresh('shodan', 10)$$) AS unknown_source;
SELECT try($$SELECT cascade_refresh('cymru', -1)$$) AS negative_limit;
SELECT try($$SELECT cascade_refresh('cymru', 1000000)$$) AS huge_limit;
SELECT try($$SELECT cascade_refresh(NULL, 10)$$) AS null_source;
SELECT cascade_refresh('rdns', 0) - 'elapsed' AS zero_limit;
SELECT try($$SET ip_inventory.dns_server = 'dns.google'$$) AS server_by_name;
SELECT try($$SET ip_inventory.cymru_mode = 'telnet'$$) AS bad_mode;
