/*
 * credis.h - every Redis command on a coupon's keys, for coupon-fcgi and
 * coupon-consumer alike: who holds it, how many, whether its issuance state
 * exists, its meta, its pending (outbox) records, the arguments of its Lua
 * scripts and the "coupon changed" announcement.
 *
 * rkey.h says what a coupon's keys and values look like; this module is the only
 * one that builds those keys and the only one that spells a command on them, so a
 * key, a field or a command can change in one place. tests/redis_owner.sh fails
 * `make check` when a command on a coupon key appears anywhere else. Two helpers
 * run what this module prepares: fcgi-app/script runs the Lua scripts by SHA (the
 * per-thread SHA cache, NOSCRIPT, the issue path's pipeline) with the argv
 * credis_*_script built, and cache/l2 - a cache-aside that knows no coupon - reads
 * and writes the document copy under the key credis_doc_key names.
 *
 * Every function takes the caller's client (common/rcli: one server or a
 * cluster; every key of one coupon shares {ID}, so each command, and each
 * multi-key command, is in one slot). None keeps state, allocates on a request's
 * path or resets the client: a function that returns CP_ERR_UNAVAILABLE (no reply,
 * an error reply such as CLUSTERDOWN, or a reply of the wrong shape) may leave
 * replies unread, and the caller counts the failure and calls rcli_reset, as after
 * any failed command. Thread-safe as far as the client is (one thread at a time).
 */
#ifndef COUPON_CREDIS_H
#define COUPON_CREDIS_H

#include <stddef.h>
#include <stdint.h>

#include "rcli.h"
#include "rkey.h"

/* One holder: a field and value of coupon:{ID}:users. */
struct credis_holder {
    int64_t user_id, sequence, issued_at_ms;
};

/* One pending record to drop: coupon:{ID}:pending[user]. */
struct credis_pending {
    int64_t coupon_id, user_id;
};

/* Users per HDEL of credis_pending_drop: bounds one command's size (and the stack
 * the call takes, ~20 KiB), not the round trips. */
#define CREDIS_HDEL_FIELDS_MAX 512

/* ------------------------------------------------------------ holders ---- */

/* HGET users[user]: 1 held (*out set), 0 not, CP_ERR_UNAVAILABLE (also: a value
 * that is not an issuance). */
int credis_holder_get(struct rcli *r, int64_t coupon_id, int64_t user_id,
                      struct rkey_issuance *out);
/* HEXISTS users[user]: 1 held, 0 not, CP_ERR_UNAVAILABLE. */
int credis_holder_exists(struct rcli *r, int64_t coupon_id, int64_t user_id);
/*
 * A claim as the status read shows it: HGET users[user], then HEXISTS pending[user].
 * CP_OK with *held (1 and *out set when users holds a readable issuance) and
 * *pending (1 when the pending record is there), or CP_ERR_UNAVAILABLE.
 */
int credis_claim_status(struct rcli *r, int64_t coupon_id, int64_t user_id, int *held,
                        struct rkey_issuance *out, int *pending);
/* HLEN users, the issued count: CP_OK and *n, or CP_ERR_UNAVAILABLE. */
int credis_issued(struct rcli *r, int64_t coupon_id, long long *n);

/* Called for each holder of a page; CP_OK goes on, anything else (a negative cp_err,
 * or the caller's own positive value) stops the scan and is returned. */
typedef int (*credis_holder_fn)(void *arg, const struct credis_holder *h);
/*
 * HSCAN users in pages of CREDIS_SCAN_PAGE: each command keeps Redis busy for a
 * fraction of a millisecond, where one HGETALL of many thousand holders would
 * stall every other client for several. A holder may come twice (HSCAN's rule),
 * never be missed if it exists throughout. CP_OK, fn's error, or
 * CP_ERR_UNAVAILABLE (also: a page that is not one of a holder hash).
 */
#define CREDIS_SCAN_PAGE "1000"
int credis_holders_scan(struct rcli *r, int64_t coupon_id, credis_holder_fn fn, void *arg);

/* EXISTS users seq - does Redis still hold the coupon's issuance state? 1, 0, or
 * CP_ERR_UNAVAILABLE. */
int credis_state_exists(struct rcli *r, int64_t coupon_id);

/*
 * HLEN users and HLEN pending of n coupons in one pipeline (one round trip per
 * node). issued or pending may be NULL (that HLEN is not sent); an entry whose
 * reply failed is -1. Returns the number of failed entries (0: all answered), or
 * CP_ERR_UNAVAILABLE when the pipeline could not be sent (every entry -1).
 */
int credis_counts(struct rcli *r, const int64_t *coupon_ids, size_t n, long long *issued,
                  long long *pending);

/* --------------------------------------------------------------- meta ---- */

/* HSET meta total start_ms end_ms. CP_OK, or CP_ERR_UNAVAILABLE with the reason in
 * why (may be NULL). */
