#!/usr/bin/env bash
# make citus-check: ip_inventory's workflows on a real Citus cluster (a coordinator and two
# workers on loopback ports, docs/scaling.md), end to end, with assertions. Runs only when
# Citus is installed in the PostgreSQL that PG_CONFIG names; otherwise says it was skipped and
# exits 0 (CI does not install Citus). Citus is never built or installed by this project.
#
# Environment: PG_BIN / PG_CONFIG (the PostgreSQL 15 with Citus), IPI_SKIP_INSTALL=1 (use the
# installed extension), IPI_KEEP=1 (keep the run directory).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/cluster.sh
. "$ROOT/scripts/cluster.sh"
# shellcheck source=citus_cluster.sh
. "$ROOT/pg_tests/citus_cluster.sh"
IPI_LOG_TAG=citus-check

if ! citus_installed; then
    echo "citus-check: skipped (Citus is not installed in $("$PG_CONFIG" --sharedir)/extension)"
    exit 0
fi

[ -n "${IPI_SKIP_INSTALL:-}" ] || ipi_install "$ROOT"

RUN_DIR=$(mktemp -d /tmp/ipi_citus.XXXXXX)
chmod 755 "$RUN_DIR"
passed=0
ok=no
finish() {
    citus_cluster_stop
    [ -z "${IPI_FAKE_PID:-}" ] || kill "$IPI_FAKE_PID" 2>/dev/null || true
    if [ "$ok" = yes ] && [ -z "${IPI_KEEP:-}" ]; then
        rm -rf "$RUN_DIR"
    else
        ipi_log "kept $RUN_DIR (server logs: $RUN_DIR/cluster/*/server.log)"
    fi
}
trap finish EXIT

FIX=$RUN_DIR/fixtures
ipi_copy_fixtures "$ROOT" "$FIX" >/dev/null
TESTDATA=$FIX/maxmind/test-data
ipi_fake_sources_start "$ROOT" "$RUN_DIR/fake"

# Each node maps its own copy of the MaxMind files (same content, a directory per node), so
# that one node can be given another build.
for node in coordinator worker1 worker2; do
    mkdir -p "$RUN_DIR/maxmind/$node"
    cp "$TESTDATA/GeoIP2-City-Test.mmdb" "$RUN_DIR/maxmind/$node/City.mmdb"
    cp "$TESTDATA/GeoLite2-ASN-Test.mmdb" "$RUN_DIR/maxmind/$node/ASN.mmdb"
done
chmod -R a+rX "$RUN_DIR/maxmind"

citus_cluster_start "$RUN_DIR/cluster" \
    "ip_inventory.cymru_whois_server = '$IPI_FAKE_WHOIS'" \
    "ip_inventory.dns_server = '$IPI_FAKE_DNS'" \
    "ip_inventory.greynoise_url = '$IPI_FAKE_HTTP'" \
    "ip_inventory.greynoise_api_key = 'env:IPI_FAKE_KEY'" \
    "ip_inventory.greynoise_daily_quota = 5" \
    "ip_inventory.cymru_timeout = '2s'" \
    "ip_inventory.greynoise_timeout = '2s'" \
    "ip_inventory.dns_timeout = '1s'"
declare -A PORT=([coordinator]=$CITUS_COORD [worker1]=$CITUS_W1 [worker2]=$CITUS_W2)
for node in coordinator worker1 worker2; do
    ipi_psql -p "${PORT[$node]}" \
        -c "ALTER SYSTEM SET ip_inventory.city_db = '$RUN_DIR/maxmind/$node/City.mmdb'" \
        -c "ALTER SYSTEM SET ip_inventory.asn_db = '$RUN_DIR/maxmind/$node/ASN.mmdb'" \
        -c "SELECT pg_reload_conf()" >/dev/null
done
ipi_log "cluster: coordinator :$CITUS_COORD, workers :$CITUS_W1 :$CITUS_W2 ($("$PG_BIN/psql" -XAtq -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'") Citus)"

# sql FILE-OR-HEREDOC: runs SQL on the coordinator; each "expect" row prints "ok ..." or
# stops the check.
sql() { PGOPTIONS='-c client_min_messages=warning' ipi_psql -p "$CITUS_COORD" -At -v fixtures="$FIX" -v run_dir="$RUN_DIR" "$@"; }
expect_ok() {
    local out
    out=$(sql "$@") || { echo "$out"; ipi_log "FAILED"; exit 1; }
    printf '%s\n' "$out"
    passed=$((passed + $(printf '%s\n' "$out" | grep -c '^ok ' || true)))
}

sql -q <<'SQL'
CREATE EXTENSION ip_inventory;
-- An assertion: prints "ok LABEL: DETAIL" or raises.
CREATE FUNCTION expect(label text, ok boolean, detail text DEFAULT '') RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'FAILED %: %', label, detail;
    END IF;
    RETURN 'ok ' || label || CASE WHEN detail <> '' THEN ': ' || detail ELSE '' END;
