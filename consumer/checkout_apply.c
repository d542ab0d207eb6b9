#include "first.h"

#include "checkout_apply.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkout_plan.h"
#include "checkout_store.h"
#include "clock.h"
#include "cp_err.h"
#include "credis_checkout.h"
#include "db.h"
#include "leader.h"
#include "log.h"
#include "rcli.h"

#define LEADER_CHECK_MS 2000 /* how often the lock is asked for (and kept alive) */
#define IDLE_MS         20   /* the pause of a round that found nothing */
#define ERROR_MS        500  /* the pause after a failure */
#define SWEEP_MAX       1000 /* holds one sweep lets lapse per coupon */

struct checkout_apply {
    const struct cp_conf *conf;
    pthread_t thread;
    atomic_int stop;
    struct leader *leader;
    struct db *db;
    struct checkout_store *store; /* the MariaDB side, over db */
    struct rcli *redis;
    char sweep_sha[41]; /* redeem.lua's, for the sweep ("" = not loaded) */
    /* One coupon's records and their plan. */
    struct planned_change *changes;
    size_t n;
    int64_t coupon_id;
    /* Coupons to visit this round, and those with waiting records. */
    int64_t *todo, *retry, *all, *with;
    struct credis_change_id *drops; /* the records to HDEL after a commit */
    size_t ntodo, nretry, nall;
    atomic_uint_least64_t applied, duplicates, waiting, lapsed, failures;
    atomic_int is_leader;
};

/* ------------------------------------------------------------------ Redis side */

static void redis_failed(struct checkout_apply *a, const char *what)
{
    log_warn("checkout: redis %s: %s", what,
             rcli_errstr(a->redis)[0] ? rcli_errstr(a->redis) : "unexpected reply");
    rcli_reset(a->redis);
    atomic_fetch_add(&a->failures, 1);
}

/* Appends id to list (cap CHECKOUT_COUPONS_MAX) unless present. */
static void add_coupon(int64_t *list, size_t *n, int64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if (list[i] == id)
            return;
    if (*n < CHECKOUT_COUPONS_MAX)
        list[(*n)++] = id;
}

/* SPOP of the dirty set into todo: CP_OK or CP_ERR_UNAVAILABLE. */
static int take_dirty(struct checkout_apply *a)
{
    int64_t ids[CHECKOUT_DIRTY_TAKE];
    size_t n = 0;
    if (credis_checkout_take(a->redis, ids, CHECKOUT_DIRTY_TAKE, &n) != CP_OK) {
        redis_failed(a, "SPOP");
        return CP_ERR_UNAVAILABLE;
    }
    for (size_t i = 0; i < n; i++)
        add_coupon(a->todo, &a->ntodo, ids[i]);
    return CP_OK;
}

static int add_record(void *arg, const struct rkey_change *c)
{
    struct checkout_apply *a = arg;
    a->changes[a->n++].change = *c;
    return CP_OK;
}

/* The coupon's pending records into a->changes: CP_OK or CP_ERR_UNAVAILABLE. */
static int read_records(struct checkout_apply *a)
{
    size_t bad = 0;
    a->n = 0;
    int rc =
        credis_checkout_records(a->redis, a->coupon_id, CHECKOUT_BATCH_MAX, add_record, a, &bad);
    if (bad > 0)
        /* Only redeem.lua writes these: a record it could not have written is left for
         * an operator, never applied half-understood. */
        log_error("checkout: coupon %" PRId64 ": %zu malformed rpending records; left",
                  a->coupon_id, bad);
    if (rc != CP_OK)
        redis_failed(a, "HSCAN");
    return rc;
}

/* HDELs the records applied now or before: CP_OK or CP_ERR_UNAVAILABLE (they are found
 * applied next time and dropped then). */
static int drop_records(struct checkout_apply *a)
{
    size_t m = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->changes[i].action != CHANGE_WAIT)
            a->drops[m++] = (struct credis_change_id){a->changes[i].change.user_id,
                                                      a->changes[i].change.version};
    if (m == 0 || credis_checkout_drop(a->redis, a->coupon_id, a->drops, m) == CP_OK)
        return CP_OK;
    redis_failed(a, "HDEL");
    return CP_ERR_UNAVAILABLE;
}

/* The full pass: redeem.lua's sweep on every recent coupon (holds past their end lapse,
 * with their records); the coupons with records left join this round. */
static int sweep_all(struct checkout_apply *a)
{
    long long lapsed = 0;
    size_t nwith = 0;
    int rc = credis_checkout_sweep(a->redis, a->sweep_sha, a->all, a->nall, SWEEP_MAX, &lapsed,
                                   a->with, CHECKOUT_COUPONS_MAX, &nwith);
    atomic_fetch_add(&a->lapsed, (uint64_t)lapsed);
    for (size_t i = 0; i < nwith; i++)
        add_coupon(a->todo, &a->ntodo, a->with[i]);
    if (rc != CP_OK)
        redis_failed(a, "sweep");
    return rc;
}

/* One coupon: CP_OK (even with records left waiting) or a failure. */
static int apply_coupon(struct checkout_apply *a, int64_t coupon_id)
{
    a->coupon_id = coupon_id;
    int rc = read_records(a);
    if (rc != CP_OK || a->n == 0)
        return rc;
    struct checkout_store_counts k;
    rc = checkout_store_apply(a->store, coupon_id, a->changes, a->n, &k);
    if (rc == CHECKOUT_STORE_RACED) {
        add_coupon(a->retry, &a->nretry, coupon_id); /* plan again from the new rows */
        return CP_OK;
    }
    if (rc < 0) {
        atomic_fetch_add(&a->failures, 1);
        return rc;
    }
    atomic_fetch_add(&a->applied, k.applied);
    atomic_fetch_add(&a->duplicates, k.duplicates);
    atomic_fetch_add(&a->waiting, k.waiting);
    if (k.waiting > 0 || a->n == CHECKOUT_BATCH_MAX)
        add_coupon(a->retry, &a->nretry, coupon_id);
    return k.applied + k.duplicates > 0 ? drop_records(a) : CP_OK;
}

