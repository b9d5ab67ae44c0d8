-- Tag rules (bench/tags.sh, docs/benchmarks.md "Tag rules"): an inventory of :rows addresses
-- with synthetic enrichment (countries, ASNs, GreyNoise answers for 30%, rDNS names for 50%),
-- a network list of 1000 networks, and ten rules over every condition kind. Times, best of
-- two where the run leaves nothing changed: evaluating the rules over every row, re-tagging
-- the whole inventory, enrich_pending of every row with no rule and with the ten rules, the
-- report views, and an event table's enriched view and tag report with 0 and 1 event rule.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_tag_list;
SELECT ip_inventory_detach(to_regclass('bench_tag_events')) WHERE to_regclass('bench_tag_events') IS NOT NULL;
SELECT ip_inventory_detach(to_regclass('bench_tag_ev')) WHERE to_regclass('bench_tag_ev') IS NOT NULL;
DROP TABLE IF EXISTS bench_tag_ev CASCADE;
TRUNCATE ip_inventory;
DELETE FROM ip_inventory_tag_rules;
DELETE FROM ip_inventory_jobs WHERE job IN ('retag', 'enrich_pending');
SELECT setseed(0.2);
INSERT INTO ip_inventory (ip_address, first_seen_at, last_seen_at, observation_count, ip_class,
                          geo_country, asn_number, asn_source, enrichment, is_anonymous, is_tor_exit_node, is_hosting_provider)
SELECT DISTINCT ON (ip) ip, now(), now(), 1 + (random() * 50)::int, 'public',
       (ARRAY['US', 'CN', 'RU', 'DE', 'GB', 'BR', 'IN', 'NL', 'FR', 'KR'])[1 + (random() * 9)::int],
       a, 'cymru',
       jsonb_strip_nulls(jsonb_build_object(
           'greynoise', CASE WHEN random() < 0.3 THEN jsonb_build_object(
               'noise', random() < 0.7, 'riot', random() < 0.1,
               'classification', (ARRAY['benign', 'malicious', 'unknown'])[1 + (random() * 2)::int]) END,
           'rdns', CASE WHEN random() < 0.5 THEN jsonb_build_object(
               'name', 'host-' || (random() * 1e6)::int || (ARRAY['.compute.amazonaws.com', '.example.net', '.dynamic.isp.example', '.googleusercontent.com'])[1 + (random() * 3)::int]) END)),
       random() < 0.1, random() < 0.01, random() < 0.05
FROM (SELECT '11.0.0.0'::inet + (random() * 3000000000)::bigint AS ip,
             (ARRAY[4134, 4837, 15169, 16509, 14061, 3320, 7018, 12389])[1 + (random() * 7)::int] AS a
      FROM generate_series(1, :rows)) AS g;
CREATE TABLE bench_tag_list (network cidr NOT NULL, label text);
INSERT INTO bench_tag_list SELECT DISTINCT set_masklen('11.0.0.0'::inet + (random() * 3000000000)::bigint, 16 + (random() * 8)::int)::cidr, 'l'
FROM generate_series(1, 1000);
SELECT ip_list_register('bench_tags', 'bench_tag_list');
VACUUM ANALYZE ip_inventory;
SELECT count(*) AS inventory_rows FROM ip_inventory;

-- Recording one new address per INSERT statement (the observe trigger's worst case for
-- tagging: one tag call per statement), and the tag call alone, with no rule.
DROP TABLE IF EXISTS bench_tag_events;
CREATE TABLE bench_tag_events (ts timestamptz NOT NULL, ip inet);
SELECT ip_inventory_attach('bench_tag_events', ARRAY['ip'], 'ts');
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
DO $$ BEGIN FOR i IN 1..5000 LOOP
    INSERT INTO bench_tag_events VALUES (now(), '200.0.0.0'::inet + i);
END LOOP; END $$;
SELECT 'single-row INSERT of a new address, 0 rules' AS measure,
       round((extract(epoch FROM clock_timestamp()) - :t0) * 1e6 / 5000, 1) AS us_per_insert \gset
\echo :measure :us_per_insert µs
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
DO $$ BEGIN FOR i IN 1..20000 LOOP
    PERFORM _ip_inventory_tag(ARRAY['200.0.0.1'::inet]);