END $$;
-- Compares the inventory with the events: every address counted once per appearance.
CREATE FUNCTION counts_mismatch(tables text[]) RETURNS TABLE (mismatches bigint, addresses bigint, observations bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    DROP TABLE IF EXISTS pg_temp.want, pg_temp.have;
    CREATE TEMP TABLE want (ip inet, n bigint);
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('INSERT INTO want SELECT src_ip, count(*) FROM %s GROUP BY 1', t);
        EXECUTE format('INSERT INTO want SELECT dst_ip, count(*) FROM %s WHERE dst_ip IS NOT NULL GROUP BY 1', t);
    END LOOP;
    CREATE TEMP TABLE have AS SELECT ip_address AS ip, observation_count AS n FROM ip_inventory;
    RETURN QUERY
    SELECT count(*) FILTER (WHERE w.n IS DISTINCT FROM h.n), count(*), coalesce(sum(h.n), 0)::bigint
    FROM (SELECT ip, sum(n)::bigint AS n FROM want GROUP BY ip) AS w FULL JOIN have AS h ON h.ip = w.ip;
END $$;
SQL

echo "== layout"
expect_ok <<'SQL'
CREATE TABLE raw_events (id bigint NOT NULL, src_ip inet NOT NULL, dst_ip inet, ts timestamptz NOT NULL,
                         PRIMARY KEY (src_ip, id));
SELECT expect('ip_inventory_distribute', (d ->> 'colocated')::boolean AND (d ->> 'nodes')::int = 2, d::text)
FROM ip_inventory_distribute('raw_events', 'src_ip') AS d;
SELECT expect('inventory, queue and events colocated', count(DISTINCT colocationid) = 1,
              string_agg(logicalrelid::text || ' ' || partmethod::text, ', ' ORDER BY logicalrelid::text))
FROM pg_dist_partition WHERE logicalrelid IN ('ip_inventory'::regclass, 'ip_inventory_citus_queue'::regclass, 'raw_events'::regclass);
SELECT expect('observed list is a reference table', partmethod = 'n', logicalrelid::text)
FROM pg_dist_partition WHERE logicalrelid = 'ip_inventory_citus_observed'::regclass;
SQL

echo "== attach and inserts (exactly once)"
expect_ok <<'SQL'
SELECT 'attach: ' || ip_inventory_attach('raw_events', ARRAY['src_ip', 'dst_ip'], 'ts')::text;
SELECT expect('trigger on every shard', count(*) FILTER (WHERE result = 'ip_inventory_observe_' || shardid) = count(*),
              count(*) FILTER (WHERE result = 'ip_inventory_observe_' || shardid) || ' of ' || count(*) || ' shards')
FROM run_command_on_shards('raw_events', $$SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = '%s'::regclass$$);
-- An INSERT ... SELECT (Citus: COPY to the shards), a multi-row VALUES, a replay that
-- conflicts, and a rolled-back insert.
INSERT INTO raw_events
SELECT i, ('81.2.69.' || (i % 200))::inet, CASE WHEN i % 3 = 0 THEN ('175.16.199.' || (i % 40))::inet END,
       now() - (i % 5) * interval '1 hour'
FROM generate_series(1, 3000) AS i;
INSERT INTO raw_events VALUES (100001, '89.160.20.112', '81.2.69.142', now()), (100002, '216.160.83.56', NULL, now()),
                              (100003, '2001:218::1', '89.160.20.112', now());
INSERT INTO raw_events SELECT i, ('81.2.69.' || (i % 200))::inet, NULL, now() FROM generate_series(1, 500) AS i
ON CONFLICT DO NOTHING;
BEGIN;
INSERT INTO raw_events VALUES (100004, '1.2.3.4', '5.6.7.8', now());
ROLLBACK;
SELECT expect('queued for other nodes before the flush', count(*) > 0, count(*) || ' queue rows') FROM ip_inventory_citus_queue;
SELECT expect('flush', (f ->> 'queued_rows')::int > 0, f::text) FROM ip_inventory_citus_flush() AS f;
SELECT expect('queue empty after the flush', count(*) = 0) FROM ip_inventory_citus_queue;
SELECT expect('every appearance counted once', m.mismatches = 0,
              format('%s addresses, %s observations, %s mismatches', m.addresses, m.observations, m.mismatches))
FROM counts_mismatch(ARRAY['raw_events']) AS m;
SELECT expect('rolled-back insert not recorded', NOT EXISTS (SELECT 1 FROM ip_inventory WHERE ip_address IN ('1.2.3.4', '5.6.7.8')));
SELECT expect('new public addresses enriched inline, on the workers and by the flush', count(*) FILTER (WHERE maxmind_ts IS NULL) = 0,
              format('%s public rows, %s with a country', count(*), count(geo_country)))
FROM ip_inventory WHERE ip_class = 'public';
SQL

echo "== rows added before any event take first and last seen from their first events"
# cascade_refresh_now adds rows with no observation (first and last seen: when they were
# added). Their first events, later, set both, on the shards (source addresses, written by the
# workers' triggers into the colocated inventory shard) and by the flush (destination
# addresses, queued for the shards that own them), not LEAST(when added, event time).
expect_ok <<'SQL'
SELECT expect('cascade_refresh_now adds 20 rows', (r ->> 'added')::int = 20, r::text)
FROM cascade_refresh_now('rdns', (SELECT array_agg(('81.2.69.' || i)::inet) FROM generate_series(201, 220) AS i)) AS r;
SELECT expect('added with no observation', count(*) = 20 AND bool_and(observation_count = 0), count(*) || ' rows')
FROM ip_inventory WHERE ip_address BETWEEN '81.2.69.201' AND '81.2.69.220';
INSERT INTO raw_events
SELECT 200000 + i, ('81.2.69.' || (200 + i))::inet, ('81.2.69.' || (210 + i))::inet, timestamptz '2031-01-01 00:00+00'
FROM generate_series(1, 10) AS i;
SELECT expect('flush of the destination addresses', f IS NOT NULL, f::text) FROM ip_inventory_citus_flush() AS f;
SELECT expect('their first events set first and last seen',
              count(*) FILTER (WHERE first_seen_at = '2031-01-01 00:00+00' AND last_seen_at = '2031-01-01 00:00+00'
                                 AND observation_count = 1) = 20,
              coalesce(string_agg(format('%s %s..%s x%s', ip_address, first_seen_at, last_seen_at, observation_count), '; '
                                  ORDER BY ip_address) FILTER (WHERE first_seen_at <> '2031-01-01 00:00+00'), ''))
FROM ip_inventory WHERE ip_address BETWEEN '81.2.69.201' AND '81.2.69.220';
SQL

echo "== backfill (per shard on the workers), a worker down and back"
expect_ok <<'SQL'
CREATE TABLE old_events (id bigint NOT NULL, src_ip inet NOT NULL, dst_ip inet, ts timestamptz NOT NULL);
SELECT ip_inventory_distribute('old_events', 'src_ip') IS NOT NULL;
INSERT INTO old_events
SELECT i, ('89.160.20.' || (i % 250))::inet, CASE WHEN i % 4 = 0 THEN ('216.160.83.' || (i % 60))::inet END,
       timestamptz '2020-01-01' + i * interval '1 minute'
FROM generate_series(1, 20000) AS i;
SQL
# worker2 is down: worker1 backfills its shards, worker2's are left for the rerun.
ipi_as_owner "$PG_BIN/pg_ctl" -D "$CITUS_DIR/worker2/data" -m immediate -w stop >/dev/null
expect_ok <<'SQL'
SELECT expect('backfill with a worker down is incomplete', b ->> 'status' = 'incomplete' AND (b ->> 'failed_nodes')::int = 1,
              format('%s rows on the reachable nodes', b ->> 'event_rows'))
FROM ip_inventory_citus_backfill('old_events', ARRAY['src_ip', 'dst_ip'], 'ts', 1000) AS b;
SQL
ipi_as_owner env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$CITUS_DIR/worker2/data" -l "$CITUS_DIR/worker2/server.log" -w -t 60 start >/dev/null
expect_ok <<'SQL'
SELECT expect('rerun finishes what is left', b ->> 'status' = 'finished', format('%s rows this run, %s shards', b ->> 'this_run_rows', b ->> 'shards'))
FROM ip_inventory_citus_backfill('old_events', ARRAY['src_ip', 'dst_ip'], 'ts', 1000) AS b;
SELECT expect('a third run counts nothing', (b ->> 'this_run_rows')::int = 0, b ->> 'this_run_rows')
FROM ip_inventory_citus_backfill('old_events', ARRAY['src_ip', 'dst_ip'], 'ts', 1000) AS b;
SELECT expect('events and backfill counted once', m.mismatches = 0,
              format('%s addresses, %s observations, %s mismatches', m.addresses, m.observations, m.mismatches))
FROM counts_mismatch(ARRAY['raw_events', 'old_events']) AS m;
SQL

echo "== a coordinator crash in the middle of a backfill"
expect_ok <<'SQL'
CREATE TABLE crash_events (id bigint NOT NULL, src_ip inet NOT NULL, dst_ip inet, ts timestamptz NOT NULL);
SELECT ip_inventory_distribute('crash_events', 'src_ip') IS NOT NULL;
INSERT INTO crash_events
SELECT i, ('81.2.69.' || (i % 240))::inet, CASE WHEN i % 5 = 0 THEN ('89.160.20.' || (i % 90))::inet END,
       timestamptz '2021-01-01' + i * interval '1 minute'
FROM generate_series(1, 60000) AS i;
SQL
# Small batches, so the kill lands between committed batches on the workers.
committed_on_workers() {
    sql -c "SELECT coalesce(sum(r.result::bigint), 0) FROM run_command_on_workers(\$\$SELECT coalesce(sum(done_rows), 0)
            FROM ip_inventory_jobs WHERE job LIKE 'backfill:public.crash_events%'\$\$) AS r WHERE r.success"
}
sql -c "SELECT ip_inventory_citus_backfill('crash_events', ARRAY['src_ip', 'dst_ip'], 'ts', 100)" >"$RUN_DIR/crash_backfill.out" 2>&1 &
backfill_job=$!
before_kill=0
for _ in $(seq 1 600); do
    before_kill=$(committed_on_workers)
    [ "$before_kill" -gt 0 ] && break
    sleep 0.1
