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

#include "clock.h"
#include "cp_err.h"
#include "db.h"
#include "relay_db.h"
#include "event.h"
#include "log.h"

#define LOCK_RETRY_MS    1000 /* a relay without the lock asks again this often */
#define ERROR_BACKOFF_MS 1000 /* after a MariaDB failure */
#define FLUSH_STEP_MS    100
#define RETRY_PAUSE_MS   500

struct relay {
    const struct cp_conf *conf;
    int kill_after_batches;
    pthread_t thread;
    atomic_int stop;
    rd_kafka_t *rk;
    struct db *db;
    struct relay_db *store; /* on db: the lock, the rows, their deletion */
    struct relay_row *rows;
    size_t cap;
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

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    uint64_t done = 0;
    if (db_thread_init() != CP_OK) {
        log_error("relay: mysql_thread_init failed; no relay in this process");
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        int rc = relay_db_lead(r->store);
        atomic_store(&r->is_leader, relay_db_leading(r->store));
        if (rc != CP_OK) {
            pause_ms(r, rc == CP_ERR_CONFLICT ? LOCK_RETRY_MS : ERROR_BACKOFF_MS);
            continue;
        }
        size_t n = 0;
        if (relay_db_fetch(r->store, r->rows, r->cap, &n) != CP_OK) {
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
        uint64_t deleted = 0;
        rc = relay_db_delete(r->store, r->rows, n, &deleted);
        atomic_fetch_add(&r->deleted, deleted);
        if (rc != CP_OK) {
            pause_ms(r, ERROR_BACKOFF_MS);
            continue;
        }
        atomic_fetch_add(&r->batches, 1);
    }
    /* Closes the connection, releasing the lock, on the thread that used it. */
    relay_db_free(r->store);
    db_free(r->db);
    r->store = NULL;
    r->db = NULL;
    atomic_store(&r->is_leader, 0);
    db_thread_end();
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
    relay_db_free(r->store);
    db_free(r->db);
    free(r->rows);
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
    if (r->rows == NULL || db_open(conf, &r->db, errbuf, errlen) != CP_OK ||
        (r->store = relay_db_new(r->db)) == NULL) {
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
