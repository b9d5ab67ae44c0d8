#!/usr/bin/env python3
"""Loopback stand-ins for Team Cymru, GreyNoise and a DNS server, speaking the real protocols.

    fake_sources.py serve DIR      start all three on 127.0.0.1 (ephemeral ports); writes
                                   DIR/ports.env (IPI_FAKE_WHOIS, IPI_FAKE_DNS, IPI_FAKE_HTTP)
                                   and logs every connection/request to DIR/*.log
    fake_sources.py reset DIR      forget the fault state (every fault fires again), the
                                   delays and the logs
    fake_sources.py delay DIR SERVICE MS   delay every answer of whois/greynoise/dns by MS
    fake_sources.py publish DIR EDITION FILE [MODE]
                                   serve FILE as MaxMind's build of EDITION (a tar.gz, and its
                                   MD5 and date in the metadata), or, for a dbip-* edition, as
                                   this month's DB-IP .mmdb.gz, or, for an ipinfo_* edition, as
                                   IPinfo's .mmdb. MODE makes a hostile archive:
                                   bad-checksum  the metadata's MD5 is wrong
                                   traversal     the .mmdb member is named ../../EDITION.mmdb
                                   link          the .mmdb member is a symlink to /etc/passwd
                                   bomb          a 64 MiB member of zeros (64 KiB compressed);
                                                 for dbip-*, a .mmdb.gz unpacking to 64 MiB
    fake_sources.py download-mode DIR direct|redirect|loop
                                   how MaxMind's download route answers (reset: direct):
                                   direct    the archive itself
                                   redirect  302 to the storage server (a second listener on
                                             another port, so another origin), as the real
                                             service redirects to presigned storage URLs
                                   loop      302 to itself, forever

The HTTP server also stands in for MaxMind's download API as geoipupdate uses it (basic auth
with account 999999 and MAXMIND_KEY): /geoip/updates/metadata?edition_id=EDITION answers the
current build's MD5 (of the .mmdb) and date, /geoip/databases/EDITION/download?date=YYYYMMDD
&suffix=tar.gz the archive; for DB-IP's free files (/free/NAME); and for IPinfo's
(/data/NAME.mmdb?token=IPINFO_TOKEN, the token in the query as IPinfo takes it). It serves what "publish"
put in DIR/downloads, over plain HTTP (IPI_FAKE_HTTP) and over TLS (IPI_FAKE_HTTPS, with a
self-signed certificate for 127.0.0.1 made by openssl at start; IPI_FAKE_CA names it).
The storage server (IPI_FAKE_STORAGE, plain HTTP) logs every request with all its headers to
DIR/storage.log and, like presigned storage, refuses a request carrying an Authorization
header (HTTP 400).

Written independently of the Rust clients (plain sockets, DNS packets encoded by hand), so
that a misreading of a protocol in the clients shows up as a test failure.

Answers are fixed per address; fault addresses misbehave on their FIRST request only (so a
test sees the recorded failure, and the next refresh run succeeds):
    66.66.66.1  whois: the server never answers the batch holding it (timeout)
    66.66.66.2  whois: the connection is reset after the lines before it
    66.66.66.3  whois: a garbage line instead of its answer
    77.77.77.1  GreyNoise HTTP 500        / DNS SERVFAIL
    77.77.77.2  GreyNoise no answer (timeout) / DNS no answer
    77.77.77.3  GreyNoise connection reset
    77.77.77.4  GreyNoise garbage body    / DNS garbage datagram
    77.77.77.5  GreyNoise 429 with Retry-After: 2
and, for the fault run (pg_tests/chaos.py):
    66.66.66.4  whois: the reply drips, one byte every 100 ms
    66.66.66.5  whois: an endless reply (64 MiB of repeated lines)
    66.66.66.6  whois: answers about another address instead
    77.77.77.6  GreyNoise body drips, one byte every 100 ms / DNS answer for another question
    77.77.77.7  GreyNoise 64 MiB body
    77.77.77.8  GreyNoise answer about another address
    77.77.77.9  GreyNoise HTTP 503
GreyNoise answers 401 to any request whose key header is not GREYNOISE_KEY.

With IPI_FAKE_SYNTHETIC=1 in the environment, whois answers every address it has no fixed
answer for with a plausible line derived from the address (for the benchmark's Team Cymru
throughput run, where NA answers would not exercise the parser).
"""
import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import socket
import socketserver
import re
import ssl
import struct
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse

