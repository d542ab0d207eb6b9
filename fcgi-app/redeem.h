/*
 * redeem.h - the redemption endpoints (issue 13):
 *
 *   POST   /api/coupons/{id}/issues/{userId}/redemption  {"orderId":"o-1"}
 *          201 redeemed now, 200 the same orderId again (idempotent replay),
 *          409 COUPON_ALREADY_REDEEMED (another orderId), 410 COUPON_EXPIRED,
 *          404 COUPON_ISSUE_NOT_FOUND, 409 COUPON_NOT_YET_PERSISTED + Retry-After
 *          (issued - Redis holds the claim - but the consumer has not written the
 *          row yet: the one place a redemption can be decided exactly is MariaDB)
 *   DELETE the same path                                 {"orderId":"o-1"}
 *          204 cancelled, or nothing to cancel (idempotent); 409
 *          REDEMPTION_ORDER_MISMATCH when another order holds the redemption
 *   POST   /api/redemptions                              {"code":"...","orderId":"..."}
 *          the same as the first, for the issuance holding the code; 404
 *          COUPON_CODE_NOT_FOUND for a code no issuance has (found or not, the
 *          look-up does the same work: redemption_store_find_code)
 *
 * The answer of a redemption carries the campaign's discount so a checkout can
 * apply it. The decision itself is redemption_store.c's (one conditional UPDATE
 * in a transaction with its outbox event). The body parsers are exposed for the
 * unit tests; they enforce CP_ORDER_ID_MAX_CHARS and CP_ISSUE_CODE_INPUT_MAX
 * before anything else. Thread-safe (each request thread uses its own
 * connections).
 */
#ifndef COUPON_REDEEM_H
#define COUPON_REDEEM_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "cp_limits.h"
#include "http.h"

/* 1 when s[0..len) is an orderId: 1..CP_ORDER_ID_MAX_CHARS of [A-Za-z0-9._:-]. */
int redeem_order_id_valid(const char *s, size_t len);

/* {"orderId": "..."} and nothing else -> order (NUL-terminated). CP_ERR_INVALID with
 * *why (static text) otherwise. */
int redeem_parse_order_body(const char *body, size_t len, char order[CP_ORDER_ID_MAX_CHARS + 1],
                            const char **why);

/* {"code": "...", "orderId": "..."} -> the normalised code and the order. */
int redeem_parse_code_body(const char *body, size_t len, char code[CP_ISSUE_CODE_CHARS + 1],
                           char order[CP_ORDER_ID_MAX_CHARS + 1], const char **why);

/* {"orderId", "ttlSeconds"} (code NULL) or {"code", "orderId", "ttlSeconds"}: ttlSeconds
 * 1..CP_HOLD_TTL_MAX_S into *ttl_s. */
int redeem_parse_hold_body(const char *body, size_t len, char code[CP_ISSUE_CODE_CHARS + 1],
                           char order[CP_ORDER_ID_MAX_CHARS + 1], int64_t *ttl_s, const char **why);

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
