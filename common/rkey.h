/*
 * rkey.h - the Redis contract: every key the programs use and every value they
 * store, built and parsed in one place (what event.h is for Kafka).
 *
 * Keys of one coupon share the hash tag {ID}, so a coupon's keys live in one
 * Redis Cluster slot and the Lua scripts touch only that slot:
 *   coupon:{ID}:meta      hash  total (-1 = unlimited), start_ms, end_ms
 *   coupon:{ID}:users     hash  userId -> "<sequence>:<issuedAtMs>"   (never expires)
 *   coupon:{ID}:seq       string, highest sequence handed out
 *   coupon:{ID}:free      zset of sequences released by a rollback
 *   coupon:{ID}:pending   hash  userId -> "<eventId>:<sequence>:<issuedAtMs>" (outbox)
 *   coupon:{ID}:doc       string, the L2 copy of the coupon document
 *   coupon:{ID}:redeem    hash  userId -> "<ver>:<S>:<atMs>:<untilMs>:<orderId>"
 *                         the checkout state of each issuance (lua/redeem.lua)
 *   coupon:{ID}:holds     zset  userId by holdUntilMs (holds that can lapse)
 *   coupon:{ID}:rpending  hash  "<userId>:<ver>" -> "<T>:<atMs>:<untilMs>:<orderId>"
 *                         checkout changes MariaDB does not have yet (outbox)
 * and, outside any coupon, the consumers' metrics (RKEY_CONSUMERS_SET) and the set
 * of coupons with checkout changes to apply (RKEY_CHECKOUT_DIRTY).
 * Values are written by lua/issue.lua (the only writer of users and pending on
 * the issue path) and lua/restore.lua; the C side writes the same formats with
 * these encoders and reads them with these decoders. Decoders are strict: the
 * whole input must match, numbers are decimal without sign or leading zeros.
 * Pure functions (no I/O, no allocation); thread-safe.
 */
#ifndef COUPON_RKEY_H
#define COUPON_RKEY_H

#include <stddef.h>
#include <stdint.h>

#include "cp_limits.h"

enum rkey_kind {
    RKEY_META,
    RKEY_USERS,
    RKEY_SEQ,
    RKEY_FREE,
    RKEY_PENDING,
    RKEY_DOC,
    RKEY_REDEEM,
    RKEY_HOLDS,
    RKEY_RPENDING
};

/* Longest key rkey_coupon writes (coupon:{INT64_MAX}:pending) plus its NUL. */
#define RKEY_MAX       48
/* Longest value of users ("seq:ms") and pending ("eventId:seq:ms") plus NUL. */
#define RKEY_VALUE_MAX (CP_EVENT_ID_HEX + 2 * 19 + 3) /* 2 colons, 2 x 19 digits, NUL */

/* Channel on which "coupon <id> changed" is published to every worker's L1. */
#define RKEY_INVALIDATE_CHANNEL "coupon:invalidate"

/*
 * The consumers' metrics (consumer/report.c writes, fcgi-app/health.c reads): the
 * set of instances and one hash per instance, written in one MULTI/EXEC. They share
 * the hash tag {consumers}, so on a cluster the transaction touches one slot
 * (keys of different slots would be refused: CROSSSLOT).
 */
#define RKEY_CONSUMERS_SET    "coupon:metrics:{consumers}"
#define RKEY_INSTANCE_MAX     128 /* bytes of an instance name */
#define RKEY_CONSUMER_KEY_MAX (sizeof RKEY_CONSUMERS_SET + 1 + RKEY_INSTANCE_MAX)
/* Writes coupon:metrics:{consumers}:<instance>; its length or CP_ERR_LIMIT. */
int rkey_consumer_metrics(char *buf, size_t cap, const char *instance, size_t len);

/*
 * Coupons whose coupon:{ID}:rpending may hold changes: coupon-fcgi adds the coupon
 * (SADD, pipelined after every checkout script), coupon-consumer's applier takes
 * members (SPOP) and applies what it finds. A member added while the applier works
 * on that coupon makes it come again, so nothing is stranded; a periodic full pass
 * covers a coupon-fcgi that died between the script and its SADD.
 */
