#include "first.h"

#include "coupon_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cp_err.h"
#include "db.h"

static const char select_coupon_sql[] =
    "SELECT id, title, code, coupon_type, discount_type, CAST(discount_value AS CHAR), "
    "CAST(UNIX_TIMESTAMP(start_at) * 1000 AS SIGNED), "
    "CAST(UNIX_TIMESTAMP(end_at) * 1000 AS SIGNED), "
    "COALESCE(CAST(total_quantity AS SIGNED), -1), CAST(issued_quantity AS SIGNED), description, "
    "CAST(UNIX_TIMESTAMP(created_at) * 1000 AS SIGNED), "
    "CAST(UNIX_TIMESTAMP(updated_at) * 1000 AS SIGNED), "
    "COALESCE(CAST(usable_days AS SIGNED), -1), "
    "COALESCE(CAST(UNIX_TIMESTAMP(usable_until) * 1000 AS SIGNED), -1), "
    "COALESCE(currency, ''), COALESCE(CAST(min_order_amount AS CHAR), ''), "
    "COALESCE(CAST(max_discount_amount AS CHAR), '') "
    "FROM coupon WHERE id = ?";

int coupon_store_get(struct db *db, int64_t id, struct coupon *out)
{
    memset(out, 0, sizeof *out);
    MYSQL_BIND param, res[18];
    unsigned long lens[18];
    my_bool nulls[18];
    db_bind_i64(&param, &id, NULL);
    db_bind_i64(&res[0], &out->id, &nulls[0]);
    db_bind_text(&res[1], out->title, sizeof out->title, &lens[1], &nulls[1]);
    db_bind_text(&res[2], out->code, sizeof out->code, &lens[2], &nulls[2]);
    db_bind_text(&res[3], out->coupon_type, sizeof out->coupon_type, &lens[3], &nulls[3]);
    db_bind_text(&res[4], out->discount_type, sizeof out->discount_type, &lens[4], &nulls[4]);
    db_bind_text(&res[5], out->discount_value, sizeof out->discount_value, &lens[5], &nulls[5]);
    db_bind_i64(&res[6], &out->start_ms, &nulls[6]);
    db_bind_i64(&res[7], &out->end_ms, &nulls[7]);
    db_bind_i64(&res[8], &out->total_quantity, &nulls[8]);
    db_bind_i64(&res[9], &out->issued_quantity, &nulls[9]);
    db_bind_text(&res[10], out->description, sizeof out->description, &lens[10], &nulls[10]);
    db_bind_i64(&res[11], &out->created_ms, &nulls[11]);
    db_bind_i64(&res[12], &out->updated_ms, &nulls[12]);
    db_bind_i64(&res[13], &out->usable_days, &nulls[13]);
    db_bind_i64(&res[14], &out->usable_until_ms, &nulls[14]);
    db_bind_text(&res[15], out->currency, sizeof out->currency, &lens[15], &nulls[15]);
    db_bind_text(&res[16], out->min_order_amount, sizeof out->min_order_amount, &lens[16],
                 &nulls[16]);
    db_bind_text(&res[17], out->max_discount_amount, sizeof out->max_discount_amount, &lens[17],
                 &nulls[17]);
    int rc = db_fetch_one(db, select_coupon_sql, &param, res);
    if (rc != CP_OK)
        return rc;
    char *texts[] = {out->title,
                     out->code,
                     out->coupon_type,
                     out->discount_type,
                     out->discount_value,
                     out->description,
                     out->currency,
                     out->min_order_amount,
                     out->max_discount_amount};
    size_t caps[] = {sizeof out->title,
                     sizeof out->code,
                     sizeof out->coupon_type,
                     sizeof out->discount_type,
                     sizeof out->discount_value,
                     sizeof out->description,
                     sizeof out->currency,
                     sizeof out->min_order_amount,
                     sizeof out->max_discount_amount};
    int cols[] = {1, 2, 3, 4, 5, 10, 15, 16, 17};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        db_text_end(texts[i], caps[i], nulls[cols[i]] ? 0 : lens[cols[i]]);
    out->has_code = !nulls[2];
    out->has_description = !nulls[10];
    return CP_OK;
}

