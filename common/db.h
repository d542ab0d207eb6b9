/*
 * db.h - the MariaDB client of one thread (libmariadb behind struct db_ops).
 *
 * A struct db is one connection, opened lazily (db_open does no I/O) the one
 * way the schema expects: utf8mb4, time_zone '+00:00' (every DATETIME is UTC),
 * autocommit on, no silent reconnect (it would drop a transaction), and
 * connect/read/write time-outs from the configuration. A connect that failed
 * is not tried again for DB_BACKOFF_MS: until then every call returns
 * CP_ERR_UNAVAILABLE at once, so a dead server costs one bounded attempt, not
 * one per request.
 *
 * All SQL goes through prepared statements, prepared once per connection and
 * kept in a small cache keyed by the statement's text (the DB_STMT_CACHE most
 * recently used; a text built per call - an IN list - is keyed like any other).
 * A connection error (server gone, lost, shut down, read-only, any client-side
 * CR_* error) drops the connection and its statements, so the next call
 * reconnects; a statement's own error keeps them. Results are read into the
 * caller's MYSQL_BINDs (db_bind_*): one row (db_fetch_one) or one callback per
 * row (db_fetch_each). Codes, the same for every caller:
 *   CP_ERR_UNAVAILABLE  the connection failed or is in its back-off, or the
 *                       server refused the statement for another reason
 *   CP_ERR_CONFLICT     duplicate key (1062)
 *   CP_ERR_INVALID      the server's checks refused a value (CHECK, too long,
 *                       out of range)
 *   CP_ERR_TIMEOUT      deadlock (1213) or lock wait time-out (1205) after
 *                       DB_ATTEMPTS runs
 * A statement alone (autocommit) that InnoDB chose as a deadlock victim runs
 * again, at most DB_ATTEMPTS times. Inside db_tx InnoDB rolls the whole
 * transaction back on a deadlock or lock wait time-out, so db_tx runs the
 * transaction's function again from its start, at most DB_ATTEMPTS times.
 * Failures are logged here, once, where they happen (not the expected
 * duplicate key or refused value); db_errstr keeps the last one's text.
 *
 * The connection's operations go through struct db_ops, so callers are
 * unit-tested over a scripted fake (tests/unit/db_fake.h); db_mariadb_ops is
 * libmariadb. A struct db, its statements and its results belong to one thread
 * at a time.
 */
#ifndef COUPON_DB_H
#define COUPON_DB_H

#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "conf.h"

#define DB_BACKOFF_MS  250 /* no connect attempt this long after a failed one */
#define DB_STMT_CACHE  32  /* prepared statements kept per connection */
#define DB_ATTEMPTS    3   /* runs of a deadlocked statement or transaction */
#define DB_ERRSTR_SIZE 512

enum db_control { DB_BEGIN, DB_COMMIT, DB_ROLLBACK, DB_AUTOCOMMIT, DB_PING };

/*
 * One connection as a struct db uses it. Each call returning unsigned returns
 * 0, or the server's (or client library's) error number with its text in
 * errbuf.
 */
struct db_ops {
    /* Opens a connection: NULL with the reason in errbuf. */
    void *(*connect)(const void *opaque, char *errbuf, size_t errlen);
    void (*close)(void *conn);
    /* 1 when the server closed the idle connection (a restart). */
    int (*closed)(void *conn);
    /* DB_BEGIN: autocommit off; DB_COMMIT, DB_ROLLBACK; DB_AUTOCOMMIT: back on; DB_PING. */
    unsigned (*control)(void *conn, enum db_control what, char *errbuf, size_t errlen);
    /* A prepared statement, or NULL with *err set. */
    void *(*prepare)(void *conn, const char *sql, size_t len, unsigned *err, char *errbuf,
                     size_t errlen);
    /* Binds params (NULL: none) and executes; *affected and *insert_id of the statement. */
    unsigned (*execute)(void *stmt, MYSQL_BIND *params, uint64_t *affected, uint64_t *insert_id,
                        char *errbuf, size_t errlen);
    /* The next result row into res: *row 1, or 0 after the last one. */
    unsigned (*fetch)(void *stmt, MYSQL_BIND *res, int *row, char *errbuf, size_t errlen);
    /* Discards the rows of the result not read. */
    void (*end)(void *stmt);
    void (*stmt_close)(void *stmt);
    /* The monotonic clock of the back-off, in milliseconds. */
    int64_t (*now_ms)(const void *opaque);
};

