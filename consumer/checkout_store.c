#include "first.h"

#include "checkout_store.h"

#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "cp_limits.h"
#include "event.h"

static const char row_sql[] = "SELECT CAST(id AS SIGNED), CAST(sequence AS SIGNED), "
                              "CAST(checkout_version AS SIGNED) FROM coupon_issue "
                              "WHERE coupon_id = ? AND user_id = ? FOR UPDATE";
/* Every state sets all four columns: R (used_at, order), H (hold order, until), F (none). */
static const char apply_sql[] =
    "UPDATE coupon_issue SET used_at = FROM_UNIXTIME(? / 1000), redeemed_order_id = ?, "
    "hold_order_id = ?, hold_expires_at = FROM_UNIXTIME(? / 1000), checkout_version = ? "
    "WHERE id = ? AND checkout_version = ?";
static const char outbox_sql[] = "INSERT INTO event_outbox (topic, msg_key, payload) "
                                 "VALUES (?, ?, ?)";
static const char coupons_sql[] = "SELECT CAST(id AS SIGNED) FROM coupon ORDER BY id DESC LIMIT ?";

struct checkout_store {
    struct db *db;
    const char *topic;
    size_t max;
    int64_t *users;        /* the distinct users of one call's records, sorted */
    struct plan_row *rows; /* their rows, read (locked) in the transaction */
    size_t nusers;
    /* The call in progress (apply_tx's argument). */
    int64_t coupon_id;
    struct planned_change *c;
    size_t n;
};

struct checkout_store *checkout_store_new(struct db *db, const char *topic, size_t max)
{
    struct checkout_store *s = calloc(1, sizeof *s);
    if (s != NULL) {
        *s = (struct checkout_store){.db = db,
                                     .topic = topic,
                                     .max = max,
                                     .users = calloc(max + 1, sizeof *s->users),
                                     .rows = calloc(max + 1, sizeof *s->rows)};
        if (s->users != NULL && s->rows != NULL)
            return s;
    }
    checkout_store_free(s);
    return NULL;
}

void checkout_store_free(struct checkout_store *s)
{
    if (s != NULL) {
        free(s->users);
        free(s->rows);
    }
    free(s);
}

/* The row of one issuance (locked), into *row: found = 0 when there is none. */
static int lock_row(struct db *db, int64_t coupon_id, struct plan_row *row)
{
    int64_t cid = coupon_id, uid = row->user_id;
    MYSQL_BIND p[2], res[3];
    db_bind_i64(&p[0], &cid, NULL);
    db_bind_i64(&p[1], &uid, NULL);
    db_bind_i64(&res[0], &row->row_id, NULL);
    db_bind_i64(&res[1], &row->sequence, NULL);
    db_bind_i64(&res[2], &row->version, NULL);
    int rc = db_fetch_one(db, row_sql, p, res);
    row->found = rc == CP_OK;
    return rc == CP_ERR_NOT_FOUND ? CP_OK : rc;
}

static enum redemption_kind kind_of(enum rkey_change_type t)
{
    switch (t) {
    case RKEY_CHANGE_REDEEMED: return REDEMPTION_REDEEMED;
    case RKEY_CHANGE_CANCELLED: return REDEMPTION_CANCELLED;
    case RKEY_CHANGE_HELD: return REDEMPTION_HELD;
    case RKEY_CHANGE_RELEASED: return REDEMPTION_HOLD_RELEASED;
    case RKEY_CHANGE_LAPSED: break;
    }
    return REDEMPTION_HOLD_LAPSED;
}

/* The change's coupon.redemption row into event_outbox. */
static int add_event(struct checkout_store *s, const struct planned_change *pc)
{
    const struct rkey_change *c = &pc->change;
    struct redemption_event ev = {kind_of(c->type), s->coupon_id, c->user_id,  pc->sequence,
                                  c->order_id,      c->at_ms,     c->until_ms, c->version};
    char payload[CP_OUTBOX_PAYLOAD_MAX], key[CP_OUTBOX_KEY_MAX], topic[CP_OUTBOX_TOPIC_MAX + 1];
    int plen = event_encode_redemption(&ev, payload, sizeof payload);
    int klen = event_outbox_key(s->coupon_id, key, sizeof key);
    size_t tlen = strlen(s->topic);
    if (plen < 0 || klen < 0 || tlen > CP_OUTBOX_TOPIC_MAX)
        return CP_ERR_INTERNAL;
    memcpy(topic, s->topic, tlen + 1);
    unsigned long lens[3] = {(unsigned long)tlen, (unsigned long)klen, (unsigned long)plen};
    MYSQL_BIND q[3];
    db_bind_text(&q[0], topic, lens[0], &lens[0], NULL);
    db_bind_text(&q[1], key, lens[1], &lens[1], NULL);
    db_bind_text(&q[2], payload, lens[2], &lens[2], NULL);
    return db_exec(s->db, outbox_sql, q);
}

