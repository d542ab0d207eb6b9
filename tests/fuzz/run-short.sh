#!/bin/sh
# run-short.sh - `make check` step of fuzzer builds (configure CC=clang --enable-fuzzers):
# runs each libFuzzer target for FUZZ_SECONDS (default 20) on a scratch copy of its
# seed corpus, with the shared dictionary. A crash, sanitizer report or broken
# invariant fails the test; the reproducer is left as tests/fuzz/<target>-crash-*.
#
# Longer runs (documented campaign, e.g. one hour per target, corpus kept):
#   FUZZ_SECONDS=3600 FUZZ_CORPUS_DIR=$HOME/coupon-corpus sh tests/fuzz/run-short.sh
# then `tests/fuzz/fuzz_router <crash-file>` reproduces a finding.
set -u
srcdir=${srcdir:-.}
secs=${FUZZ_SECONDS:-20}
targets="fuzz_jsonv fuzz_event fuzz_router fuzz_rkey fuzz_jwtv fuzz_money"
work=$(mktemp -d "${TMPDIR:-/tmp}/coupon-fuzz.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM
corpus_root=${FUZZ_CORPUS_DIR:-$work}
status=0
for t in $targets; do
    exe=tests/fuzz/$t
    if [ ! -x "$exe" ]; then
        echo "FAIL $t: $exe not built"
        status=1
        continue
    fi
    mkdir -p "$corpus_root/$t" || exit 99
    if "$exe" -max_total_time="$secs" -print_final_stats=1 \
        -dict="$srcdir/tests/fuzz/json.dict" -artifact_prefix="tests/fuzz/$t-" \
        "$corpus_root/$t" "$srcdir/tests/fuzz/corpus/$t" >"$work/$t.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
        echo "PASS $t: ${runs:-?} inputs in ${secs}s"
    else
        echo "FAIL $t:"
        tail -n 60 "$work/$t.log"
        status=1
    fi
done
exit $status
