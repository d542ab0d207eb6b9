#!/bin/sh
# The CUnit programs again under valgrind memcheck: any invalid access, use of
# uninitialised memory or definite leak fails the run. test_producer and test_outbox are
# left out: librdkafka's mock cluster runs a dozen threads whose timeouts stretch past the
# suite's budget under valgrind (they run under ASan in the sanitizer build instead); so is
# test_metrics, which forks thousands of processes.
# Skipped (77) when valgrind is not installed.
command -v valgrind >/dev/null 2>&1 || exit 77
rc=0
for t in test_conf test_timefmt test_jsonv test_event test_router test_lua test_lru test_l2 \
    test_rkey test_issue_decide test_coupon_doc test_downstream test_kafka_log test_app \
    test_issuecode test_series test_rslot test_rcli test_rcli_redis test_holders test_ratelimit \
    test_jwtv test_db test_coupon_store test_redemption_store test_persist test_relay_db \
    test_reconcile test_checkout_store test_credis test_credis_checkout test_defer; do
    echo "== memcheck $t"
    valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --trace-children=no -q "./tests/unit/$t" >"tests/unit/$t.memcheck.out" 2>&1 || {
        rc=1
        tail -n 40 "tests/unit/$t.memcheck.out"
    }
    grep -E '^ +tests ' "tests/unit/$t.memcheck.out" || true
done
exit $rc
