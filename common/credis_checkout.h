/*
 * credis_checkout.h - the Redis commands of a coupon's checkout state (issue 26),
 * beside common/credis.h and under the same rule (tests/redis_owner.sh): nothing
 * else spells a command on these keys.
 *
 *   coupon:{ID}:rpending   the changes lua/redeem.lua decided that MariaDB does not
 *                          have yet (the applier reads and drops them here)
 *   coupon:checkout:{dirty} the coupons with such changes (coupon-fcgi marks, the
 *                          applier takes)
 *   lua/redeem.lua's sweep  run on many coupons by the applier (EVALSHA with the
 *                          caller's SHA, NOSCRIPT answered by loading it again)
 * The script's other operations (redeem, hold, release, cancel) are run by
 * fcgi-app/script with credis_redeem_script's argv.
 *
 * As in credis: the caller's client, no state, CP_ERR_UNAVAILABLE after which the
 * caller counts the failure and resets its client.
 */
#ifndef COUPON_CREDIS_CHECKOUT_H
#define COUPON_CREDIS_CHECKOUT_H

#include <stddef.h>
#include <stdint.h>

#include "rcli.h"
#include "rkey.h"

/* SADD coupon:checkout:{dirty} <coupon>. CP_OK or CP_ERR_UNAVAILABLE. */
int credis_checkout_mark(struct rcli *r, int64_t coupon_id);
/* The same SADD queued on a pipeline (its reply is the caller's to read, in order):
 * coupon-fcgi sends it behind the checkout script, one round trip for both. */
int credis_checkout_mark_append(struct rcli *r, int64_t coupon_id);

/* HGET redeem[user]: the issuance's checkout state into *out; 0 when it has none (never
 * redeemed or held), 1 when *out is set, CP_ERR_UNAVAILABLE (also: a value redeem.lua
 * could not have written). */
int credis_checkout_state(struct rcli *r, int64_t coupon_id, int64_t user_id,
                          struct rkey_checkout_state *out);

/* One issuance's checkout state, as MariaDB has it (coupon-admin rebuild-redis). */
struct credis_checkout_restore_item {
    int64_t user_id;
    struct rkey_checkout_state state;
};
/* EVAL lua/restore_checkout.lua (an operator's command): the n states go back into
 * redeem (and holds) where Redis has none. *added += the states added. CP_OK,
 * CP_ERR_NOMEM, CP_ERR_INVALID, or CP_ERR_UNAVAILABLE. */
int credis_checkout_restore(struct rcli *r, int64_t coupon_id,
                            const struct credis_checkout_restore_item *items, size_t n,
                            long long *added);

/* SPOP of up to cap coupons from the dirty set into ids; *n how many. CP_OK or
 * CP_ERR_UNAVAILABLE. */
int credis_checkout_take(struct rcli *r, int64_t *ids, size_t cap, size_t *n);

/* Each readable record of the coupon's rpending (HSCAN, at most max of them) to
 * fn(arg, change); a record rkey_change_decode refuses is counted in *bad and left.
 * CP_OK, fn's non-zero return, or CP_ERR_UNAVAILABLE. */
typedef int (*credis_change_fn)(void *arg, const struct rkey_change *change);
int credis_checkout_records(struct rcli *r, int64_t coupon_id, size_t max, credis_change_fn fn,
                            void *arg, size_t *bad);

/* One record of rpending: its field "<userId>:<version>". */
struct credis_change_id {
    int64_t user_id, version;
};

/* HDEL of the n records (one HDEL per CREDIS_CHECKOUT_DROP_CHUNK). CP_OK or
 * CP_ERR_UNAVAILABLE (the rest are left; the applier finds them applied and drops them
 * the next time). */
#define CREDIS_CHECKOUT_DROP_CHUNK 512
int credis_checkout_drop(struct rcli *r, int64_t coupon_id, const struct credis_change_id *ids,
                         size_t n);

/*
 * The full pass over n coupons, pipelined: a look at each (ZCOUNT of its holds due by
 * now, HLEN of its records: two plain commands), then redeem.lua's sweep on the coupons
 * with a hold due only - holds past their end become free with their lapse records (at
 * most max_per_coupon each). *lapsed += the holds that
 * lapsed; the coupons that hold records afterwards are appended to with[] (cap
 * entries; *nwith counts them). sha: the caller's copy of the script's SHA ("" =
 * unknown: loaded here), emptied when a node lost the script so the next call loads
 * it again. CP_OK or CP_ERR_UNAVAILABLE.
 */
int credis_checkout_sweep(struct rcli *r, char sha[41], const int64_t *ids, size_t n,
                          int max_per_coupon, long long *lapsed, int64_t *with, size_t cap,
                          size_t *nwith);

#endif
