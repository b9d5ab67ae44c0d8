-- Tag rules (bench/tags.sh, docs/benchmarks.md "Tag rules"): an inventory of :rows addresses
-- with synthetic enrichment (countries, ASNs, GreyNoise answers for 30%, rDNS names for 50%),
-- a network list of 1000 networks, and ten rules over every condition kind. Times, best of
-- two where the run leaves nothing changed: evaluating the rules over every row, re-tagging
-- the whole inventory, enrich_pending of every row with no rule and with the ten rules, the
-- report views, and an event table's enriched view and tag report with 0 and 1 event rule;
-- last, the same reports and the tags of N events against the ip4r peer (see below).
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


-- The peer (issue 18): what an analyst does without materialized tags. The same rules, written
-- by hand in plain SQL and evaluated at query time over the events joined to the inventory,
-- the network-list condition as a join to an ip4r range table with a GiST index (as
-- bench/lists.sql sets up its ip4r peer). Both ways, best of two: the per-table tag report of
-- bench_tag_ev (its view, address tags read from the inventory, the event rule at query time)
-- and the inventory's ip_inventory_tag_report, then reading the tags of every event. The
-- peer's report rows must equal the extension's exactly (asserted: the run stops otherwise).
CREATE EXTENSION IF NOT EXISTS ip4r;
DROP TABLE IF EXISTS bench_tag_list_ip4r;
CREATE TABLE bench_tag_list_ip4r AS SELECT network::iprange AS net, label FROM bench_tag_list;
CREATE INDEX ON bench_tag_list_ip4r USING gist (net);
VACUUM ANALYZE bench_tag_list_ip4r;
-- Adding the event rule started a new rules generation: re-tag (as after any rule change) so
-- that the materialized tags are those of the rules in force, then check that they are.
CALL ip_inventory_retag(10000);
SELECT stale_rows = 0 AS tags_current FROM ip_inventory_tag_status \gset
\if :tags_current
\else
\echo 'peer: the materialized tags are stale; the comparison would not be honest'
SELECT 1/0;
\endif
-- The analyst's address rules, written once: (tag, confidence, hit) per rule over one inventory
-- row (NULL for an address not in it). A one-SELECT SQL function, so the planner inlines it into
-- each query below as if written there.
CREATE FUNCTION pg_temp.peer_address_rules(inv ip_inventory)
RETURNS TABLE (tag text, confidence numeric, hit boolean) LANGUAGE sql STABLE AS $fn$
SELECT * FROM (VALUES
    ('cn-telecom', 0.4, inv.geo_country IN ('CN') AND inv.asn_number IN (4134, 4837)),
    ('mass-scanner', 0.8, inv.enrichment -> 'greynoise' ->> 'classification' = 'malicious'
                          AND (inv.enrichment -> 'greynoise' ->> 'noise')::boolean),
    ('benign-scanner', 0.6, inv.enrichment -> 'greynoise' ->> 'classification' = 'benign'
                            AND NOT coalesce((inv.enrichment -> 'greynoise' ->> 'riot')::boolean, false)),
    ('riot', 0.7, (inv.enrichment -> 'greynoise' ->> 'riot')::boolean),
    ('cloud', 0.5, inv.enrichment -> 'rdns' ->> 'name' ~* '\.(amazonaws\.com|googleusercontent\.com)$'),
    ('cloud', 0.6, inv.asn_number IN (15169, 16509, 14061)),
    ('tor', 0.9, inv.is_tor_exit_node),
    ('anonymous', 0.5, inv.is_anonymous OR inv.is_hosting_provider),
    ('listed', 1, inv.ip_address IS NOT NULL
                  AND EXISTS (SELECT FROM bench_tag_list_ip4r AS l WHERE l.net >>= inv.ip_address::ipaddress::iprange)),
    ('eu-dynamic', 0.2, inv.geo_country IN ('DE', 'GB', 'NL', 'FR') AND inv.enrichment -> 'rdns' ->> 'name' ~* 'dynamic')
) AS r(tag, confidence, hit)
$fn$;
-- Over an event e: the address rules over its inventory row inv, and the event rule.
CREATE TEMP VIEW peer_ev_tags AS
SELECT e.src_ip AS ip, t.tag, t.confidence, t.by_address, t.by_event_rule
FROM bench_tag_ev AS e
LEFT JOIN ip_inventory AS inv ON inv.ip_address = e.src_ip
LEFT JOIN LATERAL (
    SELECT r.tag, max(r.confidence) AS confidence, bool_or(r.address_rule) AS by_address,
           bool_or(NOT r.address_rule) AS by_event_rule
    FROM (SELECT a.tag, a.confidence, true AS address_rule, a.hit FROM pg_temp.peer_address_rules(inv) AS a
          UNION ALL
          SELECT 'ssh-probe', 0.7, false, e.dst_port IN (22, 2222)) AS r
    WHERE r.hit GROUP BY r.tag) AS t ON true
