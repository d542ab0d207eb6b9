/*
 * whstore.h - every SQL statement of the webhooks (db/migrations/005_webhooks.sql):
 * the admin API's endpoints and deliveries (fcgi-app/webhooks_api.c) and the
 * dispatcher's fan-out, due list and outcomes (consumer/dispatch.c).
 *
 * Each function is one prepared statement on the caller's connection (autocommit)
 * through run(), which has the shape of common/db's db_exec/db_fetch_each, so the
 * move onto that client replaces run() and nothing else. Rows are handed to a
 * callback one at a time in a struct the caller does not own past the call.
 * Returns CP_OK, CP_ERR_NOT_FOUND (no such row), or CP_ERR_UNAVAILABLE (the
 * connection failed: the caller drops it). A connection belongs to one thread.
 */
#ifndef COUPON_WHSTORE_H
#define COUPON_WHSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

#include "cp_limits.h"
#include "whsig.h"

#define WHSTORE_EVENTS_MAX 160 /* the SET column as text: "coupon.issued,coupon.redeemed" */
#define WHSTORE_TYPE_MAX   64
#define WHSTORE_ERROR_MAX  256

struct whstore_endpoint {
    int64_t id;
    char url[CP_WEBHOOK_URL_MAX + 1];
    char events[WHSTORE_EVENTS_MAX];
    int enabled;
    int64_t created_ms;        /* unix ms */
    int64_t previous_until_ms; /* 0: no rotation overlap running */
};

enum whstore_state { WHSTORE_PENDING, WHSTORE_DELIVERED, WHSTORE_FAILED };

struct whstore_delivery {
    int64_t id, endpoint_id, event_id, coupon_id;
    char event_type[WHSTORE_TYPE_MAX];
    int state; /* enum whstore_state */
    int64_t attempts;
    int64_t last_status; /* 0: none yet */
    char last_error[WHSTORE_ERROR_MAX];
    int64_t next_attempt_ms, created_ms, delivered_ms; /* unix ms; delivered 0: not */
};

/* What a delivery attempt needs: the delivery, its endpoint and the secrets to sign with. */
struct whstore_due {
    int64_t id, endpoint_id, event_id, coupon_id, attempts;
    int64_t age_ms; /* since the row was created */
    int give_up;    /* give_up_at passed: a failure now is final */
    char url[CP_WEBHOOK_URL_MAX + 1];
    char secret[WHSIG_SECRET_MAX];
    char previous[WHSIG_SECRET_MAX]; /* "" unless inside the rotation overlap */
    char payload[CP_WEBHOOK_PAYLOAD_MAX];
    size_t payload_len;
};

typedef int (*whstore_endpoint_fn)(const struct whstore_endpoint *e, void *arg);
typedef int (*whstore_delivery_fn)(const struct whstore_delivery *d, void *arg);
typedef int (*whstore_due_fn)(const struct whstore_due *d, void *arg);

const char *whstore_state_name(int state);

/* Admin API. */
int whstore_endpoint_insert(struct db *db, const char *url, const char *events, const char *secret,
                            int64_t *id);
int whstore_endpoint_list(struct db *db, int64_t limit, whstore_endpoint_fn fn, void *arg);
/* CP_ERR_NOT_FOUND for an unknown or already disabled endpoint. */
int whstore_endpoint_disable(struct db *db, int64_t id);
/* The current secret becomes the previous one, valid overlap_s more. */
int whstore_endpoint_rotate(struct db *db, int64_t id, const char *secret, int64_t overlap_s);
/* The newest deliveries of an endpoint first (CP_ERR_NOT_FOUND: no such endpoint). */
int whstore_delivery_list(struct db *db, int64_t endpoint_id, int64_t limit, whstore_delivery_fn fn,
                          void *arg);
/* Back to pending, due now, with window_s more to succeed. */
int whstore_redeliver(struct db *db, int64_t endpoint_id, int64_t delivery_id, int64_t window_s);

/* Dispatcher. One delivery per enabled endpoint subscribed to type (INSERT IGNORE: the
 * same event again creates nothing); *created how many rows were new. */
int whstore_fanout(struct db *db, int64_t event_id, const char *type, int64_t coupon_id,
                   const char *payload, size_t payload_len, int64_t window_s, uint64_t *created);
/* Due deliveries, oldest first: per (endpoint, coupon) only the pending one with the
 * smallest event id, and only once its next_attempt_at passed. */
int whstore_due_list(struct db *db, int64_t limit, whstore_due_fn fn, void *arg);
/* The outcome of one attempt: delivered; or failed (final) / pending again after
 * retry_ms. status 0: no HTTP answer; error may be "". */
int whstore_attempted(struct db *db, int64_t id, int state, int64_t status, const char *error,
                      int64_t retry_ms);
/* The age in seconds of the oldest pending delivery (0: none). */
int whstore_oldest_pending(struct db *db, int64_t *age_s);

/* How many endpoints are enabled (the fan-out writes nothing when none is). */
int whstore_enabled_count(struct db *db, int64_t *n);

#endif
