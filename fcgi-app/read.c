/*
 * read.c - the read endpoints: a coupon with live stock, one user's issuance
 * status, and a user's coupons.
 *
 * The coupon document goes L1 (this process, l1_ttl_ms) -> L2 (Redis,
 * coupon:{ID}:doc, single-flight across processes) -> MariaDB. Live stock is
 * HLEN coupon:{ID}:users through the host's shared table (stock.h): never older
 * than STOCK_AGE_MAX_MS and never going back for readers of this host. When Redis
 * is down the document still comes from MariaDB and the stock from
 * coupon.issued_quantity (what the consumer has persisted: it can be lower).
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coupon_doc.h"
#include "coupon_store.h"
#include "cp_err.h"
#include "decimal.h"
#include "handlers.h"
#include "issuecode.h"
#include "jsonv.h"
#include "problem.h"
#include "credis.h"
#include "stock.h"
#include "timefmt.h"

struct doc_load {
    struct app_thread *t;
    int64_t coupon_id;
    int loaded; /* the loader ran: an L2 miss */
    int db_failed;
};

/* l2 loader: the document from MariaDB. */
static int load_doc(void *arg, char *buf, size_t cap, size_t *len)
{
    struct doc_load *dl = arg;
    dl->loaded = 1;
    struct coupon c;
    int rc = coupon_store_get(app_db(dl->t), dl->coupon_id, &c);
    if (rc != CP_OK && rc != CP_ERR_NOT_FOUND) {
        app_db_failed(dl->t, rc);
        dl->db_failed = 1;
        rc = CP_ERR_UNAVAILABLE;
    }
    if (rc != CP_OK)
        return rc;
    int n = coupon_doc_write(&c, buf, cap);
    if (n < 0)
        return n;
    *len = (size_t)n;
    return CP_OK;
}

/* The document through L1 and L2; CP_OK, CP_ERR_NOT_FOUND or CP_ERR_UNAVAILABLE. */
static int coupon_document(struct app_thread *t, int64_t coupon_id, char *buf, size_t cap,
                           size_t *len)
{
    struct app *app = t->app;
    char key[32], l2key[RKEY_MAX];
    int klen = app_l1_key(key, sizeof key, APP_L1_DOC, coupon_id);
    if (klen < 0)
        return CP_ERR_INTERNAL;
    if (lru_get(app->l1, key, (size_t)klen, buf, cap, len) == CP_OK) {
        metrics_add(app->metrics, M_L1_HITS, 1);
        return CP_OK;
    }
    metrics_add(app->metrics, M_L1_MISSES, 1);
    int l2klen = credis_doc_key(l2key, sizeof l2key, coupon_id);
    if (l2klen < 0)
        return CP_ERR_INTERNAL;
    struct doc_load dl = {.t = t, .coupon_id = coupon_id};
    int store_failed = 0;
    int rc = l2_get(app->l2, app_redis(t), l2key, (size_t)l2klen, load_doc, &dl, buf, cap, len,
                    &store_failed);
    if (store_failed)
        app_redis_failed(t);
    metrics_add(app->metrics, dl.loaded ? M_L2_MISSES : M_L2_HITS, 1);
    if (rc == CP_OK)
        (void)lru_put(app->l1, key, (size_t)klen, buf, *len);
    if (rc == CP_OK || rc == CP_ERR_NOT_FOUND)
        return rc;
    return CP_ERR_UNAVAILABLE;
}

/* Issued count: the host's table (read from Redis < STOCK_TTL_MS ago) -> HLEN in
 * Redis, published to the table before it is answered -> issued_quantity in MariaDB. */
static int coupon_issued(struct app_thread *t, int64_t coupon_id, int64_t *issued)
{
    struct stock *st = t->app->stock;
    if (stock_get(st, coupon_id, issued) == CP_OK)
        return CP_OK;
    struct rcli *r = app_redis(t);
    long long n = 0;
    if (r != NULL) {
        /* The read's age counts from before it is sent, not from when it is stored. */
        int64_t sent_ms = st != NULL ? stock_now(st) : 0;
        if (credis_issued(r, coupon_id, &n) == CP_OK) {
            stock_put(st, coupon_id, n, sent_ms);
            *issued = n;
            return CP_OK;
        }
        app_redis_failed(t);
    }
    struct coupon c;
    int rc = coupon_store_get(app_db(t), coupon_id, &c);
    if (rc != CP_OK && rc != CP_ERR_NOT_FOUND) {
        app_db_failed(t, rc);
        rc = CP_ERR_UNAVAILABLE;
    }
    if (rc == CP_OK)
        *issued = c.issued_quantity;
    return rc;
}

