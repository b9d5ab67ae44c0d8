#!/usr/bin/env python3
"""Checks monitoring/ against the test cluster (pg_tests/sql/monitoring.sql runs it).

1. Every postgres_exporter query runs through psql and returns exactly the columns its
   metrics list names, numbers where the usage is COUNTER or GAUGE; a HISTOGRAM column
   comes with <column>_bucket, _sum and _count: increasing bounds, cumulative (monotone)
   bucket counts, one per bound, none above the count.
2. A real postgres_exporter with the file serves every metric, without query errors; in
   every histogram served the buckets are monotone and le="+Inf" equals _count.
3. A real Prometheus scrapes that exporter; every expression of every Grafana panel is
   evaluated and must succeed with at least one series, and the dashboard has the panels
   operators asked for.
4. The alerting rules pass promtool and every alert expression evaluates (an alert may
   well have no series: nothing is wrong); every ip_inventory_* metric that a rule or a
   panel names is one the exporter serves.

Prints one deterministic line per check; exits 1 on the first failure. Connection settings
come from PG* variables (run.sh sets them); the tools from PATH.

Usage: monitoring_check.py QUERIES_YAML DASHBOARD_JSON ALERTS_YAML
"""

import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

try:
    import yaml
except ImportError:
    # A python3 first on PATH without PyYAML (pyenv, a virtualenv): Debian's python3 has it
    # (python3-yaml, installed by scripts/setup.sh).
    if "IPI_SYSTEM_PYTHON" in os.environ or not os.path.exists("/usr/bin/python3"):
        raise
    os.environ["IPI_SYSTEM_PYTHON"] = "1"
    os.execv("/usr/bin/python3", ["/usr/bin/python3", "-I", *sys.argv])

REQUIRED_PANELS = ["Events enriched", "Error rate", "Lookup latency", "Network request latency", "Database age",
                   "GreyNoise quota used", "Backlog per source", "City cache hit rate", "Coverage"]
# Grafana's variables, as Grafana would expand them for a short range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}


# Logs of the programs started, shown when a check fails.
LOGS = []


def fail(message):
    print(f"FAIL: {message}")
    for path in LOGS:
        with open(path) as f:
            print(f"--- {os.path.basename(path)} (end)\n{f.read()[-3000:]}")
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, probe, seconds=30):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.25)
    fail(f"{what} did not come up ({last})")


def psql_csv(sql):
    psql = os.path.join(os.environ.get("IPI_PGBIN", ""), "psql")
    out = subprocess.run([psql, "-X", "--csv", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"psql: {out.stderr.strip()}")
    return list(csv.reader(io.StringIO(out.stdout)))


def check_queries(queries):
    """Runs each query; returns the metric names the exporter will serve."""
    names = {}
    for qname, spec in queries.items():
        rows = psql_csv(spec["query"])
        header, data = rows[0], rows[1:]
        declared = {}
        for entry in spec["metrics"]:
            (column, attrs), = entry.items()
            declared[column] = attrs["usage"]
        histograms = [c for c, u in declared.items() if u == "HISTOGRAM"]
        companions = {f"{c}_{part}": "HISTOGRAM_PART" for c in histograms for part in ("bucket", "sum", "count")}
        if set(header) != set(declared) | set(companions):
            fail(f"{qname}: columns {header} but metrics {list(declared)} (+ {list(companions)})")
        declared.update(companions)
        if not data:
            fail(f"{qname}: no rows")
        bounds = None
        for row in data:
            values = dict(zip(header, row))
            for column in histograms:
                le = parse_array(values[column], float, f"{qname}.{column}")
                buckets = parse_array(values[f"{column}_bucket"], int, f"{qname}.{column}_bucket")
                total = int(values[f"{column}_count"])
                if float(values[f"{column}_sum"]) < 0:
                    fail(f"{qname}.{column}_sum is negative")
                if any(a >= b for a, b in zip(le, le[1:])) or len(buckets) != len(le):
                    fail(f"{qname}.{column}: bounds {le} not increasing or not one per bucket {buckets}")
                if any(a > b for a, b in zip(buckets, buckets[1:])) or (buckets and buckets[-1] > total):
                    fail(f"{qname}.{column}: buckets {buckets} not cumulative up to the count {total}")
                bounds = len(le)
            for column, value in values.items():
                usage = declared[column]
                if usage in ("COUNTER", "GAUGE"):
                    try:
                        float(value)
                    except ValueError:
                        fail(f"{qname}.{column}: {value!r} is not a number")
                elif usage == "LABEL" and value == "":
                    fail(f"{qname}.{column}: empty label")
        numeric = [c for c, u in declared.items() if u in ("COUNTER", "GAUGE")]
        for column in numeric:
            names[f"{qname}_{column}"] = len(data)
        for column in histograms:
            # One series per bound, plus le="+Inf".
            names[f"{qname}_{column}_bucket"] = len(data) * (bounds + 1)
            names[f"{qname}_{column}_sum"] = len(data)
            names[f"{qname}_{column}_count"] = len(data)
        print(f"query {qname}: {len(data)} row(s), columns as declared")
    return names


def parse_array(text, kind, what):
    """A Postgres array literal of numbers, as psql --csv prints it: {1,2,3}."""
    if not (text.startswith("{") and text.endswith("}")):
        fail(f"{what}: {text!r} is not an array")
    try:
        return [kind(v) for v in text[1:-1].split(",") if v != ""]
    except ValueError:
        fail(f"{what}: {text!r} is not an array of numbers")


def check_histograms(series):
    """Every histogram served: per label set, buckets non-decreasing by le, +Inf = count."""
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
    checked = 0
    for name, lines in series.items():
        if not name.endswith("_bucket"):
            continue
        base = name[:-len("_bucket")]
        def parse(line):
            m = sample.match(line)
            return dict(re.findall(r'(\w+)="([^"]*)"', m.group(2))), float(m.group(3))

        def key_of(labels):
            return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))

        counts = {}
        for line in series.get(f"{base}_count", []):
            labels, value = parse(line)
            counts[key_of(labels)] = value
        groups = {}
        for line in lines:
            labels, value = parse(line)
            le = labels.pop("le")
            groups.setdefault(key_of(labels), []).append((float(le), value))
        for key, buckets in groups.items():
            buckets.sort()
            values = [v for _, v in buckets]
            if any(a > b for a, b in zip(values, values[1:])):
                fail(f"{name}{{{key}}}: buckets not cumulative: {buckets}")
            if buckets[-1][0] != float("inf"):
                fail(f"{name}{{{key}}}: no +Inf bucket")
            if counts.get(key) != buckets[-1][1]:
                fail(f"{name}{{{key}}}: +Inf bucket {buckets[-1][1]} but _count {counts.get(key)}")
            checked += 1
    return checked


