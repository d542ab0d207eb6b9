#include "first.h"

#include "reconcile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp_err.h"
#include "event.h"
#include "log.h"
#include "timefmt.h"

#define PASS_INTERVAL_MS 5000
#define MAX_COUPONS_PER_PASS 100

/* Removes the coupon from the index only while its pending hash is empty. */
static const char unindex_script[] =
    "if redis.call('HLEN', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end "
    "return 0";

struct reconciler {
    const struct cp_conf *conf;
    struct persist *persist;
    struct outbox *outbox;
    int64_t next_pass_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct reconciler *reconciler_new(const struct cp_conf *conf, struct persist *persist,
                                  struct outbox *outbox)
{
    struct reconciler *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->conf = conf;
    r->persist = persist;
    r->outbox = outbox;
    r->next_pass_ms = mono_ms() + PASS_INTERVAL_MS;
    return r;
}

void reconciler_free(struct reconciler *r)
{
    free(r);
}

/* One pending entry: settle it, re-produce it, or leave it (too young). */
static int settle_entry(struct reconciler *r, redisContext *redis, int64_t coupon_id,
                        const redisReply *field, const redisReply *value, int *requeued)
{
    struct issue_event ev;
    const char *reason = NULL;
    int decoded = event_decode(value->str, value->len, &ev, &reason) == CP_OK;
    if (decoded && timefmt_now_ms() - ev.issued_at_ms < (int64_t)r->conf->reconcile_after_s * 1000)
        return CP_OK;
    int exists = decoded ? persist_row_exists(r->persist, ev.coupon_id, ev.user_id) : 0;
    if (exists < 0)
        return CP_OK; /* MariaDB down: try again next pass */
    if (decoded && !exists) {
        char key[48];
        int klen = event_key(&ev, key, sizeof key);
        if (klen > 0 && outbox_add(r->outbox, r->conf->kafka_topic, key, (size_t)klen,
                                   value->str, value->len, NULL, NULL) == CP_OK)
            (*requeued)++;
        log_info("pending issuance %s (coupon %" PRId64 ", user %" PRId64 ") produced again",
                 ev.event_id, ev.coupon_id, ev.user_id);
        return CP_OK; /* the entry goes when the event is persisted */
    }
    if (!decoded)
        log_error("pending entry of coupon %" PRId64 " unreadable (%s); removed", coupon_id,
                  reason ? reason : "?");
    redisReply *d = redisCommand(redis, "HDEL coupon:{%" PRId64 "}:pending %b", coupon_id,
                                 field->str, field->len);
    if (d == NULL)
        return CP_ERR_UNAVAILABLE;
    freeReplyObject(d);
    return CP_OK;
}

static int reconcile_coupon(struct reconciler *r, redisContext *redis, int64_t coupon_id,
                            int *requeued)
{
    redisReply *h = redisCommand(redis, "HGETALL coupon:{%" PRId64 "}:pending", coupon_id);
    if (h == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = CP_OK;
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements && rc == CP_OK;
         i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            rc = settle_entry(r, redis, coupon_id, h->element[i], h->element[i + 1], requeued);
    freeReplyObject(h);
    if (rc != CP_OK)
        return rc;
    char key[48], id[24];
    snprintf(key, sizeof key, "coupon:{%" PRId64 "}:pending", coupon_id);
    snprintf(id, sizeof id, "%" PRId64, coupon_id);
    redisReply *u = redisCommand(redis, "EVAL %s 2 %s coupon:pending:index %s", unindex_script,
                                 key, id);
    if (u == NULL)
        return CP_ERR_UNAVAILABLE;
    freeReplyObject(u);
    return CP_OK;
}

int reconciler_tick(struct reconciler *r, redisContext *redis, const volatile int *stop)
{
    int64_t now = mono_ms();
    if (now < r->next_pass_ms || redis == NULL)
        return CP_OK;
    r->next_pass_ms = now + PASS_INTERVAL_MS;
    redisReply *idx = redisCommand(redis, "SRANDMEMBER coupon:pending:index %d",
                                   MAX_COUPONS_PER_PASS);
    if (idx == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = CP_OK, requeued = 0;
    for (size_t i = 0; idx->type == REDIS_REPLY_ARRAY && i < idx->elements && rc == CP_OK; i++) {
        const redisReply *m = idx->element[i];
        if (m->type != REDIS_REPLY_STRING)
            continue;
        int64_t coupon_id = strtoll(m->str, NULL, 10);
        if (coupon_id > 0)
            rc = reconcile_coupon(r, redis, coupon_id, &requeued);
    }
    freeReplyObject(idx);
    if (requeued > 0 && outbox_flush(r->outbox, stop) != CP_OK)
        log_warn("re-produced pending events not yet acknowledged");
    return rc;
}
