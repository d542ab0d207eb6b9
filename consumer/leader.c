#include "first.h"

#include "leader.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "db.h"
#include "log.h"

#define LOCK_NAME_MAX 64 /* MariaDB's limit on a lock name */
#define DUTY_MAX      32

/* Held by this session already (a check after the first), else taken if free: 1 / 0. */
static const char check_sql[] = "SELECT IF(IS_USED_LOCK(?) = CONNECTION_ID(), 1, GET_LOCK(?, 0))";

struct leader {
    struct db *db;
    int held;         /* as of the last check */
    uint64_t session; /* the connection it was held on */
    char name[LOCK_NAME_MAX + 1];
    unsigned long name_len;
    char duty[DUTY_MAX];
};

struct leader *leader_new(struct db *db, const char *name, const char *duty)
{
    struct leader *l = strlen(name) <= LOCK_NAME_MAX ? calloc(1, sizeof *l) : NULL;
    if (l == NULL)
        return NULL;
    l->db = db;
    l->name_len = (unsigned long)strlen(name);
    memcpy(l->name, name, l->name_len + 1);
    snprintf(l->duty, sizeof l->duty, "%s", duty);
    return l;
}

void leader_free(struct leader *l)
{
    free(l);
}

int leader_held(const struct leader *l)
{
    return l->held && l->session == db_session(l->db);
}

int leader_check(struct leader *l)
{
    MYSQL_BIND params[2], res;
    unsigned long len = l->name_len;
    db_bind_text(&params[0], l->name, sizeof l->name, &len, NULL);
    db_bind_text(&params[1], l->name, sizeof l->name, &len, NULL);
    int64_t got = 0;
    my_bool is_null = 0;
    db_bind_i64(&res, &got, &is_null);
    int rc = db_fetch_one(l->db, check_sql, params, &res);
    if (l->held && !leader_held(l)) {
        /* The connection went (db logged why), and the lock with it. */
        log_warn("%s: lock %s released with its connection, another consumer takes over", l->duty,
                 l->name);
        l->held = 0;
    }
    if (rc != CP_OK)
        return CP_ERR_UNAVAILABLE;
    int holds = !is_null && got == 1;
    if (holds && !l->held)
        log_info("%s: holding the lock %s", l->duty, l->name);
    else if (!holds && l->held)
        log_warn("%s: lock %s taken by another session", l->duty, l->name);
    l->held = holds;
    l->session = db_session(l->db);
    return holds;
}
