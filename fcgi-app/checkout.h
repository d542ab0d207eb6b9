/*
 * checkout.h - the checkout decision of one issuance, made in Redis by
 * lua/redeem.lua: redeem, hold, release, cancel (issue 26).
 *
 * One script call decides atomically - issued? expired? redeemed or held by
 * another order? - and records the change with its outbox record in
 * coupon:{ID}:rpending, numbered per issuance. The coupon is then added to
 * RKEY_CHECKOUT_DIRTY, so coupon-consumer's applier (consumer/checkout_apply.c)
 * writes the change into MariaDB with its coupon.redemption event, exactly once
 * and in version order. A redemption is therefore decided at the speed of a claim,
 * right after the claim (Redis has the issuance from its 201 on), and is as
 * durable as a claim: with redis_wait_replicas N >= 1 the change is on N replicas
 * before the answer (else CP_ERR_NOT_REPLICATED), as for issue.lua.
 *
 * The terms (validity after issuance) come from the coupon's document (L1); they
 * are set at creation and never change, so a cached copy is exact. Thread-safe in
 * the sense of app.h: a thread uses only its own Redis client.
 */
#ifndef COUPON_CHECKOUT_H
#define COUPON_CHECKOUT_H

#include <stdint.h>

#include "app.h"

enum checkout_op { CHECKOUT_REDEEM, CHECKOUT_HOLD, CHECKOUT_RELEASE, CHECKOUT_CANCEL };

/* The script's outcomes (lua/redeem.lua's reply codes). */
enum checkout_outcome {
    CHECKOUT_CHANGED = 1,       /* this call changed the state (201 / 204) */
    CHECKOUT_REPLAY = 2,        /* the same order again: redeemed / holding (200) */
    CHECKOUT_NOTHING = 0,       /* release: not held; cancel: not redeemed (204) */
    CHECKOUT_NOT_ISSUED = -1,   /* the user holds no issuance of the coupon */
    CHECKOUT_BACKLOG = -6,      /* too many changes MariaDB does not have yet */
    CHECKOUT_EXPIRED = -7,      /* past the issuance's usable deadline */
    CHECKOUT_REDEEMED = -8,     /* redeemed by another order (hold: redeemed at all) */
    CHECKOUT_HELD = -9,         /* held by another order */
    CHECKOUT_WRONG_ORDER = -10, /* release/cancel by an order that holds nothing */
};

/* Validity after issuance, from the campaign: -1 = no limit. */
struct checkout_terms {
    int64_t usable_ms;       /* usableDays in ms */
    int64_t usable_until_ms; /* usableUntil */
};

struct checkout_result {
    enum checkout_outcome outcome;
    int64_t at_ms;    /* CHANGED/REPLAY: when (redeemedAt, heldAt's end for a hold: below);
                         REDEEMED: redeemedAt; EXPIRED: the deadline; HELD: holdExpiresAt */
    int64_t version;  /* CHANGED: the issuance's checkout version */
    int64_t sequence; /* the issuance's (0 for NOT_ISSUED) */
    int64_t issued_at_ms;
};

/*
 * Runs the decision. order: a validated orderId; hold_ttl_ms: CHECKOUT_HOLD only
 * (1..CP_HOLD_TTL_MAX_S s). CP_OK with *out, CP_ERR_UNAVAILABLE (Redis failed; nothing
 * is known to have changed, the client retries: the same order is idempotent), or
 * CP_ERR_NOT_REPLICATED (changed, but fewer replicas than redis_wait_replicas said so
 * in time: *out is filled; the change stands and is applied).
 */
int checkout_decide(struct app_thread *t, enum checkout_op op, int64_t coupon_id, int64_t user_id,
                    const char *order, int64_t hold_ttl_ms, const struct checkout_terms *terms,
                    struct checkout_result *out);

/* The usable deadline of an issuance made at issued_at_ms: -1 = none. */
int64_t checkout_deadline(const struct checkout_terms *terms, int64_t issued_at_ms);

#endif