/* totalQuantity of a document we wrote ourselves (null = unlimited). */
static int64_t doc_total(const char *doc, size_t len)
{
    static const char member[] = "\"totalQuantity\":";
    const char *end = doc + len;
    const char *p = memmem(doc, len, member, sizeof member - 1);
    if (p == NULL)
        return -1;
    p += sizeof member - 1;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    return strtoll(p, NULL, 10);
}

void read_coupon_handle(struct app_thread *t, const struct http_request *req,
                        struct http_response *resp, int64_t coupon_id)
{
    (void)req;
    char doc[CP_DOC_MAX_BYTES];
    size_t len = 0;
    int rc = coupon_document(t, coupon_id, doc, sizeof doc, &len);
    if (rc == CP_ERR_NOT_FOUND) {
        problem_fail(resp, CP_ERR_NO_COUPON, "coupon %" PRId64 " does not exist", coupon_id);
        return;
    }
    if (rc != CP_OK || len < 2 || doc[len - 1] != '}') {
        problem_fail(resp, CP_ERR_UNAVAILABLE, "coupon store unavailable");
        return;
    }
    int64_t issued = 0;
    if (coupon_issued(t, coupon_id, &issued) != CP_OK) {
        problem_fail(resp, CP_ERR_UNAVAILABLE, "stock unavailable");
        return;
    }
    int64_t total = doc_total(doc, len);
    resp->status = 200;
    /* The cached document without its closing brace, then the live members. */
    (void)http_response_append(resp, doc, len - 1);
    if (total < 0)
        (void)http_response_printf(
            resp, ",\"issuedQuantity\":%" PRId64 ",\"remainingQuantity\":null}", issued);
    else
        (void)http_response_printf(
            resp, ",\"issuedQuantity\":%" PRId64 ",\"remainingQuantity\":%" PRId64 "}", issued,
            total > issued ? total - issued : 0);
}

/* PERSISTED, REDEEMED or EXPIRED: what a row in MariaDB says at now_ms. */
static const char *issuance_status(const struct issuance *is, int64_t now_ms)
{
    if (is->used_ms >= 0)
        return "REDEEMED";
    if (is->usable_until_ms >= 0 && is->usable_until_ms <= now_ms)
        return "EXPIRED";
    return "PERSISTED";
}

/* "code":..,"usableUntil":..,"redeemedAt":..,"orderId":.. (nulls where absent). */
static int issuance_members(const struct issuance *is, char *buf, size_t cap)
{
    char t[3][TIMEFMT_LEN + 2];
    int64_t ms[2] = {is->usable_until_ms, is->used_ms};
    for (int i = 0; i < 2; i++) {
        char f[TIMEFMT_LEN];
        if (ms[i] >= 0 && timefmt_format_ms(ms[i], f, sizeof f) > 0)
            snprintf(t[i], sizeof t[i], "\"%s\"", f);
        else
            snprintf(t[i], sizeof t[i], "null");
    }
    char code[CP_ISSUE_CODE_CHARS + 3], order[CP_ORDER_ID_MAX_CHARS + 3];
    snprintf(code, sizeof code, is->code[0] ? "\"%s\"" : "null", is->code);
    /* orderId was validated ([A-Za-z0-9._:-]) before it was stored: no escaping. */
    snprintf(order, sizeof order, is->order_id[0] ? "\"%s\"" : "null", is->order_id);
    int n = snprintf(buf, cap, "\"code\":%s,\"usableUntil\":%s,\"redeemedAt\":%s,\"orderId\":%s",
                     code, t[0], t[1], order);
    return n < 0 || (size_t)n >= cap ? CP_ERR_LIMIT : CP_OK;
}

