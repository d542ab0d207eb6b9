#include "first.h"

#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cp_err.h"
#include "log.h"

#define METRICS_VERSION 0x434f5507u /* "COU" v7: validation and hold counters */

static const int status_slots[] = {200, 201, 202, 204, 400, 401, 403, 404, 405,
                                   409, 410, 413, 414, 415, 422, 429, 500, 503};
#define NSTATUS      (sizeof status_slots / sizeof status_slots[0])
#define STATUS_OTHER NSTATUS

/* Upper bounds in microseconds. */
static const int64_t buckets_us[] = {500,   1000,   2000,   5000,    10000,  20000,
                                     50000, 100000, 250000, 1000000, 5000000};
#define NBUCKETS (sizeof buckets_us / sizeof buckets_us[0])

struct metrics_shm {
    atomic_uint version;
    atomic_uint_least64_t requests[ROUTE_COUNT_][NSTATUS + 1];
    atomic_uint_least64_t latency_bucket[ROUTE_COUNT_][NBUCKETS + 1];
    atomic_uint_least64_t latency_sum_us[ROUTE_COUNT_];
    atomic_uint_least64_t counters[M_COUNTER_COUNT_];
    atomic_int_least64_t gauges[G_GAUGE_COUNT_];
};

struct metrics {
    struct metrics_shm *shm;
};

static const char *const route_names[ROUTE_COUNT_] = {
    "issue",          "issue_reference", "coupon_get",   "coupon_create",
    "coupon_patch",   "issue_status",    "user_coupons", "admin_stats",
    "health",         "metrics",         "redeem",       "redeem_cancel",
    "redeem_by_code", "admin_list",      "admin_series", "validate",
    "hold",           "hold_release",    "hold_by_code", "admin_webhooks",
    "unknown"};

const char *metrics_route_name(enum metrics_route r)
{
    return route_names[r];
}

/*
 * Every opener takes an exclusive flock(2) on the file while it checks and
 * initialises it, so of several processes opening at once (spawn-fcgi starts
 * them together) exactly one initialises and the others map what it wrote.
 * The file only ever grows: shrinking or truncating it would pull the pages
 * from under a process that has it mapped (SIGBUS) and drop its counts.
 */