/* One change onto its row, and its event into the outbox: CP_OK, RACED or a failure. */
static int apply_one(struct checkout_store *s, const struct planned_change *pc)
{
    const struct rkey_change *c = &pc->change;
    int redeemed = c->type == RKEY_CHANGE_REDEEMED, held = c->type == RKEY_CHANGE_HELD;
    int64_t used_at = c->at_ms, hold_until = c->until_ms, version = c->version;
    int64_t row_id = pc->row_id, before = c->version - 1;
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    unsigned long olen = (unsigned long)strlen(c->order_id);
    memcpy(order, c->order_id, olen + 1);
    my_bool no_use = !redeemed, no_hold = !held;
    MYSQL_BIND p[7];
    db_bind_i64(&p[0], &used_at, &no_use);
    db_bind_text(&p[1], order, olen, &olen, &no_use);
    db_bind_text(&p[2], order, olen, &olen, &no_hold);
    db_bind_i64(&p[3], &hold_until, &no_hold);
    db_bind_i64(&p[4], &version, NULL);
    db_bind_i64(&p[5], &row_id, NULL);
    db_bind_i64(&p[6], &before, NULL);
    int rc = db_exec(s->db, apply_sql, p);
    if (rc != CP_OK)
        return rc;
    if (db_affected_rows(s->db) != 1)
        return CHECKOUT_STORE_RACED; /* another applier (a lock lost and taken) moved it */
    return add_event(s, pc);
}

/* db_tx body: lock the rows, plan, apply. Starts from the records each run. */
static int apply_tx(struct db *db, void *arg)
{
    struct checkout_store *s = arg;
    for (size_t i = 0; i < s->nusers; i++) {
        memset(&s->rows[i], 0, sizeof s->rows[i]);
        s->rows[i].user_id = s->users[i];
        int rc = lock_row(db, s->coupon_id, &s->rows[i]);
        if (rc != CP_OK)
            return rc;
    }
    if (checkout_plan_mark(s->c, s->n, s->rows, s->nusers) == 0)
        return CHECKOUT_STORE_NOTHING; /* roll back the locks; duplicates are still dropped */
    for (size_t i = 0; i < s->n; i++) {
        if (s->c[i].action != CHANGE_APPLY)
            continue;
        int rc = apply_one(s, &s->c[i]);
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

int checkout_store_apply(struct checkout_store *s, int64_t coupon_id, struct planned_change *c,
                         size_t n, struct checkout_store_counts *out)
{
    memset(out, 0, sizeof *out);
    if (n > s->max)
        return CP_ERR_LIMIT;
    s->coupon_id = coupon_id;
    s->c = c;
    s->n = n;
    s->nusers = checkout_plan_sort(c, n, s->users);
    int rc = db_tx(s->db, apply_tx, s);
    s->c = NULL;
    if (rc != CP_OK && rc != CHECKOUT_STORE_NOTHING)
        return rc;
    for (size_t i = 0; i < n; i++) {
        out->applied += c[i].action == CHANGE_APPLY;
        out->duplicates += c[i].action == CHANGE_DUPLICATE;
        out->waiting += c[i].action == CHANGE_WAIT;
    }
    return rc;
}

struct coupon_rows {
    int64_t *ids;
    size_t cap, *n;
    int64_t id;
};

static int row_coupon(void *arg)
{
    struct coupon_rows *cr = arg;
    if (*cr->n < cr->cap)
        cr->ids[(*cr->n)++] = cr->id;
    return 0;
}

int checkout_store_coupons(struct checkout_store *s, int64_t *ids, size_t cap, size_t *n)
{
    struct coupon_rows cr = {ids, cap, n, 0};
    int64_t limit = (int64_t)cap;
    MYSQL_BIND p, res;
    db_bind_i64(&p, &limit, NULL);
    db_bind_i64(&res, &cr.id, NULL);
    *n = 0;
    return db_fetch_each(s->db, coupons_sql, &p, &res, row_coupon, &cr);
}