GREYNOISE_KEY = "test-key-5f2b"
MAXMIND_ACCOUNT = "999999"
MAXMIND_KEY = "fake-license-key-0001"
IPINFO_TOKEN = "fake-ipinfo-token-0001"
MAXMIND_DATE = "2026-11-20"  # the date of every published build

WHOIS = {
    # ip: (asn field, prefix, cc, registry, allocated, as name)
    "8.8.8.8": ("15169", "8.8.8.0/24", "US", "arin", "2023-12-28", "GOOGLE, US"),
    "8.8.4.1": ("15169", "8.8.4.0/24", "US", "arin", "2023-12-28", "GOOGLE, US"),
    "1.4.8.8": ("1221", "1.4.0.0/16", "AU", "apnic", "2010-04-14", "ASN-TELSTRA Telstra Pty Ltd, AU"),
    "216.90.108.31": (["23028", "701"], "216.90.108.0/24", "US", "arin", "1998-09-25", None),
    "2606:4700:4700::1111": ("13335", "2606:4700::/32", "US", "arin", "2011-11-01", "CLOUDFLARENET, US"),
    "2620:fe::fe": ("19281", "2620:fe::/48", "US", "arin", "2016-02-17", "QUAD9-AS-1, US"),
    "1.1.1.1": ("13335", "1.1.1.0/24", "AU", "apnic", "2011-08-11", "CLOUDFLARENET, US"),
    "66.66.66.1": ("64500", "66.66.66.0/24", "US", "arin", "2001-01-01", "FAULTY-A, US"),
    "66.66.66.2": ("64500", "66.66.66.0/24", "US", "arin", "2001-01-01", "FAULTY-A, US"),
    "66.66.66.3": ("64500", "66.66.66.0/24", "US", "arin", "2001-01-01", "FAULTY-A, US"),
    "66.66.66.4": ("64500", "66.66.66.0/24", "US", "arin", "2001-01-01", "FAULTY-A, US"),
    "66.66.66.5": ("64500", "66.66.66.0/24", "US", "arin", "2001-01-01", "FAULTY-A, US"),
    "66.66.66.6": ("64500", "66.66.66.0/24", "US", "arin", "2001-01-01", "FAULTY-A, US"),
    # Hostile answers, every time (whois is plaintext: anyone on the path can send them): a
    # NUL and invalid UTF-8 in the AS name, an ASN beyond 32 bits, a prefix that is no prefix,
    # an absurd date.
    "78.78.78.1": ("64501", "78.78.78.0/24", "US", "arin", "2001-01-01", "EVIL\x00NAME, US"),
    "78.78.78.2": ("64501", "78.78.78.0/24", "US", "arin", "2001-01-01", "BAD\udcff\udcfeUTF8, US"),
    "78.78.78.3": ("99999999999999999999", "78.78.78.0/24", "US", "arin", "2001-01-01", "HUGE, US"),
    "78.78.78.4": ("64501", "300.78.78.0/99", "US", "arin", "2001-01-01", "NOPREFIX, US"),
    "78.78.78.5": ("64501", "78.78.78.0/24", "US", "arin", "99999-99-99", "DATED, US"),
}
AS_NAMES = {"23028": "TEAM-CYMRU, US", "701": "UUNET, US", "15169": "GOOGLE, US",
            "1221": "ASN-TELSTRA Telstra Pty Ltd, AU", "13335": "CLOUDFLARENET, US",
            "19281": "QUAD9-AS-1, US", "64500": "FAULTY-A, US", "64501": "EVIL\x00AS, US"}

