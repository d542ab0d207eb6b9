/*
 * test_lru.c - cache/lru: eviction order, TTL expiry on an injected clock,
 * update in place, delete, capacity 1, a too-small buffer, exact counters, and
 * a multi-threaded run whose counters must add up (run under helgrind by
 * tests/unit/lru-helgrind.sh).
 */
#include "first.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "lru.h"

static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static struct lru *make(size_t capacity, int64_t ttl_ms)
{
    struct lru_config cfg = {.capacity = capacity, .ttl_ms = ttl_ms, .clock = fake_clock};
    struct lru *l = lru_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    return l;
}

static int put(struct lru *l, const char *k, const char *v)
{
    return lru_put(l, k, strlen(k), v, strlen(v));
}

/* The value of k as a string, or "" when absent. */
static const char *get(struct lru *l, const char *k)
{
    static char buf[64];
    size_t len = 0;
    if (lru_get(l, k, strlen(k), buf, sizeof buf - 1, &len) != CP_OK)
        return "";
    buf[len] = '\0';
    return buf;
}

static void evicts_the_least_recently_used(void)
{
    fake_now = 0;
    struct lru *l = make(3, 1000);
    put(l, "a", "1");
    put(l, "b", "2");
    put(l, "c", "3");
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "1"); /* a is now the most recent */
    put(l, "d", "4");                         /* evicts b */
    CU_ASSERT_STRING_EQUAL(get(l, "b"), "");
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "1");
    CU_ASSERT_STRING_EQUAL(get(l, "c"), "3");
    CU_ASSERT_STRING_EQUAL(get(l, "d"), "4");
    put(l, "e", "5"); /* evicts a (c, d, a were touched in that order) */
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "");
    struct lru_stats st;
    lru_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.evictions, 2);
    CU_ASSERT_EQUAL(st.entries, 3);
    lru_free(l);
}

static void expires_after_ttl(void)
{
    fake_now = 1000;
    struct lru *l = make(10, 100);
    put(l, "a", "1");
    lru_put_ttl(l, "short", 5, "x", 1, 10);
    fake_now = 1009;
    CU_ASSERT_STRING_EQUAL(get(l, "short"), "x");
    fake_now = 1010;
    CU_ASSERT_STRING_EQUAL(get(l, "short"), "");
    fake_now = 1099;
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "1");
    fake_now = 1100;
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "");
    struct lru_stats st;
    lru_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.expirations, 2);
    CU_ASSERT_EQUAL(st.hits, 2);
    CU_ASSERT_EQUAL(st.misses, 2);
    CU_ASSERT_EQUAL(st.entries, 0);
    lru_free(l);
}

static void update_in_place_refreshes_value_and_expiry(void)
{
    fake_now = 0;
    struct lru *l = make(2, 100);
    put(l, "a", "first");
    put(l, "b", "2");
    fake_now = 50;
    put(l, "a", "2nd"); /* shorter: same node; a becomes most recent */
    put(l, "c", "3");   /* evicts b, not a */
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "2nd");
    CU_ASSERT_STRING_EQUAL(get(l, "b"), "");
    fake_now = 120; /* a's refreshed expiry is 150 */
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "2nd");
    put(l, "a", "a much longer value than before");
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "a much longer value than before");
    struct lru_stats st;
    lru_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.entries, 2);
    lru_free(l);
}

static void delete_and_clear(void)
{
    fake_now = 0;
    struct lru *l = make(4, 100);
    put(l, "a", "1");
    put(l, "b", "2");
    CU_ASSERT_EQUAL(lru_delete(l, "a", 1), CP_OK);
    CU_ASSERT_EQUAL(lru_delete(l, "a", 1), CP_ERR_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "");
    CU_ASSERT_STRING_EQUAL(get(l, "b"), "2");
    lru_clear(l);
    CU_ASSERT_STRING_EQUAL(get(l, "b"), "");
    put(l, "c", "3");
    CU_ASSERT_STRING_EQUAL(get(l, "c"), "3");
    lru_free(l);
}

static void capacity_one(void)
{
    fake_now = 0;
    struct lru *l = make(1, 100);
    put(l, "a", "1");
    put(l, "b", "2");
    CU_ASSERT_STRING_EQUAL(get(l, "a"), "");
    CU_ASSERT_STRING_EQUAL(get(l, "b"), "2");
    put(l, "b", "3");
    CU_ASSERT_STRING_EQUAL(get(l, "b"), "3");
    struct lru_stats st;
    lru_get_stats(l, &st);
    CU_ASSERT_EQUAL(st.entries, 1);
    CU_ASSERT_EQUAL(st.evictions, 1);
    lru_free(l);
}

