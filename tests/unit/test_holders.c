/* holders: the sold-out holder snapshots - answers, expiry, leases, budget. */
#include "first.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "holders.h"
#include "unit_main.h"

/* n holders of one coupon: users 1000 + 7k (listed newest first), sequence k + 1. */
static struct holder *members(size_t n)
{
    struct holder *m = calloc(n, sizeof *m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    for (size_t k = 0; k < n; k++)
        m[n - 1 - k] = (struct holder){1000 + 7 * (int64_t)k, (int64_t)k + 1, 5000 + (int64_t)k};
    return m;
}

static void answers_holders_and_others_until_expiry(void)
{
    struct holders *h = holders_new(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    int64_t seq = -1, at = -1;
    CU_ASSERT_EQUAL(holders_lookup(h, 9, 1000, 0, &seq, &at), CP_ERR_NOT_FOUND);
    uint64_t lease = 0;
    CU_ASSERT_EQUAL_FATAL(holders_begin_fetch(h, 9, 0, 2000, &lease), CP_OK);
    CU_ASSERT_EQUAL(holders_put(h, lease, members(50), 50, 1000, 0), CP_OK);
    for (int64_t k = 0; k < 50; k++) {
        CU_ASSERT_EQUAL(holders_lookup(h, 9, 1000 + 7 * k, 999, &seq, &at), 1);
        CU_ASSERT_EQUAL(seq, k + 1);
        CU_ASSERT_EQUAL(at, 5000 + k);
    }
    /* Between two holders, before the first, after the last. */
    CU_ASSERT_EQUAL(holders_lookup(h, 9, 1001, 999, &seq, &at), 0);
    CU_ASSERT_EQUAL(holders_lookup(h, 9, 999, 999, &seq, &at), 0);
    CU_ASSERT_EQUAL(holders_lookup(h, 9, 1000 + 7 * 50, 999, &seq, &at), 0);
    /* Another coupon has no snapshot; this one ends at expires_at_ms exactly. */
    CU_ASSERT_EQUAL(holders_lookup(h, 10, 1000, 999, &seq, &at), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(holders_lookup(h, 9, 1000, 1000, &seq, &at), CP_ERR_NOT_FOUND);
    struct holders_stats st;
    holders_get_stats(h, 999, &st);
    CU_ASSERT_EQUAL(st.hits, 50);
    CU_ASSERT_EQUAL(st.misses, 3);
    CU_ASSERT_EQUAL(st.installed, 1);
    CU_ASSERT_EQUAL(st.entries, 50);
    holders_get_stats(h, 1000, &st);
    CU_ASSERT_EQUAL(st.entries, 0);
    holders_free(h);
}

static void one_lease_per_coupon_until_it_ends(void)
{
    struct holders *h = holders_new(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t a = 0, b = 0;
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 9, 0, 2000, &a), CP_OK);
    /* Another thread meanwhile: no second fetch of the same coupon... */
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 9, 1999, 2000, &b), CP_ERR_CONFLICT);
    /* ...unless the first lease ran out; the first fetcher's result is then refused. */
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 9, 2000, 2000, &b), CP_OK);
    CU_ASSERT_NOT_EQUAL(a, b);
    CU_ASSERT_EQUAL(holders_put(h, a, members(3), 3, 5000, 2000), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(holders_put(h, b, members(4), 4, 5000, 2000), CP_OK);
    int64_t seq, at;
    CU_ASSERT_EQUAL(holders_lookup(h, 9, 1000 + 7 * 3, 2001, &seq, &at), 1);
    /* A live snapshot is not fetched again; an aborted lease frees the coupon at once. */
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 9, 2001, 2000, &a), CP_ERR_CONFLICT);
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 11, 2001, 2000, &a), CP_OK);
    holders_abort(h, a);
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 11, 2001, 2000, &a), CP_OK);
    struct holders_stats st;
    holders_get_stats(h, 2001, &st);
    CU_ASSERT_EQUAL(st.discarded, 1);
    CU_ASSERT_EQUAL(st.installed, 1);
    holders_free(h);
}