GREYNOISE = {
    "71.6.135.131": {"ip": "71.6.135.131", "noise": True, "riot": False, "classification": "benign",
                     "name": "Shodan.io", "link": "https://viz.greynoise.io/ip/71.6.135.131",
                     "last_seen": "2026-11-20", "message": "Success"},
    "45.83.64.1": {"ip": "45.83.64.1", "noise": True, "riot": False, "classification": "malicious",
                   "name": "unknown", "link": "https://viz.greynoise.io/ip/45.83.64.1",
                   "last_seen": "2026-11-19", "message": "Success"},
    "8.8.8.8": {"ip": "8.8.8.8", "noise": False, "riot": True, "classification": "benign",
                "name": "Google Public DNS", "link": "https://viz.greynoise.io/riot/8.8.8.8",
                "last_seen": "2026-11-20", "message": "Success"},
}

# Hostile GreyNoise answers, every time: a NUL in a name, a right-to-left override and a date
# of year 99999, values of the wrong types.
GREYNOISE.update({
    "78.78.78.1": {"ip": "78.78.78.1", "noise": True, "riot": False, "classification": "malicious",
                   "name": "evil\u0000name", "last_seen": "2026-11-20", "message": "Success"},
    "78.78.78.2": {"ip": "78.78.78.2", "noise": True, "riot": False, "classification": "malicious",
                   "name": "\u202egnp.exe", "last_seen": "99999-01-01", "message": "Success"},
    "78.78.78.3": {"ip": "78.78.78.3", "noise": "yes", "riot": 1e308, "classification": 12345,
                   "name": ["not", "a", "name"], "last_seen": None, "message": "Success"},
})

PTR = {"8.8.8.8": "dns.google", "1.1.1.1": "one.one.one.one",
       # Hostile PTR names: a NUL and invalid UTF-8 in a label.
       "78.78.78.1": "evil\x00name.example", "78.78.78.2": "bad\udcffutf8.example",
       "2606:4700:4700::1111": "one.one.one.one", "2620:fe::fe": "dns9.quad9.net", "71.6.135.131": "census12.shodan.io"}

STATE_LOCK = threading.Lock()
FIRED = set()  # (service, ip) faults that already fired
DELAY = {}  # service -> seconds every answer waits (to make concurrent runs overlap)
LOG_DIR = "."
LOGS = ("whois", "greynoise", "dns", "download", "storage")
DOWNLOAD_MODE = {"mode": "direct"}
STORAGE_URL = {"url": None}  # http://127.0.0.1:PORT of the storage server, set by serve()


def fires(service, ip):
    """True the first time a fault address is seen by a service."""
    with STATE_LOCK:
        if (service, ip) in FIRED:
            return False
        FIRED.add((service, ip))
        return True


def log(name, line):
    with STATE_LOCK, open(os.path.join(LOG_DIR, name + ".log"), "a") as f:
        f.write(line + "\n")


# ---- Team Cymru bulk whois -------------------------------------------------------------

SYNTHETIC = os.environ.get("IPI_FAKE_SYNTHETIC") == "1"


def whois_line(ip):
    row = WHOIS.get(ip)
    if row is None and SYNTHETIC and ip.count(".") == 3:
        a, b, c, _ = ip.split(".")
        asn = str(64512 + (int(a) * 256 + int(b)) % 1000)
        row = (asn, f"{a}.{b}.{c}.0/24", "ZZ", "ripencc", "2010-01-01", f"SYNTH-{asn}, ZZ")
    if row is None:
        return [f"NA      | {ip:<16} | NA                  | NA | NA       | NA         | NA"]
    asns, prefix, cc, reg, alloc, name = row
    asns = asns if isinstance(asns, list) else [asns]
    return [f"{a:<7} | {ip:<16} | {prefix:<19} | {cc} | {reg:<8} | {alloc} | {name or AS_NAMES.get(a, a)}"
            for a in asns]


