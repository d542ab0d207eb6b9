/*
 * webhooks_api.c - the admin API of webhook endpoints (issue 27; docs/ARCHITECTURE.md,
 * "Webhooks"):
 *
 *   POST   /api/admin/webhooks {"url","events":[...]}    201: id, secret (shown once)
 *   GET    /api/admin/webhooks                            the endpoints, no secrets
 *   DELETE /api/admin/webhooks/{id}                       204: disabled (kept, listed)
 *   POST   /api/admin/webhooks/{id}/rotate                200: the new secret; the old one
 *                                                         signs too for WEBHOOK_OVERLAP_S
 *   GET    /api/admin/webhooks/{id}/deliveries            the newest deliveries
 *   POST   /api/admin/webhooks/{id}/deliveries/{deliveryId}/redeliver   202: pending again
 *
 * Every route needs the admin token (admin_authorised). A URL is checked by
 * common/whurl at registration (parsed, resolved, every address against the SSRF
 * rules and webhook_allow_cidrs) and again by the dispatcher at every delivery.
 * All SQL is common/whstore's.
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cp_err.h"
#include "handlers.h"
#include "jsonv.h"
#include "problem.h"
#include "timefmt.h"
#include "whstore.h"
#include "whurl.h"

#define WEBHOOK_OVERLAP_S 86400 /* both secrets sign this long after a rotation */

static const char *const event_types[] = {"coupon.issued", "coupon.redeemed",
                                          "coupon.redemption_cancelled", "coupon.held",
                                          "coupon.hold_released"};
#define N_EVENT_TYPES (sizeof event_types / sizeof event_types[0])

/* Answers a whstore failure: 404 for CP_ERR_NOT_FOUND, else 503 (connection dropped). */
static void store_failed(struct app_thread *t, struct http_response *resp, int rc, const char *what)
{
    if (rc == CP_ERR_NOT_FOUND) {
        problem_fail(resp, CP_ERR_NOT_FOUND, "no such %s", what);
        return;
    }
    app_db_failed(t, rc);
    problem_db(resp, rc);
}

/* "events" of the body into the SET text "a,b" (each a known type, once, 1..N). */
static int parse_events(struct json_object *obj, char *out, size_t cap, const char **why)
{
    struct json_object *arr;
    *why = "events must be a non-empty array of event types";
    if (!json_object_object_get_ex(obj, "events", &arr) ||
        !json_object_is_type(arr, json_type_array))
        return CP_ERR_INVALID;
    size_t n = json_object_array_length(arr), len = 0;
    unsigned seen = 0;
    if (n == 0 || n > N_EVENT_TYPES)
        return CP_ERR_INVALID;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(arr, i);
        const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
        size_t k = 0;
        while (k < N_EVENT_TYPES && strcmp(s, event_types[k]) != 0)
            k++;
        if (k == N_EVENT_TYPES || (seen & (1u << k))) {
            *why = k == N_EVENT_TYPES
                       ? "events: unknown event type (coupon.issued, coupon.redeemed, "
                         "coupon.redemption_cancelled, coupon.held, "
                         "coupon.hold_released)"
                       : "events: a type is listed twice";
            return CP_ERR_INVALID;
        }
        seen |= 1u << k;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", event_types[k]);
    }
    return CP_OK;
}

/* Parses, resolves and checks the URL: CP_OK, or a problem set. */
static int check_url(struct app_thread *t, struct http_response *resp, const char *url, size_t len)
{
    struct whurl u;
    struct whurl_cidrs allow;
    char err[160], addr[64];
    const char *why = "invalid url";
    if (whurl_parse(url, len, &u, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why);
        return CP_ERR_INVALID;
    }
    if (whurl_cidrs_parse(t->app->conf->webhook_allow_cidrs, &allow, err, sizeof err) != CP_OK) {
        problem_fail(resp, CP_ERR_INTERNAL, "webhook_allow_cidrs: %s", err);
        return CP_ERR_INTERNAL;
    }
    if (whurl_resolve(&u, &allow, addr, sizeof addr, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_URL_REFUSED, "%s", why);
        return CP_ERR_URL_REFUSED;
    }
    return CP_OK;
}

