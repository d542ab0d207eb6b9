#include "first.h"

#include "persist.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "cp_err.h"
#include "db.h"
#include "event.h"
#include "issuecode.h"
#include "log.h"
#include "timefmt.h"

#define CHUNK_ROWS        500 /* rows per multi-row statement */
#define KNOWN_COUPONS     256 /* coupons remembered (never deleted; validity never changes) */
#define INSERT_COLUMNS    8
#define OUTBOX_COLUMNS    3
#define MS_PER_DAY        86400000LL
#define ER_DUP_ENTRY_CODE 1062 /* MariaDB's "Duplicate entry" */

/* What a batch needs of a coupon: that it exists, and its validity after issuance
 * (both set at creation and never changed, so they are cached like existence). */
struct known_coupon {
    int64_t id;              /* 0 = empty slot */
    int64_t usable_days;     /* -1 = no limit */
    int64_t usable_until_ms; /* -1 = no limit */
};

struct persist {
    const struct cp_conf *conf;
    MYSQL *db;
    struct known_coupon known[KNOWN_COUPONS];
    size_t known_next;
    struct persist_stats stats;
    /* 1 when a multi-row INSERT gets consecutive ids (innodb_autoinc_lock_mode 0 or 1,
     * auto_increment_increment 1): the optimistic path may then skip both SELECTs.
     * 0 = no, -1 = not asked yet on this connection. */
    int consecutive_ids;
    int dup_is_conflict;     /* run(): a duplicate key is CP_ERR_CONFLICT, no reconnect */
    uint64_t last_insert_id; /* run(): first id of the last INSERT */
    /* The INSERT of a full chunk, prepared once per connection: a drain sends the same
     * CHUNK_ROWS-row statement again and again, and its text is ~32 KiB to parse. */
    MYSQL_STMT *insert_full;
    MYSQL_STMT *outbox_full; /* the same for a full chunk of coupon.issued outbox rows */
    char *sql;               /* scratch for statement text */
    size_t sql_cap;
    MYSQL_BIND *binds; /* scratch for parameters */
    int64_t *ints;
    unsigned long *lens;
    /* Per row of a chunk: its code, whether usable_until is NULL, and its outbox row. */
    char (*codes)[CP_ISSUE_CODE_CHARS + 1];
    unsigned long *code_lens;
    my_bool *until_null;
    char (*payloads)[CP_EVENT_MAX_BYTES];
    unsigned long *outbox_lens; /* OUTBOX_COLUMNS per row */
    MYSQL_BIND *outbox_binds;
};

struct persist *persist_new(const struct cp_conf *conf)
{
    struct persist *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->conf = conf;
    p->sql_cap = 256 + (size_t)CHUNK_ROWS * 128;
    p->sql = malloc(p->sql_cap);
    p->binds = calloc((size_t)CHUNK_ROWS * INSERT_COLUMNS + 1, sizeof *p->binds);
    p->ints = calloc((size_t)CHUNK_ROWS * INSERT_COLUMNS + 1, sizeof *p->ints);
    p->lens = calloc((size_t)CHUNK_ROWS + 1, sizeof *p->lens);
    p->codes = calloc((size_t)CHUNK_ROWS, sizeof *p->codes);
    p->code_lens = calloc((size_t)CHUNK_ROWS, sizeof *p->code_lens);
    p->until_null = calloc((size_t)CHUNK_ROWS, sizeof *p->until_null);
    p->payloads = calloc((size_t)CHUNK_ROWS, sizeof *p->payloads);
    p->outbox_lens = calloc((size_t)CHUNK_ROWS * OUTBOX_COLUMNS, sizeof *p->outbox_lens);
    p->outbox_binds = calloc((size_t)CHUNK_ROWS * OUTBOX_COLUMNS, sizeof *p->outbox_binds);
    if (p->sql == NULL || p->binds == NULL || p->ints == NULL || p->lens == NULL ||
        p->codes == NULL || p->code_lens == NULL || p->until_null == NULL || p->payloads == NULL ||
        p->outbox_lens == NULL || p->outbox_binds == NULL) {
        persist_free(p);
        return NULL;
    }
    return p;
}

