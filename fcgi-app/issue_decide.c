#include "first.h"

#include "issue_decide.h"

#include <string.h>

#include "cp_err.h"
#include "event.h"

/* lua/issue.lua's reply codes. */
enum {
    SCRIPT_ISSUED = 1,
    SCRIPT_NO_META = 0,
    SCRIPT_DUPLICATE = -2,
    SCRIPT_SOLD_OUT = -3,
    SCRIPT_NOT_STARTED = -4,
    SCRIPT_ENDED = -5,
    SCRIPT_OUTBOX_FULL = -6,
};

static const char outbox_full[] = "too many issuance events wait for the event log (Kafka)";

/* How long a flag may answer: at most ISSUE_FLAG_TTL_MS, and ending before `until_ms`
 * (the time left until the answer stops being true) when that comes sooner. */
static int64_t flag_ttl(long long until_ms)
{
    return until_ms < ISSUE_FLAG_TTL_MS ? until_ms - ISSUE_FLAG_EDGE_MARGIN_MS : ISSUE_FLAG_TTL_MS;
}

static int unavailable(struct issue_result *out, const char *detail)
{
    out->detail = detail;
    return CP_ERR_UNAVAILABLE;
}

/* CP_ERR_NOT_FOUND when no flag decides; otherwise the flag's answer. */
static int fast_path(const struct issue_ops *ops, void *ctx, int64_t coupon_id, int64_t user_id,
                     struct issue_result *out)
{
    char flag;
    if (ops->flag_get(ctx, coupon_id, &flag) != CP_OK)
        return CP_ERR_NOT_FOUND;
    ops->count(ctx, M_FASTPATH_REJECTS);
    switch (flag) {
    case ISSUE_FLAG_SOLD_OUT: {
        int held = ops->holder(ctx, coupon_id, user_id, &out->sequence, &out->issued_at_ms);
        if (held < 0)
            return unavailable(out, "redis unavailable");
        return held ? CP_ERR_DUPLICATE : CP_ERR_SOLD_OUT;
    }
    case ISSUE_FLAG_ENDED: return CP_ERR_ENDED;
    case ISSUE_FLAG_NOT_STARTED: return CP_ERR_NOT_STARTED;
    default: return CP_ERR_NO_COUPON;
    }
}

/* The script's refusals (and the meta reload); CP_OK only for SCRIPT_ISSUED. */
static int script_answer(const struct issue_ops *ops, void *ctx, int64_t coupon_id,
                         const long long reply[3], struct issue_result *out)
{
    switch (reply[0]) {
    case SCRIPT_ISSUED: return CP_OK;
    case SCRIPT_DUPLICATE:
        out->sequence = reply[1];
        out->issued_at_ms = reply[2];
        return CP_ERR_DUPLICATE;
    case SCRIPT_SOLD_OUT: /* until endAt at most: then it has ended */
        ops->flag_set(ctx, coupon_id, ISSUE_FLAG_SOLD_OUT, flag_ttl(reply[2]));
        return CP_ERR_SOLD_OUT;
    case SCRIPT_NOT_STARTED: /* true until startAt, and not a millisecond longer */
        ops->flag_set(ctx, coupon_id, ISSUE_FLAG_NOT_STARTED, flag_ttl(reply[2]));
        return CP_ERR_NOT_STARTED;
    case SCRIPT_ENDED:
        ops->flag_set(ctx, coupon_id, ISSUE_FLAG_ENDED, ISSUE_FLAG_TTL_MS);
        return CP_ERR_ENDED;
    case SCRIPT_OUTBOX_FULL: ops->count(ctx, M_OUTBOX_FULL); return unavailable(out, outbox_full);
    default: return unavailable(out, "issuance state missing");
    }
}

/* issue_ack=kafka: the broker's acknowledgement decides. */
static int durable_in_kafka(const struct issue_ops *ops, void *ctx, const struct issue_event *ev,
                            const char *json, size_t jlen, const char *key, size_t klen,
                            struct issue_result *out)
{
    switch (ops->send_sync(ctx, key, klen, json, jlen)) {
    case PRODUCER_DELIVERED:
        ops->clear_pending(ctx, ev->coupon_id, ev->user_id);
        ops->count(ctx, M_ISSUED);
        return CP_OK;
    case PRODUCER_NOT_PERSISTED:
        ops->count(ctx, M_KAFKA_ERRORS);
        if (ops->rollback(ctx, ev->coupon_id, ev->user_id, ev->sequence) == CP_OK) {
            ops->count(ctx, M_ROLLBACKS);
            ops->invalidate(ctx, ev->coupon_id); /* stock came back: clear the flags */
        }
        return unavailable(out, "event log (Kafka) did not accept the issuance");
    case PRODUCER_POSSIBLY_PERSISTED:
        ops->count(ctx, M_KAFKA_ERRORS);
        ops->count(ctx, M_PENDING);
        return CP_ERR_AMBIGUOUS; /* issue.lua recorded it as pending; the consumer settles */
    }
    return unavailable(out, "unknown delivery outcome");
}