/* libmariadb; opaque is the const struct cp_conf *. */
extern const struct db_ops db_mariadb_ops;

struct db;

/* A client of the configured server; no I/O. CP_OK and *out, or CP_ERR_NOMEM with the
 * reason in errbuf. `conf` must outlive the client. */
int db_open(const struct cp_conf *conf, struct db **out, char *errbuf, size_t errlen);
/* The same over other operations (unit tests: the fake). */
int db_open_ops(const struct db_ops *ops, const void *opaque, struct db **out, char *errbuf,
                size_t errlen);
/* Closes the connection and frees the client; NULL is a no-op. */
void db_free(struct db *db);

/* Runs a statement with params (NULL: none): CP_OK or a code above. */
int db_exec(struct db *db, const char *sql, MYSQL_BIND *params);
/* Rows the last db_exec changed, and the first id its INSERT generated. */
uint64_t db_affected_rows(const struct db *db);
uint64_t db_insert_id(const struct db *db);

/* The first row into res (the rest discarded): CP_OK, CP_ERR_NOT_FOUND (no row), or a
 * code above. */
int db_fetch_one(struct db *db, const char *sql, MYSQL_BIND *params, MYSQL_BIND *res);
/* fn(arg) after each row is read into res; a non-zero return stops (the rest is
 * discarded) and is returned. fn must not use db: the result is still being read. */
typedef int (*db_row_fn)(void *arg);
int db_fetch_each(struct db *db, const char *sql, MYSQL_BIND *params, MYSQL_BIND *res, db_row_fn fn,
                  void *arg);

/*
 * One transaction: fn(db, arg) between BEGIN and COMMIT. fn returns CP_OK (commit),
 * a positive value (roll back and return it: "nothing to commit") or a negative code
 * (roll back and return it). A deadlock or lock wait time-out in any of its statements
 * rolls back and runs fn again (DB_ATTEMPTS runs, then CP_ERR_TIMEOUT); fn must
 * therefore start from the same state each run. The connection is back in autocommit
 * on every path.
 */
typedef int (*db_tx_fn)(struct db *db, void *arg);
int db_tx(struct db *db, db_tx_fn fn, void *arg);

/* Connects if need be and pings the server: CP_OK or CP_ERR_UNAVAILABLE. */
int db_ping(struct db *db);
/* Before a request: drops the idle connection when the server closed it (a restart),
 * so no statement is sent on a dead socket; the next call connects at once. */
void db_drop_closed(struct db *db);
/* Which connection is open: a number that changes with each new connection, 0 when
 * none. What lives with a session (a named lock, a setting asked once) is tied to it. */
uint64_t db_session(const struct db *db);

/* Text and error number of the last failure ("" and 0 before any). */
const char *db_errstr(const struct db *db);
unsigned db_errno(const struct db *db);

/* Prepared-statement bindings (every field not named is zeroed). is_null may be NULL. */
void db_bind_i64(MYSQL_BIND *b, int64_t *v, my_bool *is_null);
/* A string: buffer of cap bytes, *len its length (in: for parameters; out: for results). */
void db_bind_text(MYSQL_BIND *b, char *buf, size_t cap, unsigned long *len, my_bool *is_null);
/* After a fetch: terminates a text result of db_bind_text(b, buf, cap, &len, ...) - the
 * bind API does not - cutting one that did not fit. */
void db_text_end(char *buf, size_t cap, unsigned long len);

/* The client library's process and thread set-up and tear-down. */
int db_library_init(void);
void db_library_end(void);
int db_thread_init(void);
void db_thread_end(void);

#endif
