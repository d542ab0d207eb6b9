/*
 * settle.h - removes pending (outbox) records once Kafka acknowledged their
 * events (issue_ack=redis).
 *
 * lua/issue.lua writes coupon:{ID}:pending[userId] with every claim; in
 * issue_ack=redis the request answers 201 right after that and the event is
 * produced asynchronously. The producer's poll thread reports each outcome to
 * settler_on_report(), which only appends (coupon, user) to an array under a
 * mutex - it never blocks on I/O. The settler's own thread takes the whole
 * array every SETTLE_INTERVAL_MS and removes the records with pipelined HDELs
 * (one HDEL per run of the same coupon, many fields each) through its own Redis
 * client (rcli: on a cluster, one round trip to each node the coupons live on).
 *
 * Losing a batch (Redis down, the array full, the process killed) is harmless:
 * the consumer removes a record when it persists the event, and the reconciler
 * looks in MariaDB before it re-produces anything. What the settler must never
 * do is remove a record whose event Kafka did not take: only DELIVERED reports
 * are added. Thread-safe; one settler per worker process.
 */
#ifndef COUPON_SETTLE_H
#define COUPON_SETTLE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "metrics.h"
#include "producer.h"

struct settler;

/* Starts the settler's thread. NULL on failure (out of memory, no thread). */
struct settler *settler_new(const struct cp_conf *conf, struct metrics *metrics);
/* Settles what is queued (one last bounded pass), stops the thread, frees. NULL: no-op. */
void settler_free(struct settler *s);

/* Queues one record for removal. CP_ERR_LIMIT when the array is full (dropped). */
int settler_add(struct settler *s, int64_t coupon_id, int64_t user_id);

/* producer_report_fn (opaque = the settler): a delivered event's key is queued;
 * any other outcome is counted and logged, and its record stays. */
void settler_on_report(void *opaque, const void *key, size_t klen, enum producer_outcome outcome);

#endif