void persist_free(struct persist *p)
{
    if (p == NULL)
        return;
    if (p->insert_full != NULL)
        mysql_stmt_close(p->insert_full);
    if (p->outbox_full != NULL)
        mysql_stmt_close(p->outbox_full);
    if (p->db != NULL)
        mysql_close(p->db);
    free(p->sql);
    free(p->binds);
    free(p->ints);
    free(p->lens);
    free(p->codes);
    free(p->code_lens);
    free(p->until_null);
    free(p->payloads);
    free(p->outbox_lens);
    free(p->outbox_binds);
    free(p);
}

void persist_get_stats(const struct persist *p, struct persist_stats *out)
{
    *out = p->stats;
}

static int fail(struct persist *p, const char *what, const char *err)
{
    log_warn("mariadb %s: %s", what, err);
    p->stats.db_errors++;
    if (p->insert_full != NULL) {
        mysql_stmt_close(p->insert_full);
        p->insert_full = NULL;
    }
    if (p->outbox_full != NULL) {
        mysql_stmt_close(p->outbox_full);
        p->outbox_full = NULL;
    }
    if (p->db != NULL) {
        mysql_close(p->db);
        p->db = NULL;
    }
    return CP_ERR_UNAVAILABLE;
}

static int ensure_db(struct persist *p)
{
    if (p->db != NULL)
        return CP_OK;
    char err[512];
    if (db_connect(p->conf, &p->db, err, sizeof err) != CP_OK) {
        p->db = NULL;
        p->stats.db_errors++;
        log_warn("%s", err);
        return CP_ERR_UNAVAILABLE;
    }
    p->consecutive_ids = -1;
    return CP_OK;
}

/*
 * Prepares `sql`, binds params, executes; then calls on_row for each result row
 * of two BIGINT columns (when on_row is given). Statement closed on every path.
 */
typedef void (*row_fn)(void *arg, int64_t a, int64_t b);

static int run_stmt(struct persist *p, MYSQL_STMT **cache, const char *what, MYSQL_BIND *params,
                    row_fn on_row, void *arg, uint64_t *affected)
{
    /* Out of the cache while in use: fail() below must not close it under us. */
    MYSQL_STMT *st = NULL;
    if (cache != NULL) {
        st = *cache;
        *cache = NULL;
    }
    int prepared = st != NULL;
    if (st == NULL && (st = mysql_stmt_init(p->db)) == NULL)
        return fail(p, what, "out of memory");
    int rc = CP_OK;
    if ((!prepared && mysql_stmt_prepare(st, p->sql, strlen(p->sql)) != 0) ||
        (params != NULL && mysql_stmt_bind_param(st, params) != 0) || mysql_stmt_execute(st) != 0) {
        if (p->dup_is_conflict && mysql_stmt_errno(st) == ER_DUP_ENTRY_CODE)
            rc = CP_ERR_CONFLICT; /* the connection is fine; the caller rolls back */
        else
            rc = fail(p, what, mysql_stmt_error(st));
        goto out;
    }
    if (affected != NULL)
        *affected = (uint64_t)mysql_stmt_affected_rows(st);
    p->last_insert_id = (uint64_t)mysql_stmt_insert_id(st);
    if (on_row != NULL) {
        int64_t a = 0, b = 0;
        MYSQL_BIND res[2];
        db_bind_i64(&res[0], &a, NULL);
        db_bind_i64(&res[1], &b, NULL);
        if (mysql_stmt_bind_result(st, res) != 0) {
            rc = fail(p, what, mysql_stmt_error(st));
            goto out;
        }
        int f;
        while ((f = mysql_stmt_fetch(st)) == 0)
            on_row(arg, a, b);
        if (f != MYSQL_NO_DATA) {
            rc = fail(p, what, mysql_stmt_error(st));
            goto out;
        }
    }
out:
    if (cache != NULL && rc == CP_OK && p->db != NULL) {
        *cache = st; /* kept for the next call on this connection */
        return rc;
    }
    mysql_stmt_close(st);
    return rc;
}

static int run(struct persist *p, const char *what, MYSQL_BIND *params, row_fn on_row, void *arg,
               uint64_t *affected)
{
    return run_stmt(p, NULL, what, params, on_row, arg, affected);
}

static const struct known_coupon *find_known(const struct persist *p, int64_t id)
{
    for (size_t i = 0; i < KNOWN_COUPONS; i++)
        if (p->known[i].id == id)
            return &p->known[i];
    return NULL;
}

static void count_row(void *arg, int64_t a, int64_t b)
{
    (void)b;
    *(int64_t *)arg = a;
}

struct validity_row {
    int found;
    int64_t days, until_ms;
};

