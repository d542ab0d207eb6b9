#!/bin/sh
# Runs the LRU's unit test (including its 8-thread run) under valgrind's helgrind,
# which reports any access to shared state without the lock. Skipped (77) when
# valgrind is not installed.
command -v valgrind >/dev/null 2>&1 || exit 77
exec valgrind --tool=helgrind --error-exitcode=1 -q ./tests/unit/test_lru
