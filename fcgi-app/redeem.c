#include "first.h"

#include "redeem.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "coupon_doc.h"
#include "cp_err.h"
#include "credis.h"
#include "issuecode.h"
#include "jsonv.h"
#include "log.h"
#include "money.h"
#include "problem.h"
#include "checkout.h"
#include "handlers.h"
#include "redemption_store.h"
#include "credis.h"
#include "timefmt.h"

/* A MariaDB call of a redemption failed with rc: counted, and answered 503. */
static void redemption_failed(struct app_thread *t, struct http_response *resp, int rc)
{
    app_db_failed(t, rc);
    metrics_add(t->app->metrics, M_REDEEM_UNAVAILABLE, 1);
    problem_db(resp, CP_ERR_UNAVAILABLE);
}

int redeem_claimed_in_redis(struct app_thread *t, int64_t coupon_id, int64_t user_id)
{
    struct rcli *r = app_redis(t);
    int held = r != NULL ? credis_holder_exists(r, coupon_id, user_id) : CP_ERR_UNAVAILABLE;
    if (held < 0)
        app_redis_failed(t); /* an error reply too: CLUSTERDOWN re-discovers the map */
    return held < 0 ? CP_ERR_UNAVAILABLE : held;
}

static int content_is_json(const struct http_request *req, struct http_response *resp)
{
    if (http_is_json(req->content_type))
        return 1;
    problem_fail(resp, CP_ERR_MEDIA_TYPE, "send the body as application/json");
    return 0;
}

/* A JSON time or null. */
static void time_or_null(int64_t ms, char *buf, size_t cap)
{
    char t[TIMEFMT_LEN];
    if (ms < 0 || timefmt_format_ms(ms, t, sizeof t) < 0)
        snprintf(buf, cap, "null");
    else
        snprintf(buf, cap, "\"%s\"", t);
}

/* What an orderAmount of a redemption comes to (given = 0: the body had none). */
struct order_discount {
    int given, exp;
    int64_t discount;
};

/* The answer of a redemption or a hold: the issuance's checkout state. */
static void send_checkout(struct app_thread *t, struct http_response *resp, int status,
                          int64_t coupon_id, int64_t user_id, const char *order,
                          const struct coupon_terms *ct, const struct checkout_result *res,
                          const struct order_discount *od, int held)
{
    char at[TIMEFMT_LEN + 2], until[TIMEFMT_LEN + 2], code[CP_ISSUE_CODE_CHARS + 3] = "null";
    char issue_code[CP_ISSUE_CODE_CHARS + 1], discount[MONEY_TEXT_MAX];
    char amount[MONEY_TEXT_MAX + 24] = "";
    const char *secret = t->app->conf->code_secret;
    time_or_null(res->at_ms, at, sizeof at);
    time_or_null(checkout_deadline(&ct->terms, res->issued_at_ms), until, sizeof until);
    if (issuecode_compute(secret, strlen(secret), coupon_id, user_id, res->sequence, issue_code) ==
        CP_OK)
        snprintf(code, sizeof code, "\"%s\"", issue_code);
    if (od->given && money_format(od->discount, od->exp, discount, sizeof discount) >= 0)
        snprintf(amount, sizeof amount, ",\"discountAmount\":\"%s\"", discount);
    resp->status = status;
    /* orderId passed redeem_order_id_valid and the discount value is the document's
     * number text (at its scale): neither needs escaping. */
    (void)http_response_printf(resp,
                               "{\"couponId\":%" PRId64 ",\"userId\":%" PRId64
                               ",\"status\":\"%s\",\"orderId\":\"%s\",\"%s\":%s,"
                               "\"code\":%s,\"usableUntil\":%s,"
                               "\"discount\":{\"type\":\"%s\",\"value\":%s}%s}",
                               coupon_id, user_id, held ? "HELD" : "REDEEMED", order,
                               held ? "holdExpiresAt" : "redeemedAt", at, code, until,
                               ct->money.discount_type, ct->money.discount_value, amount);
    http_response_header(resp, "Location", "/api/coupons/%" PRId64 "/issues/%" PRId64 "/%s",
                         coupon_id, user_id, held ? "hold" : "redemption");
}

/* The campaign's terms, or 0 with the problem answered (404 for no such coupon: the
 * user then holds no issuance of it either). */