static void validity_row(void *arg, int64_t days, int64_t until_ms)
{
    struct validity_row *v = arg;
    v->found = 1;
    v->days = days;
    v->until_ms = until_ms;
}

/* Whether the coupon exists and, if so, its validity after issuance (*out). */
static int coupon_lookup(struct persist *p, int64_t coupon_id, int *exists,
                         struct known_coupon *out)
{
    const struct known_coupon *k = find_known(p, coupon_id);
    if (k != NULL) {
        *out = *k;
        *exists = 1;
        return CP_OK;
    }
    struct validity_row v = {0, -1, -1};
    snprintf(p->sql, p->sql_cap,
             "SELECT COALESCE(CAST(usable_days AS SIGNED), -1), "
             "COALESCE(CAST(UNIX_TIMESTAMP(usable_until) * 1000 AS SIGNED), -1) "
             "FROM coupon WHERE id = ?");
    MYSQL_BIND b;
    db_bind_i64(&b, &coupon_id, NULL);
    int rc = run(p, "coupon lookup", &b, validity_row, &v, NULL);
    if (rc != CP_OK)
        return rc;
    *exists = v.found;
    if (v.found) {
        struct known_coupon kc = {coupon_id, v.days, v.until_ms};
        p->known[p->known_next] = kc;
        p->known_next = (p->known_next + 1) % KNOWN_COUPONS;
        *out = kc;
    }
    return CP_OK;
}

/* MIN(issued_at + usable_days, usable_until); -1 = no limit. */
static int64_t usable_until(const struct known_coupon *kc, int64_t issued_ms)
{
    int64_t until = -1;
    if (kc->usable_days >= 0)
        until = issued_ms + kc->usable_days * MS_PER_DAY;
    if (kc->usable_until_ms >= 0 && (until < 0 || kc->usable_until_ms < until))
        until = kc->usable_until_ms;
    return until;
}

/* The items of one coupon within a chunk, by index into the batch. */
struct group {
    struct persist_item *items;
    size_t *idx;
    size_t n;
};

static struct persist_item *find_user(const struct group *g, int64_t user_id)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->items[g->idx[i]].ev.user_id == user_id)
            return &g->items[g->idx[i]];
    return NULL;
}

static void mark_existing(void *arg, int64_t user_id, int64_t unused)
{
    (void)unused;
    struct persist_item *it = find_user(arg, user_id);
    if (it != NULL)
        it->outcome = PERSIST_DUPLICATE;
}

static void set_row_id(void *arg, int64_t user_id, int64_t id)
{
    struct persist_item *it = find_user(arg, user_id);
    if (it != NULL && it->outcome == PERSIST_NEW)
        it->row_id = id;
}

/* "<prefix>?,?,...?)" with n placeholders. */
static void in_list(struct persist *p, const char *prefix, size_t n)
{
    size_t off = (size_t)snprintf(p->sql, p->sql_cap, "%s", prefix);
    for (size_t i = 0; i < n && off + 3 < p->sql_cap; i++) {
        p->sql[off++] = i ? ',' : '?';
        if (i)
            p->sql[off++] = '?';
    }
    p->sql[off++] = ')';
    p->sql[off] = '\0';
}

/*
 * coupon.issued for the chunk's new rows, into event_outbox in the batch's
 * transaction: the announcement commits with the row, or neither does. Rows in
 * id order (the order they were inserted), key "<couponId>".
 */
