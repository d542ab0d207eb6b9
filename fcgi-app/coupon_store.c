#include "first.h"

#include "coupon_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cp_err.h"
#include "db.h"
#include "log.h"

static const char select_coupon_sql[] =
    "SELECT id, title, code, coupon_type, discount_type, CAST(discount_value AS CHAR), "
    "CAST(UNIX_TIMESTAMP(start_at) * 1000 AS SIGNED), "
    "CAST(UNIX_TIMESTAMP(end_at) * 1000 AS SIGNED), "
    "COALESCE(CAST(total_quantity AS SIGNED), -1), CAST(issued_quantity AS SIGNED), description, "
    "CAST(UNIX_TIMESTAMP(created_at) * 1000 AS SIGNED), "
    "CAST(UNIX_TIMESTAMP(updated_at) * 1000 AS SIGNED), "
    "COALESCE(CAST(usable_days AS SIGNED), -1), "
    "COALESCE(CAST(UNIX_TIMESTAMP(usable_until) * 1000 AS SIGNED), -1) "
    "FROM coupon WHERE id = ?";

static int stmt_error(MYSQL_STMT *st, const char *what)
{
    log_warn("mariadb %s: %s", what, mysql_stmt_error(st));
    return CP_ERR_UNAVAILABLE;
}

int coupon_store_get(MYSQL *db, int64_t id, struct coupon *out)
{
    int rc = CP_ERR_UNAVAILABLE;
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    if (mysql_stmt_prepare(st, select_coupon_sql, sizeof select_coupon_sql - 1) != 0) {
        rc = stmt_error(st, "prepare coupon select");
        goto out;
    }
    MYSQL_BIND param;
    memset(&param, 0, sizeof param);
    db_bind_i64(&param, &id, NULL);
    if (mysql_stmt_bind_param(st, &param) != 0 || mysql_stmt_execute(st) != 0) {
        rc = stmt_error(st, "execute coupon select");
        goto out;
    }
    memset(out, 0, sizeof *out);
    MYSQL_BIND res[15];
    unsigned long lens[15];
    my_bool nulls[15];
    memset(res, 0, sizeof res);
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
    if (mysql_stmt_bind_result(st, res) != 0) {
        rc = stmt_error(st, "bind coupon result");
        goto out;
    }
    int f = mysql_stmt_fetch(st);
    if (f == MYSQL_NO_DATA) {
        rc = CP_ERR_NOT_FOUND;
        goto out;
    }
    if (f != 0 && f != MYSQL_DATA_TRUNCATED) {
        rc = stmt_error(st, "fetch coupon");
        goto out;
    }
    out->has_code = !nulls[2];
    out->has_description = !nulls[10];
    if (nulls[2])
        out->code[0] = '\0';
    if (nulls[10])
        out->description[0] = '\0';
    rc = CP_OK;
out:
    mysql_stmt_close(st);
    return rc;
}

int coupon_store_has_issues(MYSQL *db, int64_t id)
{
    static const char sql[] = "SELECT EXISTS(SELECT 1 FROM coupon_issue WHERE coupon_id = ?)";
    int rc = CP_ERR_UNAVAILABLE;
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    MYSQL_BIND param, res;
    int64_t exists = 0;
    memset(&param, 0, sizeof param);
    memset(&res, 0, sizeof res);
    db_bind_i64(&param, &id, NULL);
    db_bind_i64(&res, &exists, NULL);
    if (mysql_stmt_prepare(st, sql, sizeof sql - 1) != 0 ||
        mysql_stmt_bind_param(st, &param) != 0 || mysql_stmt_execute(st) != 0 ||
        mysql_stmt_bind_result(st, &res) != 0 || mysql_stmt_fetch(st) != 0) {
        rc = stmt_error(st, "issue existence check");
        goto out;
    }
    rc = exists ? 1 : 0;
out:
    mysql_stmt_close(st);
    return rc;
}

/* Runs a prepared statement with its parameters bound; CP_OK or the mapped error. */
static int exec_params(MYSQL_STMT *st, const char *sql, size_t sqllen, MYSQL_BIND *params,
                       const char *what)
{
    if (mysql_stmt_prepare(st, sql, sqllen) != 0)
        return stmt_error(st, what);
    if (params != NULL && mysql_stmt_bind_param(st, params) != 0)
        return stmt_error(st, what);
    /* Every statement here runs alone (autocommit): a deadlock victim - an admin
     * UPDATE of a coupon row the consumer is updating too - was rolled back whole
     * and can simply run again. */
    int rc = 0;
    for (int attempt = 0; attempt < 3; attempt++)
        if ((rc = mysql_stmt_execute(st)) == 0 || mysql_stmt_errno(st) != 1213 /* deadlock */)
            break;
    if (rc != 0) {
        unsigned err = mysql_stmt_errno(st);
        if (err == 1062) /* ER_DUP_ENTRY: the unique coupon code */
            return CP_ERR_CONFLICT;
        if (err == 4025 || err == 1406 || err == 1264) /* CHECK, too long, out of range */
            return CP_ERR_INVALID;
        return stmt_error(st, what);
    }
    return CP_OK;
}

