#!/usr/bin/env python3
"""Copies a MaxMind DB test database, setting its build_epoch metadata (a newer "build").

    set_build_epoch.py SOURCE DEST EPOCH

The MaxMind test databases all share one build time; tests of "rows from an older build"
need a second one. build_epoch is stored as a uint64 in 4 bytes right after its key in the
metadata section; the new value must fit in 4 bytes too, so the layout stays the same.
"""
import struct
import sys

MARKER = b"\xab\xcd\xefMaxMind.com"
# utf8_string of length 11 "build_epoch", then an extended-type (uint64) value of size 4.
KEY = b"\x4bbuild_epoch\x04\x02"

src, dest, epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = bytearray(open(src, "rb").read())
meta = data.rfind(MARKER)
at = data.find(KEY, meta)
if meta < 0 or at < 0 or not 0 < epoch < 2**32:
    sys.exit(f"{src}: no 4-byte build_epoch in the metadata, or epoch out of range")
data[at + len(KEY):at + len(KEY) + 4] = struct.pack(">I", epoch)
open(dest, "wb").write(data)
