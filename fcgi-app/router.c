#include "first.h"

#include "router.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "cp_err.h"
#include "decimal.h"
#include "handlers.h"
#include "issue.h"
#include "problem.h"
#include "redeem.h"
#include "validate.h"

#define MAX_SEGMENTS 8

struct segments {
    const char *s[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS];
    int n;
};

/* Splits "/a/b/c" into a, b, c. Empty segments (//, trailing /) make it unroutable. */
static int split_path(const char *path, size_t len, struct segments *out)
{
    out->n = 0;
    if (len == 0 || path[0] != '/')
        return CP_ERR_INVALID;
    size_t i = 1;
    while (i <= len) {
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == start || out->n == MAX_SEGMENTS)
            return CP_ERR_INVALID;
        out->s[out->n] = path + start;
        out->len[out->n] = i - start;
        out->n++;
        i++;
    }
    return CP_OK;
}

static int seg_is(const struct segments *sg, int i, const char *lit)
{
    size_t n = strlen(lit);
    return sg->len[i] == n && memcmp(sg->s[i], lit, n) == 0;
}

enum route_id {
    R_NONE,
    R_ISSUE_REF,
    R_CREATE,
    R_COUPON,
    R_ISSUE,
    R_ISSUE_STATUS,
    R_USER_COUPONS,
    R_ADMIN_STATS,
    R_HEALTH,
    R_METRICS,
    R_REDEMPTION,
    R_REDEEM_BY_CODE,
    R_VALIDATE,
    R_HOLD,
    R_HOLD_BY_CODE,
    R_ADMIN_LIST,
    R_ADMIN_SERIES,
    R_WEBHOOKS,
    R_WEBHOOK,
    R_WEBHOOK_ROTATE,
    R_WEBHOOK_DELIVERIES,
    R_WEBHOOK_REDELIVER
};

/* Shape of the path only; ids are checked after the method. */
static enum route_id match(const struct segments *sg, int *id_at, int *id2_at)
{
    *id_at = *id2_at = -1;
    if (sg->n == 1 && seg_is(sg, 0, "metrics"))
        return R_METRICS;
    if (sg->n < 2 || !seg_is(sg, 0, "api"))
        return R_NONE;
    if (sg->n == 2 && seg_is(sg, 1, "health"))
        return R_HEALTH;
    if (sg->n == 2 && seg_is(sg, 1, "redemptions"))
        return R_REDEEM_BY_CODE;
    if (sg->n == 3 && seg_is(sg, 1, "redemptions") && seg_is(sg, 2, "validate"))
        return R_VALIDATE;
    if (sg->n == 3 && seg_is(sg, 1, "redemptions") && seg_is(sg, 2, "hold"))
        return R_HOLD_BY_CODE;
    if (seg_is(sg, 1, "coupons")) {
        if (sg->n == 2)
            return R_CREATE;
        if (sg->n == 3 && seg_is(sg, 2, "issue"))
            return R_ISSUE_REF;
        *id_at = 2;
        if (sg->n == 3)
            return R_COUPON;
        if (sg->n == 4 && seg_is(sg, 3, "issue"))
            return R_ISSUE;
        if (sg->n == 5 && seg_is(sg, 3, "issues")) {
            *id2_at = 4;
            return R_ISSUE_STATUS;
        }
        if (sg->n == 6 && seg_is(sg, 3, "issues") && seg_is(sg, 5, "redemption")) {
            *id2_at = 4;
            return R_REDEMPTION;
        }
        if (sg->n == 6 && seg_is(sg, 3, "issues") && seg_is(sg, 5, "hold")) {
            *id2_at = 4;
            return R_HOLD;
        }
        return R_NONE;
    }
    if (seg_is(sg, 1, "users") && sg->n == 4 && seg_is(sg, 3, "coupons")) {
        *id2_at = 2;
        return R_USER_COUPONS;
    }
    if (seg_is(sg, 1, "admin") && sg->n == 5 && seg_is(sg, 2, "coupons") &&
        seg_is(sg, 4, "stats")) {
        *id_at = 3;
        return R_ADMIN_STATS;
    }
    /* The console's endpoints (console_api.c). */
    if (seg_is(sg, 1, "admin") && sg->n == 3 && seg_is(sg, 2, "coupons"))
        return R_ADMIN_LIST;
    if (seg_is(sg, 1, "admin") && sg->n == 5 && seg_is(sg, 2, "coupons") &&
        seg_is(sg, 4, "series")) {
        *id_at = 3;
        return R_ADMIN_SERIES;
    }
    /* Webhook endpoints (webhooks_api.c); the redeliver's delivery id is segment 5. */
    if (seg_is(sg, 1, "admin") && sg->n >= 3 && seg_is(sg, 2, "webhooks")) {
        *id_at = sg->n > 3 ? 3 : -1;
        if (sg->n == 3)
            return R_WEBHOOKS;
        if (sg->n == 4)
            return R_WEBHOOK;
        if (sg->n == 5 && seg_is(sg, 4, "rotate"))
            return R_WEBHOOK_ROTATE;
        if (sg->n == 5 && seg_is(sg, 4, "deliveries"))
            return R_WEBHOOK_DELIVERIES;
        if (sg->n == 7 && seg_is(sg, 4, "deliveries") && seg_is(sg, 6, "redeliver"))
            return R_WEBHOOK_REDELIVER;
    }
    return R_NONE;
}

