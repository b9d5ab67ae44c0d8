#!/usr/bin/env python3
"""The fault and load run: attacks a live cluster the way production will and checks that
nothing crashes, hangs, leaks a secret or loses a row. Started by pg_tests/chaos.sh, which
provides the cluster (PGHOST, PGPORT, IPI_DATA, IPI_SERVER_LOG), the fixtures and the
loopback stand-ins for the network sources (IPI_FAKE_*).

Parts (IPI_CHAOS_ONLY selects some): corrupt, reload, swaps, crash, network, secrets, rules.
Each check is a case; a case fails when its assertion does not hold. The summary lists cases tried and
failed, crashes, and rows lost, and is also written to $IPI_SCRATCH/chaos.json.
"""
import glob
import hashlib
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

PGBIN = os.environ["IPI_PGBIN"]
FIXTURES = os.environ["IPI_FIXTURES"]
SCRATCH = os.environ["IPI_SCRATCH"]
DATA = os.environ["IPI_DATA"]
SERVER_LOG = os.environ["IPI_SERVER_LOG"]
AS_OWNER = os.environ.get("IPI_AS_OWNER", "").split()
TESTDATA = os.path.join(FIXTURES, "maxmind", "test-data")
CITY_A = os.path.join(TESTDATA, "GeoIP2-City-Test.mmdb")
CITY_B = os.path.join(TESTDATA, "GeoLite2-City-Test.mmdb")
ASN = os.path.join(TESTDATA, "GeoLite2-ASN-Test.mmdb")
LIVE_DIR = os.path.join(SCRATCH, "live")
LIVE_CITY = os.path.join(LIVE_DIR, "city.mmdb")
DB = "chaos"
ONLY = os.environ.get("IPI_CHAOS_ONLY", "").split()
RNG = random.Random(20261121)

RESULTS = {}  # part -> {"tried": n, "failed": [messages], "figures": {...}}
KILLS = {"sigkill": 0, "immediate": 0}


def log(msg):
    print(f"[chaos] {msg}", flush=True)


def case(part, ok, what):
    r = RESULTS.setdefault(part, {"tried": 0, "failed": [], "figures": {}})
    r["tried"] += 1
    if not ok:
        r["failed"].append(what)
        log(f"FAIL {part}: {what}")
    return ok


def figure(part, key, value):
    RESULTS.setdefault(part, {"tried": 0, "failed": [], "figures": {}})["figures"][key] = value


def psql(sql, db=DB, user=None, check=True, timeout=600, env=None):
    """Runs SQL through psql; returns stdout (unaligned, tuples only) or raises."""
    cmd = [f"{PGBIN}/psql", "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1", "-d", db]
    if user:
        cmd += ["-U", user]
    e = dict(os.environ, PGOPTIONS="-c client_min_messages=error", **(env or {}))
    p = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout, env=e)
    if check and p.returncode != 0:
        raise RuntimeError(f"psql failed ({p.returncode}): {p.stderr.strip()}\n--- SQL:\n{sql[:2000]}")
    return p.stdout.strip() if check else (p.returncode, p.stdout.strip(), p.stderr.strip())


def one(sql, check=True, **kw):
    """The last line of the output; with check=False, None when psql fails."""
    out = psql(sql, check=check, **kw)
    if not check:
        rc, stdout, _ = out
        return stdout.split("\n")[-1] if rc == 0 else None
    return out.split("\n")[-1]


def pg_ctl(*args):
    cmd = AS_OWNER + ["env", "-u", "RUST_BACKTRACE", f"{PGBIN}/pg_ctl", "-D", DATA, "-l", SERVER_LOG,
                      "-w", "-t", "120", *args]
    subprocess.run(cmd, check=True, capture_output=True)


def wait_ready(limit=120):
    """Waits until the server accepts connections again (after a crash and recovery)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        p = subprocess.run([f"{PGBIN}/psql", "-X", "-At", "-d", "postgres", "-c", "SELECT 1"],
                           capture_output=True, text=True)
        if p.returncode == 0:
            return True
        time.sleep(0.2)
    return False


def set_system(**settings):
    sql = "".join(f"ALTER SYSTEM SET ip_inventory.{k} = '{v}';\n" for k, v in settings.items())
    # pg_reload_conf() only signals the postmaster; sessions started right after it may
    # still get the old values.
    psql(sql + "SELECT pg_reload_conf(); SELECT pg_sleep(0.3);", db="postgres")


def place(src, dest=LIVE_CITY):
    """Puts a file (or a directory, or nothing) at dest by atomic rename, as an update would."""
    if os.path.isdir(dest) and not os.path.islink(dest):
        shutil.rmtree(dest)
    if src is None:
        if os.path.exists(dest):
            os.remove(dest)
        return
    if src == "<directory>":
        if os.path.exists(dest):
            os.remove(dest)
        os.mkdir(dest)
        return
    tmp = dest + ".new"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o644)
    os.rename(tmp, dest)


def setup():
    os.makedirs(LIVE_DIR, exist_ok=True)
    os.chmod(LIVE_DIR, 0o777)
    place(CITY_A)
    psql(f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB};", db="postgres")
    set_system(city_db=LIVE_CITY, asn_db=ASN, file_check_interval=0)
    psql("""
