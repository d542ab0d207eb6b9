#include "first.h"

#include "relay.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <mysql.h>

#include "clock.h"
#include "cp_err.h"
#include "db.h"
#include "event.h"
#include "log.h"

#define DELETE_CHUNK     500  /* ids per DELETE ... IN (...) */
#define LOCK_RETRY_MS    1000 /* a relay without the lock asks again this often */
#define ERROR_BACKOFF_MS 1000 /* after a MariaDB failure */
#define FLUSH_STEP_MS    100
#define RETRY_PAUSE_MS   500
#define STAMPED_MAX      (CP_OUTBOX_PAYLOAD_MAX + 32) /* payload + "eventId":N, */

static const char lock_sql[] = "SELECT GET_LOCK('coupon_outbox_relay', 0)";
static const char fetch_sql[] = "SELECT CAST(id AS SIGNED), topic, msg_key, payload "
                                "FROM event_outbox ORDER BY id LIMIT ?";

struct relay_row {
    int64_t id;
    char topic[CP_OUTBOX_TOPIC_MAX + 1];
    char key[CP_OUTBOX_KEY_MAX];
    size_t klen;
    char value[STAMPED_MAX];
    size_t vlen;
    int state; /* -1 to send, 0 in flight, 1 acknowledged */
};

struct relay {
    const struct cp_conf *conf;
    int kill_after_batches;
    pthread_t thread;
    atomic_int stop;
    rd_kafka_t *rk;
    MYSQL *db;
    int leader;
    MYSQL_STMT *fetch_st, *delete_full;
    struct relay_row *rows;
    size_t cap;
    char *sql;
    size_t sql_cap;
    MYSQL_BIND *binds;
    int64_t *ids;
    atomic_uint_least64_t published, deleted, batches, failures;
    atomic_int is_leader;
};

/* Sleeps up to ms in slices, returning early when asked to stop. */
static void pause_ms(struct relay *r, int ms)
{
    while (ms > 0 && !atomic_load(&r->stop)) {
        int step = ms < 50 ? ms : 50;
        clock_sleep_ms(step);
        ms -= step;
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct relay *r = opaque;
    struct relay_row *row = m->_private;
    if (row == NULL)
        return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        row->state = 1;
    } else {
        row->state = -1;
        atomic_fetch_add(&r->failures, 1);
        log_warn("relay: event %" PRId64 " to %s not delivered (%s); producing it again", row->id,
                 row->topic, rd_kafka_err2str(m->err));
    }
}

/* Drops the connection (and with it the lock); `what` failed (NULL: a plain close). */
static void drop_db(struct relay *r, const char *what)
{
    if (r->db != NULL && what != NULL)
        log_warn("relay: mariadb %s: %s", what, mysql_error(r->db));
    if (r->fetch_st != NULL)
        mysql_stmt_close(r->fetch_st);
    if (r->delete_full != NULL)
        mysql_stmt_close(r->delete_full);
    r->fetch_st = r->delete_full = NULL;
    if (r->db != NULL)
        mysql_close(r->db);
    r->db = NULL;
    r->leader = 0;
    atomic_store(&r->is_leader, 0);
}

/* Connects if needed and takes the relay lock: CP_OK as leader, CP_ERR_CONFLICT when
 * another relay holds it, CP_ERR_UNAVAILABLE. */
