#!/usr/bin/env bash
# Runs tools/ip-inventory-update for pg_tests/sql/update_tool.sql against the loopback
# download server, with the test canaries, and prints its output and its exit status. So
# that the expected output is stable, the servers' ports are replaced by names, the reload
# generation by N, and the extension's own error text (after "the server refused it:" and
# "The reload said:", which pg_tests/sql/reload.sql and friends test) by a placeholder; the
# raw output stays in $IPI_SCRATCH/update.out for tests that look at it.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
out=$(env ${IPI_FAKE_CA:+SSL_CERT_FILE="$IPI_FAKE_CA"} \
    "$ROOT/tools/ip-inventory-update" --dir "$IPI_SCRATCH/geoip" --url "$IPI_FAKE_HTTP" \
    --account-id 999999 --license-key-file "$IPI_SCRATCH/license.key" \
    --canary city:81.2.69.160=GB --canary asn:1.128.0.0=1221 --psql "$IPI_PGBIN/psql" "$@" 2>&1)
status=$?
printf '%s\n' "$out" >"$IPI_SCRATCH/update.out"
printf '%s\n' "$out" | sed -E \
    -e "s#${IPI_FAKE_STORAGE}([^0-9]|\$)#http://storage-server\\1#g" \
    -e "s#${IPI_FAKE_HTTPS:-https://unused}([^0-9]|\$)#https://download-server\\1#g" \
    -e "s#${IPI_FAKE_HTTP}([^0-9]|\$)#http://download-server\\1#g" \
    -e "s/\(generation [0-9]+\)/(generation N)/" \
    -e "s/(the server refused it|The reload said): .*/\\1: <the server's error>/"
echo "exit status $status"
