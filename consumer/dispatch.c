#include "first.h"

#include "dispatch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "cp_err.h"
#include "db.h"
#include "event.h"
#include "kafka_log.h"
#include "leader.h"
#include "log.h"
#include "timefmt.h"
#include "whsig.h"
#include "whstore.h"
#include "whurl.h"

#define DISPATCH_INFLIGHT     64 /* transfers at once, all endpoints */
#define DISPATCH_PER_ENDPOINT 4  /* transfers at once to one endpoint */
#define CONSUME_MAX           500
#define LEADER_CHECK_MS       2000
#define OLDEST_CHECK_MS       5000
#define ERROR_BACKOFF_MS      1000
#define BODY_CAP              4096 /* response bytes read (then discarded) */

struct transfer {
    CURL *easy;
    struct curl_slist *headers, *resolve;
    int64_t id, endpoint_id, attempts, age_ms, started_ms;
    int give_up;
    size_t body_seen;
    char payload[CP_WEBHOOK_PAYLOAD_MAX];
    size_t payload_len;
    char error[CURL_ERROR_SIZE];
};

struct dispatcher {
    const struct cp_conf *conf;
    pthread_t thread;
    atomic_int stop;
    rd_kafka_t *rk;
    struct db *db; /* the dispatcher's client (common/db): reconnects by itself */
    struct leader *leader;
    CURLM *multi;
    struct whurl_cidrs allow;
    struct transfer xfer[DISPATCH_INFLIGHT];
    int leading;
    int64_t leader_at, oldest_at, due_at;
    atomic_uint_least64_t created, delivered, retried, failed, latency_ms, oldest_s;
    atomic_int is_leader;
};

/* {"type":T,"timestamp":"<now>","data":<value>}: the Standard Webhooks payload shape. */
static int wrap_payload(const struct downstream_event *ev, const void *value, size_t len, char *out,
                        size_t cap)
{
    char now[40];
    if (timefmt_format_ms(timefmt_now_ms(), now, sizeof now) < 0)
        return CP_ERR_INTERNAL;
    int n = snprintf(out, cap, "{\"type\":\"%s\",\"timestamp\":\"%s\",\"data\":%.*s}", ev->type,
                     now, (int)len, (const char *)value);
    return n < 0 || (size_t)n >= cap ? CP_ERR_LIMIT : n;
}

/* Writes the delivery rows of one message; CP_OK also for a message skipped (logged). */
static int fan_out(struct dispatcher *d, const rd_kafka_message_t *m, uint64_t *created_out)
{
    struct downstream_event ev;
    char payload[CP_WEBHOOK_PAYLOAD_MAX];
    if (event_decode_downstream(m->payload, m->len, &ev) != CP_OK) {
        log_warn("webhooks: undecodable event at %s[%" PRId32 "]@%" PRId64 "; skipped",
                 rd_kafka_topic_name(m->rkt), m->partition, m->offset);
        return CP_OK;
    }
    int n = wrap_payload(&ev, m->payload, m->len, payload, sizeof payload);
    if (n < 0) {
        log_warn("webhooks: event %" PRId64 " too large for a delivery; skipped", ev.event_id);
        return CP_OK;
    }
    uint64_t created = 0;
    int rc = whstore_fanout(d->db, ev.event_id, ev.type, ev.coupon_id, payload, (size_t)n,
                            d->conf->webhook_retry_window_s, &created);
    if (rc == CP_OK)
        *created_out += created;
    return rc;
}

/* One fetch batch for db_tx. */
struct fan_batch {
    struct dispatcher *d;
    rd_kafka_message_t **msgs;
    size_t n;
    uint64_t created; /* rows the last run wrote (counted once it committed) */
};

