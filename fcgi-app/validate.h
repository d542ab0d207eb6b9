/*
 * validate.h - POST /api/redemptions/validate (issue 26): would a coupon apply to an
 * order, and for how much? A read: nothing is ever written, nothing is reserved.
 *
 *   {"code": "...", "orderAmount": "12.50"}   the issuance holding the code: a user's
 *                                              own codes only (another user's code is
 *                                              404 COUPON_CODE_NOT_FOUND like an unknown
 *                                              one); coupon:checkout / coupon:admin (and
 *                                              auth_mode = none) any code
 *   {"couponId": 7, "orderAmount": "12.50"}   the caller's own issuance of campaign 7
 *                                              (a user's token; none -> 400, a service
 *                                              token -> 403)
 *   200 {"valid": bool, "discountAmount": "1.25", "reason": null | "<code>",
 *        "couponId": 7, "currency": "EUR" | null}
 *
 * Reasons, checked in this order (the first that holds): COUPON_NOT_ISSUED,
 * COUPON_ALREADY_REDEEMED, COUPON_EXPIRED (past the issuance's usableUntil or the
 * campaign's), COUPON_HELD (reserved for holds: "held by another order"; nothing
 * produces it yet), ORDER_BELOW_MINIMUM. valid = true -> reason null; valid = false
 * -> discountAmount is zero at the currency's decimals ("0.00").
 *
 * Amounts are JSON strings, read exactly (common/money.h): orderAmount with at most the
 * currency's decimals, else 400 INVALID_AMOUNT. An issuance claimed moments ago and not
 * yet in MariaDB counts as issued (couponId: Redis holds the claim) and is judged by
 * the campaign's usableUntil; by code it is 404 until persisted (the code is indexed
 * in MariaDB only). Thread-safe (each request thread uses its own connections).
 */
#ifndef COUPON_VALIDATE_H
#define COUPON_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "cp_limits.h"
#include "http.h"
#include "money.h"

struct validate_body {
    char code[CP_ISSUE_CODE_CHARS + 1]; /* normalised; "" when couponId is given */
    int64_t coupon_id;                  /* 0 when code is given */
    char amount[MONEY_TEXT_MAX];        /* orderAmount as sent (money_parse at exp 3) */
};

/* Exactly one of code / couponId, and orderAmount; nothing else. CP_OK, CP_ERR_INVALID or
 * CP_ERR_BAD_AMOUNT with *why (static text). */
int validate_parse_body(const char *body, size_t len, struct validate_body *out, const char **why);

/* What the store knows of the caller's issuance. */
struct validate_issuance {
    int issued;              /* a row in MariaDB, or a claim in Redis */
    int redeemed;            /* redeemed (Redis' checkout state; else used_at) */
    int held;                /* a hold by an order that has not lapsed */
    int64_t usable_until_ms; /* the issuance's deadline; -1 = none (or not yet known) */
};

enum validate_reason {
    VALIDATE_OK,
    VALIDATE_NOT_ISSUED,
    VALIDATE_ALREADY_REDEEMED,
    VALIDATE_EXPIRED,
    VALIDATE_HELD,
    VALIDATE_BELOW_MINIMUM
};

/* The reason (the order above) from the issuance, the campaign's usableUntil (-1 =
 * none), now and money_discount's outcome. Pure. */
enum validate_reason validate_decide(const struct validate_issuance *is, int64_t campaign_until_ms,
                                     int64_t now_ms, int money_outcome);

/* The stable code of a reason ("COUPON_EXPIRED"); NULL for VALIDATE_OK. */
const char *validate_reason_code(enum validate_reason r);

void validate_handle(struct app_thread *t, const struct http_request *req,
                     struct http_response *resp);

#endif