static int insert_outbox(struct persist *p, int64_t coupon_id, struct group *g,
                         int64_t persisted_at_ms)
{
    char key[CP_OUTBOX_KEY_MAX], topic[CP_OUTBOX_TOPIC_MAX + 1];
    int klen = event_outbox_key(coupon_id, key, sizeof key);
    size_t tlen = strlen(p->conf->kafka_issued_topic);
    if (klen < 0 || tlen > CP_OUTBOX_TOPIC_MAX)
        return fail(p, "outbox rows", "key or topic too long");
    memcpy(topic, p->conf->kafka_issued_topic, tlen + 1); /* the bind API takes char * */
    size_t n = 0, off = 0;
    for (size_t i = 0; i < g->n; i++)
        n += g->items[g->idx[i]].outcome == PERSIST_NEW;
    if (n == 0)
        return CP_OK;
    int write_text = !(n == CHUNK_ROWS && p->outbox_full != NULL);
    if (write_text)
        off = (size_t)snprintf(p->sql, p->sql_cap,
                               "INSERT INTO event_outbox (topic, msg_key, payload) VALUES ");
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++) {
        const struct persist_item *it = &g->items[g->idx[i]];
        if (it->outcome != PERSIST_NEW)
            continue;
        int vlen = event_encode_issued(&it->ev, it->row_id, persisted_at_ms, p->payloads[k],
                                       sizeof p->payloads[k]);
        if (vlen < 0)
            return fail(p, "outbox rows", "coupon.issued does not fit");
        if (write_text)
            off += (size_t)snprintf(p->sql + off, p->sql_cap - off, "%s(?, ?, ?)", k ? "," : "");
        MYSQL_BIND *b = &p->outbox_binds[k * OUTBOX_COLUMNS];
        unsigned long *l = &p->outbox_lens[k * OUTBOX_COLUMNS];
        char *texts[OUTBOX_COLUMNS] = {topic, key, p->payloads[k]};
        unsigned long lens[OUTBOX_COLUMNS] = {(unsigned long)tlen, (unsigned long)klen,
                                              (unsigned long)vlen};
        for (int c = 0; c < OUTBOX_COLUMNS; c++) {
            memset(&b[c], 0, sizeof b[c]);
            l[c] = lens[c];
            b[c].buffer_type = MYSQL_TYPE_STRING;
            b[c].buffer = texts[c];
            b[c].buffer_length = lens[c];
            b[c].length = &l[c];
        }
        k++;
    }
    uint64_t affected = 0;
    int rc = run_stmt(p, n == CHUNK_ROWS ? &p->outbox_full : NULL, "outbox rows", p->outbox_binds,
                      NULL, NULL, &affected);
    if (rc == CP_OK && affected != n)
        return fail(p, "outbox rows", "row count differs from the rows sent");
    return rc;
}