static void an_invalidation_during_the_fetch_discards_it(void)
{
    struct holders *h = holders_new(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t a = 0, b = 0;
    int64_t seq, at;
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 9, 0, 2000, &a), CP_OK);
    holders_forget(h, 9);
    /* The coupon changed while a was reading: a's view is stale, even if another fetch
     * began since. */
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 9, 1, 2000, &b), CP_OK);
    CU_ASSERT_EQUAL(holders_put(h, a, members(3), 3, 1000, 1), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(holders_lookup(h, 9, 1000, 2, &seq, &at), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(holders_put(h, b, members(3), 3, 1000, 2), CP_OK);
    CU_ASSERT_EQUAL(holders_lookup(h, 9, 1000, 2, &seq, &at), 1);
    /* A clear (the subscriber reconnected) drops snapshots and leases alike. */
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 12, 2, 2000, &a), CP_OK);
    holders_clear(h);
    CU_ASSERT_EQUAL(holders_lookup(h, 9, 1000, 3, &seq, &at), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(holders_put(h, a, members(2), 2, 1000, 3), CP_ERR_NOT_FOUND);
    holders_free(h);
}

static void the_budget_refuses_large_coupons_until_expiry(void)
{
    struct holders *h = holders_new(10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(holders_capacity(h), 10);
    uint64_t l = 0;
    int64_t seq, at;
    /* Too many for the budget: refused, and not fetched again before the expiry. */
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 1, 0, 2000, &l), CP_OK);
    CU_ASSERT_EQUAL(holders_put(h, l, NULL, 11, 1000, 0), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(holders_lookup(h, 1, 1000, 1, &seq, &at), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 1, 999, 2000, &l), CP_ERR_CONFLICT);
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 1, 1000, 2000, &l), CP_OK);
    holders_abort(h, l);
    /* The budget is shared: 6 + 4 fit, a third coupon does not while both live... */
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 2, 0, 2000, &l), CP_OK);
    CU_ASSERT_EQUAL(holders_put(h, l, members(6), 6, 500, 0), CP_OK);
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 3, 0, 2000, &l), CP_OK);
    CU_ASSERT_EQUAL(holders_put(h, l, members(4), 4, 800, 0), CP_OK);
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 4, 100, 2000, &l), CP_OK);
    CU_ASSERT_EQUAL(holders_put(h, l, members(1), 1, 900, 100), CP_ERR_LIMIT);
    /* ...and does once one has expired. */
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 5, 500, 2000, &l), CP_OK);
    CU_ASSERT_EQUAL(holders_put(h, l, members(6), 6, 1500, 500), CP_OK);
    struct holders_stats st;
    holders_get_stats(h, 500, &st);
    CU_ASSERT_EQUAL(st.entries, 10);
    CU_ASSERT_EQUAL(st.refused, 2);
    holders_free(h);
}

static void a_user_listed_twice_is_kept_once(void)
{
    struct holders *h = holders_new(8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    struct holder *m = calloc(5, sizeof *m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    m[0] = (struct holder){30, 3, 300};
    m[1] = (struct holder){10, 1, 100};
    m[2] = (struct holder){30, 3, 300};
    m[3] = (struct holder){20, 2, 200};
    m[4] = (struct holder){10, 1, 100};
    uint64_t l = 0;
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 1, 0, 2000, &l), CP_OK);
    CU_ASSERT_EQUAL(holders_put(h, l, m, 5, 1000, 0), CP_OK);
    struct holders_stats st;
    holders_get_stats(h, 0, &st);
    CU_ASSERT_EQUAL(st.entries, 3);
    int64_t seq, at;
    for (int64_t u = 10; u <= 30; u += 10) {
        CU_ASSERT_EQUAL(holders_lookup(h, 1, u, 0, &seq, &at), 1);
        CU_ASSERT_EQUAL(seq, u / 10);
        CU_ASSERT_EQUAL(at, u * 10);
    }
    CU_ASSERT_EQUAL(holders_lookup(h, 1, 15, 0, &seq, &at), 0);
    holders_free(h);
}