CREATE EXTENSION ip_inventory;
CREATE FUNCTION try(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE state text; message text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
    RETURN state || ': ' || message;
END $$;
GRANT EXECUTE ON FUNCTION try(text) TO PUBLIC;
""")


# ---- corrupt databases ---------------------------------------------------------------------

def corrupt_files():
    """(label, path or marker) for every hostile file: the bad-data corpus, the broken and DoS
    files of test-data, and generated ones."""
    gen = os.path.join(SCRATCH, "generated")
    os.makedirs(gen, exist_ok=True)
    files = [(os.path.relpath(p, FIXTURES), p)
             for p in sorted(glob.glob(os.path.join(FIXTURES, "maxmind", "bad-data", "**", "*.mmdb"), recursive=True))]
    for p in sorted(glob.glob(os.path.join(TESTDATA, "*.mmdb"))):
        if re.search(r"(?i)broken|invalid|dos|limit-over|pointer-heavy", os.path.basename(p)):
            files.append((os.path.relpath(p, FIXTURES), p))
    city = open(CITY_A, "rb").read()
    for i in range(20):
        cut = RNG.randrange(1, len(city))
        path = os.path.join(gen, f"truncated-{cut}.mmdb")
        open(path, "wb").write(city[:cut])
        files.append((f"City truncated at byte {cut} of {len(city)}", path))
    for size in (0, 1, 17, 4096, 100_000, 1_000_000):
        path = os.path.join(gen, f"random-{size}.mmdb")
        open(path, "wb").write(RNG.randbytes(size))
        files.append(("zero-length file" if size == 0 else f"{size} random bytes", path))
    # The metadata marker followed by garbage: passes the first check, fails the decoder.
    path = os.path.join(gen, "marker-then-garbage.mmdb")
    open(path, "wb").write(RNG.randbytes(5000) + b"\xab\xcd\xefMaxMind.com" + RNG.randbytes(300))
    files.append(("metadata marker then garbage", path))
    files.append(("an ASN database as City", ASN))
    files.append(("a Domain database as City", os.path.join(TESTDATA, "GeoIP2-Domain-Test.mmdb")))
    files.append(("a directory", "<directory>"))
    files.append(("no file at the path", None))
    noperm = os.path.join(gen, "no-permission.mmdb")
    shutil.copyfile(CITY_A, noperm)
    files.append(("a file the server may not read", noperm))
    return files


def bit_flipped():
    """Copies of the City database with random bytes changed: structurally they may still
    validate, so they are only looked up through, never required to be refused."""
    city = bytearray(open(CITY_A, "rb").read())
    out = []
    for i in range(10):
        b = bytearray(city)
        for _ in range(RNG.randrange(1, 40)):
            b[RNG.randrange(0, len(b))] = RNG.randrange(0, 256)
        path = os.path.join(SCRATCH, "generated", f"flipped-{i}.mmdb")
        open(path, "wb").write(b)
        out.append((f"City with random bytes changed #{i}", path))
    return out


def corrupt():
    part = "corrupt"
    good = one("SELECT ip_country('81.2.69.160')")
    case(part, good == "GB", f"the good database answers GB for 81.2.69.160, got {good!r}")
    files = corrupt_files()
    noperm = files[-1][1]
    for label, src in files:
        place(CITY_A)
        psql("SELECT maxmind_reload();")
        if src is None:
            swap = f"rm -f {LIVE_CITY}"
        elif src == "<directory>":
            swap = f"rm -f {LIVE_CITY} && mkdir {LIVE_CITY}"
        else:
            mode = "000" if src == noperm else "644"
            swap = f"cp -f {src} {LIVE_CITY}.new && chmod {mode} {LIVE_CITY}.new && mv -f {LIVE_CITY}.new {LIVE_CITY}"
        # One session: a good answer; the file swapped underneath; the reload refused; the
        # same session still answers from the reader it had.
        out = psql(f"""
SELECT 'before=' || coalesce(ip_country('81.2.69.160'), 'NULL');
\\! {swap}
SELECT 'reload=' || try($$SELECT maxmind_reload()$$);
SELECT 'after=' || coalesce(ip_country('81.2.69.160'), 'NULL');
SELECT 'enrich=' || try($$SELECT count(*) FROM generate_series(1, 2000) g, enrich_ip('1.0.0.0'::inet + g::bigint * 1000003) e$$);
SELECT 'info=' || status FROM maxmind_info() WHERE name = 'city';
""", check=False)
        res = dict(line.split("=", 1) for line in out[1].split("\n") if "=" in line) if out[0] == 0 else {}
        case(part, out[0] == 0, f"{label}: the session survived (psql exit {out[0]}: {out[2][:200]})")
        case(part, res.get("before") == "GB", f"{label}: the good database answered first, got {res.get('before')!r}")
        reload = res.get("reload", "")
        case(part, reload[:5] not in ("ok", "XX000") and re.match(r"^[0-9A-Z]{5}: ", reload) is not None,
             f"{label}: maxmind_reload() refused it with a clear error, got {reload!r}")
        case(part, res.get("after") == "GB", f"{label}: the session still answers from the last good reader, got {res.get('after')!r}")
        case(part, res.get("enrich") == "ok", f"{label}: 2000 lookups still answer, got {res.get('enrich')!r}")
        # A new session is answered from the verified copy last in service (with a warning),
        # never from the hostile file, never a crash or a silent NULL.
        fresh = one("SELECT try($$SELECT ip_country('81.2.69.160')$$) || ' ' || coalesce(ip_country('81.2.69.160'), 'NULL')",
                    check=False) or ""
        case(part, fresh == "ok GB", f"{label}: a new session answers from the last verified copy, got {fresh!r}")
    place(CITY_A)
    ok = one("SELECT try($$SELECT maxmind_reload()$$)")
    case(part, ok == "ok", f"the good database is accepted again, got {ok!r}")

    # Lookups straight through every hostile file (mmdb_lookup opens any path): each is an
    # answer or a clear error.
    ips = [str(ipaddress.ip_address(RNG.getrandbits(32))) for _ in range(150)] + \
          [str(ipaddress.ip_address(RNG.getrandbits(128))) for _ in range(50)] + ["81.2.69.160", "2001:218::1"]
    values = ",".join(f"('{ip}')" for ip in ips)
    lookups = 0
    for label, src in files + bit_flipped():
        if src is None or src == "<directory>":
            continue
        out = psql(f"""
SELECT count(*) || ' ' || count(*) FILTER (WHERE r = 'ok') || ' ' || count(*) FILTER (WHERE r LIKE 'XX000%')
FROM (SELECT try(format('SELECT mmdb_lookup(%L, %L)', '{src}', ip)) AS r FROM (VALUES {values}) AS v(ip)) s;
""", check=False)
        alive = out[0] == 0
        case(part, alive, f"{label}: {len(ips)} lookups through mmdb_lookup, session survived ({out[2][:200]})")
        if alive:
            n, answered, internal = map(int, out[1].split())
            lookups += n
            case(part, internal == 0, f"{label}: no internal errors (XX000) among {n} lookups, got {internal}")
    figure(part, "hostile_files", len(files))
    figure(part, "direct_lookups", lookups)
    damaged_predecoded()


def damaged_predecoded():
    """The pre-decoded City records in the store damaged between sessions (as only the server's
    own account could): a file whose header does not check out is built again, one whose
    entries or IPv4 country map were changed answers or falls back, never a crash or an
    internal error. enrich_ip reads the entries, ip_country the map."""
    part = "corrupt"
    if os.getuid() not in (0, os.stat(DATA).st_uid):
        log("pre-decoded: skipped, the data directory is neither ours nor are we root")
        return
    place(CITY_A)
    psql("SELECT maxmind_reload();")
    digest = hashlib.sha256(open(CITY_A, "rb").read()).hexdigest()
    path = os.path.join(DATA, "ip_inventory", f"{digest}.city-en.decoded")
    query = ("SELECT md5(string_agg(to_jsonb(e)::text || coalesce(ip_country(a.ip), '-'), ',' ORDER BY a.g)) "
             "FROM (SELECT g, '1.0.0.0'::inet + g::bigint * 1000003 AS ip FROM generate_series(1, 3000) g) a, "
             "enrich_ip(a.ip) e")
    one(query)  # builds the file if no session did yet
    case(part, os.path.isfile(path), f"pre-decoded: the City records are in {os.path.basename(path)}")
    good = one(f"SET ip_inventory.predecoded_city = off; {query}")
    case(part, one(query) == good, "pre-decoded: answers equal decoding the records")
    intact = open(path, "rb").read()
    variants = [("truncated to half", intact[:len(intact) // 2], True),
                ("empty", b"", True),
                ("random bytes", RNG.randbytes(len(intact)), True),
                ("another copy's header", intact[:28] + bytes(32) + intact[60:], True)]
    for i in range(6):
        b = bytearray(intact)
        for _ in range(RNG.randrange(1, 200)):
            b[RNG.randrange(120, len(b))] = RNG.randrange(0, 256)
        variants.append((f"entries changed #{i}", bytes(b), False))
    for label, data, rebuilt in variants:
        os.remove(path)
        open(path, "wb").write(data)
        if os.getuid() == 0:
            shutil.chown(path, "postgres", "postgres")
        out = psql(f"SELECT 'answers=' || try($${query}$$); {query}", check=False)
        case(part, out[0] == 0, f"pre-decoded, {label}: the session survived ({out[2][:200]})")
        lines = out[1].split("\n") if out[0] == 0 else ["", ""]
        case(part, lines[0] == "answers=ok", f"pre-decoded, {label}: enrich_ip and ip_country answer, got {lines[0]!r}")
        if rebuilt:
            case(part, lines[-1] == good, f"pre-decoded, {label}: built again, the same answers")
            case(part, open(path, "rb").read() == intact, f"pre-decoded, {label}: the file was built again")
    os.remove(path)


# ---- reload under load ---------------------------------------------------------------------

def sample_addresses():
    """The first address of every network in both City test databases' source data."""
    nets = []
    for name in ("GeoIP2-City-Test.json", "GeoLite2-City-Test.json"):
        for record in json.load(open(os.path.join(FIXTURES, "maxmind", "source-data", name))):
            for net in record:
                nets.append(net)
    addrs = sorted({str(ipaddress.ip_network(n, strict=False).network_address) for n in nets})
    # A generator of its own: the sample must not depend on how much randomness the parts
    # before it drew (the size of a file they damaged, say). 2001:480:10:: lies in a /48 of
    # one database and a /43 of the other, so the two always differ on some probe.
    random.Random(20261201).shuffle(addrs)
    return addrs[:60] + ["81.2.69.160", "175.16.199.0", "2001:218::", "1.2.3.4", "2001:480:10::"]


def with_other_build(path):
    """A copy of a database whose metadata says another build time (MaxMind's two City test
    databases share one): the last byte of build_epoch's value is changed, lengths stay."""
    data = bytearray(open(path, "rb").read())
    at = data.rfind(b"build_epoch") + len(b"build_epoch")
    ctrl = data[at]
    size = ctrl & 0x1F
    start = at + 2 if ctrl >> 5 == 0 else at + 1  # extended types (uint64) take a second byte
    data[start + size - 1] ^= 0x55
    out = os.path.join(SCRATCH, "generated", "other-build-" + os.path.basename(path))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    open(out, "wb").write(data)
    return out


def prepare_answers(part):
    """Probe addresses and the answers both City databases give for them (tables probe and
    expected), and check_answers(), which fails on any answer neither database gives."""
    addrs = sample_addresses()
    city_b = with_other_build(CITY_B)
    values = ",".join(f"('{a}')" for a in addrs)
    # The answer each database gives, keyed by its build time.
    psql(f"""
DROP TABLE IF EXISTS probe, expected, seen;
CREATE TABLE probe (ip inet PRIMARY KEY);
INSERT INTO probe VALUES {values} ON CONFLICT DO NOTHING;
CREATE TABLE expected (build timestamptz, ip inet, answer text);
CREATE TABLE seen (build timestamptz);
CREATE OR REPLACE FUNCTION answer(e ip_enrichment) RETURNS text LANGUAGE sql IMMUTABLE
RETURN (e.country_code, e.country_name, e.city, e.subdivision_name, e.latitude, e.longitude,
        e.network, e.asn, e.asn_org, e.continent_code, e.postal_code, e.time_zone)::text;
-- Every probe address looked up once; each answer must be exactly what the database named by
-- its build time answers: never a mix of two, never garbage.
CREATE OR REPLACE FUNCTION check_answers() RETURNS int LANGUAGE plpgsql AS $$
DECLARE r record; n int := 0; b timestamptz;
BEGIN
    FOR r IN SELECT p.ip, e.maxmind_build, answer(e) AS a FROM probe p, enrich_ip(p.ip) e LOOP
        IF NOT EXISTS (SELECT FROM expected x WHERE x.build = r.maxmind_build AND x.ip = r.ip AND x.answer IS NOT DISTINCT FROM r.a) THEN
            RAISE EXCEPTION 'answer for % from build % matches no database: %', r.ip, r.maxmind_build, r.a;
        END IF;
        b := r.maxmind_build;
        n := n + 1;
    END LOOP;
    INSERT INTO seen VALUES (b);
    RETURN n;
END $$;
""")
    for src in (CITY_A, city_b):
        place(src)
        psql("SELECT maxmind_reload();")
        psql("INSERT INTO expected SELECT e.maxmind_build, p.ip, answer(e) FROM probe p, enrich_ip(p.ip) e;")
    # Only addresses both databases answer for: a not-found answer names no build.
    psql("DELETE FROM probe WHERE ip IN (SELECT ip FROM expected WHERE build IS NULL); "
         "DELETE FROM expected WHERE ip NOT IN (SELECT ip FROM probe);")
    addrs = psql("SELECT host(ip) FROM probe").split("\n")
    differ = int(one("SELECT count(*) FROM (SELECT ip FROM expected GROUP BY ip HAVING count(DISTINCT answer) > 1) s"))
    builds = int(one("SELECT count(DISTINCT build) FROM expected"))
    case(part, builds == 2 and differ > 0,
         f"the two City databases have distinct builds ({builds}) and differ on some probes ({differ})")
    figure(part, "probe_addresses", len(addrs))
    figure(part, "probes_that_differ", differ)
    return addrs, city_b


def reload_under_load(clients=16, swaps=50):
    part = "reload"
    addrs, city_b = prepare_answers(part)
    place(CITY_A)
    psql("SELECT maxmind_reload();")
    city = open(CITY_A, "rb").read()
    bad = os.path.join(SCRATCH, "generated", "reload-bad.mmdb")
    os.makedirs(os.path.dirname(bad), exist_ok=True)
    script = os.path.join(SCRATCH, "check.sql")
    open(script, "w").write("SELECT check_answers();\n")
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=error")
    bench = subprocess.Popen([f"{PGBIN}/pgbench", "-n", "-c", str(clients), "-j", "2", "-T", "40",
                              "-f", script, DB], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(2)
    accepted = refused = wrong = 0
    for i in range(swaps):
        if i % 2 == 0:
            place(city_b if i % 4 == 0 else CITY_A)
            r = one("SELECT try($$SELECT maxmind_reload()$$)")
            accepted += r == "ok"
            wrong += r != "ok"
        else:
            cut = RNG.randrange(1, len(city))
            open(bad, "wb").write(city[:cut] if i % 3 else RNG.randbytes(cut % 5000))
            place(bad)
            r = one("SELECT try($$SELECT maxmind_reload()$$)")
            refused += r != "ok"
            wrong += r == "ok"
        time.sleep(0.25)
    # pgbench runs its 40 s and prints its report (it has none when interrupted).
    try:
        out, err = bench.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        bench.kill()
        out, err = bench.communicate()
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    processed = int(processed.group(1)) if processed else 0
    failed = int(failed.group(1)) if failed else -1
    aborted = "aborted" in err or "aborted" in out
    case(part, accepted == swaps // 2 and refused == swaps // 2 and wrong == 0,
         f"{swaps} swaps: {accepted} valid accepted, {refused} invalid refused, {wrong} wrong")
    case(part, processed > 0 and failed == 0 and not aborted,
         f"pgbench {clients} clients: {processed} transactions, {failed} failed, aborted clients: {aborted}; "
         f"stderr: {err.strip()[-500:]}")
    builds_seen = one("SELECT count(DISTINCT build) FROM seen")
    case(part, builds_seen == "2", f"answers came from both databases during the run ({builds_seen} builds seen)")
    figure(part, "clients", clients)
    figure(part, "swaps", swaps)
    figure(part, "transactions", processed)
    figure(part, "answers_checked", processed * len(addrs))
    figure(part, "failed_transactions", failed)
    place(CITY_A)
    psql("SELECT maxmind_reload();")


# ---- files swapped, rewritten and replaced under load ---------------------------------------

def hostile_variants(src):
    """Files shaped like the City database but broken: 64 KiB (or a third) of garbage in the
    middle of the data section, truncated, and random bytes of the same length."""
    data = open(src, "rb").read()
    gen = os.path.join(SCRATCH, "generated")
    os.makedirs(gen, exist_ok=True)
    middle = bytearray(data)
    span = min(65536, len(data) // 3)
    start = len(data) // 2 - span // 2
    middle[start:start + span] = RNG.randbytes(span)
    variants = {"corrupted in the middle": bytes(middle), "truncated": data[: len(data) * 2 // 3],
                "garbage of the same size": RNG.randbytes(len(data))}
    out = []
    for label, content in variants.items():
        path = os.path.join(gen, "variant-" + label.replace(" ", "-") + ".mmdb")
        open(path, "wb").write(content)
        out.append((label, path))
    return out


def rewrite_in_place(src, dest=LIVE_CITY):
    """Overwrites the live file in place (same inode), as a careless copy would."""
    with open(src, "rb") as f, open(dest, "r+b") as g:
        g.truncate(0)
        g.write(f.read())


def swaps(clients=8):
    """Clients check every answer they get against what the database in service answers while
    the live file is replaced by broken files (by rename and in place, truncated while mapped
    elsewhere before), a FIFO, a directory and a symlink loop, with and without
    maxmind_reload(); backends notice changes at every statement (file_check_interval = 0)."""
    part = "swaps"
    prepare_answers(part)
    place(CITY_A)
    psql("SELECT maxmind_reload();")
    script = os.path.join(SCRATCH, "check.sql")
    open(script, "w").write("SELECT check_answers();\n")
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=error")
    bench = subprocess.Popen([f"{PGBIN}/pgbench", "-n", "-c", str(clients), "-j", "2", "-T", "30",
                              "-f", script, DB], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(1)
    steps = []
    for label, path in hostile_variants(CITY_A):
        steps.append((f"{label}, by rename", lambda p=path: place(p)))
        steps.append((f"{label}, in place", lambda p=path: rewrite_in_place(p)))
    steps.append(("truncated in place to 100 bytes", lambda: os.truncate(LIVE_CITY, 100)))
    steps.append(("emptied in place", lambda: os.truncate(LIVE_CITY, 0)))

    def fifo():
        os.remove(LIVE_CITY)
        os.mkfifo(LIVE_CITY, 0o644)

    def symlink_loop():
        os.remove(LIVE_CITY)
        os.symlink(LIVE_CITY + ".loop", LIVE_CITY)
        if os.path.lexists(LIVE_CITY + ".loop"):
            os.remove(LIVE_CITY + ".loop")
        os.symlink(LIVE_CITY, LIVE_CITY + ".loop")

    steps.append(("a FIFO", fifo))
    steps.append(("a symlink loop", symlink_loop))
    steps.append(("a directory", lambda: place("<directory>")))
    refused = 0
    for label, change in steps:
        for reload in (False, True):
            if os.path.lexists(LIVE_CITY + ".loop"):
                os.remove(LIVE_CITY + ".loop")
            if os.path.isdir(LIVE_CITY) and not os.path.islink(LIVE_CITY):
                shutil.rmtree(LIVE_CITY)
            elif os.path.lexists(LIVE_CITY):
                os.remove(LIVE_CITY)
            place(CITY_A)
            time.sleep(0.3)
            change()
            time.sleep(0.5)
            if reload:
                r = one("SELECT try($$SELECT maxmind_reload()$$)")
                ok = re.match(r"^[0-9A-Z]{5}: ", r) is not None and not r.startswith("XX000")
                refused += ok
                case(part, ok, f"{label}: maxmind_reload() refused it with a clear error, got {r!r}")
            # A session that queries meanwhile is answered from the verified copy in service,
            # and a long one can be cancelled.
            r = one("SELECT try($$SELECT count(ip_country('81.2.69.160')) FROM generate_series(1, 100)$$)")
            case(part, r == "ok", f"{label}{' + reload' if reload else ''}: a session still answers, got {r!r}")
            long = subprocess.Popen([f"{PGBIN}/psql", "-X", "-q", "-At", "-d", DB, "-c",
                                     "SET application_name = 'chaos_long'; SELECT try_cancel($$SELECT count(ip_country(('1.0.0.0'::inet + g))) FROM generate_series(1, 100000000) g$$)"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            time.sleep(0.4)
            t0 = time.monotonic()
            psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'chaos_long';", check=False)
            try:
                out, _ = long.communicate(timeout=15)
                took = time.monotonic() - t0
                case(part, out.strip().startswith("57014"), f"{label}: pg_cancel_backend stops a lookup loop ({took:.2f} s): {out.strip()!r}")
            except subprocess.TimeoutExpired:
                long.kill()
                case(part, False, f"{label}: a cancelled lookup loop did not stop within 15 s")
    if os.path.lexists(LIVE_CITY + ".loop"):
        os.remove(LIVE_CITY + ".loop")
    if os.path.isdir(LIVE_CITY) and not os.path.islink(LIVE_CITY):
        shutil.rmtree(LIVE_CITY)
    elif os.path.lexists(LIVE_CITY):
        os.remove(LIVE_CITY)
    place(CITY_A)
    try:
        out, err = bench.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        bench.kill()
        out, err = bench.communicate()
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    processed = int(processed.group(1)) if processed else 0
    failed = int(failed.group(1)) if failed else -1
    aborted = "aborted" in err or "aborted" in out
    case(part, processed > 0 and failed == 0 and not aborted,
         f"pgbench {clients} clients checking every answer: {processed} transactions, {failed} failed, "
         f"aborted: {aborted}; stderr: {err.strip()[-500:]}")
    figure(part, "changes", len(steps) * 2)
    figure(part, "reloads_refused", refused)
    figure(part, "transactions", processed)
    figure(part, "failed_transactions", failed)
    psql("SELECT maxmind_reload();")


# ---- crashes during jobs -------------------------------------------------------------------

def crash_recover(how):
    """Kills the running job's backend (kill -9: the postmaster restarts every backend and
    recovers) or stops the server with -m immediate and starts it again."""
    if how == "sigkill":
        KILLS["sigkill"] += 1
    else:
        pg_ctl("stop", "-m", "immediate")
        KILLS["immediate"] += 1
        pg_ctl("start")
    return wait_ready()


def kill9(pid):
    """kill -9 of a backend, then waits for the postmaster to have noticed (it ends every
    backend and reinitializes) before crash_recover() probes: a probe answered by a backend
    that is about to be ended would pass for a recovered server (a race PostgreSQL 18 hits)."""
    start = os.path.getsize(SERVER_LOG)
    os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with open(SERVER_LOG, errors="replace") as f:
            f.seek(start)
            if "all server processes terminated; reinitializing" in f.read():
                return
        time.sleep(0.1)


def run_until(sql, progress_sql, threshold, how):
    """Starts sql in its own session, waits until progress_sql reaches threshold, then
    crashes it. Returns whether the job was really interrupted."""
    p = subprocess.Popen([f"{PGBIN}/psql", "-X", "-q", "-d", DB, "-c", sql],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PGOPTIONS="-c client_min_messages=error", PGAPPNAME="chaos-victim"))
    end = time.monotonic() + 120
    pid = None
    while time.monotonic() < end and p.poll() is None:
        row = one(progress_sql, check=False)
        if row and "|" in row:
            done, victim = row.split("|")
            if done and float(done) >= threshold:
                pid = int(victim)
                break
        time.sleep(0.05)
    if pid is None:
        p.kill()
        return False
    if how == "sigkill":
        kill9(pid)
    crash_recover(how)
    p.communicate(timeout=60)
    return p.returncode != 0


EVENTS_TRUTH = """
SELECT ip_canonical(v.ip) AS ip, count(*) AS n, min(v.ts) AS first_seen, max(v.ts) AS last_seen
FROM ev CROSS JOIN LATERAL (VALUES (ev.src_ip, ev.ts), (ev.dst_ip, ev.ts)) AS v(ip, ts)
WHERE v.ip IS NOT NULL GROUP BY 1
"""


def inventory_matches_events(part, label):
    """The inventory equals the events' own aggregate: no address lost, none counted twice."""
    diff = one(f"""
WITH truth AS ({EVENTS_TRUTH})
SELECT (SELECT count(*) FROM (SELECT ip, n, first_seen, last_seen FROM truth
                              EXCEPT SELECT ip_address, observation_count, first_seen_at, last_seen_at FROM ip_inventory) a)
     + (SELECT count(*) FROM (SELECT ip_address, observation_count, first_seen_at, last_seen_at FROM ip_inventory
                              EXCEPT SELECT ip, n, first_seen, last_seen FROM truth) b)
""")
    totals = one(f"WITH truth AS ({EVENTS_TRUTH}) SELECT (SELECT sum(n) FROM truth) || ' ' || coalesce((SELECT sum(observation_count) FROM ip_inventory), 0)")
    events_obs, inv_obs = map(int, totals.split())
    case(part, diff == "0", f"{label}: inventory rows differing from the events: {diff} "
                            f"(observations: events {events_obs}, inventory {inv_obs})")
    return events_obs - inv_obs


def crash():
    part = "crash"
    n = 200_000
    psql(f"""
DROP TABLE IF EXISTS ev;
SELECT setseed(0.7);
CREATE TABLE ev (id bigint, ts timestamptz, src_ip inet, dst_ip inet);
INSERT INTO ev
SELECT g, timestamptz '2026-11-01' + g * interval '1 second',
       CASE WHEN g % 501 = 0 THEN NULL
            WHEN g % 7 = 0 THEN ('::ffff:81.2.69.' || (g % 250))::inet
            WHEN g % 11 = 0 THEN ('2001:218::' || to_hex(g % 3000))::inet
            ELSE '1.0.0.0'::inet + (floor(exp(random() * ln(30000))))::bigint * 104729 END,
       CASE WHEN g % 3 = 0 THEN '10.0.0.' || (g % 200) END::inet
FROM generate_series(1, {n}) g;
""")
    lost = 0
    for how in ("sigkill", "immediate"):
        psql("TRUNCATE ip_inventory, ip_inventory_jobs;")
        interrupted = run_until(
            "CALL ip_inventory_backfill('ev', ARRAY['src_ip', 'dst_ip'], 'ts', 2000)",
            "SELECT done_rows::float / greatest(total_rows, 1) || '|' || running_pid FROM ip_inventory_progress "
            "WHERE job LIKE 'backfill%' AND running_pid IS NOT NULL",
            0.3, how)
        case(part, interrupted, f"backfill interrupted by {how} at ~30%")
        status = one("SELECT status || ' ' || done_rows FROM ip_inventory_progress WHERE job LIKE 'backfill%'")
        case(part, status.startswith("interrupted"), f"after {how}, the job shows as interrupted: {status!r}")
        psql("CALL ip_inventory_backfill('ev', ARRAY['src_ip', 'dst_ip'], 'ts', 2000)")
        status = one("SELECT status FROM ip_inventory_progress WHERE job LIKE 'backfill%'")
        case(part, status == "finished", f"the rerun after {how} finished: {status!r}")
        lost += abs(inventory_matches_events(part, f"backfill after {how}"))

    # enrich_pending: every row pending (as after a database update), killed at ~30%.
    before = one("SELECT count(*) || ' ' || sum(observation_count) FROM ip_inventory")
    psql("UPDATE ip_inventory SET maxmind_build = maxmind_build - interval '7 days' WHERE maxmind_build IS NOT NULL")
    interrupted = run_until(
        "CALL ip_inventory_enrich_pending(200)",
        "SELECT done_rows::float / greatest(total_rows, 1) || '|' || running_pid FROM ip_inventory_progress "
        "WHERE job = 'enrich_pending' AND running_pid IS NOT NULL",
        0.3, "sigkill")
    case(part, interrupted, "enrich_pending interrupted by kill -9 at ~30%")
    psql("CALL ip_inventory_enrich_pending(200)")
    after = one("SELECT count(*) || ' ' || sum(observation_count) FROM ip_inventory")
    case(part, before == after, f"enrich_pending after kill -9: rows and observations unchanged ({before} -> {after})")
    wrong = one("""SELECT count(*) FROM ip_inventory i, enrich_ip(i.ip_address) e
                   WHERE i.ip_class = 'public' AND (i.maxmind_build IS DISTINCT FROM e.maxmind_build
                         OR i.geo_country IS DISTINCT FROM e.country_code OR i.asn_number IS DISTINCT FROM e.asn)""")
    case(part, wrong == "0", f"enrich_pending after kill -9: rows not matching enrich_ip now: {wrong}")
    lost += abs(inventory_matches_events(part, "after enrich_pending"))

    # Ingest: a COPY with the trigger killed midway; the events and their observations roll
    # back together.
    psql("""
TRUNCATE ip_inventory, ip_inventory_jobs;
DROP TABLE IF EXISTS ev_load;
CREATE TABLE ev_load AS SELECT * FROM ev;
TRUNCATE ev;
SELECT ip_inventory_attach('ev', ARRAY['src_ip', 'dst_ip'], 'ts');
INSERT INTO ev SELECT * FROM ev_load WHERE id <= 20000;
""")
    for _ in range(3):
        p = subprocess.Popen([f"{PGBIN}/psql", "-X", "-q", "-d", DB, "-c",
                              "INSERT INTO ev SELECT ev_load.* FROM ev_load, generate_series(1, 3) WHERE id > 20000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PGAPPNAME="chaos-victim"))
        # Waits for the INSERT to have run half a second (a fixed sleep missed it on a loaded
        # machine, where psql had not started it yet).
        victim, deadline = "", time.monotonic() + 30
        while not victim and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.1)
            victim = one("SELECT pid FROM pg_stat_activity WHERE application_name = 'chaos-victim' "
                         "AND state = 'active' AND clock_timestamp() - query_start > interval '0.5 seconds'")
        if victim:
            kill9(int(victim))
            crash_recover("sigkill")
        p.communicate(timeout=60)
        case(part, p.returncode != 0 and victim != "", "an ingest INSERT with the trigger was killed midway")
    lost += abs(inventory_matches_events(part, "ingest after 3 kills"))

    # A Team Cymru refresh killed while it waits on a slow source: nothing half-written.
    psql("TRUNCATE ev; TRUNCATE ip_inventory; INSERT INTO ev SELECT g, now(), ('5.5.' || g / 256 || '.' || g % 256)::inet FROM generate_series(1, 300) g;")
    set_system(cymru_whois_server=os.environ["IPI_FAKE_WHOIS"], cymru_batch_size=10, cymru_timeout="5s")
    subprocess.run(os.environ["IPI_FAKE_CTL"].split() + ["delay", os.environ["IPI_FAKE_DIR"], "whois", "200"], check=True)
    interrupted = run_until(
        "SELECT cascade_refresh('cymru', 300)",
        "SELECT '1|' || pid FROM pg_stat_activity WHERE application_name = 'chaos-victim' AND state = 'active'",
        1, "sigkill")
    case(part, interrupted, "a Team Cymru refresh killed while waiting on the source")
    half = one("SELECT count(*) FROM ip_inventory WHERE (cymru_ts IS NULL) <> (enrichment -> 'cymru' IS NULL)")
    case(part, half == "0", f"no half-written Team Cymru rows after kill -9: {half}")
    subprocess.run(os.environ["IPI_FAKE_CTL"].split() + ["reset", os.environ["IPI_FAKE_DIR"]], check=True)
    psql("SELECT cascade_refresh('cymru', 300)")
    due = one("SELECT count(*) FROM ip_inventory WHERE cymru_ts IS NULL")
    case(part, due == "0", f"the rerun refreshed every row ({due} still due)")
    lost += abs(inventory_matches_events(part, "after the killed refresh"))
    psql("SELECT ip_inventory_detach('ev');")
    figure(part, "rows_lost_or_double_counted", lost)
    figure(part, "kill_9", KILLS["sigkill"])
    figure(part, "immediate_shutdowns", KILLS["immediate"])


# ---- network faults ------------------------------------------------------------------------

def network():
    part = "network"
    ctl = os.environ["IPI_FAKE_CTL"].split()
    fake_dir = os.environ["IPI_FAKE_DIR"]
    subprocess.run(ctl + ["reset", fake_dir], check=True)
    set_system(cymru_whois_server=os.environ["IPI_FAKE_WHOIS"], dns_server=os.environ["IPI_FAKE_DNS"],
               greynoise_url=os.environ["IPI_FAKE_HTTP"], greynoise_api_key="env:IPI_FAKE_KEY",
               cymru_timeout="2s", greynoise_timeout="2s", dns_timeout="1s", cymru_batch_size=100,
               greynoise_daily_quota=100000, cymru_mode="whois")
    faults = {
        "cymru": ["66.66.66.1", "66.66.66.2", "66.66.66.3", "66.66.66.4", "66.66.66.5", "66.66.66.6"],
        "greynoise": ["77.77.77.1", "77.77.77.2", "77.77.77.3", "77.77.77.4", "77.77.77.6",
                      "77.77.77.7", "77.77.77.8", "77.77.77.9"],
        "rdns": ["77.77.77.1", "77.77.77.2", "77.77.77.4", "77.77.77.6"],  # .6: a spoofed answer
    }
    for source, ips in faults.items():
        psql("TRUNCATE ip_inventory, ip_inventory_failures; DROP TABLE IF EXISTS nev; CREATE TABLE nev (ts timestamptz, ip inet);"
             "SELECT ip_inventory_attach('nev', ARRAY['ip'], 'ts');"
             f"INSERT INTO nev SELECT now(), unnest(ARRAY[{','.join(repr(i) for i in ips)}, '8.8.8.8', '1.1.1.1']::inet[]);")
        # Whois answers the whole batch on one connection: one address per batch, so that
        # each fault hits only its own address.
        if source == "cymru":
            set_system(cymru_batch_size=1)
        start = time.monotonic()
        first = json.loads(one(f"SELECT cascade_refresh('{source}', 100)"))
        took = time.monotonic() - start
        failed = int(first.get("failed", 0)) + int(first.get("skipped", 0))
        recorded = one(f"SELECT count(*) FROM ip_inventory_failures WHERE source = '{source}'")
        case(part, failed == len(ips) and recorded == str(len(ips)),
             f"{source}: {len(ips)} faults recorded as failures (result {first}, {recorded} recorded)")
        errors = psql(f"SELECT host(ip_address) || ': ' || error FROM ip_inventory_failures WHERE source = '{source}' ORDER BY 1")
        figure(part, f"{source}_errors", errors.split("\n"))
        case(part, took < 120, f"{source}: the refresh with every fault returned ({took:.1f} s)")
        # Failed rows stay due and the next runs ask again. (Whois batches go one after the
        # other and a timeout marks the server unreachable for the rest of that run, so a
        # fault behind a timeout only fires in a later run.)
        runs, left = 1, recorded
        while left != "0" and runs < 6:
            again = json.loads(one(f"SELECT cascade_refresh('{source}', 100)"))
            runs += 1
            now_left = one(f"SELECT count(*) FROM ip_inventory_failures WHERE source = '{source}'")
            case(part, int(now_left) < int(left) and int(again["selected"]) == int(left),
                 f"{source}: run {runs} asked again about the {left} failed rows and fewer failed ({again})")
            left = now_left
        case(part, left == "0", f"{source}: every fault address answered within {runs} runs ({left} failures left)")
        figure(part, f"{source}_runs_until_clean", runs)
        if source == "cymru":
            set_system(cymru_batch_size=100)
        psql("SELECT ip_inventory_detach('nev');")

    # Cancellation while a source drips: statement_timeout stops each refresh promptly.
    for source, ip, setting in (("cymru", "66.66.66.4", "cymru_timeout"), ("greynoise", "77.77.77.6", "greynoise_timeout")):
        subprocess.run(ctl + ["reset", fake_dir], check=True)
        set_system(**{setting: "60s"})
        if source == "cymru":
            set_system(cymru_batch_size=1)
        psql("TRUNCATE ip_inventory, ip_inventory_failures; INSERT INTO ip_inventory (ip_address, first_seen_at, "
             f"last_seen_at, observation_count, ip_class, maxmind_ts) VALUES ('{ip}', now(), now(), 1, 'public', now());")
        start = time.monotonic()
        r = one(f"SET statement_timeout = '700ms'; SELECT try_cancel($$SELECT cascade_refresh('{source}', 10)$$);",
                check=False) or ""
        took = time.monotonic() - start
        case(part, r.startswith("57014") and took < 10,
             f"{source}: statement_timeout cancelled a refresh on a dripping source ({r!r}, {took:.1f} s)")
        due = one(f"SELECT count(*) FROM ip_inventory WHERE {source}_ts IS NULL")
        case(part, due == "1", f"{source}: the cancelled row stays due")
        set_system(**{setting: "2s"})
    set_system(cymru_batch_size=100)

    # Four GreyNoise refreshers at once never pass the daily quota.
    subprocess.run(ctl + ["reset", fake_dir], check=True)
    subprocess.run(ctl + ["delay", fake_dir, "greynoise", "50"], check=True)
    psql("TRUNCATE ip_inventory, ip_inventory_failures; INSERT INTO ip_inventory (ip_address, first_seen_at, last_seen_at, observation_count, ip_class) "
         "SELECT '45.0.0.0'::inet + g, now(), now(), 1, 'public' FROM generate_series(1, 80) g;")
    used = int(one("SELECT used FROM greynoise_quota()"))
    set_system(greynoise_daily_quota=used + 15)
    procs = [subprocess.Popen([f"{PGBIN}/psql", "-X", "-At", "-q", "-d", DB, "-c", "SELECT cascade_refresh('greynoise', 40)"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    calls = len([l for l in open(os.path.join(fake_dir, "greynoise.log")).read().split("\n") if l.startswith("GET")])
    case(part, all(p.returncode == 0 for p in procs) and calls == 15,
         f"4 concurrent GreyNoise refreshers with 15 calls left made {calls} calls ({[o[1][:100] for o in outs if o[1]]})")
    figure(part, "greynoise_calls_with_15_left", calls)
    subprocess.run(ctl + ["reset", fake_dir], check=True)
    set_system(greynoise_daily_quota=100000)


# ---- privileges and secrets ----------------------------------------------------------------

def secrets():
    part = "secrets"
    key = os.environ["IPI_FAKE_KEY"]
    psql("""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'intruder') THEN CREATE ROLE intruder LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'operator') THEN CREATE ROLE operator LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'watcher') THEN CREATE ROLE watcher LOGIN IN ROLE pg_monitor; END IF;
END $$;
GRANT EXECUTE ON FUNCTION cascade_refresh(text, int) TO operator;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO intruder, operator, watcher;
""")
    # The key in a file the server reads (a plain key in the configuration is refused).
    key_file = os.path.join(SCRATCH, "greynoise.key")
    open(key_file, "w").write(key + "\n")
    os.chmod(key_file, 0o644)
    set_system(greynoise_api_key=f"file:{key_file}")
    denied = [
        "SHOW ip_inventory.greynoise_api_key",
        "SELECT current_setting('ip_inventory.greynoise_api_key')",
        "SELECT * FROM pg_file_settings",
        "SELECT pg_read_file('postgresql.auto.conf')",
        "SELECT cascade_refresh('greynoise', 1)",
        "SELECT cascade_refresh('cymru', 1)",
        "SELECT maxmind_reload()",
        "SELECT maxmind_verify('/etc/passwd', 'city')",
        "SELECT * FROM ip_inventory_fetch('greynoise', ARRAY['8.8.8.8'])",
        "SELECT _ip_inventory_greynoise_seed(0, 0)",
        "SELECT * FROM ip_inventory_health()",
        "SELECT * FROM maxmind_info()",
        "SELECT * FROM greynoise_quota()",
        "SET ip_inventory.greynoise_url = 'http://198.51.100.1/'",
        "SET ip_inventory.cymru_whois_server = '198.51.100.1:43'",
        "SET ip_inventory.dns_server = '198.51.100.1:53'",
        "SET ip_inventory.greynoise_api_key = 'stolen'",
        "SET ip_inventory.greynoise_daily_quota = 1000000",
        "ALTER ROLE intruder SET ip_inventory.greynoise_url = 'http://198.51.100.1/'",
        "SELECT set_config('ip_inventory.cymru_whois_server', '198.51.100.1:43', false)",
    ]
    # ALTER SYSTEM cannot run inside try(): run it plainly and read psql's error.
    rc, _, err = psql("ALTER SYSTEM SET ip_inventory.greynoise_url = 'http://198.51.100.1/'", user="intruder", check=False)
    case(part, rc != 0 and "permission denied" in err, f"intruder: ALTER SYSTEM of a source endpoint refused ({err.strip()!r})")
    for stmt in denied:
        r = one(f"SELECT try($q${stmt}$q$)", user="intruder")
        case(part, r.startswith("42501") or r.startswith("55P02"), f"intruder: {stmt} -> {r!r}")
        case(part, key not in r, f"intruder: the error of {stmt} does not show the key")
    rows = one("SELECT count(*) FROM pg_settings WHERE name = 'ip_inventory.greynoise_api_key' AND setting IS NOT NULL AND setting <> ''",
               user="intruder")
    case(part, rows == "0", f"intruder: pg_settings shows no key ({rows} rows with a value)")
    # Everything a non-superuser can be granted to read in the extension's views and functions
    # (health, maxmind_info and the quota are for monitoring roles).
    dump = psql("""
SELECT string_agg(t::text, ' ') FROM ip_inventory_health() t;
SELECT string_agg(t::text, ' ') FROM maxmind_info() t;
SELECT string_agg(t::text, ' ') FROM greynoise_quota() t;
SELECT string_agg(t::text, ' ') FROM ip_inventory_stats t;
SELECT string_agg(t::text, ' ') FROM ip_inventory_progress t;
SELECT string_agg(t::text, ' ') FROM ip_inventory_failures t;
SELECT string_agg(query, ' ') FROM pg_stat_activity;
""", user="watcher")
    case(part, key not in dump, "a pg_monitor member: no key in health, maxmind_info, quota, stats, progress, failures, pg_stat_activity")
    # The operator may refresh (granted) but still not read the key; a wrong key's 401 is
    # recorded without the key.
    r = one("SELECT try($q$SELECT cascade_refresh('maxmind', 1)$q$)", user="operator")
    case(part, r == "ok", f"operator: cascade_refresh granted -> {r!r}")
    r = one("SELECT try($q$SHOW ip_inventory.greynoise_api_key$q$)", user="operator")
    case(part, r.startswith("42501"), f"operator: SHOW key -> {r!r}")
    wrong = "wrong-key-" + "7" * 24
    open(key_file, "w").write(wrong + "\n")
    set_system(greynoise_api_key=f"file:{key_file}", greynoise_url=os.environ["IPI_FAKE_HTTP"])
    psql("TRUNCATE ip_inventory, ip_inventory_failures; INSERT INTO ip_inventory (ip_address, first_seen_at, last_seen_at, observation_count, ip_class) VALUES ('8.8.8.8', now(), now(), 1, 'public');")
    r = one("SELECT try($q$SELECT cascade_refresh('greynoise', 5)$q$)", user="operator")
    texts = r + psql("SELECT coalesce(string_agg(error, ' '), '') FROM ip_inventory_failures")
    case(part, wrong not in texts and key not in texts, f"a rejected key is not in the error or the failures: {r!r}")
    set_system(greynoise_api_key="env:IPI_FAKE_KEY")
    log_text = open(SERVER_LOG, errors="replace").read()
    case(part, key not in log_text and wrong not in log_text, "the server log never shows a key (default log levels)")


# ---- the server log ------------------------------------------------------------------------

# ---- concurrent rule changes ---------------------------------------------------------------

def rule_race(part, first_sql, second_sql, marker):
    """Runs first_sql in a transaction left open, then second_sql in another session, which
    must wait for the first; commits the first and waits for the second."""
    cmd = [f"{PGBIN}/psql", "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1", "-d", DB]
    a = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    a.stdin.write(f"BEGIN;\n{first_sql}\nSELECT 'a-ready';\n")
    a.stdin.flush()
    while a.stdout.readline().strip() != "a-ready":
        if a.poll() is not None:
            raise RuntimeError(f"first session ended: {a.stderr.read()}")
    b = subprocess.Popen(cmd + ["-c", f"/* {marker} */ {second_sql}"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    waited = False
    for _ in range(600):
        if one(f"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()") == "1":
            waited = True
            break
        if b.poll() is not None:
            break
        time.sleep(0.1)
    case(part, waited, f"{marker}: the second rule change waits for the first")
    a.stdin.write("COMMIT;\n")
    a.stdin.close()
    ra, rb = a.wait(60), b.wait(60)
    case(part, ra == 0 and rb == 0, f"{marker}: both rule changes commit ({ra}, {rb}: {b.stderr.read().strip()})")


def rules():
    """Two sessions change the tag rules at the same time: the compiled rules, their count and
    the generated tagging function must reflect both changes, never one session's stale view."""
    part = "rules"
    psql("DELETE FROM ip_inventory_tag_rules;")
    state = ("SELECT s.enabled_rules || ' ' || coalesce(s.compiled LIKE '%race-a%', false) || ' ' "
             "|| coalesce(s.compiled LIKE '%race-b%', false) || ' ' "
             "|| (p.prosrc LIKE '%race-a%') || ' ' || (p.prosrc LIKE '%race-b%') "
             "FROM ip_inventory_tag_state AS s, pg_proc AS p WHERE p.proname = '_ip_inventory_tag_apply'")
    rule_race(part,
              "INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('race-a', 0.5, '{\"ip_class\": [\"documentation\"]}');",
              "INSERT INTO ip_inventory_tag_rules (tag, confidence, condition) VALUES ('race-b', 0.7, '{\"ip_class\": [\"documentation\"]}');",
              "race-insert")
    got = one(state)
    case(part, got == "2 true true true true", f"after two concurrent inserts both rules are compiled and counted: {got}")
    rule_race(part, "DELETE FROM ip_inventory_tag_rules WHERE tag = 'race-a';",
              "DELETE FROM ip_inventory_tag_rules WHERE tag = 'race-b';", "race-delete")
    got = one(state)
    case(part, got == "0 false false false false", f"after two concurrent deletes no rule is left compiled or counted: {got}")
    figure(part, "state", got)



def server_log():
    part = "server log"
    text = open(SERVER_LOG, errors="replace").read()
    signals = re.findall(r"terminated by signal (\d+)", text)
    unexpected = [s for s in signals if s != "9"]
    case(part, not unexpected, f"no process died of a signal other than our kill -9: {signals}")
    case(part, signals.count("9") <= KILLS["sigkill"], f"every SIGKILL was ours: {signals.count('9')} seen, {KILLS['sigkill']} sent")
    panics = len(re.findall(r"\bPANIC\b", text))
    case(part, panics == 0, f"no PANIC in the server log ({panics})")
    figure(part, "crashes", len(unexpected) + panics)


def main():
    parts = [("corrupt", corrupt), ("reload", reload_under_load), ("swaps", swaps), ("crash", crash),
             ("network", network), ("secrets", secrets), ("rules", rules)]
    setup()
    psql("""CREATE FUNCTION try_cancel(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE statement; RETURN 'ok';
EXCEPTION WHEN query_canceled THEN RETURN SQLSTATE || ': ' || SQLERRM;
END $$;""")
    started = time.monotonic()
    for name, fn in parts:
        if ONLY and name not in ONLY:
            continue
        t = time.monotonic()
        log(f"{name} ...")
        try:
            fn()
        except Exception as e:  # a part that cannot finish is a failure, not a crash of the run
            case(name, False, f"the part stopped: {e}")
        figure(name, "seconds", round(time.monotonic() - t, 1))
    server_log()
    tried = sum(r["tried"] for r in RESULTS.values())
    failed = sum(len(r["failed"]) for r in RESULTS.values())
    print()
    print(f"{'part':<12} {'cases':>6} {'failed':>7}  figures")
    for name, r in RESULTS.items():
        figs = ", ".join(f"{k}={v}" for k, v in r["figures"].items() if not isinstance(v, list))
        print(f"{name:<12} {r['tried']:>6} {len(r['failed']):>7}  {figs}")
    print(f"{'total':<12} {tried:>6} {failed:>7}  ({time.monotonic() - started:.0f} s)")
    json.dump({"results": RESULTS, "kills": KILLS, "tried": tried, "failed": failed},
              open(os.path.join(SCRATCH, "chaos.json"), "w"), indent=1)
    for name, r in RESULTS.items():
        for f in r["failed"]:
            print(f"FAILED [{name}] {f}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