static const char *allowed_methods(enum route_id r)
{
    switch (r) {
    case R_ISSUE_REF:
    case R_ISSUE: return "POST";
    case R_CREATE: return "POST";
    case R_REDEEM_BY_CODE:
    case R_VALIDATE:
    case R_HOLD_BY_CODE: return "POST";
    case R_REDEMPTION:
    case R_HOLD: return "POST, DELETE";
    case R_COUPON: return "GET, HEAD, PATCH";
    case R_WEBHOOKS: return "GET, HEAD, POST";
    case R_WEBHOOK: return "DELETE";
    case R_WEBHOOK_ROTATE:
    case R_WEBHOOK_REDELIVER: return "POST";
    default: return "GET, HEAD";
    }
}

static int method_allowed(enum route_id r, enum http_method m)
{
    switch (r) {
    case R_ISSUE_REF:
    case R_ISSUE:
    case R_CREATE:
    case R_REDEEM_BY_CODE:
    case R_VALIDATE:
    case R_HOLD_BY_CODE: return m == HTTP_POST;
    case R_REDEMPTION:
    case R_HOLD: return m == HTTP_POST || m == HTTP_DELETE;
    case R_COUPON: return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_PATCH;
    case R_WEBHOOKS: return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_POST;
    case R_WEBHOOK: return m == HTTP_DELETE;
    case R_WEBHOOK_ROTATE:
    case R_WEBHOOK_REDELIVER: return m == HTTP_POST;
    default: return m == HTTP_GET || m == HTTP_HEAD;
    }
}

static enum metrics_route metrics_route_of(enum route_id r, enum http_method m)
{
    switch (r) {
    case R_ISSUE_REF: return ROUTE_ISSUE_REF;
    case R_ISSUE: return ROUTE_ISSUE;
    case R_CREATE: return ROUTE_COUPON_CREATE;
    case R_COUPON: return m == HTTP_PATCH ? ROUTE_COUPON_PATCH : ROUTE_COUPON_GET;
    case R_ISSUE_STATUS: return ROUTE_ISSUE_STATUS;
    case R_USER_COUPONS: return ROUTE_USER_COUPONS;
    case R_ADMIN_STATS: return ROUTE_ADMIN_STATS;
    case R_HEALTH: return ROUTE_HEALTH;
    case R_METRICS: return ROUTE_METRICS;
    case R_REDEMPTION: return m == HTTP_DELETE ? ROUTE_REDEEM_CANCEL : ROUTE_REDEEM;
    case R_REDEEM_BY_CODE: return ROUTE_REDEEM_BY_CODE;
    case R_VALIDATE: return ROUTE_VALIDATE;
    case R_HOLD: return m == HTTP_DELETE ? ROUTE_HOLD_RELEASE : ROUTE_HOLD;
    case R_HOLD_BY_CODE: return ROUTE_HOLD_BY_CODE;
    case R_ADMIN_LIST: return ROUTE_ADMIN_LIST;
    case R_ADMIN_SERIES: return ROUTE_ADMIN_SERIES;
    case R_WEBHOOKS:
    case R_WEBHOOK:
    case R_WEBHOOK_ROTATE:
    case R_WEBHOOK_DELIVERIES:
    case R_WEBHOOK_REDELIVER: return ROUTE_ADMIN_WEBHOOKS;
    default: return ROUTE_UNKNOWN;
    }
}

