#include "first.h"

#include "issued_outbox.h"

#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "event.h"
#include "sqltext.h"

#define COLUMNS 3 /* topic, msg_key, payload */

static const char head[] = "INSERT INTO event_outbox (topic, msg_key, payload) VALUES ";

struct issued_outbox {
    const struct cp_conf *conf;
    char *sql;
    size_t sql_cap;
    char (*payloads)[CP_EVENT_MAX_BYTES]; /* per row */
    unsigned long *lens;                  /* COLUMNS per row */
    MYSQL_BIND *binds;
    char topic[CP_OUTBOX_TOPIC_MAX + 1]; /* the bind API takes char * */
    char key[CP_OUTBOX_KEY_MAX];
};

struct issued_outbox *issued_outbox_new(const struct cp_conf *conf)
{
    struct issued_outbox *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    size_t rows = PERSIST_CHUNK_ROWS;
    o->conf = conf;
    o->sql_cap = sqltext_size(head, "(?, ?, ?)", rows, "");
    o->sql = malloc(o->sql_cap);
    o->payloads = calloc(rows, sizeof *o->payloads);
    o->lens = calloc(rows * COLUMNS, sizeof *o->lens);
    o->binds = calloc(rows * COLUMNS, sizeof *o->binds);
    if (o->sql == NULL || o->payloads == NULL || o->lens == NULL || o->binds == NULL) {
        issued_outbox_free(o);
        return NULL;
    }
    return o;
}

void issued_outbox_free(struct issued_outbox *o)
{
    if (o == NULL)
        return;
    free(o->sql);
    free(o->payloads);
    free(o->lens);
    free(o->binds);
    free(o);
}

int issued_outbox_write(struct issued_outbox *o, struct db *db, const struct persist_chunk *c)
{
    int klen = event_outbox_key(c->coupon_id, o->key, sizeof o->key);
    size_t tlen = strlen(o->conf->kafka_issued_topic);
    if (klen < 0 || tlen > CP_OUTBOX_TOPIC_MAX)
        return CP_ERR_INTERNAL; /* key or topic too long */
    memcpy(o->topic, o->conf->kafka_issued_topic, tlen + 1);
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
    int rc = sqltext_list(o->sql, o->sql_cap, head, "(?, ?, ?)", k, "");
    if (rc != CP_OK)
        return CP_ERR_INTERNAL;
    if ((rc = db_exec(db, o->sql, o->binds)) != CP_OK)
        return rc;
    return db_affected_rows(db) == k ? CP_OK : CP_ERR_INTERNAL;
}
