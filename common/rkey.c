#include "first.h"

#include "rkey.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cp_err.h"
#include "decimal.h"
#include "event.h"

static const char *const suffixes[] = {
    [RKEY_META] = "meta",     [RKEY_USERS] = "users",     [RKEY_SEQ] = "seq",
    [RKEY_FREE] = "free",     [RKEY_PENDING] = "pending", [RKEY_DOC] = "doc",
    [RKEY_REDEEM] = "redeem", [RKEY_HOLDS] = "holds",     [RKEY_RPENDING] = "rpending",
};

/* snprintf that reports truncation as CP_ERR_LIMIT. */
static int fitted(int n, size_t cap)
{
    return (n < 0 || (size_t)n >= cap) ? CP_ERR_LIMIT : n;
}

int rkey_coupon(char *buf, size_t cap, enum rkey_kind kind, int64_t coupon_id)
{
    if ((unsigned)kind >= sizeof suffixes / sizeof suffixes[0] || coupon_id <= 0)
        return CP_ERR_INVALID;
    return fitted(snprintf(buf, cap, "coupon:{%" PRId64 "}:%s", coupon_id, suffixes[kind]), cap);
}

int rkey_consumer_metrics(char *buf, size_t cap, const char *instance, size_t len)
{
    if (len > INT32_MAX)
        return CP_ERR_LIMIT;
    return fitted(snprintf(buf, cap, RKEY_CONSUMERS_SET ":%.*s", (int)len, instance), cap);
}

/* "<a>:<b>" with a >= 1 (a sequence) and b >= 0 (milliseconds). */
static int parse_pair(const char *s, size_t len, int64_t *a, int64_t *b)
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return CP_ERR_INVALID;
    size_t alen = (size_t)(colon - s);
    if (decimal_parse_u63(s, alen, a) != CP_OK ||
        decimal_parse_u63(colon + 1, len - alen - 1, b) != CP_OK || *a < 1)
        return CP_ERR_INVALID;
    return CP_OK;
}

int rkey_issuance_encode(const struct rkey_issuance *v, char *buf, size_t cap)
{
    if (v->sequence < 1 || v->issued_at_ms < 0)
        return CP_ERR_INVALID;
    return fitted(snprintf(buf, cap, "%" PRId64 ":%" PRId64, v->sequence, v->issued_at_ms), cap);
}

int rkey_issuance_decode(const char *s, size_t len, struct rkey_issuance *out)
{
    if (s == NULL)
        return CP_ERR_INVALID;
    return parse_pair(s, len, &out->sequence, &out->issued_at_ms);
}

int rkey_pending_encode(const struct rkey_pending *v, char *buf, size_t cap)
{
    if (!event_id_valid(v->event_id, strnlen(v->event_id, sizeof v->event_id)) || v->sequence < 1 ||
        v->issued_at_ms < 0)
        return CP_ERR_INVALID;
    return fitted(
        snprintf(buf, cap, "%s:%" PRId64 ":%" PRId64, v->event_id, v->sequence, v->issued_at_ms),
        cap);
}

int rkey_pending_decode(const char *s, size_t len, struct rkey_pending *out)
{
    if (s == NULL || len < CP_EVENT_ID_HEX + 1 || s[CP_EVENT_ID_HEX] != ':' ||
        !event_id_valid(s, CP_EVENT_ID_HEX))
        return CP_ERR_INVALID;
    if (parse_pair(s + CP_EVENT_ID_HEX + 1, len - CP_EVENT_ID_HEX - 1, &out->sequence,
                   &out->issued_at_ms) != CP_OK)
        return CP_ERR_INVALID;
    memcpy(out->event_id, s, CP_EVENT_ID_HEX);
    out->event_id[CP_EVENT_ID_HEX] = '\0';
    return CP_OK;
}

/* The next ':'-separated part of [*s, end) as a u63; *s moves past its ':'. */
static int next_u63(const char **s, const char *end, int64_t *out)
{
    const char *colon = memchr(*s, ':', (size_t)(end - *s));
    if (colon == NULL || decimal_parse_u63(*s, (size_t)(colon - *s), out) != CP_OK)
        return CP_ERR_INVALID;
    *s = colon + 1;
    return CP_OK;
}

static int order_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

/* The orderId that ends a value: [p, end) of 0..CP_ORDER_ID_MAX_CHARS order characters
 * (empty only when allow_empty) into order. */