/* Who may use a route (docs/ARCHITECTURE.md, "Who is asking"). */
enum route_access {
    ACCESS_PUBLIC, /* anybody: health, metrics (loopback in the deploy configs), a coupon */
    ACCESS_ADMIN,  /* the admin token or a coupon:admin token (auth_admin, in the handlers) */
    ACCESS_CLAIM,  /* a user for themselves; never a service or admin token */
    ACCESS_READ,   /* a user's own issuances; an admin may read anybody's */
    ACCESS_REDEEM  /* a user's own issuances; a coupon:checkout service for anybody */
};

static enum route_access access_of(enum route_id r, enum http_method m)
{
    switch (r) {
    case R_ISSUE_REF:
    case R_ISSUE: return ACCESS_CLAIM;
    case R_ISSUE_STATUS:
    case R_USER_COUPONS: return ACCESS_READ;
    case R_REDEMPTION:
    case R_REDEEM_BY_CODE:
    case R_VALIDATE:
    case R_HOLD:
    case R_HOLD_BY_CODE: return ACCESS_REDEEM;
    case R_CREATE:
    case R_ADMIN_STATS:
    case R_ADMIN_LIST:
    case R_ADMIN_SERIES:
    case R_WEBHOOKS:
    case R_WEBHOOK:
    case R_WEBHOOK_ROTATE:
    case R_WEBHOOK_DELIVERIES:
    case R_WEBHOOK_REDELIVER: return ACCESS_ADMIN;
    case R_COUPON: return m == HTTP_PATCH ? ACCESS_ADMIN : ACCESS_PUBLIC;
    default: return ACCESS_PUBLIC;
    }
}

/*
 * The user a path names ("me" or an id) against the caller: 1 and *user set when the
 * caller may act for that user on this route; 0 with the problem set otherwise. The
 * answer depends on the path and the token only - never on whether the resource
 * exists - so a 403 tells nothing about another user's coupons.
 */
static int path_user_allowed(struct app_thread *t, const struct http_request *req,
                             struct http_response *resp, enum route_access access, const char *seg,
                             size_t seglen, int64_t *user)
{
    const struct http_caller *who = &req->caller;
    if (seglen == 2 && memcmp(seg, "me", 2) == 0) {
        if (!who->verified) {
            problem_fail(resp, CP_ERR_INVALID,
                         "'me' needs an identity, and auth_mode = none identifies nobody: "
                         "name the user id");
            return 0;
        }
        if (who->user_id <= 0) {
            metrics_add(t->app->metrics, M_AUTH_FORBIDDEN, 1);
            problem_fail(resp, CP_ERR_FORBIDDEN, "this token names no user: use a user id");
            return 0;
        }
        *user = who->user_id;
        return 1;
    }
    if (decimal_parse_id(seg, seglen, user) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID,
                     "the user id in the path must be 'me' or an integer in "
                     "1..9223372036854775807");
        return 0;
    }
    if (!who->verified || who->user_id == *user)
        return 1;
    if (access == ACCESS_READ && (who->scopes & HTTP_SCOPE_ADMIN))
        return 1;
    if (access == ACCESS_REDEEM && (who->scopes & HTTP_SCOPE_CHECKOUT))
        return 1;
    metrics_add(t->app->metrics, M_AUTH_FORBIDDEN, 1);
    problem_fail(resp, CP_ERR_FORBIDDEN, "this token acts for user %" PRId64 " only", who->user_id);
    return 0;
}

/* Every route once, as a client writes it ({id}: a coupon id, {user}: a user id or
 * "me"). router_print_routes lists it (coupon-fcgi --print-routes: the integration
 * suites build their tables from it) and test_router checks that each path matches its
 * route, so the list cannot drift from match(). */