/* db_tx body: every message's rows (INSERT IGNORE: a re-run writes nothing twice). */
static int fan_out_all(struct db *db, void *arg)
{
    (void)db;
    struct fan_batch *fb = arg;
    fb->created = 0;
    for (size_t i = 0; i < fb->n; i++) {
        int rc = fan_out(fb->d, fb->msgs[i], &fb->created);
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

static void pause_ms(struct dispatcher *d, int ms)
{
    while (ms > 0 && !atomic_load(&d->stop)) {
        int step = ms < 50 ? ms : 50;
        clock_sleep_ms(step);
        ms -= step;
    }
}

/* Reads what is there (waiting up to wait_ms for the first), writes its rows, commits. */
static void consume(struct dispatcher *d, int wait_ms)
{
    rd_kafka_message_t *batch[CONSUME_MAX];
    size_t n = 0;
    while (n < CONSUME_MAX) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(d->rk, n == 0 ? wait_ms : 0);
        if (m == NULL)
            break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("webhooks: consume: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        batch[n++] = m;
    }
    /* One transaction for the batch's rows (a commit per batch, not per event), and
     * none at all while no endpoint is enabled - the usual case, which then costs one
     * COUNT per batch instead of a statement per event. An endpoint registered while a
     * batch is written receives the events after it. */
    struct fan_batch fb = {d, batch, n, 0};
    size_t done = 0;
    while (n > 0 && done == 0 && !atomic_load(&d->stop)) {
        int64_t enabled = 0;
        int rc = whstore_enabled_count(d->db, &enabled);
        if (rc == CP_OK && enabled > 0)
            rc = db_tx(d->db, fan_out_all, &fb);
        if (rc == CP_OK) {
            done = n;
            atomic_fetch_add(&d->created, enabled > 0 ? fb.created : 0);
        } else {
            pause_ms(d, ERROR_BACKOFF_MS); /* MariaDB down: nothing committed meanwhile */
        }
    }
    if (done == n && n > 0) {
        rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(
                offs, rd_kafka_topic_name(batch[i]->rkt), batch[i]->partition);
            if (p == NULL)
                p = rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(batch[i]->rkt),
                                                      batch[i]->partition);
            if (batch[i]->offset + 1 > p->offset)
                p->offset = batch[i]->offset + 1;
        }
        rd_kafka_resp_err_t e = rd_kafka_commit(d->rk, offs, 0);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_warn("webhooks: offset commit: %s (the events are read again; no row twice)",
                     rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(offs);
    }
    for (size_t i = 0; i < n; i++)
        rd_kafka_message_destroy(batch[i]);
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct transfer *x = arg;
    (void)ptr;
    x->body_seen += size * nmemb;
    return x->body_seen > BODY_CAP ? 0 : size * nmemb; /* 0 ends the transfer: capped */
}

/* The delay before attempt `attempts + 1`: base * 2^(attempts-1), capped, 50..100 %. */
static int64_t retry_delay_ms(const struct cp_conf *conf, int64_t attempts)
{
    int64_t delay = conf->webhook_retry_base_ms;
    for (int64_t i = 1; i < attempts && delay < conf->webhook_retry_max_ms; i++)
        delay *= 2;
    if (delay > conf->webhook_retry_max_ms)
        delay = conf->webhook_retry_max_ms;
    return delay / 2 + (int64_t)((double)(delay / 2) * ((double)rand() / RAND_MAX));
}

/* Records one attempt's outcome (status 0: no HTTP answer). */
static void finish(struct dispatcher *d, struct transfer *x, long status, const char *error)
{
    int ok = status >= 200 && status < 300;
    int state = ok ? WHSTORE_DELIVERED : x->give_up ? WHSTORE_FAILED : WHSTORE_PENDING;
    int64_t retry = ok || x->give_up ? 0 : retry_delay_ms(d->conf, x->attempts + 1);
    if (whstore_attempted(d->db, x->id, state, status, error, retry) != CP_OK) {
        /* still pending in MariaDB: delivered again later (at least once) */
        return;
    }
    if (ok) {
        atomic_fetch_add(&d->delivered, 1);
        atomic_fetch_add(&d->latency_ms, (uint64_t)(x->age_ms + clock_mono_ms() - x->started_ms));
    } else {
        atomic_fetch_add(state == WHSTORE_FAILED ? &d->failed : &d->retried, 1);
    }
    d->due_at = 0; /* the next of that coupon may be due now */
}

static void release(struct dispatcher *d, struct transfer *x)
{
    if (x->easy != NULL) {
        curl_multi_remove_handle(d->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->resolve);
    memset(x, 0, sizeof *x);
}

/* Whether a due delivery can start: not in flight, endpoint below its share. */
static struct transfer *slot_for(struct dispatcher *d, const struct whstore_due *due)
{
    struct transfer *free_slot = NULL;
    int same_endpoint = 0;
    for (size_t i = 0; i < DISPATCH_INFLIGHT; i++) {
        struct transfer *x = &d->xfer[i];
        if (x->easy == NULL) {
            if (free_slot == NULL)
                free_slot = x;
            continue;
        }
        if (x->id == due->id)
            return NULL;
        same_endpoint += x->endpoint_id == due->endpoint_id;
    }
    return same_endpoint < DISPATCH_PER_ENDPOINT ? free_slot : NULL;
}

/* Sets up one attempt; CP_OK when in flight, else its failure is recorded. */
static int start(struct dispatcher *d, struct transfer *x, const struct whstore_due *due)
{
    struct whurl u;
    const char *why = "invalid url";
    char addr[64], line[CP_WEBHOOK_HOST_MAX + 80], sig[WHSIG_HEADER_MAX], id[24];
    x->id = due->id;
    x->endpoint_id = due->endpoint_id;
    x->attempts = due->attempts;
    x->age_ms = due->age_ms;
    x->give_up = due->give_up;
    x->started_ms = clock_mono_ms();
    memcpy(x->payload, due->payload, due->payload_len);
    x->payload_len = due->payload_len;
    if (whurl_parse(due->url, strlen(due->url), &u, &why) != CP_OK ||
        whurl_resolve(&u, &d->allow, addr, sizeof addr, &why) != CP_OK) {
        finish(d, x, 0, why); /* refused or unresolvable now: retried like a failure */
        memset(x, 0, sizeof *x);
        return CP_ERR_URL_REFUSED;
    }
    int64_t ts = timefmt_now_ms() / 1000;
    snprintf(id, sizeof id, "%" PRId64, due->event_id);
    if (whsig_header(due->secret, due->previous, id, ts, x->payload, x->payload_len, sig,
                     sizeof sig) != CP_OK) {
        finish(d, x, 0, "the endpoint's secret is not valid");
        memset(x, 0, sizeof *x);
        return CP_ERR_INTERNAL;
    }
    /* CURLOPT_RESOLVE pins the connection to the address just checked. */
    snprintf(line, sizeof line, strchr(addr, ':') ? "%s:%d:[%s]" : "%s:%d:%s", u.host, u.port,
             addr);
    x->resolve = curl_slist_append(NULL, line);
    x->headers = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(line, sizeof line, "webhook-id: %s", id);
    x->headers = curl_slist_append(x->headers, line);
    snprintf(line, sizeof line, "webhook-timestamp: %" PRId64, ts);
    x->headers = curl_slist_append(x->headers, line);
    char sigline[WHSIG_HEADER_MAX + 32];
    snprintf(sigline, sizeof sigline, "webhook-signature: %s", sig);
    x->headers = curl_slist_append(x->headers, sigline);
    x->headers = curl_slist_append(x->headers, "Expect:");
    x->easy = curl_easy_init();
    const struct cp_conf *c = d->conf;
    if (x->easy == NULL || x->resolve == NULL || x->headers == NULL ||
        curl_easy_setopt(x->easy, CURLOPT_URL, due->url) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_RESOLVE, x->resolve) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->payload) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)x->payload_len) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)c->webhook_connect_timeout_ms) !=
            CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)c->webhook_timeout_ms) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        (c->webhook_ca_file[0] != '\0' &&
         curl_easy_setopt(x->easy, CURLOPT_CAINFO, c->webhook_ca_file) != CURLE_OK) ||
        curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "coupon-webhooks/1") != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, discard_body) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->error) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x) != CURLE_OK ||
        curl_multi_add_handle(d->multi, x->easy) != CURLM_OK) {
        log_error("webhooks: delivery %" PRId64 ": libcurl set-up failed", x->id);
        if (x->easy != NULL)
            curl_easy_cleanup(x->easy);
        x->easy = NULL;
        release(d, x);
        return CP_ERR_NOMEM;
    }
    return CP_OK;
}

