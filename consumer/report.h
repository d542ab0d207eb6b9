/*
 * report.h - the consumer's metrics, published for Prometheus through
 * coupon-fcgi's GET /metrics.
 *
 * Every second report_tick() writes the samples into the Redis hash
 * coupon:metrics:{consumers}:<host>-<pid> (expiring after 15 s, so a dead consumer
 * disappears) and registers the instance in the set coupon:metrics:{consumers}
 * (rkey.h: one hash tag, so the MULTI/EXEC that writes both is one slot's);
 * coupon-fcgi merges every live instance into its /metrics output with an
 * `instance` label. That keeps one scrape target and no hand-written HTTP
 * server in the consumer. Samples: events, batches, rows inserted, duplicates,
 * unknown coupons, DLQ, DB errors and retries (counters), time spent in each
 * step of a batch (decoding, MariaDB transaction with the decoding,
 * coupon.issued acknowledgements, pending
 * records, offset commit; counters in microseconds), last batch size,
 * events per second over the last interval, lag per partition, and whether this
 * consumer holds the relay's and the reconciler's lock (gauges).
 * One thread.
 */
#ifndef COUPON_REPORT_H
#define COUPON_REPORT_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "persist.h"
#include "rcli.h"

enum report_counter {
    REPORT_EVENTS,
    REPORT_BATCHES,
    REPORT_INSERTED,
    REPORT_DLQ,
    REPORT_DB_RETRIES,
    REPORT_BATCH_SIZE_LAST,
    /* Where a batch's time goes, summed over batches (microseconds). */
    REPORT_DECODE_US,
    REPORT_PERSIST_US,
    REPORT_PUBLISH_US,
    REPORT_SETTLE_US,
    REPORT_COMMIT_US,
    /* The outbox relay: events acknowledged by Kafka, and 1 while it holds the lock. */
    REPORT_RELAYED,
    REPORT_RELAY_LEADER,
    /* 1 while this consumer holds the reconciler lock (reconcile.h). */
    REPORT_RECONCILER_LEADER,
    /* Gauges from the reconciler's last pass (reconcile.h). */
    REPORT_PENDING_RECORDS,
    REPORT_OLDEST_PENDING_S,
    /* The checkout applier (checkout_apply.h): changes applied to MariaDB, holds that
     * lapsed, records left waiting for their issuance, and 1 while it holds its lock. */
    REPORT_CHECKOUT_APPLIED,
    REPORT_CHECKOUT_LAPSED,
    REPORT_CHECKOUT_WAITING,
    REPORT_CHECKOUT_LEADER,
    /* The webhook dispatcher (dispatch.h): delivery rows written, deliveries by outcome,
     * their summed latency (row created -> 2xx), the oldest pending one's age, and 1
     * while this consumer holds the delivery lock. */
    REPORT_WEBHOOK_CREATED,
    REPORT_WEBHOOK_DELIVERED,
    REPORT_WEBHOOK_RETRIED,
    REPORT_WEBHOOK_FAILED,
    REPORT_WEBHOOK_LATENCY_MS,
    REPORT_WEBHOOK_OLDEST_PENDING_S,
    REPORT_WEBHOOK_LEADER,
    REPORT_COUNT_
};

struct report;

struct report *report_new(void);
void report_free(struct report *r);

void report_add(struct report *r, enum report_counter c, uint64_t n);
void report_set(struct report *r, enum report_counter c, uint64_t v);

/* Publishes at most once a second; CP_ERR_UNAVAILABLE when Redis failed (drop it). */
int report_tick(struct report *r, struct rcli *redis, rd_kafka_t *rk,
                const struct persist_stats *ps);

#endif