static int terms_of(struct app_thread *t, struct http_response *resp, int64_t coupon_id,
                    int64_t user_id, struct coupon_terms *ct)
{
    int rc = read_coupon_terms(t, coupon_id, ct);
    if (rc == CP_OK)
        return 1;
    metrics_add(t->app->metrics, rc == CP_ERR_NOT_FOUND ? M_REDEEM_NOT_FOUND : M_REDEEM_UNAVAILABLE,
                1);
    if (rc == CP_ERR_NOT_FOUND)
        problem_fail(resp, CP_ERR_NO_ISSUANCE,
                     "user %" PRId64 " holds no issuance of coupon %" PRId64, user_id, coupon_id);
    else
        problem_fail(resp, CP_ERR_UNAVAILABLE, "coupon store unavailable");
    return 0;
}

/* With an orderAmount (amount not ""): its discount under the campaign's terms, before
 * anything is decided - an amount the currency cannot have is a 400, an order below the
 * campaign's minimum a 422. 1 to go on, 0 with the problem answered. */
static int price_order(struct app_thread *t, struct http_response *resp, int64_t coupon_id,
                       const struct coupon_terms *ct, const char *amount, struct order_discount *od)
{
    struct metrics *m = t->app->metrics;
    const char *why = "";
    od->given = 0;
    if (amount == NULL || amount[0] == '\0')
        return 1;
    int rc = coupon_doc_discount(&ct->money, amount, &od->discount, &od->exp, &why);
    if (rc == MONEY_APPLIES) {
        od->given = 1;
        return 1;
    }
    if (rc == MONEY_BELOW_MINIMUM) {
        metrics_add(m, M_REDEEM_BELOW_MINIMUM, 1);
        problem_fail(resp, CP_ERR_BELOW_MINIMUM,
                     "coupon %" PRId64 " needs an order of at least its minOrderAmount; nothing "
                     "was redeemed",
                     coupon_id);
        return 0;
    }
    metrics_add(m, rc == CP_ERR_BAD_AMOUNT ? M_REDEEM_BAD_AMOUNT : M_REDEEM_UNAVAILABLE, 1);
    problem_fail(resp, rc, "%s", why);
    return 0;
}

/* The refusals every operation shares; 1 when res was one of them (answered). */
static int refused(struct app_thread *t, struct http_response *resp, int rc,
                   const struct checkout_result *res, int64_t coupon_id, int64_t user_id)
{
    struct metrics *m = t->app->metrics;
    char when[TIMEFMT_LEN] = "";
    if (rc == CP_ERR_NOT_REPLICATED) {
        metrics_add(m, M_REDEEM_UNAVAILABLE, 1);
        problem_fail(resp, rc,
                     "the change is recorded but not yet on enough Redis replicas; the same "
                     "request again answers it");
        return 1;
    }
    if (rc != CP_OK) {
        metrics_add(m, M_REDEEM_UNAVAILABLE, 1);
        problem_fail(resp, CP_ERR_UNAVAILABLE, "issuance state unavailable");
        return 1;
    }
    /* The refusals of the script: counter, problem, and a detail that names the coupon,
     * the user and - where it helps - when (the deadline, the hold's end). */
    static const struct {
        enum checkout_outcome outcome;
        enum metrics_counter counter;
        int err;
        const char *what;
    } refusals[] = {
        {CHECKOUT_NOT_ISSUED, M_REDEEM_NOT_FOUND, CP_ERR_NO_ISSUANCE, "is not issued to"},
        {CHECKOUT_BACKLOG, M_REDEEM_UNAVAILABLE, CP_ERR_UNAVAILABLE,
         "has too many checkout changes not yet persisted for"},
        {CHECKOUT_EXPIRED, M_REDEEM_EXPIRED, CP_ERR_EXPIRED, "was usable until %s for"},
        {CHECKOUT_REDEEMED, M_REDEEM_CONFLICT, CP_ERR_ALREADY_REDEEMED,
         "is redeemed by another order for"},
        {CHECKOUT_HELD, M_REDEEM_HELD, CP_ERR_HELD, "is held by another order until %s for"},
        {CHECKOUT_WRONG_ORDER, M_REDEEM_CANCEL_CONFLICT, CP_ERR_ORDER_MISMATCH,
         "is redeemed or held by another order for"},
    };
    (void)timefmt_format_ms(res->at_ms, when, sizeof when);
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        if (refusals[i].outcome != res->outcome)
            continue;
        char what[96];
        snprintf(what, sizeof what, refusals[i].what, when);
        metrics_add(m, refusals[i].counter, 1);
        problem_fail(resp, refusals[i].err, "coupon %" PRId64 " %s user %" PRId64, coupon_id, what,
                     user_id);
        return 1;
    }
    return 0;
}

