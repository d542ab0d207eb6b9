#include "first.h"

#include "db_fake.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRIPT_MAX 256

struct fake_state fake;

static struct {
    struct fake_reply r[SCRIPT_MAX];
    int n, next;
} script;

struct fstmt {
    char *sql;
    const struct fake_reply *reply; /* of the last execute */
    int row;
};

static int conn_token;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    if (fake.nlog == FAKE_LOG_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    char buf[8192];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fake.log[fake.nlog++] = strdup(buf);
}

void fake_reset(void)
{
    for (int i = 0; i < fake.nlog; i++)
        free(fake.log[i]);
    memset(&fake, 0, sizeof fake);
    memset(&script, 0, sizeof script);
}

struct db *fake_db(void)
{
    struct db *db = NULL;
    char err[64];
    if (db_open_ops(&fake_db_ops, NULL, &db, err, sizeof err) != 0)
        return NULL;
    return db;
}

void fake_script(const struct fake_reply *r)
{
    if (script.n < SCRIPT_MAX)
        script.r[script.n++] = *r;
}

void fake_rows(const char *sql, const char *const *rows)
{
    struct fake_reply r = {.sql = sql};
    for (int i = 0; rows != NULL && rows[i] != NULL && i < FAKE_ROWS_MAX - 1; i++)
        r.rows[i] = rows[i];
    fake_script(&r);
}

void fake_fail(const char *sql, unsigned err)
{
    fake_script(&(struct fake_reply){.sql = sql, .err = err});
}

void fake_ok(const char *sql, uint64_t affected, uint64_t insert_id)
{
    fake_script(&(struct fake_reply){.sql = sql, .affected = affected, .insert_id = insert_id});
}

int fake_pending(void)
{
    return script.n - script.next;
}

int fake_count(const char *prefix)
{
    int n = 0;
    for (int i = 0; i < fake.nlog; i++)
        n += strncmp(fake.log[i], prefix, strlen(prefix)) == 0;
    return n;
}

const char *fake_exec(int k)
{
    for (int i = 0; i < fake.nlog; i++)
        if (strncmp(fake.log[i], "exec ", 5) == 0 && k-- == 0)
            return fake.log[i];
    return "";
}

const char *fake_log_from(int from)
{
    static char buf[1 << 16];
    size_t off = 0;
    buf[0] = '\0';
    for (int i = from; i < fake.nlog && off < sizeof buf; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", i > from ? "\n" : "",
                                fake.log[i]);
    return buf;
}

static void *f_connect(const void *opaque, char *errbuf, size_t errlen)
{
    (void)opaque;
    fake.connects++;
    if (fake.refuse_connect > 0) {
        fake.refuse_connect--;
        note("connect refused");
        snprintf(errbuf, errlen, "connection refused");
        return NULL;
    }
    note("connect");
    fake.open_conns++;
    fake.closed = 0;
    return &conn_token;
}

static void f_close(void *conn)
{
    (void)conn;
    note("close");
    fake.open_conns--;
}

static int f_closed(void *conn)
{
    (void)conn;
    return fake.closed;
}

static unsigned f_control(void *conn, enum db_control what, char *errbuf, size_t errlen)
{
    static const char *const names[] = {"begin", "commit", "rollback", "autocommit", "ping"};
    (void)conn;
    unsigned e = fake.fail_control[what];
    fake.fail_control[what] = 0;
    note("%s%s", names[what], e ? " failed" : "");
    if (e)
        snprintf(errbuf, errlen, "%s failed (%u)", names[what], e);
    return e;
}

static void *f_prepare(void *conn, const char *sql, size_t len, unsigned *err, char *errbuf,
                       size_t errlen)
{
    (void)conn;
    (void)errbuf;
    (void)errlen;
    (void)err;
    struct fstmt *s = calloc(1, sizeof *s);
    if (s == NULL || (s->sql = strndup(sql, len)) == NULL) {
        free(s);
        *err = 2008; /* CR_OUT_OF_MEMORY */
        return NULL;
    }
    note("prepare %s", s->sql);
    fake.open_stmts++;
    return s;
}

