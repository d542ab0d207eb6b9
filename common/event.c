#include "first.h"

#include "event.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "cp_err.h"
#include "decimal.h"
#include "jsonv.h"
#include "timefmt.h"

/*
 * Event ids are drawn from getrandom(2) ID_POOL_IDS at a time, into a pool of the
 * calling thread: one system call per 64 issuances rather than one each. A process
 * forked after a thread filled its pool (the pre-fork workers) would hand out the same
 * bytes as its parent, so the child empties the copy it inherited (pthread_atfork; the
 * forking thread is the only one a child has). If that handler cannot be registered,
 * every id costs its own call, as before.
 */
#define ID_BYTES     (CP_EVENT_ID_HEX / 2)
#define ID_POOL_IDS  64
#define ID_POOL_SIZE (ID_BYTES * ID_POOL_IDS)

static _Thread_local unsigned char id_pool[ID_POOL_SIZE];
static _Thread_local size_t id_pool_next = ID_POOL_SIZE; /* ID_POOL_SIZE: empty */
static pthread_once_t id_pool_once = PTHREAD_ONCE_INIT;
static int id_pool_safe; /* set once: the fork handler is registered */

static void id_pool_forget(void)
{
    id_pool_next = ID_POOL_SIZE;
}

static void id_pool_register(void)
{
    id_pool_safe = pthread_atfork(NULL, NULL, id_pool_forget) == 0;
}

static int fill_random(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0)
            return CP_ERR_SYSTEM;
        got += (size_t)n;
    }
    return CP_OK;
}

