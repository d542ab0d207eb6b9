#include "first.h"

#include "reconcile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cp_err.h"
#include "credis.h"
#include "event.h"
#include "issue_lookup.h"
#include "log.h"
#include "timefmt.h"

#define PASS_INTERVAL_MS     5000
#define MAX_COUPONS          1000
#define SAFETY_MARGIN_MS     1000
/* Records one pass looks at in MariaDB (and may produce again) at most: a pass runs on
 * the consumer's thread between batches, so a backlog of lost events (Kafka away while
 * workers restarted) is worked off a slice per pass instead of stalling consumption
 * for minutes. ~3 s of work on the 2-core test machine. */
#define MAX_CHECKED_PER_PASS 10000

struct reconciler {
    const struct cp_conf *conf;
    struct db *db;
    struct outbox *outbox;
    struct leader *lock; /* only its holder reconciles */
    int leading;
    int64_t next_pass_ms;
    int64_t after_ms;
    int64_t ids[MAX_COUPONS];
    /* Seen by the pass in progress, and by the last complete pass. */
    uint64_t pass_records;
    int64_t pass_oldest_ms; /* issuedAtMs of the oldest record, INT64_MAX = none */
    uint64_t last_records, last_oldest_s;
    size_t pass_checked; /* records this pass looked up in MariaDB */
    /* The records this pass produced again, dropped once Kafka acknowledged them. */
    struct credis_pending *requeued;
    size_t nrequeued, requeued_cap;
};

struct reconciler *reconciler_new(const struct cp_conf *conf, struct db *db, struct leader *lock,
                                  struct outbox *outbox)
{
    struct reconciler *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->conf = conf;
    r->db = db;
    r->outbox = outbox;
    r->lock = lock;
    r->next_pass_ms = clock_mono_ms() + PASS_INTERVAL_MS;
    /*
     * A worker may still be waiting for Kafka (up to the delivery timeout) and then
     * roll the reservation back: re-producing its event before that could persist
     * an issuance Redis no longer holds. Never look at records younger than the
     * delivery timeout plus a margin, whatever the configuration says.
     */
    r->after_ms = (int64_t)conf->reconcile_after_s * 1000;
    int64_t floor_ms = (int64_t)conf->kafka_delivery_timeout_ms + SAFETY_MARGIN_MS;
    if (r->after_ms < floor_ms) {
        log_warn("reconcile_after_s raised to %lld ms (kafka_delivery_timeout_ms + %d)",
                 (long long)floor_ms, SAFETY_MARGIN_MS);
        r->after_ms = floor_ms;
    }
    return r;
}

void reconciler_free(struct reconciler *r)
{
    if (r == NULL)
        return;
    free(r->requeued);
    free(r);
}

/* A pending record (field userId, value "<eventId>:<sequence>:<issuedAtMs>") -> the
 * event it owes Kafka. */
static int parse_record(int64_t coupon_id, const char *field, size_t flen, const char *value,
                        size_t vlen, struct issue_event *ev)
{
    struct rkey_pending p;
    memset(ev, 0, sizeof *ev);
    if (rkey_user_decode(field, flen, &ev->user_id) != CP_OK ||
        rkey_pending_decode(value, vlen, &p) != CP_OK)
        return CP_ERR_INVALID;
    memcpy(ev->event_id, p.event_id, sizeof ev->event_id);
    ev->coupon_id = coupon_id;
    ev->sequence = p.sequence;
    ev->issued_at_ms = p.issued_at_ms;
    return CP_OK;
}

/* Remembers a re-produced record for drop_acknowledged; without memory it just stays
 * (and a later pass may produce it again, as before). */
static void remember_requeued(struct reconciler *r, int64_t coupon_id, int64_t user_id)
{
    if (r->nrequeued == r->requeued_cap) {
        size_t cap = r->requeued_cap == 0 ? 256 : r->requeued_cap * 2;
        struct credis_pending *grown = realloc(r->requeued, cap * sizeof *grown);
        if (grown == NULL)
            return;
        r->requeued = grown;
        r->requeued_cap = cap;
    }
    r->requeued[r->nrequeued++] = (struct credis_pending){coupon_id, user_id};
}

/*
 * Every event this pass produced again is in Kafka now (outbox_flush returned): their
 * records have done their job, as the settler's do once a worker's send is acknowledged,
 * and the consumer persists the events from Kafka. Dropping them here is what keeps a
 * consumer that lags behind (or a MariaDB outage) from getting a new copy of each every
 * pass. A record this old is never rolled back (see after_ms), so the field still names
 * the claim that was read. One pipeline (the records come coupon by coupon: one HDEL per
 * coupon); a failure leaves records for the next pass. CP_OK, or CP_ERR_UNAVAILABLE
 * when the client must be reset.
 */
static int drop_acknowledged(struct reconciler *r, struct rcli *redis)
{
    long long removed;
    int rc = credis_pending_drop(redis, r->requeued, r->nrequeued, &removed, NULL, 0);
    if (rc != 0)
        log_warn("reconciler: some re-produced records were not dropped; the next pass "
                 "looks at them again");
    r->nrequeued = 0;
    return rc < 0 ? CP_ERR_UNAVAILABLE : CP_OK;
}

/* What one coupon's walk over its pending records carries. */
struct walk {
    struct reconciler *r;
    struct rcli *redis;
    int64_t coupon_id;
    int *requeued;
    const volatile sig_atomic_t *stop;
};