/* Redeem (hold_ttl_ms 0) or hold (coupon, user) for order, answered in resp; amount: the
 * body's orderAmount, "" or NULL. */
static void take(struct app_thread *t, struct http_response *resp, int64_t coupon_id,
                 int64_t user_id, const char *order, int64_t hold_ttl_ms, const char *amount)
{
    struct coupon_terms ct;
    struct order_discount od;
    if (!terms_of(t, resp, coupon_id, user_id, &ct) ||
        !price_order(t, resp, coupon_id, &ct, amount, &od))
        return;
    int held = hold_ttl_ms > 0;
    struct checkout_result res;
    int rc = checkout_decide(t, held ? CHECKOUT_HOLD : CHECKOUT_REDEEM, coupon_id, user_id, order,
                             hold_ttl_ms, &ct.terms, &res);
    if (refused(t, resp, rc, &res, coupon_id, user_id))
        return;
    int fresh = res.outcome == CHECKOUT_CHANGED;
    metrics_add(t->app->metrics,
                held ? (fresh ? M_HOLD_HELD : M_HOLD_REPLAYED)
                     : (fresh ? M_REDEEM_REDEEMED : M_REDEEM_REPLAYED),
                1);
    send_checkout(t, resp, fresh ? 201 : 200, coupon_id, user_id, order, &ct, &res, &od, held);
}

/* Release (hold) or cancel (redemption) of (coupon, user) by order: 204 or a problem. */
static void undo(struct app_thread *t, struct http_response *resp, int64_t coupon_id,
                 int64_t user_id, const char *order, enum checkout_op op)
{
    struct coupon_terms ct;
    if (!terms_of(t, resp, coupon_id, user_id, &ct))
        return;
    struct checkout_result res;
    int rc = checkout_decide(t, op, coupon_id, user_id, order, 0, &ct.terms, &res);
    if (refused(t, resp, rc, &res, coupon_id, user_id))
        return;
    int changed = res.outcome == CHECKOUT_CHANGED;
    metrics_add(t->app->metrics,
                op == CHECKOUT_RELEASE ? (changed ? M_HOLD_RELEASED : M_HOLD_RELEASE_NOOP)
                                       : (changed ? M_REDEEM_CANCELLED : M_REDEEM_CANCEL_NOOP),
                1);
    resp->status = 204;
}

/* {"orderId"} (and, with amount not NULL, "orderAmount") bodies of the path forms; 0
 * with the problem answered. */
static int order_body(const struct http_request *req, struct http_response *resp,
                      char order[CP_ORDER_ID_MAX_CHARS + 1], char *amount)
{
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return 0;
    int rc = redeem_parse_order_body(req->body, req->body_len, order, amount, &why);
    if (rc != CP_OK) {
        problem_fail(resp, rc, "%s", why ? why : "invalid body");
        return 0;
    }
    return 1;
}

void redeem_handle(struct app_thread *t, const struct http_request *req, struct http_response *resp,
                   int64_t coupon_id, int64_t user_id)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1], amount[MONEY_TEXT_MAX];
    if (!order_body(req, resp, order, amount) ||
        !auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
        return;
    take(t, resp, coupon_id, user_id, order, 0, amount);
}

void redeem_cancel_handle(struct app_thread *t, const struct http_request *req,
                          struct http_response *resp, int64_t coupon_id, int64_t user_id)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    if (!order_body(req, resp, order, NULL) ||
        !auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
        return;
    undo(t, resp, coupon_id, user_id, order, CHECKOUT_CANCEL);
}

void redeem_hold_handle(struct app_thread *t, const struct http_request *req,
                        struct http_response *resp, int64_t coupon_id, int64_t user_id)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    int64_t ttl_s = 0;
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return;
    int rc = redeem_parse_hold_body(req->body, req->body_len, NULL, order, &ttl_s, &why);
    if (rc != CP_OK) {
        problem_fail(resp, rc, "%s", why ? why : "invalid body");
        return;
    }
    if (!auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
        return;
    take(t, resp, coupon_id, user_id, order, ttl_s * 1000, NULL);
}

