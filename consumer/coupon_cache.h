/*
 * coupon_cache.h - what persisting an issuance needs of its coupon: that it
 * exists, and its validity after issuance (usable_days, usable_until).
 *
 * Both are set when the coupon is created and never change, and coupons are
 * never deleted, so a coupon found once is remembered (the COUPON_CACHE_SIZE
 * most recently found, a ring) and only an unknown id costs a SELECT. A coupon
 * not found is not remembered: it may be created a moment later. One thread.
 */
#ifndef COUPON_COUPON_CACHE_H
#define COUPON_COUPON_CACHE_H

#include <stdint.h>

#include "db.h"

#define COUPON_CACHE_SIZE 256

struct coupon_validity {
    int64_t id;
    int64_t usable_days;     /* -1 = no limit */
    int64_t usable_until_ms; /* -1 = no limit */
};

struct coupon_cache;

/* NULL: out of memory. */
struct coupon_cache *coupon_cache_new(void);
void coupon_cache_free(struct coupon_cache *c);

/* 1 and *out when the coupon exists, 0 when not, or db.h's codes. */
int coupon_cache_lookup(struct coupon_cache *c, struct db *db, int64_t coupon_id,
                        struct coupon_validity *out);

/* An issuance's usable_until: MIN(issued_at + usable_days, usable_until); -1 = no limit. */
int64_t coupon_validity_until(const struct coupon_validity *v, int64_t issued_ms);

#endif
