-- Team Cymru through cascade_refresh('cymru'): bulk whois parsed into the inventory, many
-- addresses per connection, only rows without a MaxMind ASN, TTL selection, DNS mode with
-- reversed octets and nibbles, and faults recorded and retried.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql

CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT '2026-11-20', ip::inet FROM unnest(ARRAY[
    '8.8.8.8', '8.8.8.8', '8.8.8.8', '8.8.8.8', '216.90.108.31', '216.90.108.31', '216.90.108.31',
    '2620:fe::fe', '2620:fe::fe', '2606:4700:4700::1111', '8.8.4.1', '5.5.5.5', '1.128.0.1', '10.0.0.1']) AS ip;
-- Not yet enriched by MaxMind: waits for it.
SET ip_inventory.ingest_enrichment = off;
INSERT INTO raw_events VALUES ('2026-11-20', '1.1.1.1');
RESET ip_inventory.ingest_enrichment;
SELECT ip_address, ip_class, asn_number, asn_source, maxmind_ts IS NOT NULL AS maxmind_done
FROM ip_inventory ORDER BY ip_address;

-- Due: the public rows MaxMind had no ASN for (1.128.0.1 and 2606:4700:4700::1111 have
-- MaxMind's; 1.1.1.1 waits for MaxMind).
SELECT source, eligible, never FROM ip_inventory_staleness WHERE source = 'cymru';
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS result;
SELECT ip_address, asn_number, asn_org, asn_network, asn_source, cymru_ts IS NOT NULL AS asked,
       enrichment -> 'cymru' ->> 'asns' AS asns, enrichment -> 'cymru' ->> 'registry' AS registry
FROM ip_inventory ORDER BY ip_address;
-- One connection for the whole batch, busiest address first.
SELECT * FROM fake_log('whois');
-- Observation columns untouched; nothing due any more.
SELECT sum(observation_count) AS observations FROM ip_inventory;
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS nothing_due;

-- TTL: answers older than ip_inventory.cymru_ttl (90 days by default) are due again.
UPDATE ip_inventory SET cymru_ts = now() - interval '91 days' WHERE ip_address IN ('8.8.8.8', '5.5.5.5');
UPDATE ip_inventory SET cymru_ts = now() - interval '89 days' WHERE ip_address = '8.8.4.1';
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS two_stale;
ALTER SYSTEM SET ip_inventory.cymru_ttl = '1h';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
UPDATE ip_inventory SET cymru_ts = now() - interval '2 hours' WHERE ip_address = '8.8.4.1';
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS one_stale_by_the_shorter_ttl;
-- lim takes the busiest due rows first.
UPDATE ip_inventory SET cymru_ts = NULL WHERE asn_source = 'cymru' OR ip_address = '5.5.5.5';
SELECT cascade_refresh('cymru', 2) - 'elapsed' AS busiest_two;
SELECT ip_address FROM ip_inventory WHERE cymru_ts IS NULL AND ip_class = 'public' AND asn_source IS DISTINCT FROM 'maxmind' ORDER BY 1;

-- Batching: ip_inventory.cymru_batch_size addresses per connection, never one per address.
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
ALTER SYSTEM SET ip_inventory.cymru_batch_size = 2;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
UPDATE ip_inventory SET cymru_ts = NULL WHERE ip_class = 'public';
SELECT cascade_refresh('cymru', 100) ->> 'selected' AS selected;
SELECT count(*) AS connections, max(split_part(split_part(l, 'addresses=', 2), ' ', 1)::int) AS largest_batch
FROM fake_log('whois') AS l;
ALTER SYSTEM RESET ip_inventory.cymru_batch_size;
SELECT pg_reload_conf();

-- MaxMind enriches the waiting row; it has no ASN for 1.1.1.1, so Team Cymru asks next.
SET client_min_messages = warning;
CALL ip_inventory_enrich_pending() \gset
RESET client_min_messages;
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS after_maxmind;
SELECT asn_number, asn_source FROM ip_inventory WHERE ip_address = '1.1.1.1';

-- Faults: each a recorded failure, the row left due, the next run answers.
INSERT INTO raw_events SELECT '2026-11-20', ip::inet FROM unnest(ARRAY['66.66.66.1', '66.66.66.2', '66.66.66.3']) AS ip;
UPDATE ip_inventory SET cymru_ts = now() WHERE ip_address NOT IN ('66.66.66.1', '66.66.66.2', '66.66.66.3');
-- garbage instead of one answer
UPDATE ip_inventory SET cymru_ts = now() WHERE ip_address IN ('66.66.66.1', '66.66.66.2');
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS garbage_line;
-- the connection is reset after the answer for 1.1.1.1 (the busier row, asked first)
UPDATE ip_inventory SET cymru_ts = NULL WHERE ip_address IN ('66.66.66.2', '1.1.1.1');
UPDATE ip_inventory SET observation_count = observation_count + 5 WHERE ip_address = '1.1.1.1';
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS reset;
SELECT l FROM fake_log('whois') AS l WHERE l LIKE '%66.66.66.2%';
-- no answer within ip_inventory.cymru_timeout
UPDATE ip_inventory SET cymru_ts = NULL WHERE ip_address = '66.66.66.1';
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS timeout;
SELECT ip_address, source, attempts, error FROM ip_inventory_failures ORDER BY ip_address;
SELECT ip_address, cymru_ts IS NULL AS still_due FROM ip_inventory WHERE ip_address << '66.66.66.0/24' ORDER BY 1;
SELECT "check", status, value FROM ip_inventory_health() WHERE "check" = 'network_failures';
-- The next run: all three answered, failures cleared.
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS retried;
SELECT count(*) AS failures_left FROM ip_inventory_failures;
SELECT ip_address, asn_number, asn_source FROM ip_inventory WHERE ip_address << '66.66.66.0/24' ORDER BY 1;

-- DNS mode: origin.asn.cymru.com TXT with the octets reversed (8.8.4.1 is asked as
-- 1.4.8.8.origin..., which the stand-in answers differently from 8.8.4.1.origin... =
-- the address 1.4.8.8), origin6 with reversed nibbles, AS names from AS<n>.asn.cymru.com.
\! $IPI_FAKE_CTL reset "$IPI_FAKE_DIR"
ALTER SYSTEM SET ip_inventory.cymru_mode = 'dns';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
UPDATE ip_inventory SET cymru_ts = NULL, enrichment = enrichment - 'cymru' WHERE asn_source = 'cymru' OR ip_address = '5.5.5.5';
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS dns_mode;
SELECT ip_address, asn_number, asn_org, asn_network, enrichment -> 'cymru' ->> 'asns' AS asns, enrichment -> 'cymru' ->> 'mode' AS mode
FROM ip_inventory WHERE cymru_ts IS NOT NULL AND NOT ip_address << '66.66.66.0/24' ORDER BY 1;
SELECT l FROM fake_log('dns') AS l WHERE l LIKE '%origin%' ORDER BY 1;
-- DNS faults: SERVFAIL, silence, garbage; recorded, then answered.
INSERT INTO raw_events SELECT '2026-11-20', ip::inet FROM unnest(ARRAY['77.77.77.1', '77.77.77.2', '77.77.77.4']) AS ip;
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS dns_faults;
SELECT ip_address, attempts, regexp_replace(error, '127.0.0.1:\d+', 'DNS_SERVER') AS error
FROM ip_inventory_failures ORDER BY ip_address;
SELECT cascade_refresh('cymru', 100) - 'elapsed' AS dns_retried;
SELECT count(*) AS failures_left FROM ip_inventory_failures;
