/*
 * checkout_store.h - the checkout applier's side of MariaDB (checkout_apply.h):
 * one coupon's pending checkout changes into coupon_issue and event_outbox, in one
 * transaction, and the list of recent coupons its full pass visits.
 *
 * checkout_store_apply sorts the records it is given (checkout_plan_sort) and, in one
 * db_tx, locks each issuance's row (SELECT ... FOR UPDATE), marks the records
 * against the rows (checkout_plan_mark) and applies every CHANGE_APPLY in version
 * order: an UPDATE that sets all four checkout columns - R: used_at and
 * redeemed_order_id; H: hold_order_id and hold_expires_at; C, X, L: all NULL - and
 * checkout_version = version, WHERE checkout_version = version - 1, followed by the
 * change's coupon.redemption row in event_outbox (event_encode_redemption, with
 * "version"). The marks, the rows and their order are rebuilt on every run of the
 * transaction, so a deadlock that runs it again starts from the same state. Outcomes:
 *   CP_OK                   committed: at least one change applied
 *   CHECKOUT_STORE_NOTHING  nothing due (rows missing, or applied before): rolled
 *                           back, nothing written; the marks say what to drop/keep
 *   CHECKOUT_STORE_RACED    an UPDATE changed no row (another applier - a lock lost
 *                           and taken - moved it first): rolled back, plan again
 *   < 0                     enum cp_err: CP_ERR_UNAVAILABLE (connection lost, nothing
 *                           committed), CP_ERR_TIMEOUT (deadlocks outlasted DB_ATTEMPTS
 *                           runs), CP_ERR_LIMIT (more records than the store's
 *                           capacity), CP_ERR_INTERNAL (an event that does not fit)
 * After CP_OK and NOTHING every record carries its action (checkout_plan.h) and *out
 * counts them; otherwise *out is zero and the marks mean nothing.
 *
 * The store borrows the caller's client (common/db) and the topic string, which must
 * outlive it; it owns the scratch of one coupon's rows. One thread at a time, as its
 * client.
 */
#ifndef COUPON_CHECKOUT_STORE_H
#define COUPON_CHECKOUT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "checkout_plan.h"
#include "db.h"

/* checkout_store_apply's roll-back outcomes (positive: not errors). */
enum { CHECKOUT_STORE_NOTHING = 1, CHECKOUT_STORE_RACED = 2 };

struct checkout_store_counts {
    uint64_t applied;    /* CHANGE_APPLY: written in this transaction */
    uint64_t duplicates; /* CHANGE_DUPLICATE: applied before */
    uint64_t waiting;    /* CHANGE_WAIT: row not persisted yet, or a version missing */
};

struct checkout_store;

/* Over db; topic is the coupon.redemption topic; up to max records per call. NULL: out
 * of memory. */
struct checkout_store *checkout_store_new(struct db *db, const char *topic, size_t max);
void checkout_store_free(struct checkout_store *s);

/* The coupon's records c[0..n) (any order; sorted and marked here) into MariaDB: an
 * outcome above. */
int checkout_store_apply(struct checkout_store *s, int64_t coupon_id, struct planned_change *c,
                         size_t n, struct checkout_store_counts *out);

/* The ids of the cap most recent coupons, newest first, into ids[0..*n): CP_OK or a
 * code of db.h. */
int checkout_store_coupons(struct checkout_store *s, int64_t *ids, size_t cap, size_t *n);

#endif