class WhoisHandler(socketserver.StreamRequestHandler):
    def handle(self):
        ips, began = [], False
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").strip()
            if line == "begin":
                began = True
            elif line == "end":
                break
            elif line in ("verbose", ""):
                continue
            else:
                ips.append(line)
        log("whois", f"connection begin={began} addresses={len(ips)} " + " ".join(ips))
        time.sleep(DELAY.get("whois", 0))
        if "66.66.66.1" in ips and fires("whois", "66.66.66.1"):
            time.sleep(3)  # longer than the tests' ip_inventory.cymru_timeout
            return
        out = [f"Bulk mode; whois.cymru.com [{time.strftime('%Y-%m-%d %H:%M:%S +0000', time.gmtime())}]",
               "AS      | IP               | BGP Prefix          | CC | Registry | Allocated  | AS Name"]
        if "66.66.66.5" in ips and fires("whois", "66.66.66.5"):
            chunk = ("\n".join(whois_line("8.8.8.8") * 1000) + "\n").encode()
            try:
                for _ in range(64 * 2**20 // len(chunk)):
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client stopped reading
            return
        drip = "66.66.66.4" in ips and fires("whois", "66.66.66.4")
        for ip in ips:
            if ip == "66.66.66.2" and fires("whois", ip):
                self.wfile.write(("\n".join(out) + "\n").encode())
                self.wfile.flush()
                # RST instead of FIN: SO_LINGER with a zero timeout.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                return
            if ip == "66.66.66.3" and fires("whois", ip):
                out.append("%%%% \x07 garbage | line")
                continue
            if ip == "66.66.66.6" and fires("whois", ip):
                out.extend(whois_line("9.9.9.9"))
                continue
            out.extend(whois_line(ip))
        data = ("\n".join(out) + "\n").encode("utf-8", "surrogateescape")
        if drip:
            return drip_bytes(self.wfile, data)
        self.wfile.write(data)


def drip_bytes(wfile, data):
    try:
        for i in range(len(data)):
            wfile.write(data[i:i + 1])
            wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass  # the client gave up


# ---- GreyNoise Community ---------------------------------------------------------------

class GreyNoiseHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, body, headers=()):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/_control/delay/"):
            _, _, _, service, ms = self.path.split("/")
            DELAY[service] = int(ms) / 1000
            return self.send_json(200, {"delay": DELAY})
        if self.path == "/_control/reset":
            with STATE_LOCK:
                FIRED.clear()
                DELAY.clear()
                DOWNLOAD_MODE["mode"] = "direct"
                for name in LOGS:
                    open(os.path.join(LOG_DIR, name + ".log"), "w").close()
            return self.send_json(200, {"reset": True})
        if self.path.startswith("/_control/download/"):
            DOWNLOAD_MODE["mode"] = self.path.rsplit("/", 1)[1]
            return self.send_json(200, DOWNLOAD_MODE)
        if self.path.startswith(("/geoip/", "/free/", "/data/")):
            return self.download()
        prefix = "/v3/community/"
        if not self.path.startswith(prefix):
            return self.send_json(404, {"message": "no such route"})
        ip = self.path[len(prefix):]
        key = self.headers.get("key")
        log("greynoise", f"GET {ip} key={'valid' if key == GREYNOISE_KEY else ('none' if key is None else 'wrong')}")
        time.sleep(DELAY.get("greynoise", 0))
        if key != GREYNOISE_KEY:
            return self.send_json(401, {"message": "Authentication required"})
        if ip == "77.77.77.1" and fires("greynoise", ip):
            return self.send_json(500, {"message": "internal error"})
        if ip == "77.77.77.2" and fires("greynoise", ip):
            time.sleep(3)  # longer than the tests' ip_inventory.greynoise_timeout
            return self.send_json(200, GREYNOISE.get(ip, {}))
        if ip == "77.77.77.3" and fires("greynoise", ip):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if ip == "77.77.77.4" and fires("greynoise", ip):
            return self.send_json(200, b"<html>\x00not json")
        if ip == "77.77.77.5" and fires("greynoise", ip):
            return self.send_json(429, {"message": "rate limited"}, [("Retry-After", "2")])
        if ip == "77.77.77.6" and fires("greynoise", ip):
            data = json.dumps({"ip": ip, "noise": False, "riot": False}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.close_connection = True
            return drip_bytes(self.wfile, data)
        if ip == "77.77.77.7" and fires("greynoise", ip):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(64 * 2**20))
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(64):
                    self.wfile.write(b" " * 2**20)
            except OSError:
                pass
            return
        if ip == "77.77.77.8" and fires("greynoise", ip):
            return self.send_json(200, dict(GREYNOISE["8.8.8.8"]))
        if ip == "77.77.77.9" and fires("greynoise", ip):
            return self.send_json(503, {"message": "service unavailable"})
        if ip in GREYNOISE:
            return self.send_json(200, GREYNOISE[ip])
        return self.send_json(404, {"ip": ip, "noise": False, "riot": False,
                                    "message": "IP not observed scanning the internet or contained in RIOT data set."})


    def download(self):
        """MaxMind's download API (metadata, then the archive) and DB-IP's free downloads,
        from DIR/downloads."""
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path.startswith("/free/"):
            name = url.path[len("/free/"):]
            log("download", name)
            if DOWNLOAD_MODE["mode"] == "redirect":
                return self.redirect(f"{STORAGE_URL['url']}/storage/{name}?X-Amz-Signature=5e3c2a")
            return send_file(self, os.path.join(LOG_DIR, "downloads", os.path.basename(name)))
        if url.path.startswith("/data/"):
            name = url.path[len("/data/"):]
            sent = query.get("token", [""])[0]
            mode = DOWNLOAD_MODE["mode"]
            log("download", f"ipinfo {name} token={'valid' if sent == IPINFO_TOKEN else ('none' if not sent else 'wrong')}"
                            + ("" if mode == "direct" else f" -> {mode}"))
            if sent != IPINFO_TOKEN:
                return self.send_json(403, {"error": "Unknown token"})
            if mode == "redirect":
                return self.redirect(f"{STORAGE_URL['url']}/storage/{name}?X-Amz-Signature=5e3c2a")
            return send_file(self, os.path.join(LOG_DIR, "downloads", os.path.basename(name)))
        if url.path == "/geoip/updates/metadata":
            edition = query.get("edition_id", [""])[0]
            what = f"metadata {edition}"
        else:
            m = re.fullmatch(r"/geoip/databases/([\w-]+)/download", url.path)
            if not m or query.get("suffix") != ["tar.gz"]:
                return self.send_json(404, {"code": "NOT_FOUND", "error": "no such route"})
            edition = m.group(1)
            what = f"download {edition} date={query.get('date', [''])[0]}"
        sent = self.headers.get("Authorization", "")
        wanted = "Basic " + base64.b64encode(f"{MAXMIND_ACCOUNT}:{MAXMIND_KEY}".encode()).decode()
        mode = DOWNLOAD_MODE["mode"] if what.startswith("download") else "direct"
        log("download", f"{what} auth={'valid' if sent == wanted else ('none' if not sent else 'wrong')}"
                        + ("" if mode == "direct" else f" -> {mode}"))
        if sent != wanted:
            return self.send_json(401, {"code": "AUTHORIZATION_INVALID", "error": "Invalid account ID or license key"})
        meta_path = os.path.join(LOG_DIR, "downloads", f"{os.path.basename(edition)}.meta.json")
        if not os.path.isfile(meta_path):
            return self.send_json(404, {"code": "EDITION_NOT_FOUND", "error": f"Database edition not found: {edition}"})
        if what.startswith("metadata"):
            return self.send_json(200, open(meta_path, "rb").read())
        if query.get("date") != [MAXMIND_DATE.replace("-", "")]:
            return self.send_json(404, {"code": "NOT_FOUND", "error": "no build of that date"})
        if mode == "redirect":
            return self.redirect(f"{STORAGE_URL['url']}/storage/{edition}.tar.gz?X-Amz-Signature=5e3c2a")
        if mode == "loop":
            return self.redirect(self.path)
        return send_file(self, os.path.join(LOG_DIR, "downloads", f"{os.path.basename(edition)}.tar.gz"))

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