WHERE e.src_ip IS NOT NULL;
CREATE TEMP VIEW peer_tag_report AS
SELECT 'src_ip'::text AS ip_column, d.tag, count(*) AS events, count(DISTINCT d.ip) AS addresses,
       round(avg(d.confidence), 3) AS avg_confidence,
       count(*) FILTER (WHERE d.by_address) AS address_tag_events,
       count(*) FILTER (WHERE d.by_event_rule) AS event_rule_events
FROM peer_ev_tags AS d GROUP BY d.tag;
-- The inventory report: the address rules over every inventory row (as ip_inventory_tag_report).
CREATE TEMP VIEW peer_inventory_tag_report AS
SELECT t.tag, a.attack_type, count(*) AS addresses, sum(inv.observation_count)::bigint AS events,
       round(avg(t.confidence), 3) AS avg_confidence,
       round(sum(t.confidence * inv.observation_count) / nullif(sum(inv.observation_count), 0), 3) AS avg_event_confidence
FROM ip_inventory AS inv
CROSS JOIN LATERAL (
    SELECT r.tag, max(r.confidence) AS confidence
    FROM pg_temp.peer_address_rules(inv) AS r
    WHERE r.hit GROUP BY r.tag) AS t
JOIN (VALUES ('cn-telecom', 'botnet'), ('mass-scanner', 'scanning'), ('benign-scanner', 'research'), ('riot', 'benign'),
             ('cloud', 'hosting'), ('tor', 'anonymization'), ('anonymous', 'anonymization'), ('listed', 'blocklist'),
             ('eu-dynamic', NULL)) AS a(tag, attack_type) ON a.tag = t.tag
GROUP BY t.tag, a.attack_type;

-- The peer's rules must be inlined (as if written out in each query), or the peer would pay a
-- function call per row that an analyst's own query would not.
CREATE FUNCTION pg_temp.assert_inlined(query text) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || query LOOP
        IF line LIKE '%peer_address_rules%' THEN
            RAISE EXCEPTION 'peer: the rules are not inlined in %: %', query, line;
        END IF;
    END LOOP;
END $fn$;
SELECT pg_temp.assert_inlined('SELECT count(*) FROM peer_tag_report'),
       pg_temp.assert_inlined('SELECT count(*) FROM peer_inventory_tag_report');

-- The answers first: every row of each report, both ways, or the run stops.
DO $$
DECLARE diff bigint; n bigint;
BEGIN
    SELECT count(*) INTO diff FROM ((TABLE bench_tag_ev_enriched_tag_report EXCEPT ALL TABLE peer_tag_report)
                                    UNION ALL (TABLE peer_tag_report EXCEPT ALL TABLE bench_tag_ev_enriched_tag_report)) AS x;
    SELECT count(*) INTO n FROM bench_tag_ev_enriched_tag_report;
    IF diff <> 0 OR n < 2 THEN
        RAISE EXCEPTION 'peer: the per-table tag report differs from bench_tag_ev_enriched_tag_report (% rows differ of %)', diff, n;
    END IF;
    SELECT count(*) INTO diff FROM ((TABLE ip_inventory_tag_report EXCEPT ALL TABLE peer_inventory_tag_report)
                                    UNION ALL (TABLE peer_inventory_tag_report EXCEPT ALL TABLE ip_inventory_tag_report)) AS x;
    SELECT count(*) INTO n FROM ip_inventory_tag_report;
    IF diff <> 0 OR n < 2 THEN
        RAISE EXCEPTION 'peer: the inventory tag report differs from ip_inventory_tag_report (% rows differ of %)', diff, n;
    END IF;
    RAISE NOTICE 'peer: both reports equal the extension''s';
END $$;
\echo 'peer: the per-table and inventory tag reports equal the extension''s, row for row'
SELECT * FROM peer_tag_report ORDER BY events DESC, tag;

