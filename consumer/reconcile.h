/*
 * reconcile.h - settles issuance records left pending in Redis.
 *
 * lua/issue.lua writes coupon:{ID}:pending[userId] = "<eventId>:<seq>:<issuedAtMs>"
 * atomically with every reservation. The worker deletes it once Kafka
 * acknowledged the event, and the consumer deletes it when it persists the
 * event. A record older than reconcile_after_s therefore means the worker died,
 * lost Redis' reply, or answered 202 because Kafka's outcome was unknown. For
 * each such record: if the row is in MariaDB the record goes; otherwise the
 * same event (same eventId) is produced again, which is harmless if the first
 * copy surfaces later - persisting is idempotent per (coupon, user). Once the
 * pass's re-produced events are acknowledged their records go too (as the
 * worker's do on its acknowledgement): a record is produced again once, not once
 * per pass while the consumer lags behind or MariaDB is down.
 *
 * Coupons to look at come from MariaDB (windows that ended less than a week
 * ago), so no cross-coupon Redis key is needed and the scripts keep one hash
 * tag per coupon (Redis Cluster). One thread; runs every few seconds.
 *
 * One consumer reconciles at a time, however many run: each pass first checks
 * the MariaDB named lock "coupon_reconciler" (leader.h, a connection of its own)
 * and a consumer that does not hold it skips the pass, so a lost event is
 * produced again once, not once per consumer. When the holder dies its
 * connection ends, the lock is released and another consumer's next pass (at
 * most PASS_INTERVAL_MS later) takes over.
 */
#ifndef COUPON_RECONCILE_H
#define COUPON_RECONCILE_H

#include <signal.h>
#include <stdint.h>

#include "conf.h"
#include "db.h"
#include "leader.h"
#include "outbox.h"
#include "rcli.h"

struct reconciler;

/* Looks rows up through db (issue_lookup.h) and reconciles while holding lock (the
 * caller's, on a connection of its own). All must outlive it. NULL: out of memory. */
struct reconciler *reconciler_new(const struct cp_conf *conf, struct db *db, struct leader *lock,
                                  struct outbox *outbox);
void reconciler_free(struct reconciler *r);

/* What the last pass saw: pending records over the coupons it looked at, and the age
 * in seconds of the oldest of them (0 when none, and while another consumer holds the
 * lock). For the metrics coupon_consumer_pending_records and
 * coupon_consumer_oldest_pending_seconds. */
void reconciler_pending(const struct reconciler *r, uint64_t *records, uint64_t *oldest_s);
/* 1 while this consumer holds the reconciler lock (as of the last pass's check): the
 * metric coupon_consumer_reconciler_leader. */
int reconciler_leading(const struct reconciler *r);

/* Runs a pass when due. CP_ERR_UNAVAILABLE when Redis failed or answered an error
 * (the caller resets the client; the pass's gauges keep their last values). */
int reconciler_tick(struct reconciler *r, struct rcli *redis, const volatile sig_atomic_t *stop);

#endif