/* ------------------------------------------------------------------- the loop */

static void pause_ms(struct checkout_apply *a, int ms)
{
    for (int slept = 0; slept < ms && !atomic_load(&a->stop); slept += 10)
        clock_sleep_ms(10);
}

static void *apply_main(void *arg)
{
    struct checkout_apply *a = arg;
    if (db_thread_init() != 0) {
        log_error("checkout: mysql thread init failed; no applier in this process");
        return NULL;
    }
    int64_t next_leader = 0, next_full = 0, next_retry = 0;
    int leader = 0;
    while (!atomic_load(&a->stop)) {
        int64_t now = clock_mono_ms();
        if (now >= next_leader) {
            int was = leader;
            leader = leader_check(a->leader) == 1;
            atomic_store(&a->is_leader, leader);
            next_leader = now + LEADER_CHECK_MS;
            if (leader && !was)
                next_full = 0; /* a new applier starts with a full pass */
        }
        if (!leader || !leader_held(a->leader)) {
            if (leader)
                next_leader = 0; /* the connection dropped with the lock: ask again */
            leader = 0;
            atomic_store(&a->is_leader, 0);
            pause_ms(a, ERROR_MS);
            continue;
        }
        a->ntodo = 0;
        if (take_dirty(a) != CP_OK) {
            pause_ms(a, ERROR_MS);
            continue;
        }
        if (now >= next_retry) {
            for (size_t i = 0; i < a->nretry; i++)
                add_coupon(a->todo, &a->ntodo, a->retry[i]);
            a->nretry = 0;
            next_retry = now + CHECKOUT_RETRY_MS;
        }
        if (now >= next_full) {
            next_full = now + CHECKOUT_FULL_PASS_MS;
            if (checkout_store_coupons(a->store, a->all, CHECKOUT_COUPONS_MAX, &a->nall) != CP_OK ||
                sweep_all(a) != CP_OK)
                atomic_fetch_add(&a->failures, 1);
        }
        int failed = 0;
        for (size_t i = 0; i < a->ntodo && !atomic_load(&a->stop); i++) {
            if (apply_coupon(a, a->todo[i]) != CP_OK) {
                /* Back into the set: nothing is lost while MariaDB or Redis is down. */
                add_coupon(a->retry, &a->nretry, a->todo[i]);
                failed = 1;
            }
        }
        if (failed)
            pause_ms(a, ERROR_MS);
        else if (a->ntodo == 0)
            pause_ms(a, IDLE_MS);
    }
    db_thread_end();
    return NULL;
}

static void apply_free(struct checkout_apply *a)
{
    if (a == NULL)
        return;
    leader_free(a->leader);
    checkout_store_free(a->store);
    db_free(a->db);
    rcli_free(a->redis);
    free(a->changes);
    free(a->todo);
    free(a->retry);
    free(a->all);
    free(a->with);
    free(a->drops);
    free(a);
}

struct checkout_apply *checkout_apply_start(const struct cp_conf *conf, char *errbuf, size_t errlen)
{
    struct checkout_apply *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    a->conf = conf;
    a->changes = calloc(CHECKOUT_BATCH_MAX, sizeof *a->changes);
    a->todo = calloc(CHECKOUT_COUPONS_MAX, sizeof *a->todo);
    a->retry = calloc(CHECKOUT_COUPONS_MAX, sizeof *a->retry);
    a->all = calloc(CHECKOUT_COUPONS_MAX, sizeof *a->all);
    a->with = calloc(CHECKOUT_COUPONS_MAX, sizeof *a->with);
    a->drops = calloc(CHECKOUT_BATCH_MAX, sizeof *a->drops);
    if (a->changes == NULL || a->todo == NULL || a->retry == NULL || a->all == NULL ||
        a->with == NULL || a->drops == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    if (db_open(conf, &a->db, errbuf, errlen) != CP_OK ||
        rcli_open(conf, &a->redis, errbuf, errlen) != CP_OK)
        goto fail;
    /* The lock lives on the working connection: lost with it, so an applier whose
     * connection dropped stops until it holds the lock again (leader_held). */
    a->leader = leader_new(a->db, "coupon_checkout_apply", "checkout applier");
    a->store = checkout_store_new(a->db, conf->kafka_redemption_topic, CHECKOUT_BATCH_MAX);
    if (a->leader == NULL || a->store == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    int e = pthread_create(&a->thread, NULL, apply_main, a);
    if (e != 0) {
        snprintf(errbuf, errlen, "checkout applier thread: %s", strerror(e));
        goto fail;
    }
    return a;
fail:
    apply_free(a);
    return NULL;
}

void checkout_apply_stop(struct checkout_apply *a)
{
    if (a == NULL)
        return;
    atomic_store(&a->stop, 1);
    int e = pthread_join(a->thread, NULL);
    if (e != 0)
        log_error("checkout: join: %s", strerror(e));
    apply_free(a);
}

void checkout_apply_get_stats(struct checkout_apply *a, struct checkout_apply_stats *out)
{
    out->applied = atomic_load(&a->applied);
    out->duplicates = atomic_load(&a->duplicates);
    out->waiting = atomic_load(&a->waiting);
    out->lapsed = atomic_load(&a->lapsed);
    out->failures = atomic_load(&a->failures);
    out->leader = atomic_load(&a->is_leader);
}
