-- Concurrent inserters of the same new addresses: no unique violation, no deadlock, no lost
-- count. 8 pgbench clients, 150 transactions each, four events per transaction drawn from
-- small address pools, with inline MaxMind enrichment.
\ir helpers.psql
CREATE EXTENSION ip_inventory;
\ir use_test_databases.psql
CREATE TABLE raw_events (event_id bigserial PRIMARY KEY, event_ts timestamptz NOT NULL, src_ip inet, dst_ip inet);
SELECT ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'event_ts');

\! "$IPI_PGBIN/pgbench" -n -c 8 -j 2 -t 150 -f concurrent_inserts.pgbench 2>&1 | grep -E "^(number of transactions actually processed|number of failed transactions)|ERROR|deadlock|duplicate"

SELECT count(*) AS events FROM raw_events;
-- Every address's count, first and last seen equal what the events say.
SELECT count(*) AS addresses, sum(observation_count) AS observations FROM ip_inventory;
SELECT count(*) AS mismatching_addresses FROM (
    SELECT ip, count(*) AS n, min(event_ts) AS f, max(event_ts) AS l
    FROM (SELECT ip_canonical(src_ip) AS ip, event_ts FROM raw_events
          UNION ALL SELECT ip_canonical(dst_ip), event_ts FROM raw_events) AS x
    WHERE ip IS NOT NULL GROUP BY ip) AS truth
FULL JOIN ip_inventory AS inv ON inv.ip_address = truth.ip
WHERE truth.n IS DISTINCT FROM inv.observation_count OR truth.f IS DISTINCT FROM inv.first_seen_at
   OR truth.l IS DISTINCT FROM inv.last_seen_at;
-- Every public address was enriched exactly when it was first recorded.
SELECT ip_class, count(*) AS addresses, count(maxmind_ts) AS enriched, count(geo_country) AS with_country
FROM ip_inventory GROUP BY ip_class ORDER BY 1;
