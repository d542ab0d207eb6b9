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

#define REDEMPTION_ATTEMPTS       3
#define ER_LOCK_WAIT_TIMEOUT_CODE 1205
#define ER_LOCK_DEADLOCK_CODE     1213

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

/* Outcome of one statement: CP_OK, or why not. */
enum { RETRY = 1 }; /* a deadlock or lock wait time-out: run the transaction again */

static int stmt_failed(MYSQL_STMT *st, const char *what)
{
    unsigned e = mysql_stmt_errno(st);
    if (e == ER_LOCK_DEADLOCK_CODE || e == ER_LOCK_WAIT_TIMEOUT_CODE)
        return RETRY;
    log_warn("mariadb %s: %s", what, mysql_stmt_error(st));
    return CP_ERR_UNAVAILABLE;
}

/* Prepares and runs sql with params; *affected when given. The statement is closed. */
static int run(MYSQL *db, const char *sql, size_t sqllen, MYSQL_BIND *params, uint64_t *affected,
               const char *what)
{
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = CP_OK;
    if (mysql_stmt_prepare(st, sql, sqllen) != 0 || mysql_stmt_bind_param(st, params) != 0 ||
        mysql_stmt_execute(st) != 0) {
        rc = stmt_failed(st, what);
        goto out;
    }
    if (affected != NULL)
        *affected = (uint64_t)mysql_stmt_affected_rows(st);
out:
    mysql_stmt_close(st);
    return rc;
}

/* The issuance with its coupon's discount: CP_OK, CP_ERR_NOT_FOUND, RETRY or an error. */
static int read_row(MYSQL *db, int64_t coupon_id, int64_t user_id, struct redemption *out)
{
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    MYSQL_BIND p[2], res[COUPON_STORE_ISSUANCE_NCOLS + 3];
    struct coupon_store_issuance_lens lens;
    unsigned long type_len = 0, value_len = 0, currency_len = 0;
    memset(out, 0, sizeof *out);
    memset(res, 0, sizeof res);
    db_bind_i64(&p[0], &coupon_id, NULL);
    db_bind_i64(&p[1], &user_id, NULL);
    coupon_store_bind_issuance(res, &out->is, &lens);
    MYSQL_BIND *t = &res[COUPON_STORE_ISSUANCE_NCOLS];
    t[0].buffer_type = MYSQL_TYPE_STRING;
    t[0].buffer = out->discount_type;
    t[0].buffer_length = sizeof out->discount_type - 1;
    t[0].length = &type_len;
    t[1].buffer_type = MYSQL_TYPE_STRING;
    t[1].buffer = out->discount_value;
    t[1].buffer_length = sizeof out->discount_value - 1;
    t[1].length = &value_len;
    db_bind_text(&t[2], out->currency, sizeof out->currency - 1, &currency_len, NULL);
    int rc = CP_OK;
    if (mysql_stmt_prepare(st, read_sql, sizeof read_sql - 1) != 0 ||
        mysql_stmt_bind_param(st, p) != 0 || mysql_stmt_execute(st) != 0 ||
        mysql_stmt_bind_result(st, res) != 0) {
        rc = stmt_failed(st, "read issuance");
        goto out;
    }
    int f = mysql_stmt_fetch(st);
    if (f == MYSQL_NO_DATA) {
        rc = CP_ERR_NOT_FOUND;
        goto out;
    }
    if (f != 0 && f != MYSQL_DATA_TRUNCATED) {
        rc = stmt_failed(st, "fetch issuance");
        goto out;
    }
    coupon_store_finish_issuance(&out->is, &lens);
    out->discount_type[type_len < sizeof out->discount_type ? type_len : 0] = '\0';
    out->discount_value[value_len < sizeof out->discount_value ? value_len : 0] = '\0';
    out->currency[currency_len < sizeof out->currency ? currency_len : 0] = '\0';
out:
    mysql_stmt_close(st);
    return rc;
}

/* The transaction's event row. */
static int insert_event(MYSQL *db, const char *topic, int64_t coupon_id, const char *payload,
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
    return run(db, outbox_sql, sizeof outbox_sql - 1, p, NULL, "insert outbox event");
}

