#include "first.h"

#include "router.h"

#include <string.h>

#include "cp_err.h"
#include "decimal.h"
#include "handlers.h"
#include "issue.h"
#include "problem.h"
#include "redeem.h"

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
    R_ADMIN_LIST,
    R_ADMIN_SERIES
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
        return R_NONE;
    }
    if (seg_is(sg, 1, "users") && sg->n == 4 && seg_is(sg, 3, "coupons")) {
        *id_at = 2;
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
    return R_NONE;
}

static const char *allowed_methods(enum route_id r)
{
    switch (r) {
    case R_ISSUE_REF:
    case R_ISSUE: return "POST";
    case R_CREATE: return "POST";
    case R_REDEEM_BY_CODE: return "POST";
    case R_REDEMPTION: return "POST, DELETE";
    case R_COUPON: return "GET, HEAD, PATCH";
    default: return "GET, HEAD";
    }
}

static int method_allowed(enum route_id r, enum http_method m)
{
    switch (r) {
    case R_ISSUE_REF:
    case R_ISSUE:
    case R_CREATE:
    case R_REDEEM_BY_CODE: return m == HTTP_POST;
    case R_REDEMPTION: return m == HTTP_POST || m == HTTP_DELETE;
    case R_COUPON: return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_PATCH;
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
    case R_ADMIN_LIST: return ROUTE_ADMIN_LIST;
    case R_ADMIN_SERIES: return ROUTE_ADMIN_SERIES;
    default: return ROUTE_UNKNOWN;
    }
}

static enum metrics_route dispatch(struct app_thread *t, const struct http_request *req,
                                   struct http_response *resp, struct issue_call *later)
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
    if (id2_at >= 0 && decimal_parse_id(sg.s[id2_at], sg.len[id2_at], &id2) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID,
                     "the user id in the path must be an integer in 1..9223372036854775807");
        return mr;
    }
    switch (r) {
    case R_ISSUE_REF: issue_handle(t, req, resp, 0, later); break;
    case R_ISSUE: issue_handle(t, req, resp, id, later); break;
    case R_CREATE: admin_create_handle(t, req, resp); break;
    case R_COUPON:
        if (req->method == HTTP_PATCH)
            admin_patch_handle(t, req, resp, id);
        else
            read_coupon_handle(t, req, resp, id);
        break;
    case R_ISSUE_STATUS: read_issue_status_handle(t, req, resp, id, id2); break;
    case R_USER_COUPONS: read_user_coupons_handle(t, req, resp, id); break;
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
    case R_ADMIN_LIST: console_list_handle(t, req, resp); break;
    case R_ADMIN_SERIES: console_series_handle(t, req, resp, id); break;
    case R_NONE: break;
    }
    return mr;
}

enum metrics_route router_dispatch(struct app_thread *t, const struct http_request *req,
                                   struct http_response *resp)
{
    return dispatch(t, req, resp, NULL);
}

enum metrics_route router_dispatch_deferring(struct app_thread *t, const struct http_request *req,
                                             struct http_response *resp, struct issue_call *later)
{
    later->waiting = 0;
    return dispatch(t, req, resp, later);
}
