/*
 * test_l2.c - cache/l2 against a real redis-server (tests/unit/redis_fixture):
 * a hit needs no loader; 200 concurrent cold readers in one process and two
 * instances ("processes") with 100 readers each call the loader exactly once;
 * "not found" is cached for the negative TTL only; loader errors are never
 * cached; invalidation; with no Redis connection the loader serves directly.
 * The cache talks to Redis through rcli (single server), as coupon-fcgi does.
 */
#include "first.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "l2.h"
#include "redis_fixture.h"

struct loader {
    atomic_int calls;
    int rc;       /* what it answers */
    int delay_ms; /* how long a load takes */
    const char *value;
};

static int load(void *arg, char *buf, size_t cap, size_t *len)
{
    struct loader *l = arg;
    atomic_fetch_add(&l->calls, 1);
    if (l->delay_ms > 0) {
        struct timespec ts = {0, l->delay_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (l->rc != CP_OK)
        return l->rc;
    size_t n = strlen(l->value);
    if (n > cap)
        return CP_ERR_LIMIT;
    memcpy(buf, l->value, n);
    *len = n;
    return CP_OK;
}

static struct l2 *make(int64_t negative_ttl_ms)
{
    struct l2_config cfg = {.ttl_ms = 60000,
                            .negative_ttl_ms = negative_ttl_ms,
                            .lock_ttl_ms = 2000,
                            .wait_step_ms = 2};
    struct l2 *l2 = l2_new(&cfg, &l2_redis_ops);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l2);
    return l2;
}

static int get(struct l2 *l2, struct rcli *c, const char *key, struct loader *l, char *out)
{
    char buf[256];
    size_t len = 0;
    int rc = l2_get(l2, c, key, strlen(key), load, l, buf, sizeof buf - 1, &len, NULL);
    if (rc == CP_OK && out != NULL) {
        memcpy(out, buf, len);
        out[len] = '\0';
    }
    return rc;
}

static void hit_after_load(void)
{
    struct l2 *l2 = make(5000);
    struct rcli *c = redis_fixture_client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct loader l = {.rc = CP_OK, .value = "{\"id\":1}"};
    char out[256];
    CU_ASSERT_EQUAL(get(l2, c, "t:hit", &l, out), CP_OK);
    CU_ASSERT_STRING_EQUAL(out, "{\"id\":1}");
    CU_ASSERT_EQUAL(get(l2, c, "t:hit", &l, out), CP_OK);
    CU_ASSERT_STRING_EQUAL(out, "{\"id\":1}");
    CU_ASSERT_EQUAL(atomic_load(&l.calls), 1);
    struct l2_stats st;
    l2_get_stats(l2, &st);
    CU_ASSERT_EQUAL(st.hits, 1);
    CU_ASSERT_EQUAL(st.misses, 1);
    CU_ASSERT_EQUAL(st.loads, 1);
    redisReply *r = rcli_command(c, "PTTL t:hit");
    CU_ASSERT(r != NULL && r->integer > 0 && r->integer <= 60000);
    freeReplyObject(r);
    rcli_free(c);
    l2_free(l2);
}

struct reader {
    struct l2 *l2;
    struct loader *l;
    const char *key;
    pthread_barrier_t *start;
    int rc;
    char out[64];
};

static void *read_once(void *arg)
{
    struct reader *rd = arg;
    struct rcli *c = redis_fixture_client();
    pthread_barrier_wait(rd->start);
    rd->rc = c == NULL ? CP_ERR_UNAVAILABLE : get(rd->l2, c, rd->key, rd->l, rd->out);
    rcli_free(c);
    return NULL;
}

/* n readers spread over the given l2 instances, all released at once. */
static void concurrent_cold_reads(struct l2 **inst, int ninst, int n, const char *key,
                                  struct loader *l)
{
    static struct reader rd[200];
    static pthread_t th[200];
    pthread_barrier_t start;
    CU_ASSERT_FATAL(n <= 200);
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        rd[i] = (struct reader){.l2 = inst[i % ninst], .l = l, .key = key, .start = &start};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, read_once, &rd[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ok += rd[i].rc == CP_OK && strcmp(rd[i].out, l->value) == 0;
    }
    pthread_barrier_destroy(&start);
    CU_ASSERT_EQUAL(ok, n);
}

static void one_load_for_200_readers_in_one_process(void)
{
    struct l2 *l2 = make(5000);
    struct loader l = {.rc = CP_OK, .delay_ms = 20, .value = "doc-one"};
    concurrent_cold_reads(&l2, 1, 200, "t:single", &l);
    CU_ASSERT_EQUAL(atomic_load(&l.calls), 1);
    l2_free(l2);
}

static void one_load_across_two_instances(void)
{
    struct l2 *inst[2] = {make(5000), make(5000)};
    struct loader l = {.rc = CP_OK, .delay_ms = 30, .value = "doc-two"};
    concurrent_cold_reads(inst, 2, 200, "t:cross", &l);
    CU_ASSERT_EQUAL(atomic_load(&l.calls), 1);
    struct l2_stats a, b;
    l2_get_stats(inst[0], &a);
    l2_get_stats(inst[1], &b);
    CU_ASSERT_EQUAL(a.loads + b.loads, 1);
    l2_free(inst[0]);
    l2_free(inst[1]);
}

static void not_found_is_cached_for_the_negative_ttl(void)
{
    struct l2 *l2 = make(150);
    struct rcli *c = redis_fixture_client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct loader l = {.rc = CP_ERR_NOT_FOUND};
    for (int i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(get(l2, c, "t:missing", &l, NULL), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(atomic_load(&l.calls), 1);
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    CU_ASSERT_EQUAL(get(l2, c, "t:missing", &l, NULL), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(atomic_load(&l.calls), 2);
    struct l2_stats st;
    l2_get_stats(l2, &st);
    CU_ASSERT_EQUAL(st.negative_hits, 19);
    rcli_free(c);
    l2_free(l2);
}

static void loader_errors_are_not_cached(void)
{
    struct l2 *l2 = make(5000);
    struct rcli *c = redis_fixture_client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct loader l = {.rc = CP_ERR_UNAVAILABLE};
    CU_ASSERT_EQUAL(get(l2, c, "t:err", &l, NULL), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(get(l2, c, "t:err", &l, NULL), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(atomic_load(&l.calls), 2);
    l.rc = CP_OK;
    l.value = "back";
    char out[256];
    CU_ASSERT_EQUAL(get(l2, c, "t:err", &l, out), CP_OK);
    CU_ASSERT_STRING_EQUAL(out, "back");
    redisReply *r = rcli_command(c, "EXISTS t:err:lock");
    CU_ASSERT(r != NULL && r->integer == 0); /* the loader's lock was released */
    freeReplyObject(r);
    rcli_free(c);
    l2_free(l2);
}

static void invalidate_forces_a_new_load(void)
{
    struct l2 *l2 = make(5000);
    struct rcli *c = redis_fixture_client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct loader l = {.rc = CP_OK, .value = "v1"};
    char out[256];
    CU_ASSERT_EQUAL(get(l2, c, "t:inv", &l, out), CP_OK);
    l.value = "v2";
    CU_ASSERT_EQUAL(get(l2, c, "t:inv", &l, out), CP_OK);
    CU_ASSERT_STRING_EQUAL(out, "v1");
    CU_ASSERT_EQUAL(l2_invalidate(l2, c, "t:inv", 5), CP_OK);
    CU_ASSERT_EQUAL(get(l2, c, "t:inv", &l, out), CP_OK);
    CU_ASSERT_STRING_EQUAL(out, "v2");
    CU_ASSERT_EQUAL(atomic_load(&l.calls), 2);
    rcli_free(c);
    l2_free(l2);
}

static void without_redis_the_loader_serves(void)
{
    struct l2 *l2 = make(5000);
    struct loader l = {.rc = CP_OK, .value = "direct"};
    char out[256];
    CU_ASSERT_EQUAL(get(l2, NULL, "t:noredis", &l, out), CP_OK);
    CU_ASSERT_STRING_EQUAL(out, "direct");
    CU_ASSERT_EQUAL(get(l2, NULL, "t:noredis", &l, out), CP_OK);
    CU_ASSERT_EQUAL(atomic_load(&l.calls), 2);
    l2_free(l2);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"hit_after_load", hit_after_load},
        {"one_load_for_200_readers_in_one_process", one_load_for_200_readers_in_one_process},
        {"one_load_across_two_instances", one_load_across_two_instances},
        {"not_found_is_cached_for_the_negative_ttl", not_found_is_cached_for_the_negative_ttl},
        {"loader_errors_are_not_cached", loader_errors_are_not_cached},
        {"invalidate_forces_a_new_load", invalidate_forces_a_new_load},
        {"without_redis_the_loader_serves", without_redis_the_loader_serves},
    };
    return redis_fixture_run("l2", UNIT_CASES(tests));
}
