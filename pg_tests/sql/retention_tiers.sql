-- Retention covers every copy of an address, and a two-tier policy (docs/privacy.md): raw
-- addresses are anonymized after 30 days, everything is deleted after 365. The copies: the
-- attached event tables, ip_inventory, and ip_inventory_failures (a failure record holds the
-- raw address and a source's error about it). Jobs keep row positions and counts, no address;
-- the refresh queue and the claims live in shared memory for at most a day.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql

CREATE TABLE raw_events (event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
-- Three ages: 400 days (past both tiers), 100 days (past the first), 2 days (recent).
INSERT INTO raw_events
SELECT now() - age, ('81.2.69.' || (140 + i))::inet, ('89.160.20.' || (112 + i))::inet
FROM (VALUES (interval '400 days'), (interval '100 days'), (interval '2 days')) AS a(age),
     generate_series(1, 4) AS i
WHERE (age = interval '400 days' AND i <= 2) OR (age = interval '100 days' AND i = 3) OR (age = interval '2 days' AND i = 4);
-- A network seen only 400 days ago: merged by the first tier, deleted by the second.
INSERT INTO raw_events VALUES (now() - interval '400 days', '175.16.199.7', NULL);
-- A network source failed on an address of each age.
INSERT INTO ip_inventory_failures (ip_address, source, attempts, error, first_failed_at, last_failed_at)
SELECT ip_address, 'rdns', 1, 'rdns: no answer about ' || host(ip_address), now(), now()
FROM ip_inventory WHERE ip_address << '81.2.69.0/24';
SELECT ip_address, observation_count, now() - last_seen_at > interval '30 days' AS past_30_days
FROM ip_inventory ORDER BY 1;

-- Where raw addresses older than a tier's cutoff still are.
CREATE FUNCTION raw_copies(older_than interval) RETURNS TABLE (place text, n bigint) LANGUAGE sql AS $$
    SELECT 'events', count(*) FROM raw_events
     WHERE event_ts < now() - older_than AND (masklen(src_ip) = 32 OR masklen(dst_ip) = 32)
    UNION ALL
    SELECT 'inventory', count(*) FROM ip_inventory
     WHERE last_seen_at < now() - older_than AND ip_class <> 'anonymized'
    UNION ALL
    SELECT 'failures', count(*) FROM ip_inventory_failures AS f
     WHERE NOT EXISTS (SELECT FROM ip_inventory AS i WHERE i.ip_address = f.ip_address AND i.last_seen_at >= now() - older_than)
$$;
SELECT * FROM raw_copies(interval '30 days');

-- Tier 1, dry run: what it would change, failures included.
SET client_min_messages = warning;
CALL ip_inventory_retention(interval '30 days', 'anonymize') \gset dry_
SELECT (:'dry_summary'::jsonb) - 'cutoff' AS tier1_dry_run;
SELECT count(*) AS failures_untouched_by_dry_run FROM ip_inventory_failures;

-- Tier 1: raw addresses older than 30 days are anonymized everywhere.
CALL ip_inventory_retention(interval '30 days', 'anonymize', dry_run => false) \gset t1_
SELECT (:'t1_summary'::jsonb) - 'cutoff' AS tier1;
SELECT * FROM raw_copies(interval '30 days');
SELECT ip_address, ip_class, observation_count FROM ip_inventory ORDER BY 1;
SELECT ip_address, error FROM ip_inventory_failures ORDER BY 1;
SELECT src_ip, dst_ip, now() - event_ts > interval '365 days' AS past_365_days FROM raw_events ORDER BY event_ts;
-- Observations are merged, not lost.
SELECT sum(observation_count) AS observations FROM ip_inventory;

-- Tier 2: everything older than 365 days is deleted, the merged networks too.
CALL ip_inventory_retention(interval '365 days', 'delete', dry_run => false) \gset t2_
SELECT (:'t2_summary'::jsonb) - 'cutoff' AS tier2;
SELECT count(*) AS events_past_365_days FROM raw_events WHERE event_ts < now() - interval '365 days';
SELECT count(*) AS inventory_past_365_days FROM ip_inventory WHERE last_seen_at < now() - interval '365 days';
SELECT ip_address, ip_class, observation_count FROM ip_inventory ORDER BY 1;
RESET client_min_messages;

-- Running both again changes nothing.
SET client_min_messages = warning;
CALL ip_inventory_retention(interval '30 days', 'anonymize', dry_run => false) \gset again1_
CALL ip_inventory_retention(interval '365 days', 'delete', dry_run => false) \gset again2_
RESET client_min_messages;
SELECT (:'again1_summary'::jsonb) #> '{inventory,rows}' AS tier1_again, (:'again1_summary'::jsonb) #> '{failures,rows}' AS failures_again,
       (:'again2_summary'::jsonb) #> '{inventory,rows}' AS tier2_again;