static void a_coupon_without_holders_has_an_empty_snapshot(void)
{
    /* Sold out with a stock of 0: HSCAN finds nobody, and nobody is a holder. */
    struct holders *h = holders_new(8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t l = 0;
    int64_t seq, at;
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 1, 0, 2000, &l), CP_OK);
    CU_ASSERT_EQUAL(holders_put(h, l, NULL, 0, 1000, 0), CP_OK);
    CU_ASSERT_EQUAL(holders_lookup(h, 1, 42, 1, &seq, &at), 0);
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 1, 1, 2000, &l), CP_ERR_CONFLICT);
    holders_free(h);
}

static void every_slot_live_refuses_a_new_coupon(void)
{
    struct holders *h = holders_new(1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    uint64_t l = 0;
    for (int64_t c = 1; c <= HOLDERS_SLOTS; c++) {
        CU_ASSERT_EQUAL(holders_begin_fetch(h, c, 0, 2000, &l), CP_OK);
        CU_ASSERT_EQUAL(holders_put(h, l, members(2), 2, 1000 + c, 0), CP_OK);
    }
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 100, 0, 2000, &l), CP_ERR_CONFLICT);
    /* The first slot's snapshot expired at 1001: its slot serves the new coupon. */
    CU_ASSERT_EQUAL(holders_begin_fetch(h, 100, 1001, 2000, &l), CP_OK);
    int64_t seq, at;
    CU_ASSERT_EQUAL(holders_lookup(h, 2, 1000, 1001, &seq, &at), 1);
    CU_ASSERT_EQUAL(holders_lookup(h, 1, 1000, 1001, &seq, &at), CP_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(holders_new(0));
    holders_free(NULL);
    holders_free(h);
}

#define THREADS 8
#define LOOKUPS 20000

struct reader {
    struct holders *h;
    int wrong;
};

/* Readers look up while the main thread keeps replacing the snapshot: every answer
 * they get must be one the snapshot could give. */
static void *read_loop(void *arg)
{
    struct reader *r = arg;
    for (int i = 0; i < LOOKUPS; i++) {
        int64_t k = i % 64, seq = 0, at = 0;
        int rc = holders_lookup(r->h, 1, 1000 + 7 * k, 0, &seq, &at);
        if (rc == 1 && (seq != k + 1 || at != 5000 + k))
            r->wrong++;
        else if (rc == 0 || (rc != 1 && rc != CP_ERR_NOT_FOUND))
            r->wrong++; /* every user looked up is a holder in every snapshot */
    }
    return NULL;
}

static void lookups_race_replacements_safely(void)
{
    struct holders *h = holders_new(1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    pthread_t th[THREADS];
    struct reader rd[THREADS];
    for (int i = 0; i < THREADS; i++) {
        rd[i] = (struct reader){h, 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, read_loop, &rd[i]), 0);
    }
    for (int round = 0; round < 200; round++) {
        uint64_t l = 0;
        holders_forget(h, 1);
        if (holders_begin_fetch(h, 1, 0, 2000, &l) == CP_OK)
            CU_ASSERT_EQUAL(holders_put(h, l, members(64), 64, 1000, 0), CP_OK);
    }
    for (int i = 0; i < THREADS; i++) {
        CU_ASSERT_EQUAL(pthread_join(th[i], NULL), 0);
        CU_ASSERT_EQUAL(rd[i].wrong, 0);
    }
    holders_free(h);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"answers_holders_and_others_until_expiry", answers_holders_and_others_until_expiry},
        {"one_lease_per_coupon_until_it_ends", one_lease_per_coupon_until_it_ends},
        {"an_invalidation_during_the_fetch_discards_it",
         an_invalidation_during_the_fetch_discards_it},
        {"the_budget_refuses_large_coupons_until_expiry",
         the_budget_refuses_large_coupons_until_expiry},
        {"a_user_listed_twice_is_kept_once", a_user_listed_twice_is_kept_once},
        {"a_coupon_without_holders_has_an_empty_snapshot",
         a_coupon_without_holders_has_an_empty_snapshot},
        {"every_slot_live_refuses_a_new_coupon", every_slot_live_refuses_a_new_coupon},
        {"lookups_race_replacements_safely", lookups_race_replacements_safely},
    };
    return unit_run_suite("holders", NULL, UNIT_CASES(tests));
}
