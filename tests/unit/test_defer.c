/*
 * test_defer.c - fcgi-app/defer, the worker's "park now, finish at the end of the
 * round": each kind is flushed once per round with every state parked with it, in
 * park order, before any request is finished; each parked request is finished once,
 * between the host's resume and answer, with its own copy of the state; nothing is
 * parked without a begun request, twice, too large, or past the kinds' bound; a
 * round leaves nothing behind.
 */
#include "first.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "defer.h"

/* What happened, in order: "F<kind>:<n>" per flush, "R<slot>" "f<value>" "A<slot>". */
static char trace[512];

static void note(const char *fmt, ...)
{
    size_t used = strlen(trace);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(trace + used, sizeof trace - used, fmt, ap);
    va_end(ap);
}

struct state {
    int value;
    int flushed;
};

static void flush_a(struct app_thread *t, void *const *states, int n)
{
    (void)t;
    note("Fa:%d ", n);
    for (int i = 0; i < n; i++)
        ((struct state *)states[i])->flushed++;
}

static void flush_b(struct app_thread *t, void *const *states, int n)
{
    (void)t;
    note("Fb:%d ", n);
    for (int i = 0; i < n; i++)
        ((struct state *)states[i])->flushed++;
}

static void finish(struct app_thread *t, void *state, struct http_response *resp)
{
    (void)t;
    const struct state *s = state;
    CU_ASSERT_EQUAL(s->flushed, 1); /* its flush ran first, once */
    note("f%d ", s->value);
    resp->status = 200 + s->value;
}

static const struct defer_ops kind_a = {.flush = flush_a, .finish = finish};
static const struct defer_ops kind_b = {.flush = flush_b, .finish = finish};

static char resp_buf[64];

static void resume(void *ctx, int slot, struct http_response *resp)
{
    (void)ctx;
    http_response_init(resp, resp_buf, sizeof resp_buf);
    note("R%d ", slot);
}

static void answer(void *ctx, int slot, struct http_response *resp)
{
    int *answered = ctx;
    answered[slot] = resp->status;
    note("A%d ", slot);
}

/* Begins slot and parks a state of value v with ops (NULL: not parked). */
static int park(struct defer *d, int slot, const struct defer_ops *ops, int v)
{
    defer_begin(d, slot);
    struct state s = {.value = v};
    int rc = ops == NULL ? CP_OK : defer_park(d, ops, &s, sizeof s);
    s.value = -1; /* the parked copy is the module's */
    return rc;
}

static void each_kind_is_flushed_once_then_each_request_finished_in_order(void)
{
    struct defer *d = defer_new(4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int answered[4] = {0};
    trace[0] = '\0';
    CU_ASSERT_EQUAL(park(d, 2, &kind_a, 1), CP_OK);
    CU_ASSERT_TRUE(defer_parked(d));
    CU_ASSERT_EQUAL(park(d, 0, NULL, 0), CP_OK); /* answered at once: not parked */
    CU_ASSERT_FALSE(defer_parked(d));
    CU_ASSERT_EQUAL(park(d, 1, &kind_b, 2), CP_OK);
    CU_ASSERT_EQUAL(park(d, 3, &kind_a, 3), CP_OK);
    CU_ASSERT_EQUAL(defer_count(d), 3);
    const struct defer_host host = {.resume = resume, .answer = answer, .ctx = answered};
    defer_round(d, NULL, &host);
    CU_ASSERT_STRING_EQUAL(trace, "Fa:2 Fb:1 R2 f1 A2 R1 f2 A1 R3 f3 A3 ");
    CU_ASSERT_EQUAL(answered[2], 201);
    CU_ASSERT_EQUAL(answered[1], 202);
    CU_ASSERT_EQUAL(answered[3], 203);
    CU_ASSERT_EQUAL(answered[0], 0);
    CU_ASSERT_EQUAL(defer_count(d), 0);
    trace[0] = '\0';
    defer_round(d, NULL, &host); /* nothing left: nothing flushed */
    CU_ASSERT_STRING_EQUAL(trace, "");
    defer_free(d);
}

static void parking_is_refused_where_it_cannot_be_kept(void)
{
    struct defer *d = defer_new(8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct state s = {0};
    CU_ASSERT_EQUAL(defer_park(NULL, &kind_a, &s, sizeof s), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(defer_park(d, &kind_a, &s, sizeof s), CP_ERR_LIMIT); /* nothing begun */
    defer_begin(d, 0);
    char big[DEFER_STATE_MAX + 1] = {0};
    CU_ASSERT_EQUAL(defer_park(d, &kind_a, big, sizeof big), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(defer_park(d, &kind_a, &s, sizeof s), CP_OK);
    CU_ASSERT_EQUAL(defer_park(d, &kind_a, &s, sizeof s), CP_ERR_LIMIT); /* twice */
    /* DEFER_KINDS_MAX kinds per round: one more is answered at once. */
    struct defer_ops kinds[DEFER_KINDS_MAX];
    for (int k = 0; k < DEFER_KINDS_MAX; k++) {
        kinds[k] = kind_a;
        defer_begin(d, 1 + k);
        int want = k < DEFER_KINDS_MAX - 1 ? CP_OK : CP_ERR_LIMIT;
        CU_ASSERT_EQUAL(defer_park(d, &kinds[k], &s, sizeof s), want);
    }
    defer_begin(d, 99); /* no such slot */
    CU_ASSERT_EQUAL(defer_park(d, &kind_a, &s, sizeof s), CP_ERR_LIMIT);
    CU_ASSERT_FALSE(defer_parked(d));
    CU_ASSERT_PTR_NULL(defer_new(0));
    defer_free(d);
    defer_free(NULL);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"each_kind_is_flushed_once_then_each_request_finished_in_order",
         each_kind_is_flushed_once_then_each_request_finished_in_order},
        {"parking_is_refused_where_it_cannot_be_kept", parking_is_refused_where_it_cannot_be_kept},
    };
    return unit_run_suite("defer", NULL, UNIT_CASES(tests));
}
