-- Network answers are data, never control. Team Cymru (whois and DNS are plaintext: anyone on
-- the path can answer), GreyNoise and reverse DNS answer with NUL bytes, invalid UTF-8, a right-
-- to-left override, an ASN beyond 32 bits, a prefix that is no prefix, a date of year 99999,
-- values of the wrong types (pg_tests/fake_sources.py, 78.78.78.x). Each becomes a sanitized
-- answer or a recorded failure for that address only: the refresh never fails, the other
-- addresses are answered, and the next run asks only what failed.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
\ir use_fake_sources.psql
CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts');
INSERT INTO raw_events SELECT '2026-11-20', ip::inet
FROM unnest(ARRAY['78.78.78.1', '78.78.78.2', '78.78.78.3', '78.78.78.4', '78.78.78.5', '8.8.8.8', '1.1.1.1']) AS ip;

-- No stored text holds a control character (a NUL cannot even be stored: jsonb and text
-- refuse it, which is what used to fail whole refreshes with 22P05).
CREATE FUNCTION control_characters() RETURNS bigint LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM ip_inventory
            WHERE enrichment::text ~ '\\u00[01][0-9a-f]|[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]'
               OR asn_org ~ '[\x01-\x1f\x7f]' OR asn_org LIKE '%' || chr(8238) || '%'
               OR enrichment::text LIKE '%' || chr(8238) || '%')
         + (SELECT count(*) FROM ip_inventory_failures
            WHERE error ~ '[\x01-\x1f\x7f]' OR error LIKE '%' || chr(8238) || '%')
$$;

-- Team Cymru, bulk whois.
SELECT cascade_refresh('cymru', 100) - 'elapsed' - 'first_failure' AS cymru;
SELECT ip_address, asn_number, asn_org, asn_network, enrichment -> 'cymru' ->> 'allocated' AS allocated,
       enrichment -> 'cymru' ->> 'country' AS country
FROM ip_inventory WHERE cymru_ts IS NOT NULL ORDER BY ip_address;
SELECT ip_address, source, attempts, error FROM ip_inventory_failures ORDER BY ip_address, source;
-- The next run asks only the failed ones again.
SELECT cascade_refresh('cymru', 100) - 'elapsed' - 'first_failure' AS cymru_again;
SELECT ip_address, attempts FROM ip_inventory_failures WHERE source = 'cymru' ORDER BY ip_address;

-- Team Cymru over DNS.
ALTER SYSTEM SET ip_inventory.cymru_mode = 'dns';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
UPDATE ip_inventory SET cymru_ts = NULL, asn_number = NULL, asn_org = NULL, asn_network = NULL, asn_source = NULL,
       enrichment = enrichment - 'cymru';
DELETE FROM ip_inventory_failures;
SELECT cascade_refresh('cymru', 100) - 'elapsed' - 'first_failure' AS cymru_dns;
SELECT ip_address, asn_number, asn_org, asn_network FROM ip_inventory WHERE asn_number IS NOT NULL ORDER BY ip_address;
SELECT ip_address, error FROM ip_inventory_failures WHERE source = 'cymru' ORDER BY ip_address;

-- GreyNoise.
SELECT cascade_refresh('greynoise', 100) - 'elapsed' - 'quota_remaining' - 'first_failure' AS greynoise;
SELECT ip_address, enrichment -> 'greynoise' AS answer FROM ip_inventory
WHERE ip_address << '78.78.78.0/24' AND greynoise_ts IS NOT NULL ORDER BY ip_address;

SELECT ip_address, error FROM ip_inventory_failures WHERE source = 'greynoise' ORDER BY ip_address;
-- Reverse DNS.
SELECT cascade_refresh('rdns', 100) - 'elapsed' - 'first_failure' AS rdns;
SELECT ip_address, enrichment -> 'rdns' ->> 'name' AS name FROM ip_inventory
WHERE rdns_ts IS NOT NULL ORDER BY ip_address;

SELECT * FROM control_characters();
-- The check itself sees what it looks for.
SELECT E'a\x01b' ~ '[\x01-\x1f\x7f]' AS sees_control, ('a' || chr(8238)) LIKE '%' || chr(8238) || '%' AS sees_override,
       '{"a": "\\u0001"}'::jsonb::text ~ '\\u00[01][0-9a-f]' AS sees_escaped;