static const struct {
    enum route_id id;
    const char *path;
} route_table[] = {
    {R_ISSUE_REF, "/api/coupons/issue"},
    {R_CREATE, "/api/coupons"},
    {R_COUPON, "/api/coupons/{id}"},
    {R_ISSUE, "/api/coupons/{id}/issue"},
    {R_ISSUE_STATUS, "/api/coupons/{id}/issues/{user}"},
    {R_USER_COUPONS, "/api/users/{user}/coupons"},
    {R_ADMIN_STATS, "/api/admin/coupons/{id}/stats"},
    {R_HEALTH, "/api/health"},
    {R_METRICS, "/metrics"},
    {R_REDEMPTION, "/api/coupons/{id}/issues/{user}/redemption"},
    {R_REDEEM_BY_CODE, "/api/redemptions"},
    {R_VALIDATE, "/api/redemptions/validate"},
    {R_HOLD, "/api/coupons/{id}/issues/{user}/hold"},
    {R_HOLD_BY_CODE, "/api/redemptions/hold"},
    {R_ADMIN_LIST, "/api/admin/coupons"},
    {R_ADMIN_SERIES, "/api/admin/coupons/{id}/series"},
    {R_WEBHOOKS, "/api/admin/webhooks"},
    {R_WEBHOOK, "/api/admin/webhooks/{id}"},
    {R_WEBHOOK_ROTATE, "/api/admin/webhooks/{id}/rotate"},
    {R_WEBHOOK_DELIVERIES, "/api/admin/webhooks/{id}/deliveries"},
    {R_WEBHOOK_REDELIVER, "/api/admin/webhooks/{id}/deliveries/{id}/redeliver"},
};

static const char *access_name(enum route_access a)
{
    switch (a) {
    case ACCESS_ADMIN: return "admin";
    case ACCESS_CLAIM: return "claim";
    case ACCESS_READ: return "read";
    case ACCESS_REDEEM: return "redeem";
    default: return "public";
    }
}

static const enum http_method listed_methods[] = {HTTP_GET, HTTP_HEAD,  HTTP_POST,
                                                  HTTP_PUT, HTTP_PATCH, HTTP_DELETE};
static const char *const listed_method_names[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};

void router_print_routes(FILE *out)
{
    for (size_t i = 0; i < sizeof route_table / sizeof route_table[0]; i++)
        for (size_t m = 0; m < sizeof listed_methods / sizeof listed_methods[0]; m++)
            if (method_allowed(route_table[i].id, listed_methods[m]))
                fprintf(out, "%s %s %s\n", listed_method_names[m], route_table[i].path,
                        access_name(access_of(route_table[i].id, listed_methods[m])));
}

int router_table_check(char *why, size_t cap)
{
    for (size_t i = 0; i < sizeof route_table / sizeof route_table[0]; i++) {
        char path[128];
        const char *p = route_table[i].path;
        size_t n = 0;
        while (*p != '\0' && n + 8 < sizeof path) {
            if (strncmp(p, "{id}", 4) == 0 || strncmp(p, "{user}", 6) == 0) {
                n += (size_t)snprintf(path + n, sizeof path - n, "%s", p[1] == 'i' ? "7" : "me");
                p += p[1] == 'i' ? 4 : 6;
            } else {
                path[n++] = *p++;
            }
        }
        path[n] = '\0';
        struct segments sg;
        int id_at, id2_at;
        if (split_path(path, n, &sg) != CP_OK || match(&sg, &id_at, &id2_at) != route_table[i].id) {
            snprintf(why, cap, "%s does not match its route", route_table[i].path);
            return CP_ERR_INTERNAL;
        }
        for (size_t j = 0; j < i; j++)
            if (route_table[j].id == route_table[i].id) {
                snprintf(why, cap, "route of %s listed twice", route_table[i].path);
                return CP_ERR_INTERNAL;
            }
    }
    if (sizeof route_table / sizeof route_table[0] != R_WEBHOOK_REDELIVER) {
        snprintf(why, cap, "a route is missing from route_table");
        return CP_ERR_INTERNAL;
    }
    return CP_OK;
}

