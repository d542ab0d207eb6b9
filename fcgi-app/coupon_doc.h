/*
 * coupon_doc.h - the coupon as JSON: the document served by GET /api/coupons/{id}
 * (and cached in L1/L2), and the strict validation of the admin API's create and
 * patch bodies.
 *
 * Validation accepts only what MariaDB and the Lua scripts can hold exactly:
 * times within 2000..2099 (UTC), amounts as common/money.h reads them (a percentage
 * with two decimals, money with its currency's), quantities up to 10^12. Amounts leave
 * as text at their scale: discountValue a JSON number ("10.00", JPY 500), the new
 * minOrderAmount / maxDiscountAmount JSON strings. Every rejection names the field in *why (static
 * text), which becomes the problem's detail. Pure functions; thread-safe.
 */
#ifndef COUPON_COUPON_DOC_H
#define COUPON_COUPON_DOC_H

#include <stddef.h>

#include "coupon_store.h"
#include "money.h"

#define COUPON_TIME_MIN_MS  946684800000LL  /* 2000-01-01T00:00:00Z */
#define COUPON_TIME_MAX_MS  4102444800000LL /* 2100-01-01T00:00:00Z */
#define COUPON_QUANTITY_MAX 1000000000000LL

/* Writes the document (no live stock); returns its length or CP_ERR_LIMIT. */
int coupon_doc_write(const struct coupon *c, char *buf, size_t cap);

/* POST /api/coupons body -> a coupon without id. CP_OK or CP_ERR_INVALID. */
int coupon_doc_parse_create(const char *body, size_t len, struct coupon *out, const char **why);

/* PATCH /api/coupons/{id} body applied onto `c` (the current coupon), all or nothing:
 * a refused patch leaves `c` unchanged. Sets *total_changed when totalQuantity is part
 * of the patch. */
int coupon_doc_apply_patch(const char *body, size_t len, struct coupon *c, int *total_changed,
                           const char **why);

/* 1 for a PERCENTAGE campaign. */
int coupon_doc_is_percentage(const struct coupon *c);

/* The campaign's discount rule (common/money.h) and its currency's exponent, from the
 * stored text. CP_OK, or CP_ERR_INTERNAL when a stored value cannot be read. */
int coupon_doc_rule(const struct coupon *c, struct money_rule *rule, int *exp);

/* The discount of the campaign on an order of `amount` (text that passed money_parse
 * at MONEY_EXP_MAX), in minor units at *exp: MONEY_APPLIES or MONEY_BELOW_MINIMUM
 * (*discount 0); CP_ERR_BAD_AMOUNT for more decimals than the currency has,
 * CP_ERR_INTERNAL for a stored value that cannot be read; *why (static) on failure. */
int coupon_doc_discount(const struct coupon *c, const char *amount, int64_t *discount, int *exp,
                        const char **why);

#endif