static int begin(MYSQL *db)
{
    if (mysql_autocommit(db, 0) != 0) {
        log_warn("mariadb begin: %s", mysql_error(db));
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

/* Ends the transaction (commit when commit_it, else roll back) and restores autocommit. */
static int finish(MYSQL *db, int commit_it, int rc)
{
    if (commit_it && rc == CP_OK) {
        if (mysql_commit(db) != 0) {
            log_warn("mariadb commit: %s", mysql_error(db));
            rc = CP_ERR_UNAVAILABLE;
        }
    } else if (mysql_rollback(db) != 0 && rc >= 0) {
        log_warn("mariadb rollback: %s", mysql_error(db));
        rc = CP_ERR_UNAVAILABLE;
    }
    if (mysql_autocommit(db, 1) != 0 && rc >= 0)
        rc = CP_ERR_UNAVAILABLE;
    return rc;
}

/* One attempt: CP_OK with *won (1: this transaction redeemed it), RETRY, or an error. */
static int redeem_once(MYSQL *db, const char *topic, int64_t coupon_id, int64_t user_id,
                       const char *order_id, int64_t now_ms, int *won, struct redemption *out)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    size_t olen = strlen(order_id);
    if (olen == 0 || olen > CP_ORDER_ID_MAX_CHARS)
        return CP_ERR_INVALID;
    memcpy(order, order_id, olen + 1);
    unsigned long order_len = (unsigned long)olen;
    int64_t at = now_ms, cid = coupon_id, uid = user_id, until = now_ms;
    MYSQL_BIND p[5];
    db_bind_i64(&p[0], &at, NULL);
    db_bind_text(&p[1], order, order_len, &order_len, NULL);
    db_bind_i64(&p[2], &cid, NULL);
    db_bind_i64(&p[3], &uid, NULL);
    db_bind_i64(&p[4], &until, NULL);
    *won = 0;
    int rc = begin(db);
    if (rc != CP_OK)
        return rc;
    uint64_t affected = 0;
    rc = run(db, redeem_sql, sizeof redeem_sql - 1, p, &affected, "redeem");
    if (rc != CP_OK || affected != 1)
        return finish(db, 0, rc); /* nothing written; the caller reads why */
    /* Ours: the row (locked by us) for the event and the answer, then the event. */
    rc = read_row(db, coupon_id, user_id, out);
    char payload[CP_OUTBOX_PAYLOAD_MAX];
    int n = 0;
    if (rc == CP_OK) {
        struct redemption_event ev = {REDEMPTION_REDEEMED, coupon_id, user_id,
                                      out->is.sequence,    order_id,  out->is.used_ms};
        n = event_encode_redemption(&ev, payload, sizeof payload);
        if (n < 0)
            rc = CP_ERR_INTERNAL;
    } else if (rc == CP_ERR_NOT_FOUND) {
        rc = CP_ERR_INTERNAL; /* we just updated it */
    }
    if (rc == CP_OK)
        rc = insert_event(db, topic, coupon_id, payload, (size_t)n);
    rc = finish(db, 1, rc);
    if (rc == CP_OK)
        *won = 1;
    return rc;
}

int redemption_store_redeem(MYSQL *db, const char *topic, int64_t coupon_id, int64_t user_id,
                            const char *order_id, int64_t now_ms, enum redeem_outcome *outcome,
                            struct redemption *out)
{
    int rc = CP_ERR_UNAVAILABLE;
    for (int attempt = 0; attempt < REDEMPTION_ATTEMPTS; attempt++) {
        int won = 0;
        rc = redeem_once(db, topic, coupon_id, user_id, order_id, now_ms, &won, out);
        if (rc == RETRY)
            continue;
        if (rc != CP_OK)
            return rc;
        if (won) {
            *outcome = REDEEM_NEW;
            return CP_OK;
        }
        /* Lost (or nothing to win): the row as it is now says why. */
        rc = read_row(db, coupon_id, user_id, out);
        if (rc == RETRY)
            continue;
        if (rc == CP_ERR_NOT_FOUND) {
            *outcome = REDEEM_NO_ROW;
            return CP_OK;
        }
        if (rc != CP_OK)
            return rc;
        if (out->is.used_ms >= 0) {
            *outcome = strcmp(out->is.order_id, order_id) == 0 ? REDEEM_REPLAY : REDEEM_CONFLICT;
            return CP_OK;
        }
        if (out->is.usable_until_ms >= 0 && out->is.usable_until_ms <= now_ms) {
            *outcome = REDEEM_EXPIRED;
            return CP_OK;
        }
        /* Not redeemed and usable: a cancel committed between the two statements. */
        rc = RETRY;
    }
    log_warn("redeem coupon %" PRId64 " user %" PRId64 ": no stable answer after %d attempts",
             coupon_id, user_id, REDEMPTION_ATTEMPTS);
    return CP_ERR_TIMEOUT;
}

static int cancel_once(MYSQL *db, const char *topic, int64_t coupon_id, int64_t user_id,
                       const char *order_id, int64_t now_ms, int *won)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    size_t olen = strlen(order_id);
    if (olen == 0 || olen > CP_ORDER_ID_MAX_CHARS)
        return CP_ERR_INVALID;
    memcpy(order, order_id, olen + 1);
    unsigned long order_len = (unsigned long)olen;
    int64_t cid = coupon_id, uid = user_id;
    MYSQL_BIND p[3];
    db_bind_i64(&p[0], &cid, NULL);
    db_bind_i64(&p[1], &uid, NULL);
    db_bind_text(&p[2], order, order_len, &order_len, NULL);
    *won = 0;
    int rc = begin(db);
    if (rc != CP_OK)
        return rc;
    uint64_t affected = 0;
    rc = run(db, cancel_sql, sizeof cancel_sql - 1, p, &affected, "cancel redemption");
    if (rc != CP_OK || affected != 1)
        return finish(db, 0, rc);
    struct redemption row;
    rc = read_row(db, coupon_id, user_id, &row);
    char payload[CP_OUTBOX_PAYLOAD_MAX];
    int n = 0;
    if (rc == CP_OK) {
        struct redemption_event ev = {REDEMPTION_CANCELLED, coupon_id, user_id,
                                      row.is.sequence,      order_id,  now_ms};
        n = event_encode_redemption(&ev, payload, sizeof payload);
        if (n < 0)
            rc = CP_ERR_INTERNAL;
    } else if (rc == CP_ERR_NOT_FOUND) {
        rc = CP_ERR_INTERNAL;
    }
    if (rc == CP_OK)
        rc = insert_event(db, topic, coupon_id, payload, (size_t)n);
    rc = finish(db, 1, rc);
    if (rc == CP_OK)
        *won = 1;
    return rc;
}

