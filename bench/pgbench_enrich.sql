-- One honeypot session: enrich the source address, a random IPv4 address from 1.0.0.0 to
-- 223.255.255.255 (mostly public; the special-purpose ones answer without a lookup).
\set n random(16777216, 3758096383)
SELECT e.* FROM enrich_ip('0.0.0.0'::inet + :n) AS e;