/* One coupon's chunk (at most CHUNK_ROWS items, distinct users). */
static int persist_group(struct persist *p, int64_t coupon_id, const struct known_coupon *kc,
                         struct group *g, int64_t persisted_at_ms, int optimistic,
                         uint64_t *inserted)
{
    int rc;
    if (!optimistic) {
        /* 1. which rows exist already */
        in_list(p, "SELECT user_id, 0 FROM coupon_issue WHERE coupon_id = ? AND user_id IN (",
                g->n);
        p->ints[0] = coupon_id;
        db_bind_i64(&p->binds[0], &p->ints[0], NULL);
        for (size_t i = 0; i < g->n; i++) {
            p->ints[1 + i] = g->items[g->idx[i]].ev.user_id;
            db_bind_i64(&p->binds[1 + i], &p->ints[1 + i], NULL);
        }
        rc = run(p, "existing rows", p->binds, mark_existing, g, NULL);
        if (rc != CP_OK)
            return rc;
    }
    /* 2. insert the others in one statement; a full chunk reuses the prepared one,
     * so its text is only written when it has to be prepared */
    size_t to_insert = 0;
    for (size_t i = 0; i < g->n; i++)
        to_insert += g->items[g->idx[i]].outcome == PERSIST_NEW;
    int write_text = !(to_insert == CHUNK_ROWS && p->insert_full != NULL);
    size_t fresh = 0, off = 0;
    if (write_text)
        off = (size_t)snprintf(p->sql, p->sql_cap,
                               "INSERT INTO coupon_issue (coupon_id, user_id, sequence, event_id, "
                               "issued_at, persisted_at, code, usable_until) VALUES ");
    for (size_t i = 0; i < g->n; i++) {
        struct persist_item *it = &g->items[g->idx[i]];
        if (it->outcome != PERSIST_NEW)
            continue;
        if (write_text)
            off += (size_t)snprintf(
                p->sql + off, p->sql_cap - off,
                "%s(?, ?, ?, ?, FROM_UNIXTIME(? / 1000), FROM_UNIXTIME(? / 1000), ?, "
                "FROM_UNIXTIME(? / 1000))",
                fresh ? "," : "");
        MYSQL_BIND *b = &p->binds[fresh * INSERT_COLUMNS];
        int64_t *v = &p->ints[fresh * INSERT_COLUMNS];
        v[0] = coupon_id;
        v[1] = it->ev.user_id;
        v[2] = it->ev.sequence;
        v[3] = it->ev.issued_at_ms;
        v[4] = persisted_at_ms;
        v[5] = usable_until(kc, it->ev.issued_at_ms);
        if (issuecode_compute(p->conf->code_secret, strlen(p->conf->code_secret), coupon_id,
                              it->ev.user_id, it->ev.sequence, p->codes[fresh]) != CP_OK)
            return fail(p, "insert issues", "no code_secret to compute the codes with");
        db_bind_i64(&b[0], &v[0], NULL);
        db_bind_i64(&b[1], &v[1], NULL);
        db_bind_i64(&b[2], &v[2], NULL);
        memset(&b[3], 0, sizeof b[3]);
        p->lens[fresh] = CP_EVENT_ID_HEX;
        b[3].buffer_type = MYSQL_TYPE_STRING;
        b[3].buffer = it->ev.event_id;
        b[3].buffer_length = CP_EVENT_ID_HEX;
        b[3].length = &p->lens[fresh];
        db_bind_i64(&b[4], &v[3], NULL);
        db_bind_i64(&b[5], &v[4], NULL);
        memset(&b[6], 0, sizeof b[6]);
        p->code_lens[fresh] = CP_ISSUE_CODE_CHARS;
        b[6].buffer_type = MYSQL_TYPE_STRING;
        b[6].buffer = p->codes[fresh];
        b[6].buffer_length = CP_ISSUE_CODE_CHARS;
        b[6].length = &p->code_lens[fresh];
        db_bind_i64(&b[7], &v[5], NULL);
        p->until_null[fresh] = v[5] < 0;
        b[7].is_null = &p->until_null[fresh];
        fresh++;
    }
    if (fresh == 0)
        return CP_OK;
    uint64_t affected = 0;
    p->dup_is_conflict = optimistic;
    rc = run_stmt(p, fresh == CHUNK_ROWS ? &p->insert_full : NULL, "insert issues", p->binds, NULL,
                  NULL, &affected);
    p->dup_is_conflict = 0;
    if (rc != CP_OK)
        return rc;
    if (affected != fresh)
        return fail(p, "insert issues", "row count differs from the rows sent");
    *inserted += fresh;
    if (optimistic) {
        /* One simple multi-row INSERT with consecutive ids: rows in the order sent. */
        uint64_t id = p->last_insert_id;
        for (size_t i = 0; i < g->n; i++)
            if (g->items[g->idx[i]].outcome == PERSIST_NEW)
                g->items[g->idx[i]].row_id = (int64_t)id++;
        return insert_outbox(p, coupon_id, g, persisted_at_ms);
    }
    /* 3. the new rows' ids, for coupon.issued */
    in_list(p, "SELECT user_id, id FROM coupon_issue WHERE coupon_id = ? AND user_id IN (", fresh);
    p->ints[0] = coupon_id;
    db_bind_i64(&p->binds[0], &p->ints[0], NULL);
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++) {
        struct persist_item *it = &g->items[g->idx[i]];
        if (it->outcome != PERSIST_NEW)
            continue;
        p->ints[1 + k] = it->ev.user_id;
        db_bind_i64(&p->binds[1 + k], &p->ints[1 + k], NULL);
        k++;
    }
    rc = run(p, "new row ids", p->binds, set_row_id, g, NULL);
    if (rc != CP_OK)
        return rc;
    return insert_outbox(p, coupon_id, g, persisted_at_ms);
}

static int add_issued(struct persist *p, int64_t coupon_id, int64_t count)
{
    snprintf(p->sql, p->sql_cap,
             "UPDATE coupon SET issued_quantity = issued_quantity + ? WHERE id = ?");
    MYSQL_BIND b[2];
    db_bind_i64(&b[0], &count, NULL);
    db_bind_i64(&b[1], &coupon_id, NULL);
    return run(p, "issued_quantity", b, NULL, NULL, NULL);
}

/*
 * The batch's coupon rows FOR UPDATE in ascending id order (`order` is sorted by coupon),
 * first: else the INSERT's foreign key takes a shared lock on the row, the UPDATE of
 * issued_quantity then an exclusive one, and two consumers with events of one coupon
 * deadlock, each holding the shared lock. Coupons that do not exist are left out: an
 * absent id would lock the gap new coupons are inserted into.
 */
