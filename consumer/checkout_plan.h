/*
 * checkout_plan.h - which of a coupon's pending checkout changes to apply now.
 *
 * lua/redeem.lua numbers the changes of one issuance 1, 2, ... and records each in
 * coupon:{ID}:rpending until MariaDB has it; the row keeps the last version applied
 * (coupon_issue.checkout_version). Given the records read from Redis (any order) and
 * each issuance's stored version, the plan sorts them by (user, version) and marks
 * each one:
 *   CHANGE_APPLY      the next version of its row (stored + 1, or the one after a
 *                     change applied earlier in this plan): apply it, in this order
 *   CHANGE_DUPLICATE  stored already (a record whose HDEL was lost after its commit):
 *                     drop the record, write nothing
 *   CHANGE_WAIT       its row is not persisted yet (the claim's coupon.issue event is
 *                     still on its way), or a version before it is missing from the
 *                     records: keep the record and come back later
 * so every change lands exactly once and in order, whatever was redelivered.
 * Pure; thread-safe.
 */
#ifndef COUPON_CHECKOUT_PLAN_H
#define COUPON_CHECKOUT_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "rkey.h"

enum change_action { CHANGE_APPLY, CHANGE_DUPLICATE, CHANGE_WAIT };

struct planned_change {
    struct rkey_change change;
    enum change_action action;
    int64_t row_id;   /* coupon_issue.id (0 when the row is missing) */
    int64_t sequence; /* the issuance's sequence (for the event) */
};

/* The stored state of one issuance: found = 0 when MariaDB has no row yet. */
struct plan_row {
    int64_t user_id;
    int found;
    int64_t row_id, sequence, version;
};

/* Sorts c[0..n) by (user, version); distinct users into users[] (cap n), their count. */
size_t checkout_plan_sort(struct planned_change *c, size_t n, int64_t *users);

/* Marks each change of the sorted c[0..n) against rows[0..nrows) (sorted by user, one
 * per distinct user of c). Returns how many are CHANGE_APPLY. */
size_t checkout_plan_mark(struct planned_change *c, size_t n, const struct plan_row *rows,
                          size_t nrows);

#endif
