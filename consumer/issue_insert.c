#include "first.h"

#include "issue_insert.h"

#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "issuecode.h"
#include "sqltext.h"

#define COLUMNS 8 /* of one row of the INSERT */

static const char insert_head[] = "INSERT INTO coupon_issue (coupon_id, user_id, sequence, "
                                  "event_id, issued_at, persisted_at, code, usable_until) VALUES ";
static const char insert_row[] = "(?, ?, ?, ?, FROM_UNIXTIME(? / 1000), FROM_UNIXTIME(? / 1000), "
                                 "?, FROM_UNIXTIME(? / 1000))";
static const char existing_head[] =
    "SELECT user_id, 0 FROM coupon_issue WHERE coupon_id = ? AND user_id IN (";
static const char ids_head[] =
    "SELECT user_id, id FROM coupon_issue WHERE coupon_id = ? AND user_id IN (";

#define SQL_CAP (sizeof insert_head + PERSIST_CHUNK_ROWS * sizeof insert_row) /* "," in NULs */

/* Scratch for one chunk, allocated once with the object (about 0.5 MiB). */
struct issue_insert {
    char sql[SQL_CAP]; /* statement text */
    MYSQL_BIND binds[PERSIST_CHUNK_ROWS * COLUMNS + 1];
    int64_t ints[PERSIST_CHUNK_ROWS * COLUMNS + 1];
    unsigned long id_lens[PERSIST_CHUNK_ROWS];
    /* Per row: its code, and whether usable_until is NULL. */
    char codes[PERSIST_CHUNK_ROWS][CP_ISSUE_CODE_CHARS + 1];
    unsigned long code_lens[PERSIST_CHUNK_ROWS];
    my_bool until_null[PERSIST_CHUNK_ROWS];
};

struct issue_insert *issue_insert_new(void)
{
    return calloc(1, sizeof(struct issue_insert));
}

void issue_insert_free(struct issue_insert *w)
{
    free(w);
}

/* A result row of (user_id, value) and what to do with it. */
struct user_rows {
    struct persist_chunk *c;
    int64_t user_id, value;
    int set_ids; /* 1: value is the new row's id; 0: the row exists */
};

static struct persist_item *find_user(const struct persist_chunk *c, int64_t user_id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->items[c->idx[i]].ev.user_id == user_id)
            return &c->items[c->idx[i]];
    return NULL;
}

static int user_row(void *arg)
{
    struct user_rows *u = arg;
    struct persist_item *it = find_user(u->c, u->user_id);
    if (it != NULL && it->outcome == PERSIST_NEW) {
        if (u->set_ids)
            it->row_id = u->value;
        else
            it->outcome = PERSIST_DUPLICATE;
    }
    return CP_OK;
}

/* SELECT head ... IN (the users of the chunk's PERSIST_NEW items), each row to user_row. */
static int select_users(struct issue_insert *w, struct db *db, struct persist_chunk *c,
                        const char *head, int set_ids)
{
    size_t k = 0;
    w->ints[0] = c->coupon_id;
    db_bind_i64(&w->binds[0], &w->ints[0], NULL);
    for (size_t i = 0; i < c->n; i++) {
        const struct persist_item *it = &c->items[c->idx[i]];
        if (it->outcome != PERSIST_NEW)
            continue;
        w->ints[1 + k] = it->ev.user_id;
        db_bind_i64(&w->binds[1 + k], &w->ints[1 + k], NULL);
        k++;
    }
    if (k == 0)
        return CP_OK;
    int rc = sqltext_list(w->sql, sizeof w->sql, head, "?", k, ")");
    if (rc != CP_OK)
        return CP_ERR_INTERNAL;
    struct user_rows u = {.c = c, .set_ids = set_ids};
    MYSQL_BIND res[2];
    db_bind_i64(&res[0], &u.user_id, NULL);
    db_bind_i64(&res[1], &u.value, NULL);
    return db_fetch_each(db, w->sql, w->binds, res, user_row, &u);
}

int issue_insert_mark_existing(struct issue_insert *w, struct db *db, struct persist_chunk *c)
{
    return select_users(w, db, c, existing_head, 0);
}

/* Binds row k of the INSERT to item it. */
static int bind_row(struct issue_insert *w, const struct persist_chunk *c, size_t k,
                    struct persist_item *it, const char *secret)
{
    if (issuecode_compute(secret, strlen(secret), c->coupon_id, it->ev.user_id, it->ev.sequence,
                          w->codes[k]) != CP_OK)
        return CP_ERR_INTERNAL; /* no code_secret: conf_load refuses that */
    MYSQL_BIND *b = &w->binds[k * COLUMNS];
    int64_t *v = &w->ints[k * COLUMNS];
    v[0] = c->coupon_id;
    v[1] = it->ev.user_id;
    v[2] = it->ev.sequence;
    v[3] = it->ev.issued_at_ms;
    v[4] = c->persisted_at_ms;
    v[5] = coupon_validity_until(&c->validity, it->ev.issued_at_ms);
    w->id_lens[k] = CP_EVENT_ID_HEX;
    w->code_lens[k] = CP_ISSUE_CODE_CHARS;
    w->until_null[k] = v[5] < 0;
    db_bind_i64(&b[0], &v[0], NULL);
    db_bind_i64(&b[1], &v[1], NULL);
    db_bind_i64(&b[2], &v[2], NULL);
    db_bind_text(&b[3], it->ev.event_id, CP_EVENT_ID_HEX, &w->id_lens[k], NULL);
    db_bind_i64(&b[4], &v[3], NULL);
    db_bind_i64(&b[5], &v[4], NULL);
    db_bind_text(&b[6], w->codes[k], CP_ISSUE_CODE_CHARS, &w->code_lens[k], NULL);
    db_bind_i64(&b[7], &v[5], &w->until_null[k]);
    return CP_OK;
}

int issue_insert_rows(struct issue_insert *w, struct db *db, struct persist_chunk *c,
                      const char *code_secret)
{
    size_t fresh = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct persist_item *it = &c->items[c->idx[i]];
        if (it->outcome != PERSIST_NEW)
            continue;
        int rc = bind_row(w, c, fresh++, it, code_secret);
        if (rc != CP_OK)
            return rc;
    }
    if (fresh == 0)
        return 0;
    int rc = sqltext_list(w->sql, sizeof w->sql, insert_head, insert_row, fresh, "");
    if (rc != CP_OK)
        return CP_ERR_INTERNAL;
    if ((rc = db_exec(db, w->sql, w->binds)) != CP_OK)
        return rc;
    if (db_affected_rows(db) != fresh)
        return CP_ERR_INTERNAL; /* the row count differs from the rows sent */
    return (int)fresh;
}

int issue_insert_ids(struct issue_insert *w, struct db *db, struct persist_chunk *c,
                     int consecutive)
{
    if (!consecutive)
        return select_users(w, db, c, ids_head, 1);
    /* One simple multi-row INSERT with consecutive ids: rows in the order sent. */
    uint64_t id = db_insert_id(db);
    for (size_t i = 0; i < c->n; i++)
        if (c->items[c->idx[i]].outcome == PERSIST_NEW)
            c->items[c->idx[i]].row_id = (int64_t)id++;
    return CP_OK;
}
