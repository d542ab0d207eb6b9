#include "first.h"

#include "leader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "cp_err.h"
#include "db.h"
#include "log.h"

#define LOCK_NAME_MAX 64 /* MariaDB's limit on a lock name */
#define DUTY_MAX      32

/* Held by this session already (a check after the first), else taken if free: 1 / 0. */
static const char check_sql[] = "SELECT IF(IS_USED_LOCK(?) = CONNECTION_ID(), 1, GET_LOCK(?, 0))";

struct leader {
    const struct cp_conf *conf;
    MYSQL *db;
    int held; /* as of the last check */
    char name[LOCK_NAME_MAX + 1];
    unsigned long name_len;
    char duty[DUTY_MAX];
};

struct leader *leader_new(const struct cp_conf *conf, const char *name, const char *duty)
{
    if (strlen(name) > LOCK_NAME_MAX)
        return NULL;
    struct leader *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->conf = conf;
    l->name_len = (unsigned long)strlen(name);
    memcpy(l->name, name, l->name_len + 1);
    snprintf(l->duty, sizeof l->duty, "%s", duty);
    return l;
}

/* Closes the connection, and with it the lock, after the failure `why`. */
static void drop(struct leader *l, const char *why)
{
    log_warn("%s: %s%s", l->duty, why,
             l->held ? "; lock released, another consumer takes over" : "");
    l->held = 0;
    if (l->db != NULL)
        mysql_close(l->db);
    l->db = NULL;
}

void leader_free(struct leader *l)
{
    if (l == NULL)
        return;
    if (l->db != NULL)
        mysql_close(l->db);
    free(l);
}

int leader_check(struct leader *l)
{
    char err[512];
    if (l->db == NULL && db_connect(l->conf, &l->db, err, sizeof err) != CP_OK) {
        l->db = NULL;
        log_warn("%s: %s", l->duty, err);
        return CP_ERR_UNAVAILABLE;
    }
    MYSQL_STMT *st = mysql_stmt_init(l->db);
    if (st == NULL) {
        drop(l, "out of memory");
        return CP_ERR_UNAVAILABLE;
    }
    MYSQL_BIND params[2], res;
    unsigned long len = l->name_len;
    db_bind_text(&params[0], l->name, sizeof l->name, &len, NULL);
    db_bind_text(&params[1], l->name, sizeof l->name, &len, NULL);
    int64_t got = 0;
    my_bool is_null = 0;
    db_bind_i64(&res, &got, &is_null);
    if (mysql_stmt_prepare(st, check_sql, sizeof check_sql - 1) != 0 ||
        mysql_stmt_bind_param(st, params) != 0 || mysql_stmt_execute(st) != 0 ||
        mysql_stmt_bind_result(st, &res) != 0 || mysql_stmt_fetch(st) != 0) {
        snprintf(err, sizeof err, "GET_LOCK: %s", mysql_stmt_error(st));
        mysql_stmt_close(st);
        drop(l, err);
        return CP_ERR_UNAVAILABLE;
    }
    mysql_stmt_close(st);
    int rc = !is_null && got == 1;
    if (rc && !l->held)
        log_info("%s: holding the lock %s", l->duty, l->name);
    else if (!rc && l->held)
        log_warn("%s: lock %s taken by another session", l->duty, l->name);
    l->held = rc;
    return rc;
}
