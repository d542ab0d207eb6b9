/*
 * console_api.c - the two admin endpoints the operator console (deploy/console/)
 * needs beyond the existing admin API:
 *
 *   GET /api/admin/coupons?limit=&after=        campaigns, newest first, keyset paginated
 *       (`after` = the `next` cursor of the previous page, a coupon id; limit 1..50),
 *       each with live issued (HLEN coupon:{ID}:users), persisted (coupon.issued_quantity,
 *       the rows the consumer inserted), pending (HLEN coupon:{ID}:pending), remaining,
 *       and the checkout's redeemed and held issuances as MariaDB has them (the rows the
 *       checkout applier wrote; a hold whose hold_expires_at passed is not held).
 *       Two prepared SELECTs (the page, then one GROUP BY over its ids) and one
 *       pipelined Redis round trip per page.
 *   GET /api/admin/coupons/{id}/series?seconds=  the campaign's claims per second and the
 *       issue endpoints' answers by status per second over the last `seconds` (10..300),
 *       read from the shared ring that the master samples (series.h); no worker is asked.
 *
 * Both need the admin token (admin_authorised). The query string is parsed strictly:
 * an unknown or repeated parameter, or a value out of range, is a 400 problem.
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "coupon_store.h"
#include "cp_err.h"
#include "decimal.h"
#include "handlers.h"
#include "problem.h"
#include "credis.h"
#include "series.h"
#include "timefmt.h"

/* Refuses a query naming anything but the allowed parameters (why = the problem's detail). */
static int only_params(const char *query, const char *const *allowed, char *why, size_t cap)
{
    const char *p = query;
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        int known = 0;
        for (size_t i = 0; allowed[i] != NULL; i++)
            if (strlen(allowed[i]) == nlen && memcmp(allowed[i], p, nlen) == 0)
                known = 1;
        if (!known) {
            snprintf(why, cap, "unknown query parameter '%.*s'", (int)(nlen > 32 ? 32 : nlen), p);
            return CP_ERR_INVALID;
        }
        p = amp ? amp + 1 : NULL;
    }
    return CP_OK;
}

/* An optional integer parameter in lo..hi; *out keeps its default when absent. */
static int int_param(const char *query, const char *name, int64_t lo, int64_t hi, int64_t *out,
                     char *why, size_t cap)
{
    const char *v;
    size_t len;
    int rc = http_query_param(query, name, &v, &len);
    if (rc == CP_ERR_NOT_FOUND)
        return CP_OK;
    int64_t n = 0;
    if (rc != CP_OK) {
        snprintf(why, cap, "%s given more than once", name);
        return CP_ERR_INVALID;
    }
    if (decimal_parse_id(v, len, &n) != CP_OK || n < lo || n > hi) {
        snprintf(why, cap, "%s must be an integer in %" PRId64 "..%" PRId64, name, lo, hi);
        return CP_ERR_INVALID;
    }
    *out = n;
    return CP_OK;
}