static int become_leader(struct relay *r)
{
    if (r->db != NULL && r->leader)
        return CP_OK;
    if (r->db == NULL) {
        char err[512];
        if (db_connect(r->conf, &r->db, err, sizeof err) != CP_OK) {
            r->db = NULL;
            log_warn("relay: %s", err);
            return CP_ERR_UNAVAILABLE;
        }
    }
    MYSQL_STMT *st = mysql_stmt_init(r->db);
    if (st == NULL) {
        drop_db(r, "lock");
        return CP_ERR_UNAVAILABLE;
    }
    int64_t got = 0;
    my_bool is_null = 0;
    MYSQL_BIND res;
    db_bind_i64(&res, &got, NULL);
    res.is_null = &is_null;
    int rc = CP_OK;
    if (mysql_stmt_prepare(st, lock_sql, sizeof lock_sql - 1) != 0 || mysql_stmt_execute(st) != 0 ||
        mysql_stmt_bind_result(st, &res) != 0 || mysql_stmt_fetch(st) != 0) {
        log_warn("relay: GET_LOCK: %s", mysql_stmt_error(st));
        rc = CP_ERR_UNAVAILABLE;
    } else if (is_null || got != 1) {
        rc = CP_ERR_CONFLICT;
    }
    mysql_stmt_close(st);
    if (rc == CP_ERR_UNAVAILABLE) {
        drop_db(r, "lock");
        return rc;
    }
    if (rc == CP_OK) {
        r->leader = 1;
        atomic_store(&r->is_leader, 1);
        log_info("relay: holding the outbox relay lock; publishing event_outbox");
    }
    return rc;
}

/* The oldest rows (at most cap), stamped with their ids: how many, or an error. */
static int fetch(struct relay *r, size_t *n)
{
    *n = 0;
    if (r->fetch_st == NULL) {
        r->fetch_st = mysql_stmt_init(r->db);
        if (r->fetch_st == NULL ||
            mysql_stmt_prepare(r->fetch_st, fetch_sql, sizeof fetch_sql - 1) != 0) {
            drop_db(r, "prepare outbox read");
            return CP_ERR_UNAVAILABLE;
        }
    }
    int64_t limit = (int64_t)r->cap, id = 0;
    char topic[CP_OUTBOX_TOPIC_MAX + 1], key[CP_OUTBOX_KEY_MAX], payload[CP_OUTBOX_PAYLOAD_MAX];
    unsigned long tlen = 0, klen = 0, plen = 0;
    MYSQL_BIND p, res[4];
    db_bind_i64(&p, &limit, NULL);
    memset(res, 0, sizeof res);
    db_bind_i64(&res[0], &id, NULL);
    res[1].buffer_type = MYSQL_TYPE_STRING;
    res[1].buffer = topic;
    res[1].buffer_length = sizeof topic;
    res[1].length = &tlen;
    res[2].buffer_type = MYSQL_TYPE_BLOB;
    res[2].buffer = key;
    res[2].buffer_length = sizeof key;
    res[2].length = &klen;
    res[3].buffer_type = MYSQL_TYPE_BLOB;
    res[3].buffer = payload;
    res[3].buffer_length = sizeof payload;
    res[3].length = &plen;
    if (mysql_stmt_bind_param(r->fetch_st, &p) != 0 || mysql_stmt_execute(r->fetch_st) != 0 ||
        mysql_stmt_bind_result(r->fetch_st, res) != 0) {
        drop_db(r, "outbox read");
        return CP_ERR_UNAVAILABLE;
    }
    int f;
    while ((f = mysql_stmt_fetch(r->fetch_st)) == 0 || f == MYSQL_DATA_TRUNCATED) {
        if (*n == r->cap)
            continue; /* cannot happen with LIMIT; drain the result */
        struct relay_row *row = &r->rows[*n];
        /* A column longer than its buffer, or a payload that is not a JSON object, would
         * be a bug of the writer: logged, and the row left for an operator rather than
         * published cut short (it then holds back every later row: visible, not lost). */
        int vlen = f == 0 && tlen < sizeof row->topic && klen <= sizeof row->key
                       ? event_stamp(id, payload, plen, row->value, sizeof row->value)
                       : CP_ERR_LIMIT;
        if (vlen < 0) {
            log_error("relay: outbox row %" PRId64 " is malformed (%s); not published", id,
                      cp_strerror(vlen));
            break;
        }
        row->id = id;
        memcpy(row->topic, topic, tlen);
        row->topic[tlen] = '\0';
        memcpy(row->key, key, klen);
        row->klen = klen;
        row->vlen = (size_t)vlen;
        row->state = -1;
        (*n)++;
    }
    if (f != 0 && f != MYSQL_NO_DATA && f != MYSQL_DATA_TRUNCATED) {
        drop_db(r, "outbox fetch");
        return CP_ERR_UNAVAILABLE;
    }
    (void)mysql_stmt_free_result(r->fetch_st);
    return CP_OK;
}