END LOOP; END $$;
SELECT '_ip_inventory_tag call, 0 rules' AS measure,
       round((extract(epoch FROM clock_timestamp()) - :t0) * 1e6 / 20000, 1) AS us_per_call \gset
\echo :measure :us_per_call µs

-- Enrich_pending with no rule (every row pending: MaxMind never answered).
UPDATE ip_inventory SET maxmind_ts = NULL;
VACUUM ANALYZE ip_inventory;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
CALL ip_inventory_enrich_pending(10000);
SELECT 'enrich_pending, 0 rules' AS measure, round((extract(epoch FROM clock_timestamp()) - :t0) * 1000) AS ms \gset
\echo :measure :ms ms

-- A statement on a list table when no rule names the list (the list trigger's tag check).
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
DO $$ BEGIN FOR i IN 1..500 LOOP
    INSERT INTO bench_tag_list VALUES (set_masklen('250.0.0.0'::inet + i * 256, 24)::cidr, 'b');
END LOOP; END $$;
SELECT 'single-row INSERT into a list no rule names' AS measure,
       round((extract(epoch FROM clock_timestamp()) - :t0) * 1e6 / 500, 1) AS us_per_statement \gset
\echo :measure :us_per_statement µs
DELETE FROM bench_tag_list WHERE label = 'b';

INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition) VALUES
    ('cn-telecom', 'botnet', 0.4, '{"country": ["CN"], "asn": [4134, 4837]}'),
    ('mass-scanner', 'scanning', 0.8, '{"greynoise_classification": ["malicious"], "greynoise_noise": true}'),
    ('benign-scanner', 'research', 0.6, '{"greynoise_classification": ["benign"], "not": {"greynoise_riot": true}}'),
    ('riot', 'benign', 0.7, '{"greynoise_riot": true}'),
    ('cloud', 'hosting', 0.5, '{"rdns_regex": "\\.(amazonaws\\.com|googleusercontent\\.com)$"}'),
    ('cloud', 'hosting', 0.6, '{"asn": [15169, 16509, 14061]}'),
    ('tor', 'anonymization', 0.9, '{"is_tor_exit_node": true}'),
    ('anonymous', 'anonymization', 0.5, '{"any": [{"is_anonymous": true}, {"is_hosting_provider": true}]}'),
    ('listed', 'blocklist', 1, '{"in_list": ["bench_tags"]}'),
    ('eu-dynamic', NULL, 0.2, '{"country": ["DE", "GB", "NL", "FR"], "rdns_regex": "dynamic"}');

-- Statements on a list table a rule names ("listed"): the first of each transaction starts a
-- new rules generation. 500 in one transaction, then 100 each in its own (autocommit).
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
DO $$ BEGIN FOR i IN 1..500 LOOP
    INSERT INTO bench_tag_list VALUES (set_masklen('250.0.0.0'::inet + i * 256, 24)::cidr, 'b');
END LOOP; END $$;
SELECT 'single-row INSERT into a list a rule names, 500 in one transaction' AS measure,
       round((extract(epoch FROM clock_timestamp()) - :t0) * 1e6 / 500, 1) AS us_per_statement \gset
\echo :measure :us_per_statement µs
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT format('INSERT INTO bench_tag_list VALUES (%L, ''c'')', set_masklen('251.0.0.0'::inet + i * 256, 24)::cidr)
FROM generate_series(1, 100) AS i \gexec
SELECT 'single-row INSERT into a list a rule names, each its own transaction (new generation)' AS measure,
       round((extract(epoch FROM clock_timestamp()) - :t0) * 1e6 / 100, 1) AS us_per_statement \gset
\echo :measure :us_per_statement µs
DELETE FROM bench_tag_list WHERE label IN ('b', 'c');

-- The rules over every row, nothing written.
CREATE OR REPLACE FUNCTION pg_temp.best_ms(q text, OUT ms numeric, OUT result bigint) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; d numeric;
BEGIN
    ms := NULL;
    FOR i IN 1..2 LOOP
        t0 := clock_timestamp();
        EXECUTE q INTO result;
        d := extract(epoch FROM clock_timestamp() - t0) * 1000;
        ms := least(coalesce(ms, d), d);
    END LOOP;
    ms := round(ms);
