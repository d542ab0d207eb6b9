/*
 * db.h - MariaDB connections for every program (libmariadb).
 *
 * db_connect() opens a session configured the one way the schema expects:
 * utf8mb4, time_zone '+00:00' (all DATETIMEs are UTC), autocommit on, and
 * connect/read/write timeouts from the configuration so a dead server costs
 * a bounded wait. A MYSQL handle is used by one thread at a time; callers keep
 * one per thread and call db_connect() again after a connection error
 * (db_is_connection_error()). All statements go through prepared statements.
 */
#ifndef COUPON_DB_H
#define COUPON_DB_H

#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "conf.h"

/* On success *out is a connected handle (mysql_close it). On failure returns
 * CP_ERR_UNAVAILABLE and writes the server's message into errbuf. */
int db_connect(const struct cp_conf *conf, MYSQL **out, char *errbuf, size_t errlen);

/* True for errors after which the connection must be reopened (server gone,
 * lost, read-only, ...) as opposed to errors of the statement itself. */
int db_is_connection_error(unsigned int mysql_errno_value);

/* Prepared-statement bindings (every field not named is zeroed). is_null may be NULL. */
void db_bind_i64(MYSQL_BIND *b, int64_t *v, my_bool *is_null);
/* A string: buffer of cap bytes, *len its length (in: for parameters; out: for results). */
void db_bind_text(MYSQL_BIND *b, char *buf, size_t cap, unsigned long *len, my_bool *is_null);

#endif
