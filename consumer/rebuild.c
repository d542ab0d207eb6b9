#include "first.h"

#include "rebuild.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "db.h"
#include "credis.h"
#include "credis_checkout.h"
#include "log.h"
#include "rcli.h"

#define CHUNK       500
#define COUPON_PAGE 64 /* coupons read at a time: each is rebuilt before the next page */

struct coupon_meta {
    int64_t id, total, start_ms, end_ms;
};

/* One chunk of issuances, restored with one EVAL (credis_restore); owned by one
 * rebuild_redis call (heap, neither stack nor static). */
struct chunk {
    struct credis_holder rows[CHUNK];
    struct credis_checkout_restore_item states[CHUNK];
};

static int db_fail(struct db *db, int rc)
{
    fprintf(stderr, "coupon-admin: %s\n", db_errstr(db));
    return rc;
}

/* One page of the coupons to rebuild. */
struct coupon_page {
    struct coupon_meta m, all[COUPON_PAGE];
    size_t n;
};

static int add_coupon(void *arg)
{
    struct coupon_page *pg = arg;
    if (pg->n < COUPON_PAGE)
        pg->all[pg->n++] = pg->m;
    return CP_OK;
}

/* The coupons to rebuild (all, or one) with an id above `after`, a page of them. */
static int load_page(struct db *db, int64_t only, int64_t after, struct coupon_page *pg)
{
    static const char sql[] =
        "SELECT CAST(id AS SIGNED), COALESCE(CAST(total_quantity AS SIGNED), -1), "
        "CAST(UNIX_TIMESTAMP(start_at) * 1000 AS SIGNED), "
        "CAST(UNIX_TIMESTAMP(end_at) * 1000 AS SIGNED) FROM coupon "
        "WHERE (? = 0 OR id = ?) AND id > ? ORDER BY id LIMIT ?";
    int64_t limit = COUPON_PAGE;
    MYSQL_BIND p[4], res[4];
    pg->n = 0;
    db_bind_i64(&p[0], &only, NULL);
    db_bind_i64(&p[1], &only, NULL);
    db_bind_i64(&p[2], &after, NULL);
    db_bind_i64(&p[3], &limit, NULL);
    db_bind_i64(&res[0], &pg->m.id, NULL);
    db_bind_i64(&res[1], &pg->m.total, NULL);
    db_bind_i64(&res[2], &pg->m.start_ms, NULL);
    db_bind_i64(&res[3], &pg->m.end_ms, NULL);
    int rc = db_fetch_each(db, sql, p, res, add_coupon, pg);
    return rc == CP_OK ? rc : db_fail(db, rc);
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

/* The issuances of one coupon as they are read, restored a chunk at a time. */
struct issue_rows {
    struct rcli *r;
    int64_t coupon_id, row[3];
    struct chunk *ck;
    size_t n, total_rows;
    long long added;
    int redis_failed;
};

static int add_issue(void *arg)
{
    struct issue_rows *ir = arg;
    ir->ck->rows[ir->n++] = (struct credis_holder){ir->row[0], ir->row[1], ir->row[2]};
    ir->total_rows++;
    if (ir->n < CHUNK)
        return CP_OK;
    int rc = restore_chunk(ir->r, ir->coupon_id, ir->ck, ir->n, &ir->added);
    ir->redis_failed = rc != CP_OK;
    ir->n = 0;
    return rc;
}

/* The checkout states of one coupon's issuances as they are read (checkout_version > 0:
 * redeemed, held, or free again after a change), restored a chunk at a time. */
struct state_rows {
    struct rcli *r;
    int64_t coupon_id, user_id, version, used_ms, until_ms;
    char order[CP_ORDER_ID_MAX_CHARS + 1], hold[CP_ORDER_ID_MAX_CHARS + 1];
    unsigned long order_len, hold_len;
    my_bool order_null, hold_null;
    struct chunk *ck;
    size_t n;
    long long added;
    int redis_failed;
};

static int flush_states(struct state_rows *sr)
{
    int rc = credis_checkout_restore(sr->r, sr->coupon_id, sr->ck->states, sr->n, &sr->added);
    if (rc != CP_OK)
        fprintf(stderr, "coupon-admin: redis checkout restore: %s\n", rcli_errstr(sr->r));
    sr->redis_failed = rc != CP_OK;
    sr->n = 0;
    return rc;
}

static int add_state(void *arg)
{
    struct state_rows *sr = arg;
    struct credis_checkout_restore_item *it = &sr->ck->states[sr->n];
    memset(it, 0, sizeof *it);
    it->user_id = sr->user_id;
    it->state.version = sr->version;
    /* The row's columns make the state redeem.lua would hold (rkey.h). */
    const char *order = "";
    if (!sr->order_null) {
        it->state.state = 'R';
        it->state.at_ms = sr->used_ms;
        order = sr->order;
        db_text_end(sr->order, sizeof sr->order, sr->order_len);
    } else if (!sr->hold_null) {
        it->state.state = 'H';
        it->state.until_ms = sr->until_ms;
        db_text_end(sr->hold, sizeof sr->hold, sr->hold_len);
        order = sr->hold;
    } else {
        it->state.state = 'F';
    }
    snprintf(it->state.order_id, sizeof it->state.order_id, "%s", order);
    return ++sr->n < CHUNK ? CP_OK : flush_states(sr);
}

static int rebuild_checkout(struct db *db, struct rcli *r, int64_t coupon_id, struct chunk *ck,
                            long long *added)
{
    static const char sql[] =
        "SELECT CAST(user_id AS SIGNED), CAST(checkout_version AS SIGNED), "
        "COALESCE(CAST(UNIX_TIMESTAMP(used_at) * 1000 AS SIGNED), 0), redeemed_order_id, "
        "hold_order_id, COALESCE(CAST(UNIX_TIMESTAMP(hold_expires_at) * 1000 AS SIGNED), 0) "
        "FROM coupon_issue WHERE coupon_id = ? AND checkout_version > 0 ORDER BY id";
    struct state_rows sr = {.r = r, .coupon_id = coupon_id, .ck = ck};
    int64_t id = coupon_id;
    MYSQL_BIND p, res[6];
    db_bind_i64(&p, &id, NULL);
    db_bind_i64(&res[0], &sr.user_id, NULL);
    db_bind_i64(&res[1], &sr.version, NULL);
    db_bind_i64(&res[2], &sr.used_ms, NULL);
    db_bind_text(&res[3], sr.order, sizeof sr.order, &sr.order_len, &sr.order_null);
    db_bind_text(&res[4], sr.hold, sizeof sr.hold, &sr.hold_len, &sr.hold_null);
    db_bind_i64(&res[5], &sr.until_ms, NULL);
    int rc = db_fetch_each(db, sql, &p, res, add_state, &sr);
    if (rc != CP_OK)
        return sr.redis_failed ? rc : db_fail(db, rc);
    if (sr.n > 0 && (rc = flush_states(&sr)) != CP_OK)
        return rc;
    *added = sr.added;
    return CP_OK;
}

static int rebuild_one(struct db *db, struct rcli *r, const struct coupon_meta *c, struct chunk *ck,
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
    struct issue_rows ir = {.r = r, .coupon_id = c->id, .ck = ck};
    int64_t id = c->id;
    MYSQL_BIND p, res[3];
    db_bind_i64(&p, &id, NULL);
    for (int i = 0; i < 3; i++)
        db_bind_i64(&res[i], &ir.row[i], NULL);
    int rc = db_fetch_each(db, sql, &p, res, add_issue, &ir);
    if (rc != CP_OK)
        return ir.redis_failed ? rc : db_fail(db, rc);
    if (ir.n > 0 && (rc = restore_chunk(r, c->id, ck, ir.n, &ir.added)) != CP_OK)
        return rc;
    long long states = 0;
    if ((rc = rebuild_checkout(db, r, c->id, ck, &states)) != CP_OK)
        return rc;
    fprintf(out,
            "coupon %" PRId64 ": meta written, %zu issuances in MariaDB, %lld restored, "
            "%lld checkout states restored\n",
            c->id, ir.total_rows, ir.added, states);
    return CP_OK;
}

int rebuild_redis(const struct cp_conf *conf, int64_t coupon_id, FILE *out)
{
    char err[512];
    struct db *db = NULL;
    struct rcli *r = NULL;
    struct coupon_page pg;
    struct chunk *ck = malloc(sizeof *ck);
    if (ck == NULL) {
        fprintf(stderr, "coupon-admin: out of memory\n");
        return CP_ERR_NOMEM;
    }
    int rc = db_open(conf, &db, err, sizeof err);
    if (rc == CP_OK)
        rc = rcli_open(conf, &r, err, sizeof err);
    if (rc != CP_OK) {
        fprintf(stderr, "coupon-admin: %s\n", err);
        goto out;
    }
    size_t total = 0;
    int64_t after = 0;
    do {
        if ((rc = load_page(db, coupon_id, after, &pg)) != CP_OK)
            goto out;
        for (size_t i = 0; i < pg.n && rc == CP_OK; i++)
            rc = rebuild_one(db, r, &pg.all[i], ck, out);
        total += pg.n;
        after = pg.n > 0 ? pg.all[pg.n - 1].id : after;
    } while (rc == CP_OK && pg.n == COUPON_PAGE);
    if (rc == CP_OK && total == 0 && coupon_id != 0) {
        fprintf(stderr, "coupon-admin: coupon %" PRId64 " does not exist\n", coupon_id);
        rc = CP_ERR_NOT_FOUND;
    }
    if (rc == CP_OK)
        fprintf(out, "rebuilt %zu coupon(s)\n", total);
out:
    free(ck);
    rcli_free(r);
    db_free(db);
    return rc;
}
