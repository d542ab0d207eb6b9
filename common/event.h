/*
 * event.h - the Kafka event formats, shared by the producer (coupon-fcgi) and
 * the consumer (coupon-consumer) so the two can never drift apart.
 *
 * coupon.issue value (JSON):
 *   {"eventId":"<32 hex>","couponId":42,"userId":7,"sequence":1,
 *    "issuedAt":"2026-11-24T19:31:41.123Z"}
 * key: "<couponId>:<userId>" - hashing spreads one hot coupon over every
 * partition, while all events of one (coupon, user) pair stay in one partition.
 *
 * coupon.issued value (downstream, one per newly persisted row):
 *   {"id":<coupon_issue.id>,"couponId":..,"userId":..,"sequence":..,
 *    "issuedAt":"..","persistedAt":".."}
 * coupon.redemption value (one topic for every kind, so that Kafka keeps the
 * hold -> redeem -> cancel -> redeem order of one coupon in one partition):
 *   {"type":"coupon.redeemed","couponId":..,"userId":..,"sequence":..,
 *    "version":..,"orderId":"..","redeemedAt":".."}
 *   {"type":"coupon.redemption_cancelled", ... "orderId":"..","cancelledAt":".."}
 *   {"type":"coupon.held", ... "orderId":"..","heldAt":"..","holdExpiresAt":".."}
 *   {"type":"coupon.hold_released", ... "orderId":"..","releasedAt":"..",
 *    "reason":"released"|"lapsed"}
 * "version" counts the checkout changes of one issuance (1, 2, ...: lua/redeem.lua's),
 * so a consumer can order and dedupe them per issuance; absent (0) on events written
 * before checkout was decided in Redis.
 *
 * coupon.issued and coupon.redemption leave through the MariaDB outbox
 * (event_outbox, written in the transaction of the state change) and its relay,
 * which publishes each row with key "<couponId>" and the row's id spliced in
 * as the first member, "eventId":<outbox id> (event_stamp), also sent as the
 * header "event-id": delivery is at least once, and a consumer dedupes by it.
 * Pure functions; thread-safe.
 */
#ifndef COUPON_EVENT_H
#define COUPON_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "cp_limits.h"

struct issue_event {
    char event_id[CP_EVENT_ID_HEX + 1];
    int64_t coupon_id;
    int64_t user_id;
    int64_t sequence;
    int64_t issued_at_ms;
};

/* Whether s[0..n) is an event id: exactly 32 lowercase hex digits. */
int event_id_valid(const char *s, size_t n);

/* Fills event_id with 128 random bits as hex (getrandom, 64 ids per call per thread;
 * a forked child never repeats its parent's). Thread-safe. */
int event_new_id(char out[CP_EVENT_ID_HEX + 1]);

/* Writes the JSON value; returns its length or CP_ERR_LIMIT if cap is too small. */
int event_encode(const struct issue_event *ev, char *buf, size_t cap);
/* Writes the message key "<couponId>:<userId>"; returns its length. */
int event_key(const struct issue_event *ev, char *buf, size_t cap);

/* Reads a key written by event_key back; CP_ERR_INVALID for anything else. */
int event_key_parse(const void *key, size_t len, int64_t *coupon_id, int64_t *user_id);

/* Strict decode. On CP_ERR_INVALID, *reason names what is wrong (static text). */
int event_decode(const void *buf, size_t len, struct issue_event *ev, const char **reason);

/* The downstream coupon.issued value for a persisted row. */
int event_encode_issued(const struct issue_event *ev, int64_t row_id, int64_t persisted_at_ms,
                        char *buf, size_t cap);

enum redemption_kind {
    REDEMPTION_REDEEMED,
    REDEMPTION_CANCELLED,
    REDEMPTION_HELD,
    REDEMPTION_HOLD_RELEASED, /* released by its order */
    REDEMPTION_HOLD_LAPSED    /* coupon.hold_released with reason "lapsed" */
};

struct redemption_event {
    enum redemption_kind kind;
    int64_t coupon_id, user_id, sequence;
    const char *order_id;  /* validated: 1..CP_ORDER_ID_MAX_CHARS of [A-Za-z0-9._:-] */
    int64_t at_ms;         /* redeemedAt, cancelledAt, heldAt or releasedAt */
    int64_t hold_until_ms; /* holdExpiresAt (REDEMPTION_HELD only) */
    int64_t version;       /* the issuance's checkout version; 0 = none */
};

/* The coupon.redemption value (no eventId: the relay adds it). */
int event_encode_redemption(const struct redemption_event *ev, char *buf, size_t cap);

/* A downstream event as the webhook dispatcher reads it: its event id (the stamped
 * "eventId"), its webhook type ("type" of coupon.redemption values; "coupon.issued" for
 * a value without one) and its coupon. */
struct downstream_event {
    int64_t event_id, coupon_id;
    char type[40];
};

/* Strict enough for our own events: CP_ERR_INVALID when a member is missing or wrong. */
int event_decode_downstream(const void *buf, size_t len, struct downstream_event *out);

/* The outbox key of every downstream event: "<couponId>" (order per coupon). */
int event_outbox_key(int64_t coupon_id, char *buf, size_t cap);

/* payload (a JSON object) with "eventId":<event_id> as its first member; returns the
 * length, CP_ERR_INVALID when payload is not "{...}", CP_ERR_LIMIT when cap is short. */
int event_stamp(int64_t event_id, const char *payload, size_t len, char *buf, size_t cap);

#endif
