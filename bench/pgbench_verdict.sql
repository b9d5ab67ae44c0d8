-- One escalated honeypot session: the verdict on its source address. Two in three are in the
-- inventory (bench_verdict_ips, numbered 1..:known; half of them fresh from every source,
-- half stale: those are queued), one in three is a random IPv4 address from 1.0.0.0 to
-- 223.255.255.255 the inventory has not seen (answered from MaxMind, queued until the queue
-- is full). The primary-key lookup that picks the known address is part of the latency.
\set k random(1, :known * 3 / 2)
\set n random(16777216, 3758096383)
SELECT v.* FROM ip_verdict(coalesce((SELECT b.ip FROM bench_verdict_ips AS b WHERE b.i = :k), '0.0.0.0'::inet + :n)) AS v;
