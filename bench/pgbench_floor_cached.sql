-- A floor of bench/pgbench_enrich.sql: the same transaction and the same 22-column row, but
-- always for one public address (:ip, set by bench.py), so every answer comes from the
-- caches: the p99 any pre-decoded record store could give at best.
\set n random(16777216, 3758096383)
SELECT e.* FROM enrich_ip(:ip::inet + (:n::bigint % 1)) AS e;
