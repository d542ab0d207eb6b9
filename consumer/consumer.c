/*
 * consumer.c - coupon-consumer: moves coupon.issue events into MariaDB exactly
 * once, and relays the outbox of downstream events (coupon.issued,
 * coupon.redemption) to Kafka.
 *
 * The main thread runs one loop: collect a batch (up to consumer_batch_max
 * events or consumer_batch_ms), persist it in one transaction (persist.c: the
 * rows, issued_quantity and one coupon.issued outbox row per new row), queue the
 * DLQ entries (downstream.c; a message that cannot be queued stops the batch
 * there, uncommitted, and queueing is tried again) and wait for their
 * acknowledgement (outbox.c), settle pending issuances in Redis, and only then
 * commit the batch's offsets by hand. A crash anywhere before the offset commit
 * means the batch is delivered again, and persist.c recognises every row that
 * exists already, so nothing is lost and nothing is counted twice. The relay
 * thread (relay.c) publishes event_outbox at least once, independently of the
 * loop: an event committed with its row can no longer be lost by a crash after
 * the commit. The relay and the reconciler (reconcile.c, on the loop) each work
 * in one consumer of the group at a time, the holder of a MariaDB named lock.
 *
 * MariaDB down: the assigned partitions are paused and the batch retried with
 * capped exponential backoff while rd_kafka_consumer_poll keeps the group
 * membership alive; nothing is committed meanwhile. Rebalance (eager
 * protocol): on revoke the uncommitted batch is dropped - it will be consumed
 * again from the committed offsets by whoever owns the partitions next.
 * SIGTERM/SIGINT: finish the batch in hand, commit, leave the group, exit 0.
 */
#include "first.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "checkout_apply.h"
#include "conf.h"
#include "clock.h"
#include "cp_err.h"
#include "credis.h"
#include "db.h"
#include "dispatch.h"
#include "downstream.h"
#include "event.h"
#include "kafka_log.h"
#include "leader.h"
#include "log.h"
#include "outbox.h"
#include "persist.h"
#include "rcli.h"
#include "reconcile.h"
#include "relay.h"
#include "report.h"
#include "timefmt.h"

#define REASSIGN_DELAY_MS 1000

/* Set by the signal handler; read by the loop. The one piece of process state. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct batch {
    rd_kafka_message_t **msgs;
    size_t n, cap;
};

struct consumer {
    struct cp_conf conf;
    rd_kafka_t *rk;
    struct db *db; /* the main thread's MariaDB client: persist and the reconciler */
    struct persist *persist;
    struct outbox *outbox;
    struct report *report;
    struct reconciler *reconciler;
    struct leader *reconciler_lock; /* on a client of its own, lock_db (leader.h) */
    struct db *lock_db;
    struct relay *relay;
    struct checkout_apply *checkout; /* checkout changes into MariaDB (checkout_apply.h) */
    struct dispatcher *dispatcher;   /* webhooks (dispatch.h) */
    struct rcli *redis;              /* opened at start (no I/O); connects on first use */
    struct batch batch;
    struct persist_item *items;
    size_t items_cap;
    int batch_dropped; /* set by the rebalance callback */
    int paused;
    int64_t reassign_at; /* monotonic ms; 0 = none due */
};

static void batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        rd_kafka_message_destroy(b->msgs[i]);
    b->n = 0;
}

static int batch_add(struct batch *b, rd_kafka_message_t *m)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        rd_kafka_message_t **msgs = realloc(b->msgs, cap * sizeof *msgs);
        if (msgs == NULL)
            return CP_ERR_NOMEM;
        b->msgs = msgs;
        b->cap = cap;
    }
    b->msgs[b->n++] = m;
    return CP_OK;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_info("assigned %d partitions", parts->cnt);
        c->paused = 0;
        if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_error("assign failed");
    } else {
        log_info("revoked %d partitions; an uncommitted batch of %zu is left to the next owner",
                 parts->cnt, c->batch.n);
        c->batch_dropped = 1;
        c->paused = 0;
        if (rd_kafka_assign(rk, NULL) != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_error("unassign failed");
    }
}

/* After a failed or unexpected reply: what is in flight is forgotten (rcli_reset). The
 * client warned about the failure itself, once, where it happened. */
static void consumer_redis_failed(struct consumer *c)
{
    log_debug("redis: %s", rcli_errstr(c->redis)[0] ? rcli_errstr(c->redis) : "bad reply");
    rcli_reset(c->redis);
}