/* One BIGINT of a one-row SELECT with the coupon id as its parameter. */
static int select_int(struct db *db, const char *sql, int64_t id, int64_t *out)
{
    MYSQL_BIND param, res;
    db_bind_i64(&param, &id, NULL);
    db_bind_i64(&res, out, NULL);
    int rc = db_fetch_one(db, sql, &param, &res);
    return rc == CP_ERR_NOT_FOUND ? CP_ERR_UNAVAILABLE : rc; /* an aggregate has a row */
}

int coupon_store_has_issues(struct db *db, int64_t id)
{
    int64_t exists = 0;
    int rc = select_int(db, "SELECT EXISTS(SELECT 1 FROM coupon_issue WHERE coupon_id = ?)", id,
                        &exists);
    return rc != CP_OK ? rc : exists != 0;
}

int coupon_store_insert(struct db *db, struct coupon *c)
{
    static const char sql[] =
        "INSERT INTO coupon (title, code, coupon_type, discount_type, discount_value, "
        "start_at, end_at, total_quantity, description, usable_days, usable_until, currency, "
        "min_order_amount, max_discount_amount) "
        "VALUES (?, ?, ?, ?, ?, FROM_UNIXTIME(? / 1000), FROM_UNIXTIME(? / 1000), ?, ?, ?, "
        "FROM_UNIXTIME(? / 1000), ?, ?, ?)";
    MYSQL_BIND p[14];
    unsigned long lens[14];
    my_bool code_null = !c->has_code, desc_null = !c->has_description,
            total_null = c->total_quantity < 0, days_null = c->usable_days < 0,
            until_null = c->usable_until_ms < 0;
    char *strs[] = {c->title, c->code, c->coupon_type, c->discount_type, c->discount_value};
    for (int i = 0; i < 5; i++) {
        lens[i] = (unsigned long)strlen(strs[i]);
        db_bind_text(&p[i], strs[i], lens[i], &lens[i], NULL);
    }
    p[1].is_null = &code_null;
    db_bind_i64(&p[5], &c->start_ms, NULL);
    db_bind_i64(&p[6], &c->end_ms, NULL);
    db_bind_i64(&p[7], &c->total_quantity, &total_null);
    lens[8] = (unsigned long)strlen(c->description);
    db_bind_text(&p[8], c->description, lens[8], &lens[8], &desc_null);
    db_bind_i64(&p[9], &c->usable_days, &days_null);
    db_bind_i64(&p[10], &c->usable_until_ms, &until_null);
    char *money[] = {c->currency, c->min_order_amount, c->max_discount_amount};
    my_bool money_null[3];
    for (int i = 0; i < 3; i++) {
        lens[11 + i] = (unsigned long)strlen(money[i]);
        money_null[i] = lens[11 + i] == 0;
        db_bind_text(&p[11 + i], money[i], lens[11 + i], &lens[11 + i], &money_null[i]);
    }
    int rc = db_exec(db, sql, p);
    if (rc == CP_OK)
        c->id = (int64_t)db_insert_id(db);
    return rc;
}

int coupon_store_update(struct db *db, const struct coupon *c)
{
    static const char sql[] =
        "UPDATE coupon SET title = ?, description = ?, end_at = FROM_UNIXTIME(? / 1000), "
        "total_quantity = ? WHERE id = ?";
    struct coupon copy = *c; /* the bind API takes non-const buffers */
    MYSQL_BIND p[5];
    unsigned long lens[2] = {(unsigned long)strlen(copy.title),
                             (unsigned long)strlen(copy.description)};
    my_bool desc_null = !copy.has_description, total_null = copy.total_quantity < 0;
    db_bind_text(&p[0], copy.title, lens[0], &lens[0], NULL);
    db_bind_text(&p[1], copy.description, lens[1], &lens[1], &desc_null);
    db_bind_i64(&p[2], &copy.end_ms, NULL);
    db_bind_i64(&p[3], &copy.total_quantity, &total_null);
    db_bind_i64(&p[4], &copy.id, NULL);
    return db_exec(db, sql, p);
}