int coupon_store_insert(MYSQL *db, struct coupon *c)
{
    static const char sql[] =
        "INSERT INTO coupon (title, code, coupon_type, discount_type, discount_value, "
        "start_at, end_at, total_quantity, description, usable_days, usable_until) "
        "VALUES (?, ?, ?, ?, ?, FROM_UNIXTIME(? / 1000), FROM_UNIXTIME(? / 1000), ?, ?, ?, "
        "FROM_UNIXTIME(? / 1000))";
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    MYSQL_BIND p[11];
    unsigned long lens[9];
    my_bool code_null = !c->has_code, desc_null = !c->has_description,
            total_null = c->total_quantity < 0, days_null = c->usable_days < 0,
            until_null = c->usable_until_ms < 0;
    memset(p, 0, sizeof p);
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
    int rc = exec_params(st, sql, sizeof sql - 1, p, "insert coupon");
    if (rc == CP_OK)
        c->id = (int64_t)mysql_stmt_insert_id(st);
    mysql_stmt_close(st);
    return rc;
}

int coupon_store_update(MYSQL *db, const struct coupon *c)
{
    static const char sql[] =
        "UPDATE coupon SET title = ?, description = ?, end_at = FROM_UNIXTIME(? / 1000), "
        "total_quantity = ? WHERE id = ?";
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    struct coupon copy = *c; /* the bind API takes non-const buffers */
    MYSQL_BIND p[5];
    unsigned long lens[2] = {(unsigned long)strlen(copy.title),
                             (unsigned long)strlen(copy.description)};
    my_bool desc_null = !copy.has_description, total_null = copy.total_quantity < 0;
    memset(p, 0, sizeof p);
    db_bind_text(&p[0], copy.title, lens[0], &lens[0], NULL);
    db_bind_text(&p[1], copy.description, lens[1], &lens[1], &desc_null);
    db_bind_i64(&p[2], &copy.end_ms, NULL);
    db_bind_i64(&p[3], &copy.total_quantity, &total_null);
    db_bind_i64(&p[4], &copy.id, NULL);
    int rc = exec_params(st, sql, sizeof sql - 1, p, "update coupon");
    mysql_stmt_close(st);
    return rc;
}

int coupon_store_count_issues(MYSQL *db, int64_t id, int64_t *count, int64_t *redeemed)
{
    static const char sql[] =
        "SELECT COUNT(*), COUNT(used_at) FROM coupon_issue WHERE coupon_id = ?";
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    int64_t used = 0;
    MYSQL_BIND param, res[2];
    memset(&param, 0, sizeof param);
    memset(res, 0, sizeof res);
    db_bind_i64(&param, &id, NULL);
    db_bind_i64(&res[0], count, NULL);
    db_bind_i64(&res[1], &used, NULL);
    int rc = exec_params(st, sql, sizeof sql - 1, &param, "count issues");
    if (rc == CP_OK && (mysql_stmt_bind_result(st, res) != 0 || mysql_stmt_fetch(st) != 0))
        rc = stmt_error(st, "count issues");
    if (rc == CP_OK && redeemed != NULL)
        *redeemed = used;
    mysql_stmt_close(st);
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
    is->code[b->code_len < sizeof is->code ? b->code_len : sizeof is->code - 1] = '\0';
    is->order_id[b->order_len < sizeof is->order_id ? b->order_len : sizeof is->order_id - 1] =
        '\0';
}

int coupon_store_issue_get(MYSQL *db, int64_t coupon_id, int64_t user_id, struct issuance *out)
{
    static const char sql[] = "SELECT " COUPON_STORE_ISSUANCE_COLUMNS
                              "FROM coupon_issue ci WHERE ci.coupon_id = ? AND ci.user_id = ?";
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    MYSQL_BIND p[2], res[COUPON_STORE_ISSUANCE_NCOLS];
    struct coupon_store_issuance_lens ib;
    memset(p, 0, sizeof p);
    memset(res, 0, sizeof res);
    memset(out, 0, sizeof *out);
    db_bind_i64(&p[0], &coupon_id, NULL);
    db_bind_i64(&p[1], &user_id, NULL);
    coupon_store_bind_issuance(res, out, &ib);
    int rc = exec_params(st, sql, sizeof sql - 1, p, "select issue");
    if (rc == CP_OK) {
        if (mysql_stmt_bind_result(st, res) != 0) {
            rc = stmt_error(st, "select issue");
        } else {
            int f = mysql_stmt_fetch(st);
            rc = f == 0               ? CP_OK
                 : f == MYSQL_NO_DATA ? CP_ERR_NOT_FOUND
                                      : stmt_error(st, "fetch issue");
        }
    }
    if (rc == CP_OK)
        coupon_store_finish_issuance(out, &ib);
    mysql_stmt_close(st);
    return rc;
}