static void produce_row(struct relay *r, struct relay_row *row)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, row->id);
    row->state = 0;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        r->rk, RD_KAFKA_V_TOPIC(row->topic), RD_KAFKA_V_KEY(row->key, row->klen),
        RD_KAFKA_V_VALUE(row->value, row->vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADER("event-id", id, -1), RD_KAFKA_V_OPAQUE(row), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        row->state = -1;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(r->rk, FLUSH_STEP_MS);
        else
            log_warn("relay: produce to %s: %s", row->topic, rd_kafka_err2str(err));
    }
}

/* Produces rows[0..n) and waits for every acknowledgement; CP_ERR_UNAVAILABLE when
 * asked to stop first (nothing deleted: the rows are published again later). */
static int publish(struct relay *r, size_t n)
{
    for (;;) {
        size_t waiting = 0, failed = 0;
        for (size_t i = 0; i < n; i++)
            if (r->rows[i].state == -1)
                produce_row(r, &r->rows[i]);
        (void)rd_kafka_flush(r->rk, FLUSH_STEP_MS);
        for (size_t i = 0; i < n; i++) {
            waiting += r->rows[i].state == 0;
            failed += r->rows[i].state == -1;
        }
        if (waiting == 0 && failed == 0)
            return CP_OK;
        if (atomic_load(&r->stop)) {
            /* Let what is in flight finish: its delivery reports point into rows. */
            (void)rd_kafka_flush(r->rk, 5000);
            return CP_ERR_UNAVAILABLE;
        }
        if (failed > 0 && waiting == 0)
            pause_ms(r, RETRY_PAUSE_MS);
    }
}

/* "<prefix>?,?,...?)" with n placeholders into r->sql. */
static void in_list(struct relay *r, size_t n)
{
    size_t off = (size_t)snprintf(r->sql, r->sql_cap, "DELETE FROM event_outbox WHERE id IN (");
    for (size_t i = 0; i < n && off + 3 < r->sql_cap; i++) {
        if (i)
            r->sql[off++] = ',';
        r->sql[off++] = '?';
    }
    r->sql[off++] = ')';
    r->sql[off] = '\0';
}

/* Deletes exactly the ids of rows[0..n) (autocommit: each chunk on its own). */
static int delete_rows(struct relay *r, size_t n)
{
    for (size_t i = 0; i < n; i += DELETE_CHUNK) {
        size_t m = n - i < DELETE_CHUNK ? n - i : DELETE_CHUNK;
        for (size_t k = 0; k < m; k++) {
            r->ids[k] = r->rows[i + k].id;
            db_bind_i64(&r->binds[k], &r->ids[k], NULL);
        }
        MYSQL_STMT *st = m == DELETE_CHUNK ? r->delete_full : NULL;
        if (st == NULL) {
            in_list(r, m);
            st = mysql_stmt_init(r->db);
            if (st == NULL || mysql_stmt_prepare(st, r->sql, strlen(r->sql)) != 0) {
                if (st != NULL)
                    mysql_stmt_close(st);
                drop_db(r, "prepare outbox delete");
                return CP_ERR_UNAVAILABLE;
            }
        }
        int ok = mysql_stmt_bind_param(st, r->binds) == 0 && mysql_stmt_execute(st) == 0;
        uint64_t affected = ok ? (uint64_t)mysql_stmt_affected_rows(st) : 0;
        if (m == DELETE_CHUNK && ok)
            r->delete_full = st;
        else if (st != r->delete_full)
            mysql_stmt_close(st);
        if (!ok) {
            if (st == r->delete_full) {
                mysql_stmt_close(st);
                r->delete_full = NULL;
            }
            drop_db(r, "outbox delete");
            return CP_ERR_UNAVAILABLE;
        }
        if (affected != m)
            log_warn("relay: deleted %" PRIu64 " of %zu outbox rows (another relay took "
                     "over meanwhile?)",
                     affected, m);
        atomic_fetch_add(&r->deleted, affected);
    }
    return CP_OK;
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    uint64_t done = 0;
    if (mysql_thread_init() != 0) {
        log_error("relay: mysql_thread_init failed; no relay in this process");
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        int rc = become_leader(r);
        if (rc != CP_OK) {
            pause_ms(r, rc == CP_ERR_CONFLICT ? LOCK_RETRY_MS : ERROR_BACKOFF_MS);
            continue;
        }
        size_t n = 0;
        if (fetch(r, &n) != CP_OK) {
            pause_ms(r, ERROR_BACKOFF_MS);
            continue;
        }
        if (n == 0) {
            pause_ms(r, r->conf->relay_poll_ms);
            continue;
        }
        if (publish(r, n) != CP_OK)
            break;
        atomic_fetch_add(&r->published, n);
        done++;
        if (r->kill_after_batches > 0 && done == (uint64_t)r->kill_after_batches) {
            log_warn("relay: test hook: SIGKILL after %" PRIu64 " published batches, before "
                     "deleting their %zu rows",
                     done, n);
            raise(SIGKILL);
        }
        if (delete_rows(r, n) != CP_OK) {
            pause_ms(r, ERROR_BACKOFF_MS);
            continue;
        }
        atomic_fetch_add(&r->batches, 1);
    }
    drop_db(r, NULL);
    mysql_thread_end();
    return NULL;
}

