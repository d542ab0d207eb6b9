#include "first.h"

#include "report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cp_err.h"
#include "log.h"
#include "rkey.h"

#define TICK_MS        1000
#define EXPIRE_S       15
#define MAX_PARTITIONS 64

struct report {
    uint64_t counters[REPORT_COUNT_];
    uint64_t events_at_last_tick;
    int64_t last_tick_ms;
    char instance[RKEY_INSTANCE_MAX + 1];
};

struct report *report_new(void)
{
    struct report *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    char host[64] = "consumer";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "consumer");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '"' || *p == '\\' || *p == ' ')
            *p = '_';
    snprintf(r->instance, sizeof r->instance, "%s-%ld", host, (long)getpid());
    r->last_tick_ms = clock_mono_ms();
    return r;
}

void report_free(struct report *r)
{
    free(r);
}

void report_add(struct report *r, enum report_counter c, uint64_t n)
{
    r->counters[c] += n;
}

void report_set(struct report *r, enum report_counter c, uint64_t v)
{
    r->counters[c] = v;
}

/* Appends one HSET field/value pair to the argument vectors. */
static void add_field(char (*fields)[96], char (*values)[32], const char **argv, size_t *argvlen,
                      int *argc, const char *name, uint64_t value)
{
    int i = (*argc - 2) / 2;
    snprintf(fields[i], 96, "%s", name);
    snprintf(values[i], 32, "%" PRIu64, value);
    argv[*argc] = fields[i];
    argvlen[*argc] = strlen(fields[i]);
    argv[*argc + 1] = values[i];
    argvlen[*argc + 1] = strlen(values[i]);
    *argc += 2;
}

int report_tick(struct report *r, struct rcli *redis, rd_kafka_t *rk,
                const struct persist_stats *ps)
{
    int64_t now = clock_mono_ms();
    if (now - r->last_tick_ms < TICK_MS || redis == NULL)
        return CP_OK;
    /* Every counter, the 5 fields added below, one lag per partition. */
    enum { MAX_FIELDS = REPORT_COUNT_ + 5 + MAX_PARTITIONS };
    static const char *const names[] = {"coupon_consumer_events_total",
                                        "coupon_consumer_batches_total",
                                        "coupon_consumer_rows_inserted_total",
                                        "coupon_consumer_dlq_total",
                                        "coupon_consumer_db_retries_total",
                                        "coupon_consumer_batch_size_last",
                                        "coupon_consumer_decode_microseconds_total",
                                        "coupon_consumer_persist_microseconds_total",
                                        "coupon_consumer_publish_microseconds_total",
                                        "coupon_consumer_settle_microseconds_total",
                                        "coupon_consumer_offset_commit_microseconds_total",
                                        "coupon_consumer_relayed_events_total",
                                        "coupon_consumer_relay_leader",
                                        "coupon_consumer_reconciler_leader",
                                        "coupon_consumer_pending_records",
                                        "coupon_consumer_oldest_pending_seconds",
                                        "coupon_consumer_checkout_applied_total",
                                        "coupon_consumer_checkout_lapsed_holds_total",
                                        "coupon_consumer_checkout_waits_total",
                                        "coupon_consumer_checkout_leader",
                                        "coupon_webhook_deliveries_created_total",
                                        "coupon_webhook_attempts_total{outcome=\"delivered\"}",
                                        "coupon_webhook_attempts_total{outcome=\"retry\"}",
                                        "coupon_webhook_attempts_total{outcome=\"failed\"}",
                                        "coupon_webhook_delivery_latency_milliseconds_total",
                                        "coupon_webhook_oldest_undelivered_seconds",
                                        "coupon_webhook_dispatcher_leader"};
    _Static_assert(sizeof names / sizeof names[0] == REPORT_COUNT_, "a name per counter");
    char fields[MAX_FIELDS][96], values[MAX_FIELDS][32], key[RKEY_CONSUMER_KEY_MAX];
    const char *argv[2 + 2 * MAX_FIELDS];
    size_t argvlen[2 + 2 * MAX_FIELDS];
    int argc = 2;
    if (rkey_consumer_metrics(key, sizeof key, r->instance, strlen(r->instance)) < 0)
        return CP_ERR_INTERNAL;
    argv[0] = "HSET";
    argvlen[0] = 4;
    argv[1] = key;
    argvlen[1] = strlen(key);
    for (int c = 0; c < REPORT_COUNT_; c++)
        add_field(fields, values, argv, argvlen, &argc, names[c], r->counters[c]);
    add_field(fields, values, argv, argvlen, &argc, "coupon_consumer_duplicates_total",
              ps->duplicates);
    add_field(fields, values, argv, argvlen, &argc, "coupon_consumer_unknown_coupon_total",
              ps->unknown);
    add_field(fields, values, argv, argvlen, &argc, "coupon_consumer_redelivered_batches_total",
              ps->redelivered_batches);
    add_field(fields, values, argv, argvlen, &argc, "coupon_consumer_db_errors_total",
              ps->db_errors);
    uint64_t events = r->counters[REPORT_EVENTS];
    add_field(fields, values, argv, argvlen, &argc, "coupon_consumer_events_per_second",
              (events - r->events_at_last_tick) * 1000 / (uint64_t)(now - r->last_tick_ms));
    r->events_at_last_tick = events;
    r->last_tick_ms = now;

    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts != NULL) {
        if (rd_kafka_position(rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < parts->cnt && i < MAX_PARTITIONS; i++) {
                int64_t lo = 0, hi = 0;
                const rd_kafka_topic_partition_t *p = &parts->elems[i];
                if (p->offset < 0 ||
                    rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) !=
                        RD_KAFKA_RESP_ERR_NO_ERROR)
                    continue;
                char name[96];
                snprintf(name, sizeof name, "coupon_consumer_lag{partition=\"%" PRId32 "\"}",
                         p->partition);
                add_field(fields, values, argv, argvlen, &argc, name,
                          hi > p->offset ? (uint64_t)(hi - p->offset) : 0);
            }
        }
        rd_kafka_topic_partition_list_destroy(parts);
    }
    /*
     * Replaced as a whole, so a partition no longer assigned leaves no stale lag.
     * Nothing is sent before the first reply is asked for: a command that could not
     * be queued leaves a partial transaction on our side only, and the caller resets
     * the client on CP_ERR_UNAVAILABLE. Both keys carry {consumers}: one slot.
     */
    if (rcli_append(redis, "MULTI") != CP_OK || rcli_append(redis, "DEL %s", key) != CP_OK ||
        rcli_append_argv(redis, argc, argv, argvlen) != CP_OK ||
        rcli_append(redis, "EXPIRE %s %d", key, EXPIRE_S) != CP_OK ||
        rcli_append(redis, "SADD " RKEY_CONSUMERS_SET " %s", r->instance) != CP_OK ||
        rcli_append(redis, "EXEC") != CP_OK)
        return CP_ERR_UNAVAILABLE;
    int rc = CP_OK;
    for (int i = 0; i < 6; i++) {
        redisReply *reply = NULL;
        if (rcli_get_reply(redis, &reply) != CP_OK)
            return CP_ERR_UNAVAILABLE;
        /* EXEC's array is the transaction's outcome; an error (EXECABORT, CROSSSLOT,
         * CLUSTERDOWN) or nil means nothing was written. */
        if (i == 5 && reply->type != REDIS_REPLY_ARRAY) {
            log_warn("consumer metrics not written: %s",
                     reply->type == REDIS_REPLY_ERROR ? reply->str : "transaction aborted");
            rc = CP_ERR_UNAVAILABLE;
        }
        freeReplyObject(reply);
    }
    return rc;
}