static int on_due(const struct whstore_due *due, void *arg)
{
    struct dispatcher *d = arg;
    struct transfer *x = slot_for(d, due);
    if (x != NULL)
        (void)start(d, x, due);
    return 0;
}

/* Completed transfers: their outcomes recorded, their slots freed. */
static void reap(struct dispatcher *d)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer *x = NULL;
        (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        long status = 0;
        (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        CURLcode res = msg->data.result;
        /* A body over the cap ends the transfer with a write error: the status counts. */
        if (res != CURLE_OK && !(res == CURLE_WRITE_ERROR && status > 0))
            status = 0;
        char why[CURL_ERROR_SIZE + 32];
        if (status == 0)
            snprintf(why, sizeof why, "%s", x->error[0] ? x->error : curl_easy_strerror(res));
        else if (status >= 300 && status < 400)
            snprintf(why, sizeof why, "redirect %ld not followed", status);
        else
            why[0] = '\0';
        finish(d, x, status, why);
        release(d, x);
    }
}

static int in_flight(const struct dispatcher *d)
{
    int n = 0;
    for (size_t i = 0; i < DISPATCH_INFLIGHT; i++)
        n += d->xfer[i].easy != NULL;
    return n;
}

/* The leader's part of a round: due deliveries started, transfers driven and reaped. */
static void deliver(struct dispatcher *d)
{
    int64_t now = clock_mono_ms();
    if (now >= d->leader_at) {
        d->leader_at = now + LEADER_CHECK_MS;
        int held = leader_check(d->leader) == 1;
        if (held != d->leading)
            atomic_store(&d->is_leader, held);
        d->leading = held;
    }
    /* The lock lives on the working connection: lost with it (leader_held), and asked
     * for again at once rather than at the next check. */
    if (d->leading && !leader_held(d->leader)) {
        d->leading = 0;
        d->leader_at = 0;
        atomic_store(&d->is_leader, 0);
    }
    if (!d->leading)
        return;
    if (now >= d->oldest_at) {
        int64_t age = 0;
        d->oldest_at = now + OLDEST_CHECK_MS;
        if (whstore_oldest_pending(d->db, &age) == CP_OK)
            atomic_store(&d->oldest_s, (uint64_t)age);
    }
    if (now >= d->due_at && in_flight(d) < DISPATCH_INFLIGHT) {
        d->due_at = now + d->conf->webhook_poll_ms; /* also while MariaDB is down */
        (void)whstore_due_list(d->db, DISPATCH_INFLIGHT * 2, on_due, d);
    }
    int running = 0;
    (void)curl_multi_perform(d->multi, &running);
    if (running > 0)
        (void)curl_multi_poll(d->multi, NULL, 0, 20, NULL);
    (void)curl_multi_perform(d->multi, &running);
    reap(d);
}

