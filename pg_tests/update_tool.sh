#!/usr/bin/env bash
# Runs tools/ip-inventory-update for pg_tests/sql/update_tool.sql against the loopback
# download server, with the test canaries, and prints its output (the server's port
# and the cluster-wide reload generation replaced, so that expected output is stable) and its
# exit status.
set -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/tools/ip-inventory-update" --dir "$IPI_SCRATCH/geoip" --url "$IPI_FAKE_HTTP" \
    --account-id 999999 --license-key-file "$IPI_SCRATCH/license.key" \
    --canary city:81.2.69.160=GB --canary asn:1.128.0.0=1221 --psql "$IPI_PGBIN/psql" "$@" 2>&1 \
    | sed -e "s|$IPI_FAKE_HTTP|http://download-server|g" -e "s/\"generation\": [0-9]*/\"generation\": N/"
echo "exit status $?"
