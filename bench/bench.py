#!/usr/bin/env python3
"""The ip_inventory benchmark: every measurement of docs/benchmarks.md, in one run, on one
machine, on the same data. Started by bench/run.sh (`make bench`), which sets up the
cluster, the databases and this script's environment:

    PGHOST/PGPORT/PGUSER   the throwaway cluster (shared_preload_libraries = ip_inventory)
    IPI_BENCH_DIR          work directory (results.json, results.md, logs, data files)
    IPI_BENCH_FILES        a directory the server's user can write (COPY files)
    IPI_BENCH_CITY/ASN     the database files the cluster is configured with
    IPI_BENCH_SOURCES      where the databases came from (text for the report)
    IPI_BENCH_ROWS         addresses per set (default 1000000; smaller for a smoke run)
    IPI_BENCH_PGBENCH_SECS pgbench duration (default 30)

Writes IPI_BENCH_DIR/results.json (every figure) and results.md (the tables), and replaces
the generated part of docs/benchmarks.md.
"""
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

import maxminddb
import psycopg

from python_worker import smaps  # bench/ is this script's directory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ["IPI_BENCH_DIR"]
FILES = os.environ["IPI_BENCH_FILES"]
CITY = os.environ["IPI_BENCH_CITY"]
ASN = os.environ["IPI_BENCH_ASN"]
ROWS = int(os.environ.get("IPI_BENCH_ROWS", "1000000"))
DISTINCT = max(ROWS // 20, 100)  # the skewed set: ROWS events from ROWS/20 addresses
PGBENCH_SECS = int(os.environ.get("IPI_BENCH_PGBENCH_SECS", "30"))
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PYTHON = sys.executable
STEPS = 12
STARTED = time.monotonic()
results = {"rows": ROWS, "distinct_skewed": DISTINCT}


def progress(step, what):
    print(f"[bench {time.monotonic() - STARTED:6.0f}s] {step}/{STEPS} {what}", file=sys.stderr,
          flush=True)


def connect():
    return psycopg.connect(dbname="postgres", autocommit=True)


def one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()


def measure(conn, sql, runs=3, budget=30.0):
    """Runs `sql` once to warm up, then up to `runs` times, stopping early once `budget`
    seconds (warm-up included) are spent; returns the median seconds and the first row."""
    start = time.perf_counter()
    conn.execute(sql).fetchall()
    spent = time.perf_counter() - start
    times, row = [], None
    while len(times) < runs:
        start = time.perf_counter()
        row = conn.execute(sql).fetchone()
        times.append(time.perf_counter() - start)
        if spent + sum(times) > budget:
            break
    return {"seconds": round(statistics.median(times), 4), "runs": len(times),
            "result": list(row) if row else None}


def rate(rows, seconds):
    return round(rows / seconds) if seconds else None


# ---- 0. the machine ----------------------------------------------------------------------

def machine():
    info = {"cores": os.cpu_count(), "platform": platform.platform()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for key in ("Model name", "L2 cache", "L3 cache", "Thread(s) per core"):
            m = re.search(rf"^{re.escape(key)}:\s*(.+)$", out, re.M)
            if m:
                info[key.lower().replace(" ", "_").replace("(s)", "s")] = m.group(1).strip()
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        info["memory_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    with connect() as c:
        info["postgres"] = one(c, "SELECT version()")[0].split(" on ")[0]
        info["ip_inventory"] = one(c, "SELECT extversion FROM pg_extension WHERE extname = 'ip_inventory'")[0]
        info["databases"] = [dict(zip(("name", "type", "build_time", "file_size", "node_count"), r))
                             for r in c.execute("SELECT name, database_type, build_time::text, file_size, node_count FROM maxmind_info()").fetchall()]
    info["sources"] = os.environ.get("IPI_BENCH_SOURCES", "")
    info["python"] = platform.python_version()
    info["maxminddb_python"] = maxminddb.__version__ if hasattr(maxminddb, "__version__") else "?"
    return info


# ---- 1. data -----------------------------------------------------------------------------

def make_data(c):
    """bench_uniform: ROWS uniformly random public IPv4 addresses. bench_events: ROWS
    honeypot events from DISTINCT addresses, each seen at least once, the rest drawn
    log-uniformly by rank (Zipf with s = 1: rank r is drawn ~1/r as often)."""
    c.execute("DROP TABLE IF EXISTS bench_uniform, bench_skewed_ips, bench_events, raw_events, raw_events_plain CASCADE")
    c.execute("SELECT setseed(0.2026)")
    c.execute(f"""CREATE TABLE bench_uniform AS
        SELECT ip FROM (SELECT '0.0.0.0'::inet + (random() * 4294967295)::bigint AS ip
                        FROM generate_series(1, {ROWS * 13 // 10})) s
        WHERE ip_class(ip) = 'public' LIMIT {ROWS}""")
    c.execute(f"""CREATE TABLE bench_skewed_ips AS
        SELECT row_number() OVER () AS rank, ip
        FROM (SELECT DISTINCT ip FROM (SELECT '0.0.0.0'::inet + (random() * 4294967295)::bigint AS ip
                                       FROM generate_series(1, {DISTINCT * 2})) s
              WHERE ip_class(ip) = 'public' LIMIT {DISTINCT}) d""")
    c.execute(f"""CREATE TABLE bench_events AS
        SELECT g AS event_id,
               timestamptz '2026-11-01' + g * interval '2 seconds' AS event_ts,
               s.ip AS src_ip, (ARRAY[22, 23, 80, 443, 2222, 8080])[1 + g % 6] AS dst_port,
               'sensor-' || (g % 7) AS sensor, 'cowrie.session.connect' AS eventid,
               md5(g::text) AS session
        FROM (SELECT g, CASE WHEN g <= {DISTINCT} THEN g
                             ELSE least({DISTINCT}, floor(exp(random() * ln({DISTINCT} + 1)))::int) END AS rank
              FROM generate_series(1, {ROWS}) g) r
        JOIN bench_skewed_ips s USING (rank)""")
    for t in ("bench_uniform", "bench_events"):
        c.execute(f"VACUUM ANALYZE {t}")
    events_columns = "(event_id bigint, event_ts timestamptz, src_ip inet, dst_port int, sensor text, eventid text, session text)"
    c.execute(f"CREATE TABLE raw_events {events_columns}")
    c.execute(f"CREATE TABLE raw_events_plain {events_columns}")
    c.execute(f"COPY (SELECT * FROM bench_events ORDER BY event_id) TO '{FILES}/events.csv' (FORMAT csv)")
    c.execute(f"COPY bench_uniform TO '{FILES}/uniform.txt'")
    c.execute(f"COPY (SELECT src_ip FROM bench_events ORDER BY event_id) TO '{FILES}/skewed.txt'")
    top = one(c, """SELECT max(n), round(100.0 * sum(n) FILTER (WHERE rk <= 1000) / sum(n), 1)
                    FROM (SELECT count(*) AS n, row_number() OVER (ORDER BY count(*) DESC) AS rk
                          FROM bench_events GROUP BY src_ip) s""")
    return {"uniform": one(c, "SELECT count(*) FROM bench_uniform")[0],
            "events": one(c, "SELECT count(*) FROM bench_events")[0],
            "event_addresses": one(c, "SELECT count(DISTINCT src_ip) FROM bench_events")[0],
            "busiest_address_events": top[0], "top_1000_addresses_share_pct": float(top[1])}


def city_ranges(c):
    """The classic approach: the same City (and ASN) data as ip4r range tables with GiST
    indexes, built from the databases by the maxminddb reader's network iterator."""
    c.execute("CREATE EXTENSION IF NOT EXISTS ip4r")
    c.execute("DROP TABLE IF EXISTS geo_city_ip4r, geo_asn_ip4r")
    c.execute("""CREATE TABLE geo_city_ip4r (net ip4r NOT NULL, country_code text, country_name text,
        continent_code text, registered_country_code text, subdivision_code text, subdivision_name text,
        city text, postal_code text, latitude float8, longitude float8, accuracy_radius int, time_zone text)""")
    c.execute("CREATE TABLE geo_asn_ip4r (net ip4r NOT NULL, asn bigint, asn_org text)")

    def names(d):
        return (d or {}).get("names", {}).get("en")

    start = time.perf_counter()
    city_rows = 0
    with maxminddb.open_database(CITY) as r, c.cursor() as cur, \
            cur.copy("COPY geo_city_ip4r FROM STDIN") as copy:
        for net, rec in r:
            if net.version != 4 or not rec:
                continue
            sub = (rec.get("subdivisions") or [{}])[0]
            loc = rec.get("location", {})
            copy.write_row((str(net), rec.get("country", {}).get("iso_code"), names(rec.get("country")),
                            rec.get("continent", {}).get("code"),
                            rec.get("registered_country", {}).get("iso_code"), sub.get("iso_code"),
                            names(sub), names(rec.get("city")), rec.get("postal", {}).get("code"),
                            loc.get("latitude"), loc.get("longitude"), loc.get("accuracy_radius"),
                            loc.get("time_zone")))
            city_rows += 1
    asn_rows = 0
    with maxminddb.open_database(ASN) as r, c.cursor() as cur, \
            cur.copy("COPY geo_asn_ip4r FROM STDIN") as copy:
        for net, rec in r:
            if net.version != 4 or not rec:
                continue
            copy.write_row((str(net), rec.get("autonomous_system_number"),
                            rec.get("autonomous_system_organization")))
            asn_rows += 1
    c.execute("CREATE INDEX ON geo_city_ip4r USING gist (net)")
    c.execute("CREATE INDEX ON geo_asn_ip4r USING gist (net)")
    c.execute("VACUUM ANALYZE geo_city_ip4r")
    c.execute("VACUUM ANALYZE geo_asn_ip4r")
    return {"city_ranges": city_rows, "asn_ranges": asn_rows,
            "build_seconds": round(time.perf_counter() - start, 1)}


# ---- 2./3. per-row lookups ---------------------------------------------------------------

def lookup_queries(table, col):
    t = f"{table} t"
    return {
        "scan (count(*), the floor)": f"SELECT count(*) FROM {t}",
        "ip_class": f"SELECT count(ip_class(t.{col})) FROM {t}",
        "ip_country": f"SELECT count(ip_country(t.{col})) FROM {t}",
        "ip_asn": f"SELECT count(ip_asn(t.{col})) FROM {t}",
        "enrich_ip (FROM t, LATERAL enrich_ip(ip) e)":
            f"SELECT count(e.country_code), count(e.asn) FROM {t}, LATERAL enrich_ip(t.{col}) e",
        "enrich_ip as a scalar ((e).field from a subquery)":
            f"SELECT count((e).country_code), count((e).asn) FROM (SELECT enrich_ip(t.{col}) AS e FROM {t} OFFSET 0) s",
        "ip4r GiST join, City (peer of ip_country)":
            f"SELECT count(g.country_code) FROM {t} LEFT JOIN geo_city_ip4r g ON g.net >>= ip4(t.{col})",
        "ip4r GiST join, City + ASN (peer of enrich_ip)":
            f"""SELECT count(g.country_code), count(a.asn) FROM {t}
                LEFT JOIN geo_city_ip4r g ON g.net >>= ip4(t.{col})
                LEFT JOIN geo_asn_ip4r a ON a.net >>= ip4(t.{col})""",
    }


SERIAL = ["SET max_parallel_workers_per_gather = 0"]
PARALLEL = ["SET max_parallel_workers_per_gather = 2", "SET parallel_setup_cost = 0",
            "SET parallel_tuple_cost = 0", "SET min_parallel_table_scan_size = 0",
            "SET parallel_leader_participation = on"]


def city_counts(c):
    """City lookups so far that decoded no record (pre-decoded or cached) and that did."""
    return list(one(c, """SELECT coalesce(sum(value) FILTER (WHERE metric = 'city_cache_hits'), 0)::bigint,
                                coalesce(sum(value) FILTER (WHERE metric = 'city_cache_misses'), 0)::bigint
                         FROM ip_inventory_stats WHERE metric LIKE 'city_cache_%'"""))


def run_lookups(c, settings, sets, names=None):
    for s in settings:
        c.execute(s)
    out = {}
    for set_name, (table, col) in sets.items():
        rows = one(c, f"SELECT count(*) FROM {table}")[0]
        out[set_name] = {}
        for name, sql in lookup_queries(table, col).items():
            if names and name not in names:
                continue
            before = city_counts(c)
            m = measure(c, sql)
            m["city_lookups_decoded"] = [a - b for a, b in zip(city_counts(c), before)]
            m["rows_per_second"] = rate(rows, m["seconds"])
            m["ns_per_row"] = round(m["seconds"] * 1e9 / rows)
            plan = one(c, "EXPLAIN (FORMAT JSON) " + sql)[0]
            m["workers_planned"] = max([int(x) for x in re.findall(r'"Workers Planned": (\d+)', json.dumps(plan))] or [0])
            out[set_name][name] = m
            print(f"    {set_name:8} {name:55} {m['seconds']:8.3f} s {m['rows_per_second']:>12,} rows/s",
                  file=sys.stderr, flush=True)
    return out


FLOOR_QUERIES = ["ip_country", "enrich_ip (FROM t, LATERAL enrich_ip(ip) e)",
                 "enrich_ip as a scalar ((e).field from a subquery)"]


def lookup_floors(c):
    """What the lookups cost with no lookup work left, on the same number of rows: one public
    address repeated (every answer from the record caches or the pre-decoded records, the tree
    in the CPU cache: what a lookup costs beside its memory misses) and one private address (no lookup at all: the
    call, the 22-column row and the SQL form around it)."""
    ip = one(c, """SELECT u.ip::text FROM bench_uniform u, LATERAL enrich_ip(u.ip) e
                   WHERE e.city IS NOT NULL AND e.asn IS NOT NULL LIMIT 1""")[0]
    c.execute("DROP TABLE IF EXISTS bench_one_public, bench_one_private")
    c.execute(f"CREATE TABLE bench_one_public AS SELECT '{ip}'::inet AS ip FROM generate_series(1, {ROWS})")
    c.execute(f"CREATE TABLE bench_one_private AS SELECT '10.1.2.3'::inet AS ip FROM generate_series(1, {ROWS})")
    for t in ("bench_one_public", "bench_one_private"):
        c.execute(f"VACUUM ANALYZE {t}")
    out = run_lookups(c, SERIAL, {"one_public": ("bench_one_public", "ip"),
                                  "one_private": ("bench_one_private", "ip")}, names=FLOOR_QUERIES)
    out["public_address"] = ip
    return out


def python_baseline():
    out = {}
    for set_name, f in (("uniform", "uniform.txt"), ("skewed", "skewed.txt")):
        p = subprocess.run([PYTHON, os.path.join(ROOT, "bench/python_worker.py"), "throughput", CITY, ASN,
                            os.path.join(FILES, f)], capture_output=True, text=True, check=True)
        out[set_name] = json.loads(p.stdout)
        print(f"    {set_name:8} python: " + ", ".join(f"{k} {v['rows_per_second']:,}/s"
              for k, v in out[set_name].items() if isinstance(v, dict)), file=sys.stderr, flush=True)
    return out


def core_alone():
    """The Rust core without Postgres (core/examples/lookup_speed.rs)."""
    p = subprocess.run(["cargo", "run", "-q", "--release", "-p", "ip_inventory_core", "--example", "lookup_speed",
                        "--", CITY, ASN, str(ROWS)], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(p.stdout)


def agreement(c):
    """Every public address of the uniform set: ip_country's and enrich_ip's answers against
    libmaxminddb's. The ip4r tables hold what the maxminddb reader's C extension (libmaxminddb,
    built into the wheel) answers for every IPv4 network of the same files."""
    from maxminddb import extension  # noqa: F401 (fails if the reader is not libmaxminddb)
    row = one(c, f"""
        SELECT count(*),
               count(*) FILTER (WHERE ip_country(t.ip) IS DISTINCT FROM g.country_code),
               count(*) FILTER (WHERE (CASE WHEN g.net IS NOT NULL THEN e.network END, {", ".join("e." + x for x in AGREEMENT_CITY)})
                                IS DISTINCT FROM (g.net::cidr, {", ".join("g." + x for x in AGREEMENT_CITY)})),
               count(*) FILTER (WHERE (e.asn, e.asn_org, CASE WHEN a.net IS NOT NULL THEN e.asn_network END)
                                IS DISTINCT FROM (a.asn, a.asn_org, a.net::cidr)),
               count(g.net), count(a.net)
        FROM bench_uniform t
        LEFT JOIN geo_city_ip4r g ON g.net >>= ip4(t.ip)
        LEFT JOIN geo_asn_ip4r a ON a.net >>= ip4(t.ip)
        CROSS JOIN LATERAL enrich_ip(t.ip) e
        WHERE ip_class(t.ip) = 'public'""")
    out = dict(zip(["addresses", "ip_country_differ", "enrich_ip_city_differ", "enrich_ip_asn_differ",
                    "with_city_record", "with_asn_record"], row))
    print(f"    agreement: {out}", file=sys.stderr, flush=True)
    return out


# The City fields of enrich_ip that the ip4r table holds, by the same names.
AGREEMENT_CITY = ["country_code", "country_name", "continent_code", "registered_country_code",
                  "subdivision_code", "subdivision_name", "city", "postal_code", "latitude", "longitude",
                  "accuracy_radius", "time_zone"]


# ---- 4. backfill ---------------------------------------------------------------------------

def written_columns(c, exclude):
    """The inventory's columns a writer sets (not generated), in table order, but `exclude`."""
    return [r[0] for r in c.execute("""SELECT attname FROM pg_attribute
        WHERE attrelid = 'ip_inventory'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
          AND NOT attname = ANY (%s) ORDER BY attnum""", (list(exclude),)).fetchall()]


def fresh_inventory(c):
    """The inventory as enrich_pending finds it after an import: every uniform address, public,
    observed once, never enriched."""
    c.execute("TRUNCATE ip_inventory, ip_inventory_jobs")
    c.execute("""INSERT INTO ip_inventory (ip_address, first_seen_at, last_seen_at, observation_count, ip_class)
                 SELECT DISTINCT ip, now(), now(), 1, 'public' FROM bench_uniform""")
    c.execute("VACUUM ANALYZE ip_inventory")


def backfill(c):
    fresh_inventory(c)
    rows = one(c, "SELECT count(*) FROM ip_inventory")[0]
    start = time.perf_counter()
    summary = one(c, "CALL ip_inventory_enrich_pending()")[0]
    seconds = time.perf_counter() - start
    done = one(c, "SELECT count(*) FILTER (WHERE maxmind_ts IS NOT NULL), count(*) FILTER (WHERE geo_country IS NOT NULL), count(*) FILTER (WHERE asn_number IS NOT NULL) FROM ip_inventory")
    out = {"enrich_pending": {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": rate(rows, seconds),
                              "enriched": done[0], "with_country": done[1], "with_asn": done[2], "summary": summary}}
    c.execute("DROP TABLE IF EXISTS bench_answers")
    c.execute("CREATE TABLE bench_answers AS SELECT * FROM ip_inventory")
    # The weekly case: every row was enriched from an older build (same row size, same ASN
    # source), as after a database update.
    c.execute("UPDATE ip_inventory SET maxmind_build = maxmind_build - interval '7 days' WHERE maxmind_build IS NOT NULL")
    c.execute("VACUUM ANALYZE ip_inventory")
    start = time.perf_counter()
    summary = one(c, "CALL ip_inventory_enrich_pending()")[0]
    seconds = time.perf_counter() - start
    out["re_enrich"] = {"rows": summary["enriched"], "seconds": round(seconds, 2),
                        "rows_per_second": rate(summary["enriched"], seconds), "summary": summary}
    out["write_floor"] = write_floor(c)
    # A historical import: the events already in a table, counted into a fresh inventory.
    c.execute("TRUNCATE ip_inventory, ip_inventory_jobs, raw_events_plain")
    c.execute(f"COPY raw_events_plain FROM '{FILES}/events.csv' (FORMAT csv)")
    c.execute("VACUUM ANALYZE raw_events_plain")
    start = time.perf_counter()
    summary = one(c, "CALL ip_inventory_backfill('raw_events_plain', ARRAY['src_ip'], 'event_ts', 50000)")[0]
    seconds = time.perf_counter() - start
    check = one(c, "SELECT count(*), sum(observation_count) FROM ip_inventory")
    out["backfill_events"] = {"events": ROWS, "seconds": round(seconds, 2), "events_per_second": rate(ROWS, seconds),
                              "addresses": check[0], "observations": int(check[1]), "summary": summary}
    return out


def write_floor(c):
    """The floor of enrich_pending: the same fresh rows given the answers enrich_pending wrote
    (kept in bench_answers) by one plain UPDATE, with no lookup, no batches and no job; then
    the same UPDATE again on the enriched rows (the row size no longer changes, as in
    re-enrichment)."""
    cols = written_columns(c, exclude=("ip_address", "first_seen_at", "last_seen_at", "observation_count", "ip_class"))
    fresh_inventory(c)
    update = (f"UPDATE ip_inventory AS i SET {', '.join(f'{x} = a.{x}' for x in cols)} "
              "FROM bench_answers AS a WHERE i.ip_address = a.ip_address")
    out = {"columns": len(cols)}
    for key in ("first_seconds", "again_seconds"):
        c.execute("CHECKPOINT")
        start = time.perf_counter()
        c.execute(update)
        out[key] = round(time.perf_counter() - start, 2)
        c.execute("VACUUM ANALYZE ip_inventory")
    same = one(c, """SELECT count(*) FROM ip_inventory i JOIN bench_answers a USING (ip_address)
                     WHERE i.geo_country IS NOT DISTINCT FROM a.geo_country AND i.enrichment IS NOT DISTINCT FROM a.enrichment""")[0]
    out["rows_equal_to_enrich_pending"] = same
    print(f"    write floor: {out['first_seconds']} s first, {out['again_seconds']} s again ({same:,} rows as enrich_pending wrote them)",
          file=sys.stderr, flush=True)
    return out


# ---- 5. ingest ---------------------------------------------------------------------------

def ingest(c):
    """COPY of the skewed events into raw_events with the observe trigger attached, against
    the same COPY into an identical table without it; alternated, three times each; then the
    same in batches of 10 000 rows (one COPY each), as an ingest job delivers them."""
    c.execute("SELECT ip_inventory_attach('raw_events', ARRAY['src_ip'], 'event_ts')")
    # The floor: the least a trigger that keeps a count per address does, in plain SQL, into
    # a 4-column table, with no enrichment.
    c.execute("DROP TABLE IF EXISTS raw_events_count, bench_counts")
    c.execute("CREATE TABLE raw_events_count (LIKE raw_events_plain)")
    c.execute("CREATE TABLE bench_counts (ip inet PRIMARY KEY, n bigint NOT NULL, first_ts timestamptz, last_ts timestamptz)")
    c.execute("""CREATE OR REPLACE FUNCTION bench_count_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO bench_counts AS b (ip, n, first_ts, last_ts)
            SELECT src_ip, count(*), min(event_ts), max(event_ts) FROM new_rows
            WHERE src_ip IS NOT NULL GROUP BY src_ip ORDER BY src_ip
            ON CONFLICT (ip) DO UPDATE SET n = b.n + excluded.n, first_ts = least(b.first_ts, excluded.first_ts),
                                           last_ts = greatest(b.last_ts, excluded.last_ts);
            RETURN NULL;
        END $$""")
    c.execute("""CREATE TRIGGER bench_count AFTER INSERT ON raw_events_count REFERENCING NEW TABLE AS new_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION bench_count_events()""")
    batch = 10_000
    nbatches = (ROWS + batch - 1) // batch
    for i in range(nbatches):
        c.execute(f"COPY (SELECT * FROM bench_events WHERE event_id > {i * batch} AND event_id <= {(i + 1) * batch} ORDER BY event_id) TO '{FILES}/events_{i}.csv' (FORMAT csv)")
    rows_floor_setup(c)

    def copy_all(table, batched):
        c.execute(f"TRUNCATE {table}, ip_inventory, bench_counts, bench_inventory")
        c.execute("CHECKPOINT")
        start = time.perf_counter()
        if batched:
            for i in range(nbatches):
                c.execute(f"COPY {table} FROM '{FILES}/events_{i}.csv' (FORMAT csv)")
        else:
            c.execute(f"COPY {table} FROM '{FILES}/events.csv' (FORMAT csv)")
        return time.perf_counter() - start

    out = {}
    for batched in (False, True):
        plain, trig, floor = [], [], []
        same = []
        for _ in range(3):
            plain.append(copy_all("raw_events_plain", batched))
            floor.append(copy_all("raw_events_count", batched))
            counted = one(c, "SELECT count(*), sum(n) FROM bench_counts")
            same.append(copy_all("raw_events_rows", batched))
            rows_equal = one(c, """SELECT count(*) FROM bench_inventory b JOIN bench_rows r USING (ip_address)
                                   WHERE (b.observation_count, b.first_seen_at, b.last_seen_at, b.geo_city, b.enrichment)
                                         IS NOT DISTINCT FROM (r.observation_count, r.first_seen_at, r.last_seen_at, r.geo_city, r.enrichment)""")[0]
            trig.append(copy_all("raw_events", batched))
        inv = one(c, "SELECT count(*), sum(observation_count), count(*) FILTER (WHERE maxmind_ts IS NOT NULL) FROM ip_inventory")
        p, t, fl = statistics.median(plain), statistics.median(trig), statistics.median(floor)
        sr = statistics.median(same)
        key = f"batches_of_{batch}" if batched else "one_copy"
        out[key] = {"without_trigger_seconds": round(p, 3), "with_trigger_seconds": round(t, 3),
                    "ratio": round(t / p, 3), "inventory_addresses": inv[0], "inventory_observations": int(inv[1]),
                    "inventory_enriched": inv[2], "statements": nbatches if batched else 1,
                    "counting_trigger_seconds": round(fl, 3), "counting_trigger_ratio": round(fl / p, 3),
                    "counting_trigger_addresses": counted[0], "counting_trigger_observations": int(counted[1]),
                    "same_rows_seconds": round(sr, 3), "same_rows_ratio": round(sr / p, 3),
                    "same_rows_equal": rows_equal}
        print(f"    {key}: {p:.2f} s without, {t:.2f} s with the trigger ({t / p:.2f}x), "
              f"{fl:.2f} s with a plain counting trigger ({fl / p:.2f}x), "
              f"{sr:.2f} s writing the same rows in plain SQL ({sr / p:.2f}x; {rows_equal:,} rows equal)",
              file=sys.stderr, flush=True)
    return out


def rows_floor_setup(c):
    """The second ingest floor: a plain SQL statement trigger that writes the rows the observe
    trigger writes into a copy of the inventory (same columns, constraints, generated columns,
    indexes and fillfactor), taking the enriched values of a new address from bench_rows, the
    inventory one observe run left (no lookup, no tags, no Rust). What it costs over the
    counting trigger is the inventory's row itself."""
    c.execute("DROP TABLE IF EXISTS raw_events_rows, bench_inventory, bench_rows")
    c.execute("CREATE TABLE raw_events_rows (LIKE raw_events_plain)")
    c.execute("CREATE TABLE bench_inventory (LIKE ip_inventory INCLUDING ALL) WITH (fillfactor = 90)")
    c.execute("TRUNCATE raw_events, ip_inventory")
    c.execute(f"COPY raw_events FROM '{FILES}/events.csv' (FORMAT csv)")
    c.execute("CREATE TABLE bench_rows AS SELECT * FROM ip_inventory")
    c.execute("ALTER TABLE bench_rows ADD PRIMARY KEY (ip_address)")
    c.execute("VACUUM ANALYZE bench_rows")
    cols = written_columns(c, exclude=("ip_address", "first_seen_at", "last_seen_at", "observation_count"))
    c.execute(f"""CREATE OR REPLACE FUNCTION bench_write_rows() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO bench_inventory AS b (ip_address, observation_count, first_seen_at, last_seen_at, {', '.join(cols)})
            SELECT o.ip, o.n, o.f, o.l, {', '.join('r.' + x for x in cols)}
            FROM (SELECT src_ip AS ip, count(*) AS n, min(event_ts) AS f, max(event_ts) AS l FROM new_rows
                  WHERE src_ip IS NOT NULL GROUP BY src_ip) AS o
            JOIN bench_rows AS r ON r.ip_address = o.ip
            ORDER BY o.ip
            ON CONFLICT (ip_address) DO UPDATE SET observation_count = b.observation_count + excluded.observation_count,
                first_seen_at = least(b.first_seen_at, excluded.first_seen_at),
                last_seen_at = greatest(b.last_seen_at, excluded.last_seen_at);
            RETURN NULL;
        END $$""")
    c.execute("""CREATE TRIGGER bench_write_rows AFTER INSERT ON raw_events_rows REFERENCING NEW TABLE AS new_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION bench_write_rows()""")


# ---- 6. pgbench ----------------------------------------------------------------------------

def pgbench(clients, seconds, script="bench/pgbench_enrich.sql", defines=()):
    logdir = os.path.join(WORK, f"pgbench_{clients}")
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir)
    cmd = [f"{PG_BIN}/pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds),
           "-f", os.path.join(ROOT, script), "-l", "--log-prefix", os.path.join(logdir, "tx"),
           *[f"-D{d}" for d in defines], "postgres"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"pgbench failed ({p.returncode}): {p.stderr[-2000:]}")
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", p.stdout).group(1))
    lat = []
    failed = int(re.search(r"number of failed transactions: (\d+)", p.stdout).group(1)) \
        if "number of failed transactions" in p.stdout else 0
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name)) as f:
            lat.extend(int(line.split()[2]) for line in f)
    lat.sort()

    def pct(q):
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] / 1000, 3)

    shutil.rmtree(logdir)
    return {"clients": clients, "threads": 2, "seconds": seconds, "tps": round(tps), "transactions": len(lat),
            "failed": failed, "latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99),
                                             "max": round(lat[-1] / 1000, 3)}}


