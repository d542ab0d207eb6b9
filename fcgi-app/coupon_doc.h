/*
 * coupon_doc.h - the coupon as JSON: the document served by GET /api/coupons/{id}
 * (and cached in L1/L2), and the strict validation of the admin API's create and
 * patch bodies.
 *
 * Validation accepts only what MariaDB and the Lua scripts can hold exactly:
 * times within 2000..2099 (UTC), discount values with at most two decimals below
 * 10^10, quantities up to 10^12. Every rejection names the field in *why (static
 * text), which becomes the problem's detail. Pure functions; thread-safe.
 */
#ifndef COUPON_COUPON_DOC_H
#define COUPON_COUPON_DOC_H

#include <stddef.h>

#include "coupon_store.h"

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

#endif
