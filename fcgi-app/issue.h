/*
 * issue.h - issuing a coupon: the atomic Redis decision, the durable Kafka
 * event, and the compensation when Kafka certainly did not take it.
 *
 *   fast path : L1 flag says sold out / ended / not started / no such coupon
 *               (kept <= 1 s, cleared by invalidation) -> answer without Redis
 *   decide    : EVALSHA lua/issue.lua (window by Redis TIME, duplicate, stock,
 *               then record user + sequence, and a pending record naming the
 *               event id) - one atomic step
 *   meta miss : load the coupon from MariaDB, write coupon:{ID}:meta, retry;
 *               refused (503) when MariaDB has issuances but Redis has
 *               neither the users nor the sequence (Redis lost their state)
 *   durable   : produce {eventId,couponId,userId,sequence,issuedAt} and wait
 *               for the broker's ack -> drop the pending record, 201
 *   NOT_PERSISTED      -> lua/rollback.lua (reservation and pending record), 503;
 *                         only when the produce was refused up front or by the broker
 *   POSSIBLY_PERSISTED -> keep both, 202; the consumer settles the record. Every
 *                         local failure (a time-out above all) lands here: a
 *                         rollback of an event Kafka did get would oversell
 *   Kafka known down   -> 503 before issue.lua runs: nothing reserved
 * Because the pending record is written with the reservation, a worker killed
 * (or a Redis reply lost) between the decision and Kafka's acknowledgement
 * leaves a record the consumer's reconciler re-produces: a reservation never
 * stays without its event.
 * Thread-safe: uses only the calling thread's struct app_thread.
 */
#ifndef COUPON_ISSUE_H
#define COUPON_ISSUE_H

#include <stdint.h>

#include "app.h"
#include "http.h"
#include "metrics.h"

enum issue_kind {
    ISSUE_ISSUED, ISSUE_PENDING, ISSUE_NOT_EXIST, ISSUE_DUPLICATE, ISSUE_SOLD_OUT,
    ISSUE_NOT_STARTED, ISSUE_ENDED, ISSUE_UNAVAILABLE
};

struct issue_result {
    enum issue_kind kind;
    int64_t sequence;
    int64_t issued_at_ms;
    const char *detail; /* static text for ISSUE_UNAVAILABLE */
};

/* Decides and records one issuance. Never fails otherwise: every outcome is a kind. */
void issue_coupon(struct app_thread *t, int64_t coupon_id, int64_t user_id,
                  struct issue_result *out);

/* POST /api/coupons/{id}/issue (path_coupon_id > 0) and POST /api/coupons/issue (0). */
void issue_handle(struct app_thread *t, const struct http_request *req,
                  struct http_response *resp, int64_t path_coupon_id);

/* Runs an embedded script by SHA on the thread's connection, loading it on first
 * use and after NOSCRIPT. argv[0..1] are filled here; argv[2..] are
 * numkeys, keys and arguments. Returns the reply or NULL (connection dropped). */
redisReply *issue_run_script(struct app_thread *t, char sha[41], const char *source,
                             int argc, const char **argv, size_t *argvlen);

#endif
