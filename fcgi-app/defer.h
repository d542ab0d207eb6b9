/*
 * defer.h - requests parked until the end of their worker loop round.
 *
 * A request thread (worker.c) reads every request that arrived in one round of its
 * loop before it answers those that asked to wait: a handler that would rather do
 * its work for many requests at once (the issue path: one Redis pipeline of
 * scripts per round instead of one round trip per claim) parks its request here
 * with a struct defer_ops and a copy of its state, and writes no response. At the
 * end of the round the worker calls defer_round: each ops' flush once, with every
 * state parked with it in that round (in the order parked), then each parked
 * request's finish, which writes its response, and the worker sends it. A request
 * never waits across rounds, so a stopping thread has nothing parked to account
 * for. The transport knows no route and no route knows the transport: the ops are
 * the handler's, the slots and the answering the worker's.
 *
 * Costs: everything is allocated by defer_new (a state area of DEFER_STATE_MAX bytes
 * per slot); parking copies the state, nothing else. One struct defer per thread,
 * used by that thread only.
 */
#ifndef COUPON_DEFER_H
#define COUPON_DEFER_H

#include <stddef.h>

#include "http.h"

struct app_thread;
struct defer;

/* The bytes of state a parked request may keep. */
#define DEFER_STATE_MAX 128
/* Different ops parked in one round (each is flushed once). */
#define DEFER_KINDS_MAX 4

/* One kind of deferred work, static and owned by the handler's module. */
struct defer_ops {
    /* Once per round: the n >= 1 states parked with these ops, in the order parked. */
    void (*flush)(struct app_thread *t, void *const *states, int n);
    /* Then once per parked request: its response, from its state after flush. */
    void (*finish)(struct app_thread *t, void *state, struct http_response *resp);
};

/* What the worker does around each finish: resume prepares the response (its buffer,
 * the log's request id) before finish, answer sends it after. */
struct defer_host {
    void (*resume)(void *ctx, int slot, struct http_response *resp);
    void (*answer)(void *ctx, int slot, struct http_response *resp);
    void *ctx;
};

/* For a thread of nslots request slots; NULL when out of memory. */
struct defer *defer_new(int nslots);
/* NULL: no-op. */
void defer_free(struct defer *d);

/* The worker, before it dispatches the request of slot (0..nslots-1). */
void defer_begin(struct defer *d, int slot);
/*
 * A handler, inside the dispatch of the request begun last: parks that request with
 * a copy of size bytes of state. CP_OK (write no response: finish will), or
 * CP_ERR_UNAVAILABLE (d is NULL: no worker loop), CP_ERR_LIMIT (size over
 * DEFER_STATE_MAX, more than DEFER_KINDS_MAX ops this round, or already parked) -
 * then the handler answers now.
 */
int defer_park(struct defer *d, const struct defer_ops *ops, const void *state, size_t size);
/* The worker, after the dispatch: 1 when the request begun last was parked. */
int defer_parked(const struct defer *d);
/* Requests parked in this round. */
int defer_count(const struct defer *d);
/* The worker, once at the end of every round: flushes and finishes what was parked
 * (nothing when nothing was). */
void defer_round(struct defer *d, struct app_thread *t, const struct defer_host *host);

#endif
