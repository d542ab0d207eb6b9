#include "first.h"

#include "issued_outbox.h"

#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "event.h"
#include "sqltext.h"

#define COLUMNS 3 /* topic, msg_key, payload */

static const char head[] = "INSERT INTO event_outbox (topic, msg_key, payload) VALUES ";

#define ROW     "(?, ?, ?)"
#define SQL_CAP (sizeof head + PERSIST_CHUNK_ROWS * sizeof ROW) /* "," in NULs */

/* Scratch for one chunk, allocated once with the object. */
struct issued_outbox {
    char sql[SQL_CAP];
    char payloads[PERSIST_CHUNK_ROWS][CP_EVENT_MAX_BYTES];
    unsigned long lens[PERSIST_CHUNK_ROWS * COLUMNS];
    MYSQL_BIND binds[PERSIST_CHUNK_ROWS * COLUMNS];
    char topic[CP_OUTBOX_TOPIC_MAX + 1]; /* the bind API takes char * */
    char key[CP_OUTBOX_KEY_MAX];
};

struct issued_outbox *issued_outbox_new(void)
{
    return calloc(1, sizeof(struct issued_outbox));
}

void issued_outbox_free(struct issued_outbox *o)
{
    free(o);
}

int issued_outbox_write(struct issued_outbox *o, struct db *db, const struct persist_chunk *c,
                        const char *topic)
{
    int klen = event_outbox_key(c->coupon_id, o->key, sizeof o->key);
    size_t tlen = strlen(topic);
    if (klen < 0 || tlen > CP_OUTBOX_TOPIC_MAX)
        return CP_ERR_INTERNAL; /* key or topic too long */
    memcpy(o->topic, topic, tlen + 1);
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct persist_item *it = &c->items[c->idx[i]];
        if (it->outcome != PERSIST_NEW)
            continue;
        int vlen = event_encode_issued(&it->ev, it->row_id, c->persisted_at_ms, o->payloads[k],
                                       sizeof o->payloads[k]);
        if (vlen < 0)
            return CP_ERR_INTERNAL; /* coupon.issued does not fit */
        unsigned long *l = &o->lens[k * COLUMNS];
        MYSQL_BIND *b = &o->binds[k * COLUMNS];
        l[0] = (unsigned long)tlen;
        l[1] = (unsigned long)klen;
        l[2] = (unsigned long)vlen;
        db_bind_text(&b[0], o->topic, l[0], &l[0], NULL);
        db_bind_text(&b[1], o->key, l[1], &l[1], NULL);
        db_bind_text(&b[2], o->payloads[k], l[2], &l[2], NULL);
        k++;
    }
    if (k == 0)
        return CP_OK;
    int rc = sqltext_list(o->sql, sizeof o->sql, head, ROW, k, "");
    if (rc != CP_OK)
        return CP_ERR_INTERNAL;
    if ((rc = db_exec(db, o->sql, o->binds)) != CP_OK)
        return rc;
    return db_affected_rows(db) == k ? CP_OK : CP_ERR_INTERNAL;
}
