#include "first.h"

#include "persist.h"

#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "idalloc.h"
#include "issue_insert.h"
#include "issued_outbox.h"
#include "sqltext.h"
#include "timefmt.h"

static const char lock_head[] = "SELECT CAST(id AS SIGNED), 0 FROM coupon WHERE id IN (";
static const char lock_tail[] = ") ORDER BY id FOR UPDATE";
static const char add_issued_sql[] =
    "UPDATE coupon SET issued_quantity = issued_quantity + ? WHERE id = ?";

struct persist {
    const struct cp_conf *conf;
    struct db *db;
    struct coupon_cache *coupons;
    struct idalloc *ids;
    struct issue_insert *rows;
    struct issued_outbox *outbox;
    struct persist_stats stats;
    /* The lock statement's text and parameters. */
    char sql[sizeof lock_head + PERSIST_CHUNK_ROWS * sizeof "?" + sizeof lock_tail];
    MYSQL_BIND binds[PERSIST_CHUNK_ROWS];
    int64_t ints[PERSIST_CHUNK_ROWS];
};

/* One persist_batch call: what its transaction works on. */
struct batch {
    struct persist *p;
    struct persist_item *items;
    const size_t *order; /* items by coupon, stable */
    size_t n;
    int optimistic; /* insert without looking for existing rows first */
    int64_t persisted_at_ms;
    struct persist_stats delta;
};

struct persist *persist_new(const struct cp_conf *conf, struct db *db)
{
    struct persist *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->conf = conf;
    p->db = db;
    p->coupons = coupon_cache_new();
    p->ids = idalloc_new();
    p->rows = issue_insert_new();
    p->outbox = issued_outbox_new();
    if (p->coupons == NULL || p->ids == NULL || p->rows == NULL || p->outbox == NULL) {
        persist_free(p);
        return NULL;
    }
    return p;
}

void persist_free(struct persist *p)
{
    if (p == NULL)
        return;
    coupon_cache_free(p->coupons);
    idalloc_free(p->ids);
    issue_insert_free(p->rows);
    issued_outbox_free(p->outbox);
    free(p);
}

void persist_get_stats(const struct persist *p, struct persist_stats *out)
{
    *out = p->stats;
}

/* Locks the first m coupons of p->ints, in ascending id order. */
static int lock_some(struct persist *p, size_t m)
{
    if (sqltext_list(p->sql, sizeof p->sql, lock_head, "?", m, lock_tail) != CP_OK)
        return CP_ERR_INTERNAL;
    return db_exec(p->db, p->sql, p->binds);
}

/*
 * The batch's coupon rows FOR UPDATE in ascending id order (`order` is sorted by coupon),
 * first: else the INSERT's foreign key takes a shared lock on the row, the UPDATE of
 * issued_quantity then an exclusive one, and two consumers with events of one coupon
 * deadlock, each holding the shared lock. Coupons that do not exist are left out: an
 * absent id would lock the gap new coupons are inserted into.
 */
static int lock_coupons(struct batch *b)
{
    struct persist *p = b->p;
    size_t m = 0;
    for (size_t i = 0; i < b->n; i++) {
        int64_t id = b->items[b->order[i]].ev.coupon_id;
        if (i > 0 && b->items[b->order[i - 1]].ev.coupon_id == id)
            continue;
        struct coupon_validity v;
        int exists = coupon_cache_lookup(p->coupons, p->db, id, &v);
        if (exists < 0)
            return exists;
        if (!exists)
            continue;
        p->ints[m] = id;
        db_bind_i64(&p->binds[m], &p->ints[m], NULL);
        if (++m == PERSIST_CHUNK_ROWS) {
            int rc = lock_some(p, m);
            if (rc != CP_OK)
                return rc;
            m = 0;
        }
    }
    return m > 0 ? lock_some(p, m) : CP_OK;
}

/* One chunk: which rows exist (unless optimistic), the INSERT, the ids, the outbox. */
static int write_chunk(struct batch *b, struct persist_chunk *c, uint64_t *inserted)
{
    struct persist *p = b->p;
    int rc;
    if (!b->optimistic && (rc = issue_insert_mark_existing(p->rows, p->db, c)) != CP_OK)
        return rc;
    int fresh = issue_insert_rows(p->rows, p->db, c, p->conf->code_secret);
    if (fresh <= 0)
        return fresh;
    *inserted += (uint64_t)fresh;
    if ((rc = issue_insert_ids(p->rows, p->db, c, b->optimistic)) != CP_OK)
        return rc;
    return issued_outbox_write(p->outbox, p->db, c, p->conf->kafka_issued_topic);
}