struct metrics *metrics_open(const char *path, int create, char *errbuf, size_t errlen)
{
    struct metrics *m = NULL;
    void *map = MAP_FAILED;
    struct stat st;
    int rc;
    const char *what = "open";
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    what = "flock";
    if (rc != 0)
        goto fail;
    what = "fstat";
    if (fstat(fd, &st) != 0)
        goto fail;
    what = "ftruncate";
    if ((size_t)st.st_size < sizeof(struct metrics_shm) &&
        ftruncate(fd, (off_t)sizeof(struct metrics_shm)) != 0)
        goto fail;
    what = "mmap";
    map = mmap(NULL, sizeof(struct metrics_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        goto fail;
    m = malloc(sizeof *m);
    if (m == NULL) {
        snprintf(errbuf, errlen, "metrics file %s: out of memory", path);
        goto out;
    }
    m->shm = map;
    map = MAP_FAILED;
    /* Under the lock: a fresh (zeroed) file or one of another layout is set up here,
     * once; the master's open (create) starts the counters from zero. */
    if (create || atomic_load(&m->shm->version) != METRICS_VERSION) {
        memset(m->shm, 0, sizeof *m->shm);
        atomic_store(&m->shm->version, METRICS_VERSION);
    }
    goto out;
fail:
    snprintf(errbuf, errlen, "metrics file %s: %s: %s", path, what, strerror(errno));
out:
    if (map != MAP_FAILED)
        munmap(map, sizeof(struct metrics_shm));
    /* Unlocked by hand: a mapping keeps the open file (and so its flock) alive after close. */
    if (fd >= 0 && flock(fd, LOCK_UN) != 0 && m != NULL)
        log_warn("metrics file %s: unlock: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return m;
}

void metrics_close(struct metrics *m)
{
    if (m == NULL)
        return;
    munmap(m->shm, sizeof *m->shm);
    free(m);
}

void metrics_observe(struct metrics *m, enum metrics_route route, int status, int64_t micros)
{
    size_t slot = STATUS_OTHER;
    for (size_t i = 0; i < NSTATUS; i++)
        if (status_slots[i] == status) {
            slot = i;
            break;
        }
    atomic_fetch_add_explicit(&m->shm->requests[route][slot], 1, memory_order_relaxed);
    size_t b = NBUCKETS;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (micros <= buckets_us[i]) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&m->shm->latency_bucket[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->shm->latency_sum_us[route], (uint64_t)(micros < 0 ? 0 : micros),
                              memory_order_relaxed);
}

void metrics_add(struct metrics *m, enum metrics_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&m->shm->counters[c], n, memory_order_relaxed);
}

void metrics_gauge_add(struct metrics *m, enum metrics_gauge g, int64_t delta)
{
    atomic_fetch_add_explicit(&m->shm->gauges[g], delta, memory_order_relaxed);
}

void metrics_gauge_set(struct metrics *m, enum metrics_gauge g, int64_t value)
{
    atomic_store_explicit(&m->shm->gauges[g], value, memory_order_relaxed);
}

static uint64_t load(atomic_uint_least64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static double ratio(uint64_t hits, uint64_t misses)
{
    return hits + misses == 0 ? 0.0 : (double)hits / (double)(hits + misses);
}

struct outcome {
    enum metrics_counter c;
    const char *outcome;
};

/* One counter family by outcome: NAME{outcome="..."}. */
static int render_outcomes(struct http_response *resp, struct metrics_shm *s, const char *name,
                           const char *help, const struct outcome *o, size_t n)
{
    int rc = http_response_printf(resp, "# HELP %s %s by outcome.\n# TYPE %s counter\n", name, help,
                                  name);
    for (size_t i = 0; i < n && rc == CP_OK; i++)
        rc = http_response_printf(resp, "%s{outcome=\"%s\"} %llu\n", name, o[i].outcome,
                                  (unsigned long long)load(&s->counters[o[i].c]));
    return rc;
}

int metrics_render(struct metrics *m, struct http_response *resp)
{
    struct metrics_shm *s = m->shm;
    static const struct {
        enum metrics_counter c;
        const char *name, *help;
    } named[] = {
        {M_REDIS_ERRORS, "coupon_redis_errors_total", "Redis calls that failed"},
        {M_KAFKA_ERRORS, "coupon_kafka_errors_total", "Kafka sends that were not delivered"},
        {M_DB_ERRORS, "coupon_db_errors_total", "MariaDB calls that failed"},
        {M_ROLLBACKS, "coupon_issue_rollbacks_total",
         "Reservations rolled back after a Kafka send certainly failed"},
        {M_PENDING, "coupon_issue_pending_total",
         "Issuances answered 202 (Kafka outcome ambiguous)"},
        {M_ISSUED, "coupon_issued_total",
         "Issuances answered 201 (issue_ack=redis: recorded in Redis; kafka: acknowledged)"},
        {M_EVENTS_ACKED, "coupon_issue_events_acked_total",
         "Asynchronous coupon.issue events acknowledged by Kafka (issue_ack=redis)"},
        {M_EVENTS_UNACKED, "coupon_issue_events_unacked_total",
         "Asynchronous events Kafka refused or that were purged; their pending records stay "
         "for the reconciler"},
        {M_SETTLED, "coupon_outbox_settled_total",
         "Pending records removed after Kafka acknowledged their events"},
        {M_OUTBOX_FULL, "coupon_issue_outbox_full_total",
         "Issue requests refused (503) because too many events wait for Kafka"},
        {M_WORKER_RESTARTS, "coupon_worker_restarts_total",
         "Worker processes the master replaced after they died"},
        {M_NOT_REPLICATED, "coupon_issue_not_replicated_total",
         "Claims answered 503 because fewer Redis replicas than redis_wait_replicas had them"},
        {M_FASTPATH_REJECTS, "coupon_issue_fastpath_rejects_total",
         "Sold-out/expired answers served from L1 without Redis"},
        {M_SCRIPT_RELOADS, "coupon_redis_script_reloads_total",
         "Scripts sent in full: SCRIPT LOAD, or EVAL after NOSCRIPT"},
        {M_INVALIDATIONS, "coupon_cache_invalidations_total", "Invalidation messages received"},
        {M_L1_HITS, "coupon_l1_hits_total", "L1 (in-process LRU) hits"},
        {M_L1_MISSES, "coupon_l1_misses_total", "L1 misses"},
        {M_L2_HITS, "coupon_l2_hits_total", "L2 (Redis cache) hits"},
        {M_L2_MISSES, "coupon_l2_misses_total", "L2 misses"},
        {M_AUTH_VERIFIED, "coupon_auth_tokens_verified_total",
         "Bearer tokens whose signature was verified (cache misses)"},
        {M_AUTH_CACHED, "coupon_auth_tokens_cached_total",
         "Bearer tokens found in the per-worker cache of verified tokens"},
        {M_AUTH_REFUSED, "coupon_auth_refused_total", "Requests answered 401 (no or bad identity)"},
        {M_AUTH_FORBIDDEN, "coupon_auth_forbidden_total",
         "Requests answered 403: another user's resource, or a scope the caller lacks"},
        {M_RATE_LIMITED, "coupon_rate_limited_total",
         "Issue and redemption attempts answered 429 by the per-user limits"},
        {M_AUTH_KEY_RELOADS, "coupon_auth_key_reloads_total",
         "JWKS files loaded after they changed"},
    };
    int rc = http_response_printf(resp, "# HELP coupon_http_requests_total Requests by route and "
                                        "status.\n# TYPE coupon_http_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT_ && rc == CP_OK; r++)
        for (size_t i = 0; i <= NSTATUS && rc == CP_OK; i++) {
            uint64_t v = load(&s->requests[r][i]);
            if (v == 0)
                continue;
            if (i == STATUS_OTHER)
                rc =
                    http_response_printf(resp,
                                         "coupon_http_requests_total{route=\"%s\",status=\"other\"}"
                                         " %llu\n",
                                         route_names[r], (unsigned long long)v);
            else
                rc = http_response_printf(resp,
                                          "coupon_http_requests_total{route=\"%s\",status=\"%d\"}"
                                          " %llu\n",
                                          route_names[r], status_slots[i], (unsigned long long)v);
        }
    if (rc == CP_OK)
        rc = http_response_printf(resp, "# HELP coupon_http_request_duration_seconds Latency by "
                                        "route.\n# TYPE coupon_http_request_duration_seconds "
                                        "histogram\n");
    for (int r = 0; r < ROUTE_COUNT_ && rc == CP_OK; r++) {
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKETS; b++)
            cum += load(&s->latency_bucket[r][b]);
        if (cum == 0)
            continue;
        uint64_t total = cum;
        cum = 0;
        for (size_t b = 0; b < NBUCKETS && rc == CP_OK; b++) {
            cum += load(&s->latency_bucket[r][b]);
            rc = http_response_printf(
                resp, "coupon_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                route_names[r], (double)buckets_us[b] / 1e6, (unsigned long long)cum);
        }
        if (rc == CP_OK)
            rc = http_response_printf(
                resp,
                "coupon_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                "coupon_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                "coupon_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                route_names[r], (unsigned long long)total, route_names[r],
                (double)load(&s->latency_sum_us[r]) / 1e6, route_names[r],
                (unsigned long long)total);
    }
    for (size_t i = 0; i < sizeof named / sizeof named[0] && rc == CP_OK; i++)
        rc = http_response_printf(resp, "# HELP %s %s.\n# TYPE %s counter\n%s %llu\n",
                                  named[i].name, named[i].help, named[i].name, named[i].name,
                                  (unsigned long long)load(&s->counters[named[i].c]));
    static const struct outcome redemptions[] = {
        {M_REDEEM_REDEEMED, "redeemed"},
        {M_REDEEM_REPLAYED, "replayed"},
        {M_REDEEM_CONFLICT, "already_redeemed"},
        {M_REDEEM_HELD, "held_by_another_order"},
        {M_REDEEM_EXPIRED, "expired"},
        {M_REDEEM_NOT_FOUND, "not_found"},
        {M_REDEEM_NOT_PERSISTED, "not_yet_persisted"},
        {M_REDEEM_AMBIGUOUS, "ambiguous_code"},
        {M_REDEEM_CANCELLED, "cancelled"},
        {M_REDEEM_CANCEL_NOOP, "cancel_noop"},
        {M_REDEEM_CANCEL_CONFLICT, "cancel_order_mismatch"},
        {M_REDEEM_UNAVAILABLE, "unavailable"},
        {M_REDEEM_BELOW_MINIMUM, "order_below_minimum"},
        {M_REDEEM_BAD_AMOUNT, "bad_amount"},
    };
    static const struct outcome holds[] = {
        {M_HOLD_HELD, "held"},
        {M_HOLD_REPLAYED, "replayed"},
        {M_HOLD_RELEASED, "released"},
        {M_HOLD_RELEASE_NOOP, "release_noop"},
    };
    static const struct outcome validations[] = {
        {M_VALIDATE_VALID, "valid"},
        {M_VALIDATE_NOT_ISSUED, "coupon_not_issued"},
        {M_VALIDATE_EXPIRED, "coupon_expired"},
        {M_VALIDATE_REDEEMED, "coupon_already_redeemed"},
        {M_VALIDATE_HELD, "coupon_held"},
        {M_VALIDATE_BELOW_MINIMUM, "order_below_minimum"},
        {M_VALIDATE_NOT_FOUND, "not_found"},
        {M_VALIDATE_BAD_REQUEST, "bad_request"},
        {M_VALIDATE_UNAVAILABLE, "unavailable"},
    };
    if (rc == CP_OK)
        rc = render_outcomes(resp, s, "coupon_redemptions_total", "Redemption requests",
                             redemptions, sizeof redemptions / sizeof redemptions[0]);
    if (rc == CP_OK)
        rc = render_outcomes(resp, s, "coupon_holds_total", "Hold requests", holds,
                             sizeof holds / sizeof holds[0]);
    if (rc == CP_OK)
        rc = render_outcomes(resp, s, "coupon_validations_total",
                             "Validation requests (POST /api/redemptions/validate)", validations,
                             sizeof validations / sizeof validations[0]);
    if (rc == CP_OK)
        rc = http_response_printf(
            resp,
            "# HELP coupon_l1_hit_ratio L1 hits / lookups since start.\n"
            "# TYPE coupon_l1_hit_ratio gauge\ncoupon_l1_hit_ratio %.4f\n"
            "# HELP coupon_l2_hit_ratio L2 hits / lookups since start.\n"
            "# TYPE coupon_l2_hit_ratio gauge\ncoupon_l2_hit_ratio %.4f\n"
            "# HELP coupon_http_requests_in_flight Requests being served now.\n"
            "# TYPE coupon_http_requests_in_flight gauge\ncoupon_http_requests_in_flight %lld\n"
            "# HELP coupon_workers Worker processes alive.\n"
            "# TYPE coupon_workers gauge\ncoupon_workers %lld\n",
            ratio(load(&s->counters[M_L1_HITS]), load(&s->counters[M_L1_MISSES])),
            ratio(load(&s->counters[M_L2_HITS]), load(&s->counters[M_L2_MISSES])),
            (long long)atomic_load(&s->gauges[G_IN_FLIGHT]),
            (long long)atomic_load(&s->gauges[G_WORKERS]));
    return rc;
}

int metrics_route_answers(struct metrics *m, enum metrics_route r, int *codes, uint64_t *counts,
                          size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i <= NSTATUS && n < cap; i++, n++) {
        codes[n] = i == STATUS_OTHER ? 0 : status_slots[i];
        counts[n] = load(&m->shm->requests[r][i]);
    }
    return (int)n;
}
