#include "first.h"

#include "redemption_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cp_err.h"
#include "db.h"
#include "event.h"
#include "issuecode.h"
#include "log.h"

#define REDEMPTION_ATTEMPTS 3

static const char redeem_sql[] =
    "UPDATE coupon_issue SET used_at = FROM_UNIXTIME(? / 1000), redeemed_order_id = ? "
    "WHERE coupon_id = ? AND user_id = ? AND used_at IS NULL "
    "AND (usable_until IS NULL OR usable_until > FROM_UNIXTIME(? / 1000))";
static const char cancel_sql[] = "UPDATE coupon_issue SET used_at = NULL, redeemed_order_id = NULL "
                                 "WHERE coupon_id = ? AND user_id = ? AND redeemed_order_id = ?";
static const char read_sql[] =
    "SELECT " COUPON_STORE_ISSUANCE_COLUMNS ", c.discount_type, CAST(c.discount_value AS CHAR), "
    "COALESCE(c.currency, '') "
    "FROM coupon_issue ci JOIN coupon c ON c.id = ci.coupon_id "
    "WHERE ci.coupon_id = ? AND ci.user_id = ?";
static const char outbox_sql[] = "INSERT INTO event_outbox (topic, msg_key, payload) "
                                 "VALUES (?, ?, ?)";
static const char code_sql[] = "SELECT CAST(coupon_id AS SIGNED), CAST(user_id AS SIGNED), code "
                               "FROM coupon_issue WHERE code = ? LIMIT 2";

enum { LOST = 1 }; /* the transaction's UPDATE changed no row: rolled back, the row says why */

/* The issuance with its coupon's discount: CP_OK, CP_ERR_NOT_FOUND or db.h's codes. */
static int read_row(struct db *db, int64_t coupon_id, int64_t user_id, struct redemption *out)
{
    MYSQL_BIND p[2], res[COUPON_STORE_ISSUANCE_NCOLS + 3];
    struct coupon_store_issuance_lens lens;
    unsigned long type_len = 0, value_len = 0, currency_len = 0;
    memset(out, 0, sizeof *out);
    db_bind_i64(&p[0], &coupon_id, NULL);
    db_bind_i64(&p[1], &user_id, NULL);
    coupon_store_bind_issuance(res, &out->is, &lens);
    MYSQL_BIND *t = &res[COUPON_STORE_ISSUANCE_NCOLS];
    db_bind_text(&t[0], out->discount_type, sizeof out->discount_type - 1, &type_len, NULL);
    db_bind_text(&t[1], out->discount_value, sizeof out->discount_value - 1, &value_len, NULL);
    db_bind_text(&t[2], out->currency, sizeof out->currency - 1, &currency_len, NULL);
    int rc = db_fetch_one(db, read_sql, p, res);
    if (rc != CP_OK)
        return rc;
    coupon_store_finish_issuance(&out->is, &lens);
    out->discount_type[type_len < sizeof out->discount_type ? type_len : 0] = '\0';
    out->discount_value[value_len < sizeof out->discount_value ? value_len : 0] = '\0';
    out->currency[currency_len < sizeof out->currency ? currency_len : 0] = '\0';
    return CP_OK;
}

/* The transaction's event row. */
static int insert_event(struct db *db, const char *topic, int64_t coupon_id, const char *payload,
                        size_t payload_len)
{
    char key[CP_OUTBOX_KEY_MAX], topic_buf[CP_OUTBOX_TOPIC_MAX + 1], value[CP_OUTBOX_PAYLOAD_MAX];
    int klen = event_outbox_key(coupon_id, key, sizeof key);
    size_t tlen = strlen(topic);
    if (klen < 0 || tlen > CP_OUTBOX_TOPIC_MAX || payload_len > sizeof value)
        return CP_ERR_INTERNAL;
    memcpy(topic_buf, topic, tlen + 1);
    memcpy(value, payload, payload_len);
    unsigned long lens[3] = {(unsigned long)tlen, (unsigned long)klen, (unsigned long)payload_len};
    MYSQL_BIND p[3];
    db_bind_text(&p[0], topic_buf, lens[0], &lens[0], NULL);
    db_bind_text(&p[1], key, lens[1], &lens[1], NULL);
    db_bind_text(&p[2], value, lens[2], &lens[2], NULL);
    return db_exec(db, outbox_sql, p);
}