static int setup_kafka(struct consumer *c, char *err, size_t errlen)
{
    const char *const settings[][2] = {
        {"bootstrap.servers", c->conf.kafka_brokers},
        {"group.id", c->conf.consumer_group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "false"},
        /* The broker answers a fetch once 64 KiB (~300 events) are there or after 50 ms:
         * with librdkafka's 1 byte, a consumer that keeps up with a sale fetched a few
         * events per request, and the broker's cost is per request and partition. A
         * backlog fills every fetch anyway; a quiet topic waits at most 50 ms more. */
        {"fetch.wait.max.ms", "50"},
        {"fetch.min.bytes", "65536"},
        {"queued.min.messages", "200000"},
        {"client.id", "coupon-consumer"},
        /* A consumer that died (SIGKILL, a lost host) holds its partitions until the
         * broker gives up on it: 10 s rather than librdkafka's 45 s of stalled events. */
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "3000"},
    };
    rd_kafka_conf_t *kc =
        kafka_log_conf_new(settings, sizeof settings / sizeof settings[0], err, errlen);
    if (kc == NULL)
        return CP_ERR_INVALID;
    rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
    rd_kafka_conf_set_opaque(kc, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, errlen);
    if (c->rk == NULL) {
        rd_kafka_conf_destroy(kc);
        return CP_ERR_INVALID;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, c->conf.kafka_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "subscribe: %s", rd_kafka_err2str(e));
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

static void set_paused(struct consumer *c, int pause)
{
    if (c->paused == pause)
        return;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return;
    rd_kafka_resp_err_t e =
        pause ? rd_kafka_pause_partitions(c->rk, parts) : rd_kafka_resume_partitions(c->rk, parts);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        c->paused = pause;
    rd_kafka_topic_partition_list_destroy(parts);
}

/*
 * librdkafka 2.0 gives up on fetching the committed offsets of a new assignment
 * when the group coordinator is not ready (a broker that just started or
 * restarted): the partitions then never start fetching. Assigning them again
 * once the coordinator answers repeats the fetch.
 */
static int is_coordinator_error(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR ||
           err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE ||
           err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
}

static void reassign_if_due(struct consumer *c)
{
    if (c->reassign_at == 0 || clock_mono_ms() < c->reassign_at)
        return;
    c->reassign_at = 0;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return;
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID; /* = the committed offset */
    /* Nothing of the batch in hand is committed: it is consumed again from there. */
    batch_clear(&c->batch);
    if (parts->cnt > 0 && (rd_kafka_assign(c->rk, NULL) != RD_KAFKA_RESP_ERR_NO_ERROR ||
                           rd_kafka_assign(c->rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR))
        log_error("re-assigning %d partitions failed", parts->cnt);
    else if (parts->cnt > 0)
        log_info("re-assigned %d partitions to fetch their committed offsets again", parts->cnt);
    c->paused = 0;
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Collects up to batch_max messages within batch_ms. */
static void collect(struct consumer *c)
{
    int64_t deadline = clock_mono_ms() + c->conf.consumer_batch_ms;
    while (c->batch.n < (size_t)c->conf.consumer_batch_max && !stop_requested) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0 && c->batch.n > 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, left > 0 ? (int)left : 100);
        if (c->batch_dropped) {
            batch_clear(&c->batch);
            c->batch_dropped = 0;
        }
        if (m == NULL) {
            if (left <= 0)
                break;
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("consume: %s", rd_kafka_message_errstr(m));
            if (is_coordinator_error(m->err))
                c->reassign_at = clock_mono_ms() + REASSIGN_DELAY_MS;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (batch_add(&c->batch, m) != CP_OK) {
            rd_kafka_message_destroy(m); /* not stored: its offset is never committed */
            break;
        }
    }
}

/* Sleeps `ms` while serving the group (poll) with the partitions paused. */
static void backoff_wait(struct consumer *c, int64_t ms)
{
    set_paused(c, 1);
    int64_t until = clock_mono_ms() + ms;
    while (!stop_requested && !c->batch_dropped) {
        int64_t left = until - clock_mono_ms();
        if (left <= 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, (int)(left < 200 ? left : 200));
        if (m != NULL) {
            /* Fetched before the pause took effect: keep it for this batch. */
            if (m->err || batch_add(&c->batch, m) != CP_OK)
                rd_kafka_message_destroy(m);
        }
    }
}

static int cmp_pending_coupon(const void *a, const void *b)
{
    const struct credis_pending *x = a, *y = b;
    return (x->coupon_id > y->coupon_id) - (x->coupon_id < y->coupon_id);
}

/*
 * Drops the pending records of the persisted events (issue.lua writes one with
 * every reservation; the worker removes it on Kafka's ack, this is the backstop
 * for a worker that died or answered 202). Sorted by coupon, so credis sends one
 * HDEL per coupon (and chunk), pipelined: one round trip per batch, and Redis
 * parses a few commands rather than one per event.
 */
static void settle_pending(struct consumer *c, const struct persist_item *items, size_t n)
{
    struct credis_pending *records = malloc((n ? n : 1) * sizeof *records);
    if (records == NULL)
        return; /* the reconciler settles them later */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].outcome != PERSIST_UNKNOWN_COUPON)
            records[m++] = (struct credis_pending){items[i].ev.coupon_id, items[i].ev.user_id};
    qsort(records, m, sizeof *records, cmp_pending_coupon);
    long long removed;
    /* Redis down: the reconciler settles the rest later; a refused HDEL likewise. */
    if (credis_pending_drop(c->redis, records, m, &removed, NULL, 0) < 0)
        consumer_redis_failed(c);
    free(records);
}

