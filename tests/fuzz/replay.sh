#!/bin/sh
# replay.sh - `make check` step of ordinary builds: runs each fuzz target's
# harness (linked with replay_main.c instead of libFuzzer) once over its seed
# corpus, so the harnesses stay compiling and every seed keeps passing.
set -u
srcdir=${srcdir:-.}
status=0
for t in fuzz_jsonv fuzz_event fuzz_router fuzz_rkey fuzz_jwtv fuzz_money; do
    if tests/fuzz/$t "$srcdir/tests/fuzz/corpus/$t"; then
        echo "PASS $t"
    else
        echo "FAIL $t"
        status=1
    fi
done
exit $status