def send_file(handler, path):
    if not os.path.isfile(path):
        return handler.send_json(404, {"code": "NOT_FOUND"})
    data = open(path, "rb").read()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class StorageHandler(GreyNoiseHandler):
    """Presigned storage: serves what a download route redirected to, logs every request with
    every header, and refuses credentials as S3 and R2 do (one auth mechanism only)."""

    def do_GET(self):
        headers = " | ".join(f"{k}: {v}" for k, v in self.headers.items())
        log("storage", f"GET {self.path} | {headers}")
        if "Authorization" in self.headers:
            return self.send_json(400, b"<Error><Code>InvalidArgument</Code>"
                                       b"<Message>Only one auth mechanism allowed</Message></Error>")
        m = re.fullmatch(r"/storage/([\w.-]+)\?X-Amz-Signature=[0-9a-f]+", self.path)
        if not m:
            return self.send_json(403, b"<Error><Code>AccessDenied</Code></Error>")
        return send_file(self, os.path.join(LOG_DIR, "downloads", m.group(1)))


BOMB_SIZE = 64 << 20


def publish(directory, edition, source, mode=None):
    """Puts FILE where the download routes serve it for EDITION (see the module's doc)."""
    out = os.path.join(directory, "downloads")
    os.makedirs(out, exist_ok=True)
    data = open(source, "rb").read()
    if edition.startswith("dbip-"):
        name = f"{edition}-{time.strftime('%Y-%m', time.gmtime())}.mmdb.gz"
        packed = gzip.compress(bytes(BOMB_SIZE) if mode == "bomb" else data, mtime=0)
        open(os.path.join(out, name), "wb").write(packed)
        return
    if edition.startswith("ipinfo_"):
        open(os.path.join(out, f"{edition}.mmdb"), "wb").write(data)
        return
    # Byte-for-byte the same archive every time (fixed names and times), so that tests can
    # print checksums.
    buf = io.BytesIO()
    folder = f"{edition}_{MAXMIND_DATE.replace('-', '')}"
    members = [(f"{folder}/COPYRIGHT.txt", b"test data\n")]
    if mode == "bomb":
        members.append((f"{folder}/README.txt", bytes(BOMB_SIZE)))
    members.append((f"../../{edition}.mmdb" if mode == "traversal" else f"{folder}/{edition}.mmdb", data))
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for member, content in members:
            info = tarfile.TarInfo(member)
            if mode == "link" and member.endswith(".mmdb"):
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
                continue
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    md5 = hashlib.md5(data + (b"x" if mode == "bad-checksum" else b"")).hexdigest()
    meta = {"databases": [{"edition_id": edition, "md5": md5, "date": MAXMIND_DATE}]}
    open(os.path.join(out, f"{edition}.tar.gz"), "wb").write(buf.getvalue())
    open(os.path.join(out, f"{edition}.meta.json"), "w").write(json.dumps(meta))


