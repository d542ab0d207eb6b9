/*
 * test_app.c - what a worker derives from its configuration (fcgi-app/app.c): the
 * cache settings at the edges of every key's allowed range. The largest l2_ttl_s
 * once overflowed an int in milliseconds (UBSan: signed overflow; gcc: a negative
 * TTL, "worker start failed", a respawn every 500 ms).
 */
#include "first.h"

#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "app.h"
#include "conf.h"
#include "cp_err.h"
#include "unit_main.h"

static void cache_configs_hold_the_largest_allowed_values(void)
{
    struct cp_conf c;
    char err[200];
    conf_defaults(&c);
    CU_ASSERT_EQUAL_FATAL(conf_set(&c, "l2_ttl_s", "2592000", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL_FATAL(conf_set(&c, "l2_negative_ttl_s", "3600", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL_FATAL(conf_set(&c, "l1_ttl_ms", "86400000", err, sizeof err), CP_OK);
    CU_ASSERT_EQUAL_FATAL(conf_set(&c, "l1_capacity", "10000000", err, sizeof err), CP_OK);
    struct lru_config l1;
    struct l2_config l2;
    app_cache_configs(&c, &l1, &l2);
    CU_ASSERT_EQUAL(l2.ttl_ms, INT64_C(2592000000));
    CU_ASSERT_EQUAL(l2.negative_ttl_ms, INT64_C(3600000));
    CU_ASSERT_EQUAL(l1.ttl_ms, INT64_C(86400000));
    CU_ASSERT_EQUAL(l1.capacity, 10000000);
    /* What the worker then builds from them must exist (it refuses ttl <= 0). */
    struct l2 *cache = l2_new(&l2, &l2_redis_ops);
    CU_ASSERT_PTR_NOT_NULL(cache);
    l2_free(cache);
    struct lru *lru = lru_new(&l1);
    CU_ASSERT_PTR_NOT_NULL(lru);
    lru_free(lru);
}

static void cache_configs_of_the_defaults(void)
{
    struct cp_conf c;
    conf_defaults(&c);
    struct lru_config l1;
    struct l2_config l2;
    app_cache_configs(&c, &l1, &l2);
    CU_ASSERT_EQUAL(l2.ttl_ms, 1800 * 1000);
    CU_ASSERT_EQUAL(l2.negative_ttl_ms, 5 * 1000);
    CU_ASSERT_EQUAL(l1.ttl_ms, 10000);
    CU_ASSERT_EQUAL(l1.capacity, 1000);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"cache_configs_hold_the_largest_allowed_values",
         cache_configs_hold_the_largest_allowed_values},
        {"cache_configs_of_the_defaults", cache_configs_of_the_defaults},
    };
    return unit_run_suite("app", NULL, UNIT_CASES(tests));
}
