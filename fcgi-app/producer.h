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
 * librdkafka handle. All functions are thread-safe.
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

/* Returns NULL and fills errbuf on failure. */
struct producer *producer_new(const struct cp_conf *conf, char *errbuf, size_t errlen);
/* Flushes (bounded) and frees; NULL is a no-op. */
void producer_free(struct producer *p);

/* Sends one message to the configured topic and waits for its delivery report. */
enum producer_outcome producer_send_sync(struct producer *p, const char *key, size_t klen,
                                         const char *value, size_t vlen);

/* Whether the producer believes a broker is reachable right now. */
int producer_is_up(struct producer *p);

#endif