END $$;
SELECT 'evaluate 10 rules over every row' AS measure, b.ms, b.result AS tagged_rows
FROM pg_temp.best_ms(format('SELECT count(*) FROM ip_inventory AS inv, LATERAL %s AS x WHERE cardinality(x.tags) > 0',
                            (SELECT compiled FROM ip_inventory_tag_state))) AS b;

SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
CALL ip_inventory_retag(10000);
SELECT 'retag every row, 10 rules' AS measure, round((extract(epoch FROM clock_timestamp()) - :t0) * 1000) AS ms \gset
\echo :measure :ms ms

UPDATE ip_inventory SET maxmind_ts = NULL;
VACUUM ANALYZE ip_inventory;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
CALL ip_inventory_enrich_pending(10000);
SELECT 'enrich_pending, 10 rules' AS measure, round((extract(epoch FROM clock_timestamp()) - :t0) * 1000) AS ms \gset
\echo :measure :ms ms

SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
DO $$ BEGIN FOR i IN 1..5000 LOOP
    INSERT INTO bench_tag_events VALUES (now(), '201.0.0.0'::inet + i);
END LOOP; END $$;
SELECT 'single-row INSERT of a new address, 10 rules' AS measure,
       round((extract(epoch FROM clock_timestamp()) - :t0) * 1e6 / 5000, 1) AS us_per_insert \gset
\echo :measure :us_per_insert µs

SELECT 'ip_inventory_tag_report' AS measure, b.ms, b.result AS tags
FROM pg_temp.best_ms('SELECT count(*) FROM ip_inventory_tag_report') AS b;
SELECT 'ip_inventory_attack_type_report' AS measure, b.ms, b.result AS attack_types
FROM pg_temp.best_ms('SELECT count(*) FROM ip_inventory_attack_type_report') AS b;
SELECT * FROM ip_inventory_tag_report ORDER BY events DESC;

-- Event rules: an event table of one event per inventory address (ports at random), its
-- enriched view read in full the way a dashboard reads it (a country and the event tags of
-- every event), and its tag report, without and with one event rule (dst_port IN (22, 2222)).
-- The events are loaded before attaching: the observe trigger is not what is measured.
CREATE TABLE bench_tag_ev (ts timestamptz NOT NULL, src_ip inet, dst_port int);
INSERT INTO bench_tag_ev
SELECT now() - random() * interval '30 days', inv.ip_address, (ARRAY[22, 80, 443, 2222, 3389, 23])[1 + (random() * 5)::int]
FROM ip_inventory AS inv;
VACUUM ANALYZE bench_tag_ev;
SELECT ip_inventory_attach('bench_tag_ev', ARRAY['src_ip'], 'ts');
SELECT ip_inventory_enriched_view('bench_tag_ev');
SELECT count(*) AS events FROM bench_tag_ev \gset
SELECT 'enriched view, 0 event rules' AS measure, b.ms, round(b.ms * 1000 / :events, 2) AS us_per_event
FROM pg_temp.best_ms('SELECT count(*) FILTER (WHERE src_country = ''US'') + sum(cardinality(src_event_tags)) FROM bench_tag_ev_enriched') AS b;
SELECT 'tag report, 0 event rules' AS measure, b.ms, round(b.ms * 1000 / :events, 2) AS us_per_event
FROM pg_temp.best_ms('SELECT count(*) FROM bench_tag_ev_enriched_tag_report') AS b;
INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition, event_table) VALUES
    ('ssh-probe', 'scanning', 0.7, '{"event": {"column": "dst_port", "in": [22, 2222]}}', 'bench_tag_ev');
SELECT 'enriched view, 1 event rule' AS measure, b.ms, round(b.ms * 1000 / :events, 2) AS us_per_event, b.result
FROM pg_temp.best_ms('SELECT count(*) FILTER (WHERE src_country = ''US'') + sum(cardinality(src_event_tags)) FROM bench_tag_ev_enriched') AS b;
SELECT 'tag report, 1 event rule' AS measure, b.ms, round(b.ms * 1000 / :events, 2) AS us_per_event
FROM pg_temp.best_ms('SELECT count(*) FROM bench_tag_ev_enriched_tag_report') AS b;
SELECT * FROM bench_tag_ev_enriched_tag_report ORDER BY events DESC LIMIT 5;