static void commit_offsets(struct consumer *c)
{
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < c->batch.n; i++) {
        const rd_kafka_message_t *m = c->batch.msgs[i];
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(offs, topic, m->partition);
        if (p == NULL)
            p = rd_kafka_topic_partition_list_add(offs, topic, m->partition);
        if (m->offset + 1 > p->offset)
            p->offset = m->offset + 1;
    }
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, offs, 0);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("offset commit: %s (the batch will be seen again; persisting it is a no-op)",
                 rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(offs);
}

/* Decodes the batch into c->items; poison messages get their reason in reasons[]. */
static size_t decode_batch(struct consumer *c, const char **reasons)
{
    size_t n = 0;
    for (size_t i = 0; i < c->batch.n; i++) {
        const rd_kafka_message_t *m = c->batch.msgs[i];
        reasons[i] = NULL;
        if (event_decode(m->payload, m->len, &c->items[n].ev, &reasons[i]) == CP_OK)
            n++;
        else if (reasons[i] == NULL)
            reasons[i] = "undecodable event";
    }
    return n;
}

static int reserve_items(struct consumer *c)
{
    if (c->items_cap >= c->batch.n)
        return CP_OK;
    struct persist_item *it = realloc(c->items, c->batch.n * sizeof *it);
    if (it == NULL)
        return CP_ERR_NOMEM;
    c->items = it;
    c->items_cap = c->batch.n;
    return CP_OK;
}

/*
 * Queues the batch's DLQ messages (coupon.issued is in the batch's outbox rows,
 * committed with them). A message that cannot be queued (out of memory, a name
 * beyond a limit) is not skipped: whatever was queued is dropped and everything
 * queued again after a backoff - the rows are persisted, so running the batch
 * again would see them as duplicates and never send their poison neighbours to
 * the DLQ. Nothing is committed meanwhile; CP_ERR_UNAVAILABLE when a stop
 * was asked for first (the batch is then consumed again later).
 */
static int queue_downstream(struct consumer *c, size_t n, const char **reasons,
                            struct downstream_counts *counts)
{
    int64_t backoff = 100;
    for (;;) {
        int rc = downstream_queue(c->outbox, &c->conf, c->batch.msgs, c->batch.n, reasons, c->items,
                                  n, counts);
        if (rc == CP_OK)
            return CP_OK;
        outbox_discard(c->outbox);
        if (stop_requested)
            return CP_ERR_UNAVAILABLE;
        log_error("batch of %zu: downstream events not queued (%s); not committed, queueing "
                  "again in %" PRId64 " ms",
                  c->batch.n, cp_strerror(rc), backoff);
        clock_sleep_ms(backoff);
        backoff = backoff * 2 > c->conf.consumer_backoff_max_ms ? c->conf.consumer_backoff_max_ms
                                                                : backoff * 2;
    }
}

/*
 * Persists, publishes and commits the batch in hand. While MariaDB is down the
 * batch may grow by messages fetched before the pause took effect; each retry
 * decodes the whole batch again, so every message whose offset is committed
 * was persisted (or sent to the DLQ).
 */