int coupon_store_count_issues(struct db *db, int64_t id, int64_t *count, int64_t *redeemed,
                              int64_t *held)
{
    static const char sql[] = "SELECT COUNT(*), COUNT(used_at), "
                              "COUNT(CASE WHEN " COUPON_STORE_HELD_NOW " THEN 1 END) "
                              "FROM coupon_issue WHERE coupon_id = ?";
    int64_t used = 0, holds = 0;
    MYSQL_BIND param, res[3];
    db_bind_i64(&param, &id, NULL);
    db_bind_i64(&res[0], count, NULL);
    db_bind_i64(&res[1], &used, NULL);
    db_bind_i64(&res[2], &holds, NULL);
    int rc = db_fetch_one(db, sql, &param, res);
    if (rc == CP_ERR_NOT_FOUND)
        rc = CP_ERR_UNAVAILABLE; /* an aggregate has a row */
    if (rc == CP_OK && redeemed != NULL)
        *redeemed = used;
    if (rc == CP_OK && held != NULL)
        *held = holds;
    return rc;
}

void coupon_store_bind_issuance(MYSQL_BIND *res, struct issuance *is,
                                struct coupon_store_issuance_lens *b)
{
    db_bind_i64(&res[0], &is->sequence, NULL);
    db_bind_i64(&res[1], &is->issued_ms, NULL);
    db_bind_i64(&res[2], &is->used_ms, NULL);
    db_bind_i64(&res[3], &is->usable_until_ms, NULL);
    db_bind_text(&res[4], is->code, sizeof is->code, &b->code_len, NULL);
    db_bind_text(&res[5], is->order_id, sizeof is->order_id, &b->order_len, NULL);
}

void coupon_store_finish_issuance(struct issuance *is, const struct coupon_store_issuance_lens *b)
{
    db_text_end(is->code, sizeof is->code, b->code_len);
    db_text_end(is->order_id, sizeof is->order_id, b->order_len);
}

int coupon_store_issue_get(struct db *db, int64_t coupon_id, int64_t user_id, struct issuance *out)
{
    static const char sql[] = "SELECT " COUPON_STORE_ISSUANCE_COLUMNS
                              "FROM coupon_issue ci WHERE ci.coupon_id = ? AND ci.user_id = ?";
    MYSQL_BIND p[2], res[COUPON_STORE_ISSUANCE_NCOLS];
    struct coupon_store_issuance_lens ib;
    memset(out, 0, sizeof *out);
    db_bind_i64(&p[0], &coupon_id, NULL);
    db_bind_i64(&p[1], &user_id, NULL);
    coupon_store_bind_issuance(res, out, &ib);
    int rc = db_fetch_one(db, sql, p, res);
    if (rc == CP_OK)
        coupon_store_finish_issuance(out, &ib);
    return rc;
}

struct user_rows {
    struct user_coupon row;
    struct coupon_store_issuance_lens ib;
    unsigned long title_len;
    coupon_store_row_fn fn;
    void *arg;
};

static int user_row(void *arg)
{
    struct user_rows *u = arg;
    db_text_end(u->row.title, sizeof u->row.title, u->title_len);
    coupon_store_finish_issuance(&u->row.is, &u->ib);
    return u->fn(u->arg, &u->row);
}

int coupon_store_user_coupons(struct db *db, int64_t user_id, int64_t before_id, int limit,
                              coupon_store_row_fn fn, void *arg)
{
    static const char sql[] = "SELECT CAST(ci.id AS SIGNED), CAST(ci.coupon_id AS SIGNED), "
                              "c.title, " COUPON_STORE_ISSUANCE_COLUMNS
                              "FROM coupon_issue ci JOIN coupon c ON c.id = ci.coupon_id "
                              "WHERE ci.user_id = ? AND ci.id < ? ORDER BY ci.id DESC LIMIT ?";
    int64_t lim = limit;
    MYSQL_BIND p[3], res[3 + COUPON_STORE_ISSUANCE_NCOLS];
    struct user_rows u = {.fn = fn, .arg = arg};
    db_bind_i64(&p[0], &user_id, NULL);
    db_bind_i64(&p[1], &before_id, NULL);
    db_bind_i64(&p[2], &lim, NULL);
    db_bind_i64(&res[0], &u.row.issue_id, NULL);
    db_bind_i64(&res[1], &u.row.coupon_id, NULL);
    db_bind_text(&res[2], u.row.title, sizeof u.row.title, &u.title_len, NULL);
    coupon_store_bind_issuance(&res[3], &u.row.is, &u.ib);
    return db_fetch_each(db, sql, p, res, user_row, &u);
}

