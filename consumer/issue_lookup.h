/*
 * issue_lookup.h - what the reconciler asks MariaDB: whether an issuance is
 * persisted, and which coupons may still have pending records.
 *
 * Plain autocommit reads on the caller's client (common/db; the consumer's
 * main thread shares one with persist.c). Stateless.
 */
#ifndef COUPON_ISSUE_LOOKUP_H
#define COUPON_ISSUE_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* Whether a row exists for (coupon, user): 1, 0, or db.h's codes. */
int issue_lookup_exists(struct db *db, int64_t coupon_id, int64_t user_id);

/* Ids of coupons whose window ended less than a week ago (or not yet), newest first,
 * at most cap, into ids[0..*n): CP_OK or db.h's codes. */
int issue_lookup_recent_coupons(struct db *db, int64_t *ids, size_t cap, size_t *n);

#endif
