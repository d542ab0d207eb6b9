/*
 * db_fake.h - a scripted MariaDB behind struct db_ops, for the unit tests of
 * every module that talks to MariaDB through common/db.
 *
 * A test scripts the answers to the statements it expects, in order: the SQL
 * text each must have, an error number to fail with, the affected rows and
 * insert id, and the result rows (columns "|"-separated, "NULL" for NULL,
 * written into the caller's MYSQL_BINDs as libmariadb would). Every call is
 * logged as one line - "connect", "begin", "commit", "rollback", "autocommit",
 * "ping", "close", "prepare <sql>", "exec <sql> <- p1,p2,..." (integers as
 * numbers, text in single quotes, NULL) - so a case asserts the exact sequence
 * and the values bound. An execute beyond the script, or with other SQL than
 * scripted, is counted in fake.unexpected. Single-threaded; one fake at a time.
 */
#ifndef COUPON_TESTS_DB_FAKE_H
#define COUPON_TESTS_DB_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define FAKE_ER_DUP_ENTRY   1062
#define FAKE_ER_LOCK_WAIT   1205
#define FAKE_ER_DEADLOCK    1213
#define FAKE_CR_SERVER_LOST 2013
#define FAKE_ER_CHECK       4025
#define FAKE_ROWS_MAX       16
#define FAKE_LOG_MAX        256

/* The answer to one execute. */
struct fake_reply {
    const char *sql; /* the text the statement must have; NULL: any */
    unsigned err;    /* the execute fails with this error number (0: succeeds) */
    uint64_t affected, insert_id;
    const char *rows[FAKE_ROWS_MAX]; /* result rows, NULL-terminated */
    unsigned fetch_err;              /* reading past the rows fails with this */
};

struct fake_state {
    int refuse_connect;       /* connects that fail from now on */
    unsigned fail_control[5]; /* the next control of each enum db_control fails with this */
    int closed;               /* the server closed the idle connection */
    int64_t now_ms;           /* the clock of the back-off */
    int connects, open_conns, open_stmts, unexpected;
    char *log[FAKE_LOG_MAX];
    int nlog;
};
extern struct fake_state fake;

extern const struct db_ops fake_db_ops;

/* Forgets the script, the log and every counter. */
void fake_reset(void);
/* A client over the fake (db_free it). */
struct db *fake_db(void);
/* Appends an answer (copied; its strings must outlive the case). */
void fake_script(const struct fake_reply *r);
/* Shorthands: a statement with its rows; one failing with err. */
void fake_rows(const char *sql, const char *const *rows);
void fake_fail(const char *sql, unsigned err);
void fake_ok(const char *sql, uint64_t affected, uint64_t insert_id);
/* Scripted answers not used yet. */
int fake_pending(void);
/* Lines of the log that start with prefix. */
int fake_count(const char *prefix);
/* The k-th "exec ..." line of the log (0 first), "" when there are fewer. */
const char *fake_exec(int k);
/* The log from line `from` on, lines joined by '\n' (static buffer). */
const char *fake_log_from(int from);

#endif