int coupon_store_user_coupons(MYSQL *db, int64_t user_id, int64_t before_id, int limit,
                              coupon_store_row_fn fn, void *arg)
{
    static const char sql[] = "SELECT CAST(ci.id AS SIGNED), CAST(ci.coupon_id AS SIGNED), "
                              "c.title, " COUPON_STORE_ISSUANCE_COLUMNS
                              "FROM coupon_issue ci JOIN coupon c ON c.id = ci.coupon_id "
                              "WHERE ci.user_id = ? AND ci.id < ? ORDER BY ci.id DESC LIMIT ?";
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    int64_t lim = limit;
    MYSQL_BIND p[3], res[3 + COUPON_STORE_ISSUANCE_NCOLS];
    struct user_coupon row;
    struct coupon_store_issuance_lens ib;
    unsigned long title_len;
    memset(p, 0, sizeof p);
    memset(res, 0, sizeof res);
    db_bind_i64(&p[0], &user_id, NULL);
    db_bind_i64(&p[1], &before_id, NULL);
    db_bind_i64(&p[2], &lim, NULL);
    db_bind_i64(&res[0], &row.issue_id, NULL);
    db_bind_i64(&res[1], &row.coupon_id, NULL);
    db_bind_text(&res[2], row.title, sizeof row.title, &title_len, NULL);
    coupon_store_bind_issuance(&res[3], &row.is, &ib);
    int rc = exec_params(st, sql, sizeof sql - 1, p, "select user coupons");
    if (rc != CP_OK)
        goto out;
    if (mysql_stmt_bind_result(st, res) != 0) {
        rc = stmt_error(st, "select user coupons");
        goto out;
    }
    for (;;) {
        int f = mysql_stmt_fetch(st);
        if (f == MYSQL_NO_DATA)
            break;
        if (f != 0 && f != MYSQL_DATA_TRUNCATED) {
            rc = stmt_error(st, "fetch user coupons");
            goto out;
        }
        row.title[title_len < sizeof row.title ? title_len : sizeof row.title - 1] = '\0';
        coupon_store_finish_issuance(&row.is, &ib);
        if ((rc = fn(arg, &row)) != CP_OK)
            goto out;
    }
out:
    mysql_stmt_close(st);
    return rc;
}

int coupon_store_list(MYSQL *db, int64_t before_id, int limit, struct coupon_summary *out,
                      size_t *n)
{
    static const char sql[] =
        "SELECT CAST(id AS SIGNED), title, COALESCE(CAST(total_quantity AS SIGNED), -1), "
        "CAST(issued_quantity AS SIGNED), CAST(UNIX_TIMESTAMP(start_at) * 1000 AS SIGNED), "
        "CAST(UNIX_TIMESTAMP(end_at) * 1000 AS SIGNED) "
        "FROM coupon WHERE id < ? ORDER BY id DESC LIMIT ?";
    *n = 0;
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    int64_t lim = limit;
    MYSQL_BIND p[2], res[6];
    struct coupon_summary row;
    unsigned long title_len;
    memset(p, 0, sizeof p);
    memset(res, 0, sizeof res);
    memset(&row, 0, sizeof row);
    db_bind_i64(&p[0], &before_id, NULL);
    db_bind_i64(&p[1], &lim, NULL);
    db_bind_i64(&res[0], &row.id, NULL);
    db_bind_text(&res[1], row.title, sizeof row.title, &title_len, NULL);
    db_bind_i64(&res[2], &row.total_quantity, NULL);
    db_bind_i64(&res[3], &row.issued_quantity, NULL);
    db_bind_i64(&res[4], &row.start_ms, NULL);
    db_bind_i64(&res[5], &row.end_ms, NULL);
    int rc = exec_params(st, sql, sizeof sql - 1, p, "select coupon list");
    if (rc != CP_OK)
        goto out;
    if (mysql_stmt_bind_result(st, res) != 0) {
        rc = stmt_error(st, "select coupon list");
        goto out;
    }
    for (;;) {
        int f = mysql_stmt_fetch(st);
        if (f == MYSQL_NO_DATA)
            break;
        if (f != 0 && f != MYSQL_DATA_TRUNCATED) {
            rc = stmt_error(st, "fetch coupon list");
            goto out;
        }
        if (*n == (size_t)limit) {
            rc = CP_ERR_INTERNAL; /* the server returned more rows than LIMIT */
            goto out;
        }
        row.title[title_len < sizeof row.title ? title_len : sizeof row.title - 1] = '\0';
        out[(*n)++] = row;
    }
out:
    mysql_stmt_close(st);
    return rc;
}
