/*
 * redeem.h - the checkout endpoints (issues 13 and 26):
 *
 *   POST   /api/coupons/{id}/issues/{userId}/redemption  {"orderId":"o-1"}
 *          201 redeemed now, 200 the same orderId again (idempotent replay),
 *          409 COUPON_ALREADY_REDEEMED (another orderId) / COUPON_HELD (another
 *          order's hold), 410 COUPON_EXPIRED, 404 COUPON_ISSUE_NOT_FOUND
 *   DELETE the same path                                 {"orderId":"o-1"}
 *          204 cancelled, or nothing to cancel (idempotent); 409
 *          REDEMPTION_ORDER_MISMATCH when another order holds the redemption
 *   POST   .../hold {"orderId","ttlSeconds"}             201 held, 200 the same order's
 *          hold (not extended), 409 COUPON_HELD / COUPON_ALREADY_REDEEMED, 410
 *   DELETE .../hold {"orderId"}                          204 released or nothing held,
 *          409 REDEMPTION_ORDER_MISMATCH (another order's hold)
 *   POST   /api/redemptions, /api/redemptions/hold      the same by the issuance's code
 *          (404 COUPON_CODE_NOT_FOUND for a code no issuance has: found or not, the
 *          look-up does the same work, redemption_store_find_code)
 *
 * Every decision is checkout.c's (lua/redeem.lua in Redis, from the claim's 201 on);
 * the campaign's terms come from its cached document (read_coupon_terms). The answer
 * carries the campaign's discount so a checkout can apply it; with an optional
 * "orderAmount" in a redemption's body also "discountAmount", computed as POST
 * /api/redemptions/validate does (validate.h), after an amount the currency cannot
 * have (400 INVALID_AMOUNT) and an order below the campaign's minOrderAmount (422
 * ORDER_BELOW_MINIMUM) were refused with nothing decided. The body parsers are exposed
 * for the unit tests; they enforce CP_ORDER_ID_MAX_CHARS and CP_ISSUE_CODE_INPUT_MAX
 * before anything else. Thread-safe (each request thread uses its own connections).
 */
#ifndef COUPON_REDEEM_H
#define COUPON_REDEEM_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "cp_limits.h"
#include "http.h"
#include "redeem_body.h"

/* 1 when Redis holds the claim of (coupon, user) (HEXISTS coupon:{ID}:users), 0 when
 * not, CP_ERR_UNAVAILABLE (the connection is then dropped). */
int redeem_claimed_in_redis(struct app_thread *t, int64_t coupon_id, int64_t user_id);

void redeem_handle(struct app_thread *t, const struct http_request *req, struct http_response *resp,
                   int64_t coupon_id, int64_t user_id);
void redeem_cancel_handle(struct app_thread *t, const struct http_request *req,
                          struct http_response *resp, int64_t coupon_id, int64_t user_id);
void redeem_by_code_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp);
void redeem_hold_handle(struct app_thread *t, const struct http_request *req,
                        struct http_response *resp, int64_t coupon_id, int64_t user_id);
void redeem_release_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp, int64_t coupon_id, int64_t user_id);
void redeem_hold_by_code_handle(struct app_thread *t, const struct http_request *req,
                                struct http_response *resp);

#endif