static int add_issued(struct db *db, int64_t coupon_id, int64_t count)
{
    MYSQL_BIND b[2];
    db_bind_i64(&b[0], &count, NULL);
    db_bind_i64(&b[1], &coupon_id, NULL);
    return db_exec(db, add_issued_sql, b);
}

/* One coupon's items, order[from..to): unknown, or inserted chunk by chunk. */
static int write_coupon(struct batch *b, size_t from, size_t to)
{
    int64_t coupon_id = b->items[b->order[from]].ev.coupon_id;
    struct persist_chunk c = {
        .coupon_id = coupon_id, .items = b->items, .persisted_at_ms = b->persisted_at_ms};
    int exists = coupon_cache_lookup(b->p->coupons, b->p->db, coupon_id, &c.validity);
    if (exists < 0)
        return exists;
    if (!exists) {
        for (size_t k = from; k < to; k++)
            b->items[b->order[k]].outcome = PERSIST_UNKNOWN_COUPON;
        b->delta.unknown += to - from;
        return CP_OK;
    }
    /* Chunks of distinct, not-yet-duplicate users of this coupon. */
    uint64_t inserted = 0;
    size_t k = from;
    while (k < to) {
        size_t idx[PERSIST_CHUNK_ROWS], m = 0;
        for (; k < to && m < PERSIST_CHUNK_ROWS; k++)
            if (b->items[b->order[k]].outcome == PERSIST_NEW)
                idx[m++] = b->order[k];
        if (m == 0)
            continue;
        c.idx = idx;
        c.n = m;
        int rc = write_chunk(b, &c, &inserted);
        if (rc != CP_OK)
            return rc;
    }
    b->delta.inserted += inserted;
    return inserted > 0 ? add_issued(b->p->db, coupon_id, (int64_t)inserted) : CP_OK;
}

/* A (coupon, user) seen earlier in the same batch: only the first one counts. */
static void reset_outcomes(struct persist_item *items, const size_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        items[i].outcome = PERSIST_NEW;
        items[i].row_id = 0;
    }
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

/*
 * The batch's transaction (db_tx: run again from the start after a deadlock). Optimistic:
 * a duplicate key (a redelivered event) fails the INSERT with CP_ERR_CONFLICT, and the
 * caller runs the batch again, checking.
 */
static int batch_tx(struct db *db, void *arg)
{
    (void)db;
    struct batch *b = arg;
    reset_outcomes(b->items, b->order, b->n);
    memset(&b->delta, 0, sizeof b->delta);
    int rc = lock_coupons(b);
    for (size_t i = 0; i < b->n && rc == CP_OK;) {
        size_t end = i;
        while (end < b->n &&
               b->items[b->order[end]].ev.coupon_id == b->items[b->order[i]].ev.coupon_id)
            end++;
        rc = write_coupon(b, i, end);
        i = end;
    }
    return rc;
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

int persist_batch(struct persist *p, struct persist_item *items, size_t n, int64_t *persisted_at_ms)
{
    int consecutive = idalloc_consecutive(p->ids, p->db);
    if (consecutive < 0) {
        p->stats.db_errors++;
        return CP_ERR_UNAVAILABLE;
    }
    size_t *order = malloc((n + 1) * sizeof *order);
    if (order == NULL)
        return CP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_by_coupon, items);
    *persisted_at_ms = timefmt_now_ms();
    struct batch b = {.p = p,
                      .items = items,
                      .order = order,
                      .n = n,
                      .optimistic = consecutive == 1,
                      .persisted_at_ms = *persisted_at_ms};
    int rc = db_tx(p->db, batch_tx, &b);
    if (rc == CP_ERR_CONFLICT && b.optimistic) {
        /* Some event of the batch is persisted already (a redelivery): again, checking. */
        p->stats.redelivered_batches++;
        b.optimistic = 0;
        rc = db_tx(p->db, batch_tx, &b);
    }
    if (rc == CP_OK) {
        for (size_t j = 0; j < n; j++)
            if (items[j].outcome == PERSIST_DUPLICATE)
                b.delta.duplicates++;
        p->stats.inserted += b.delta.inserted;
        p->stats.duplicates += b.delta.duplicates;
        p->stats.unknown += b.delta.unknown;
    } else {
        p->stats.db_errors++; /* db logged it; the caller retries the batch */
        rc = CP_ERR_UNAVAILABLE;
    }
    free(order);
    return rc;
}
