/*
 * admin.c - campaign management: create and change coupons, and the counts an
 * operator checks after a sale. Every endpoint needs `Authorization: Bearer
 * <admin_token>` (compared in constant time, never logged) or, with auth_mode = jwt,
 * a token with the scope coupon:admin (auth_admin).
 *
 * MariaDB is the source of truth for coupons; Redis holds what the issue script
 * reads (coupon:{ID}:meta). Create writes MariaDB, then the meta (if Redis is
 * down the issue path loads it from MariaDB on first use, which is safe because
 * a new coupon has no issuances). Patch changes the meta first, through
 * lua/meta_update.lua, which refuses a total below the users already holding the
 * coupon atomically with respect to concurrent issues; then MariaDB (restoring
 * the old meta if that fails). Every change deletes the L2 document and
 * publishes an invalidation so each worker process drops its L1 entries,
 * including the issue path's sold-out/ended flags.
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "coupon_doc.h"
#include "coupon_store.h"
#include "cp_err.h"
#include "handlers.h"
#include "issue.h"
#include "log.h"
#include "problem.h"
#include "credis.h"
#include "script.h"

/* 1 when authorised (the admin token, or a coupon:admin token: auth.h); otherwise the
 * problem is set. */
static int authorised(struct app_thread *t, const struct http_request *req,
                      struct http_response *resp)
{
    return auth_admin(t->app->auth, req, resp);
}

/* Drops every cached view of the coupon in every process. */
static void forget_everywhere(struct app_thread *t, int64_t coupon_id)
{
    char key[RKEY_MAX];
    int n = credis_doc_key(key, sizeof key, coupon_id);
    struct rcli *r = app_redis(t);
    if (r != NULL && n > 0 && l2_invalidate(t->app->l2, r, key, (size_t)n) != CP_OK)
        app_redis_failed(t);
    app_publish_invalidation(t, coupon_id);
}

static void send_document(struct http_response *resp, const struct coupon *c, int status)
{
    char doc[CP_DOC_MAX_BYTES];
    int n = coupon_doc_write(c, doc, sizeof doc);
    if (n < 2) {
        problem_fail(resp, CP_ERR_INTERNAL, "document too large");
        return;
    }
    resp->status = status;
    (void)http_response_append(resp, doc, (size_t)n);
}

void admin_create_handle(struct app_thread *t, const struct http_request *req,
                         struct http_response *resp)
{
    if (!authorised(t, req, resp))
        return;
    if (!http_is_json(req->content_type)) {
        problem_fail(resp, CP_ERR_MEDIA_TYPE, "send the body as application/json");
        return;
    }
    struct coupon c;
    const char *why = "invalid body";
    if (coupon_doc_parse_create(req->body, req->body_len, &c, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why);
        return;
    }
    int rc = coupon_store_insert(app_db(t), &c);
    if (rc == CP_ERR_CONFLICT) {
        problem_fail(resp, CP_ERR_CONFLICT, "a coupon with this code exists already");
        return;
    }
    if (rc != CP_OK) {
        app_db_failed(t, rc);
        problem_db(resp, rc);
        return;
    }
    struct rcli *r = app_redis(t);
    if (r == NULL ||
        credis_meta_write(r, c.id, c.total_quantity, c.start_ms, c.end_ms, NULL, 0) != CP_OK) {
        if (r != NULL)
            app_redis_failed(t);
        log_warn("coupon %" PRId64 " created; its issuance state is loaded on first issue", c.id);
    }
    forget_everywhere(t, c.id); /* an earlier 404 for this id may be cached */
    log_info("coupon %" PRId64 " created (total %" PRId64 ")", c.id, c.total_quantity);
    http_response_header(resp, "Location", "/api/coupons/%" PRId64, c.id);
    send_document(resp, &c, 201);
}

/* The answer to a failed coupon_store lookup: the coupon is unknown, or MariaDB
 * failed. */
static void answer_lookup_failure(struct app_thread *t, struct http_response *resp,
                                  int64_t coupon_id, int rc)
{
    if (rc == CP_ERR_NOT_FOUND) {
        problem_fail(resp, CP_ERR_NO_COUPON, "coupon %" PRId64 " does not exist", coupon_id);
        return;
    }
    app_db_failed(t, rc);
    problem_db(resp, rc);
}

