#!/usr/bin/env python3
"""The Python worker path the extension replaces, measured on the benchmark's addresses.

    python_worker.py throughput CITY.mmdb ASN.mmdb IPFILE   rows/s of geoip2 city(), the
                                                           maxminddb C extension's get(),
                                                           and geoip2 asn()
    python_worker.py memory CITY.mmdb ASN.mmdb IPFILE N     RSS of one worker after N lookups
                                                           in each database

Readers are opened the way the worker runbook does it (geoip2.database.Reader(path), which
uses the C extension and mmap when available). Prints one JSON object.
"""
import json
import sys
import time

import geoip2.database
import geoip2.errors
import maxminddb


def load(path, limit=None):
    with open(path) as f:
        ips = [line.strip() for line in f if line.strip()]
    return ips[:limit] if limit else ips


def timed(fn, ips):
    start = time.perf_counter()
    found = 0
    for ip in ips:
        if fn(ip):
            found += 1
    elapsed = time.perf_counter() - start
    return {"rows": len(ips), "found": found, "seconds": round(elapsed, 3),
            "rows_per_second": round(len(ips) / elapsed)}


def throughput(city_path, asn_path, ip_file):
    ips = load(ip_file)
    city = geoip2.database.Reader(city_path)
    asn = geoip2.database.Reader(asn_path)
    raw = maxminddb.open_database(city_path)

    def geoip2_city(ip):
        try:
            return city.city(ip).country.iso_code is not None
        except geoip2.errors.AddressNotFoundError:
            return False

    def geoip2_asn(ip):
        try:
            return asn.asn(ip).autonomous_system_number is not None
        except geoip2.errors.AddressNotFoundError:
            return False

    def maxminddb_get(ip):
        rec = raw.get(ip)
        return bool(rec and rec.get("country", {}).get("iso_code"))

    return {
        "reader_type": type(raw).__module__ + "." + type(raw).__name__,
        "geoip2_city": timed(geoip2_city, ips),
        "maxminddb_get_city": timed(maxminddb_get, ips),
        "geoip2_asn": timed(geoip2_asn, ips),
    }


def smaps(pid, paths):
    """kB of Rss, Pss and private pages of a process's mappings of the given files
    (`pid` may be "self")."""
    out = {"rss_kb": 0, "pss_kb": 0, "private_kb": 0}
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                # A mapping's header: address range, perms, offset, device, inode[, path].
                current = parts[5] if len(parts) >= 6 else None
            elif current in paths:
                if parts[0] == "Rss:":
                    out["rss_kb"] += int(parts[1])
                elif parts[0] == "Pss:":
                    out["pss_kb"] += int(parts[1])
                elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
                    out["private_kb"] += int(parts[1])
    return out


def memory(city_path, asn_path, ip_file, n):
    ips = load(ip_file, n)
    city = geoip2.database.Reader(city_path)
    asn = geoip2.database.Reader(asn_path)
    for ip in ips:
        for fn in (city.city, asn.asn):
            try:
                fn(ip)
            except geoip2.errors.AddressNotFoundError:
                pass
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {"lookups": len(ips), "vm_rss_kb": int(status["VmRSS"].split()[0]),
            "mmdb_mappings": smaps("self", {city_path, asn_path})}


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["throughput"] and len(args) == 4:
        print(json.dumps(throughput(*args[1:])))
    elif args[:1] == ["memory"] and len(args) == 5:
        print(json.dumps(memory(args[1], args[2], args[3], int(args[4]))))
    else:
        sys.exit(__doc__)