/* WAIT counted fewer replicas than asked: the claim stands in Redis with its pending
 * record and nothing is undone - a replica may have it after all (WAIT only timed out),
 * and if this master survives the reconciler produces its event. What must not happen
 * is an event (or a 201) for a claim a failover may still erase. */
static int not_replicated(const struct issue_ops *ops, void *ctx, long long acked,
                          struct issue_result *out)
{
    ops->count(ctx, M_NOT_REPLICATED);
    out->detail = acked == 0 ? "the claim reached no Redis replica in time"
                             : "the claim reached fewer Redis replicas than required in time";
    return CP_ERR_NOT_REPLICATED;
}

int issue_decide_begin(const struct issue_ops *ops, void *ctx, const struct issue_mode *mode,
                       int64_t coupon_id, int64_t user_id, struct issue_claim *claim,
                       struct issue_result *out)
{
    memset(out, 0, sizeof *out);
    memset(claim, 0, sizeof *claim);
    int rc = fast_path(ops, ctx, coupon_id, user_id, out);
    if (rc != CP_ERR_NOT_FOUND)
        return rc;
    if (mode->ack_kafka && !ops->producer_up(ctx))
        return unavailable(out, "event log (Kafka) unavailable"); /* nothing reserved */
    if (!mode->ack_kafka && !ops->producer_has_room(ctx)) {
        ops->count(ctx, M_OUTBOX_FULL);
        return unavailable(out, outbox_full);
    }
    claim->coupon_id = coupon_id;
    claim->user_id = user_id;
    if (ops->new_event_id(claim->event_id) != CP_OK)
        return unavailable(out, "no randomness for the event id");
    return ISSUE_RUN_SCRIPT;
}

int issue_decide_end(const struct issue_ops *ops, void *ctx, const struct issue_mode *mode,
                     const struct issue_claim *claim, const struct issue_script_run *run,
                     struct issue_result *out)
{
    int ack_kafka = mode->ack_kafka;
    int64_t coupon_id = claim->coupon_id, user_id = claim->user_id;
    struct issue_script_run again;
    if (run->rc != CP_OK)
        return unavailable(out, "redis unavailable");
    if (run->reply[0] == SCRIPT_NO_META) {
        /* Once: a second "no meta" is answered by script_answer as missing state. */
        int rc = ops->reload_meta(ctx, coupon_id, &out->detail);
        if (rc != CP_OK)
            return rc;
        again.rc = ops->run_script(ctx, coupon_id, user_id, claim->event_id, mode->wait_replicas,
                                   again.reply, &again.acked);
        if (again.rc != CP_OK)
            return unavailable(out, "redis unavailable");
        run = &again;
    }
    int rc = script_answer(ops, ctx, coupon_id, run->reply, out);
    if (rc != CP_OK)
        return rc;
    if (mode->wait_replicas > 0 && run->acked < mode->wait_replicas)
        return not_replicated(ops, ctx, run->acked, out);

    struct issue_event ev = {.coupon_id = coupon_id, .user_id = user_id};
    memcpy(ev.event_id, claim->event_id, sizeof ev.event_id);
    ev.sequence = out->sequence = run->reply[1];
    ev.issued_at_ms = out->issued_at_ms = run->reply[2];
    char json[CP_EVENT_MAX_BYTES], key[48];
    int jlen = event_encode(&ev, json, sizeof json);
    int klen = event_key(&ev, key, sizeof key);
    if (jlen < 0 || klen < 0) {
        /* Cannot happen for ids in range. issue_ack=redis: the claim stands and the
         * reconciler builds the event from the pending record. */
        if (!ack_kafka)
            return CP_OK;
        (void)ops->rollback(ctx, coupon_id, user_id, ev.sequence);
        return unavailable(out, "internal event error");
    }
    if (ack_kafka)
        return durable_in_kafka(ops, ctx, &ev, json, (size_t)jlen, key, (size_t)klen, out);
    /* issue_ack=redis: the claim and its pending record are in Redis (its AOF has them
     * before the reply): that is the acknowledgement. A send that librdkafka refuses is
     * produced again by the reconciler from the record. */
    if (ops->send_async(ctx, key, (size_t)klen, json, (size_t)jlen) != CP_OK)
        ops->count(ctx, M_KAFKA_ERRORS);
    ops->count(ctx, M_ISSUED);
    return CP_OK;
}

int issue_decide(const struct issue_ops *ops, void *ctx, const struct issue_mode *mode,
                 int64_t coupon_id, int64_t user_id, struct issue_result *out)
{
    struct issue_claim claim;
    int rc = issue_decide_begin(ops, ctx, mode, coupon_id, user_id, &claim, out);
    if (rc != ISSUE_RUN_SCRIPT)
        return rc;
    struct issue_script_run run = {0};
    run.rc = ops->run_script(ctx, coupon_id, user_id, claim.event_id, mode->wait_replicas,
                             run.reply, &run.acked);
    return issue_decide_end(ops, ctx, mode, &claim, &run, out);
}
