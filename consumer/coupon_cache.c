#include "first.h"

#include "coupon_cache.h"

#include <stdlib.h>

#include "cp_err.h"

#define MS_PER_DAY 86400000LL

static const char lookup_sql[] =
    "SELECT COALESCE(CAST(usable_days AS SIGNED), -1), "
    "COALESCE(CAST(UNIX_TIMESTAMP(usable_until) * 1000 AS SIGNED), -1) "
    "FROM coupon WHERE id = ?";

struct coupon_cache {
    struct coupon_validity known[COUPON_CACHE_SIZE]; /* id 0 = empty slot */
    size_t next;
};

struct coupon_cache *coupon_cache_new(void)
{
    return calloc(1, sizeof(struct coupon_cache));
}

void coupon_cache_free(struct coupon_cache *c)
{
    free(c);
}

int coupon_cache_lookup(struct coupon_cache *c, struct db *db, int64_t coupon_id,
                        struct coupon_validity *out)
{
    for (size_t i = 0; i < COUPON_CACHE_SIZE; i++)
        if (c->known[i].id == coupon_id) {
            *out = c->known[i];
            return 1;
        }
    struct coupon_validity v = {coupon_id, -1, -1};
    MYSQL_BIND p, res[2];
    db_bind_i64(&p, &coupon_id, NULL);
    db_bind_i64(&res[0], &v.usable_days, NULL);
    db_bind_i64(&res[1], &v.usable_until_ms, NULL);
    int rc = db_fetch_one(db, lookup_sql, &p, res);
    if (rc == CP_ERR_NOT_FOUND)
        return 0;
    if (rc != CP_OK)
        return rc;
    c->known[c->next] = v;
    c->next = (c->next + 1) % COUPON_CACHE_SIZE;
    *out = v;
    return 1;
}

int64_t coupon_validity_until(const struct coupon_validity *v, int64_t issued_ms)
{
    int64_t until = -1;
    if (v->usable_days >= 0)
        until = issued_ms + v->usable_days * MS_PER_DAY;
    if (v->usable_until_ms >= 0 && (until < 0 || v->usable_until_ms < until))
        until = v->usable_until_ms;
    return until;
}
