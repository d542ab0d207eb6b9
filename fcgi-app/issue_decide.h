/*
 * issue_decide.h - the issue path's decision, apart from HTTP and from the
 * servers: every effect goes through a function table (struct issue_ops), so
 * the whole decision is unit-tested with fakes (tests/unit/test_issue_decide.c)
 * while fcgi-app/issue.c supplies the real Redis, Kafka and MariaDB calls.
 *
 *   1. L1 flag (ops->flag_get): ended / not started / unknown answer at once;
 *      sold out costs one ops->holder lookup, so a holder still gets their 409
 *      (issue.c answers it from the process's holder snapshot when it has one).
 *   2. issue_ack=kafka: Kafka known down -> unavailable before anything is reserved.
 *      issue_ack=redis: the producer's local queue full -> unavailable.
 *   3. ops->run_script (lua/issue.lua); meta missing -> ops->reload_meta, once.
 *      redis_wait_replicas N >= 1: WAIT N in the same round trip; a claim fewer
 *      than N replicas acknowledged -> CP_ERR_NOT_REPLICATED (503), no event
 *      produced from here: the claim and its pending record stay in Redis, so
 *      the consumer's reconciler produces the event if this master survives
 *      (the user's retry then gets 409 with their sequence), and nothing was
 *      published if a failover lost it. A 201 then means a replica has it.
 *   4. issue_ack=redis: ops->send_async, CP_OK (201) whatever it says - the claim
 *      and its pending record are in Redis, the reconciler covers a lost send.
 *      issue_ack=kafka: ops->send_sync; DELIVERED -> ops->clear_pending, CP_OK;
 *      NOT_PERSISTED -> ops->rollback, unavailable; POSSIBLY_PERSISTED ->
 *      CP_ERR_AMBIGUOUS (202).
 * Refusals with a known end (startAt, endAt) set flags that expire before it.
 * Stateless; thread-safe as far as the ops are.
 */
#ifndef COUPON_ISSUE_DECIDE_H
#define COUPON_ISSUE_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "cp_limits.h"
#include "metrics.h"
#include "producer.h"

/* The L1 fast-path flags of one coupon (the value stored under its 'f' key). */
enum issue_flag {
    ISSUE_FLAG_SOLD_OUT = 'S',
    ISSUE_FLAG_ENDED = 'E',
    ISSUE_FLAG_NOT_STARTED = 'N',
    ISSUE_FLAG_NO_COUPON = 'X',
};

#define ISSUE_FLAG_TTL_MS         1000 /* a flag answers for at most this long */
/* A flag whose answer stops being true at a known moment expires this much before it:
 * Redis measured the moment, the flag is set once the reply has travelled back. */
#define ISSUE_FLAG_EDGE_MARGIN_MS 10

struct issue_ops {
    /* CP_OK and *flag, or CP_ERR_NOT_FOUND. */
    int (*flag_get)(void *ctx, int64_t coupon_id, char *flag);
    void (*flag_set)(void *ctx, int64_t coupon_id, char flag, int64_t ttl_ms);
    /* 1 = holds it (*seq, *at), 0 = not, CP_ERR_UNAVAILABLE. */
    int (*holder)(void *ctx, int64_t coupon_id, int64_t user_id, int64_t *seq, int64_t *at);
    /* lua/issue.lua's reply {code, a, b}, and with wait_replicas > 0 the replicas a
     * WAIT after it (same round trip, same connection) counted in *acked (0 when
     * WAIT failed); CP_OK or CP_ERR_UNAVAILABLE. */
    int (*run_script)(void *ctx, int64_t coupon_id, int64_t user_id, const char *event_id,
                      int wait_replicas, long long reply[3], long long *acked);
    /* Meta missing: CP_OK (written: run the script again), CP_ERR_NO_COUPON, or
     * CP_ERR_UNAVAILABLE with *detail. */
    int (*reload_meta)(void *ctx, int64_t coupon_id, const char **detail);
    int (*rollback)(void *ctx, int64_t coupon_id, int64_t user_id, int64_t sequence);
    void (*clear_pending)(void *ctx, int64_t coupon_id, int64_t user_id);
    void (*invalidate)(void *ctx, int64_t coupon_id);
    int (*producer_up)(void *ctx);
    int (*producer_has_room)(void *ctx);
    enum producer_outcome (*send_sync)(void *ctx, const char *key, size_t klen, const char *value,
                                       size_t vlen);
    int (*send_async)(void *ctx, const char *key, size_t klen, const char *value, size_t vlen);
    int (*new_event_id)(char out[CP_EVENT_ID_HEX + 1]);
    void (*count)(void *ctx, enum metrics_counter counter);
};

struct issue_result {
    int64_t sequence; /* issued (or already held: CP_ERR_DUPLICATE) */
    int64_t issued_at_ms;
    const char *detail; /* static text for CP_ERR_UNAVAILABLE */
};

/* How a claim is acknowledged (issue_ack, redis_wait_replicas). */
struct issue_mode {
    int ack_kafka;     /* issue_ack=kafka: 201 once the broker has the event */
    int wait_replicas; /* 0, or the Redis replicas that must have the claim before a 201 */
};

/* A claim between the decision's two halves: what the script needs. */
struct issue_claim {
    int64_t coupon_id, user_id;
    char event_id[CP_EVENT_ID_HEX + 1];
};

/* What run_script gave for a claim (rc CP_OK: reply and acked are its outputs). */
struct issue_script_run {
    int rc;
    long long reply[3];
    long long acked;
};

/* issue_decide_begin's answer when the claim needs the script (a positive value: never
 * a CP_ERR_*). */
#define ISSUE_RUN_SCRIPT 1

/*
 * The decision in two halves, so that a caller can run the scripts of many claims in
 * one Redis pipeline (fcgi-app/worker.c's request slots): begin does steps 1-2 and
 * returns ISSUE_RUN_SCRIPT with *claim filled, or the final answer as issue_decide;
 * the caller runs lua/issue.lua for the claim as ops->run_script would and hands its
 * outcome to end, which does steps 3-4 (a meta reload and the second run of the
 * script go through ops, synchronously) and returns what issue_decide returns.
 */
int issue_decide_begin(const struct issue_ops *ops, void *ctx, const struct issue_mode *mode,
                       int64_t coupon_id, int64_t user_id, struct issue_claim *claim,
                       struct issue_result *out);
int issue_decide_end(const struct issue_ops *ops, void *ctx, const struct issue_mode *mode,
                     const struct issue_claim *claim, const struct issue_script_run *run,
                     struct issue_result *out);

/*
 * Decides one claim (begin, ops->run_script, end). Returns CP_OK (201), CP_ERR_AMBIGUOUS (202, issue_ack=kafka
 * only), or CP_ERR_NO_COUPON, CP_ERR_DUPLICATE, CP_ERR_SOLD_OUT,
 * CP_ERR_NOT_STARTED, CP_ERR_ENDED, CP_ERR_NOT_REPLICATED, CP_ERR_UNAVAILABLE
 * (out->detail says which).
 */
int issue_decide(const struct issue_ops *ops, void *ctx, const struct issue_mode *mode,
                 int64_t coupon_id, int64_t user_id, struct issue_result *out);

#endif
