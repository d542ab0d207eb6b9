/*
 * reconcile.h - settles issuances answered 202 PENDING (the Kafka outcome was
 * ambiguous when the worker gave up waiting).
 *
 * The worker kept the reservation and recorded the event in
 * coupon:{ID}:pending (indexed by coupon:pending:index). Usually the event did
 * reach Kafka and the consumer's batch settles it. Every few seconds this
 * looks at entries older than reconcile_after_s: if the row is in MariaDB the
 * entry is removed; otherwise the same event (same eventId) is produced again,
 * which is harmless if the first copy surfaces later - persisting is
 * idempotent per (coupon, user). Coupons left without entries leave the index
 * (atomically, so a concurrent new entry is never orphaned). One thread.
 */
#ifndef COUPON_RECONCILE_H
#define COUPON_RECONCILE_H

#include <hiredis/hiredis.h>

#include "conf.h"
#include "outbox.h"
#include "persist.h"

struct reconciler;

struct reconciler *reconciler_new(const struct cp_conf *conf, struct persist *persist,
                                  struct outbox *outbox);
void reconciler_free(struct reconciler *r);

/* Runs a pass when due. CP_ERR_UNAVAILABLE when Redis failed (caller drops it). */
int reconciler_tick(struct reconciler *r, redisContext *redis, const volatile int *stop);

#endif
