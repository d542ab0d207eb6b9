#include "first.h"

#include "db.h"

#include <errmsg.h>
#include <mysqld_error.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cp_err.h"
#include "log.h"

#define ER_CHECK_CONSTRAINT_CODE 4025 /* MariaDB's CHECK constraint failed */

/* A prepared statement of the connection, keyed by its text. */
struct cached {
    char *sql; /* NULL: free slot */
    size_t len;
    uint64_t hash;
    void *stmt;
    uint64_t used; /* db->tick when last used: the least recent goes first */
};

struct db {
    const struct db_ops *ops;
    const void *opaque;
    void *conn;
    uint64_t session, sessions; /* the open one (0: none); opened so far */
    int64_t retry_at_ms;        /* monotonic; no connect before */
    int in_tx;
    int tx_retry; /* a statement of the transaction was a deadlock victim */
    uint64_t affected, insert_id;
    unsigned err;
    struct cached cache[DB_STMT_CACHE];
    uint64_t tick;
    char errstr[DB_ERRSTR_SIZE];
};

/* ---- libmariadb ---- */

/* A statement and whether its result is bound to the current fetch's buffers. */
struct mstmt {
    MYSQL_STMT *st;
    MYSQL_BIND *bound;
};

static unsigned conn_err(MYSQL *m, char *errbuf, size_t errlen)
{
    snprintf(errbuf, errlen, "%s", mysql_error(m));
    unsigned e = mysql_errno(m);
    return e != 0 ? e : CR_UNKNOWN_ERROR;
}

static unsigned stmt_err(struct mstmt *s, char *errbuf, size_t errlen)
{
    snprintf(errbuf, errlen, "%s", mysql_stmt_error(s->st));
    unsigned e = mysql_stmt_errno(s->st);
    return e != 0 ? e : CR_UNKNOWN_ERROR;
}

