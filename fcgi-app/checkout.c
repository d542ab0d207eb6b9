#include "first.h"

#include "checkout.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cp_err.h"
#include "credis.h"
#include "credis_checkout.h"
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

/* The coupon joins the applier's set. A failure is not the client's: the change is
 * recorded, and the applier's full pass finds it (checkout_apply.h). */
static void mark_dirty(struct app_thread *t, int64_t coupon_id)
{
    if (credis_checkout_mark(app_redis(t), coupon_id) != CP_OK)
        app_redis_failed(t);
}

/*
 * The script and the SADD of the coupon to the applier's set in one round trip (the SADD
 * is sent whatever the outcome: a coupon marked for nothing costs the applier one empty
 * look). NULL as script_run; a node without the script (NOSCRIPT) gets the slow path.
 */
static redisReply *decide_pipelined(struct app_thread *t, struct rcli *r, int64_t coupon_id,
                                    struct credis_script *a, int *marked)
{
    redisReply *rep = NULL, *sadd = NULL;
    if (script_prepare(t->scripts, r, SCRIPT_REDEEM) != CP_OK ||
        script_append(t->scripts, r, SCRIPT_REDEEM, a->argc, a->argv, a->argvlen) != CP_OK ||
        credis_checkout_mark_append(r, coupon_id) != CP_OK)
        return NULL;
    int rc = script_reply(r, &rep);
    if (script_reply(r, &sadd) == CP_OK && rc == CP_OK)
        *marked = sadd->type == REDIS_REPLY_INTEGER;
    if (sadd != NULL)
        freeReplyObject(sadd);
    if (rc != CP_OK || rep == NULL)
        return NULL;
    if (script_is_noscript(rep)) {
        freeReplyObject(rep);
        rep = script_run(t->scripts, r, SCRIPT_REDEEM, a->argc, a->argv, a->argvlen);
    }
    return rep;
}

int checkout_decide(struct app_thread *t, enum checkout_op op, int64_t coupon_id, int64_t user_id,
                    const char *order, int64_t hold_ttl_ms, const struct checkout_terms *terms,
                    struct checkout_result *out)
{
    const struct cp_conf *conf = t->app->conf;
    struct credis_script a;
    if ((unsigned)op > CHECKOUT_CANCEL ||
        credis_redeem_script(&a, coupon_id, op_names[op], user_id, order,
                             op == CHECKOUT_HOLD ? hold_ttl_ms : 0, terms->usable_ms,
                             terms->usable_until_ms, conf->outbox_max_pending) != CP_OK)
        return CP_ERR_INVALID;
    struct rcli *r = app_redis(t);
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    long long acked = 0;
    int marked = 0;
    /* With WAIT, the script and WAIT share the round trip (script.h); the SADD follows. */
    redisReply *rep =
        conf->redis_wait_replicas > 0
            ? script_run_wait(t->scripts, r, SCRIPT_REDEEM, a.argc, a.argv, a.argvlen,
                              conf->redis_wait_replicas, conf->redis_wait_timeout_ms, &acked)
            : decide_pipelined(t, r, coupon_id, &a, &marked);
    if (rep == NULL) {
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    int rc = read_reply(rep, out);
    freeReplyObject(rep);
    if (rc != CP_OK) {
        app_redis_failed(t); /* an error reply too: CLUSTERDOWN re-discovers the map */
        return rc;
    }
    if (out->outcome != CHECKOUT_CHANGED)
        return CP_OK;
    if (!marked)
        mark_dirty(t, coupon_id);
    if (conf->redis_wait_replicas > 0 && acked < conf->redis_wait_replicas)
        return CP_ERR_NOT_REPLICATED;
    return CP_OK;
}
