/*
 * outbox.h - what the consumer publishes from memory: coupon.issue.dlq (poison
 * events, with a `reason` header) and, for the reconciler, re-produced
 * coupon.issue events. (coupon.issued goes through MariaDB's event_outbox and
 * relay.c instead, so that it commits with its row.)
 *
 * Messages are queued with outbox_add() and outbox_flush() returns only when
 * every queued message was acknowledged by the broker (idempotent producer,
 * acks=all), re-sending the ones that failed, so offsets are committed only
 * after the batch's downstream effects are durable. Owned by one thread.
 */
#ifndef COUPON_OUTBOX_H
#define COUPON_OUTBOX_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct outbox;

struct outbox *outbox_new(const struct cp_conf *conf, char *errbuf, size_t errlen);
void outbox_free(struct outbox *o);

/*
 * Queues one message (copied). header_name may be NULL. CP_ERR_LIMIT when the
 * topic name (CP_CONF_STR_MAX - 1 characters at most, as in the configuration),
 * the header name (31) or value (255) would not fit; CP_ERR_NOMEM. Nothing is
 * queued on an error.
 */
int outbox_add(struct outbox *o, const char *topic, const char *key, size_t klen, const char *value,
               size_t vlen, const char *header_name, const char *header_value);

/* Drops the messages queued since the last outbox_flush began (none of them was sent). */
void outbox_discard(struct outbox *o);

/*
 * Waits until everything queued is acknowledged, re-sending failures with a
 * backoff; gives up (CP_ERR_UNAVAILABLE, messages kept) when *stop becomes true.
 */
int outbox_flush(struct outbox *o, const volatile sig_atomic_t *stop);

/* Messages acknowledged since start, and failed deliveries (each retried). */
uint64_t outbox_delivered(const struct outbox *o);
uint64_t outbox_failures(const struct outbox *o);

#endif
