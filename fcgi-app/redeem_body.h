/*
 * redeem_body.h - the strict bodies of the checkout endpoints (redeem.h): orderId,
 * code, orderAmount, ttlSeconds. Exposed for the unit tests and the fuzzer; each
 * enforces CP_ORDER_ID_MAX_CHARS, CP_ISSUE_CODE_INPUT_MAX and the amount's form before
 * anything else, refuses unknown and duplicate members (jsonv), and answers
 * CP_ERR_INVALID or CP_ERR_BAD_AMOUNT with *why (static text) for the problem's detail.
 * Pure; thread-safe.
 */
#ifndef COUPON_REDEEM_BODY_H
#define COUPON_REDEEM_BODY_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cp_limits.h"
#include "money.h"

/* 1 when s[0..len) is an orderId: 1..CP_ORDER_ID_MAX_CHARS of [A-Za-z0-9._:-]. */
int redeem_order_id_valid(const char *s, size_t len);

/* {"orderId": "..."} -> order (NUL-terminated); with amount (MONEY_TEXT_MAX bytes) not
 * NULL also an optional "orderAmount" -> amount ("" when absent). CP_ERR_INVALID or
 * CP_ERR_BAD_AMOUNT with *why (static text) otherwise. */
int redeem_parse_order_body(const char *body, size_t len, char order[CP_ORDER_ID_MAX_CHARS + 1],
                            char *amount, const char **why);

/* {"code": "...", "orderId": "...", "orderAmount": "..." (optional)} -> the normalised
 * code, the order and the amount ("" when absent). */
int redeem_parse_code_body(const char *body, size_t len, char code[CP_ISSUE_CODE_CHARS + 1],
                           char order[CP_ORDER_ID_MAX_CHARS + 1], char amount[MONEY_TEXT_MAX],
                           const char **why);

/* The "code" member of obj, normalised (issuecode_normalise). CP_ERR_INVALID with *why. */
int redeem_take_code(struct json_object *obj, char code[CP_ISSUE_CODE_CHARS + 1], const char **why);

/* The "orderAmount" member of obj: a JSON string that money_parse() reads at
 * MONEY_EXP_MAX (the currency's own exponent is checked once the coupon is known) ->
 * amount. CP_ERR_NOT_FOUND when absent, CP_ERR_BAD_AMOUNT with *why otherwise. */
int redeem_take_amount(struct json_object *obj, char amount[MONEY_TEXT_MAX], const char **why);

/* {"orderId", "ttlSeconds"} (code NULL) or {"code", "orderId", "ttlSeconds"}: ttlSeconds
 * 1..CP_HOLD_TTL_MAX_S into *ttl_s. */
int redeem_parse_hold_body(const char *body, size_t len, char code[CP_ISSUE_CODE_CHARS + 1],
                           char order[CP_ORDER_ID_MAX_CHARS + 1], int64_t *ttl_s, const char **why);

#endif