/* credis_pending_fn: one record - too young (leave it), persisted (drop it) or lost
 * (produce again). 1 stops the walk (the consumer is stopping). */
static int settle_record(void *arg, const char *field, size_t flen, const char *value, size_t vlen)
{
    const struct walk *w = arg;
    struct reconciler *r = w->r;
    struct issue_event ev;
    if (*w->stop)
        return 1;
    if (parse_record(w->coupon_id, field, flen, value, vlen, &ev) != CP_OK) {
        log_error("pending record of coupon %" PRId64 " unreadable; removed", w->coupon_id);
        return credis_pending_drop_field(w->redis, w->coupon_id, field, flen);
    }
    if (ev.issued_at_ms < r->pass_oldest_ms)
        r->pass_oldest_ms = ev.issued_at_ms;
    if (timefmt_now_ms() - ev.issued_at_ms < r->after_ms || r->pass_checked >= MAX_CHECKED_PER_PASS)
        return CP_OK; /* too young, or for the next pass */
    r->pass_checked++;
    int exists = issue_lookup_exists(r->db, ev.coupon_id, ev.user_id);
    if (exists < 0)
        return CP_OK; /* MariaDB down: next pass */
    if (exists)
        return credis_pending_drop_field(w->redis, w->coupon_id, field, flen);
    char json[CP_EVENT_MAX_BYTES], key[48];
    int jlen = event_encode(&ev, json, sizeof json);
    int klen = event_key(&ev, key, sizeof key);
    if (jlen > 0 && klen > 0 &&
        outbox_add(r->outbox, r->conf->kafka_topic, key, (size_t)klen, json, (size_t)jlen, NULL,
                   NULL) == CP_OK) {
        (*w->requeued)++;
        remember_requeued(r, ev.coupon_id, ev.user_id);
        log_warn("issuance %s (coupon %" PRId64 ", user %" PRId64 ") had no event in MariaDB "
                 "after %lld ms; produced again",
                 ev.event_id, ev.coupon_id, ev.user_id, (long long)r->after_ms);
    }
    return CP_OK; /* the record goes once Kafka acknowledged it (drop_acknowledged) */
}

static int reconcile_coupon(struct reconciler *r, struct rcli *redis, int64_t coupon_id,
                            int *requeued, const volatile sig_atomic_t *stop)
{
    struct walk w = {
        .r = r, .redis = redis, .coupon_id = coupon_id, .requeued = requeued, .stop = stop};
    /* CLUSTERDOWN, LOADING, a lost connection: next pass. */
    int rc = credis_pending_each(redis, coupon_id, settle_record, &w);
    return rc == 1 ? CP_OK : rc;
}

void reconciler_pending(const struct reconciler *r, uint64_t *records, uint64_t *oldest_s)
{
    *records = r->last_records;
    *oldest_s = r->last_oldest_s;
}

int reconciler_leading(const struct reconciler *r)
{
    return r->leading;
}

int reconciler_tick(struct reconciler *r, struct rcli *redis, const volatile sig_atomic_t *stop)
{
    int64_t now = clock_mono_ms();
    if (now < r->next_pass_ms || redis == NULL)
        return CP_OK;
    r->next_pass_ms = now + PASS_INTERVAL_MS;
    r->leading = leader_check(r->lock) == 1;
    if (!r->leading) {
        /* Another consumer reconciles (or MariaDB is down): a record re-produced by every
         * consumer would reach Kafka once per consumer. The gauges are the holder's: the
         * dashboard sums them over consumers. */
        r->last_records = r->last_oldest_s = 0;
        return CP_OK;
    }
    size_t n = 0;
    if (issue_lookup_recent_coupons(r->db, r->ids, MAX_COUPONS, &n) != CP_OK)
        return CP_OK; /* MariaDB down: next pass */
    /* One pipelined HLEN per coupon, then a closer look only where something is left. */
    long long *counts = calloc(n + 1, sizeof *counts);
    if (counts == NULL)
        return CP_OK; /* next pass */
    /* A failed entry (one node of a cluster down) is -1: the other coupons are still
     * looked at, but this pass's totals would be wrong. */
    int failed = credis_counts(redis, r->ids, n, NULL, counts);
    if (failed < 0) {
        free(counts);
        return CP_ERR_UNAVAILABLE;
    }
    int partial = failed > 0;
    int requeued = 0;
    r->nrequeued = 0;
    r->pass_checked = 0;
    r->pass_records = 0;
    r->pass_oldest_ms = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (counts[i] > 0) {
            r->pass_records += (uint64_t)counts[i];
            if (reconcile_coupon(r, redis, r->ids[i], &requeued, stop) != CP_OK)
                partial = 1; /* the next coupon may be on a node that works */
        }
    free(counts);
    if (!partial) {
        int64_t age = r->pass_oldest_ms == INT64_MAX ? 0 : timefmt_now_ms() - r->pass_oldest_ms;
        r->last_records = r->pass_records;
        r->last_oldest_s = age > 0 ? (uint64_t)(age / 1000) : 0;
    }
    if (requeued > 0) {
        if (outbox_flush(r->outbox, stop) == CP_OK) {
            if (drop_acknowledged(r, redis) != CP_OK)
                partial = 1;
        } else
            log_warn("re-produced issuance events not yet acknowledged");
        r->nrequeued = 0;
    }
    return partial ? CP_ERR_UNAVAILABLE : CP_OK;
}