static void *m_connect(const void *opaque, char *errbuf, size_t errlen)
{
    const struct cp_conf *conf = opaque;
    MYSQL *m = mysql_init(NULL);
    if (m == NULL) {
        snprintf(errbuf, errlen, "mysql_init: out of memory");
        return NULL;
    }
    unsigned int timeout_s = (unsigned int)((conf->db_timeout_ms + 999) / 1000);
    my_bool off = 0;
    /* Reconnecting behind our back would silently drop a transaction. */
    if (mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s) ||
        mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout_s) ||
        mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout_s) ||
        mysql_options(m, MYSQL_OPT_RECONNECT, &off) ||
        mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4") ||
        mysql_options(m, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'")) {
        snprintf(errbuf, errlen, "mysql_options: %s", mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    const char *sock = conf->db_socket[0] ? conf->db_socket : NULL;
    if (mysql_real_connect(m, conf->db_host, conf->db_user, conf->db_password, conf->db_name,
                           (unsigned int)conf->db_port, sock, 0) == NULL) {
        snprintf(errbuf, errlen, "connect to MariaDB %s:%d: %s", conf->db_host, conf->db_port,
                 mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

static void m_close(void *conn)
{
    mysql_close(conn);
}

/* Readable or hung up while idle between requests: the server closed it. */
static int m_closed(void *conn)
{
    struct pollfd pfd = {.fd = (int)mysql_get_socket(conn), .events = POLLIN | POLLRDHUP};
    return poll(&pfd, 1, 0) != 0;
}

static unsigned m_control(void *conn, enum db_control what, char *errbuf, size_t errlen)
{
    MYSQL *m = conn;
    int failed = 0;
    switch (what) {
    case DB_BEGIN: failed = mysql_autocommit(m, 0) != 0; break;
    case DB_COMMIT: failed = mysql_commit(m) != 0; break;
    case DB_ROLLBACK: failed = mysql_rollback(m) != 0; break;
    case DB_AUTOCOMMIT: failed = mysql_autocommit(m, 1) != 0; break;
    case DB_PING: failed = mysql_ping(m) != 0; break;
    }
    return failed ? conn_err(m, errbuf, errlen) : 0;
}

static void *m_prepare(void *conn, const char *sql, size_t len, unsigned *err, char *errbuf,
                       size_t errlen)
{
    struct mstmt *s = calloc(1, sizeof *s);
    if (s == NULL || (s->st = mysql_stmt_init(conn)) == NULL) {
        free(s);
        *err = CR_OUT_OF_MEMORY;
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    if (mysql_stmt_prepare(s->st, sql, len) != 0) {
        *err = stmt_err(s, errbuf, errlen);
        mysql_stmt_close(s->st);
        free(s);
        return NULL;
    }
    return s;
}

static unsigned m_execute(void *stmt, MYSQL_BIND *params, uint64_t *affected, uint64_t *insert_id,
                          char *errbuf, size_t errlen)
{
    struct mstmt *s = stmt;
    s->bound = NULL;
    if ((params != NULL && mysql_stmt_bind_param(s->st, params) != 0) ||
        mysql_stmt_execute(s->st) != 0)
        return stmt_err(s, errbuf, errlen);
    *affected = (uint64_t)mysql_stmt_affected_rows(s->st);
    *insert_id = (uint64_t)mysql_stmt_insert_id(s->st);
    return 0;
}

static unsigned m_fetch(void *stmt, MYSQL_BIND *res, int *row, char *errbuf, size_t errlen)
{
    struct mstmt *s = stmt;
    if (s->bound != res) {
        if (mysql_stmt_bind_result(s->st, res) != 0)
            return stmt_err(s, errbuf, errlen);
        s->bound = res;
    }
    int f = mysql_stmt_fetch(s->st);
    /* A truncated column is a row: its *length says how long the value was. */
    *row = f == 0 || f == MYSQL_DATA_TRUNCATED;
    if (*row || f == MYSQL_NO_DATA)
        return 0;
    return stmt_err(s, errbuf, errlen);
}

static void m_end(void *stmt)
{
    struct mstmt *s = stmt;
    (void)mysql_stmt_free_result(s->st);
}

static void m_stmt_close(void *stmt)
{
    struct mstmt *s = stmt;
    mysql_stmt_close(s->st);
    free(s);
}

static int64_t m_now_ms(const void *opaque)
{
    (void)opaque;
    return clock_mono_ms();
}

const struct db_ops db_mariadb_ops = {
    .connect = m_connect,
    .close = m_close,
    .closed = m_closed,
    .control = m_control,
    .prepare = m_prepare,
    .execute = m_execute,
    .fetch = m_fetch,
    .end = m_end,
    .stmt_close = m_stmt_close,
    .now_ms = m_now_ms,
};

/* ---- the client ---- */

int db_open(const struct cp_conf *conf, struct db **out, char *errbuf, size_t errlen)
{
    return db_open_ops(&db_mariadb_ops, conf, out, errbuf, errlen);
}

int db_open_ops(const struct db_ops *ops, const void *opaque, struct db **out, char *errbuf,
                size_t errlen)
{
    *out = calloc(1, sizeof **out);
    if (*out == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return CP_ERR_NOMEM;
    }
    (*out)->ops = ops;
    (*out)->opaque = opaque;
    return CP_OK;
}

static void forget_stmt(struct db *db, struct cached *c)
{
    if (c->stmt != NULL && db->conn != NULL)
        db->ops->stmt_close(c->stmt);
    free(c->sql);
    memset(c, 0, sizeof *c);
}

/* Closes the connection and its statements; the next call connects again. */
static void drop(struct db *db)
{
    for (size_t i = 0; i < DB_STMT_CACHE; i++)
        forget_stmt(db, &db->cache[i]);
    if (db->conn != NULL)
        db->ops->close(db->conn);
    db->conn = NULL;
    db->session = 0;
    db->in_tx = 0;
}

void db_free(struct db *db)
{
    if (db == NULL)
        return;
    drop(db);
    free(db);
}

/* True for errors after which the connection must be reopened (server gone, lost,
 * read-only, ...) as opposed to errors of the statement itself. */
static int is_connection_error(unsigned e)
{
    switch (e) {
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_QUERY_INTERRUPTED:
    case ER_OPTION_PREVENTS_STATEMENT: /* read-only: a failed-over primary */ return 1;
    default: return e >= 2000 && e < 3000; /* every client-side (CR_*) error */
    }
}

/* Keeps the failure `what` (error e, its text), and says what it means to the caller. */
static int failed(struct db *db, const char *what, unsigned e, const char *text)
{
    snprintf(db->errstr, sizeof db->errstr, "mariadb %s: %.400s", what, text);
    db->err = e;
    if (is_connection_error(e)) {
        log_warn("%s; connection dropped", db->errstr);
        drop(db);
        return CP_ERR_UNAVAILABLE;
    }
    switch (e) {
    case ER_DUP_ENTRY: return CP_ERR_CONFLICT;
    case ER_CHECK_CONSTRAINT_CODE:
    case ER_DATA_TOO_LONG:
    case ER_WARN_DATA_OUT_OF_RANGE: return CP_ERR_INVALID;
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
        if (db->in_tx)
            db->tx_retry = 1;
        return CP_ERR_TIMEOUT;
    default: log_warn("%s", db->errstr); return CP_ERR_UNAVAILABLE;
    }
}

static int connect_now(struct db *db)
{
    if (db->conn != NULL)
        return CP_OK;
    int64_t now = db->ops->now_ms(db->opaque);
    if (now < db->retry_at_ms) {
        db->err = CR_CONN_HOST_ERROR;
        return CP_ERR_UNAVAILABLE; /* errstr still says why the last connect failed */
    }
    char err[DB_ERRSTR_SIZE - 32];
    db->conn = db->ops->connect(db->opaque, err, sizeof err);
    if (db->conn == NULL) {
        db->retry_at_ms = now + DB_BACKOFF_MS;
        snprintf(db->errstr, sizeof db->errstr, "mariadb: %.400s", err);
        db->err = CR_CONN_HOST_ERROR;
        log_warn("%s", db->errstr);
        return CP_ERR_UNAVAILABLE;
    }
    db->session = ++db->sessions;
    return CP_OK;
}

static uint64_t hash_sql(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The connection's prepared statement for sql (prepared now if new to it). */
static int statement(struct db *db, const char *sql, void **out)
{
    size_t len = strlen(sql);
    uint64_t h = hash_sql(sql, len);
    struct cached *victim = &db->cache[0];
    db->tick++;
    for (size_t i = 0; i < DB_STMT_CACHE; i++) {
        struct cached *c = &db->cache[i];
        if (c->sql != NULL && c->hash == h && c->len == len && memcmp(c->sql, sql, len) == 0) {
            c->used = db->tick;
            *out = c->stmt;
            return CP_OK;
        }
        if (victim->sql != NULL && (c->sql == NULL || c->used < victim->used))
            victim = c;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        snprintf(db->errstr, sizeof db->errstr, "mariadb prepare: out of memory");
        return CP_ERR_NOMEM;
    }
    memcpy(copy, sql, len + 1);
    unsigned e = 0;
    char err[DB_ERRSTR_SIZE];
    void *st = db->ops->prepare(db->conn, sql, len, &e, err, sizeof err);
    if (st == NULL) {
        free(copy);
        return failed(db, "prepare", e, err);
    }
    forget_stmt(db, victim);
    *victim = (struct cached){.sql = copy, .len = len, .hash = h, .stmt = st, .used = db->tick};
    *out = st;
    return CP_OK;
}

/*
 * Executes sql with params; with res, reads the rows: fn per row (fn NULL: the first
 * row only, CP_ERR_NOT_FOUND without one). A deadlock victim outside a transaction
 * runs again.
 */
static int run(struct db *db, const char *sql, MYSQL_BIND *params, MYSQL_BIND *res, db_row_fn fn,
               void *arg)
{
    int rc = CP_ERR_TIMEOUT;
    for (int attempt = 0; attempt < DB_ATTEMPTS; attempt++) {
        void *st = NULL;
        if ((rc = connect_now(db)) != CP_OK || (rc = statement(db, sql, &st)) != CP_OK)
            return rc;
        char err[DB_ERRSTR_SIZE];
        unsigned e = db->ops->execute(st, params, &db->affected, &db->insert_id, err, sizeof err);
        if (e != 0) {
            rc = failed(db, "execute", e, err);
            if (e == ER_LOCK_DEADLOCK && !db->in_tx)
                continue; /* rolled back alone: run it again */
            return rc;
        }
        if (res == NULL) {
            db->ops->end(st); /* a SELECT run for its locks: its rows are not read */
            return CP_OK;
        }
        int row = 0, found = 0;
        rc = CP_OK;
        while (rc == CP_OK && (e = db->ops->fetch(st, res, &row, err, sizeof err)) == 0 && row) {
            found = 1;
            if (fn == NULL)
                break;
            rc = fn(arg);
        }
        if (e != 0) {
            rc = failed(db, "fetch", e, err);
            if (db->conn != NULL) /* else dropped, and st with it */
                db->ops->end(st);
            return rc;
        }
        db->ops->end(st);
        if (fn == NULL && !found)
            return CP_ERR_NOT_FOUND;
        return rc;
    }
    log_warn("%s (a deadlock victim %d times)", db->errstr, DB_ATTEMPTS);
    return rc;
}

int db_exec(struct db *db, const char *sql, MYSQL_BIND *params)
{
    return run(db, sql, params, NULL, NULL, NULL);
}

uint64_t db_affected_rows(const struct db *db)
{
    return db->affected;
}

uint64_t db_insert_id(const struct db *db)
{
    return db->insert_id;
}

int db_fetch_one(struct db *db, const char *sql, MYSQL_BIND *params, MYSQL_BIND *res)
{
    return run(db, sql, params, res, NULL, NULL);
}

int db_fetch_each(struct db *db, const char *sql, MYSQL_BIND *params, MYSQL_BIND *res, db_row_fn fn,
                  void *arg)
{
    return run(db, sql, params, res, fn, arg);
}

static int control(struct db *db, enum db_control what, const char *name)
{
    if (db->conn == NULL)
        return CP_ERR_UNAVAILABLE;
    char err[DB_ERRSTR_SIZE];
    unsigned e = db->ops->control(db->conn, what, err, sizeof err);
    return e == 0 ? CP_OK : failed(db, name, e, err);
}

/* Ends a transaction that is not committed; CP_OK or why the connection went. */
static int roll_back(struct db *db)
{
    int rc = control(db, DB_ROLLBACK, "rollback");
    if (rc == CP_OK)
        rc = control(db, DB_AUTOCOMMIT, "autocommit");
    if (rc != CP_OK && db->conn != NULL)
        drop(db); /* a connection that cannot end its transaction is no use */
    return rc;
}

int db_tx(struct db *db, db_tx_fn fn, void *arg)
{
    int rc = CP_ERR_TIMEOUT;
    for (int attempt = 0; attempt < DB_ATTEMPTS; attempt++) {
        if ((rc = connect_now(db)) != CP_OK || (rc = control(db, DB_BEGIN, "begin")) != CP_OK)
            return rc;
        db->in_tx = 1;
        db->tx_retry = 0;
        rc = fn(db, arg);
        db->in_tx = 0;
        if (db->conn == NULL)
            return CP_ERR_UNAVAILABLE; /* lost mid-transaction: nothing committed */
        if (rc == CP_OK) {
            rc = control(db, DB_COMMIT, "commit");
            if (rc == CP_OK)
                return control(db, DB_AUTOCOMMIT, "autocommit");
            if (db->conn == NULL)
                return rc;
            db->tx_retry = db->err == ER_LOCK_DEADLOCK || db->err == ER_LOCK_WAIT_TIMEOUT;
        }
        int retry = db->tx_retry;
        int end = roll_back(db);
        if (end != CP_OK)
            return end;
        if (!retry)
            return rc;
    }
    log_warn("mariadb: transaction was a deadlock victim %d times: %s", DB_ATTEMPTS, db->errstr);
    return CP_ERR_TIMEOUT;
}

int db_ping(struct db *db)
{
    int rc = connect_now(db);
    return rc != CP_OK ? rc : control(db, DB_PING, "ping");
}

void db_drop_closed(struct db *db)
{
    if (db->conn == NULL || !db->ops->closed(db->conn))
        return;
    log_info("mariadb connection closed by the server; reconnecting");
    drop(db);
    db->retry_at_ms = 0;
}

uint64_t db_session(const struct db *db)
{
    return db->session;
}

const char *db_errstr(const struct db *db)
{
    return db->errstr;
}

unsigned db_errno(const struct db *db)
{
    return db->err;
}

void db_bind_i64(MYSQL_BIND *b, int64_t *v, my_bool *is_null)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = v;
    b->is_null = is_null;
}

void db_bind_text(MYSQL_BIND *b, char *buf, size_t cap, unsigned long *len, my_bool *is_null)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = buf;
    b->buffer_length = cap;
    b->length = len;
    b->is_null = is_null;
}

void db_text_end(char *buf, size_t cap, unsigned long len)
{
    buf[len < cap ? len : cap - 1] = '\0';
}

int db_library_init(void)
{
    return mysql_library_init(0, NULL, NULL) == 0 ? CP_OK : CP_ERR_INTERNAL;
}

void db_library_end(void)
{
    mysql_library_end();
}

int db_thread_init(void)
{
    return mysql_thread_init() == 0 ? CP_OK : CP_ERR_INTERNAL;
}

void db_thread_end(void)
{
    mysql_thread_end();
}