/* "p1,p2,..." of the statement's placeholders. */
static void render(const char *sql, const MYSQL_BIND *params, char *out, size_t cap)
{
    size_t off = 0, k = 0;
    out[0] = '\0';
    for (const char *p = sql; *p != '\0' && params != NULL && off < cap; p++) {
        if (*p != '?')
            continue;
        const MYSQL_BIND *b = &params[k++];
        const char *sep = k > 1 ? "," : "";
        if (b->is_null != NULL && *b->is_null)
            off += (size_t)snprintf(out + off, cap - off, "%sNULL", sep);
        else if (b->buffer_type == MYSQL_TYPE_LONGLONG)
            off += (size_t)snprintf(out + off, cap - off, "%s%" PRId64, sep,
                                    *(const int64_t *)b->buffer);
        else
            off += (size_t)snprintf(out + off, cap - off, "%s'%.*s'", sep,
                                    (int)(b->length != NULL ? *b->length : b->buffer_length),
                                    (const char *)b->buffer);
    }
}

static const struct fake_reply ok_reply;

static unsigned f_execute(void *stmt, MYSQL_BIND *params, uint64_t *affected, uint64_t *insert_id,
                          char *errbuf, size_t errlen)
{
    struct fstmt *s = stmt;
    char vals[4096];
    render(s->sql, params, vals, sizeof vals);
    note("exec %s <- %s", s->sql, vals);
    const struct fake_reply *r = &ok_reply;
    if (script.next < script.n)
        r = &script.r[script.next++];
    else
        fake.unexpected++;
    if (r->sql != NULL && strcmp(r->sql, s->sql) != 0) {
        fake.unexpected++;
        note("UNEXPECTED: wanted %s", r->sql);
    }
    s->reply = r;
    s->row = 0;
    if (r->err) {
        snprintf(errbuf, errlen, "scripted error %u", r->err);
        return r->err;
    }
    *affected = r->affected;
    *insert_id = r->insert_id;
    return 0;
}

/* One column of a row into its binding. */
static void column(MYSQL_BIND *b, const char *v, size_t len)
{
    int null = len == 4 && memcmp(v, "NULL", 4) == 0;
    if (b->is_null != NULL)
        *b->is_null = (my_bool)null;
    if (null)
        return;
    if (b->buffer_type == MYSQL_TYPE_LONGLONG) {
        *(int64_t *)b->buffer = strtoll(v, NULL, 10);
        return;
    }
    size_t n = len < b->buffer_length ? len : b->buffer_length;
    memcpy(b->buffer, v, n);
    if (n < b->buffer_length)
        ((char *)b->buffer)[n] = '\0';
    if (b->length != NULL)
        *b->length = (unsigned long)len;
}

static unsigned f_fetch(void *stmt, MYSQL_BIND *res, int *row, char *errbuf, size_t errlen)
{
    struct fstmt *s = stmt;
    const struct fake_reply *r = s->reply;
    *row = 0;
    if (r == NULL)
        return 0;
    const char *text = s->row < FAKE_ROWS_MAX ? r->rows[s->row] : NULL;
    if (text == NULL) {
        if (r->fetch_err) {
            snprintf(errbuf, errlen, "scripted fetch error %u", r->fetch_err);
            return r->fetch_err;
        }
        return 0;
    }
    s->row++;
    size_t k = 0;
    for (const char *p = text;; k++) {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        column(&res[k], p, len);
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    *row = 1;
    return 0;
}

static void f_end(void *stmt)
{
    struct fstmt *s = stmt;
    s->reply = NULL;
}

static void f_stmt_close(void *stmt)
{
    struct fstmt *s = stmt;
    fake.open_stmts--;
    free(s->sql);
    free(s);
}

static int64_t f_now_ms(const void *opaque)
{
    (void)opaque;
    return fake.now_ms;
}

const struct db_ops fake_db_ops = {
    .connect = f_connect,
    .close = f_close,
    .closed = f_closed,
    .control = f_control,
    .prepare = f_prepare,
    .execute = f_execute,
    .fetch = f_fetch,
    .end = f_end,
    .stmt_close = f_stmt_close,
    .now_ms = f_now_ms,
};