# ---- DNS (UDP) -------------------------------------------------------------------------

def reverse_name(ip):
    if ":" in ip:
        packed = socket.inet_pton(socket.AF_INET6, ip)
        nibbles = "".join(f"{b:02x}" for b in packed)
        return ".".join(reversed(nibbles)), "ip6"
    return ".".join(reversed(ip.split("."))), "ip4"


def dns_tables():
    txt, ptr, faults = {}, {}, {}
    for ip, (asns, prefix, cc, reg, alloc, _name) in WHOIS.items():
        rev, fam = reverse_name(ip)
        zone = "origin.asn.cymru.com" if fam == "ip4" else "origin6.asn.cymru.com"
        asns = " ".join(asns) if isinstance(asns, list) else asns
        txt[f"{rev}.{zone}"] = [f"{asns} | {prefix} | {cc} | {reg} | {alloc}"]
    for asn, name in AS_NAMES.items():
        txt[f"as{asn}.asn.cymru.com"] = [f"{asn} | US | arin | 2000-03-30 | {name}"]
    for ip, name in PTR.items():
        rev, fam = reverse_name(ip)
        ptr[f"{rev}.{'in-addr.arpa' if fam == 'ip4' else 'ip6.arpa'}"] = name
    for ip, kind in (("77.77.77.1", "servfail"), ("77.77.77.2", "silent"), ("77.77.77.4", "garbage"),
                     ("77.77.77.6", "other")):
        rev, _ = reverse_name(ip)
        faults[f"{rev}.in-addr.arpa"] = (ip, kind)
        faults[f"{rev}.origin.asn.cymru.com"] = (ip, kind)
    return txt, ptr, faults