/* HLEN of users and pending for every row, in one pipelined round trip. */
static int live_counts(struct app_thread *t, const struct coupon_summary *rows, size_t n,
                       long long *issued, long long *pending)
{
    struct rcli *r = app_redis(t);
    int64_t ids[CP_ADMIN_PAGE_LIMIT_MAX + 1];
    if (r == NULL)
        return CP_ERR_UNAVAILABLE;
    if (n > sizeof ids / sizeof ids[0])
        return CP_ERR_INTERNAL;
    for (size_t i = 0; i < n; i++)
        ids[i] = rows[i].id;
    if (credis_counts(r, ids, n, issued, pending) != 0) {
        app_redis_failed(t);
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

static int write_item(struct http_response *resp, const struct coupon_summary *c, long long issued,
                      long long pending, int first)
{
    char start[TIMEFMT_LEN] = "", end[TIMEFMT_LEN] = "", total[24] = "null", remaining[24] = "null";
    (void)timefmt_format_ms(c->start_ms, start, sizeof start);
    (void)timefmt_format_ms(c->end_ms, end, sizeof end);
    if (c->total_quantity >= 0) {
        long long left = c->total_quantity > issued ? c->total_quantity - issued : 0;
        snprintf(total, sizeof total, "%" PRId64, c->total_quantity);
        snprintf(remaining, sizeof remaining, "%lld", left);
    }
    int rc =
        http_response_printf(resp, "%s{\"id\":%" PRId64 ",\"title\":\"", first ? "" : ",", c->id);
    if (rc == CP_OK)
        rc = problem_json_escape(resp, c->title, strlen(c->title));
    if (rc == CP_OK)
        rc = http_response_printf(resp,
                                  "\",\"startAt\":\"%s\",\"endAt\":\"%s\",\"totalQuantity\":%s,"
                                  "\"issued\":%lld,\"persisted\":%" PRId64 ",\"pending\":%lld,"
                                  "\"remaining\":%s,\"redeemed\":%" PRId64 ",\"held\":%" PRId64 "}",
                                  start, end, total, issued, c->issued_quantity, pending, remaining,
                                  c->redeemed, c->held);
    return rc;
}

void console_list_handle(struct app_thread *t, const struct http_request *req,
                         struct http_response *resp)
{
    static const char *const allowed[] = {"limit", "after", NULL};
    struct coupon_summary rows[CP_ADMIN_PAGE_LIMIT_MAX + 1];
    long long issued[CP_ADMIN_PAGE_LIMIT_MAX + 1], pending[CP_ADMIN_PAGE_LIMIT_MAX + 1];
    char why[96];
    int64_t limit = CP_PAGE_LIMIT_DEFAULT, after = INT64_MAX;
    if (!admin_authorised(t, req, resp))
        return;
    if (only_params(req->query, allowed, why, sizeof why) != CP_OK ||
        int_param(req->query, "limit", CP_PAGE_LIMIT_MIN, CP_ADMIN_PAGE_LIMIT_MAX, &limit, why,
                  sizeof why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why);
        return;
    }
    if (int_param(req->query, "after", 1, INT64_MAX, &after, why, sizeof why) != CP_OK) {
        const char *cursor = "after must be the next cursor of an earlier page";
        problem_fail(resp, CP_ERR_INVALID, "%s", strstr(why, "once") ? why : cursor);
        return;
    }
    size_t n = 0;
    int more = 0;
    int rc = coupon_store_list(app_db(t), after, (int)limit + 1, rows, &n);
    if (rc == CP_OK && n > (size_t)limit) {
        more = 1; /* the extra row only tells that a next page exists */
        n = (size_t)limit;
    }
    if (rc == CP_OK)
        rc = coupon_store_checkout_counts(app_db(t), rows, n);
    if (rc != CP_OK) {
        app_db_failed(t, rc);
        problem_db(resp, rc);
        return;
    }
    rc = live_counts(t, rows, n, issued, pending);
    if (rc != CP_OK) {
        problem_fail(resp, rc, "redis unavailable");
        return;
    }
    resp->status = 200;
    rc = http_response_printf(resp, "{\"items\":[");
    for (size_t i = 0; i < n && rc == CP_OK; i++)
        rc = write_item(resp, &rows[i], issued[i], pending[i], i == 0);
    if (rc == CP_OK && more)
        rc = http_response_printf(resp, "],\"next\":\"%" PRId64 "\"}", rows[n - 1].id);
    else if (rc == CP_OK)
        rc = http_response_printf(resp, "],\"next\":null}");
    if (rc != CP_OK) {
        resp->body_len = 0;
        problem_fail(resp, CP_ERR_INTERNAL, "page too large for the response buffer");
    }
}

static int write_values(struct http_response *resp, const uint32_t *v, int n)
{
    int rc = http_response_printf(resp, "[");
    for (int i = 0; i < n && rc == CP_OK; i++)
        rc = http_response_printf(resp, "%s%u", i ? "," : "", (unsigned)v[i]);
    if (rc == CP_OK)
        rc = http_response_printf(resp, "]");
    return rc;
}

static int write_series(struct http_response *resp, int64_t coupon_id, const struct series_view *v)
{
    char end[TIMEFMT_LEN] = "";
    (void)timefmt_format_ms(v->last_sec * 1000, end, sizeof end);
    int rc = http_response_printf(
        resp,
        "{\"couponId\":%" PRId64 ",\"intervalSeconds\":1,"
        "\"seconds\":%d,\"end\":%s%s%s,\"endEpochSeconds\":%" PRId64 ",\"tracked\":%s,\"claims\":",
        coupon_id, v->seconds, v->last_sec ? "\"" : "", v->last_sec ? end : "null",
        v->last_sec ? "\"" : "", v->last_sec, v->tracked ? "true" : "false");
    if (rc == CP_OK)
        rc = write_values(resp, v->claims, v->seconds);
    if (rc == CP_OK)
        rc = http_response_printf(resp, ",\"answers\":[");
    int first = 1;
    for (int i = 0; i < v->nstatus && rc == CP_OK; i++) {
        uint64_t sum = 0;
        for (int j = 0; j < v->seconds; j++)
            sum += v->answers[i][j];
        if (sum == 0)
            continue; /* only the statuses that occurred in the window */
        if (v->status_code[i] == 0)
            rc =
                http_response_printf(resp, "%s{\"status\":\"other\",\"values\":", first ? "" : ",");
        else
            rc = http_response_printf(resp, "%s{\"status\":\"%d\",\"values\":", first ? "" : ",",
                                      v->status_code[i]);
        if (rc == CP_OK)
            rc = write_values(resp, v->answers[i], v->seconds);
        if (rc == CP_OK)
            rc = http_response_printf(resp, "}");
        first = 0;
    }
    if (rc == CP_OK)
        rc = http_response_printf(resp, "]}");
    return rc;
}

void console_series_handle(struct app_thread *t, const struct http_request *req,
                           struct http_response *resp, int64_t coupon_id)
{
    static const char *const allowed[] = {"seconds", NULL};
    static _Thread_local struct series_view view; /* ~30 KiB: not on the stack */
    char why[96];
    int64_t seconds = CP_SERIES_SECONDS_DEFAULT;
    if (!admin_authorised(t, req, resp))
        return;
    if (only_params(req->query, allowed, why, sizeof why) != CP_OK ||
        int_param(req->query, "seconds", CP_SERIES_SECONDS_MIN, SERIES_SECONDS, &seconds, why,
                  sizeof why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why);
        return;
    }
    struct coupon c;
    int rc = coupon_store_get(app_db(t), coupon_id, &c);
    if (rc == CP_ERR_NOT_FOUND) {
        problem_fail(resp, CP_ERR_NO_COUPON, "coupon %" PRId64 " does not exist", coupon_id);
        return;
    }
    if (rc != CP_OK) {
        app_db_failed(t, rc);
        problem_db(resp, rc);
        return;
    }
    if (t->app->series == NULL ||
        series_read(t->app->series, coupon_id, (int)seconds, &view) != CP_OK) {
        problem_fail(resp, CP_ERR_INTERNAL, "time series unavailable");
        return;
    }
    resp->status = 200;
    if (write_series(resp, coupon_id, &view) != CP_OK) {
        resp->body_len = 0;
        problem_fail(resp, CP_ERR_INTERNAL, "series too large for the response buffer");
    }
}