int credis_meta_write(struct rcli *r, int64_t coupon_id, int64_t total, int64_t start_ms,
                      int64_t end_ms, char *why, size_t cap);

/* ---------------------------------------------------- pending records ---- */

/*
 * Drops the n pending records: one HDEL per run of one coupon in recs (sort them
 * by coupon for the fewest commands; at most CREDIS_HDEL_FIELDS_MAX users each),
 * all in one pipeline. *removed: records Redis removed. Returns the number of
 * HDELs Redis refused with an error reply (the first one's text in why, may be
 * NULL), or CP_ERR_UNAVAILABLE when a command could not be sent or a reply was lost
 * (those records are left; every other reply was still read).
 */
int credis_pending_drop(struct rcli *r, const struct credis_pending *recs, size_t n,
                        long long *removed, char *why, size_t cap);
/* HDEL pending[field] of a field as Redis gave it (the reconciler's unreadable or
 * persisted record). CP_OK (any reply), or CP_ERR_UNAVAILABLE (none). */
int credis_pending_drop_field(struct rcli *r, int64_t coupon_id, const char *field, size_t len);

/* Called for each field and value of a coupon's pending hash; CP_OK goes on, anything
 * else (a negative cp_err, or the caller's own positive value) stops and is returned. */
typedef int (*credis_pending_fn)(void *arg, const char *field, size_t flen, const char *value,
                                 size_t vlen);
/* HGETALL pending, each pair to fn. CP_OK, fn's error, or CP_ERR_UNAVAILABLE. */
int credis_pending_each(struct rcli *r, int64_t coupon_id, credis_pending_fn fn, void *arg);

/* ------------------------------------------------------------ scripts ---- */

/*
 * The argv of one run of a coupon's Lua script (lua/): argv[0] and argv[1] are the
 * runner's (EVALSHA and the SHA, or EVAL and the source: fcgi-app/script), argv[2..]
 * numkeys, the coupon's keys and the arguments, in the order the script reads
 * them. The strings live in the struct.
 */
#define CREDIS_SCRIPT_ARGV_MAX 14
struct credis_script {
    int argc;
    const char *argv[CREDIS_SCRIPT_ARGV_MAX];
    size_t argvlen[CREDIS_SCRIPT_ARGV_MAX];
    char keys[5][RKEY_MAX];
    char args[5][24];
};

/* lua/issue.lua: keys meta users seq free pending; user, event id (CP_EVENT_ID_HEX
 * characters), outbox bound. CP_OK or CP_ERR_INVALID. */
int credis_issue_script(struct credis_script *s, int64_t coupon_id, int64_t user_id,
                        const char *event_id, int outbox_bound);
/* lua/rollback.lua: keys users free pending; user, sequence. */
int credis_rollback_script(struct credis_script *s, int64_t coupon_id, int64_t user_id,
                           int64_t sequence);
/* lua/meta_update.lua: keys meta users; total, start_ms, end_ms. */
int credis_meta_update_script(struct credis_script *s, int64_t coupon_id, int64_t total,
                              int64_t start_ms, int64_t end_ms);

/* lua/redeem.lua (issue 26): keys users redeem holds rpending; the operation
 * ("redeem", "hold", "release", "cancel"), user, order (the caller validated it; it
 * must outlive s), hold ttl in ms, usable ms after issuance and usable-until ms (-1 =
 * no limit), outbox bound. The sweep is credis_checkout_sweep's. */
int credis_redeem_script(struct credis_script *s, int64_t coupon_id, const char *op,
                         int64_t user_id, const char *order, int64_t hold_ttl_ms, int64_t usable_ms,
                         int64_t usable_until_ms, int outbox_bound);

/*
 * EVAL lua/restore.lua (an operator's command: coupon-admin rebuild-redis, so EVAL
 * and no SHA cache): puts the n holders back into users and raises seq to their
 * highest sequence. *added += the users it added. Allocates its argv (n may be
 * large). CP_OK, CP_ERR_NOMEM, CP_ERR_INVALID, or CP_ERR_UNAVAILABLE with the
 * reason in why (may be NULL).
 */
int credis_restore(struct rcli *r, int64_t coupon_id, const struct credis_holder *holders, size_t n,
                   long long *added, char *why, size_t cap);

/* ------------------------------------------------ the document, changes ---- */

/* coupon:{ID}:doc, the key of the L2 document copy (cache/l2 runs its commands):
 * its length, or CP_ERR_LIMIT / CP_ERR_INVALID. */
int credis_doc_key(char *buf, size_t cap, int64_t coupon_id);

/* PUBLISH coupon:invalidate <id>: every worker's subscriber drops the coupon's L1
 * entries (any node: PUBLISH reaches every node of a cluster). CP_OK or
 * CP_ERR_UNAVAILABLE. */
int credis_announce_change(struct rcli *r, int64_t coupon_id);

#endif