struct list_rows {
    struct coupon_summary row, *out;
    unsigned long title_len;
    size_t *n, cap;
};

static int list_row(void *arg)
{
    struct list_rows *l = arg;
    if (*l->n == l->cap)
        return CP_ERR_INTERNAL; /* the server returned more rows than LIMIT */
    db_text_end(l->row.title, sizeof l->row.title, l->title_len);
    l->out[(*l->n)++] = l->row;
    return CP_OK;
}

int coupon_store_list(struct db *db, int64_t before_id, int limit, struct coupon_summary *out,
                      size_t *n)
{
    static const char sql[] =
        "SELECT CAST(id AS SIGNED), title, COALESCE(CAST(total_quantity AS SIGNED), -1), "
        "CAST(issued_quantity AS SIGNED), CAST(UNIX_TIMESTAMP(start_at) * 1000 AS SIGNED), "
        "CAST(UNIX_TIMESTAMP(end_at) * 1000 AS SIGNED) "
        "FROM coupon WHERE id < ? ORDER BY id DESC LIMIT ?";
    *n = 0;
    int64_t lim = limit;
    MYSQL_BIND p[2], res[6];
    struct list_rows l = {.out = out, .n = n, .cap = (size_t)limit};
    memset(&l.row, 0, sizeof l.row);
    db_bind_i64(&p[0], &before_id, NULL);
    db_bind_i64(&p[1], &lim, NULL);
    db_bind_i64(&res[0], &l.row.id, NULL);
    db_bind_text(&res[1], l.row.title, sizeof l.row.title, &l.title_len, NULL);
    db_bind_i64(&res[2], &l.row.total_quantity, NULL);
    db_bind_i64(&res[3], &l.row.issued_quantity, NULL);
    db_bind_i64(&res[4], &l.row.start_ms, NULL);
    db_bind_i64(&res[5], &l.row.end_ms, NULL);
    return db_fetch_each(db, sql, p, res, list_row, &l);
}

struct checkout_rows {
    struct coupon_summary *rows;
    size_t n;
    int64_t id, redeemed, held; /* the row being read */
};

static int checkout_row(void *arg)
{
    struct checkout_rows *c = arg;
    for (size_t i = 0; i < c->n; i++)
        if (c->rows[i].id == c->id) {
            c->rows[i].redeemed = c->redeemed;
            c->rows[i].held = c->held;
        }
    return CP_OK;
}

int coupon_store_checkout_counts(struct db *db, struct coupon_summary *rows, size_t n)
{
    static const char sql[] = "SELECT CAST(coupon_id AS SIGNED), COUNT(used_at), "
                              "COUNT(CASE WHEN " COUPON_STORE_HELD_NOW " THEN 1 END) "
                              "FROM coupon_issue WHERE coupon_id BETWEEN ? AND ? "
                              "GROUP BY coupon_id";
    if (n == 0)
        return CP_OK;
    int64_t lo = rows[0].id, hi = rows[0].id;
    for (size_t i = 0; i < n; i++) {
        rows[i].redeemed = rows[i].held = 0; /* no issuance: no row in the result */
        lo = rows[i].id < lo ? rows[i].id : lo;
        hi = rows[i].id > hi ? rows[i].id : hi;
    }
    struct checkout_rows c = {.rows = rows, .n = n};
    MYSQL_BIND p[2], res[3];
    db_bind_i64(&p[0], &lo, NULL);
    db_bind_i64(&p[1], &hi, NULL);
    db_bind_i64(&res[0], &c.id, NULL);
    db_bind_i64(&res[1], &c.redeemed, NULL);
    db_bind_i64(&res[2], &c.held, NULL);
    return db_fetch_each(db, sql, p, res, checkout_row, &c);
}