SELECT 'per-table tag report: <view>_tag_report (1 event rule)' AS measure, b.ms, round(b.ms * 1000 / :events, 2) AS us_per_event
FROM pg_temp.best_ms('SELECT count(*) FROM bench_tag_ev_enriched_tag_report') AS b
UNION ALL
SELECT 'per-table tag report: peer (rules at query time, ip4r GiST)', b.ms, round(b.ms * 1000 / :events, 2)
FROM pg_temp.best_ms('SELECT count(*) FROM peer_tag_report') AS b
UNION ALL
SELECT 'inventory tag report: ip_inventory_tag_report', b.ms, NULL
FROM pg_temp.best_ms('SELECT count(*) FROM ip_inventory_tag_report') AS b
UNION ALL
SELECT 'inventory tag report: peer', b.ms, NULL
FROM pg_temp.best_ms('SELECT count(*) FROM peer_inventory_tag_report') AS b;

-- Reading the tags (with their confidences) of N events: the first N by time (an index on ts,
-- as a dashboard's time window), N = 1000 and every event. Extension: the materialized tags
-- by the join to the inventory, event rule at query time (the enriched view); peer: all rules
-- at query time. Each returns the sum of the tags' confidences, which must agree.
CREATE INDEX ON bench_tag_ev (ts);
ANALYZE bench_tag_ev;
SELECT ts AS ts_1000 FROM bench_tag_ev ORDER BY ts OFFSET 999 LIMIT 1 \gset
CREATE TEMP VIEW peer_ev_read AS
SELECT e.ts, p.tags, p.conf FROM bench_tag_ev AS e
LEFT JOIN ip_inventory AS inv ON inv.ip_address = e.src_ip
LEFT JOIN LATERAL (
    SELECT array_agg(r.tag ORDER BY r.tag) AS tags, sum(r.confidence) AS conf FROM (
        SELECT v.tag, max(v.confidence) AS confidence
        FROM (SELECT a.tag, a.confidence, a.hit FROM pg_temp.peer_address_rules(inv) AS a
              UNION ALL
              SELECT 'ssh-probe', 0.7, e.dst_port IN (22, 2222)) AS v
        WHERE v.hit GROUP BY v.tag) AS r) AS p ON true;
SELECT pg_temp.assert_inlined('SELECT count(conf) FROM peer_ev_read');
CREATE TEMP VIEW ext_ev_read AS
SELECT x.ts, (SELECT sum(greatest((x.src_tag_confidence ->> u.tag)::numeric, (x.src_event_tag_confidence ->> u.tag)::numeric))
              FROM (SELECT DISTINCT unnest(x.src_tags || x.src_event_tags)) AS u(tag)) AS conf
FROM bench_tag_ev_enriched AS x;
SELECT (SELECT sum(conf) FROM ext_ev_read WHERE ts <= :'ts_1000') AS e1, (SELECT sum(conf) FROM peer_ev_read WHERE ts <= :'ts_1000') AS p1,
       (SELECT sum(conf) FROM ext_ev_read) AS ea, (SELECT sum(conf) FROM peer_ev_read) AS pa \gset
SELECT :e1 = :p1 AND :ea = :pa AS reads_agree \gset
\if :reads_agree
\echo 'peer: the tags read per event agree (sum of confidences' :e1 'over 1000 events,' :ea 'over all)'
\else
\echo 'peer: the tags read per event differ:' :e1 :p1 :ea :pa
SELECT 1/0;
\endif
SELECT 'read tags of 1000 events: extension (materialized, enriched view)' AS measure, b.ms, round(b.ms * 1000 / 1000, 2) AS us_per_event
FROM pg_temp.best_ms(format('SELECT count(conf) FROM ext_ev_read WHERE ts <= %L', :'ts_1000')) AS b
UNION ALL
SELECT 'read tags of 1000 events: peer (rules at query time, ip4r GiST)', b.ms, round(b.ms * 1000 / 1000, 2)
FROM pg_temp.best_ms(format('SELECT count(conf) FROM peer_ev_read WHERE ts <= %L', :'ts_1000')) AS b
UNION ALL
SELECT format('read tags of every event (%s): extension', :events), b.ms, round(b.ms * 1000 / :events, 2)
FROM pg_temp.best_ms('SELECT count(conf) FROM ext_ev_read') AS b
UNION ALL
SELECT format('read tags of every event (%s): peer', :events), b.ms, round(b.ms * 1000 / :events, 2)
FROM pg_temp.best_ms('SELECT count(conf) FROM peer_ev_read') AS b;
