/*
 * metrics.h - counters shared by every worker process, rendered as Prometheus text.
 *
 * The counters live in a file-backed shared mapping (metrics_path): the
 * standalone master creates and zeroes it before forking, processes started by
 * spawn-fcgi map the same file. Every process adds with relaxed atomics, so
 * GET /metrics on any worker shows the sum over all of them - not one worker's
 * view. Layout is fixed-size (routes x status slots, a latency histogram per
 * route, named counters and gauges); a version word guards against a file left
 * by an incompatible build. Opening is safe while other processes open or use
 * the file: the check and initialisation happen under flock(2), and the file
 * is never truncated or shrunk (that would SIGBUS a process mapping it). All
 * functions are thread- and process-safe.
 */
#ifndef COUPON_METRICS_H
#define COUPON_METRICS_H

#include <stdint.h>

#include "http.h"

enum metrics_route {
    ROUTE_ISSUE,
    ROUTE_ISSUE_REF,
    ROUTE_COUPON_GET,
    ROUTE_COUPON_CREATE,
    ROUTE_COUPON_PATCH,
    ROUTE_ISSUE_STATUS,
    ROUTE_USER_COUPONS,
    ROUTE_ADMIN_STATS,
    ROUTE_HEALTH,
    ROUTE_METRICS,
    ROUTE_REDEEM,
    ROUTE_REDEEM_CANCEL,
    ROUTE_REDEEM_BY_CODE,
    ROUTE_ADMIN_LIST,
    ROUTE_ADMIN_SERIES,
    ROUTE_VALIDATE,
    ROUTE_HOLD,
    ROUTE_HOLD_RELEASE,
    ROUTE_HOLD_BY_CODE,
    ROUTE_ADMIN_WEBHOOKS,
    ROUTE_UNKNOWN,
    ROUTE_COUNT_
};

enum metrics_counter {
    M_REDIS_ERRORS,
    M_KAFKA_ERRORS,
    M_DB_ERRORS,
    M_ROLLBACKS,
    M_PENDING,
    M_ISSUED,
    M_L1_HITS,
    M_L1_MISSES,
    M_L2_HITS,
    M_L2_MISSES,
    M_FASTPATH_REJECTS,
    M_SCRIPT_RELOADS,
    M_INVALIDATIONS,
    M_EVENTS_ACKED,
    M_EVENTS_UNACKED,
    M_SETTLED,
    M_OUTBOX_FULL,
    /* Redemptions by outcome (coupon_redemptions_total{outcome=...}). */
    M_REDEEM_REDEEMED,
    M_REDEEM_REPLAYED,
    M_REDEEM_CONFLICT,
    M_REDEEM_EXPIRED,
    M_REDEEM_NOT_FOUND,
    M_REDEEM_NOT_PERSISTED,
    M_REDEEM_AMBIGUOUS,
    M_REDEEM_CANCELLED,
    M_REDEEM_CANCEL_NOOP,
    M_REDEEM_CANCEL_CONFLICT,
    M_REDEEM_UNAVAILABLE,
    M_WORKER_RESTARTS,
    M_NOT_REPLICATED, /* issue claims answered 503: WAIT saw too few replicas */
    /* Who is asking (auth.c). */
    M_AUTH_VERIFIED,    /* tokens whose signature was verified */
    M_AUTH_CACHED,      /* tokens found in the verified-token cache */
    M_AUTH_REFUSED,     /* requests answered 401 */
    M_AUTH_FORBIDDEN,   /* requests answered 403: acting for another user, missing scope */
    M_RATE_LIMITED,     /* requests answered 429 by the per-user limits */
    M_AUTH_KEY_RELOADS, /* JWKS files loaded after a change */
    /* Money (issue 26): redemptions with an orderAmount refused before the decision. */
    M_REDEEM_BELOW_MINIMUM,
    M_REDEEM_BAD_AMOUNT,
    /* Validations by outcome (coupon_validations_total{outcome=...}). */
    M_VALIDATE_VALID,
    M_VALIDATE_NOT_ISSUED,
    M_VALIDATE_EXPIRED,
    M_VALIDATE_REDEEMED,
    M_VALIDATE_HELD, /* reserved: holds are not built yet */
    M_VALIDATE_BELOW_MINIMUM,
    M_VALIDATE_NOT_FOUND,   /* 404: unknown code or coupon */
    M_VALIDATE_BAD_REQUEST, /* 400/415 */
    M_VALIDATE_UNAVAILABLE, /* 503 */
    /* Checkout (issue 26): redemptions refused for another order's hold, and holds by
     * outcome (coupon_holds_total{outcome=...}). */
    M_REDEEM_HELD,
    M_HOLD_HELD,
    M_HOLD_REPLAYED,
    M_HOLD_RELEASED,
    M_HOLD_RELEASE_NOOP,
    M_COUNTER_COUNT_
};

enum metrics_gauge { G_IN_FLIGHT, G_WORKERS, G_GAUGE_COUNT_ };

struct metrics;

/*
 * Maps the file, creating it if absent. A new file, or one of another layout, is
 * initialised (zeroed) once, under the lock; an existing one keeps its counters,
 * unless `create` (the standalone master, before it forks) asks to start from zero.
 */
struct metrics *metrics_open(const char *path, int create, char *errbuf, size_t errlen);
void metrics_close(struct metrics *m);

void metrics_observe(struct metrics *m, enum metrics_route route, int status, int64_t micros);
void metrics_add(struct metrics *m, enum metrics_counter c, uint64_t n);
void metrics_gauge_add(struct metrics *m, enum metrics_gauge g, int64_t delta);
void metrics_gauge_set(struct metrics *m, enum metrics_gauge g, int64_t value);

/* Renders every counter, gauge and histogram as Prometheus text into resp (health.c
 * appends the consumers' samples after it). */
int metrics_render(struct metrics *m, struct http_response *resp);

const char *metrics_route_name(enum metrics_route r);

/* Answers of one route so far, by status slot: codes[i] (0 = a status without a slot of
 * its own) and counts[i]. Returns the number of slots filled (at most cap). */
int metrics_route_answers(struct metrics *m, enum metrics_route r, int *codes, uint64_t *counts,
                          size_t cap);

#endif