static void *dispatch_main(void *arg)
{
    struct dispatcher *d = arg;
    if (db_thread_init() != 0) {
        log_error("webhooks: mysql thread init failed; no dispatcher in this process");
        return NULL;
    }
    while (!atomic_load(&d->stop)) {
        /* No wait while transfers run or one just ended (its coupon's next may be due). */
        int busy = in_flight(d) > 0 || (d->leading && d->due_at == 0);
        consume(d, busy ? 0 : d->conf->webhook_poll_ms / 2 + 1);
        deliver(d);
    }
    for (size_t i = 0; i < DISPATCH_INFLIGHT; i++)
        release(d, &d->xfer[i]); /* unfinished: still pending, sent again later */
    db_thread_end();
    return NULL;
}

static int setup_kafka(struct dispatcher *d, char *err, size_t errlen)
{
    /* Offsets by hand (after the rows); a new group starts at the oldest event. */
    const char *const settings[][2] = {
        {"client.id", "coupon-webhooks"},     {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "3000"},    {"bootstrap.servers", d->conf->kafka_brokers},
        {"group.id", d->conf->webhook_group}, {"enable.auto.commit", "false"},
        {"auto.offset.reset", "earliest"},    {"enable.partition.eof", "false"},
    };
    size_t n = sizeof settings / sizeof settings[0];
    rd_kafka_conf_t *kc = kafka_log_conf_new(settings, n, err, errlen);
    if (kc == NULL)
        return CP_ERR_INVALID;
    d->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, errlen);
    if (d->rk == NULL) {
        rd_kafka_conf_destroy(kc);
        return CP_ERR_INVALID;
    }
    rd_kafka_poll_set_consumer(d->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, d->conf->kafka_issued_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, d->conf->kafka_redemption_topic,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(d->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "subscribe: %s", rd_kafka_err2str(e));
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

static void dispatch_free(struct dispatcher *d)
{
    if (d == NULL)
        return;
    if (d->rk != NULL) {
        rd_kafka_consumer_close(d->rk);
        rd_kafka_destroy(d->rk);
    }
    if (d->multi != NULL)
        curl_multi_cleanup(d->multi);
    leader_free(d->leader);
    db_free(d->db);
    free(d);
}

struct dispatcher *dispatch_start(const struct cp_conf *conf, char *errbuf, size_t errlen)
{
    struct dispatcher *d = calloc(1, sizeof *d);
    if (d == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(errbuf, errlen, "out of memory");
        free(d);
        return NULL;
    }
    d->conf = conf;
    if (whurl_cidrs_parse(conf->webhook_allow_cidrs, &d->allow, errbuf, errlen) != CP_OK)
        goto fail;
    if (db_open(conf, &d->db, errbuf, errlen) != CP_OK)
        goto fail;
    d->leader = leader_new(d->db, "coupon_webhook_dispatch", "webhooks");
    d->multi = curl_multi_init();
    if (d->leader == NULL || d->multi == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    if (setup_kafka(d, errbuf, errlen) != CP_OK)
        goto fail;
    int e = pthread_create(&d->thread, NULL, dispatch_main, d);
    if (e != 0) {
        snprintf(errbuf, errlen, "dispatcher thread: %s", strerror(e));
        goto fail;
    }
    return d;
fail:
    dispatch_free(d);
    return NULL;
}

void dispatch_stop(struct dispatcher *d)
{
    if (d == NULL)
        return;
    atomic_store(&d->stop, 1);
    int e = pthread_join(d->thread, NULL);
    if (e != 0)
        log_error("webhooks: join: %s", strerror(e));
    dispatch_free(d);
}

void dispatch_get_stats(struct dispatcher *d, struct dispatch_stats *out)
{
    out->created = atomic_load(&d->created);
    out->delivered = atomic_load(&d->delivered);
    out->retried = atomic_load(&d->retried);
    out->failed = atomic_load(&d->failed);
    out->latency_ms = atomic_load(&d->latency_ms);
    out->oldest_pending_s = atomic_load(&d->oldest_s);
    out->leader = atomic_load(&d->is_leader);
}
