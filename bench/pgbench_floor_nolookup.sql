-- A floor of bench/pgbench_enrich.sql: the same transaction and function scan, for private
-- addresses (10.0.0.0/8), which enrich_ip answers without a lookup: the p99 of the call and
-- its row alone.
\set n random(16777216, 3758096383)
SELECT e.* FROM enrich_ip('10.0.0.0'::inet + (:n::bigint % 16777216)) AS e;