int event_new_id(char out[CP_EVENT_ID_HEX + 1])
{
    unsigned char one[ID_BYTES];
    const unsigned char *raw = one;
    (void)pthread_once(&id_pool_once, id_pool_register);
    if (!id_pool_safe) {
        if (fill_random(one, sizeof one) != CP_OK)
            return CP_ERR_SYSTEM;
    } else {
        if (id_pool_next == ID_POOL_SIZE) {
            if (fill_random(id_pool, sizeof id_pool) != CP_OK)
                return CP_ERR_SYSTEM;
            id_pool_next = 0;
        }
        raw = id_pool + id_pool_next;
        id_pool_next += ID_BYTES;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < ID_BYTES; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[CP_EVENT_ID_HEX] = '\0';
    return CP_OK;
}

int event_encode(const struct issue_event *ev, char *buf, size_t cap)
{
    char at[TIMEFMT_LEN];
    if (timefmt_format_ms(ev->issued_at_ms, at, sizeof at) < 0)
        return CP_ERR_INVALID;
    int n = snprintf(buf, cap,
                     "{\"eventId\":\"%s\",\"couponId\":%" PRId64 ",\"userId\":%" PRId64
                     ",\"sequence\":%" PRId64 ",\"issuedAt\":\"%s\"}",
                     ev->event_id, ev->coupon_id, ev->user_id, ev->sequence, at);
    if (n < 0 || (size_t)n >= cap)
        return CP_ERR_LIMIT;
    return n;
}

int event_key(const struct issue_event *ev, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%" PRId64 ":%" PRId64, ev->coupon_id, ev->user_id);
    if (n < 0 || (size_t)n >= cap)
        return CP_ERR_LIMIT;
    return n;
}

int event_key_parse(const void *key, size_t len, int64_t *coupon_id, int64_t *user_id)
{
    const char *k = key;
    const char *colon = k == NULL ? NULL : memchr(k, ':', len);
    if (colon == NULL)
        return CP_ERR_INVALID;
    size_t clen = (size_t)(colon - k);
    if (decimal_parse_id(k, clen, coupon_id) != CP_OK ||
        decimal_parse_id(colon + 1, len - clen - 1, user_id) != CP_OK)
        return CP_ERR_INVALID;
    return CP_OK;
}

int event_id_valid(const char *s, size_t n)
{
    if (n != CP_EVENT_ID_HEX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int event_decode(const void *buf, size_t len, struct issue_event *ev, const char **reason)
{
    static const char *const allowed[] = {"eventId",  "couponId", "userId",
                                          "sequence", "issuedAt", NULL};
    struct json_object *obj = NULL;
    const char *s;
    size_t n;
    int rc;

    if (len > CP_EVENT_MAX_BYTES) {
        *reason = "event larger than the limit";
        return CP_ERR_INVALID;
    }
    rc = jsonv_parse_object(buf, len, &obj, reason);
    if (rc != CP_OK) {
        rc = CP_ERR_INVALID;
        goto out;
    }
    rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, allowed, NULL)) {
        *reason = "unknown member in event";
        goto out;
    }
    if (jsonv_get_string(obj, "eventId", CP_EVENT_ID_HEX, &s, &n) != CP_OK ||
        !event_id_valid(s, n)) {
        *reason = "eventId missing or not 32 hex digits";
        goto out;
    }
    memcpy(ev->event_id, s, n + 1);
    if (jsonv_get_id(obj, "couponId", &ev->coupon_id) != CP_OK) {
        *reason = "couponId missing or not a positive 64-bit integer";
        goto out;
    }
    if (jsonv_get_id(obj, "userId", &ev->user_id) != CP_OK) {
        *reason = "userId missing or not a positive 64-bit integer";
        goto out;
    }
    if (jsonv_get_id(obj, "sequence", &ev->sequence) != CP_OK) {
        *reason = "sequence missing or not a positive 64-bit integer";
        goto out;
    }
    if (jsonv_get_string(obj, "issuedAt", 40, &s, &n) != CP_OK ||
        timefmt_parse_ms(s, n, &ev->issued_at_ms) != CP_OK) {
        *reason = "issuedAt missing or not an RFC 3339 time";
        goto out;
    }
    rc = CP_OK;
    *reason = NULL;
out:
    json_object_put(obj);
    return rc;
}

int event_encode_issued(const struct issue_event *ev, int64_t row_id, int64_t persisted_at_ms,
                        char *buf, size_t cap)
{
    char at[TIMEFMT_LEN], pat[TIMEFMT_LEN];
    if (timefmt_format_ms(ev->issued_at_ms, at, sizeof at) < 0 ||
        timefmt_format_ms(persisted_at_ms, pat, sizeof pat) < 0)
        return CP_ERR_INVALID;
    int n = snprintf(buf, cap,
                     "{\"id\":%" PRId64 ",\"couponId\":%" PRId64 ",\"userId\":%" PRId64
                     ",\"sequence\":%" PRId64 ",\"issuedAt\":\"%s\",\"persistedAt\":\"%s\"}",
                     row_id, ev->coupon_id, ev->user_id, ev->sequence, at, pat);
    if (n < 0 || (size_t)n >= cap)
        return CP_ERR_LIMIT;
    return n;
}

int event_encode_redemption(const struct redemption_event *ev, char *buf, size_t cap)
{
    static const struct {
        const char *type, *at_name, *tail;
    } kinds[] = {
        [REDEMPTION_REDEEMED] = {"coupon.redeemed", "redeemedAt", ""},
        [REDEMPTION_CANCELLED] = {"coupon.redemption_cancelled", "cancelledAt", ""},
        [REDEMPTION_HELD] = {"coupon.held", "heldAt", ",\"holdExpiresAt\":\""},
        [REDEMPTION_HOLD_RELEASED] = {"coupon.hold_released", "releasedAt",
                                      ",\"reason\":\"released"},
        [REDEMPTION_HOLD_LAPSED] = {"coupon.hold_released", "releasedAt", ",\"reason\":\"lapsed"},
    };
    char at[TIMEFMT_LEN], until[TIMEFMT_LEN] = "";
    if (ev->order_id == NULL || (unsigned)ev->kind >= sizeof kinds / sizeof kinds[0] ||
        timefmt_format_ms(ev->at_ms, at, sizeof at) < 0)
        return CP_ERR_INVALID;
    if (ev->kind == REDEMPTION_HELD &&
        (ev->hold_until_ms <= 0 || timefmt_format_ms(ev->hold_until_ms, until, sizeof until) < 0))
        return CP_ERR_INVALID;
    char version[32] = "";
    if (ev->version > 0)
        snprintf(version, sizeof version, ",\"version\":%" PRId64, ev->version);
    const char *tail = kinds[ev->kind].tail;
    int n = snprintf(buf, cap,
                     "{\"type\":\"%s\",\"couponId\":%" PRId64 ",\"userId\":%" PRId64
                     ",\"sequence\":%" PRId64 "%s,\"orderId\":\"%s\",\"%s\":\"%s\"%s%s%s}",
                     kinds[ev->kind].type, ev->coupon_id, ev->user_id, ev->sequence, version,
                     ev->order_id, kinds[ev->kind].at_name, at, tail, until, *tail ? "\"" : "");
    if (n < 0 || (size_t)n >= cap)
        return CP_ERR_LIMIT;
    return n;
}

int event_outbox_key(int64_t coupon_id, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%" PRId64, coupon_id);
    if (n < 0 || (size_t)n >= cap)
        return CP_ERR_LIMIT;
    return n;
}

int event_stamp(int64_t event_id, const char *payload, size_t len, char *buf, size_t cap)
{
    if (len < 2 || payload[0] != '{' || payload[len - 1] != '}')
        return CP_ERR_INVALID;
    int empty = len == 2;
    int n = snprintf(buf, cap, "{\"eventId\":%" PRId64 "%s", event_id, empty ? "" : ",");
    if (n < 0 || (size_t)n + len - 1 >= cap)
        return CP_ERR_LIMIT;
    memcpy(buf + n, payload + 1, len - 1);
    buf[(size_t)n + len - 1] = '\0';
    return n + (int)len - 1;
}

int event_decode_downstream(const void *buf, size_t len, struct downstream_event *out)
{
    struct json_object *obj = NULL;
    const char *reason = NULL, *type = "coupon.issued";
    size_t tlen = strlen(type);
    int rc = CP_ERR_INVALID;
    if (len > CP_OUTBOX_PAYLOAD_MAX + 32 || jsonv_parse_object(buf, len, &obj, &reason) != CP_OK)
        goto out;
    if (jsonv_get_id(obj, "eventId", &out->event_id) != CP_OK ||
        jsonv_get_id(obj, "couponId", &out->coupon_id) != CP_OK)
        goto out;
    int t = jsonv_get_string(obj, "type", sizeof out->type - 1, &type, &tlen);
    if (t != CP_OK && t != CP_ERR_NOT_FOUND)
        goto out;
    if (t == CP_ERR_NOT_FOUND) {
        type = "coupon.issued";
        tlen = strlen(type);
    }
    memcpy(out->type, type, tlen);
    out->type[tlen] = '\0';
    rc = CP_OK;
out:
    json_object_put(obj);
    return rc;
}