/* A redemption or its cancellation, and what the caller learns of it. */
struct change {
    enum redemption_kind kind;
    const char *topic, *order_id;
    int64_t coupon_id, user_id, now_ms;
    struct redemption *row; /* as the change left it, or as it is when nothing changed */
    /* Why nothing changed, from the row: an outcome, or -1 when the row allows the change
     * (another transaction undid it between the two statements: run again). */
    int (*why)(const struct change *c);
    int done, no_row; /* the outcomes "changed" and "no such issuance" */
};

/*
 * One transaction: the conditional UPDATE; when it changed the row, the row (locked by
 * us) for the event and the answer, and the event. LOST when it changed nothing.
 */
static int change_tx(struct db *db, void *arg)
{
    struct change *c = arg;
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    size_t olen = strlen(c->order_id);
    if (olen == 0 || olen > CP_ORDER_ID_MAX_CHARS)
        return CP_ERR_INVALID;
    memcpy(order, c->order_id, olen + 1);
    unsigned long order_len = (unsigned long)olen;
    int64_t at = c->now_ms, cid = c->coupon_id, uid = c->user_id, until = c->now_ms;
    MYSQL_BIND p[5];
    int redeem = c->kind == REDEMPTION_REDEEMED;
    if (redeem) {
        db_bind_i64(&p[0], &at, NULL);
        db_bind_text(&p[1], order, order_len, &order_len, NULL);
        db_bind_i64(&p[2], &cid, NULL);
        db_bind_i64(&p[3], &uid, NULL);
        db_bind_i64(&p[4], &until, NULL);
    } else {
        db_bind_i64(&p[0], &cid, NULL);
        db_bind_i64(&p[1], &uid, NULL);
        db_bind_text(&p[2], order, order_len, &order_len, NULL);
    }
    int rc = db_exec(db, redeem ? redeem_sql : cancel_sql, p);
    if (rc != CP_OK)
        return rc;
    if (db_affected_rows(db) != 1)
        return LOST;
    rc = read_row(db, c->coupon_id, c->user_id, c->row);
    if (rc == CP_ERR_NOT_FOUND)
        return CP_ERR_INTERNAL; /* we just updated it */
    if (rc != CP_OK)
        return rc;
    struct redemption_event ev = {c->kind,     c->coupon_id,
                                  c->user_id,  c->row->is.sequence,
                                  c->order_id, redeem ? c->row->is.used_ms : c->now_ms};
    char payload[CP_OUTBOX_PAYLOAD_MAX];
    int n = event_encode_redemption(&ev, payload, sizeof payload);
    if (n < 0)
        return CP_ERR_INTERNAL;
    return insert_event(db, c->topic, c->coupon_id, payload, (size_t)n);
}

/* Runs the change until it has a stable answer in *outcome; CP_OK or an error. */
static int change(struct db *db, struct change *c, int *outcome)
{
    for (int attempt = 0; attempt < REDEMPTION_ATTEMPTS; attempt++) {
        int rc = db_tx(db, change_tx, c);
        if (rc == CP_OK) {
            *outcome = c->done;
            return CP_OK;
        }
        if (rc != LOST)
            return rc;
        /* Lost (or nothing to win): the row as it is now says why. */
        rc = read_row(db, c->coupon_id, c->user_id, c->row);
        if (rc == CP_ERR_NOT_FOUND) {
            *outcome = c->no_row;
            return CP_OK;
        }
        if (rc != CP_OK)
            return rc;
        if ((*outcome = c->why(c)) >= 0)
            return CP_OK;
    }
    log_warn("%s coupon %" PRId64 " user %" PRId64 ": no stable answer after %d attempts",
             c->kind == REDEMPTION_REDEEMED ? "redeem" : "cancel", c->coupon_id, c->user_id,
             REDEMPTION_ATTEMPTS);
    return CP_ERR_TIMEOUT;
}