static int order_tail(const char *p, const char *end, int allow_empty, char *order)
{
    size_t olen = (size_t)(end - p);
    if (olen > CP_ORDER_ID_MAX_CHARS || (olen == 0 && !allow_empty))
        return CP_ERR_INVALID;
    for (size_t i = 0; i < olen; i++)
        if (!order_char(p[i]))
            return CP_ERR_INVALID;
    memcpy(order, p, olen);
    order[olen] = '\0';
    return CP_OK;
}

int rkey_change_decode(const char *field, size_t flen, const char *value, size_t vlen,
                       struct rkey_change *out)
{
    if (field == NULL || value == NULL || flen == 0 || vlen < 2)
        return CP_ERR_INVALID;
    const char *colon = memchr(field, ':', flen);
    if (colon == NULL || decimal_parse_id(field, (size_t)(colon - field), &out->user_id) != CP_OK ||
        decimal_parse_id(colon + 1, flen - (size_t)(colon - field) - 1, &out->version) != CP_OK)
        return CP_ERR_INVALID;
    char t = value[0];
    if ((t != 'R' && t != 'C' && t != 'H' && t != 'X' && t != 'L') || value[1] != ':')
        return CP_ERR_INVALID;
    out->type = (enum rkey_change_type)t;
    const char *p = value + 2, *end = value + vlen;
    if (next_u63(&p, end, &out->at_ms) != CP_OK || next_u63(&p, end, &out->until_ms) != CP_OK)
        return CP_ERR_INVALID;
    return order_tail(p, end, 0, out->order_id);
}

int rkey_checkout_state_decode(const char *s, size_t len, struct rkey_checkout_state *out)
{
    if (s == NULL || len < 3)
        return CP_ERR_INVALID;
    const char *p = s, *end = s + len;
    if (next_u63(&p, end, &out->version) != CP_OK || end - p < 2 || p[1] != ':' ||
        (p[0] != 'R' && p[0] != 'H' && p[0] != 'F'))
        return CP_ERR_INVALID;
    out->state = p[0];
    p += 2;
    if (next_u63(&p, end, &out->at_ms) != CP_OK || next_u63(&p, end, &out->until_ms) != CP_OK)
        return CP_ERR_INVALID;
    /* F keeps the order of the change that freed it, or none */
    return order_tail(p, end, out->state == 'F', out->order_id);
}

int rkey_checkout_state_encode(const struct rkey_checkout_state *v, char *buf, size_t cap)
{
    if (v->version < 1 || v->at_ms < 0 || v->until_ms < 0 ||
        (v->state != 'R' && v->state != 'H' && v->state != 'F') ||
        (v->state != 'F' && v->order_id[0] == '\0'))
        return CP_ERR_INVALID;
    return fitted(snprintf(buf, cap, "%" PRId64 ":%c:%" PRId64 ":%" PRId64 ":%s", v->version,
                           v->state, v->at_ms, v->until_ms, v->order_id),
                  cap);
}

int rkey_user_encode(int64_t user_id, char *buf, size_t cap)
{
    if (user_id < 1)
        return CP_ERR_INVALID;
    return fitted(snprintf(buf, cap, "%" PRId64, user_id), cap);
}

int rkey_user_decode(const char *s, size_t len, int64_t *user_id)
{
    return decimal_parse_id(s, len, user_id);
}

int rkey_meta_hset(struct rkey_meta_cmd *cmd, int64_t coupon_id, int64_t total, int64_t start_ms,
                   int64_t end_ms)
{
    int klen = rkey_coupon(cmd->key, sizeof cmd->key, RKEY_META, coupon_id);
    if (klen < 0)
        return klen;
    if (total < -1)
        return CP_ERR_INVALID;
    int tl = fitted(snprintf(cmd->total, sizeof cmd->total, "%" PRId64, total), sizeof cmd->total);
    int sl = fitted(snprintf(cmd->start_ms, sizeof cmd->start_ms, "%" PRId64, start_ms),
                    sizeof cmd->start_ms);
    int el =
        fitted(snprintf(cmd->end_ms, sizeof cmd->end_ms, "%" PRId64, end_ms), sizeof cmd->end_ms);
    if (tl < 0 || sl < 0 || el < 0)
        return CP_ERR_LIMIT;
    const char *argv[8] = {"HSET",           cmd->key,           RKEY_META_TOTAL,
                           cmd->total,       RKEY_META_START_MS, cmd->start_ms,
                           RKEY_META_END_MS, cmd->end_ms};
    for (int i = 0; i < 8; i++) {
        cmd->argv[i] = argv[i];
        cmd->argvlen[i] = strlen(argv[i]);
    }
    return 8;
}