static int lock_coupons(struct persist *p, const struct persist_item *items, const size_t *order,
                        size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i <= n; i++) {
        int exists = 0;
        if (i < n && (i == 0 || items[order[i - 1]].ev.coupon_id != items[order[i]].ev.coupon_id)) {
            struct known_coupon kc;
            int rc = coupon_lookup(p, items[order[i]].ev.coupon_id, &exists, &kc);
            if (rc != CP_OK)
                return rc;
        }
        if (exists) {
            p->ints[m] = items[order[i]].ev.coupon_id;
            db_bind_i64(&p->binds[m], &p->ints[m], NULL);
            m++;
        }
        if (m > 0 && (m == CHUNK_ROWS || i == n)) {
            in_list(p, "SELECT CAST(id AS SIGNED), 0 FROM coupon WHERE id IN (", m);
            size_t off = strlen(p->sql);
            snprintf(p->sql + off, p->sql_cap - off, " ORDER BY id FOR UPDATE");
            int64_t last = 0;
            int rc = run(p, "lock coupons", p->binds, count_row, &last, NULL);
            if (rc != CP_OK)
                return rc;
            m = 0;
        }
    }
    return CP_OK;
}

static int cmp_by_coupon(const void *a, const void *b, void *items)
{
    const struct persist_item *it = items;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int64_t ca = it[ia].ev.coupon_id, cb = it[ib].ev.coupon_id;
    if (ca != cb)
        return ca < cb ? -1 : 1;
    return ia < ib ? -1 : ia > ib; /* stable: earlier event first */
}

/* A (coupon, user) seen earlier in the same batch: only the first one counts. */
static void mark_in_batch_duplicates(struct persist_item *items, const size_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct persist_item *it = &items[order[i]];
        for (size_t j = i; j-- > 0;) {
            const struct persist_item *prev = &items[order[j]];
            if (prev->ev.coupon_id != it->ev.coupon_id)
                break;
            if (prev->ev.user_id == it->ev.user_id && prev->outcome == PERSIST_NEW) {
                it->outcome = PERSIST_DUPLICATE;
                break;
            }
        }
    }
}

static void two_ints(void *arg, int64_t a, int64_t b)
{
    int64_t *v = arg;
    v[0] = a;
    v[1] = b;
}

/* Asks the server once per connection whether multi-row INSERTs get consecutive ids. */
static int learn_id_allocation(struct persist *p)
{
    if (p->consecutive_ids >= 0)
        return CP_OK;
    int64_t v[2] = {-1, -1};
    snprintf(p->sql, p->sql_cap,
             "SELECT CAST(@@innodb_autoinc_lock_mode AS SIGNED), "
             "CAST(@@auto_increment_increment AS SIGNED)");
    int rc = run(p, "id allocation", NULL, two_ints, v, NULL);
    if (rc != CP_OK)
        return rc;
    p->consecutive_ids = (v[0] == 0 || v[0] == 1) && v[1] == 1;
    log_info(
        "mariadb: innodb_autoinc_lock_mode %" PRId64 ", auto_increment_increment %" PRId64 ": %s",
        v[0], v[1], p->consecutive_ids ? "inserting optimistically" : "checking every batch first");
    return CP_OK;
}

static void reset_outcomes(struct persist_item *items, const size_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        items[i].outcome = PERSIST_NEW;
        items[i].row_id = 0;
    }
    mark_in_batch_duplicates(items, order, n);
}

/*
 * One transaction over the batch. `optimistic`: insert without looking for existing
 * rows first; a duplicate key (a redelivered event) fails the statement with
 * CP_ERR_CONFLICT and the caller rolls back and runs the batch again, checking.
 */
