#include "first.h"

#include "whstore.h"

#include <stdio.h>
#include <string.h>

#include "cp_err.h"
#include "db.h"
#include "log.h"

#define MS(col) "CAST(IFNULL(ROUND(UNIX_TIMESTAMP(" col ") * 1000), 0) AS SIGNED)"

typedef int (*row_fn)(void *arg);

/*
 * One prepared statement on the caller's client (common/db): params (NULL: none), then
 * each row into res (NULL: no result) and fn(arg) after it - a non-zero return stops the
 * rows and is not an error here. *affected (may be NULL): rows changed.
 */
static int run(struct db *db, const char *sql, MYSQL_BIND *params, MYSQL_BIND *res, row_fn fn,
               void *arg, uint64_t *affected)
{
    if (res == NULL) {
        int rc = db_exec(db, sql, params);
        if (rc == CP_OK && affected != NULL)
            *affected = db_affected_rows(db);
        return rc;
    }
    int rc = db_fetch_each(db, sql, params, res, fn, arg);
    return rc > 0 ? CP_OK : rc;
}

static void bind_text_in(MYSQL_BIND *b, const char *s, unsigned long *len)
{
    *len = (unsigned long)strlen(s);
    db_bind_text(b, (char *)s, *len + 1, len, NULL);
}

/* Terminates a fetched text of *len bytes in buf[cap]. */
static void text_end(char *buf, size_t cap, unsigned long len)
{
    buf[len < cap ? len : cap - 1] = '\0';
}

static const char *const state_names[] = {"pending", "delivered", "failed"};

const char *whstore_state_name(int state)
{
    return state >= 0 && state <= WHSTORE_FAILED ? state_names[state] : "unknown";
}

int whstore_endpoint_insert(struct db *db, const char *url, const char *events, const char *secret,
                            int64_t *id)
{
    static const char sql[] = "INSERT INTO webhook_endpoint (url, events, secret) VALUES (?, ?, ?)";
    MYSQL_BIND p[3];
    unsigned long l[3];
    bind_text_in(&p[0], url, &l[0]);
    bind_text_in(&p[1], events, &l[1]);
    bind_text_in(&p[2], secret, &l[2]);
    int rc = run(db, sql, p, NULL, NULL, NULL, NULL);
    if (rc == CP_OK)
        *id = (int64_t)db_insert_id(db);
    return rc;
}

struct endpoint_rows {
    struct whstore_endpoint e;
    unsigned long url_len, events_len;
    int64_t enabled;
    whstore_endpoint_fn fn;
    void *arg;
};

static int endpoint_row(void *arg)
{
    struct endpoint_rows *r = arg;
    text_end(r->e.url, sizeof r->e.url, r->url_len);
    text_end(r->e.events, sizeof r->e.events, r->events_len);
    r->e.enabled = r->enabled != 0;
    return r->fn(&r->e, r->arg);
}

int whstore_endpoint_list(struct db *db, int64_t limit, whstore_endpoint_fn fn, void *arg)
{
    static const char sql[] =
        "SELECT CAST(id AS SIGNED), url, events, enabled, " MS("created_at") ", " MS(
            "IF(previous_until > NOW(3), previous_until, NULL)") " FROM webhook_endpoint "
                                                                 "ORDER BY id LIMIT ?";
    struct endpoint_rows r = {.fn = fn, .arg = arg};
    MYSQL_BIND p, res[6];
    db_bind_i64(&p, &limit, NULL);
    db_bind_i64(&res[0], &r.e.id, NULL);
    db_bind_text(&res[1], r.e.url, sizeof r.e.url, &r.url_len, NULL);
    db_bind_text(&res[2], r.e.events, sizeof r.e.events, &r.events_len, NULL);
    db_bind_i64(&res[3], &r.enabled, NULL);
    db_bind_i64(&res[4], &r.e.created_ms, NULL);
    db_bind_i64(&res[5], &r.e.previous_until_ms, NULL);
    return run(db, sql, &p, res, endpoint_row, &r, NULL);
}

