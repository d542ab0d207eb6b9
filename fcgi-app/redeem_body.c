#include "first.h"

#include "redeem_body.h"

#include <string.h>

#include "cp_err.h"
#include "issuecode.h"
#include "jsonv.h"

int redeem_order_id_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > CP_ORDER_ID_MAX_CHARS)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

static const char order_why[] = "orderId must be a string of 1..64 characters of [A-Za-z0-9._:-]";

/* The orderId member of obj into order. */
static int take_order(struct json_object *obj, char order[CP_ORDER_ID_MAX_CHARS + 1],
                      const char **why)
{
    const char *s;
    size_t len;
    if (jsonv_get_string(obj, "orderId", CP_ORDER_ID_MAX_CHARS, &s, &len) != CP_OK ||
        !redeem_order_id_valid(s, len)) {
        *why = order_why;
        return CP_ERR_INVALID;
    }
    memcpy(order, s, len);
    order[len] = '\0';
    return CP_OK;
}

int redeem_take_code(struct json_object *obj, char code[CP_ISSUE_CODE_CHARS + 1], const char **why)
{
    const char *s;
    size_t len;
    if (jsonv_get_string(obj, "code", CP_ISSUE_CODE_INPUT_MAX, &s, &len) != CP_OK ||
        issuecode_normalise(s, len, code) != CP_OK) {
        *why = "code must be the 12 characters of an issuance's code (Crockford base32)";
        return CP_ERR_INVALID;
    }
    return CP_OK;
}

int redeem_take_amount(struct json_object *obj, char amount[MONEY_TEXT_MAX], const char **why)
{
    const char *s;
    size_t len;
    int64_t ignored;
    amount[0] = '\0';
    int rc = jsonv_get_string(obj, "orderAmount", MONEY_TEXT_MAX - 1, &s, &len);
    if (rc == CP_ERR_NOT_FOUND && !json_object_object_get_ex(obj, "orderAmount", NULL))
        return CP_ERR_NOT_FOUND;
    if (rc != CP_OK || money_parse(s, len, MONEY_EXP_MAX, &ignored) != CP_OK) {
        *why = "orderAmount must be a string amount >= 0 such as \"12.50\": digits, at most "
               "12 before the point and the currency's decimals after it";
        return CP_ERR_BAD_AMOUNT;
    }
    memcpy(amount, s, len);
    amount[len] = '\0';
    return CP_OK;
}

/* The optional orderAmount of a redemption body (amount NULL: not accepted). */
static int take_optional_amount(struct json_object *obj, char *amount, const char **why)
{
    if (amount == NULL)
        return CP_OK;
    int rc = redeem_take_amount(obj, amount, why);
    return rc == CP_ERR_NOT_FOUND ? CP_OK : rc;
}

int redeem_parse_order_body(const char *body, size_t len, char order[CP_ORDER_ID_MAX_CHARS + 1],
                            char *amount, const char **why)
{
    static const char *const keys[] = {"orderId", NULL};
    static const char *const keys_amount[] = {"orderId", "orderAmount", NULL};
    struct json_object *obj = NULL;
    if (jsonv_parse_object(body, len, &obj, why) != CP_OK)
        return CP_ERR_INVALID;
    int rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, amount != NULL ? keys_amount : keys, NULL)) {
        *why = amount != NULL ? "unknown member in body (expected orderId and orderAmount)"
                              : "unknown member in body (expected only orderId)";
        goto out;
    }
    rc = take_order(obj, order, why);
    if (rc == CP_OK)
        rc = take_optional_amount(obj, amount, why);
out:
    json_object_put(obj);
    return rc;
}

int redeem_parse_code_body(const char *body, size_t len, char code[CP_ISSUE_CODE_CHARS + 1],
                           char order[CP_ORDER_ID_MAX_CHARS + 1], char amount[MONEY_TEXT_MAX],
                           const char **why)
{
    static const char *const keys[] = {"code", "orderId", "orderAmount", NULL};
    struct json_object *obj = NULL;
    if (jsonv_parse_object(body, len, &obj, why) != CP_OK)
        return CP_ERR_INVALID;
    int rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, keys, NULL)) {
        *why = "unknown member in body (expected code, orderId and orderAmount)";
        goto out;
    }
    rc = redeem_take_code(obj, code, why);
    if (rc == CP_OK)
        rc = take_order(obj, order, why);
    if (rc == CP_OK)
        rc = take_optional_amount(obj, amount, why);
out:
    json_object_put(obj);
    return rc;
}

int redeem_parse_hold_body(const char *body, size_t len, char code[CP_ISSUE_CODE_CHARS + 1],
                           char order[CP_ORDER_ID_MAX_CHARS + 1], int64_t *ttl_s, const char **why)
{
    static const char *const path_keys[] = {"orderId", "ttlSeconds", NULL};
    static const char *const code_keys[] = {"code", "orderId", "ttlSeconds", NULL};
    struct json_object *obj = NULL;
    if (jsonv_parse_object(body, len, &obj, why) != CP_OK)
        return CP_ERR_INVALID;
    int rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, code != NULL ? code_keys : path_keys, NULL)) {
        *why = code != NULL ? "unknown member in body (expected code, orderId and ttlSeconds)"
                            : "unknown member in body (expected orderId and ttlSeconds)";
        goto out;
    }
    if (code != NULL && (rc = redeem_take_code(obj, code, why)) != CP_OK)
        goto out;
    rc = CP_ERR_INVALID;
    if (jsonv_get_int_range(obj, "ttlSeconds", 1, CP_HOLD_TTL_MAX_S, ttl_s) != CP_OK) {
        *why = "ttlSeconds must be an integer of 1..900";
        goto out;
    }
    rc = take_order(obj, order, why);
out:
    json_object_put(obj);
    return rc;
}