static int redeem_why(const struct change *c)
{
    const struct issuance *is = &c->row->is;
    if (is->used_ms >= 0)
        return strcmp(is->order_id, c->order_id) == 0 ? REDEEM_REPLAY : REDEEM_CONFLICT;
    if (is->usable_until_ms >= 0 && is->usable_until_ms <= c->now_ms)
        return REDEEM_EXPIRED;
    return -1; /* not redeemed and usable: a cancel committed between the two statements */
}

int redemption_store_redeem(struct db *db, const char *topic, int64_t coupon_id, int64_t user_id,
                            const char *order_id, int64_t now_ms, enum redeem_outcome *outcome,
                            struct redemption *out)
{
    struct change c = {
        REDEMPTION_REDEEMED, topic,      order_id,     coupon_id, user_id, now_ms, out,
        redeem_why,          REDEEM_NEW, REDEEM_NO_ROW};
    int o = REDEEM_NO_ROW;
    int rc = change(db, &c, &o);
    *outcome = (enum redeem_outcome)o;
    return rc;
}

static int cancel_why(const struct change *c)
{
    if (c->row->is.used_ms < 0)
        return CANCEL_NOOP;
    if (strcmp(c->row->is.order_id, c->order_id) != 0)
        return CANCEL_MISMATCH;
    return -1; /* redeemed again by this order meanwhile: cancel that */
}

int redemption_store_cancel(struct db *db, const char *topic, int64_t coupon_id, int64_t user_id,
                            const char *order_id, int64_t now_ms, enum cancel_outcome *outcome)
{
    struct redemption row;
    struct change c = {
        REDEMPTION_CANCELLED, topic,       order_id,     coupon_id, user_id, now_ms, &row,
        cancel_why,           CANCEL_DONE, CANCEL_NO_ROW};
    int o = CANCEL_NO_ROW;
    int rc = change(db, &c, &o);
    *outcome = (enum cancel_outcome)o;
    return rc;
}

/* The rows of one code, compared in constant time. */
struct code_match {
    char want[CP_ISSUE_CODE_CHARS + 1], got[CP_ISSUE_CODE_CHARS + 1];
    unsigned long got_len;
    int64_t cid, uid, *coupon_id, *user_id;
    int rows, match;
};

static int code_row(void *arg)
{
    struct code_match *m = arg;
    /* The index matched bytes; the constant-time comparison is what decides, and a row
     * of another length can never match. */
    int equal = m->got_len == CP_ISSUE_CODE_CHARS && issuecode_equal(m->got, m->want);
    if (equal && m->rows == 0) {
        *m->coupon_id = m->cid;
        *m->user_id = m->uid;
    }
    m->match += equal;
    m->rows++;
    return CP_OK;
}

int redemption_store_find_code(struct db *db, const char *code, int64_t *coupon_id,
                               int64_t *user_id)
{
    static const char dummy[CP_ISSUE_CODE_CHARS + 1] = "000000000000";
    if (strlen(code) != CP_ISSUE_CODE_CHARS)
        return CP_ERR_INVALID;
    struct code_match m = {.coupon_id = coupon_id, .user_id = user_id};
    memcpy(m.want, code, sizeof m.want);
    unsigned long want_len = CP_ISSUE_CODE_CHARS;
    MYSQL_BIND p[1], res[3];
    db_bind_text(&p[0], m.want, want_len, &want_len, NULL);
    db_bind_i64(&res[0], &m.cid, NULL);
    db_bind_i64(&res[1], &m.uid, NULL);
    db_bind_text(&res[2], m.got, sizeof m.got, &m.got_len, NULL);
    int rc = db_fetch_each(db, code_sql, p, res, code_row, &m);
    if (rc != CP_OK)
        return rc;
    if (m.rows == 0)
        (void)issuecode_equal(dummy, m.want); /* the same comparison as a found row costs */
    return m.match == 0 ? CP_ERR_NOT_FOUND : m.match == 1 ? CP_OK : CP_ERR_CONFLICT;
}
