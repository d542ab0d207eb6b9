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

/* Fills event_id with 128 random bits as hex (getrandom). */
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

#endif
