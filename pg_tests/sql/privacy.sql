-- Privacy: ip_anonymize (truncation), ip_pseudonymize (keyed hash, salt from a
-- superuser-only setting), and the retention procedure with its dry run.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql

-- Truncation: the network with its prefix length; IPv4-mapped as IPv4; bad prefixes refused.
SELECT ip, ip_anonymize(ip::inet) AS default_prefixes, ip_anonymize(ip::inet, 16, 32) AS wider,
       ip_anonymize(ip::inet, 32, 128) AS unchanged
FROM (VALUES ('81.2.69.160'), ('::ffff:81.2.69.160'), ('2001:db8:1234:5678::1'), ('81.2.69.160/28'),
             ('10.1.2.3')) AS t(ip);
SELECT ip_anonymize('81.2.69.160', 0, 0) AS v4_zero, ip_anonymize('2001:db8::1', 0, 0) AS v6_zero,
       ip_anonymize(NULL) AS null_in;
SELECT try($$SELECT ip_anonymize('1.2.3.4', 33)$$) AS v4_33, try($$SELECT ip_anonymize('1.2.3.4', -1)$$) AS v4_minus,
       try($$SELECT ip_anonymize('::1', 24, 129)$$) AS v6_129;

-- Pseudonyms with an explicit salt: stable, keyed, the same for the mapped form.
SELECT length(ip_pseudonymize('81.2.69.160', 'a-salt-of-16-bytes')) AS hex_digits,
       ip_pseudonymize('81.2.69.160', 'a-salt-of-16-bytes') = ip_pseudonymize('81.2.69.160', 'a-salt-of-16-bytes') AS stable,
       ip_pseudonymize('81.2.69.160', 'a-salt-of-16-bytes') = ip_pseudonymize('::ffff:81.2.69.160', 'a-salt-of-16-bytes') AS mapped_same,
       ip_pseudonymize('81.2.69.160', 'a-salt-of-16-bytes') <> ip_pseudonymize('81.2.69.161', 'a-salt-of-16-bytes') AS per_address,
       ip_pseudonymize('81.2.69.160', 'a-salt-of-16-bytes') <> ip_pseudonymize('81.2.69.160', 'another-salt-16-bytes') AS per_salt,
       ip_pseudonymize(NULL, 'a-salt-of-16-bytes') IS NULL AS null_in;
-- HMAC-SHA256 of the 4 address bytes, first 16 bytes in hex (Python: hmac.new(b'key-key-key-key-',
-- bytes([1, 2, 3, 4]), hashlib.sha256).hexdigest()[:32]).
SELECT ip_pseudonymize('1.2.3.4', 'key-key-key-key-') = '00e3b44dc3f7f24f29dcee5a8d0035e2' AS known_answer;
SELECT try($$SELECT ip_pseudonymize('1.2.3.4', 'short')$$) AS short_salt;
SELECT try($$SELECT ip_pseudonymize('1.2.3.4')$$) AS no_salt_configured;

-- The salt from the setting: env:/file: only (a plain salt would be logged on reload).
\! printf 'the-server-salt-0001\n' > "$IPI_SCRATCH/salt" && chmod 644 "$IPI_SCRATCH/salt"
-- (A refused statement is logged with its text, so this one uses a made-up salt; the runner
-- checks the server log never shows the salt actually used.)
ALTER SYSTEM SET ip_inventory.pseudonymize_salt = 'made-up-plain-salt-0000';
\set saltfile 'file:':scratch/salt
ALTER SYSTEM SET ip_inventory.pseudonymize_salt = :'saltfile';
SELECT pg_reload_conf();
\c
SELECT ip_pseudonymize('81.2.69.160') = ip_pseudonymize('81.2.69.160', 'the-server-salt-0001') AS uses_configured_salt;
-- A role without a grant can neither use it (hashing all 2^32 IPv4 addresses with it would
-- reverse every pseudonym) nor read it; a role granted EXECUTE on ip_pseudonymize(inet) uses
-- it without seeing it. Anyone may pseudonymize with a salt of their own.
CREATE ROLE privacy_reader LOGIN;
CREATE ROLE privacy_admin LOGIN;
GRANT EXECUTE ON FUNCTION ip_pseudonymize(inet) TO privacy_admin;
SET ROLE privacy_reader;
SELECT try($$SELECT ip_pseudonymize('81.2.69.160')$$) AS reader_configured_salt;
SELECT length(ip_pseudonymize('81.2.69.160', 'a-salt-of-16-bytes')) AS reader_own_salt;
SET ROLE privacy_admin;
SELECT ip_pseudonymize('81.2.69.160') = ip_pseudonymize('81.2.69.160', 'the-server-salt-0001') AS granted_pseudonymizes;
SELECT split_part(try($$SHOW ip_inventory.pseudonymize_salt$$), ':', 1) AS granted_show;
SET ROLE privacy_reader;
-- (The SQLSTATE only: PostgreSQL 18 words this server message differently from 15.)
SELECT split_part(try($$SHOW ip_inventory.pseudonymize_salt$$), ':', 1) AS reader_show;
SELECT try($$SET ip_inventory.pseudonymize_salt = 'file:/tmp/mine'$$) AS reader_set;
SELECT count(*) AS salt_rows_in_pg_settings FROM pg_settings WHERE name = 'ip_inventory.pseudonymize_salt';
RESET ROLE;
\! printf 'short\n' > "$IPI_SCRATCH/salt"
SELECT try($$SELECT ip_pseudonymize('1.2.3.4')$$) AS short_configured_salt;
\! rm "$IPI_SCRATCH/salt"
SELECT try($$SELECT ip_pseudonymize('1.2.3.4')$$) AS missing_salt_file;