enum metrics_route router_dispatch(struct app_thread *t, struct http_request *req,
                                   struct http_response *resp)
{
    struct segments sg;
    int id_at, id2_at;
    enum route_id r = R_NONE;
    if (split_path(req->path, req->path_len, &sg) == CP_OK)
        r = match(&sg, &id_at, &id2_at);
    if (r == R_NONE) {
        problem_fail(resp, CP_ERR_NOT_FOUND, "no endpoint at this path");
        return ROUTE_UNKNOWN;
    }
    enum metrics_route mr = metrics_route_of(r, req->method);
    if (!method_allowed(r, req->method)) {
        problem_fail(resp, CP_ERR_METHOD, "this endpoint accepts %s", allowed_methods(r));
        http_response_header(resp, "Allow", "%s", allowed_methods(r));
        return mr;
    }
    int64_t id = 0, id2 = 0;
    if (id_at >= 0 && decimal_parse_id(sg.s[id_at], sg.len[id_at], &id) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID,
                     "the id in the path must be an integer in 1..9223372036854775807");
        return mr;
    }
    enum route_access access = access_of(r, req->method);
    if (access == ACCESS_CLAIM || access == ACCESS_READ || access == ACCESS_REDEEM) {
        if (auth_identify(t->app->auth, req, &req->caller, resp) != CP_OK)
            return mr;
        if (access == ACCESS_CLAIM && req->caller.verified &&
            (req->caller.user_id <= 0 ||
             (req->caller.scopes & (HTTP_SCOPE_ADMIN | HTTP_SCOPE_CHECKOUT)))) {
            metrics_add(t->app->metrics, M_AUTH_FORBIDDEN, 1);
            problem_fail(resp, CP_ERR_FORBIDDEN,
                         "claims are made by users themselves, not with a service or admin "
                         "token");
            return mr;
        }
    }
    if (id2_at >= 0 && !path_user_allowed(t, req, resp, access, sg.s[id2_at], sg.len[id2_at], &id2))
        return mr;
    switch (r) {
    case R_ISSUE_REF: issue_handle(t, req, resp, 0); break;
    case R_ISSUE: issue_handle(t, req, resp, id); break;
    case R_CREATE: admin_create_handle(t, req, resp); break;
    case R_COUPON:
        if (req->method == HTTP_PATCH)
            admin_patch_handle(t, req, resp, id);
        else
            read_coupon_handle(t, req, resp, id);
        break;
    case R_ISSUE_STATUS: read_issue_status_handle(t, req, resp, id, id2); break;
    case R_USER_COUPONS: read_user_coupons_handle(t, req, resp, id2); break;
    case R_ADMIN_STATS: admin_stats_handle(t, req, resp, id); break;
    case R_HEALTH: health_handle(t, req, resp); break;
    case R_METRICS: health_metrics_handle(t, req, resp); break;
    case R_REDEMPTION:
        if (req->method == HTTP_DELETE)
            redeem_cancel_handle(t, req, resp, id, id2);
        else
            redeem_handle(t, req, resp, id, id2);
        break;
    case R_REDEEM_BY_CODE: redeem_by_code_handle(t, req, resp); break;
    case R_VALIDATE: validate_handle(t, req, resp); break;
    case R_HOLD:
        if (req->method == HTTP_DELETE)
            redeem_release_handle(t, req, resp, id, id2);
        else
            redeem_hold_handle(t, req, resp, id, id2);
        break;
    case R_HOLD_BY_CODE: redeem_hold_by_code_handle(t, req, resp); break;
    case R_ADMIN_LIST: console_list_handle(t, req, resp); break;
    case R_ADMIN_SERIES: console_series_handle(t, req, resp, id); break;
    case R_WEBHOOKS: webhooks_collection_handle(t, req, resp); break;
    case R_WEBHOOK: webhooks_disable_handle(t, req, resp, id); break;
    case R_WEBHOOK_ROTATE: webhooks_rotate_handle(t, req, resp, id); break;
    case R_WEBHOOK_DELIVERIES: webhooks_deliveries_handle(t, req, resp, id); break;
    case R_WEBHOOK_REDELIVER:
        if (decimal_parse_id(sg.s[5], sg.len[5], &id2) != CP_OK)
            problem_fail(resp, CP_ERR_INVALID,
                         "the delivery id must be an integer in "
                         "1..9223372036854775807");
        else
            webhooks_redeliver_handle(t, req, resp, id, id2);
        break;
    case R_NONE: break;
    }
    return mr;
}
