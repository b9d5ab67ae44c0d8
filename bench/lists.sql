-- Network lists against the classic approaches (bench/lists.sh, docs/benchmarks.md "Network
-- lists"): a list of :nets networks (nested and disjoint, 80% IPv4, prefixes /8 to /32 and
-- /32 to /128), :rows probe addresses (half inside a listed network), and per approach the
-- best of two runs of: membership (how many probes are in the list) and longest-prefix match
-- (the label of the most specific network holding each probe).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ip4r;
DROP TABLE IF EXISTS bench_list, bench_list_ip4r, bench_probes;
SELECT setseed(0.18);
CREATE TABLE bench_list (network cidr NOT NULL, label text);
INSERT INTO bench_list
SELECT DISTINCT ON (net) net, 'label-' || (row_number() OVER ()) % 97
FROM (SELECT CASE WHEN random() < 0.8
                  THEN set_masklen(('0.0.0.0'::inet + (random() * 4294967295)::bigint), 12 + (random() * 20)::int)::cidr
                  ELSE set_masklen(('2001::'::inet + (random() * 9e18)::bigint + ((random() * 65535)::bigint << 0)), 32 + (random() * 96)::int)::cidr
             END AS net
      FROM generate_series(1, :nets)) AS g;
SELECT ip_list_register('bench', 'bench_list');
CREATE TABLE bench_list_ip4r AS SELECT network::iprange AS net, label FROM bench_list;
CREATE INDEX ON bench_list_ip4r USING gist (net);
CREATE INDEX bench_list_inet ON bench_list USING gist (network inet_ops);
CREATE TEMP TABLE numbered AS SELECT row_number() OVER () AS id, network FROM bench_list;
CREATE TABLE bench_probes AS
SELECT CASE WHEN g.inside THEN host(n.network)::inet + (random() * 255)::int
            ELSE '0.0.0.0'::inet + (random() * 4294967295)::bigint END AS ip
FROM (SELECT random() < 0.5 AS inside, 1 + (random() * ((SELECT count(*) FROM numbered) - 1))::bigint AS pick
      FROM generate_series(1, :rows)) AS g
JOIN numbered AS n ON n.id = g.pick;
-- ip4r's own type for its joins (not converted per row).
ALTER TABLE bench_probes ADD COLUMN ip_range iprange;
UPDATE bench_probes SET ip_range = ip::cidr::iprange;
VACUUM ANALYZE bench_list, bench_list_ip4r, bench_probes;

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

CREATE TEMP TABLE bench_results (approach text, query text, sql text);
INSERT INTO bench_results VALUES
 ('ip_list_contains', 'membership', $q$SELECT count(*) FROM bench_probes WHERE ip_list_contains(ip, 'bench')$q$),
 ('ip4r GiST join', 'membership', $q$SELECT count(*) FROM bench_probes p WHERE EXISTS (SELECT FROM bench_list_ip4r r WHERE r.net >>= p.ip_range)$q$),
 ('inet GiST join (inet_ops)', 'membership', $q$SELECT count(*) FROM bench_probes p WHERE EXISTS (SELECT FROM bench_list b WHERE b.network >>= p.ip)$q$),
 ('ip_list_match', 'longest prefix', $q$SELECT count(m.label) FROM bench_probes p, LATERAL ip_list_match(p.ip, 'bench') AS m$q$),
 ('ip4r GiST join', 'longest prefix', $q$SELECT count(m.label) FROM bench_probes p LEFT JOIN LATERAL (SELECT r.label FROM bench_list_ip4r r WHERE r.net >>= p.ip_range ORDER BY @ r.net LIMIT 1) AS m ON true$q$),
 ('inet GiST join (inet_ops)', 'longest prefix', $q$SELECT count(m.label) FROM bench_probes p LEFT JOIN LATERAL (SELECT b.label FROM bench_list b WHERE b.network >>= p.ip ORDER BY masklen(b.network) DESC LIMIT 1) AS m ON true$q$);

\pset footer off
SELECT (SELECT count(*) FROM bench_list) AS networks,
       (SELECT count(*) FROM bench_list WHERE family(network) = 4) AS ipv4_networks,
       (SELECT count(*) FROM bench_probes) AS probes;
SELECT r.query, r.approach, b.result AS answer, b.ms,
       round((SELECT count(*) FROM bench_probes) / nullif(b.ms, 0) * 1000) AS per_second
FROM bench_results AS r, LATERAL pg_temp.best_ms(r.sql) AS b
ORDER BY r.query DESC, b.ms;
-- The first call of a session builds the list (one read of the table):
\c
\timing on
SELECT ip_list_contains('1.1.1.1', 'bench') AS first_call_builds_the_list;
\timing off
SELECT _ip_inventory_list_stats('bench') AS list_memory;
