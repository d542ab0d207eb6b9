#include "first.h"

#include "checkout.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cp_err.h"
#include "rkey.h"
#include "script.h"

static const char *const op_names[] = {
    [CHECKOUT_REDEEM] = "redeem",
    [CHECKOUT_HOLD] = "hold",
    [CHECKOUT_RELEASE] = "release",
    [CHECKOUT_CANCEL] = "cancel",
};

int64_t checkout_deadline(const struct checkout_terms *terms, int64_t issued_at_ms)
{
    int64_t deadline = terms->usable_ms >= 0 ? issued_at_ms + terms->usable_ms : -1;
    if (terms->usable_until_ms >= 0 && (deadline < 0 || terms->usable_until_ms < deadline))
        deadline = terms->usable_until_ms;
    return deadline;
}

/* The reply {code, a, b, sequence, issuedAtMs} into *out: CP_OK or CP_ERR_UNAVAILABLE. */
static int read_reply(const redisReply *r, struct checkout_result *out)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5)
        return CP_ERR_UNAVAILABLE;
    long long v[5];
    for (size_t i = 0; i < 5; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            return CP_ERR_UNAVAILABLE;
        v[i] = r->element[i]->integer;
    }
    switch (v[0]) {
    case CHECKOUT_CHANGED:
    case CHECKOUT_REPLAY:
    case CHECKOUT_NOTHING:
    case CHECKOUT_NOT_ISSUED:
    case CHECKOUT_BACKLOG:
    case CHECKOUT_EXPIRED:
    case CHECKOUT_REDEEMED:
    case CHECKOUT_HELD:
    case CHECKOUT_WRONG_ORDER: break;
    default: return CP_ERR_UNAVAILABLE; /* a script of another version: not ours to read */
    }
    out->outcome = (enum checkout_outcome)v[0];
    out->at_ms = v[1];
    out->version = out->outcome == CHECKOUT_CHANGED ? v[2] : 0;
    out->sequence = v[3];
    out->issued_at_ms = v[4];
    return CP_OK;
}

/* SADD the coupon to the applier's set. A failure is not the client's: the change is
 * recorded, and the applier's full pass finds it (checkout_apply.h). */
static void mark_dirty(struct app_thread *t, int64_t coupon_id)
{
    redisReply *r = rcli_command(app_redis(t), "SADD " RKEY_CHECKOUT_DIRTY " %" PRId64, coupon_id);
    if (r == NULL)
        app_redis_failed(t);
    else
        freeReplyObject(r);
}

int checkout_decide(struct app_thread *t, enum checkout_op op, int64_t coupon_id, int64_t user_id,
                    const char *order, int64_t hold_ttl_ms, const struct checkout_terms *terms,
                    struct checkout_result *out)
{
    char users[RKEY_MAX], redeem[RKEY_MAX], holds[RKEY_MAX], rpending[RKEY_MAX];
    char uid[24], ttl[24], usable[24], until[24], bound[24];
    int ul = rkey_coupon(users, sizeof users, RKEY_USERS, coupon_id);
    int rl = rkey_coupon(redeem, sizeof redeem, RKEY_REDEEM, coupon_id);
    int hl = rkey_coupon(holds, sizeof holds, RKEY_HOLDS, coupon_id);
    int pl = rkey_coupon(rpending, sizeof rpending, RKEY_RPENDING, coupon_id);
    int idl = rkey_user_encode(user_id, uid, sizeof uid);
    if (ul < 0 || rl < 0 || hl < 0 || pl < 0 || idl < 0 || (unsigned)op > CHECKOUT_CANCEL)
        return CP_ERR_INVALID;
    int tl = snprintf(ttl, sizeof ttl, "%" PRId64, op == CHECKOUT_HOLD ? hold_ttl_ms : 0);
    int al = snprintf(usable, sizeof usable, "%" PRId64, terms->usable_ms);
    int vl = snprintf(until, sizeof until, "%" PRId64, terms->usable_until_ms);
    int bl = snprintf(bound, sizeof bound, "%d", t->app->conf->outbox_max_pending);
    const char *argv[] = {NULL,         NULL, "4",   users, redeem, holds, rpending,
                          op_names[op], uid,  order, ttl,   usable, until, bound};
    size_t argvlen[] = {0,           0,
                        1,           (size_t)ul,
                        (size_t)rl,  (size_t)hl,
                        (size_t)pl,  strlen(op_names[op]),
                        (size_t)idl, strlen(order),
                        (size_t)tl,  (size_t)al,
                        (size_t)vl,  (size_t)bl};
    const struct cp_conf *conf = t->app->conf;
    long long acked = 0;
    redisReply *r =
        script_run_wait(t, SCRIPT_REDEEM, (int)(sizeof argv / sizeof argv[0]), argv, argvlen,
                        conf->redis_wait_replicas, conf->redis_wait_timeout_ms, &acked);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = read_reply(r, out);
    freeReplyObject(r);
    if (rc != CP_OK) {
        app_redis_failed(t); /* an error reply too: CLUSTERDOWN re-discovers the map */
        return rc;
    }
    if (out->outcome != CHECKOUT_CHANGED)
        return CP_OK;
    mark_dirty(t, coupon_id);
    if (conf->redis_wait_replicas > 0 && acked < conf->redis_wait_replicas)
        return CP_ERR_NOT_REPLICATED;
    return CP_OK;
}