/* Appends "events":["a","b"] from the SET text. */
static void print_events(struct http_response *resp, const char *events)
{
    (void)http_response_printf(resp, "\"events\":[");
    const char *p = events;
    for (int first = 1; *p != '\0'; first = 0) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        (void)http_response_printf(resp, "%s\"%.*s\"", first ? "" : ",", (int)n, p);
        p += n + (comma != NULL);
    }
    (void)http_response_printf(resp, "]");
}

/* "name":"<RFC 3339>" or "name":null for 0. */
static void print_time(struct http_response *resp, const char *name, int64_t ms)
{
    char text[40];
    if (ms > 0 && timefmt_format_ms(ms, text, sizeof text) > 0)
        (void)http_response_printf(resp, ",\"%s\":\"%s\"", name, text);
    else
        (void)http_response_printf(resp, ",\"%s\":null", name);
}

static void webhooks_create(struct app_thread *t, const struct http_request *req,
                            struct http_response *resp)
{
    static const char *const allowed[] = {"url", "events", NULL};
    struct json_object *obj = NULL;
    const char *why = "invalid body", *url = NULL, *unknown = NULL;
    size_t url_len = 0;
    char events[WHSTORE_EVENTS_MAX], secret[WHSIG_SECRET_MAX], url_copy[CP_WEBHOOK_URL_MAX + 1];
    if (!http_is_json(req->content_type)) {
        problem_fail(resp, CP_ERR_MEDIA_TYPE, "send the body as application/json");
        return;
    }
    if (jsonv_parse_object(req->body, req->body_len, &obj, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why);
        return;
    }
    if (!jsonv_only_keys(obj, allowed, &unknown)) {
        problem_fail(resp, CP_ERR_INVALID, "unknown member '%s'", unknown);
        goto out;
    }
    if (jsonv_get_string(obj, "url", CP_WEBHOOK_URL_MAX, &url, &url_len) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "url must be a string of 1..%d characters",
                     CP_WEBHOOK_URL_MAX);
        goto out;
    }
    if (parse_events(obj, events, sizeof events, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why);
        goto out;
    }
    if (check_url(t, resp, url, url_len) != CP_OK)
        goto out;
    memcpy(url_copy, url, url_len);
    url_copy[url_len] = '\0';
    if (whsig_secret_new(secret, sizeof secret) != CP_OK) {
        problem_fail(resp, CP_ERR_INTERNAL, "no random secret");
        goto out;
    }
    struct db *db = app_db(t);
    int64_t id = 0;
    int rc = whstore_endpoint_insert(db, url_copy, events, secret, &id);
    if (rc != CP_OK) {
        store_failed(t, resp, rc, "webhook");
        goto out;
    }
    resp->status = 201;
    http_response_header(resp, "Location", "/api/admin/webhooks/%" PRId64, id);
    (void)http_response_printf(resp, "{\"id\":%" PRId64 ",\"url\":\"", id);
    (void)problem_json_escape(resp, url_copy, url_len);
    (void)http_response_printf(resp, "\",");
    print_events(resp, events);
    (void)http_response_printf(resp, ",\"enabled\":true,\"secret\":\"%s\"}", secret);
out:
    json_object_put(obj);
}

static int list_endpoint(const struct whstore_endpoint *e, void *arg)
{
    struct http_response *resp = arg;
    (void)http_response_printf(resp, "%s{\"id\":%" PRId64 ",\"url\":\"",
                               resp->body_len > 13 ? "," : "", e->id);
    (void)problem_json_escape(resp, e->url, strlen(e->url));
    (void)http_response_printf(resp, "\",");
    print_events(resp, e->events);
    (void)http_response_printf(resp, ",\"enabled\":%s", e->enabled ? "true" : "false");
    print_time(resp, "createdAt", e->created_ms);
    print_time(resp, "previousSecretValidUntil", e->previous_until_ms);
    (void)http_response_printf(resp, "}");
    return 0;
}

static void webhooks_list(struct app_thread *t, struct http_response *resp)
{
    struct db *db = app_db(t);
    resp->status = 200;
    (void)http_response_printf(resp, "{\"webhooks\":["); /* 13 bytes: see list_endpoint */
    int rc = whstore_endpoint_list(db, CP_WEBHOOK_LIST_MAX, list_endpoint, resp);
    if (rc != CP_OK) {
        store_failed(t, resp, rc, "webhook");
        return;
    }
    (void)http_response_printf(resp, "]}");
}