void read_issue_status_handle(struct app_thread *t, const struct http_request *req,
                              struct http_response *resp, int64_t coupon_id, int64_t user_id)
{
    (void)req;
    const char *status = NULL;
    int64_t seq = 0, at = 0;
    int redis_known = 0, in_redis = 0, pending = 0;
    struct rcli *r = app_redis(t);
    if (r != NULL) {
        struct rkey_issuance v;
        if (credis_claim_status(r, coupon_id, user_id, &in_redis, &v, &pending) == CP_OK) {
            redis_known = 1;
            if (in_redis) {
                seq = v.sequence;
                at = v.issued_at_ms;
            }
        } else {
            app_redis_failed(t);
        }
    }
    struct issuance is;
    memset(&is, 0, sizeof is);
    int db_rc = coupon_store_issue_get(app_db(t), coupon_id, user_id, &is);
    if (db_rc != CP_OK && db_rc != CP_ERR_NOT_FOUND) {
        app_db_failed(t, db_rc);
        db_rc = CP_ERR_UNAVAILABLE;
    }
    if (db_rc == CP_OK) {
        status = issuance_status(&is, timefmt_now_ms());
        seq = is.sequence;
        at = is.issued_ms;
    } else if (in_redis) {
        /* issue_ack=redis: the pending record only means "event not yet acknowledged by
         * Kafka" - the claim itself was acknowledged (201) and is durable. In
         * issue_ack=kafka it is what a 202 left: Kafka's outcome unknown. */
        status = pending && t->app->conf->issue_ack == CONF_ISSUE_ACK_KAFKA ? "PENDING" : "ISSUED";
        /* Not in MariaDB yet: the code is the one the consumer will store (same MAC);
         * validity and redemption exist once the row does. */
        const char *secret = t->app->conf->code_secret;
        if (issuecode_compute(secret, strlen(secret), coupon_id, user_id, seq, is.code) != CP_OK)
            is.code[0] = '\0';
        is.used_ms = is.usable_until_ms = -1;
    } else if (db_rc == CP_ERR_NOT_FOUND && redis_known) {
        problem_fail(resp, CP_ERR_NO_ISSUANCE,
                     "user %" PRId64 " holds no issuance of coupon %" PRId64, user_id, coupon_id);
        return;
    } else {
        problem_fail(resp, CP_ERR_UNAVAILABLE, "issuance state unavailable");
        return;
    }
    char when[TIMEFMT_LEN] = "", extra[256];
    (void)timefmt_format_ms(at, when, sizeof when);
    if (issuance_members(&is, extra, sizeof extra) != CP_OK) {
        problem_fail(resp, CP_ERR_INTERNAL, "issuance too large to show");
        return;
    }
    resp->status = 200;
    (void)http_response_printf(resp,
                               "{\"couponId\":%" PRId64 ",\"userId\":%" PRId64
                               ",\"status\":\"%s\",\"sequence\":%" PRId64
                               ",\"issuedAt\":\"%s\",%s}",
                               coupon_id, user_id, status, seq, when, extra);
}

struct page {
    struct http_response *resp;
    int64_t now_ms;
    int limit, count;
    int64_t last_id;
    int more;
};

static int append_row(void *arg, const struct user_coupon *row)
{
    struct page *pg = arg;
    if (pg->count == pg->limit) {
        pg->more = 1; /* the extra row fetched only to know a next page exists */
        return CP_OK;
    }
    char issued[TIMEFMT_LEN], used[TIMEFMT_LEN + 2] = "null", extra[256];
    (void)timefmt_format_ms(row->is.issued_ms, issued, sizeof issued);
    if (row->is.used_ms >= 0) {
        used[0] = '"';
        int n = timefmt_format_ms(row->is.used_ms, used + 1, TIMEFMT_LEN);
        if (n > 0) {
            used[n + 1] = '"';
            used[n + 2] = '\0';
        }
    }
    if (issuance_members(&row->is, extra, sizeof extra) != CP_OK)
        return CP_ERR_LIMIT;
    struct http_response *resp = pg->resp;
    int rc = http_response_printf(resp, "%s{\"couponId\":%" PRId64 ",\"title\":\"",
                                  pg->count ? "," : "", row->coupon_id);
    if (rc == CP_OK)
        rc = problem_json_escape(resp, row->title, strlen(row->title));
    if (rc == CP_OK)
        rc = http_response_printf(
            resp,
            "\",\"status\":\"%s\",\"sequence\":%" PRId64 ",\"issuedAt\":\"%s\",\"usedAt\":%s,%s}",
            issuance_status(&row->is, pg->now_ms), row->is.sequence, issued, used, extra);
    pg->count++;
    pg->last_id = row->issue_id;
    return rc;
}

/* limit: decimal 1..100; after: a cursor (a coupon_issue id) from an earlier page. */
static int page_params(const struct http_request *req, int *limit, int64_t *before,
                       const char **why)
{
    const char *v;
    size_t len;
    *limit = CP_PAGE_LIMIT_DEFAULT;
    *before = INT64_MAX;
    int rc = http_query_param(req->query, "limit", &v, &len);
    if (rc == CP_OK) {
        int64_t n;
        if (decimal_parse_id(v, len, &n) != CP_OK || n < CP_PAGE_LIMIT_MIN ||
            n > CP_PAGE_LIMIT_MAX) {
            *why = "limit must be an integer in 1..100";
            return CP_ERR_INVALID;
        }
        *limit = (int)n;
    } else if (rc != CP_ERR_NOT_FOUND) {
        *why = "limit given more than once";
        return CP_ERR_INVALID;
    }
    rc = http_query_param(req->query, "after", &v, &len);
    if (rc == CP_OK) {
        if (decimal_parse_id(v, len, before) != CP_OK) {
            *why = "after must be the next cursor of an earlier page";
            return CP_ERR_INVALID;
        }
    } else if (rc != CP_ERR_NOT_FOUND) {
        *why = "after given more than once";
        return CP_ERR_INVALID;
    }
    return CP_OK;
}