TXT, PTRS, DNS_FAULTS = dns_tables()


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("utf-8", "surrogateescape")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def parse_question(data):
    pos, labels = 12, []
    while data[pos] != 0:
        n = data[pos]
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    qtype, qclass = struct.unpack("!HH", data[pos + 1:pos + 5])
    return ".".join(labels), qtype, data[12:pos + 5]


class DnsHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        qid, flags = struct.unpack("!HH", data[:4])
        name, qtype, question = parse_question(data)
        key = name.lower()
        log("dns", f"{'TXT' if qtype == 16 else 'PTR' if qtype == 12 else qtype} {name}")
        time.sleep(DELAY.get("dns", 0))
        rcode, answers = 3, []  # NXDOMAIN unless known
        fault = DNS_FAULTS.get(key)
        if fault and fires("dns:" + key, fault[0]):
            if fault[1] == "silent":
                return
            if fault[1] == "garbage":
                sock.sendto(b"\x13\x37garbage", self.client_address)
                return
            if fault[1] == "other":
                # A well-formed answer with this query's ID, about another name (a spoof).
                other = encode_name("8.8.8.8.in-addr.arpa") + struct.pack("!HH", 12, 1)
                rdata = encode_name("spoofed.example")
                out = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + other
                out += b"\xc0\x0c" + struct.pack("!HHIH", 12, 1, 60, len(rdata)) + rdata
                sock.sendto(out, self.client_address)
                return
            rcode = 2  # SERVFAIL
        elif qtype == 16 and key in TXT:
            rcode = 0
            for s in TXT[key]:
                b = s.encode("utf-8", "surrogateescape")[:255]
                answers.append((16, bytes([len(b)]) + b))
        elif qtype == 12 and key in PTRS:
            rcode = 0
            answers.append((12, encode_name(PTRS[key])))
        elif key in TXT or key in PTRS:
            rcode = 0  # the name exists, not with this type: NODATA
        resp_flags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode  # QR, RD copied, RA
        out = struct.pack("!HHHHHH", qid, resp_flags, 1, len(answers), 0, 0) + question
        for rtype, rdata in answers:
            out += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
        sock.sendto(out, self.client_address)


def quiet_handle_error(server_class):
    """Clients that hang up mid-answer (the point of several faults) are not errors here."""
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            server_class.handle_error(self, request, client_address)
    return handle_error


class ThreadingTCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
    handle_error = quiet_handle_error(socketserver.TCPServer)
    daemon_threads = True
    allow_reuse_address = True
    # Concurrent refreshers open many connections at once; the default backlog of 5 drops
    # SYNs, and the client's retransmit comes after the tests' 1 s time limits.
    request_queue_size = 128


class ThreadingHTTP(http.server.ThreadingHTTPServer):
    handle_error = quiet_handle_error(http.server.ThreadingHTTPServer)
    daemon_threads = True
    request_queue_size = 128


class ThreadingUDP(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True


def serve(directory):
    global LOG_DIR
    LOG_DIR = directory
    os.makedirs(directory, exist_ok=True)
    for name in LOGS:
        open(os.path.join(directory, name + ".log"), "w").close()
    whois = ThreadingTCP(("127.0.0.1", 0), WhoisHandler)
    dns = ThreadingUDP(("127.0.0.1", 0), DnsHandler)
    http_srv = ThreadingHTTP(("127.0.0.1", 0), GreyNoiseHandler)
    storage = ThreadingHTTP(("127.0.0.1", 0), StorageHandler)
    STORAGE_URL["url"] = f"http://127.0.0.1:{storage.server_address[1]}"
    https_srv = tls_server(directory)
    for srv in (whois, dns, http_srv, storage, https_srv):
        if srv is not None:
            threading.Thread(target=srv.serve_forever, daemon=True).start()
    tmp = os.path.join(directory, "ports.env.tmp")
    with open(tmp, "w") as f:
        f.write(f"IPI_FAKE_WHOIS=127.0.0.1:{whois.server_address[1]}\n")
        f.write(f"IPI_FAKE_DNS=127.0.0.1:{dns.server_address[1]}\n")
        f.write(f"IPI_FAKE_HTTP=http://127.0.0.1:{http_srv.server_address[1]}\n")
        f.write(f"IPI_FAKE_KEY={GREYNOISE_KEY}\n")
        f.write(f"IPI_FAKE_STORAGE={STORAGE_URL['url']}\n")
        if https_srv is not None:
            f.write(f"IPI_FAKE_HTTPS=https://127.0.0.1:{https_srv.server_address[1]}\n")
            f.write(f"IPI_FAKE_CA={os.path.join(directory, 'tls.crt')}\n")
    os.rename(tmp, os.path.join(directory, "ports.env"))
    while True:
        time.sleep(3600)


def tls_server(directory):
    """The HTTP handlers over TLS, with a throwaway self-signed certificate for 127.0.0.1
    (None, and no IPI_FAKE_HTTPS, when openssl cannot make one)."""
    crt, key = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", key, "-out", crt], capture_output=True)
    if made.returncode != 0:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv = ThreadingHTTP(("127.0.0.1", 0), GreyNoiseHandler)
    # The handshake happens in the handler's thread (on its first read), not in the accept loop.
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    return srv


def control(directory, path):
    import urllib.request
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(directory, "ports.env")))
    with urllib.request.urlopen(env["IPI_FAKE_HTTP"] + "/_control/" + path, timeout=5) as r:
        r.read()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["serve"] and len(args) == 2:
        serve(args[1])
    elif args[:1] == ["reset"] and len(args) == 2:
        control(args[1], "reset")
    elif args[:1] == ["delay"] and len(args) == 4 and args[2] in ("whois", "greynoise", "dns"):
        control(args[1], f"delay/{args[2]}/{int(args[3])}")
    elif args[:1] == ["publish"] and len(args) in (4, 5) and args[4:5] in (
            [], ["bad-checksum"], ["traversal"], ["link"], ["bomb"]):
        publish(args[1], args[2], args[3], mode=(args[4:5] or [None])[0])
    elif args[:1] == ["download-mode"] and len(args) == 3 and args[2] in ("direct", "redirect", "loop"):
        control(args[1], f"download/{args[2]}")
    else:
        sys.exit(__doc__)
