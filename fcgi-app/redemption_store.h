/*
 * redemption_store.h - the redemption transactions in MariaDB: redeem exactly
 * once, cancel, and find an issuance by its code.
 *
 * Exactness is decided by one conditional UPDATE of the issuance's row,
 *   UPDATE coupon_issue SET used_at = now, redeemed_order_id = ?
 *    WHERE coupon_id = ? AND user_id = ? AND used_at IS NULL
 *      AND (usable_until IS NULL OR usable_until > now)
 * never by a read followed by a write: InnoDB's row lock serialises concurrent
 * attempts, and the affected-row count says who won. The winner's transaction
 * also INSERTs its coupon.redemption event into event_outbox and commits both
 * at once, so an event exists exactly when the state change does (the consumer's
 * relay publishes it). A loser rolls back (nothing written) and reads the row
 * again to say why: the same orderId (an idempotent replay, answered like the
 * original), another one (conflict), past usable_until (expired) or no row.
 * Cancel is the mirror image (UPDATE ... WHERE redeemed_order_id = ?).
 *
 * Each transaction is a db_tx on the caller's thread-owned client (common/db):
 * a deadlock or lock wait time-out runs it again there. A cancel committed
 * between a lost redeem and its read (or a redeem between a lost cancel and its
 * read) runs the whole change again, at most REDEMPTION_ATTEMPTS times, then
 * CP_ERR_TIMEOUT. Errors are db.h's codes. Thread-safe on distinct clients.
 */
#ifndef COUPON_REDEMPTION_STORE_H
#define COUPON_REDEMPTION_STORE_H

#include <stdint.h>

#include "coupon_store.h"
#include "cp_limits.h"

enum redeem_outcome {
    REDEEM_NEW,      /* this call redeemed it */
    REDEEM_REPLAY,   /* already redeemed with the same orderId */
    REDEEM_CONFLICT, /* redeemed with another orderId */
    REDEEM_EXPIRED,  /* not redeemed, and past usable_until */
    REDEEM_NO_ROW    /* no persisted issuance */
};

enum cancel_outcome {
    CANCEL_DONE,     /* this call cancelled the redemption */
    CANCEL_NOOP,     /* not redeemed (never, or cancelled already) */
    CANCEL_MISMATCH, /* redeemed by another order */
    CANCEL_NO_ROW    /* no persisted issuance */
};

struct redemption {
    struct issuance is; /* the row after the call (not for REDEEM_NO_ROW) */
    char discount_type[16];
    char discount_value[32]; /* DECIMAL as text */
    char currency[4];        /* the campaign's ISO 4217 code; "" = none */
};

/* Redeems (coupon_id, user_id) for order_id at now_ms; event to `topic`. */
int redemption_store_redeem(struct db *db, const char *topic, int64_t coupon_id, int64_t user_id,
                            const char *order_id, int64_t now_ms, enum redeem_outcome *outcome,
                            struct redemption *out);

/* Cancels the redemption of (coupon_id, user_id) by order_id; event to `topic`. */
int redemption_store_cancel(struct db *db, const char *topic, int64_t coupon_id, int64_t user_id,
                            const char *order_id, int64_t now_ms, enum cancel_outcome *outcome);

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