/* An UPDATE of one row by id: CP_ERR_NOT_FOUND when it changed none. */
static int update_one(struct db *db, const char *sql, MYSQL_BIND *p)
{
    uint64_t n = 0;
    int rc = run(db, sql, p, NULL, NULL, NULL, &n);
    return rc == CP_OK && n == 0 ? CP_ERR_NOT_FOUND : rc;
}

int whstore_endpoint_disable(struct db *db, int64_t id)
{
    static const char sql[] = "UPDATE webhook_endpoint SET enabled = 0, disabled_at = NOW(3) "
                              "WHERE id = ? AND enabled = 1";
    MYSQL_BIND p;
    db_bind_i64(&p, &id, NULL);
    return update_one(db, sql, &p);
}

int whstore_endpoint_rotate(struct db *db, int64_t id, const char *secret, int64_t overlap_s)
{
    static const char sql[] =
        "UPDATE webhook_endpoint SET previous_secret = secret, secret = ?, "
        "previous_until = NOW(3) + INTERVAL ? SECOND WHERE id = ? AND enabled = 1";
    MYSQL_BIND p[3];
    unsigned long l;
    bind_text_in(&p[0], secret, &l);
    db_bind_i64(&p[1], &overlap_s, NULL);
    db_bind_i64(&p[2], &id, NULL);
    return update_one(db, sql, p);
}

struct delivery_rows {
    struct whstore_delivery d;
    unsigned long type_len, error_len, state_len;
    char state[16];
    whstore_delivery_fn fn;
    void *arg;
    int n;
};

static int delivery_row(void *arg)
{
    struct delivery_rows *r = arg;
    text_end(r->d.event_type, sizeof r->d.event_type, r->type_len);
    text_end(r->d.last_error, sizeof r->d.last_error, r->error_len);
    text_end(r->state, sizeof r->state, r->state_len);
    r->d.state = WHSTORE_PENDING;
    for (int i = 0; i <= WHSTORE_FAILED; i++)
        if (strcmp(r->state, state_names[i]) == 0)
            r->d.state = i;
    r->n++;
    return r->fn(&r->d, r->arg);
}

/* Row callback of a lookup: counts the row, stops. */
static int first_row(void *arg)
{
    (*(int *)arg)++;
    return 1;
}

int whstore_delivery_list(struct db *db, int64_t endpoint_id, int64_t limit, whstore_delivery_fn fn,
                          void *arg)
{
    static const char exists_sql[] = "SELECT CAST(id AS SIGNED) FROM webhook_endpoint WHERE id = ?";
    static const char sql[] =
        "SELECT CAST(id AS SIGNED), CAST(endpoint_id AS SIGNED), CAST(event_id AS SIGNED), "
        "coupon_id, event_type, CAST(state AS CHAR), CAST(attempts AS SIGNED), "
        "IFNULL(last_status, 0), IFNULL(last_error, ''), " MS("next_attempt_at") ", " MS(
            "created_at") ", " MS("delivered_at") " FROM webhook_delivery WHERE endpoint_id = ? "
                                                  "ORDER BY id DESC LIMIT ?";
    int64_t ignored = 0;
    int found = 0;
    MYSQL_BIND p[2], one, res[12];
    db_bind_i64(&p[0], &endpoint_id, NULL);
    db_bind_i64(&p[1], &limit, NULL);
    db_bind_i64(&one, &ignored, NULL);
    int rc = run(db, exists_sql, p, &one, first_row, &found, NULL);
    if (rc != CP_OK || found == 0)
        return rc != CP_OK ? rc : CP_ERR_NOT_FOUND;
    struct delivery_rows r = {.fn = fn, .arg = arg};
    db_bind_i64(&res[0], &r.d.id, NULL);
    db_bind_i64(&res[1], &r.d.endpoint_id, NULL);
    db_bind_i64(&res[2], &r.d.event_id, NULL);
    db_bind_i64(&res[3], &r.d.coupon_id, NULL);
    db_bind_text(&res[4], r.d.event_type, sizeof r.d.event_type, &r.type_len, NULL);
    db_bind_text(&res[5], r.state, sizeof r.state, &r.state_len, NULL);
    db_bind_i64(&res[6], &r.d.attempts, NULL);
    db_bind_i64(&res[7], &r.d.last_status, NULL);
    db_bind_text(&res[8], r.d.last_error, sizeof r.d.last_error, &r.error_len, NULL);
    db_bind_i64(&res[9], &r.d.next_attempt_ms, NULL);
    db_bind_i64(&res[10], &r.d.created_ms, NULL);
    db_bind_i64(&res[11], &r.d.delivered_ms, NULL);
    return run(db, sql, p, res, delivery_row, &r, NULL);
}