void webhooks_collection_handle(struct app_thread *t, const struct http_request *req,
                                struct http_response *resp)
{
    if (!admin_authorised(t, req, resp))
        return;
    if (req->method == HTTP_POST)
        webhooks_create(t, req, resp);
    else
        webhooks_list(t, resp);
}

void webhooks_disable_handle(struct app_thread *t, const struct http_request *req,
                             struct http_response *resp, int64_t id)
{
    if (!admin_authorised(t, req, resp))
        return;
    struct db *db = app_db(t);
    int rc = whstore_endpoint_disable(db, id);
    if (rc != CP_OK) {
        store_failed(t, resp, rc, "enabled webhook");
        return;
    }
    resp->status = 204;
}

void webhooks_rotate_handle(struct app_thread *t, const struct http_request *req,
                            struct http_response *resp, int64_t id)
{
    if (!admin_authorised(t, req, resp))
        return;
    char secret[WHSIG_SECRET_MAX];
    if (whsig_secret_new(secret, sizeof secret) != CP_OK) {
        problem_fail(resp, CP_ERR_INTERNAL, "no random secret");
        return;
    }
    struct db *db = app_db(t);
    int rc = whstore_endpoint_rotate(db, id, secret, WEBHOOK_OVERLAP_S);
    if (rc != CP_OK) {
        store_failed(t, resp, rc, "enabled webhook");
        return;
    }
    resp->status = 200;
    (void)http_response_printf(resp, "{\"id\":%" PRId64 ",\"secret\":\"%s\"", id, secret);
    print_time(resp, "previousSecretValidUntil", timefmt_now_ms() + WEBHOOK_OVERLAP_S * 1000LL);
    (void)http_response_printf(resp, "}");
}

static int list_delivery(const struct whstore_delivery *d, void *arg)
{
    struct http_response *resp = arg;
    (void)http_response_printf(resp,
                               "%s{\"id\":%" PRId64 ",\"eventId\":\"%" PRId64
                               "\",\"eventType\":\"%s\",\"couponId\":%" PRId64
                               ",\"state\":\"%s\",\"attempts\":%" PRId64 ",\"lastStatus\":",
                               resp->body_len > 15 ? "," : "", d->id, d->event_id, d->event_type,
                               d->coupon_id, whstore_state_name(d->state), d->attempts);
    if (d->last_status > 0)
        (void)http_response_printf(resp, "%" PRId64 ",\"lastError\":", d->last_status);
    else
        (void)http_response_printf(resp, "null,\"lastError\":");
    if (d->last_error[0] != '\0') {
        (void)http_response_printf(resp, "\"");
        (void)problem_json_escape(resp, d->last_error, strlen(d->last_error));
        (void)http_response_printf(resp, "\"");
    } else {
        (void)http_response_printf(resp, "null");
    }
    print_time(resp, "nextAttemptAt", d->state == WHSTORE_PENDING ? d->next_attempt_ms : 0);
    print_time(resp, "createdAt", d->created_ms);
    print_time(resp, "deliveredAt", d->delivered_ms);
    (void)http_response_printf(resp, "}");
    return 0;
}

void webhooks_deliveries_handle(struct app_thread *t, const struct http_request *req,
                                struct http_response *resp, int64_t id)
{
    if (!admin_authorised(t, req, resp))
        return;
    struct db *db = app_db(t);
    resp->status = 200;
    (void)http_response_printf(resp, "{\"deliveries\":["); /* 15 bytes: see list_delivery */
    int rc = whstore_delivery_list(db, id, CP_WEBHOOK_DELIVERIES_MAX, list_delivery, resp);
    if (rc != CP_OK) {
        store_failed(t, resp, rc, "webhook");
        return;
    }
    (void)http_response_printf(resp, "]}");
}

void webhooks_redeliver_handle(struct app_thread *t, const struct http_request *req,
                               struct http_response *resp, int64_t id, int64_t delivery_id)
{
    if (!admin_authorised(t, req, resp))
        return;
    struct db *db = app_db(t);
    int rc = whstore_redeliver(db, id, delivery_id, t->app->conf->webhook_retry_window_s);
    if (rc != CP_OK) {
        store_failed(t, resp, rc, "delivery of this webhook");
        return;
    }
    resp->status = 202;
    (void)http_response_printf(resp, "{\"id\":%" PRId64 ",\"state\":\"pending\"}", delivery_id);
}
