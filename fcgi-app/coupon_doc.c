#include "first.h"

#include "coupon_doc.h"

#include <stdio.h>
#include <string.h>

#include "cp_err.h"
#include "jsonv.h"
#include "money.h"
#include "timefmt.h"

static int add_string(struct json_object *o, const char *key, const char *s, int present)
{
    struct json_object *v = present ? json_object_new_string(s) : NULL;
    if (present && v == NULL)
        return CP_ERR_NOMEM;
    return json_object_object_add(o, key, v) == 0 ? CP_OK : CP_ERR_NOMEM;
}

static int add_time(struct json_object *o, const char *key, int64_t ms)
{
    char t[TIMEFMT_LEN];
    if (timefmt_format_ms(ms, t, sizeof t) < 0)
        return CP_ERR_INVALID;
    return add_string(o, key, t, 1);
}

int coupon_doc_write(const struct coupon *c, char *buf, size_t cap)
{
    int rc = CP_ERR_NOMEM;
    struct json_object *o = json_object_new_object();
    if (o == NULL)
        return CP_ERR_NOMEM;
    struct json_object *v;
    if ((v = json_object_new_int64(c->id)) == NULL || json_object_object_add(o, "id", v) != 0)
        goto out;
    if (add_string(o, "title", c->title, 1) != CP_OK ||
        add_string(o, "code", c->code, c->has_code) != CP_OK ||
        add_string(o, "couponType", c->coupon_type, 1) != CP_OK ||
        add_string(o, "discountType", c->discount_type, 1) != CP_OK)
        goto out;
    /* DECIMAL text at the value's scale ("10.00", JPY "500"): no binary rounding on the
     * way out. */
    int exp = money_exponent(c->currency);
    char value[MONEY_TEXT_MAX], min_order[MONEY_TEXT_MAX], max_discount[MONEY_TEXT_MAX];
    if (money_restate(c->discount_value, strlen(c->discount_value),
                      coupon_doc_is_percentage(c) ? MONEY_PERCENT_EXP : exp, value,
                      sizeof value) < 0 ||
        (c->min_order_amount[0] != '\0' &&
         money_restate(c->min_order_amount, strlen(c->min_order_amount), exp, min_order,
                       sizeof min_order) < 0) ||
        (c->max_discount_amount[0] != '\0' &&
         money_restate(c->max_discount_amount, strlen(c->max_discount_amount), exp, max_discount,
                       sizeof max_discount) < 0)) {
        rc = CP_ERR_INTERNAL;
        goto out;
    }
    if ((v = json_object_new_double_s(0.0, value)) == NULL ||
        json_object_object_add(o, "discountValue", v) != 0)
        goto out;
    if (add_string(o, "currency", c->currency, c->currency[0] != '\0') != CP_OK ||
        add_string(o, "minOrderAmount", min_order, c->min_order_amount[0] != '\0') != CP_OK ||
        add_string(o, "maxDiscountAmount", max_discount, c->max_discount_amount[0] != '\0') !=
            CP_OK)
        goto out;
    v = c->total_quantity >= 0 ? json_object_new_int64(c->total_quantity) : NULL;
    if ((c->total_quantity >= 0 && v == NULL) || json_object_object_add(o, "totalQuantity", v) != 0)
        goto out;
    if ((rc = add_time(o, "startAt", c->start_ms)) != CP_OK ||
        (rc = add_time(o, "endAt", c->end_ms)) != CP_OK)
        goto out;
    rc = CP_ERR_NOMEM;
    if (add_string(o, "description", c->description, c->has_description) != CP_OK)
        goto out;
    v = c->usable_days >= 0 ? json_object_new_int64(c->usable_days) : NULL;
    if ((c->usable_days >= 0 && v == NULL) || json_object_object_add(o, "usableDays", v) != 0)
        goto out;
    if (c->usable_until_ms >= 0) {
        if ((rc = add_time(o, "usableUntil", c->usable_until_ms)) != CP_OK)
            goto out;
        rc = CP_ERR_NOMEM;
    } else if (json_object_object_add(o, "usableUntil", NULL) != 0) {
        goto out;
    }
    size_t n;
    const char *text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (text == NULL)
        goto out;
    if (n >= cap) {
        rc = CP_ERR_LIMIT;
        goto out;
    }
    memcpy(buf, text, n + 1);
    rc = (int)n;
out:
    json_object_put(o);
    return rc;
}

/* Present-and-null check: jsonv treats null as absent, the API needs to tell. */
static int member_is_null(struct json_object *obj, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(obj, key, &v) && v == NULL;
}

static int member_present(struct json_object *obj, const char *key)
{
    return json_object_object_get_ex(obj, key, NULL);
}