#define RKEY_CHECKOUT_DIRTY "coupon:checkout:{dirty}"

/* One record of coupon:{ID}:rpending: a checkout change of lua/redeem.lua. */
enum rkey_change_type {
    RKEY_CHANGE_REDEEMED = 'R',
    RKEY_CHANGE_CANCELLED = 'C',
    RKEY_CHANGE_HELD = 'H',
    RKEY_CHANGE_RELEASED = 'X',
    RKEY_CHANGE_LAPSED = 'L'
};

struct rkey_change {
    int64_t user_id, version;
    enum rkey_change_type type;
    int64_t at_ms, until_ms;
    char order_id[CP_ORDER_ID_MAX_CHARS + 1];
};

/* Field "<userId>:<ver>" and value "<T>:<atMs>:<untilMs>:<orderId>" -> *out, strictly
 * (the orderId 1..CP_ORDER_ID_MAX_CHARS of [A-Za-z0-9._:-]). CP_OK or CP_ERR_INVALID. */
int rkey_change_decode(const char *field, size_t flen, const char *value, size_t vlen,
                       struct rkey_change *out);

/* A value of coupon:{ID}:redeem: an issuance's checkout state (lua/redeem.lua). */
struct rkey_checkout_state {
    int64_t version;
    char state; /* 'R' redeemed, 'H' held (until until_ms), 'F' free again */
    int64_t at_ms, until_ms;
    char order_id[CP_ORDER_ID_MAX_CHARS + 1]; /* "" for F after a cancel */
};

/* "<ver>:<S>:<atMs>:<untilMs>:<orderId>" -> *out, strictly. CP_OK or CP_ERR_INVALID. */
/* ... and back: its length, or CP_ERR_INVALID / CP_ERR_LIMIT. */
int rkey_checkout_state_encode(const struct rkey_checkout_state *v, char *buf, size_t cap);
int rkey_checkout_state_decode(const char *s, size_t len, struct rkey_checkout_state *out);

/* Hash fields of coupon:{ID}:meta. */
#define RKEY_META_TOTAL    "total"
#define RKEY_META_START_MS "start_ms"
#define RKEY_META_END_MS   "end_ms"

/* Writes coupon:{ID}:<kind>; returns its length, or CP_ERR_LIMIT / CP_ERR_INVALID. */
int rkey_coupon(char *buf, size_t cap, enum rkey_kind kind, int64_t coupon_id);

/* A value of coupon:{ID}:users. */
struct rkey_issuance {
    int64_t sequence;
    int64_t issued_at_ms;
};

int rkey_issuance_encode(const struct rkey_issuance *v, char *buf, size_t cap);
int rkey_issuance_decode(const char *s, size_t len, struct rkey_issuance *out);

/* A value of coupon:{ID}:pending: the event the claim still owes Kafka. */
struct rkey_pending {
    char event_id[CP_EVENT_ID_HEX + 1];
    int64_t sequence;
    int64_t issued_at_ms;
};

int rkey_pending_encode(const struct rkey_pending *v, char *buf, size_t cap);
int rkey_pending_decode(const char *s, size_t len, struct rkey_pending *out);

/* A user id as a hash field (decimal); decode also accepts only 1..INT64_MAX. */
int rkey_user_encode(int64_t user_id, char *buf, size_t cap);
int rkey_user_decode(const char *s, size_t len, int64_t *user_id);

/*
 * HSET coupon:{ID}:meta total T start_ms S end_ms E, as an argv for
 * redisCommandArgv/redisAppendCommandArgv (the strings live in *cmd).
 */
struct rkey_meta_cmd {
    char key[RKEY_MAX];
    char total[24], start_ms[24], end_ms[24];
    const char *argv[8];
    size_t argvlen[8];
};

int rkey_meta_hset(struct rkey_meta_cmd *cmd, int64_t coupon_id, int64_t total, int64_t start_ms,
                   int64_t end_ms);

#endif
