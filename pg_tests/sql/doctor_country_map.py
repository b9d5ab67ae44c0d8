#!/usr/bin/env python3
"""Doctors the IPv4 country map of a pre-decoded City file (core/src/mmdb/decoded.rs) so that
the /16 of ADDRESS says it has no record: `doctor_country_map.py FILE ADDRESS`. Written beside
the file and renamed over it, as the server writes it, so that backends which mapped the old
file keep it. Run by the server (COPY ... TO PROGRAM), which owns the store."""
import ipaddress
import os
import struct
import sys

HEADER, SLOT, ENTRY, TOP_ENTRY = 96, 12, 64, 8
NO_DATA = 0xFFFFFFFE

path, address = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    b = bytearray(f.read())
assert b[:8] == b"IPIDECOD" and struct.unpack_from("<I", b, 8)[0] == 3, "not a version 3 file"
slots, records, pool_len, ranges = struct.unpack_from("<4I", b, 12)
assert ranges != 0xFFFFFFFF, "the file has no IPv4 country map"
top = HEADER + slots * SLOT + records * ENTRY + pool_len
entry = top + TOP_ENTRY * (int(ipaddress.IPv4Address(address)) >> 16)
struct.pack_into("<II", b, entry, NO_DATA, 1)
staged = path + ".doctored"
with open(staged, "wb") as f:
    f.write(b)
os.chmod(staged, 0o400)
os.rename(staged, path)