int whstore_redeliver(struct db *db, int64_t endpoint_id, int64_t delivery_id, int64_t window_s)
{
    static const char sql[] =
        "UPDATE webhook_delivery SET state = 'pending', next_attempt_at = NOW(3), "
        "give_up_at = NOW(3) + INTERVAL ? SECOND, delivered_at = NULL "
        "WHERE id = ? AND endpoint_id = ?";
    MYSQL_BIND p[3];
    db_bind_i64(&p[0], &window_s, NULL);
    db_bind_i64(&p[1], &delivery_id, NULL);
    db_bind_i64(&p[2], &endpoint_id, NULL);
    return update_one(db, sql, p);
}

int whstore_fanout(struct db *db, int64_t event_id, const char *type, int64_t coupon_id,
                   const char *payload, size_t payload_len, int64_t window_s, uint64_t *created)
{
    static const char sql[] =
        "INSERT IGNORE INTO webhook_delivery (endpoint_id, event_id, event_type, coupon_id, "
        "payload, give_up_at) SELECT id, ?, ?, ?, ?, NOW(3) + INTERVAL ? SECOND "
        "FROM webhook_endpoint WHERE enabled = 1 AND FIND_IN_SET(?, events)";
    MYSQL_BIND p[6];
    unsigned long tl, pl = (unsigned long)payload_len, tl2;
    db_bind_i64(&p[0], &event_id, NULL);
    bind_text_in(&p[1], type, &tl);
    db_bind_i64(&p[2], &coupon_id, NULL);
    db_bind_text(&p[3], (char *)payload, payload_len, &pl, NULL);
    p[3].buffer_type = MYSQL_TYPE_BLOB;
    db_bind_i64(&p[4], &window_s, NULL);
    bind_text_in(&p[5], type, &tl2);
    return run(db, sql, p, NULL, NULL, NULL, created);
}

struct due_rows {
    struct whstore_due d;
    unsigned long url_len, secret_len, previous_len, payload_len;
    int64_t give_up;
    whstore_due_fn fn;
    void *arg;
};

static int due_row(void *arg)
{
    struct due_rows *r = arg;
    text_end(r->d.url, sizeof r->d.url, r->url_len);
    text_end(r->d.secret, sizeof r->d.secret, r->secret_len);
    text_end(r->d.previous, sizeof r->d.previous, r->previous_len);
    r->d.payload_len = r->payload_len < sizeof r->d.payload ? r->payload_len : 0;
    r->d.give_up = r->give_up != 0;
    return r->fn(&r->d, r->arg);
}