int redemption_store_cancel(MYSQL *db, const char *topic, int64_t coupon_id, int64_t user_id,
                            const char *order_id, int64_t now_ms, enum cancel_outcome *outcome)
{
    int rc = CP_ERR_UNAVAILABLE;
    for (int attempt = 0; attempt < REDEMPTION_ATTEMPTS; attempt++) {
        int won = 0;
        rc = cancel_once(db, topic, coupon_id, user_id, order_id, now_ms, &won);
        if (rc == RETRY)
            continue;
        if (rc != CP_OK)
            return rc;
        if (won) {
            *outcome = CANCEL_DONE;
            return CP_OK;
        }
        struct redemption row;
        rc = read_row(db, coupon_id, user_id, &row);
        if (rc == RETRY)
            continue;
        if (rc == CP_ERR_NOT_FOUND) {
            *outcome = CANCEL_NO_ROW;
            return CP_OK;
        }
        if (rc != CP_OK)
            return rc;
        if (row.is.used_ms < 0) {
            *outcome = CANCEL_NOOP;
            return CP_OK;
        }
        if (strcmp(row.is.order_id, order_id) != 0) {
            *outcome = CANCEL_MISMATCH;
            return CP_OK;
        }
        rc = RETRY; /* redeemed again by this order meanwhile: cancel that */
    }
    return CP_ERR_TIMEOUT;
}

int redemption_store_find_code(MYSQL *db, const char *code, int64_t *coupon_id, int64_t *user_id)
{
    static const char dummy[CP_ISSUE_CODE_CHARS + 1] = "000000000000";
    char want[CP_ISSUE_CODE_CHARS + 1], got[CP_ISSUE_CODE_CHARS + 1];
    if (strlen(code) != CP_ISSUE_CODE_CHARS)
        return CP_ERR_INVALID;
    memcpy(want, code, sizeof want);
    unsigned long want_len = CP_ISSUE_CODE_CHARS, got_len = 0;
    int64_t cid = 0, uid = 0;
    MYSQL_BIND p[1], res[3];
    memset(res, 0, sizeof res);
    db_bind_text(&p[0], want, want_len, &want_len, NULL);
    db_bind_i64(&res[0], &cid, NULL);
    db_bind_i64(&res[1], &uid, NULL);
    res[2].buffer_type = MYSQL_TYPE_STRING;
    res[2].buffer = got;
    res[2].buffer_length = sizeof got;
    res[2].length = &got_len;
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = CP_OK, rows = 0, match = 0;
    if (mysql_stmt_prepare(st, code_sql, sizeof code_sql - 1) != 0 ||
        mysql_stmt_bind_param(st, p) != 0 || mysql_stmt_execute(st) != 0 ||
        mysql_stmt_bind_result(st, res) != 0) {
        rc = CP_ERR_UNAVAILABLE;
        log_warn("mariadb find code: %s", mysql_stmt_error(st));
        goto out;
    }
    for (;;) {
        int f = mysql_stmt_fetch(st);
        if (f == MYSQL_NO_DATA)
            break;
        if (f != 0) {
            rc = CP_ERR_UNAVAILABLE;
            log_warn("mariadb fetch code: %s", mysql_stmt_error(st));
            goto out;
        }
        /* The index matched bytes; the constant-time comparison is what decides, and a
         * row of another length can never match. */
        int equal = got_len == CP_ISSUE_CODE_CHARS && issuecode_equal(got, want);
        if (equal && rows == 0) {
            *coupon_id = cid;
            *user_id = uid;
        }
        match += equal;
        rows++;
    }
    if (rows == 0)
        (void)issuecode_equal(dummy, want); /* the same comparison as a found row costs */
    rc = match == 0 ? CP_ERR_NOT_FOUND : match == 1 ? CP_OK : CP_ERR_CONFLICT;
out:
    mysql_stmt_close(st);
    return rc;
}