-- Retention. Events from 2020 (old) and from now (recent), in two observed tables; one
-- table without a time column.
CREATE TABLE raw_events (event_ts timestamptz, src_ip inet, dst_ip inet);
CREATE TABLE web_events (seen timestamptz, client inet);
CREATE TABLE undated (ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');
SELECT ip_inventory_attach('web_events', ARRAY['client'], 'seen');
SELECT ip_inventory_attach('undated', ARRAY['ip']);
INSERT INTO raw_events VALUES
    ('2020-01-01', '81.2.69.160', '10.0.0.1'),
    ('2020-01-02', '81.2.69.142', NULL),
    ('2020-01-03', '81.2.69.160', '10.0.0.2'),
    ('2020-01-04', '2001:218::1', '::ffff:81.2.69.192'),
    (now(), '89.160.20.112', '10.0.0.1'),
    (now(), '81.2.69.160', NULL);
INSERT INTO web_events VALUES ('2020-02-01', '175.16.199.1'), ('2020-02-02', '175.16.199.2'), (now(), '175.16.199.3');
INSERT INTO undated VALUES ('1.1.1.1');
SELECT sum(observation_count) AS observations, count(*) AS inventory_rows FROM ip_inventory;

-- The dry run (the default) reports and changes nothing. (The summary's cutoff is left out
-- here: it depends on the time of the run.)
CREATE TABLE before AS SELECT * FROM ip_inventory;
DO $$ DECLARE s jsonb; BEGIN CALL ip_inventory_retention(interval '365 days', summary => s); RAISE NOTICE '%', s - 'cutoff'; END $$;
SELECT (SELECT count(*) FROM (SELECT * FROM before EXCEPT SELECT * FROM ip_inventory) d) AS inventory_changed,
       (SELECT count(*) FROM raw_events WHERE masklen(src_ip) < 32) AS events_changed;

-- Anonymize, in batches of 2: old events truncated, old inventory rows merged per network.
DO $$ DECLARE s jsonb; BEGIN CALL ip_inventory_retention(interval '365 days', dry_run => false, batch_size => 2, summary => s); RAISE NOTICE '%', s - 'cutoff'; END $$;
SELECT event_ts < now() - interval '1 year' AS old, src_ip, dst_ip FROM raw_events ORDER BY event_ts, src_ip;
SELECT seen < now() - interval '1 year' AS old, client FROM web_events ORDER BY seen;
SELECT ip_address, ip_class, observation_count, geo_country, asn_number,
       CASE WHEN first_seen_at < '2021-01-01' THEN first_seen_at::date END AS first_seen_2020, last_seen_at > '2021-01-01' AS recent
FROM ip_inventory ORDER BY ip_class, ip_address;
SELECT sum(observation_count) AS observations_kept FROM ip_inventory;
-- A second run finds nothing left to do.
DO $$ DECLARE s jsonb; BEGIN CALL ip_inventory_retention(interval '365 days', dry_run => false, summary => s); RAISE NOTICE '%', s - 'cutoff'; END $$;
-- Merged rows are never enriched or refreshed.
SELECT cascade_refresh('maxmind', 100) ->> 'selected' AS maxmind_selected;

-- Delete: old events and old inventory rows, merged ones included.
DO $$ DECLARE s jsonb; BEGIN CALL ip_inventory_retention(interval '365 days', 'delete', summary => s); RAISE NOTICE 'dry run: %', s - 'cutoff'; END $$;
DO $$ DECLARE s jsonb; BEGIN CALL ip_inventory_retention(interval '365 days', 'delete', dry_run => false, batch_size => 2, summary => s); RAISE NOTICE '%', s - 'cutoff'; END $$;
SELECT count(*) AS raw_events_left, count(*) FILTER (WHERE event_ts < now() - interval '1 year') AS old_left FROM raw_events;
SELECT count(*) AS web_events_left FROM web_events;
SELECT ip_address, ip_class, observation_count FROM ip_inventory ORDER BY ip_address;

-- Bad arguments.
SELECT try($$CALL ip_inventory_retention(interval '-1 day')$$) AS negative;
SELECT try($$CALL ip_inventory_retention(NULL)$$) AS null_interval;
SELECT try($$CALL ip_inventory_retention(interval '1 day', 'shred')$$) AS unknown_mode;
SELECT try($$CALL ip_inventory_retention(interval '1 day', prefix_v4 => 32)$$) AS full_prefix;
SELECT try($$CALL ip_inventory_retention(interval '1 day', prefix_v6 => 200)$$) AS bad_prefix;
SELECT try($$CALL ip_inventory_retention(interval '1 day', batch_size => 0)$$) AS zero_batch;
DROP ROLE privacy_reader;
REVOKE ALL ON FUNCTION ip_pseudonymize(inet) FROM privacy_admin;
DROP ROLE privacy_admin;