static void process(struct consumer *c)
{
    const char **reasons = NULL;
    size_t n = 0;
    int64_t backoff = 100, persisted_at = 0, t_start = clock_mono_us();
    for (;;) {
        if (c->batch.n == 0)
            goto out;
        const char **r = realloc(reasons, c->batch.n * sizeof *r);
        if (r == NULL || reserve_items(c) != CP_OK) {
            free(r == NULL ? reasons : r);
            log_error("out of memory for a batch of %zu; it will be consumed again", c->batch.n);
            batch_clear(&c->batch);
            return;
        }
        reasons = r;
        int64_t t_decode = clock_mono_us();
        n = decode_batch(c, reasons);
        report_add(c->report, REPORT_DECODE_US, (uint64_t)(clock_mono_us() - t_decode));
        if (n == 0 || persist_batch(c->persist, c->items, n, &persisted_at) == CP_OK)
            break;
        report_add(c->report, REPORT_DB_RETRIES, 1);
        log_warn("batch of %zu not persisted; retrying in %" PRId64 " ms", n, backoff);
        backoff_wait(c, backoff);
        if (c->batch_dropped) {
            batch_clear(&c->batch);
            c->batch_dropped = 0;
            goto out;
        }
        if (stop_requested) {
            log_warn("stopping with an unpersisted batch: not committed, consumed again later");
            goto out;
        }
        backoff = backoff * 2 > c->conf.consumer_backoff_max_ms ? c->conf.consumer_backoff_max_ms
                                                                : backoff * 2;
    }
    set_paused(c, 0);
    int64_t t_persisted = clock_mono_us();
    struct downstream_counts counts;
    if (queue_downstream(c, n, reasons, &counts) != CP_OK) {
        log_warn("stopping before downstream events were queued: batch not committed");
        goto out;
    }
    report_add(c->report, REPORT_DLQ, counts.dlq);
    if (outbox_flush(c->outbox, &stop_requested) != CP_OK) {
        log_warn("stopping before downstream events were acknowledged: batch not committed");
        goto out;
    }
    int64_t t_published = clock_mono_us();
    settle_pending(c, c->items, n);
    int64_t t_settled = clock_mono_us();
    commit_offsets(c);
    int64_t t_committed = clock_mono_us();
    report_add(c->report, REPORT_PERSIST_US, (uint64_t)(t_persisted - t_start));
    report_add(c->report, REPORT_PUBLISH_US, (uint64_t)(t_published - t_persisted));
    report_add(c->report, REPORT_SETTLE_US, (uint64_t)(t_settled - t_published));
    report_add(c->report, REPORT_COMMIT_US, (uint64_t)(t_committed - t_settled));
    report_add(c->report, REPORT_EVENTS, c->batch.n);
    report_add(c->report, REPORT_BATCHES, 1);
    report_add(c->report, REPORT_INSERTED, counts.inserted);
    report_set(c->report, REPORT_BATCH_SIZE_LAST, c->batch.n);
    batch_clear(&c->batch);
out:
    free(reasons);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: coupon-consumer [-c FILE]\n"
                 "Moves coupon.issue events into MariaDB exactly once (see README).\n");
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        if (opt == 'c') {
            config_path = optarg;
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    static struct consumer c; /* large; zeroed */
    char err[512];
    if (conf_load(&c.conf, config_path, err, sizeof err) != CP_OK) {
        fprintf(stderr, "coupon-consumer: %s\n", err);
        return 2;
    }
    if (strlen(c.conf.code_secret) < CP_CODE_SECRET_MIN_BYTES) {
        fprintf(stderr,
                "coupon-consumer: code_secret must be set (at least %d bytes; "
                "the same as coupon-fcgi's)\n",
                CP_CODE_SECRET_MIN_BYTES);
        return 2;
    }
    enum log_level level = LOG_LEVEL_INFO;
    (void)log_level_parse(c.conf.log_level, &level);
    log_init("coupon-consumer", level);
    if (db_library_init() != CP_OK) {
        log_error("mysql_library_init failed");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    if (db_open(&c.conf, &c.db, err, sizeof err) != CP_OK ||
        db_open(&c.conf, &c.lock_db, err, sizeof err) != CP_OK ||
        (c.reconciler_lock = leader_new(c.lock_db, "coupon_reconciler", "reconciler")) == NULL) {
        log_error("start failed: out of memory");
        goto out;
    }
    c.persist = persist_new(&c.conf, c.db);
    c.outbox = outbox_new(&c.conf, err, sizeof err);
    c.report = report_new();
    if (c.persist == NULL || c.outbox == NULL || c.report == NULL) {
        log_error("start failed: %s", c.outbox == NULL ? err : "out of memory");
        goto out;
    }
    if (rcli_open(&c.conf, &c.redis, err, sizeof err) != CP_OK) {
        log_error("start failed: %s", err);
        goto out;
    }
    c.reconciler = reconciler_new(&c.conf, c.db, c.reconciler_lock, c.outbox);
    if (c.reconciler == NULL || setup_kafka(&c, err, sizeof err) != CP_OK) {
        log_error("start failed: %s", c.reconciler == NULL ? "out of memory" : err);
        goto out;
    }
    /* Test hook (tests/integration/test_redemption.py): the relay SIGKILLs this process
     * after that many published batches, before deleting them. */
    const char *hook = getenv("COUPON_TEST_RELAY_KILL_AFTER_BATCHES");
    int kill_after = hook != NULL ? atoi(hook) : 0;
    c.relay = relay_start(&c.conf, kill_after > 0 ? kill_after : 0, err, sizeof err);
    if (c.relay == NULL) {
        log_error("start failed: relay: %s", err);
        goto out;
    }
    c.checkout = checkout_apply_start(&c.conf, err, sizeof err);
    if (c.checkout == NULL) {
        log_error("start failed: checkout applier: %s", err);
        goto out;
    }
    c.dispatcher = dispatch_start(&c.conf, err, sizeof err);
    if (c.dispatcher == NULL) {
        log_error("start failed: webhook dispatcher: %s", err);
        goto out;
    }
    log_info("consuming %s as group %s (batch %d events / %d ms)", c.conf.kafka_topic,
             c.conf.consumer_group, c.conf.consumer_batch_max, c.conf.consumer_batch_ms);
    while (!stop_requested) {
        reassign_if_due(&c);
        collect(&c);
        process(&c);
        struct persist_stats ps;
        persist_get_stats(c.persist, &ps);
        struct relay_stats rs;
        relay_get_stats(c.relay, &rs);
        report_set(c.report, REPORT_RELAYED, rs.published);
        report_set(c.report, REPORT_RELAY_LEADER, (uint64_t)rs.leader);
        struct checkout_apply_stats cs;
        checkout_apply_get_stats(c.checkout, &cs);
        report_set(c.report, REPORT_CHECKOUT_APPLIED, cs.applied);
        report_set(c.report, REPORT_CHECKOUT_LAPSED, cs.lapsed);
        report_set(c.report, REPORT_CHECKOUT_WAITING, cs.waiting);
        report_set(c.report, REPORT_CHECKOUT_LEADER, (uint64_t)cs.leader);
        struct dispatch_stats ds;
        dispatch_get_stats(c.dispatcher, &ds);
        report_set(c.report, REPORT_WEBHOOK_CREATED, ds.created);
        report_set(c.report, REPORT_WEBHOOK_DELIVERED, ds.delivered);
        report_set(c.report, REPORT_WEBHOOK_RETRIED, ds.retried);
        report_set(c.report, REPORT_WEBHOOK_FAILED, ds.failed);
        report_set(c.report, REPORT_WEBHOOK_LATENCY_MS, ds.latency_ms);
        report_set(c.report, REPORT_WEBHOOK_OLDEST_PENDING_S, ds.oldest_pending_s);
        report_set(c.report, REPORT_WEBHOOK_LEADER, (uint64_t)ds.leader);
        report_set(c.report, REPORT_RECONCILER_LEADER, (uint64_t)reconciler_leading(c.reconciler));
        uint64_t pending_records, oldest_pending_s;
        reconciler_pending(c.reconciler, &pending_records, &oldest_pending_s);
        report_set(c.report, REPORT_PENDING_RECORDS, pending_records);
        report_set(c.report, REPORT_OLDEST_PENDING_S, oldest_pending_s);
        if (report_tick(c.report, c.redis, c.rk, &ps) != CP_OK)
            consumer_redis_failed(&c);
        if (reconciler_tick(c.reconciler, c.redis, &stop_requested) == CP_ERR_UNAVAILABLE)
            consumer_redis_failed(&c);
    }
    /* The batch in hand was finished by process(); leave the group cleanly. */
    log_info("stopping: leaving the group");
    rd_kafka_consumer_close(c.rk);
    rc = 0;
out:
    checkout_apply_stop(c.checkout);
    dispatch_stop(c.dispatcher);
    relay_stop(c.relay);
    if (c.rk != NULL)
        rd_kafka_destroy(c.rk);
    batch_clear(&c.batch);
    free(c.batch.msgs);
    free(c.items);
    reconciler_free(c.reconciler);
    outbox_free(c.outbox);
    report_free(c.report);
    persist_free(c.persist);
    leader_free(c.reconciler_lock);
    db_free(c.lock_db);
    db_free(c.db);
    rcli_free(c.redis);
    db_library_end();
    return rc;
}