def referenced_metrics(expr):
    """The ip_inventory_* metric names an expression reads."""
    return set(re.findall(r"\bip_inventory_[a-z0-9_]+", expr))


def parse_exposition(text):
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        series.setdefault(name, []).append(line)
    return series


def main():
    queries_path, dashboard_path, alerts_path = sys.argv[1:4]
    with open(queries_path) as f:
        queries = yaml.safe_load(f)
    with open(dashboard_path) as f:
        dashboard = json.load(f)

    expected = check_queries(queries)

    work = tempfile.mkdtemp(prefix="ipi_monitoring.")
    procs = []
    try:
        exporter_port, prometheus_port = free_port(), free_port()
        # lib/pq refuses (panics on) libpq variables it does not know: pass none.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["DATA_SOURCE_NAME"] = (
            f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} "
            f"user={os.environ.get('PGUSER', 'postgres')} dbname={os.environ['PGDATABASE']} sslmode=disable")
        LOGS.append(os.path.join(work, "exporter.log"))
        log = open(LOGS[-1], "w")
        procs.append(subprocess.Popen(
            [shutil.which("prometheus-postgres-exporter") or "postgres_exporter",
             f"--web.listen-address=127.0.0.1:{exporter_port}", f"--extend.query-path={queries_path}",
             "--disable-default-metrics", "--disable-settings-metrics",
             "--no-collector.database", "--no-collector.bgwriter"],
            env=env, stdout=log, stderr=subprocess.STDOUT))
        metrics_url = f"http://127.0.0.1:{exporter_port}/metrics"
        text = wait_for("postgres_exporter", lambda: http_get(metrics_url))
        served = parse_exposition(text)
        for name, rows in sorted(expected.items()):
            if len(served.get(name, [])) != rows:
                fail(f"exporter serves {len(served.get(name, []))} series of {name}, the query gives {rows}")
        errors = [line for line in served.get("pg_exporter_user_queries_load_error", []) if not line.endswith(" 0")]
        errors += [line for line in served.get("pg_exporter_last_scrape_error", []) if not line.endswith(" 0")]
        if errors:
            fail(f"exporter errors: {errors}")
        print(f"postgres_exporter: all {len(expected)} metrics served, no query errors")
        print(f"postgres_exporter: {check_histograms(served)} histograms, buckets cumulative, +Inf = count")
        seen_by_prometheus = set(served)

        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: ip_inventory\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{exporter_port}']\n")
        LOGS.append(os.path.join(work, "prometheus.log"))
        log = open(LOGS[-1], "w")
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work}/tsdb",
             f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            stdout=log, stderr=subprocess.STDOUT))
        api = f"http://127.0.0.1:{prometheus_port}/api/v1/query?query="

        def query(expr):
            return json.loads(http_get(api + urllib.parse.quote(expr)))

        # rate() needs two samples in its window: wait for a few scrapes.
        wait_for("Prometheus scrapes", lambda: any(
            float(r["value"][1]) >= 4 for r in query("count_over_time(up[1m])")["data"]["result"]), seconds=60)

        titles = [p["title"] for p in dashboard["panels"]]
        for wanted in REQUIRED_PANELS:
            if wanted not in titles:
                fail(f"the dashboard has no panel '{wanted}'")
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for var, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(var, value)
                if "$" in expr:
                    fail(f"panel '{panel['title']}': unknown variable in {expr}")
                answer = query(expr)
                if answer.get("status") != "success":
                    fail(f"panel '{panel['title']}': {expr}: {answer}")
                result = answer["data"]["result"]
                if not result:
                    fail(f"panel '{panel['title']}': {expr} gives no series")
                unknown = referenced_metrics(expr) - seen_by_prometheus
                if unknown:
                    fail(f"panel '{panel['title']}': {sorted(unknown)} not served by the exporter")
                print(f"panel '{panel['title']}' {target['refId']}: {len(result)} series")

        check = subprocess.run(["promtool", "check", "rules", alerts_path], capture_output=True, text=True)
        if check.returncode != 0:
            fail(f"promtool check rules: {check.stdout}{check.stderr}")
        with open(alerts_path) as f:
            rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
        named = set()
        for rule in rules:
            answer = query(rule["expr"])
            if answer.get("status") != "success":
                fail(f"alert {rule['alert']}: {answer}")
            unknown = referenced_metrics(rule["expr"]) - seen_by_prometheus
            if unknown:
                fail(f"alert {rule['alert']}: {sorted(unknown)} not served by the exporter")
            named |= referenced_metrics(rule["expr"])
        print(f"alerting rules: promtool accepts them, all {len(rules)} expressions evaluate, "
              f"the {len(named)} metrics they name are served")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