void redeem_release_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp, int64_t coupon_id, int64_t user_id)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1];
    if (!order_body(req, resp, order, NULL) ||
        !auth_rate(t->app->auth, RATELIMIT_REDEEM, user_id, resp))
        return;
    undo(t, resp, coupon_id, user_id, order, CHECKOUT_RELEASE);
}

/* A code redeems for its owner only, unless a coupon:checkout service redeems it. */
static int code_owner_matches(const struct http_caller *who, int64_t owner)
{
    return !who->verified || (who->scopes & HTTP_SCOPE_CHECKOUT) || who->user_id == owner;
}

/* The issuance holding code, with the per-user limits counted: 1 and *coupon_id,
 * *user_id, or 0 with the problem answered. */
static int code_target(struct app_thread *t, const struct http_request *req,
                       struct http_response *resp, const char *code, int64_t *coupon_id,
                       int64_t *user_id)
{
    const struct http_caller *who = &req->caller;
    /* A user's attempts count before the look-up, so that guessing codes is limited too;
     * without a user (auth_mode = none, a service) the owner's count after it. */
    int user_caller = who->verified && who->user_id > 0 && !(who->scopes & HTTP_SCOPE_CHECKOUT);
    if (user_caller && !auth_rate(t->app->auth, RATELIMIT_REDEEM, who->user_id, resp))
        return 0;
    struct metrics *m = t->app->metrics;
    int rc = redemption_store_find_code(app_db(t), code, coupon_id, user_id);
    /* Another user's code answers as an unknown one: whether a code exists is not
     * something a guesser should learn. */
    if (rc == CP_OK && !code_owner_matches(who, *user_id))
        rc = CP_ERR_NOT_FOUND;
    switch (rc) {
    case CP_OK: return user_caller || auth_rate(t->app->auth, RATELIMIT_REDEEM, *user_id, resp);
    case CP_ERR_NOT_FOUND:
        metrics_add(m, M_REDEEM_NOT_FOUND, 1);
        /* The code itself is not echoed: a problem document may end up in logs. */
        problem_fail(resp, CP_ERR_NO_CODE,
                     "no issuance has this code (an issuance's code is found once it is "
                     "persisted, usually within a second of its 201)");
        return 0;
    case CP_ERR_CONFLICT:
        metrics_add(m, M_REDEEM_AMBIGUOUS, 1);
        log_warn("a redemption code is shared by two issuances (a MAC collision)");
        problem_fail(resp, CP_ERR_CONFLICT,
                     "this code is shared by two issuances; use "
                     "/api/coupons/{id}/issues/{userId}/redemption");
        return 0;
    default: redemption_failed(t, resp, rc); return 0;
    }
}

void redeem_by_code_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1], code[CP_ISSUE_CODE_CHARS + 1], amount[MONEY_TEXT_MAX];
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return;
    int rc = redeem_parse_code_body(req->body, req->body_len, code, order, amount, &why);
    if (rc != CP_OK) {
        problem_fail(resp, rc, "%s", why ? why : "invalid body");
        return;
    }
    int64_t coupon_id = 0, user_id = 0;
    if (code_target(t, req, resp, code, &coupon_id, &user_id))
        take(t, resp, coupon_id, user_id, order, 0, amount);
}

void redeem_hold_by_code_handle(struct app_thread *t, const struct http_request *req,
                                struct http_response *resp)
{
    char order[CP_ORDER_ID_MAX_CHARS + 1], code[CP_ISSUE_CODE_CHARS + 1];
    int64_t ttl_s = 0;
    const char *why = "invalid body";
    if (!content_is_json(req, resp))
        return;
    int rc = redeem_parse_hold_body(req->body, req->body_len, code, order, &ttl_s, &why);
    if (rc != CP_OK) {
        problem_fail(resp, rc, "%s", why ? why : "invalid body");
        return;
    }
    int64_t coupon_id = 0, user_id = 0;
    if (code_target(t, req, resp, code, &coupon_id, &user_id))
        take(t, resp, coupon_id, user_id, order, ttl_s * 1000, NULL);
}