done
killed_pid=$(sql -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT ip_inventory_citus_backfill(''crash_events''%' LIMIT 1")
[ -n "$killed_pid" ] && kill -9 "$killed_pid"
wait "$backfill_job" || true
# The coordinator recovers from the crash; the node procedures on the workers run on until they
# next talk to their client (the dead coordinator connection): wait for both.
for _ in $(seq 1 150); do sql -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 1 300); do
    running=$(sql -c "SELECT coalesce(sum(r.result::int), 0) FROM run_command_on_workers(\$\$SELECT count(*) FROM pg_stat_activity
                      WHERE query LIKE '%_ip_inventory_citus_backfill_node(%crash_events%' AND pid <> pg_backend_pid()\$\$) AS r WHERE r.success")
    [ "$running" = 0 ] && break
    sleep 0.2
done
expect_ok <<SQL
SELECT expect('coordinator backend killed (kill -9) during the backfill', '$killed_pid' <> '' AND $before_kill > 0,
              'pid $killed_pid, $before_kill event rows committed on the workers before the kill');
SQL
expect_ok <<'SQL'
SELECT expect('rerun after the coordinator crash finishes', b ->> 'status' = 'finished',
              format('%s rows this run, %s in all', b ->> 'this_run_rows', b ->> 'event_rows'))
FROM ip_inventory_citus_backfill('crash_events', ARRAY['src_ip', 'dst_ip'], 'ts', 100) AS b;
SELECT expect('queue empty after the rerun', count(*) = 0, count(*) || ' queue rows') FROM ip_inventory_citus_queue;
SELECT expect('coordinator crash: every event counted once', m.mismatches = 0,
              format('%s addresses, %s observations, %s mismatches', m.addresses, m.observations, m.mismatches))
FROM counts_mismatch(ARRAY['raw_events', 'old_events', 'crash_events']) AS m;
SQL

echo "== concurrent inserts from many sessions, flushes among them"
cat >"$RUN_DIR/insert.sql" <<'SQL'
\set id random(1, 100000000)
INSERT INTO raw_events
SELECT 1000000 + :id * 20 + g, ('81.2.69.' || ((:id + g) % 250))::inet, ('175.16.199.' || ((:id * g) % 60))::inet, now()
FROM generate_series(1, 20) AS g ON CONFLICT DO NOTHING;
SQL
echo "SELECT ip_inventory_citus_flush();" >"$RUN_DIR/flush.sql"
chmod a+r "$RUN_DIR/insert.sql" "$RUN_DIR/flush.sql"
# Two inserts whose events share addresses on both workers can lock inventory rows in opposite
# orders on the two nodes: Citus then cancels one with a distributed deadlock (40P01), which
# rolls it back whole (nothing recorded), and the client retries it, as for any deadlock
# (docs/scaling.md). pgbench retries up to 10 times; every transaction must end committed.
"$PG_BIN/pgbench" -n -c 6 -j 2 -t 60 --max-tries=10 -f "$RUN_DIR/insert.sql@9" -f "$RUN_DIR/flush.sql@1" >"$RUN_DIR/pgbench.out" 2>&1 || true
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$RUN_DIR/pgbench.out")
failed_tx=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$RUN_DIR/pgbench.out")
retried_tx=$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' "$RUN_DIR/pgbench.out")
expect_ok <<SQL
SELECT expect('6 sessions inserting and flushing at once: every transaction committed (distributed deadlocks retried)',
              '${processed:-0}' = '360' AND '${failed_tx:-x}' = '0',
              '${processed:-0} transactions, ${failed_tx:-?} failed, ${retried_tx:-0} retried after a deadlock');
SQL
expect_ok <<'SQL'
SELECT expect('flush after the concurrent inserts', f IS NOT NULL, f::text) FROM ip_inventory_citus_flush() AS f;
SELECT expect('concurrent inserts: every appearance counted once', m.mismatches = 0,
              format('%s addresses, %s observations, %s mismatches', m.addresses, m.observations, m.mismatches))
FROM counts_mismatch(ARRAY['raw_events', 'old_events', 'crash_events']) AS m;
SQL

echo "== shard moves and splits (the rebalancer's operations)"
# A move copies a shard group (events, inventory, queue) to the other worker; a split cuts one
# in two. Either way the new placements must carry the observe trigger (Citus creates them
# from the distributed table's definition), and the queue rows keep their place.
expect_ok <<'SQL'
CREATE TEMP TABLE moved AS
SELECT s.shardid, s.shardminvalue::int AS lo, s.shardmaxvalue::int AS hi, p.nodename AS from_name, p.nodeport AS from_port,
       n.nodename AS to_name, n.nodeport AS to_port
FROM pg_dist_shard AS s JOIN pg_dist_shard_placement AS p USING (shardid)
JOIN pg_dist_node AS n ON n.noderole = 'primary' AND n.groupid > 0 AND n.nodeport <> p.nodeport
WHERE s.logicalrelid = 'raw_events'::regclass ORDER BY s.shardid LIMIT 1;
-- Observations queued for other shards wait in the queue while its shards move.
INSERT INTO raw_events SELECT 5000000 + i, ('81.2.69.' || (i % 250))::inet, ('175.16.199.' || (i % 60))::inet, now()
FROM generate_series(1, 400) AS i;
SELECT expect('queue rows waiting before the move', count(*) > 0, count(*) || ' rows') FROM ip_inventory_citus_queue;
SELECT expect('citus_move_shard_placement', true, format('shard %s of raw_events and its colocated shards, :%s to :%s', shardid, from_port, to_port))
FROM moved, LATERAL citus_move_shard_placement(shardid, from_name, from_port, to_name, to_port,
                                               shard_transfer_mode => 'block_writes') AS m;
SELECT expect('the moved shards are on the other worker', p.nodeport = m.to_port, p.nodeport::text)
FROM moved AS m JOIN pg_dist_shard_placement AS p USING (shardid);
-- Split the moved shard in two at the middle of its hash range, one half per worker.
SELECT expect('citus_split_shard_by_split_points', true, format('shard %s split at %s', shardid, (lo / 2 + hi / 2)))
FROM moved, LATERAL citus_split_shard_by_split_points(shardid, ARRAY[((lo / 2 + hi / 2))::text],
    ARRAY(SELECT nodeid FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0 ORDER BY nodeport),
    shard_transfer_mode => 'block_writes') AS s;
SELECT expect('trigger on every shard after the move and the split',
              count(*) FILTER (WHERE result = 'ip_inventory_observe_' || shardid) = count(*),
              count(*) FILTER (WHERE result = 'ip_inventory_observe_' || shardid) || ' of ' || count(*) || ' shards')
FROM run_command_on_shards('raw_events', $$SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = '%s'::regclass$$);
-- Events in every range, the moved and split ones included, from one session and a flush.
INSERT INTO raw_events SELECT 6000000 + i, ('81.2.69.' || (i % 250))::inet, ('175.16.199.' || (i % 60))::inet, now()
FROM generate_series(1, 2000) AS i;
INSERT INTO raw_events SELECT 7000000 + i, ('10.9.' || (i / 250) || '.' || (i % 250))::inet, NULL, now()
FROM generate_series(1, 3000) AS i;
SELECT expect('flush after the move and the split', f IS NOT NULL, f::text) FROM ip_inventory_citus_flush() AS f;
SELECT expect('after the move and the split: every appearance counted once', m.mismatches = 0,
              format('%s addresses, %s observations, %s mismatches', m.addresses, m.observations, m.mismatches))
FROM counts_mismatch(ARRAY['raw_events', 'old_events', 'crash_events']) AS m;
SQL

echo "== MaxMind update rolled out, nodes disagreeing, enrich_pending per node"
"$ROOT/pg_tests/sql/set_build_epoch.py" "$TESTDATA/GeoIP2-City-Test.mmdb" "$RUN_DIR/City.new" 1770850169
chmod a+r "$RUN_DIR/City.new"
# First worker1 alone: the nodes disagree.
cp "$RUN_DIR/City.new" "$RUN_DIR/maxmind/worker1/City.mmdb.tmp" && mv "$RUN_DIR/maxmind/worker1/City.mmdb.tmp" "$RUN_DIR/maxmind/worker1/City.mmdb"
ipi_psql -p "$CITUS_W1" -Atc "SELECT ip_inventory.maxmind_reload() IS NOT NULL" >/dev/null 2>&1 \
    || ipi_psql -p "$CITUS_W1" -Atc "SELECT maxmind_reload() IS NOT NULL" >/dev/null
expect_ok <<'SQL'
SELECT expect('health says the nodes disagree', status = 'warning', detail) FROM ip_inventory_health() WHERE "check" = 'citus_nodes';
SQL
for node in coordinator worker2; do
    cp "$RUN_DIR/City.new" "$RUN_DIR/maxmind/$node/City.mmdb.tmp" && mv "$RUN_DIR/maxmind/$node/City.mmdb.tmp" "$RUN_DIR/maxmind/$node/City.mmdb"
done
expect_ok <<'SQL'
SELECT expect('reload on every node', bool_and(reloaded) AND count(DISTINCT city_build) = 1 AND count(*) = 3,
              string_agg(node || ' ' || city_build, ', ')) FROM ip_inventory_citus_reload();
SELECT expect('health: nodes agree again', status = 'ok', detail) FROM ip_inventory_health() WHERE "check" = 'citus_nodes';
SELECT expect('rows pending after the update', count(*) > 0, count(*) || ' rows')
FROM ip_inventory, _ip_inventory_builds() AS b WHERE ip_class = 'public' AND maxmind_build IS DISTINCT FROM b.city_build;
SELECT expect('enrich_pending on every node', e ->> 'status' = 'finished', format('%s rows enriched in %s batches', e ->> 'enriched', e ->> 'batches'))
FROM ip_inventory_citus_enrich_pending(500) AS e;
SELECT expect('nothing pending', count(*) = 0, count(*) || ' rows')
FROM ip_inventory, _ip_inventory_builds() AS b
WHERE ip_class = 'public' AND _ip_inventory_maxmind_pending(maxmind_ts, maxmind_build, maxmind_asn_build, b.city_build, b.asn_build);
SELECT expect('cascade_refresh(maxmind) has nothing left', (r ->> 'selected')::int = 0, r::text) FROM cascade_refresh('maxmind', 100) AS r;
SQL

echo "== cascade against the loopback sources, GreyNoise quota once for the cluster"
expect_ok <<SQL
SELECT expect('cascade_refresh(all)', r -> 'sources' -> 'cymru' ->> 'error' IS NULL AND r -> 'sources' -> 'greynoise' ->> 'error' IS NULL
              AND r -> 'sources' -> 'rdns' ->> 'error' IS NULL, r::text)
FROM cascade_refresh('all', 20) AS r;
SELECT expect('cascade_refresh(greynoise) again: quota spent', (r ->> 'quota_remaining')::int = 0, r::text)
FROM cascade_refresh('greynoise', 20) AS r;
SELECT expect('quota counted on the coordinator', used = 5, used || ' of ' || daily_quota) FROM greynoise_quota();
SELECT expect('rows answered by every source', count(*) FILTER (WHERE rdns_ts IS NOT NULL) > 0
              AND count(*) FILTER (WHERE greynoise_ts IS NOT NULL) = 5,
              format('rdns %s, greynoise %s, cymru %s', count(*) FILTER (WHERE rdns_ts IS NOT NULL),
                     count(*) FILTER (WHERE greynoise_ts IS NOT NULL), count(*) FILTER (WHERE cymru_ts IS NOT NULL)))
FROM ip_inventory;
SQL
greynoise_calls=$(grep -c . "$RUN_DIR/fake/greynoise.log" || true)
worker_refusal=$(ipi_psql -p "$CITUS_W1" -Atc "SELECT cascade_refresh('greynoise', 5)" 2>&1 || true)
expect_ok <<SQL
SELECT expect('GreyNoise asked 5 times in all (the quota, not per node)', $greynoise_calls = 5, '$greynoise_calls requests in the fake log');
SELECT expect('cascade_refresh refused on a worker', position('coordinator only' IN \$w\$$worker_refusal\$w\$) > 0, \$w\$$worker_refusal\$w\$);
SQL

echo "== tag rules on the distributed inventory (tagged on the coordinator, compared with a single node)"
# A single-node database on the coordinator's server (no Citus in it) gets a copy of the
# distributed inventory's rows and rules, tags them with the single-node code, and must give
# every row the same tags and confidences, and the same reports.
PGOPTIONS="-c client_min_messages=warning" ipi_psql -p "$CITUS_COORD" -c "CREATE DATABASE single_node" >/dev/null
single() { PGOPTIONS='-c client_min_messages=warning' ipi_psql -p "$CITUS_COORD" -d single_node -At "$@"; }
LIST_SQL="CREATE TABLE sensors (network cidr PRIMARY KEY, label text);
INSERT INTO sensors VALUES ('81.2.69.0/26', 'sensor-a'), ('175.16.199.0/29', 'sensor-b');
SELECT ip_list_register('sensors', 'sensors', 'honeypot sensors') IS NOT NULL;"
single -q -c "CREATE EXTENSION ip_inventory" -c "$LIST_SQL" >/dev/null
sql -q -c "$LIST_SQL" >/dev/null
INV_COLS=$(sql -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                   WHERE attrelid = 'ip_inventory'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
                     AND attname NOT IN ('tags', 'tag_confidence', 'tags_generation')")
# single_compare LABEL: copies rows and rules, retags the copy, prints an assertion over the
# differences of tags (every row) and of the two report views.
single_compare() {
    local label=$1
    single -q -c "DELETE FROM ip_inventory" -c "DELETE FROM ip_inventory_tag_rules"
    sql -c "COPY (SELECT $INV_COLS FROM ip_inventory) TO STDOUT" | single -q -c "COPY ip_inventory ($INV_COLS) FROM STDIN"
    sql -c "COPY (SELECT tag, attack_type, confidence, condition, enabled FROM ip_inventory_tag_rules ORDER BY rule_id) TO STDOUT" \
        | single -q -c "COPY ip_inventory_tag_rules (tag, attack_type, confidence, condition, enabled) FROM STDIN"
    single -q -c "CALL ip_inventory_retag()" >/dev/null
    local q="COPY (SELECT ip_address, tags, tag_confidence FROM ip_inventory ORDER BY ip_address) TO STDOUT"
    local r="COPY (SELECT * FROM ip_inventory_tag_report ORDER BY tag) TO STDOUT;
             COPY (SELECT * FROM ip_inventory_attack_type_report ORDER BY attack_type) TO STDOUT"
    sql -c "$q" >"$RUN_DIR/tags_dist.txt"
    single -c "$q" >"$RUN_DIR/tags_single.txt"
    sql -c "$r" >"$RUN_DIR/reports_dist.txt"
    single -c "$r" >"$RUN_DIR/reports_single.txt"
    local rows tagged diffs rdiffs
    rows=$(wc -l <"$RUN_DIR/tags_dist.txt")
    tagged=$(grep -vc '{}	{}$' "$RUN_DIR/tags_dist.txt" || true)
    diffs=$(diff "$RUN_DIR/tags_dist.txt" "$RUN_DIR/tags_single.txt" | grep -c '^[<>]' || true)
    rdiffs=$(diff "$RUN_DIR/reports_dist.txt" "$RUN_DIR/reports_single.txt" | grep -c '^[<>]' || true)
    expect_ok <<SQL
SELECT expect('$label: same tags as a single node on every row, same reports',
              $diffs = 0 AND $rdiffs = 0 AND $tagged > 0 AND $(wc -l <"$RUN_DIR/reports_dist.txt") > 0,
              '$rows rows ($tagged tagged), $diffs rows differ, $rdiffs report lines differ');
SQL
}
expect_ok <<'SQL'
INSERT INTO ip_inventory_tag_rules (tag, attack_type, confidence, condition) VALUES
    ('se', 'geo', 0.8, '{"country": ["SE"]}'),
    ('own-sensor', 'internal', 0.9, '{"in_list": ["sensors"]}'),
    ('private', 'internal', 0.3, '{"ip_class": ["private"]}'),
    ('scanner', 'recon', 0.6, '{"rdns_regex": "(\\.google|shodan\\.io)$"}'),
    ('scanner', 'recon', 0.4, '{"network": ["71.6.135.0/24"]}');
SELECT expect('rules written on the coordinator: every row stale', s.enabled_rules = 5 AND s.stale_rows = (SELECT count(*) FROM ip_inventory),
              format('generation %s, %s stale rows', s.generation, s.stale_rows))
FROM ip_inventory_tag_status AS s;
CALL ip_inventory_retag(100);
SELECT expect('ip_inventory_retag on the distributed inventory, in batches', status = 'finished'
              AND done_rows = (SELECT count(*) FROM ip_inventory) AND batches > 1,
              format('%s rows in %s batches, %s written', done_rows, batches, addresses))
FROM ip_inventory_jobs WHERE job = 'retag';
SELECT expect('no stale row after the retag', stale_rows = 0 AND tagged_rows > 0, format('%s tagged rows', tagged_rows)) FROM ip_inventory_tag_status;
SELECT expect('tags on the right rows (se: country SE; own-sensor: in a list on the coordinator; private: ip_class)',
              count(*) FILTER (WHERE ('se' = ANY (tags)) <> coalesce(geo_country = 'SE', false)) = 0
              AND count(*) FILTER (WHERE ('own-sensor' = ANY (tags)) <> (ip_address <<= ANY ('{81.2.69.0/26,175.16.199.0/29}'::inet[]))) = 0
              AND count(*) FILTER (WHERE ('private' = ANY (tags)) <> (ip_class = 'private')) = 0
              AND count(*) FILTER (WHERE 'se' = ANY (tags)) > 0 AND count(*) FILTER (WHERE 'own-sensor' = ANY (tags)) > 0
              AND count(*) FILTER (WHERE 'private' = ANY (tags)) > 0,
              format('se %s, own-sensor %s, private %s', count(*) FILTER (WHERE 'se' = ANY (tags)),
                     count(*) FILTER (WHERE 'own-sensor' = ANY (tags)), count(*) FILTER (WHERE 'private' = ANY (tags))))
FROM ip_inventory;
SQL
single_compare "after the retag"
worker_retag=$(ipi_psql -p "$CITUS_W1" -Atc "CALL ip_inventory_retag()" 2>&1 || true)
expect_ok <<SQL
SELECT expect('ip_inventory_retag refused on a worker', position('coordinator' IN \$w\$$worker_retag\$w\$) > 0, \$w\$$worker_retag\$w\$);
SQL
expect_ok <<'SQL'
-- New addresses through the workers' triggers (their shards and the queue), then the flush.
INSERT INTO raw_events SELECT 11000000 + i, (ARRAY['8.8.8.8', '1.1.1.1', '71.6.135.131'])[1 + i % 3]::inet,
       ('10.77.0.' || (i % 50))::inet, now()
FROM generate_series(1, 6000) AS i;
INSERT INTO raw_events SELECT 11100000 + i, '89.160.20.250', NULL, now() FROM generate_series(1, 100) AS i;
SELECT expect('stale rows before the flush: the workers recorded them untagged', stale_rows > 0, stale_rows || ' rows') FROM ip_inventory_tag_status;
SELECT expect('flush tags what it writes and what the workers recorded', (f ->> 'tagged')::int > 0, f::text) FROM ip_inventory_citus_flush() AS f;
SELECT expect('no stale row after the flush', stale_rows = 0, stale_rows || ' rows') FROM ip_inventory_tag_status;
SELECT expect('new rows tagged by the flush', count(*) = 4,
              string_agg(host(ip_address) || ' ' || array_to_string(tags, ','), '; ' ORDER BY ip_address))
FROM ip_inventory WHERE (ip_address = '89.160.20.250' AND tags = '{se}') OR (ip_address = '10.77.0.7' AND tags = '{private}')
   OR (ip_address = '71.6.135.131' AND tags = '{scanner}' AND tag_confidence = '{"scanner": 0.4}')
   OR (ip_address = '8.8.8.8' AND tags = '{}');
-- Reverse DNS of the three busiest rows (the new ones): the stored answers re-tag them.
SELECT expect('cascade_refresh(rdns) on the coordinator', (r ->> 'refreshed')::int = 3, r::text) FROM cascade_refresh('rdns', 3) AS r;
SELECT expect('answers stored by the distributed UPDATE re-tag their rows',
              count(*) FILTER (WHERE ip_address = '8.8.8.8' AND tags = '{scanner}' AND tag_confidence = '{"scanner": 0.6}') = 1
              AND count(*) FILTER (WHERE ip_address = '71.6.135.131' AND tag_confidence = '{"scanner": 0.6}') = 1
              AND count(*) FILTER (WHERE ip_address = '1.1.1.1' AND tags = '{}') = 1,
              string_agg(host(ip_address) || ' ' || coalesce(enrichment -> 'rdns' ->> 'name', '-') || ' ' || tag_confidence::text, '; ' ORDER BY ip_address))
FROM ip_inventory WHERE ip_address IN ('8.8.8.8', '71.6.135.131', '1.1.1.1');
SQL
single_compare "after the flush and the stored answers"
expect_ok <<'SQL'
UPDATE ip_inventory_tag_rules SET confidence = 0.7 WHERE tag = 'se';
UPDATE ip_inventory_tag_rules SET enabled = false WHERE tag = 'private';
SELECT expect('rule change: every row stale', stale_rows = (SELECT count(*) FROM ip_inventory), stale_rows || ' rows') FROM ip_inventory_tag_status;
CALL ip_inventory_retag(500);
SELECT expect('retag after the rule change', status = 'finished' AND done_rows = (SELECT count(*) FROM ip_inventory),
              format('%s rows in %s batches, %s written', done_rows, batches, addresses))
FROM ip_inventory_jobs WHERE job = 'retag';
SELECT expect('re-tagged by the new rules', stale_rows = 0
              AND (SELECT count(*) FROM ip_inventory WHERE 'private' = ANY (tags)) = 0
              AND (SELECT count(*) FROM ip_inventory WHERE 'se' = ANY (tags) AND tag_confidence ->> 'se' <> '0.7') = 0
              AND (SELECT count(*) FROM ip_inventory WHERE 'se' = ANY (tags)) > 0, stale_rows || ' stale rows')
FROM ip_inventory_tag_status;
SQL
single_compare "after a rule change and the retag"
# The MaxMind writers: the first build back on every node, a rule change not followed by a
# retag; the coordinator's cascade_refresh(maxmind) re-tags the rows it re-enriches, the
# nodes' enrich_pending marks theirs stale and the coordinator re-tags them.
for node in coordinator worker1 worker2; do
    cp "$TESTDATA/GeoIP2-City-Test.mmdb" "$RUN_DIR/maxmind/$node/City.mmdb.tmp"
    chmod a+r "$RUN_DIR/maxmind/$node/City.mmdb.tmp"
    mv "$RUN_DIR/maxmind/$node/City.mmdb.tmp" "$RUN_DIR/maxmind/$node/City.mmdb"
done
expect_ok <<'SQL'
SELECT expect('first build back on every node', bool_and(reloaded) AND count(DISTINCT city_build) = 1, string_agg(node || ' ' || city_build, ', '))
FROM ip_inventory_citus_reload();
UPDATE ip_inventory_tag_rules SET confidence = 0.75 WHERE tag = 'se';
SELECT expect('cascade_refresh(maxmind) on the coordinator', (r ->> 'selected')::int = 50, r::text) FROM cascade_refresh('maxmind', 50) AS r;
SELECT expect('the rows it re-enriched are tagged by the new rules, the others still stale',
              count(*) FILTER (WHERE NOT s.stale) >= 50 AND count(*) FILTER (WHERE s.stale) > 0
              AND count(*) FILTER (WHERE NOT s.stale AND 'se' = ANY (tags) AND tag_confidence ->> 'se' <> '0.75') = 0,
              format('%s current, %s stale', count(*) FILTER (WHERE NOT s.stale), count(*) FILTER (WHERE s.stale)))
FROM (SELECT i.tags, i.tag_confidence, i.tags_generation IS DISTINCT FROM (SELECT generation FROM ip_inventory_tag_state) AS stale
      FROM ip_inventory AS i) AS s;
-- Every row current again; the rows still pending are re-enriched on the nodes, which mark
-- them stale, and the coordinator re-tags exactly those.
CALL ip_inventory_retag();
SELECT expect('enrich_pending on every node, then the coordinator re-tags the rows it enriched', e ->> 'status' = 'finished'
              AND e -> 'tags' ->> 'status' = 'finished' AND (e ->> 'enriched')::int > 0
              AND (e -> 'tags' ->> 'rows')::bigint = (e ->> 'enriched')::bigint,
              format('%s rows enriched, tags: %s', e ->> 'enriched', e -> 'tags'))
FROM ip_inventory_citus_enrich_pending(500) AS e;
SELECT expect('no stale row after enrich_pending', stale_rows = 0, stale_rows || ' rows') FROM ip_inventory_tag_status;
SQL
single_compare "after the MaxMind writers"
echo "-- tag reports on the coordinator"
sql -c "SELECT tag, attack_type, addresses, events, avg_confidence FROM ip_inventory_tag_report ORDER BY tag"
expect_ok <<'SQL'
SELECT expect('tag report on the coordinator', count(*) = 3 AND sum(addresses) > 0, string_agg(tag || ' ' || addresses || ' addresses ' || events || ' events', ', ' ORDER BY tag))
FROM ip_inventory_tag_report;
SELECT expect('attack type report on the coordinator', count(*) = 3, string_agg(attack_type || ' ' || addresses, ', ' ORDER BY attack_type))
FROM ip_inventory_attack_type_report;
SQL

echo "== retention"
expect_ok <<'SQL'
SELECT 'attach: ' || ip_inventory_attach('old_events', ARRAY['src_ip', 'dst_ip'], 'ts')::text;
-- Failure records (on the coordinator) of three addresses retention will delete.
INSERT INTO ip_inventory_failures (ip_address, source, attempts, error, first_failed_at, last_failed_at)
SELECT ip_address, 'rdns', 1, 'no answer', now(), now() FROM ip_inventory
WHERE last_seen_at < now() - interval '365 days' ORDER BY ip_address LIMIT 3;
SELECT expect('retention dry run', (s #>> '{inventory,rows}')::int > 0 AND (s #>> '{failures,rows}')::int = 3, s::text)
FROM (SELECT ip_inventory_citus_retention(interval '365 days', 'delete', true) AS s) AS x;
SELECT expect('retention delete', (s #>> '{inventory,rows}')::int > 0, s::text)
FROM (SELECT ip_inventory_citus_retention(interval '365 days', 'delete', false) AS s) AS x;
SELECT expect('old events deleted', count(*) = 0, count(*) || ' left') FROM old_events WHERE ts < now() - interval '365 days';
SELECT expect('old inventory rows deleted', count(*) = 0, count(*) || ' left') FROM ip_inventory WHERE last_seen_at < now() - interval '365 days';
SELECT expect('their failure records deleted with them', count(*) = 0, count(*) || ' left') FROM ip_inventory_failures;
SELECT expect('recent events kept', count(*) > 0, count(*) || ' events') FROM raw_events;
SQL

echo "== retention, mode anonymize: inventory rows merged per network, events by another column truncated"
expect_ok <<'SQL'
-- Sessions distributed by their id: their addresses are not the distribution column.
CREATE TABLE sessions (session_id bigint NOT NULL, src_ip inet NOT NULL, dst_ip inet, ts timestamptz NOT NULL);
SELECT create_distributed_table('sessions', 'session_id') IS NOT NULL;
SELECT 'attach: ' || ip_inventory_attach('sessions', ARRAY['src_ip', 'dst_ip'], 'ts')::text;
INSERT INTO sessions SELECT i, ('2.125.160.' || (i % 200))::inet, ('81.2.69.' || (i % 7))::inet, now() - interval '100 days'
FROM generate_series(1, 3000) AS i;
INSERT INTO sessions SELECT 10000 + i, ('2.125.161.' || i)::inet, NULL, now() FROM generate_series(1, 10) AS i;
-- Old events of a table distributed by its source address.
INSERT INTO raw_events SELECT 9000000 + i, ('175.16.199.' || i)::inet, NULL, now() - interval '100 days' FROM generate_series(1, 20) AS i;
SELECT ip_inventory_citus_flush() IS NOT NULL;
CREATE TEMP TABLE before AS SELECT sum(observation_count) AS observations, count(*) AS rows FROM ip_inventory;
SELECT expect('anonymize dry run', (s #>> '{inventory,rows}')::int >= 200 AND (s #>> '{inventory,networks}')::int >= 1
              AND s -> 'events' -> 'not_anonymized' ? 'public.raw_events' AND s ->> 'status' = 'incomplete', s::text)
FROM (SELECT ip_inventory_citus_retention(interval '30 days', 'anonymize', true) AS s) AS x;
SELECT expect('anonymize', (s #>> '{inventory,rows}')::int >= 200 AND (s #>> '{events,rows}')::int = 3000
              AND s -> 'events' -> 'not_anonymized' ? 'public.raw_events', s::text)
FROM (SELECT ip_inventory_citus_retention(interval '30 days', 'anonymize', false, 70) AS s) AS x;
SELECT expect('old sessions truncated in place (a column that is not the distribution column)',
              count(*) = 3000 AND count(*) FILTER (WHERE src_ip = '2.125.160.0/24' AND dst_ip = '81.2.69.0/24') = 3000,
              count(*) FILTER (WHERE src_ip = '2.125.160.0/24') || ' of ' || count(*))
FROM sessions WHERE ts < now() - interval '30 days';
SELECT expect('recent sessions untouched', count(*) = 10 AND bool_and(masklen(src_ip) = 32), count(*)::text)
FROM sessions WHERE ts > now() - interval '30 days';
SELECT expect('old inventory rows merged into their network''s row, in its shard',
              i.observation_count = 3000 AND i.ip_class = 'anonymized', i.ip_address || ' ' || i.observation_count)
FROM ip_inventory AS i WHERE i.ip_address = '2.125.160.0/24';
SELECT expect('no inventory row older than 30 days keeps its address', count(*) = 0, count(*) || ' left')
FROM ip_inventory WHERE last_seen_at < now() - interval '30 days' AND ip_class <> 'anonymized';
SELECT expect('no observation lost or counted twice', a.observations = b.observations AND a.rows < b.rows,
              format('%s observations in %s rows, before %s in %s', a.observations, a.rows, b.observations, b.rows))
FROM (SELECT sum(observation_count) AS observations, count(*) AS rows FROM ip_inventory) AS a, before AS b;
SELECT expect('events distributed by their address are left for mode delete', count(*) = 20 AND bool_and(masklen(src_ip) = 32),
              count(*) || ' old events of raw_events keep their address')
FROM raw_events WHERE ts < now() - interval '30 days';
SELECT expect('a second anonymize run finds nothing', (s #>> '{inventory,rows}')::int = 0 AND (s #>> '{events,rows}')::int = 0, s::text)
FROM (SELECT ip_inventory_citus_retention(interval '30 days', 'anonymize', false) AS s) AS x;
SELECT expect('anonymize, deleting the old events it cannot anonymize', s ->> 'status' = 'finished'
              AND (s #>> '{events,rows}')::int = 20 AND s -> 'events' -> 'deleted_not_anonymized' ? 'public.raw_events', s::text)
FROM (SELECT ip_inventory_citus_retention(interval '30 days', 'anonymize', false, delete_unanonymizable => true) AS s) AS x;
SELECT expect('no raw address older than 30 days left in any event table', count(*) = 0, count(*) || ' left')
FROM (SELECT src_ip FROM raw_events WHERE ts < now() - interval '30 days'
      UNION ALL SELECT src_ip FROM sessions WHERE ts < now() - interval '30 days' AND masklen(src_ip) = 32) AS t;
SQL

echo "== health and stats across nodes"
sql -c "SELECT node, reachable, city_build, asn_build, generation, status FROM ip_inventory_citus_nodes()"
sql -c "SELECT \"check\", status, value FROM ip_inventory_health() ORDER BY 1"
expect_ok <<'SQL'
SELECT expect('stats from every node', count(DISTINCT node) = 3, sum(value)::text || ' lookups on ' || count(DISTINCT node) || ' nodes')
FROM ip_inventory_citus_stats() WHERE source = 'city' AND metric = 'lookups';
SQL

# A crashed backend shows in a server log even when every answer looked right.
# (Except the coordinator backend this check killed itself.)
if grep -E "terminated by signal|PANIC" "$CITUS_DIR"/*/server.log | grep -v "PID ${killed_pid:-none})"; then
    ipi_log "a server log shows a crashed process"
    echo "citus-check: $passed passed, 1 failed"
    exit 1
fi
ok=yes
echo "citus-check: $passed passed, 0 failed"
