/*
 * producer.h - the worker process's Kafka producer (one per process, created
 * after fork), with a synchronous send for the issue path.
 *
 * librdkafka runs idempotent (enable.idempotence=true, acks=all), so a retried
 * send never duplicates an event inside Kafka. producer_send_sync() blocks the
 * calling thread until the delivery report of that message arrives - never
 * longer than kafka_delivery_timeout_ms plus a little, because librdkafka
 * guarantees a report per message once message.timeout.ms passes. A private
 * thread serves delivery reports (rd_kafka_poll) and watches broker health:
 * after "all brokers down" the producer reports itself down (producer_is_up
 * false, so the issue path answers 503 without reserving stock) until a
 * metadata request succeeds again. A fatal idempotence error replaces the
 * librdkafka handle. producer_send_async() (issue_ack=redis) only enqueues:
 * messages wait, without a time-out, until a broker takes them, and each
 * outcome is handed to the report callback given to producer_new (the
 * settler, which drops the event's pending record). All functions are
 * thread-safe.
 */
#ifndef COUPON_PRODUCER_H
#define COUPON_PRODUCER_H

#include <stddef.h>

#include "conf.h"

struct producer;

enum producer_outcome {
    PRODUCER_DELIVERED,          /* acknowledged by the broker: durable */
    PRODUCER_NOT_PERSISTED,      /* refused up front or by the broker: roll back */
    PRODUCER_POSSIBLY_PERSISTED, /* any local failure (time-out...): keep, 202 */
};

/*
 * Called on the producer's poll thread with the outcome of each asynchronous send
 * (key = the message key). Must not block: it runs between librdkafka's polls.
 */
typedef void producer_report_fn(void *opaque, const void *key, size_t klen,
                                enum producer_outcome outcome);

/* on_async_report may be NULL (no asynchronous sends). NULL + errbuf on failure. */
struct producer *producer_new(const struct cp_conf *conf, producer_report_fn *on_async_report,
                              void *report_opaque, char *errbuf, size_t errlen);
/* Flushes (bounded) and frees; NULL is a no-op. */
void producer_free(struct producer *p);

/* Sends one message to the configured topic and waits for its delivery report. */
enum producer_outcome producer_send_sync(struct producer *p, const char *key, size_t klen,
                                         const char *value, size_t vlen);

/* Enqueues one message and returns at once; its outcome reaches on_async_report.
 * CP_ERR_UNAVAILABLE when librdkafka did not take it (queue full, no handle). */
int producer_send_async(struct producer *p, const char *key, size_t klen, const char *value,
                        size_t vlen);

/* Whether the local queue has room for more asynchronous sends. */
int producer_has_room(struct producer *p);

/* Whether the producer believes a broker is reachable right now. */
int producer_is_up(struct producer *p);

#endif
