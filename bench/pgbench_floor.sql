-- The floor of bench/pgbench_enrich.sql: the same transaction (one random address computed
-- and returned) without the lookup, so the p99 of the protocol, the executor and the
-- scheduling of the two cores shows apart from enrich_ip's own time.
\set n random(16777216, 3758096383)
SELECT '0.0.0.0'::inet + :n AS ip;
