#include "first.h"

#include "rebuild.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "cp_err.h"
#include "credis.h"
#include "db.h"
#include "log.h"
#include "rcli.h"

#define CHUNK 500

struct coupon_meta {
    int64_t id, total, start_ms, end_ms;
};

/* One chunk of issuances, restored with one EVAL (credis_restore); owned by one
 * rebuild_redis call (heap, neither stack nor static). */
struct chunk {
    struct credis_holder rows[CHUNK];
};

static int db_fail(MYSQL_STMT *st, const char *what)
{
    fprintf(stderr, "coupon-admin: %s: %s\n", what, mysql_stmt_error(st));
    return CP_ERR_UNAVAILABLE;
}

/* Loads the coupons to rebuild (all, or one) into *out. */
static int load_coupons(MYSQL *db, int64_t only, struct coupon_meta **out, size_t *n)
{
    static const char sql[] =
        "SELECT CAST(id AS SIGNED), COALESCE(CAST(total_quantity AS SIGNED), -1), "
        "CAST(UNIX_TIMESTAMP(start_at) * 1000 AS SIGNED), "
        "CAST(UNIX_TIMESTAMP(end_at) * 1000 AS SIGNED) FROM coupon WHERE ? = 0 OR id = ? "
        "ORDER BY id";
    int rc = CP_OK;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_NOMEM;
    MYSQL_BIND p[2], res[4];
    struct coupon_meta m;
    db_bind_i64(&p[0], &only, NULL);
    db_bind_i64(&p[1], &only, NULL);
    db_bind_i64(&res[0], &m.id, NULL);
    db_bind_i64(&res[1], &m.total, NULL);
    db_bind_i64(&res[2], &m.start_ms, NULL);
    db_bind_i64(&res[3], &m.end_ms, NULL);
    if (mysql_stmt_prepare(st, sql, sizeof sql - 1) != 0 || mysql_stmt_bind_param(st, p) != 0 ||
        mysql_stmt_execute(st) != 0 || mysql_stmt_bind_result(st, res) != 0 ||
        mysql_stmt_store_result(st) != 0) {
        rc = db_fail(st, "coupons");
        goto out;
    }
    int f;
    while ((f = mysql_stmt_fetch(st)) == 0) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            struct coupon_meta *grown = realloc(*out, cap * sizeof *grown);
            if (grown == NULL) {
                rc = CP_ERR_NOMEM;
                goto out;
            }
            *out = grown;
        }
        (*out)[(*n)++] = m;
    }
    if (f != MYSQL_NO_DATA)
        rc = db_fail(st, "coupons");
out:
    mysql_stmt_close(st);
    return rc;
}

/* EVAL restore.lua for ck->rows[0..n) (credis_restore). */
static int restore_chunk(struct rcli *r, int64_t coupon_id, struct chunk *ck, size_t n,
                         long long *added)
{
    char why[256];
    int rc = credis_restore(r, coupon_id, ck->rows, n, added, why, sizeof why);
    if (rc != CP_OK)
        fprintf(stderr, "coupon-admin: redis restore: %s\n", why);
    return rc;
}

static int rebuild_one(MYSQL *db, struct rcli *r, const struct coupon_meta *c, struct chunk *ck,
                       FILE *out)
{
    char why[256];
    int written = credis_meta_write(r, c->id, c->total, c->start_ms, c->end_ms, why, sizeof why);
    if (written != CP_OK) {
        fprintf(stderr, "coupon-admin: redis meta: %s\n", why);
        return written == CP_ERR_INVALID ? CP_ERR_INTERNAL : written;
    }
    static const char sql[] = "SELECT CAST(user_id AS SIGNED), CAST(sequence AS SIGNED), "
                              "CAST(UNIX_TIMESTAMP(issued_at) * 1000 AS SIGNED) FROM coupon_issue "
                              "WHERE coupon_id = ? ORDER BY id";
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_NOMEM;
    int64_t id = c->id, row[3];
    MYSQL_BIND p, res[3];
    db_bind_i64(&p, &id, NULL);
    for (int i = 0; i < 3; i++)
        db_bind_i64(&res[i], &row[i], NULL);
    int rc = CP_OK;
    size_t n = 0, total_rows = 0;
    long long added = 0;
    if (mysql_stmt_prepare(st, sql, sizeof sql - 1) != 0 || mysql_stmt_bind_param(st, &p) != 0 ||
        mysql_stmt_execute(st) != 0 || mysql_stmt_bind_result(st, res) != 0) {
        rc = db_fail(st, "issues");
        goto out;
    }
    int f;
    while ((f = mysql_stmt_fetch(st)) == 0) {
        ck->rows[n++] = (struct credis_holder){row[0], row[1], row[2]};
        total_rows++;
        if (n == CHUNK) {
            if ((rc = restore_chunk(r, c->id, ck, n, &added)) != CP_OK)
                goto out;
            n = 0;
        }
    }
    if (f != MYSQL_NO_DATA) {
        rc = db_fail(st, "issues");
        goto out;
    }
    if (n > 0 && (rc = restore_chunk(r, c->id, ck, n, &added)) != CP_OK)
        goto out;
    fprintf(out, "coupon %" PRId64 ": meta written, %zu issuances in MariaDB, %lld restored\n",
            c->id, total_rows, added);
out:
    mysql_stmt_close(st);
    return rc;
}

int rebuild_redis(const struct cp_conf *conf, int64_t coupon_id, FILE *out)
{
    char err[512];
    MYSQL *db = NULL;
    struct rcli *r = NULL;
    struct coupon_meta *coupons = NULL;
    struct chunk *ck = malloc(sizeof *ck);
    size_t n = 0;
    if (ck == NULL) {
        fprintf(stderr, "coupon-admin: out of memory\n");
        return CP_ERR_NOMEM;
    }
    int rc = db_connect(conf, &db, err, sizeof err);
    if (rc != CP_OK) {
        fprintf(stderr, "coupon-admin: %s\n", err);
        free(ck);
        return rc;
    }
    if ((rc = rcli_open(conf, &r, err, sizeof err)) != CP_OK) {
        fprintf(stderr, "coupon-admin: %s\n", err);
        goto out;
    }
    if ((rc = load_coupons(db, coupon_id, &coupons, &n)) != CP_OK)
        goto out;
    if (n == 0 && coupon_id != 0) {
        fprintf(stderr, "coupon-admin: coupon %" PRId64 " does not exist\n", coupon_id);
        rc = CP_ERR_NOT_FOUND;
        goto out;
    }
    for (size_t i = 0; i < n && rc == CP_OK; i++)
        rc = rebuild_one(db, r, &coupons[i], ck, out);
    if (rc == CP_OK)
        fprintf(out, "rebuilt %zu coupon(s)\n", n);
out:
    free(ck);
    free(coupons);
    rcli_free(r);
    mysql_close(db);
    return rc;
}