def verdict(c, seconds):
    """ip_verdict() as a honeypot orchestrator calls it (bench/pgbench_verdict.sql): the
    inventory's addresses, half of them fresh from every network source and half stale, and
    addresses it has never seen; p99 at 32 and 2 clients."""
    c.execute("DROP TABLE IF EXISTS bench_verdict_ips")
    c.execute("""CREATE TABLE bench_verdict_ips AS
        SELECT row_number() OVER (ORDER BY ip_address) AS i, ip_address AS ip FROM ip_inventory""")
    c.execute("ALTER TABLE bench_verdict_ips ADD PRIMARY KEY (i)")
    c.execute("""UPDATE ip_inventory SET cymru_ts = now(), greynoise_ts = now(), rdns_ts = now(),
                        enrichment = enrichment || '{"greynoise": {"noise": true, "riot": false,
                            "classification": "malicious"}, "rdns": {"name": "scanner.example", "status": "found"}}'
                 WHERE ip_address IN (SELECT ip FROM bench_verdict_ips WHERE i % 2 = 0)""")
    c.execute("VACUUM ANALYZE ip_inventory, bench_verdict_ips")
    known = one(c, "SELECT count(*) FROM bench_verdict_ips")[0]
    runs = [pgbench(32, seconds, "bench/pgbench_verdict.sql", [f"known={known}"]),
            pgbench(2, max(5, seconds // 3), "bench/pgbench_verdict.sql", [f"known={known}"])]
    queued = one(c, "SELECT count(*) FROM ip_inventory_refresh_queue()")[0]
    return {"known_addresses": known, "queue_after": queued, "pgbench": runs}


# ---- 7. memory ----------------------------------------------------------------------------

def memory(backends=20, lookups=200_000):
    paths = {CITY, ASN}
    sizes = {p: os.path.getsize(p) // 1024 for p in paths}
    conns = [connect() for _ in range(backends)]
    pids = [one(k, "SELECT pg_backend_pid()")[0] for k in conns]
    # Private memory a backend gains by the lookups: its anonymous pages (heap: readers,
    # caches, tables) after minus before. Shared memory and the mapped files are not in it.
    anon_before = [anonymous_kb(pid) for pid in pids]
    sample = min(100, max(1, round(100 * lookups / ROWS)))
    done = []

    def work(i, k):
        done.append(k.execute(f"""SELECT count(*) FROM (SELECT ip FROM bench_uniform
                                      TABLESAMPLE SYSTEM ({sample}) REPEATABLE ({i})) t,
                                  LATERAL enrich_ip(t.ip) e""").fetchone()[0])

    threads = [threading.Thread(target=work, args=(i, k)) for i, k in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(done) != backends:
        raise RuntimeError(f"only {len(done)} of {backends} backends finished their lookups")
    # The backends map the verified copies of the files (`<sha256>.mmdb` in the store,
    # docs/maxmind.md), not the configured paths: count those mappings.
    paths |= mapped_copies(pids, {CITY, ASN})
    per = [smaps(pid, paths) for pid in pids]
    if not any(p["rss_kb"] for p in per):
        raise RuntimeError(f"no backend maps the databases ({sorted(paths)})")
    grown = [anonymous_kb(pid) - b for pid, b in zip(pids, anon_before)]
    for k in conns:
        k.close()
    total = {k: sum(p[k] for p in per) for k in per[0]}
    p = subprocess.run([PYTHON, os.path.join(ROOT, "bench/python_worker.py"), "memory", CITY, ASN,
                        os.path.join(FILES, "uniform.txt"), str(lookups)], capture_output=True, text=True, check=True)
    py = json.loads(p.stdout)
    return {"backends": backends, "lookups_per_backend": round(statistics.mean(done)), "database_files_kb": sum(sizes.values()),
            "city_file_kb": sizes[CITY], "asn_file_kb": sizes[ASN],
            "sum_over_backends": total, "per_backend_rss_kb": round(total["rss_kb"] / backends),
            "pss_sum_vs_files": round(total["pss_kb"] / sum(sizes.values()), 3),
            "private_growth_kb": {"max": max(grown), "median": round(statistics.median(grown))},
            "python_worker": py}


def mapped_copies(pids, files):
    """Paths of the verified copies of `files` (named by their SHA-256) the backends map."""
    names = set()
    for f in files:
        with open(f, "rb") as fh:
            names.add(hashlib.sha256(fh.read()).hexdigest() + ".mmdb")
    out = set()
    for pid in pids:
        with open(f"/proc/{pid}/maps") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and os.path.basename(parts[5]) in names:
                    out.add(parts[5])
    return out


def anonymous_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    return 0


# ---- 8. Team Cymru --------------------------------------------------------------------------

def cymru(c, addresses):
    env = dict(os.environ, IPI_FAKE_SYNTHETIC="1")
    fake_dir = os.path.join(WORK, "fake_sources")
    shutil.rmtree(fake_dir, ignore_errors=True)
    server = subprocess.Popen([PYTHON, os.path.join(ROOT, "pg_tests/fake_sources.py"), "serve", fake_dir], env=env)
    try:
        for _ in range(100):
            if os.path.exists(os.path.join(fake_dir, "ports.env")):
                break
            time.sleep(0.1)
        ports = dict(line.strip().split("=", 1) for line in open(os.path.join(fake_dir, "ports.env")))
        c.execute(f"ALTER SYSTEM SET ip_inventory.cymru_whois_server = '{ports['IPI_FAKE_WHOIS']}'")
        c.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        c.execute("TRUNCATE ip_inventory, ip_inventory_failures")
        c.execute(f"""INSERT INTO ip_inventory (ip_address, first_seen_at, last_seen_at, observation_count, ip_class, maxmind_ts)
                      SELECT DISTINCT ip, now(), now(), 1, 'public', now() FROM (SELECT ip FROM bench_uniform LIMIT {addresses}) s""")
        c.execute("VACUUM ANALYZE ip_inventory")
        rows = one(c, "SELECT count(*) FROM ip_inventory")[0]
        start = time.perf_counter()
        res = one(c, "SELECT cascade_refresh('cymru', %s)", (rows,))[0]
        seconds = time.perf_counter() - start
        stored = one(c, "SELECT count(*) FROM ip_inventory WHERE asn_source = 'cymru'")[0]
        connections = sum(1 for line in open(os.path.join(fake_dir, "whois.log")) if line.startswith("connection"))
        return {"addresses": rows, "seconds": round(seconds, 3), "addresses_per_second": rate(rows, seconds),
                "stored_with_cymru_asn": stored, "whois_connections": connections,
                "batch_size": int(one(c, "SHOW ip_inventory.cymru_batch_size")[0]), "result": res}
    finally:
        server.terminate()
        c.execute("ALTER SYSTEM RESET ip_inventory.cymru_whois_server")
        c.execute("SELECT pg_reload_conf()")


# ---- the report -----------------------------------------------------------------------------

def fmt_rate(v):
    return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} K/s"


def report(r):
    m = r["machine"]
    L = []
    L.append(f"Run of {r['finished']} by `make bench` ({r['total_seconds']:.0f} s).")
    L.append("")
    L.append(f"**Machine:** {m['cores']} cores, {m.get('model_name', '?')}, L2 {m.get('l2_cache', '?')}, "
             f"L3 {m.get('l3_cache', '?')}, {m['memory_gib']} GiB; {m['platform']}; {m['postgres']}; "
             f"ip_inventory {m['ip_inventory']}; Python {m['python']}.")
    L.append("")
    L.append("**Databases:** " + "; ".join(f"{d['name']}: {d['type']} built {d['build_time'][:10]}, "
                                            f"{d['file_size'] / 1e6:.1f} MB" for d in m["databases"])
             + f". {m['sources']}")
    d = r["data"]
    L.append("")
    L.append(f"**Addresses:** uniform = {d['uniform']:,} uniformly random public IPv4 addresses; skewed = "
             f"{d['events']:,} honeypot events from {d['event_addresses']:,} addresses (Zipf-like: the busiest "
             f"address has {d['busiest_address_events']:,} events, the top 1 000 addresses "
             f"{d['top_1000_addresses_share_pct']} % of them). ip4r tables: {r['ip4r']['city_ranges']:,} City and "
             f"{r['ip4r']['asn_ranges']:,} ASN IPv4 ranges with GiST indexes.")
    L.append("")
    L.append("### Per-row lookups, one core (`max_parallel_workers_per_gather = 0`)")
    L.append("")
    L.append("| query | uniform | ns/row | skewed | ns/row |")
    L.append("|---|---:|---:|---:|---:|")
    s = r["serial"]
    for name in s["uniform"]:
        u, k = s["uniform"][name], s["skewed"][name]
        L.append(f"| {name} | {fmt_rate(u['rows_per_second'])} | {u['ns_per_row']} | "
                 f"{fmt_rate(k['rows_per_second'])} | {k['ns_per_row']} |")
    py = r["python"]
    for key, label in (("geoip2_city", "Python geoip2 `Reader.city()` (C extension)"),
                       ("maxminddb_get_city", "Python maxminddb `Reader.get()` on City (C extension)"),
                       ("geoip2_asn", "Python geoip2 `Reader.asn()`")):
        u, k = py["uniform"][key], py["skewed"][key]
        L.append(f"| {label} | {fmt_rate(u['rows_per_second'])} | {round(1e9 / u['rows_per_second'])} | "
                 f"{fmt_rate(k['rows_per_second'])} | {round(1e9 / k['rows_per_second'])} |")
    fl = r["lookup_floors"]
    L.append("")
    L.append(f"Floors, on {d['uniform']:,} rows too: one public address repeated ({fl['public_address']}: every answer "
             "from the record caches or the pre-decoded records, the tree in the CPU cache: what a lookup costs beside its memory misses), "
             "and one private address (no lookup: the call, the 22-column row and the SQL form).")
    L.append("")
    L.append("| query | uniform | ns/row | one public address | ns/row | one private address | ns/row |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for name in FLOOR_QUERIES:
        u, a, b = s["uniform"][name], fl["one_public"][name], fl["one_private"][name]
        L.append(f"| {name} | {fmt_rate(u['rows_per_second'])} | {u['ns_per_row']} | {fmt_rate(a['rows_per_second'])} | "
                 f"{a['ns_per_row']} | {fmt_rate(b['rows_per_second'])} | {b['ns_per_row']} |")
    core = r["core_alone"]["ns_per_address"]
    decoded = s["uniform"]["enrich_ip as a scalar ((e).field from a subquery)"].get("city_lookups_decoded")
    if decoded:
        L.append("")
        L.append(f"City lookups of the uniform scalar `enrich_ip` runs (warm-up included) that decoded no record: "
                 f"{decoded[0]:,}; that decoded one: {decoded[1]:,} (`city_cache_hits`, `city_cache_misses`; "
                 f"`ip_inventory.predecoded_city` is on).")
    L.append("")
    L.append(f"The Rust core alone (uniform addresses, no Postgres; `core/examples/lookup_speed.rs`): City tree walk "
             f"{core['walk_city']} ns, walk + `country.iso_code` {core['country_code']} ns, walk + full City decode "
             f"{core['city_fields']} ns, the same through the record cache {core['city_fields_cached']} ns "
             f"(hit rate {r['core_alone']['city_cache_hit_rate']:.0%}), from the pre-decoded records "
             f"{core.get('city_fields_predecoded', '–')} ns (walk + the country code from them "
             f"{core.get('country_code_predecoded', '–')} ns, `ip_country`'s IPv4 country map "
             f"{core.get('country_code_map', '–')} ns; built in {r['core_alone'].get('predecoded_build_ms', '–')} ms, "
             f"{r['core_alone'].get('predecoded_bytes', 0) / 1e6:.0f} MB), ASN walk + decode {core['asn_fields']} ns. "
             f"{r['core_alone']['distinct_city_records']:,} distinct City records answer these addresses; the 1 024 "
             f"most used answer {r['core_alone']['share_of_top_1024_records']:.0%} of them.")
    L.append("")
    ag = r.get("agreement")
    if ag:
        L.append(f"Agreement with libmaxminddb (the maxminddb reader's C extension, which wrote the ip4r tables), on "
                 f"every public address of the uniform set ({ag['addresses']:,}; {ag['with_city_record']:,} with a "
                 f"City record, {ag['with_asn_record']:,} with an ASN record): `ip_country` differs on "
                 f"{ag['ip_country_differ']:,}, `enrich_ip`'s twelve City fields and network on "
                 f"{ag['enrich_ip_city_differ']:,}, its ASN fields and network on {ag['enrich_ip_asn_differ']:,}.")
        L.append("")
    L.append("### Parallel query (2 workers + leader on this machine's cores)")
    L.append("")
    L.append("| query (uniform) | one core | parallel | speed-up | workers planned |")
    L.append("|---|---:|---:|---:|---:|")
    for name, p in r["parallel"]["uniform"].items():
        one_core = s["uniform"][name]
        L.append(f"| {name} | {fmt_rate(one_core['rows_per_second'])} | {fmt_rate(p['rows_per_second'])} | "
                 f"{one_core['seconds'] / p['seconds']:.2f}x | {p['workers_planned']} |")
    b = r["backfill"]
    L.append("")
    L.append("### Backfill and ingest")
    L.append("")
    e = b["enrich_pending"]
    L.append(f"- `CALL ip_inventory_enrich_pending()` over {e['rows']:,} unenriched inventory rows: **{e['seconds']} s** "
             f"({fmt_rate(e['rows_per_second'])}); {e['enriched']:,} rows enriched, {e['with_country']:,} with a "
             f"country, {e['with_asn']:,} with an ASN.")
    e = b["re_enrich"]
    L.append(f"- The same call after a database update (every row enriched from an older build): **{e['seconds']} s** "
             f"for {e['rows']:,} rows ({fmt_rate(e['rows_per_second'])}).")
    w = b["write_floor"]
    L.append(f"- Floor of both: the answers enrich_pending wrote, given to the same fresh rows by one plain `UPDATE` "
             f"({w['columns']} columns, no lookup, no batches, no job): **{w['first_seconds']} s**; the same `UPDATE` "
             f"again on the enriched rows: **{w['again_seconds']} s** ({w['rows_equal_to_enrich_pending']:,} rows equal "
             f"to what enrich_pending wrote).")
    h = b["backfill_events"]
    L.append(f"- `CALL ip_inventory_backfill('raw_events_plain', ARRAY['src_ip'], 'event_ts', 50000)` over "
             f"{h['events']:,} stored events: {h['seconds']} s ({fmt_rate(h['events_per_second'])} events); "
             f"{h['addresses']:,} addresses, {h['observations']:,} observations counted.")
    L.append("")
    L.append("| COPY of the skewed events | without trigger | with the observe trigger | ratio | "
             "floor: a plain SQL counting trigger | ratio | floor: the same rows written in plain SQL | ratio | "
             "inventory after |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, v in r["ingest"].items():
        label = "one COPY of all events" if key == "one_copy" else f"{v['statements']} COPYs of 10 000 events"
        L.append(f"| {label} | {v['without_trigger_seconds']} s | {v['with_trigger_seconds']} s | **{v['ratio']}x** | "
                 f"{v['counting_trigger_seconds']} s | {v['counting_trigger_ratio']}x | "
                 f"{v['same_rows_seconds']} s | {v['same_rows_ratio']}x | "
                 f"{v['inventory_addresses']:,} addresses, {v['inventory_observations']:,} observations, "
                 f"{v['inventory_enriched']:,} enriched |")
    L.append("")
    L.append("The counting trigger (the first floor) is the least a trigger that keeps a count per address does: one "
             "statement-level trigger in PL/pgSQL that groups the transition table and upserts into a 4-column table "
             "with no enrichment. The second floor writes the inventory's own rows: the same kind of trigger upserts "
             "into a copy of `ip_inventory` (its columns, constraints, generated columns, indexes and fillfactor), "
             "taking a new address's enriched values from a table of the answers, so with no lookup and no tags "
             f"({r['ingest']['batches_of_10000']['same_rows_equal']:,} rows equal to what the observe trigger wrote).")
    L.append("")
    L.append("### Live consumer: pgbench, one `enrich_ip` of a random address per transaction (`-M prepared`)")
    L.append("")
    L.append("| clients | TPS | p50 | p90 | p99 | max | failed |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|")
    for pb in r["pgbench"]:
        lat = pb["latency_ms"]
        L.append(f"| {pb['clients']} | {pb['tps']:,} | {lat['p50']} ms | {lat['p90']} ms | {lat['p99']} ms | "
                 f"{lat['max']} ms | {pb['failed']} |")
    mem = r["memory"]
    L.append("")
    if "verdict" in r:
        L.extend(verdict_report(r["verdict"]))
    L.append("### Memory")
    L.append("")
    t = mem["sum_over_backends"]
    pyw = mem["python_worker"]
    L.append(f"{mem['backends']} backends, each after {mem['lookups_per_backend']:,} `enrich_ip` lookups on average: the mmdb "
             f"mappings total **{t['pss_kb'] / 1024:.1f} MiB PSS** across all of them "
             f"({mem['pss_sum_vs_files']}x the {mem['database_files_kb'] / 1024:.1f} MiB of the two files; "
             f"RSS {mem['per_backend_rss_kb'] / 1024:.1f} MiB per backend, private {t['private_kb']} kB in all). One "
             f"Python worker with the same two databases open after the same lookups: RSS "
             f"{pyw['vm_rss_kb'] / 1024:.1f} MiB, of which {pyw['mmdb_mappings']['rss_kb'] / 1024:.1f} MiB are the "
             f"mapped files.")
    cy = r["cymru"]
    L.append("")
    L.append("### Team Cymru refresh against the loopback bulk-whois stand-in")
    L.append("")
    L.append(f"`cascade_refresh('cymru', {cy['addresses']})`: **{fmt_rate(cy['addresses_per_second'])}** "
             f"({cy['addresses']:,} addresses in {cy['seconds']} s, {cy['whois_connections']} whois connections "
             f"of {cy['batch_size']} addresses; {cy['stored_with_cymru_asn']:,} rows stored with a Team Cymru ASN).")
    L.append("")
    L.append("### Goals")
    L.append("")
    L.append("| goal | measured | met |")
    L.append("|---|---:|:---:|")
    for g in r["goals"]:
        L.append(f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else '**no**'} |")
    L.append("")
    L.append("### Issue 20 goals, side by side")
    L.append("")
    L.append("0.1.0: the figures issue 20 started from, from the run of 2026-11-21 on another machine (its peers: "
             "ip4r City 93 K/s, City + ASN 53 K/s uniform and 107 K/s skewed). Absolute figures do not compare "
             "across machines; the ratios to the peers do. Peers and floors ran in this same run, on the same data.")
    L.append("")
    L.append("| measure | 0.1.0 | this run | goal | peer, this run | met |")
    L.append("|---|---:|---:|---:|---|:---:|")
    for g in r["goals_issue20"]:
        L.append(f"| {g['measure']} | {g['before']} | {g['measured']} | {g['goal']} | {g['peer']} | "
                 f"{'yes' if g['met'] else '**no**'} |")
    return "\n".join(L) + "\n"


def goals_issue20(r):
    """Issue 20's table: its starting figures, this run, the goal and the peers."""
    s, k = r["serial"]["uniform"], r["serial"]["skewed"]
    en = "enrich_ip (FROM t, LATERAL enrich_ip(ip) e)"
    sc = "enrich_ip as a scalar ((e).field from a subquery)"
    ip4r_c = "ip4r GiST join, City (peer of ip_country)"
    ip4r_en = "ip4r GiST join, City + ASN (peer of enrich_ip)"
    geo = r["python"]["uniform"]["geoip2_city"]["rows_per_second"]
    rps = lambda d, name: d[name]["rows_per_second"]  # noqa: E731
    fl = r["lookup_floors"]
    floors = lambda name: (f"floors: one public address repeated {fmt_rate(rps(fl['one_public'], name))}, "  # noqa: E731
                           f"one private address (no lookup) {fmt_rate(rps(fl['one_private'], name))}")
    out = []

    def add(measure, before, measured, goal, peer, met):
        out.append({"measure": measure, "before": before, "measured": measured, "goal": goal, "peer": peer,
                    "met": bool(met)})

    # 0.1.0's figures and its peers' come from the run of 2026-11-21 (another machine): the
    # ratios to the peers compare across machines.
    x = lambda a, b: f"{a / b:.1f}x"  # noqa: E731
    add("`ip_country`, uniform, one core", f"2.07 M/s ({x(2.07e6, 93e3)} ip4r)",
        f"{fmt_rate(rps(s, 'ip_country'))} ({x(rps(s, 'ip_country'), rps(s, ip4r_c))} ip4r)", "≥ 4 M/s",
        f"ip4r GiST join {fmt_rate(rps(s, ip4r_c))} ({rps(s, 'ip_country') / rps(s, ip4r_c):.0f}x slower); "
        f"floor: `ip_class` (a call, no lookup) {fmt_rate(rps(s, 'ip_class'))}; {floors('ip_country')}",
        rps(s, "ip_country") >= 4e6)
    add("`enrich_ip` LATERAL, uniform / skewed", f"409 K / 665 K ({x(409e3, 53e3)} / {x(665e3, 107e3)} ip4r)",
        f"{fmt_rate(rps(s, en))} / {fmt_rate(rps(k, en))} ({x(rps(s, en), rps(s, ip4r_en))} / "
        f"{x(rps(k, en), rps(k, ip4r_en))} ip4r)", "≥ 800 K / ≥ 1.2 M",
        f"ip4r GiST join {fmt_rate(rps(s, ip4r_en))} / {fmt_rate(rps(k, ip4r_en))}; Python geoip2 {fmt_rate(geo)}; "
        f"{floors(en)}",
        rps(s, en) >= 8e5 and rps(k, en) >= 1.2e6)
    add("`enrich_ip` as a scalar, uniform", f"558 K ({x(558e3, 53e3)} ip4r)",
        f"{fmt_rate(rps(s, sc))} ({x(rps(s, sc), rps(s, ip4r_en))} ip4r)", "≥ 1.2 M",
        f"ip4r GiST join {fmt_rate(rps(s, ip4r_en))}; {floors(sc)}", rps(s, sc) >= 1.2e6)
    b = r["backfill"]
    add("`enrich_pending`, 1M fresh rows / re-enrichment", "20.2 s / 15.7 s",
        f"{b['enrich_pending']['seconds']} s / {b['re_enrich']['seconds']} s", "≤ 10 s / ≤ 8 s",
        f"floor: the same values written by one plain UPDATE {b['write_floor']['first_seconds']} s / "
        f"{b['write_floor']['again_seconds']} s",
        b["enrich_pending"]["seconds"] <= 10 and b["re_enrich"]["seconds"] <= 8)
    ing = r["ingest"]
    one_copy, batches = ing["one_copy"]["ratio"], ing["batches_of_10000"]["ratio"]
    add("one COPY of 1M events with the trigger / 100 COPYs of 10 000", "2.09x / 6.4x",
        f"{one_copy}x / {batches}x", "≤ 1.4x / ≤ 3x",
        f"floors: a plain SQL counting trigger, no enrichment: {ing['one_copy']['counting_trigger_ratio']}x / "
        f"{ing['batches_of_10000']['counting_trigger_ratio']}x; the same rows written by a plain SQL trigger, "
        f"no lookup: {ing['one_copy']['same_rows_ratio']}x / {ing['batches_of_10000']['same_rows_ratio']}x",
        one_copy <= 1.4 and batches <= 3)
    pb = [x for x in r["pgbench"] if x["clients"] == 2][0]
    fl = r["pgbench_floor"]["latency_ms"]
    add("pgbench, 2 clients, one `enrich_ip` each: p99", "0.075 ms", f"{pb['latency_ms']['p99']} ms", "≤ 0.05 ms",
        f"floors: the same transaction without the lookup (bench/pgbench_floor.sql) p99 {fl['p99']} ms; "
        f"the same `enrich_ip` row with every answer cached (bench/pgbench_floor_cached.sql) p99 "
        f"{r['pgbench_floor_cached']['latency_ms']['p99']} ms, for private addresses, no lookup "
        f"(bench/pgbench_floor_nolookup.sql) p99 {r['pgbench_floor_nolookup']['latency_ms']['p99']} ms",
        pb["latency_ms"]["p99"] <= 0.05)
    m = r["memory"]
    g = m["private_growth_kb"]
    add("private memory per backend for all of this", "(1.25 MiB cache)",
        f"{g['max'] / 1024:.2f} MiB (max of {m['backends']}; median {g['median'] / 1024:.2f}); "
        f"mapped files {m['pss_sum_vs_files']}x their size in PSS over all", "≤ 4 MiB, shared part in PSS",
        f"one Python worker: RSS {m['python_worker']['vm_rss_kb'] / 1024:.1f} MiB", g["max"] <= 4096)
    return out


def verdict_report(v):
    L = ["### Live consumer: pgbench, one `ip_verdict` per transaction (`-M prepared`)", "",
         f"bench/pgbench_verdict.sql: two in three addresses from the inventory ({v['known_addresses']:,} "
         "addresses, half fresh from every source, half stale and so queued), one in three never seen (answered "
         f"from MaxMind and queued while the queue has room; {v['queue_after']:,} queued at the end). "
         "docs/verdict.md.", "",
         "| clients | TPS | p50 | p90 | p99 | max | failed |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for pb in v["pgbench"]:
        lat = pb["latency_ms"]
        L.append(f"| {pb['clients']} | {pb['tps']:,} | {lat['p50']} ms | {lat['p90']} ms | {lat['p99']} ms | "
                 f"{lat['max']} ms | {pb['failed']} |")
    L.append("")
    return L


def goals(r):
    s = r["serial"]["uniform"]
    k = r["serial"]["skewed"]
    en = "enrich_ip (FROM t, LATERAL enrich_ip(ip) e)"
    ip4r_en = "ip4r GiST join, City + ASN (peer of enrich_ip)"
    geo = r["python"]["uniform"]["geoip2_city"]["rows_per_second"]
    out = []

    def add(goal, value, met):
        out.append({"goal": goal, "measured": value, "met": bool(met)})

    for acc in ("ip_country", "ip_asn"):
        add(f"`{acc}` ≥ 2M rows/s per core (uniform / skewed)",
            f"{fmt_rate(s[acc]['rows_per_second'])} / {fmt_rate(k[acc]['rows_per_second'])}",
            s[acc]["rows_per_second"] >= 2e6)
    add("`enrich_ip` ≥ 700K rows/s per core (uniform / skewed)",
        f"{fmt_rate(s[en]['rows_per_second'])} / {fmt_rate(k[en]['rows_per_second'])}",
        s[en]["rows_per_second"] >= 7e5)
    ratio = s[en]["rows_per_second"] / s[ip4r_en]["rows_per_second"]
    add("`enrich_ip` ≥ 50x the ip4r join", f"{ratio:.1f}x", ratio >= 50)
    ratio = s[en]["rows_per_second"] / geo
    add("`enrich_ip` ≥ 40x Python geoip2", f"{ratio:.1f}x", ratio >= 40)
    p = r["parallel"]["uniform"][en]
    speedup = s[en]["seconds"] / p["seconds"]
    add("parallel query scales (2 workers)", f"{speedup:.2f}x for enrich_ip", speedup >= 1.5)
    e = r["backfill"]["enrich_pending"]
    add("backfill of 1M inventory rows ≤ 10 s", f"{e['seconds']} s", e["seconds"] <= 10)
    e = r["backfill"]["re_enrich"]
    add("re-enrichment of 1M rows after an update ≤ 10 s", f"{e['seconds']} s", e["seconds"] <= 10)
    ing = r["ingest"]["one_copy"]["ratio"]
    add("COPY with the trigger ≤ 1.25x without", f"{ing}x", ing <= 1.25)
    pb = [x for x in r["pgbench"] if x["clients"] == 32][0]
    add("pgbench 32 clients: p99 < 1 ms", f"{pb['latency_ms']['p99']} ms at {pb['tps']:,} TPS", pb["latency_ms"]["p99"] < 1)
    add("mmdb PSS of 20 backends < 1.1x the files", f"{r['memory']['pss_sum_vs_files']}x", r["memory"]["pss_sum_vs_files"] < 1.1)
    cy = r["cymru"]["addresses_per_second"]
    add("Team Cymru refresh ≥ 5K IPs/s", fmt_rate(cy), cy >= 5000)
    return out


def update_docs(markdown):
    path = os.path.join(ROOT, "docs/benchmarks.md")
    begin, end = "<!-- bench:begin (generated by make bench) -->", "<!-- bench:end -->"
    if not os.path.exists(path):
        return
    text = open(path).read()
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        with open(path, "w") as f:
            f.write(head + begin + "\n" + markdown + end + tail)


def verdict_only():
    """IPI_BENCH_ONLY=verdict: the verdict measurement alone, on an inventory of DISTINCT
    random public addresses added as cascade_refresh_now() adds them (MaxMind-enriched);
    writes IPI_BENCH_DIR/verdict.{json,md} and leaves docs/ alone."""
    results["machine"] = machine()
    with connect() as c:
        c.execute("TRUNCATE ip_inventory")
        c.execute("SELECT setseed(0.2026)")
        c.execute(f"""SELECT _ip_inventory_add(ARRAY(
            SELECT DISTINCT ip FROM (SELECT '0.0.0.0'::inet + (random() * 4294967295)::bigint AS ip
                                     FROM generate_series(1, {DISTINCT * 2})) s
            WHERE ip_class(ip) = 'public' LIMIT {DISTINCT}))""")
        progress(1, f"ip_verdict, 32 and 2 clients, {PGBENCH_SECS} s each")
        results["verdict"] = verdict(c, PGBENCH_SECS)
    # The same runs of enrich_ip, for a reference taken under the same conditions.
    progress(2, f"enrich_ip, 32 and 2 clients, {PGBENCH_SECS} s each (reference)")
    try:
        results["pgbench"] = [pgbench(32, PGBENCH_SECS), pgbench(2, max(5, PGBENCH_SECS // 3))]
    except RuntimeError as e:
        # enrich_ip raises on a record its checks refuse (ip_verdict answers it with NULLs).
        print(e, file=sys.stderr)
        results["pgbench"] = []
    with open(os.path.join(WORK, "verdict.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    md = "\n".join(verdict_report(results["verdict"]) + [
        "Reference, the same pgbench runs of `bench/pgbench_enrich.sql` right after:", "",
        "| clients | TPS | p50 | p90 | p99 | max | failed |", "|---:|---:|---:|---:|---:|---:|---:|"] + [
        f"| {pb['clients']} | {pb['tps']:,} | {pb['latency_ms']['p50']} ms | {pb['latency_ms']['p90']} ms | "
        f"{pb['latency_ms']['p99']} ms | {pb['latency_ms']['max']} ms | {pb['failed']} |" for pb in results["pgbench"]])
    with open(os.path.join(WORK, "verdict.md"), "w") as f:
        f.write(md)
    print(md)


def main():
    os.makedirs(WORK, exist_ok=True)
    if os.environ.get("IPI_BENCH_ONLY") == "verdict":
        progress(0, "machine")
        verdict_only()
        return
    progress(0, "machine")
    results["machine"] = machine()
    with connect() as c:
        progress(1, f"data: {ROWS:,} uniform addresses, {ROWS:,} skewed events")
        results["data"] = make_data(c)
        progress(2, "ip4r range tables from the same databases")
        results["ip4r"] = city_ranges(c)
        sets = {"uniform": ("bench_uniform", "ip"), "skewed": ("bench_events", "src_ip")}
        progress(3, "per-row lookups, one core")
        results["serial"] = run_lookups(c, SERIAL, sets)
        results["lookup_floors"] = lookup_floors(c)
        progress(4, "per-row lookups, Python geoip2 / maxminddb")
        results["python"] = python_baseline()
        progress(5, "the Rust core alone")
        results["core_alone"] = core_alone()
        progress(6, "parallel query")
        results["parallel"] = run_lookups(c, PARALLEL, {"uniform": sets["uniform"]},
                                          names=["ip_country", "ip_asn", "enrich_ip (FROM t, LATERAL enrich_ip(ip) e)",
                                                 "ip4r GiST join, City + ASN (peer of enrich_ip)"])
        c.execute("RESET ALL")
        progress(7, "agreement with libmaxminddb, every uniform public address")
        results["agreement"] = agreement(c)
        progress(8, "backfill")
        results["backfill"] = backfill(c)
        progress(9, "ingest with and without the observe trigger")
        results["ingest"] = ingest(c)
    progress(10, f"pgbench, 32 and 2 clients, {PGBENCH_SECS} s each: enrich_ip, then ip_verdict")
    results["pgbench"] = [pgbench(32, PGBENCH_SECS), pgbench(2, max(5, PGBENCH_SECS // 3))]
    results["pgbench_floor"] = pgbench(2, max(5, PGBENCH_SECS // 3), "bench/pgbench_floor.sql")
    # The same enrich_ip transaction with every answer cached, and with no lookup at all.
    results["pgbench_floor_cached"] = pgbench(2, max(5, PGBENCH_SECS // 3), "bench/pgbench_floor_cached.sql",
                                              [f"ip={results['lookup_floors']['public_address']}"])
    results["pgbench_floor_nolookup"] = pgbench(2, max(5, PGBENCH_SECS // 3), "bench/pgbench_floor_nolookup.sql")
    with connect() as c:
        results["verdict"] = verdict(c, PGBENCH_SECS)
    progress(11, "memory of 20 backends and of one Python worker")
    results["memory"] = memory()
    with connect() as c:
        progress(12, "Team Cymru refresh")
        results["cymru"] = cymru(c, min(50_000, ROWS))
    results["goals"] = goals(results)
    results["goals_issue20"] = goals_issue20(results)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["total_seconds"] = round(time.monotonic() - STARTED)
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    md = report(results)
    with open(os.path.join(WORK, "results.md"), "w") as f:
        f.write(md)
    if ROWS == 1_000_000:
        update_docs(md)
        shutil.copy(os.path.join(WORK, "results.json"), os.path.join(ROOT, "docs/benchmarks.json"))
    print(md)


if __name__ == "__main__":
    main()