/* Runs meta_update.lua: 1 written, 0 refused (*issued holders), or a negative error. */
static int meta_update(struct app_thread *t, const struct coupon *c, int64_t *issued)
{
    struct credis_script a;
    if (credis_meta_update_script(&a, c->id, c->total_quantity, c->start_ms, c->end_ms) != CP_OK)
        return CP_ERR_INTERNAL;
    redisReply *r =
        script_run(t->scripts, app_redis(t), SCRIPT_META_UPDATE, a.argc, a.argv, a.argvlen);
    if (r == NULL) {
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    int rc = CP_ERR_UNAVAILABLE;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_INTEGER) {
        *issued = r->element[1]->integer;
        rc = r->element[0]->integer == 1 ? 1 : 0;
    }
    freeReplyObject(r);
    return rc;
}

void admin_patch_handle(struct app_thread *t, const struct http_request *req,
                        struct http_response *resp, int64_t coupon_id)
{
    if (!authorised(t, req, resp))
        return;
    if (!http_is_json(req->content_type)) {
        problem_fail(resp, CP_ERR_MEDIA_TYPE, "send the body as application/json");
        return;
    }
    struct db *db = app_db(t);
    struct coupon old, c;
    int rc = coupon_store_get(db, coupon_id, &old);
    if (rc != CP_OK) {
        answer_lookup_failure(t, resp, coupon_id, rc);
        return;
    }
    c = old;
    int total_changed;
    const char *why = "invalid body";
    if (coupon_doc_apply_patch(req->body, req->body_len, &c, &total_changed, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why);
        return;
    }
    int64_t persisted = 0, issued = 0;
    if (total_changed) {
        if ((rc = coupon_store_count_issues(db, coupon_id, &persisted, NULL, NULL)) != CP_OK) {
            app_db_failed(t, rc);
            problem_db(resp, rc);
            return;
        }
        if (c.total_quantity < persisted) {
            problem_fail(resp, CP_ERR_BELOW_ISSUED,
                         "totalQuantity %" PRId64 " is below the %" PRId64 " already issued",
                         c.total_quantity, persisted);
            return;
        }
    }
    rc = meta_update(t, &c, &issued);
    if (rc < 0) {
        problem_fail(resp, CP_ERR_UNAVAILABLE, "redis unavailable");
        return;
    }
    if (rc == 0) {
        problem_fail(resp, CP_ERR_BELOW_ISSUED,
                     "totalQuantity %" PRId64 " is below the %" PRId64 " already issued",
                     c.total_quantity, issued);
        return;
    }
    rc = coupon_store_update(db, &c);
    if (rc != CP_OK) {
        app_db_failed(t, rc);
        int64_t ignored;
        if (meta_update(t, &old, &ignored) != 1)
            log_error("coupon %" PRId64 ": meta changed but MariaDB update failed; "
                      "run coupon-admin rebuild-redis --coupon %" PRId64,
                      coupon_id, coupon_id);
        problem_db(resp, rc);
        return;
    }
    forget_everywhere(t, coupon_id);
    log_info("coupon %" PRId64 " changed", coupon_id);
    send_document(resp, &c, 200);
}

void admin_stats_handle(struct app_thread *t, const struct http_request *req,
                        struct http_response *resp, int64_t coupon_id)
{
    if (!authorised(t, req, resp))
        return;
    struct db *db = app_db(t);
    struct rcli *r = app_redis(t);
    if (r == NULL) {
        problem_fail(resp, CP_ERR_UNAVAILABLE, "redis unavailable");
        return;
    }
    struct coupon c;
    int64_t persisted = 0, redeemed = 0, held = 0;
    int rc = coupon_store_get(db, coupon_id, &c);
    if (rc == CP_OK)
        rc = coupon_store_count_issues(db, coupon_id, &persisted, &redeemed, &held);
    if (rc != CP_OK) {
        answer_lookup_failure(t, resp, coupon_id, rc);
        return;
    }
    long long users = 0, pending = 0;
    if (credis_counts(r, &coupon_id, 1, &users, &pending) != 0) {
        app_redis_failed(t);
        problem_fail(resp, CP_ERR_UNAVAILABLE, "redis unavailable");
        return;
    }
    resp->status = 200;
    (void)http_response_printf(resp,
                               "{\"couponId\":%" PRId64 ",\"issued\":%lld,\"persisted\":%" PRId64
                               ",\"issuedQuantity\":%" PRId64 ",\"pending\":%lld"
                               ",\"redeemed\":%" PRId64 ",\"held\":%" PRId64 "}",
                               coupon_id, users, persisted, c.issued_quantity, pending, redeemed,
                               held);
}

/* For the console's endpoints (console_api.c): the same check as every admin route. */
int admin_authorised(struct app_thread *t, const struct http_request *req,
                     struct http_response *resp)
{
    return authorised(t, req, resp);
}
