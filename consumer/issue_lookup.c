#include "first.h"

#include "issue_lookup.h"

#include "cp_err.h"

static const char exists_sql[] =
    "SELECT COUNT(*), 0 FROM coupon_issue WHERE coupon_id = ? AND user_id = ?";
static const char recent_sql[] = "SELECT CAST(id AS SIGNED), 0 FROM coupon WHERE end_at > "
                                 "UTC_TIMESTAMP() - INTERVAL 7 DAY ORDER BY id DESC LIMIT ?";

int issue_lookup_exists(struct db *db, int64_t coupon_id, int64_t user_id)
{
    int64_t count = 0, unused = 0;
    MYSQL_BIND p[2], res[2];
    db_bind_i64(&p[0], &coupon_id, NULL);
    db_bind_i64(&p[1], &user_id, NULL);
    db_bind_i64(&res[0], &count, NULL);
    db_bind_i64(&res[1], &unused, NULL);
    int rc = db_fetch_one(db, exists_sql, p, res);
    if (rc == CP_ERR_NOT_FOUND)
        return CP_ERR_UNAVAILABLE; /* COUNT(*) has a row */
    return rc != CP_OK ? rc : count > 0;
}

struct id_list {
    int64_t id, unused, *ids;
    size_t cap, n;
};

static int collect_id(void *arg)
{
    struct id_list *l = arg;
    if (l->n < l->cap)
        l->ids[l->n++] = l->id;
    return CP_OK;
}

int issue_lookup_recent_coupons(struct db *db, int64_t *ids, size_t cap, size_t *n)
{
    int64_t limit = (int64_t)cap;
    struct id_list l = {.ids = ids, .cap = cap};
    MYSQL_BIND p, res[2];
    db_bind_i64(&p, &limit, NULL);
    db_bind_i64(&res[0], &l.id, NULL);
    db_bind_i64(&res[1], &l.unused, NULL);
    int rc = db_fetch_each(db, recent_sql, &p, res, collect_id, &l);
    *n = l.n;
    return rc;
}
