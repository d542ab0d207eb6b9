/*
 * redemption_store.h - finding an issuance by its code in MariaDB (the code is
 * indexed there, computed by the consumer when it persists the row).
 *
 * Redemptions and holds themselves are decided in Redis (fcgi-app/checkout.h) and
 * applied to MariaDB by coupon-consumer (consumer/checkout_apply.h); what is left
 * here is the look-up by code, on the caller's thread-owned client (common/db).
 * Errors are db.h's codes. Thread-safe on distinct clients.
 */
#ifndef COUPON_REDEMPTION_STORE_H
#define COUPON_REDEMPTION_STORE_H

#include <stdint.h>

#include "coupon_store.h"
#include "cp_limits.h"

/*
 * The issuance holding `code` (normalised, CP_ISSUE_CODE_CHARS symbols). One
 * index look-up whatever the code, then a constant-time comparison against the
 * row found or, when none is, against a dummy, so both answers do the same work.
 * CP_OK, CP_ERR_NOT_FOUND, CP_ERR_CONFLICT (two issuances share it), or
 * CP_ERR_UNAVAILABLE.
 */
int redemption_store_find_code(struct db *db, const char *code, int64_t *coupon_id,
                               int64_t *user_id);

#endif