int whstore_due_list(struct db *db, int64_t limit, whstore_due_fn fn, void *arg)
{
    /* The head of each (endpoint, coupon) queue: ix_delivery_order serves the GROUP BY. */
    static const char sql[] =
        "SELECT CAST(d.id AS SIGNED), CAST(d.endpoint_id AS SIGNED), CAST(d.event_id AS SIGNED), "
        "d.coupon_id, CAST(d.attempts AS SIGNED), "
        "CAST(TIMESTAMPDIFF(MICROSECOND, d.created_at, NOW(3)) / 1000 AS SIGNED), "
        "d.give_up_at <= NOW(3), e.url, e.secret, "
        "IF(e.previous_until > NOW(3), IFNULL(e.previous_secret, ''), ''), d.payload "
        "FROM (SELECT endpoint_id, coupon_id, MIN(event_id) AS head FROM webhook_delivery "
        "      WHERE state = 'pending' GROUP BY endpoint_id, coupon_id) h "
        "JOIN webhook_delivery d ON d.endpoint_id = h.endpoint_id AND d.event_id = h.head "
        "JOIN webhook_endpoint e ON e.id = d.endpoint_id "
        "WHERE d.next_attempt_at <= NOW(3) AND e.enabled = 1 ORDER BY d.next_attempt_at LIMIT ?";
    struct due_rows r = {.fn = fn, .arg = arg};
    MYSQL_BIND p, res[11];
    db_bind_i64(&p, &limit, NULL);
    db_bind_i64(&res[0], &r.d.id, NULL);
    db_bind_i64(&res[1], &r.d.endpoint_id, NULL);
    db_bind_i64(&res[2], &r.d.event_id, NULL);
    db_bind_i64(&res[3], &r.d.coupon_id, NULL);
    db_bind_i64(&res[4], &r.d.attempts, NULL);
    db_bind_i64(&res[5], &r.d.age_ms, NULL);
    db_bind_i64(&res[6], &r.give_up, NULL);
    db_bind_text(&res[7], r.d.url, sizeof r.d.url, &r.url_len, NULL);
    db_bind_text(&res[8], r.d.secret, sizeof r.d.secret, &r.secret_len, NULL);
    db_bind_text(&res[9], r.d.previous, sizeof r.d.previous, &r.previous_len, NULL);
    db_bind_text(&res[10], r.d.payload, sizeof r.d.payload, &r.payload_len, NULL);
    res[10].buffer_type = MYSQL_TYPE_BLOB;
    return run(db, sql, &p, res, due_row, &r, NULL);
}

int whstore_attempted(struct db *db, int64_t id, int state, int64_t status, const char *error,
                      int64_t retry_ms)
{
    static const char sql[] = "UPDATE webhook_delivery SET state = ?, attempts = attempts + 1, "
                              "last_status = NULLIF(?, 0), last_error = NULLIF(?, ''), "
                              "next_attempt_at = NOW(3) + INTERVAL ? * 1000 MICROSECOND, "
                              "delivered_at = IF(? = 'delivered', NOW(3), NULL) WHERE id = ?";
    const char *name = whstore_state_name(state);
    char err[WHSTORE_ERROR_MAX];
    snprintf(err, sizeof err, "%s", error);
    MYSQL_BIND p[6];
    unsigned long l0, l2, l4;
    bind_text_in(&p[0], name, &l0);
    db_bind_i64(&p[1], &status, NULL);
    bind_text_in(&p[2], err, &l2);
    db_bind_i64(&p[3], &retry_ms, NULL);
    bind_text_in(&p[4], name, &l4);
    db_bind_i64(&p[5], &id, NULL);
    return run(db, sql, p, NULL, NULL, NULL, NULL);
}

int whstore_oldest_pending(struct db *db, int64_t *age_s)
{
    static const char sql[] =
        "SELECT IFNULL(CAST(TIMESTAMPDIFF(SECOND, MIN(created_at), NOW(3)) AS SIGNED), 0) "
        "FROM webhook_delivery WHERE state = 'pending'";
    int found = 0;
    MYSQL_BIND res;
    *age_s = 0;
    db_bind_i64(&res, age_s, NULL);
    return run(db, sql, NULL, &res, first_row, &found, NULL);
}

int whstore_enabled_count(struct db *db, int64_t *n)
{
    static const char sql[] = "SELECT COUNT(*) FROM webhook_endpoint WHERE enabled = 1";
    int found = 0;
    MYSQL_BIND res;
    *n = 0;
    db_bind_i64(&res, n, NULL);
    return run(db, sql, NULL, &res, first_row, &found, NULL);
}
