#!/usr/bin/env bash
# Runs the cargo fuzz targets of fuzz/ (libFuzzer; docs/reliability.md, "Fuzzing"), each for
# a bounded time, one after the other (one process: the machine may be shared).
#
#   bash scripts/fuzz.sh [TARGET...]      # default: every target (`cargo fuzz list`)
#   FUZZ_SECONDS=60                       # per target (default 60; `make test` runs 5)
#   FUZZ_FRESH=1                          # leave fuzz/scratch alone (make test's smoke run)
#   bash scripts/fuzz.sh --merge [TARGET...]
#
# Inputs: the committed corpus (fuzz/corpus/TARGET: hand-made seeds, and found/ with inputs
# earlier runs discovered) and crash inputs (fuzz/regressions/TARGET), read only, with the
# target's dictionary (fuzz/dict/TARGET.dict); new coverage goes to fuzz/scratch/TARGET (not
# committed, kept between runs). --merge rewrites fuzz/corpus/TARGET/found/ as the smallest
# set of inputs from found/ and scratch/ that adds edge coverage to the seeds (those up to
# 8 KiB). A
# crash, a timeout (10 s for one input) or an out-of-memory (1 GiB) is saved under
# fuzz/artifacts/TARGET/ and fails the run; commit it under fuzz/regressions/TARGET/ and add a
# `cargo test` in core that replays it. Prints executions per target at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
# cargo fuzz passes nightly-only flags (-Zsanitizer=address, -Cpasses=sancov-module, ...).
# The project builds with stable Rust only; RUSTC_BOOTSTRAP=1 makes the stable compiler
# accept them (the only use of it in the project: the fuzz builds, never the extension).
export RUSTC_BOOTSTRAP=1

seconds=${FUZZ_SECONDS:-60}
merge=
if [ "${1:-}" = --merge ]; then
    merge=1
    shift
fi
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "[fuzz] building ${targets[*]}"
cargo fuzz build 2>&1 | grep -Ev '^\s+(Compiling|Downloaded|Downloading)' || true
[ "${PIPESTATUS[0]}" = 0 ] || { echo "[fuzz] build failed" >&2; exit 1; }

declare -A max_len=([mmdb]=32768)
# The mmdb target writes each input to a file in the temporary directory: keep those here.
export TMPDIR="$ROOT/fuzz/scratch/tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"

if [ -n "$merge" ]; then
    for t in "${targets[@]}"; do
        # Into a copy of the seeds: libFuzzer's merge keeps what the first directory holds
        # and adds, from the others, each input that brings new edges (-use_counters=0: hit
        # counts do not count, which keeps the set small).
        into=$(mktemp -d)
        find "corpus/$t" -maxdepth 1 -type f -exec cp {} "$into/" \;
        sources=()
        for d in "corpus/$t/found" "scratch/$t"; do [ -d "$d" ] && sources+=("$d"); done
        cargo fuzz run "$t" "$into" "${sources[@]}" -- -merge=1 -use_counters=0 \
            -max_len="${max_len[$t]:-4096}" >"$into.log" 2>&1 \
            || { tail -n 20 "$into.log" >&2; exit 1; }
        rm -rf "corpus/$t/found"
        mkdir -p "corpus/$t/found"
        # Only small inputs are committed (the mmdb target finds many 20 KiB files).
        for f in "$into"/*; do
            [ -e "corpus/$t/$(basename "$f")" ] || [ "$(stat -c %s "$f")" -gt 8192 ] \
                || mv "$f" "corpus/$t/found/"
        done
        rm -rf "$into" "$into.log"
        echo "[fuzz] $t: $(find "corpus/$t/found" -type f | wc -l) inputs in corpus/$t/found," \
            "$(du -sh --apparent-size "corpus/$t/found" | cut -f1)"
    done
    exit 0
fi
failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "scratch/$t" "artifacts/$t"
    if [ -n "${FUZZ_FRESH:-}" ]; then
        # A short run from the committed corpus alone: a grown scratch corpus would make
        # loading it take longer than the run.
        rm -rf "$TMPDIR/corpus-$t"
        mkdir -p "$TMPDIR/corpus-$t"
        corpora=("$TMPDIR/corpus-$t" "corpus/$t")
    else
        corpora=("scratch/$t" "corpus/$t")
    fi
    [ -d "regressions/$t" ] && corpora+=("regressions/$t")
    dict=()
    [ -f "dict/$t.dict" ] && dict=(-dict="dict/$t.dict")
    log="artifacts/$t/last-run.log"
    echo "[fuzz] $t: ${seconds}s"
    rc=0
    cargo fuzz run "$t" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
        -max_len="${max_len[$t]:-4096}" -artifact_prefix="artifacts/$t/" \
        -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
    if [ "$rc" != 0 ]; then
        failed+=("$t")
        echo "[fuzz] $t FAILED (exit $rc); the end of $log:" >&2
        tail -n 40 "$log" >&2
        ls -1 "artifacts/$t" | grep -v last-run.log | sed "s|^|[fuzz]   input: fuzz/artifacts/$t/|" >&2 || true
    fi
    summary+=("$(printf '%-10s %12s %8s %8s %s' "$t" "${runs:-?}" "${secs:-?}" "${cov:-?}" \
        "$([ "$rc" = 0 ] && echo ok || echo FAILED)")")
done

printf '[fuzz] %-10s %12s %8s %8s %s\n' target executions seconds coverage result
for line in "${summary[@]}"; do echo "[fuzz] $line"; done
if [ ${#failed[@]} -gt 0 ]; then
    echo "[fuzz] failed: ${failed[*]} (reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET INPUT)" >&2
    exit 1
fi