static int copy_string(struct json_object *obj, const char *key, size_t max_chars, char *dst,
                       size_t cap, int required, int *present, const char **why, const char *what)
{
    const char *s;
    size_t len;
    int rc = jsonv_get_string(obj, key, max_chars, &s, &len);
    *present = 0;
    if (rc == CP_ERR_NOT_FOUND && !(member_present(obj, key) && !member_is_null(obj, key))) {
        if (required) {
            *why = what;
            return CP_ERR_INVALID;
        }
        dst[0] = '\0';
        return CP_OK;
    }
    if (rc != CP_OK || len >= cap) {
        *why = what;
        return CP_ERR_INVALID;
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
    *present = 1;
    return CP_OK;
}

static int parse_time(struct json_object *obj, const char *key, int64_t *ms, const char **why,
                      const char *what)
{
    const char *s;
    size_t len;
    if (jsonv_get_string(obj, key, 64, &s, &len) != CP_OK ||
        timefmt_parse_ms(s, len, ms) != CP_OK || *ms < COUPON_TIME_MIN_MS ||
        *ms >= COUPON_TIME_MAX_MS) {
        *why = what;
        return CP_ERR_INVALID;
    }
    return CP_OK;
}

static int parse_enum(struct json_object *obj, const char *key, const char *const *allowed,
                      char *dst, size_t cap, const char **why, const char *what)
{
    const char *s;
    size_t len;
    if (jsonv_get_string(obj, key, 32, &s, &len) == CP_OK) {
        for (size_t i = 0; allowed[i] != NULL; i++) {
            if (strlen(allowed[i]) == len && memcmp(allowed[i], s, len) == 0 && len < cap) {
                memcpy(dst, s, len + 1);
                return CP_OK;
            }
        }
    }
    *why = what;
    return CP_ERR_INVALID;
}

/* discountValue: a JSON number read from its text, never as a double. PERCENTAGE: > 0
 * and <= 100 with at most two decimals; AMOUNT: > 0 with at most the currency's
 * decimals. Written back at that scale ("10.00", JPY "500"). */
static int parse_discount(struct json_object *obj, int percentage, int exp, char *dst, size_t cap,
                          const char **why)
{
    struct json_object *v;
    *why = percentage ? "discountValue must be a number > 0 and <= 100 with at most two "
                        "decimals for PERCENTAGE"
                      : "discountValue must be a number > 0 below 10^12 with at most the "
                        "currency's decimals (two without a currency)";
    if (!json_object_object_get_ex(obj, "discountValue", &v) || v == NULL ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return CP_ERR_INVALID;
    const char *text = json_object_get_string(v); /* the number as the client wrote it */
    int scale = percentage ? MONEY_PERCENT_EXP : exp;
    int64_t minor;
    if (text == NULL || money_parse(text, strlen(text), scale, &minor) != CP_OK || minor <= 0 ||
        (percentage && minor > MONEY_PERCENT_FULL))
        return CP_ERR_INVALID;
    return money_format(minor, scale, dst, cap) > 0 ? CP_OK : CP_ERR_INVALID;
}

/* An optional amount member (a JSON string, > 0, at the currency's decimals) into dst at
 * that scale; "" when absent or null. */
static int parse_amount(struct json_object *obj, const char *key, int exp, char *dst, size_t cap,
                        const char **why, const char *what)
{
    const char *s;
    size_t len;
    int64_t minor;
    dst[0] = '\0';
    int rc = jsonv_get_string(obj, key, MONEY_TEXT_MAX, &s, &len);
    if (rc == CP_ERR_NOT_FOUND && !(member_present(obj, key) && !member_is_null(obj, key)))
        return CP_OK;
    if (rc != CP_OK || money_parse(s, len, exp, &minor) != CP_OK || minor <= 0 ||
        money_format(minor, exp, dst, cap) < 0) {
        *why = what;
        return CP_ERR_INVALID;
    }
    return CP_OK;
}

/* currency, minOrderAmount and maxDiscountAmount of a create body (after discountType). */
static int parse_money(struct json_object *obj, struct coupon *out, const char **why)
{
    const char *s;
    size_t len;
    int rc = jsonv_get_string(obj, "currency", 3, &s, &len);
    if (rc == CP_OK && money_currency_valid(s, len)) {
        memcpy(out->currency, s, 3);
        out->currency[3] = '\0';
    } else if (rc != CP_ERR_NOT_FOUND ||
               (member_present(obj, "currency") && !member_is_null(obj, "currency"))) {
        *why = "currency must be an ISO 4217 code of three upper-case letters, or null";
        return CP_ERR_INVALID;
    }
    int exp = money_exponent(out->currency), percentage = coupon_doc_is_percentage(out);
    if (parse_discount(obj, percentage, exp, out->discount_value, sizeof out->discount_value,
                       why) != CP_OK ||
        parse_amount(obj, "minOrderAmount", exp, out->min_order_amount,
                     sizeof out->min_order_amount, why,
                     "minOrderAmount must be a string amount > 0 with at most the currency's "
                     "decimals, or null") != CP_OK ||
        parse_amount(obj, "maxDiscountAmount", exp, out->max_discount_amount,
                     sizeof out->max_discount_amount, why,
                     "maxDiscountAmount must be a string amount > 0 with at most the "
                     "currency's decimals, or null") != CP_OK)
        return CP_ERR_INVALID;
    if (!percentage && out->max_discount_amount[0] != '\0') {
        *why = "maxDiscountAmount applies to PERCENTAGE only (an AMOUNT is its own cap)";
        return CP_ERR_INVALID;
    }
    return CP_OK;
}

int coupon_doc_is_percentage(const struct coupon *c)
{
    return strcmp(c->discount_type, "PERCENTAGE") == 0;
}

int coupon_doc_discount(const struct coupon *c, const char *amount, int64_t *discount, int *exp,
                        const char **why)
{
    struct money_rule rule;
    int64_t order;
    if (coupon_doc_rule(c, &rule, exp) != CP_OK) {
        *why = "the coupon's stored amounts cannot be read";
        return CP_ERR_INTERNAL;
    }
    if (money_parse(amount, strlen(amount), *exp, &order) != CP_OK) {
        *why = "orderAmount has more decimals than the coupon's currency (none for JPY, "
               "three for BHD, two without a currency)";
        return CP_ERR_BAD_AMOUNT;
    }
    int rc = money_discount(&rule, order, discount);
    if (rc < 0) {
        *why = "the coupon's discount cannot be computed";
        return CP_ERR_INTERNAL;
    }
    return rc;
}

int coupon_doc_rule(const struct coupon *c, struct money_rule *rule, int *exp)
{
    int percentage = coupon_doc_is_percentage(c);
    *exp = money_exponent(c->currency);
    rule->kind = percentage ? MONEY_PERCENTAGE : MONEY_AMOUNT;
    rule->min_order = rule->max_discount = -1;
    if (money_parse_stored(c->discount_value, strlen(c->discount_value),
                           percentage ? MONEY_PERCENT_EXP : *exp, &rule->value) != CP_OK ||
        (c->min_order_amount[0] != '\0' &&
         money_parse_stored(c->min_order_amount, strlen(c->min_order_amount), *exp,
                            &rule->min_order) != CP_OK) ||
        (c->max_discount_amount[0] != '\0' &&
         money_parse_stored(c->max_discount_amount, strlen(c->max_discount_amount), *exp,
                            &rule->max_discount) != CP_OK))
        return CP_ERR_INTERNAL;
    return CP_OK;
}

static int parse_quantity(struct json_object *obj, int64_t *out, const char **why)
{
    if (jsonv_get_int_range(obj, "totalQuantity", 1, COUPON_QUANTITY_MAX, out) != CP_OK) {
        *why = "totalQuantity must be an integer in 1..1000000000000";
        return CP_ERR_INVALID;
    }
    return CP_OK;
}

int coupon_doc_parse_create(const char *body, size_t len, struct coupon *out, const char **why)
{
    static const char *const keys[] = {
        "title",         "code",     "couponType",     "discountType",      "discountValue",
        "totalQuantity", "startAt",  "endAt",          "description",       "usableDays",
        "usableUntil",   "currency", "minOrderAmount", "maxDiscountAmount", NULL};
    static const char *const coupon_types[] = {"FIRST_COME_FIRST_SERVED", "GENERAL", NULL};
    static const char *const discount_types[] = {"PERCENTAGE", "AMOUNT", NULL};
    struct json_object *obj = NULL;
    const char *unknown;
    int present, rc = jsonv_parse_object(body, len, &obj, why);
    if (rc != CP_OK)
        return CP_ERR_INVALID;
    rc = CP_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!jsonv_only_keys(obj, keys, &unknown)) {
        *why = "unknown member in body";
        goto out;
    }
    if (copy_string(obj, "title", CP_TITLE_MAX_CHARS, out->title, sizeof out->title, 1, &present,
                    why, "title must be a string of 1..200 characters") != CP_OK ||
        copy_string(obj, "code", CP_CODE_MAX_CHARS, out->code, sizeof out->code, 0, &out->has_code,
                    why, "code must be a string of 1..64 characters or null") != CP_OK ||
        copy_string(obj, "description", CP_DESCRIPTION_MAX_CHARS, out->description,
                    sizeof out->description, 0, &out->has_description, why,
                    "description must be a string of 1..2000 characters or null") != CP_OK)
        goto out;
    if (parse_enum(obj, "couponType", coupon_types, out->coupon_type, sizeof out->coupon_type, why,
                   "couponType must be FIRST_COME_FIRST_SERVED or GENERAL") != CP_OK ||
        parse_enum(obj, "discountType", discount_types, out->discount_type,
                   sizeof out->discount_type, why,
                   "discountType must be PERCENTAGE or AMOUNT") != CP_OK)
        goto out;
    if (parse_money(obj, out, why) != CP_OK)
        goto out;
    int fcfs = strcmp(out->coupon_type, "FIRST_COME_FIRST_SERVED") == 0;
    if (!member_present(obj, "totalQuantity") || member_is_null(obj, "totalQuantity")) {
        if (fcfs) {
            *why = "totalQuantity is required for FIRST_COME_FIRST_SERVED";
            goto out;
        }
        out->total_quantity = -1; /* unlimited */
    } else if (parse_quantity(obj, &out->total_quantity, why) != CP_OK) {
        goto out;
    }
    if (parse_time(obj, "startAt", &out->start_ms, why,
                   "startAt must be an RFC 3339 time within 2000..2099") != CP_OK ||
        parse_time(obj, "endAt", &out->end_ms, why,
                   "endAt must be an RFC 3339 time within 2000..2099") != CP_OK)
        goto out;
    if (out->start_ms >= out->end_ms) {
        *why = "startAt must be before endAt";
        goto out;
    }
    out->usable_days = -1;
    out->usable_until_ms = -1;
    if (member_present(obj, "usableDays") && !member_is_null(obj, "usableDays") &&
        jsonv_get_int_range(obj, "usableDays", 1, CP_USABLE_DAYS_MAX, &out->usable_days) != CP_OK) {
        *why = "usableDays must be an integer in 1..3650 or null";
        goto out;
    }
    if (member_present(obj, "usableUntil") && !member_is_null(obj, "usableUntil")) {
        if (parse_time(obj, "usableUntil", &out->usable_until_ms, why,
                       "usableUntil must be an RFC 3339 time within 2000..2099 or null") != CP_OK)
            goto out;
        if (out->usable_until_ms <= out->start_ms) {
            *why = "usableUntil must be after startAt";
            goto out;
        }
    }
    rc = CP_OK;
out:
    json_object_put(obj);
    return rc;
}

int coupon_doc_apply_patch(const char *body, size_t len, struct coupon *orig, int *total_changed,
                           const char **why)
{
    /* Applied to a copy: a patch refused half way leaves the coupon as it was. */
    struct coupon patched = *orig, *c = &patched;
    static const char *const keys[] = {"title", "description", "endAt", "totalQuantity", NULL};
    struct json_object *obj = NULL;
    const char *unknown;
    int present, rc = jsonv_parse_object(body, len, &obj, why);
    *total_changed = 0;
    if (rc != CP_OK)
        return CP_ERR_INVALID;
    rc = CP_ERR_INVALID;
    if (!jsonv_only_keys(obj, keys, &unknown)) {
        *why = "unknown member in body (patchable: title, description, endAt, totalQuantity)";
        goto out;
    }
    if (json_object_object_length(obj) == 0) {
        *why = "empty patch";
        goto out;
    }
    if (member_present(obj, "title") &&
        copy_string(obj, "title", CP_TITLE_MAX_CHARS, c->title, sizeof c->title, 1, &present, why,
                    "title must be a string of 1..200 characters") != CP_OK)
        goto out;
    if (member_present(obj, "description") &&
        copy_string(obj, "description", CP_DESCRIPTION_MAX_CHARS, c->description,
                    sizeof c->description, 0, &c->has_description, why,
                    "description must be a string of 1..2000 characters or null") != CP_OK)
        goto out;
    if (member_present(obj, "endAt")) {
        if (parse_time(obj, "endAt", &c->end_ms, why,
                       "endAt must be an RFC 3339 time within 2000..2099") != CP_OK)
            goto out;
        if (c->end_ms <= c->start_ms) {
            *why = "endAt must be after startAt";
            goto out;
        }
    }
    if (member_present(obj, "totalQuantity")) {
        if (parse_quantity(obj, &c->total_quantity, why) != CP_OK)
            goto out;
        *total_changed = 1;
    }
    *orig = patched;
    rc = CP_OK;
out:
    json_object_put(obj);
    return rc;
}