void read_user_coupons_handle(struct app_thread *t, const struct http_request *req,
                              struct http_response *resp, int64_t user_id)
{
    int limit;
    int64_t before;
    const char *why = NULL;
    if (page_params(req, &limit, &before, &why) != CP_OK) {
        problem_fail(resp, CP_ERR_INVALID, "%s", why);
        return;
    }
    struct page pg = {.resp = resp, .limit = limit, .now_ms = timefmt_now_ms()};
    resp->status = 200;
    (void)http_response_printf(resp, "{\"items\":[");
    int rc = coupon_store_user_coupons(app_db(t), user_id, before, limit + 1, append_row, &pg);
    if (rc != CP_OK) {
        resp->body_len = 0;
        if (rc == CP_ERR_LIMIT) {
            problem_fail(resp, CP_ERR_INTERNAL, "page too large");
            return;
        }
        app_db_failed(t, rc);
        problem_db(resp, CP_ERR_UNAVAILABLE);
        return;
    }
    if (pg.more)
        (void)http_response_printf(resp, "],\"next\":\"%" PRId64 "\"}", pg.last_id);
    else
        (void)http_response_printf(resp, "],\"next\":null}");
}

/* A string member of the document (NULL: null or absent is allowed, "" then) into dst. */
static int doc_text(struct json_object *o, const char *key, int required, char *dst, size_t cap)
{
    struct json_object *v = NULL;
    dst[0] = '\0';
    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return required ? CP_ERR_INTERNAL : CP_OK;
    /* discountValue is a number: its text as the document wrote it, never a double */
    if (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_double) &&
        !json_object_is_type(v, json_type_int))
        return CP_ERR_INTERNAL;
    const char *s = json_object_get_string(v);
    size_t len = strlen(s);
    if (len >= cap)
        return CP_ERR_INTERNAL;
    memcpy(dst, s, len + 1);
    return CP_OK;
}

/* The terms parsed from the document into *out (read_coupon_terms without L1). */
static int parse_terms(struct app_thread *t, int64_t coupon_id, struct coupon_terms *out)
{
    char doc[CP_DOC_MAX_BYTES];
    size_t len = 0;
    int rc = coupon_document(t, coupon_id, doc, sizeof doc, &len);
    if (rc != CP_OK)
        return rc;
    /* Our own document (coupon_doc_write): a member missing or of another type is a
     * bug or a cache entry of a foreign writer, never the client's. */
    struct json_object *o = NULL, *v = NULL;
    const char *why = NULL;
    if (jsonv_parse_object(doc, len, &o, &why) != CP_OK)
        return CP_ERR_INTERNAL;
    memset(out, 0, sizeof *out);
    out->terms.usable_ms = -1;
    out->terms.usable_until_ms = -1;
    struct coupon *c = &out->money;
    rc = CP_ERR_INTERNAL;
    if (doc_text(o, "discountType", 1, c->discount_type, sizeof c->discount_type) != CP_OK ||
        doc_text(o, "discountValue", 1, c->discount_value, sizeof c->discount_value) != CP_OK ||
        doc_text(o, "currency", 0, c->currency, sizeof c->currency) != CP_OK ||
        doc_text(o, "minOrderAmount", 0, c->min_order_amount, sizeof c->min_order_amount) !=
            CP_OK ||
        doc_text(o, "maxDiscountAmount", 0, c->max_discount_amount,
                 sizeof c->max_discount_amount) != CP_OK)
        goto done;
    if (json_object_object_get_ex(o, "usableDays", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_int))
            goto done;
        out->terms.usable_ms = json_object_get_int64(v) * 86400000LL;
    }
    if (json_object_object_get_ex(o, "usableUntil", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_string) ||
            timefmt_parse_ms(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                             &out->terms.usable_until_ms) != CP_OK)
            goto done;
    }
    rc = CP_OK;
done:
    json_object_put(o);
    return rc;
}

int read_coupon_terms(struct app_thread *t, int64_t coupon_id, struct coupon_terms *out)
{
    /* Parsed once per L1 lifetime, not per checkout: the terms never change (set at
     * creation), so the parsed copy lives as long as the document's. */
    char key[32];
    size_t len = 0;
    int klen = app_l1_key(key, sizeof key, APP_L1_TERMS, coupon_id);
    if (klen < 0)
        return CP_ERR_INTERNAL;
    if (lru_get(t->app->l1, key, (size_t)klen, out, sizeof *out, &len) == CP_OK &&
        len == sizeof *out)
        return CP_OK;
    int rc = parse_terms(t, coupon_id, out);
    if (rc == CP_OK)
        (void)lru_put(t->app->l1, key, (size_t)klen, out, sizeof *out);
    return rc;
}