static int persist_once(struct persist *p, struct persist_item *items, const size_t *order,
                        size_t n, int optimistic, int64_t persisted_at_ms,
                        struct persist_stats *delta)
{
    int rc;
    if (mysql_autocommit(p->db, 0) != 0)
        return fail(p, "begin", mysql_error(p->db));
    if ((rc = lock_coupons(p, items, order, n)) != CP_OK)
        goto rollback;
    size_t i = 0;
    while (i < n) {
        int64_t coupon_id = items[order[i]].ev.coupon_id;
        size_t end = i;
        while (end < n && items[order[end]].ev.coupon_id == coupon_id)
            end++;
        int exists = 0;
        struct known_coupon kc = {coupon_id, -1, -1};
        if ((rc = coupon_lookup(p, coupon_id, &exists, &kc)) != CP_OK)
            goto rollback;
        uint64_t inserted = 0;
        if (!exists) {
            for (size_t k = i; k < end; k++)
                items[order[k]].outcome = PERSIST_UNKNOWN_COUPON;
            delta->unknown += end - i;
            i = end;
            continue;
        }
        /* Chunks of distinct, not-yet-duplicate users of this coupon. */
        size_t k = i;
        while (k < end) {
            size_t idx[CHUNK_ROWS], m = 0;
            for (; k < end && m < CHUNK_ROWS; k++)
                if (items[order[k]].outcome == PERSIST_NEW)
                    idx[m++] = order[k];
            if (m == 0)
                continue;
            struct group g = {.items = items, .idx = idx, .n = m};
            rc = persist_group(p, coupon_id, &kc, &g, persisted_at_ms, optimistic, &inserted);
            if (rc != CP_OK)
                goto rollback;
        }
        if (inserted > 0 && (rc = add_issued(p, coupon_id, (int64_t)inserted)) != CP_OK)
            goto rollback;
        delta->inserted += inserted;
        i = end;
    }
    if (mysql_commit(p->db) != 0)
        return fail(p, "commit", mysql_error(p->db));
    return CP_OK;
rollback:
    if (p->db != NULL && mysql_rollback(p->db) != 0)
        (void)fail(p, "rollback", mysql_error(p->db));
    return rc;
}

int persist_batch(struct persist *p, struct persist_item *items, size_t n, int64_t *persisted_at_ms)
{
    if (ensure_db(p) != CP_OK || learn_id_allocation(p) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    size_t *order = malloc((n + 1) * sizeof *order);
    if (order == NULL)
        return CP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_by_coupon, items);
    reset_outcomes(items, order, n);
    *persisted_at_ms = timefmt_now_ms();
    struct persist_stats delta = {0};
    int optimistic = p->consecutive_ids == 1;
    int rc = persist_once(p, items, order, n, optimistic, *persisted_at_ms, &delta);
    if (rc == CP_ERR_CONFLICT && optimistic) {
        /* Some event of the batch is persisted already (a redelivery): again, checking. */
        p->stats.redelivered_batches++;
        reset_outcomes(items, order, n);
        memset(&delta, 0, sizeof delta);
        rc = persist_once(p, items, order, n, 0, *persisted_at_ms, &delta);
    }
    if (rc == CP_OK) {
        for (size_t j = 0; j < n; j++)
            if (items[j].outcome == PERSIST_DUPLICATE)
                delta.duplicates++;
        p->stats.inserted += delta.inserted;
        p->stats.duplicates += delta.duplicates;
        p->stats.unknown += delta.unknown;
    }
    free(order);
    return rc;
}

int persist_row_exists(struct persist *p, int64_t coupon_id, int64_t user_id)
{
    if (ensure_db(p) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    if (mysql_autocommit(p->db, 1) != 0)
        return fail(p, "autocommit", mysql_error(p->db));
    snprintf(p->sql, p->sql_cap,
             "SELECT COUNT(*), 0 FROM coupon_issue WHERE coupon_id = ? AND user_id = ?");
    MYSQL_BIND b[2];
    db_bind_i64(&b[0], &coupon_id, NULL);
    db_bind_i64(&b[1], &user_id, NULL);
    int64_t count = 0;
    int rc = run(p, "row lookup", b, count_row, &count, NULL);
    return rc != CP_OK ? rc : count > 0;
}

struct id_list {
    int64_t *ids;
    size_t cap, n;
};

static void collect_id(void *arg, int64_t id, int64_t unused)
{
    (void)unused;
    struct id_list *l = arg;
    if (l->n < l->cap)
        l->ids[l->n++] = id;
}

int persist_recent_coupons(struct persist *p, int64_t *ids, size_t cap, size_t *n)
{
    *n = 0;
    if (ensure_db(p) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    if (mysql_autocommit(p->db, 1) != 0)
        return fail(p, "autocommit", mysql_error(p->db));
    int64_t limit = (int64_t)cap;
    snprintf(p->sql, p->sql_cap,
             "SELECT CAST(id AS SIGNED), 0 FROM coupon WHERE end_at > UTC_TIMESTAMP() - "
             "INTERVAL 7 DAY ORDER BY id DESC LIMIT ?");
    MYSQL_BIND b;
    db_bind_i64(&b, &limit, NULL);
    struct id_list l = {.ids = ids, .cap = cap};
    int rc = run(p, "recent coupons", &b, collect_id, &l, NULL);
    *n = l.n;
    return rc;
}
