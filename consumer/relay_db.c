#include "first.h"

#include "relay_db.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "event.h"
#include "leader.h"
#include "log.h"
#include "sqltext.h"

static const char fetch_sql[] = "SELECT CAST(id AS SIGNED), topic, msg_key, payload "
                                "FROM event_outbox ORDER BY id LIMIT ?";
static const char delete_head[] = "DELETE FROM event_outbox WHERE id IN (";

struct relay_db {
    struct db *db;
    struct leader *lock; /* on db */
    char sql[sizeof delete_head + RELAY_DELETE_CHUNK * sizeof "?"];
    MYSQL_BIND binds[RELAY_DELETE_CHUNK];
    int64_t ids[RELAY_DELETE_CHUNK];
};

struct relay_db *relay_db_new(struct db *db)
{
    struct relay_db *r = calloc(1, sizeof *r);
    if (r != NULL && (r->lock = leader_new(db, "coupon_outbox_relay", "relay")) == NULL) {
        free(r);
        return NULL;
    }
    if (r != NULL)
        r->db = db;
    return r;
}

void relay_db_free(struct relay_db *r)
{
    if (r != NULL)
        leader_free(r->lock);
    free(r);
}

int relay_db_leading(const struct relay_db *r)
{
    return leader_held(r->lock);
}

int relay_db_lead(struct relay_db *r)
{
    if (leader_held(r->lock))
        return CP_OK;
    int rc = leader_check(r->lock);
    return rc == 1 ? CP_OK : rc == 0 ? CP_ERR_CONFLICT : CP_ERR_UNAVAILABLE;
}

/* One row of the read, and where it goes. */
struct fetch {
    struct relay_row *rows;
    size_t cap, *n;
    int64_t id;
    char topic[CP_OUTBOX_TOPIC_MAX + 1], key[CP_OUTBOX_KEY_MAX], payload[CP_OUTBOX_PAYLOAD_MAX];
    unsigned long tlen, klen, plen;
};

static int fetch_row(void *arg)
{
    struct fetch *f = arg;
    if (*f->n == f->cap)
        return CP_OK; /* cannot happen with LIMIT; the rest is discarded */
    struct relay_row *row = &f->rows[*f->n];
    int vlen =
        f->tlen < sizeof row->topic && f->klen <= sizeof row->key && f->plen <= sizeof f->payload
            ? event_stamp(f->id, f->payload, f->plen, row->value, sizeof row->value)
            : CP_ERR_LIMIT;
    if (vlen < 0) {
        log_error("relay: outbox row %" PRId64 " is malformed (%s); not published", f->id,
                  cp_strerror(vlen));
        return 1; /* stop: the rows before it go */
    }
    row->id = f->id;
    memcpy(row->topic, f->topic, f->tlen);
    row->topic[f->tlen] = '\0';
    memcpy(row->key, f->key, f->klen);
    row->klen = f->klen;
    row->vlen = (size_t)vlen;
    row->state = -1;
    (*f->n)++;
    return CP_OK;
}

int relay_db_fetch(struct relay_db *r, struct relay_row *rows, size_t cap, size_t *n)
{
    *n = 0;
    struct fetch f = {.rows = rows, .cap = cap, .n = n};
    int64_t limit = (int64_t)cap;
    MYSQL_BIND p, res[4];
    db_bind_i64(&p, &limit, NULL);
    db_bind_i64(&res[0], &f.id, NULL);
    db_bind_text(&res[1], f.topic, sizeof f.topic, &f.tlen, NULL);
    db_bind_text(&res[2], f.key, sizeof f.key, &f.klen, NULL);
    db_bind_text(&res[3], f.payload, sizeof f.payload, &f.plen, NULL);
    res[2].buffer_type = res[3].buffer_type = MYSQL_TYPE_BLOB;
    int rc = db_fetch_each(r->db, fetch_sql, &p, res, fetch_row, &f);
    return rc < 0 ? CP_ERR_UNAVAILABLE : CP_OK;
}

int relay_db_delete(struct relay_db *r, const struct relay_row *rows, size_t n, uint64_t *deleted)
{
    *deleted = 0;
    for (size_t i = 0; i < n; i += RELAY_DELETE_CHUNK) {
        size_t m = n - i < RELAY_DELETE_CHUNK ? n - i : RELAY_DELETE_CHUNK;
        for (size_t k = 0; k < m; k++) {
            r->ids[k] = rows[i + k].id;
            db_bind_i64(&r->binds[k], &r->ids[k], NULL);
        }
        if (sqltext_list(r->sql, sizeof r->sql, delete_head, "?", m, ")") != CP_OK ||
            db_exec(r->db, r->sql, r->binds) != CP_OK)
            return CP_ERR_UNAVAILABLE;
        uint64_t affected = db_affected_rows(r->db);
        if (affected != m)
            log_warn("relay: deleted %" PRIu64 " of %zu outbox rows (another relay took "
                     "over meanwhile?)",
                     affected, m);
        *deleted += affected;
    }
    return CP_OK;
}