static void relay_free(struct relay *r)
{
    if (r == NULL)
        return;
    if (r->rk != NULL) {
        rd_kafka_flush(r->rk, 5000);
        rd_kafka_destroy(r->rk);
    }
    drop_db(r, NULL);
    free(r->rows);
    free(r->sql);
    free(r->binds);
    free(r->ids);
    free(r);
}

struct relay *relay_start(const struct cp_conf *conf, int kill_after_batches, char *errbuf,
                          size_t errlen)
{
    struct relay *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    r->conf = conf;
    r->kill_after_batches = kill_after_batches;
    r->cap = (size_t)conf->relay_batch_max;
    r->rows = calloc(r->cap, sizeof *r->rows);
    r->sql_cap = 64 + 2 * DELETE_CHUNK;
    r->sql = malloc(r->sql_cap);
    r->binds = calloc(DELETE_CHUNK, sizeof *r->binds);
    r->ids = calloc(DELETE_CHUNK, sizeof *r->ids);
    if (r->rows == NULL || r->sql == NULL || r->binds == NULL || r->ids == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char linger[16], queue[16];
    snprintf(linger, sizeof linger, "%d", conf->kafka_linger_ms);
    snprintf(queue, sizeof queue, "%d", CP_RELAY_BATCH_MAX * 2);
    const char *settings[][2] = {
        {"bootstrap.servers", conf->kafka_brokers},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", linger},
        {"message.timeout.ms", "30000"},
        {"queue.buffering.max.messages", queue},
        {"client.id", "coupon-relay"},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        if (rd_kafka_conf_set(kc, settings[i][0], settings[i][1], errbuf, errlen) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(kc);
            goto fail;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_conf_set_opaque(kc, r);
    r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errbuf, errlen);
    if (r->rk == NULL) {
        rd_kafka_conf_destroy(kc);
        goto fail;
    }
    int e = pthread_create(&r->thread, NULL, relay_main, r);
    if (e != 0) {
        snprintf(errbuf, errlen, "relay thread: %s", strerror(e));
        goto fail;
    }
    return r;
fail:
    relay_free(r);
    return NULL;
}

void relay_stop(struct relay *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, 1);
    int e = pthread_join(r->thread, NULL);
    if (e != 0)
        log_error("relay: join: %s", strerror(e));
    relay_free(r);
}

void relay_get_stats(struct relay *r, struct relay_stats *out)
{
    out->published = atomic_load(&r->published);
    out->deleted = atomic_load(&r->deleted);
    out->batches = atomic_load(&r->batches);
    out->failures = atomic_load(&r->failures);
    out->leader = atomic_load(&r->is_leader);
}