static void small_buffer_reports_needed_size(void)
{
    fake_now = 0;
    struct lru *l = make(2, 100);
    put(l, "k", "0123456789");
    char buf[4];
    size_t len = 0;
    CU_ASSERT_EQUAL(lru_get(l, "k", 1, buf, sizeof buf, &len), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(len, 10);
    lru_free(l);
}

static void binary_keys_and_invalid_config(void)
{
    fake_now = 0;
    struct lru *l = make(4, 100);
    const char k1[] = {'a', '\0', 'b'}, k2[] = {'a', '\0', 'c'};
    CU_ASSERT_EQUAL(lru_put(l, k1, 3, "1", 1), CP_OK);
    CU_ASSERT_EQUAL(lru_put(l, k2, 3, "2", 1), CP_OK);
    char v;
    size_t len;
    CU_ASSERT_EQUAL(lru_get(l, k1, 3, &v, 1, &len), CP_OK);
    CU_ASSERT_EQUAL(v, '1');
    CU_ASSERT_EQUAL(lru_get(l, k1, 2, &v, 1, &len), CP_ERR_NOT_FOUND);
    lru_free(l);
    struct lru_config zero = {.capacity = 0, .ttl_ms = 1};
    CU_ASSERT_PTR_NULL(lru_new(&zero));
    struct lru_config no_ttl = {.capacity = 1, .ttl_ms = 0};
    CU_ASSERT_PTR_NULL(lru_new(&no_ttl));
    lru_free(NULL);
}

#define THREADS  8
#define OPS      20000
#define KEYS     64
#define CAPACITY 32

static void *hammer(void *arg)
{
    struct lru *l = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (int i = 0; i < OPS; i++) {
        char key[16], val[32];
        int k = (int)(rand_r(&seed) % KEYS);
        int n = snprintf(key, sizeof key, "k%d", k);
        size_t len;
        switch (rand_r(&seed) % 4) {
        case 0: {
            int m = snprintf(val, sizeof val, "v%d", k);
            (void)lru_put(l, key, (size_t)n, val, (size_t)m);
            break;
        }
        case 3: (void)lru_delete(l, key, (size_t)n); break;
        default:
            if (lru_get(l, key, (size_t)n, val, sizeof val, &len) == CP_OK) {
                /* Values are never torn: always the one written for this key. */
                char want[32];
                int m = snprintf(want, sizeof want, "v%d", k);
                if (len != (size_t)m || memcmp(val, want, len) != 0)
                    return (void *)1;
            }
        }
    }
    return NULL;
}

static void threads_keep_the_structure_consistent(void)
{
    struct lru_config cfg = {.capacity = CAPACITY, .ttl_ms = 60000};
    struct lru *l = lru_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, hammer, l), 0);
    int torn = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(th[i], &r);
        torn += r != NULL;
    }
    CU_ASSERT_EQUAL(torn, 0);
    struct lru_stats st;
    lru_get_stats(l, &st);
    CU_ASSERT(st.entries <= CAPACITY);
    /* Every get was either a hit or a miss; about half the operations are gets. */
    CU_ASSERT(st.hits + st.misses > (uint64_t)THREADS * OPS / 3);
    CU_ASSERT(st.hits + st.misses < (uint64_t)THREADS * OPS * 2 / 3);
    /* After the storm the cache still works exactly. */
    lru_clear(l);
    CU_ASSERT_EQUAL(lru_put(l, "z", 1, "9", 1), CP_OK);
    char v;
    size_t len;
    CU_ASSERT_EQUAL(lru_get(l, "z", 1, &v, 1, &len), CP_OK);
    CU_ASSERT_EQUAL(v, '9');
    lru_free(l);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"evicts_the_least_recently_used", evicts_the_least_recently_used},
        {"expires_after_ttl", expires_after_ttl},
        {"update_in_place_refreshes_value_and_expiry", update_in_place_refreshes_value_and_expiry},
        {"delete_and_clear", delete_and_clear},
        {"capacity_one", capacity_one},
        {"small_buffer_reports_needed_size", small_buffer_reports_needed_size},
        {"binary_keys_and_invalid_config", binary_keys_and_invalid_config},
        {"threads_keep_the_structure_consistent", threads_keep_the_structure_consistent},
    };
    return unit_run_suite("lru", NULL, UNIT_CASES(tests));
}
