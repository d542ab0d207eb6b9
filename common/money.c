#include "first.h"

#include "money.h"

#include <string.h>

#include "cp_err.h"

/* ISO 4217 currencies whose minor unit is not the hundredth (the rest: 2). */
static const char exp0[][4] = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                               "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"};
static const char exp3[][4] = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"};

int money_currency_valid(const char *s, size_t len)
{
    if (s == NULL || len != 3)
        return 0;
    for (size_t i = 0; i < 3; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return 0;
    return 1;
}

int money_exponent(const char *currency)
{
    if (currency == NULL || currency[0] == '\0')
        return MONEY_EXP_DEFAULT;
    for (size_t i = 0; i < sizeof exp0 / sizeof exp0[0]; i++)
        if (strcmp(currency, exp0[i]) == 0)
            return 0;
    for (size_t i = 0; i < sizeof exp3 / sizeof exp3[0]; i++)
        if (strcmp(currency, exp3[i]) == 0)
            return 3;
    return MONEY_EXP_DEFAULT;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int money_parse(const char *s, size_t len, int exp, int64_t *minor)
{
    if (s == NULL || len == 0 || exp < 0 || exp > MONEY_EXP_MAX || !is_digit(s[0]))
        return CP_ERR_INVALID;
    size_t i = 0;
    int64_t v = 0;
    while (i < len && is_digit(s[i])) {
        if (i == MONEY_INT_DIGITS_MAX)
            return CP_ERR_LIMIT;
        v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i > 1 && s[0] == '0')
        return CP_ERR_INVALID; /* "01" */
    int decimals = 0;
    if (i < len) {
        if (s[i] != '.' || i + 1 == len)
            return CP_ERR_INVALID; /* letters, signs, "1." */
        for (i++; i < len; i++, decimals++) {
            if (!is_digit(s[i]))
                return CP_ERR_INVALID;
            if (decimals == exp)
                return CP_ERR_LIMIT; /* more decimals than the currency has */
            v = v * 10 + (s[i] - '0');
        }
    }
    for (; decimals < exp; decimals++)
        v *= 10;
    *minor = v; /* < 10^12 x 10^3: no overflow */
    return CP_OK;
}

int money_parse_stored(const char *s, size_t len, int exp, int64_t *minor)
{
    const char *dot = s != NULL ? memchr(s, '.', len) : NULL;
    if (dot != NULL) {
        while (len > 0 && s[len - 1] == '0')
            len--;
        if (len > 0 && s + len - 1 == dot)
            len--;
    }
    return money_parse(s, len, exp, minor);
}

int money_format(int64_t minor, int exp, char *buf, size_t cap)
{
    if (minor < 0 || minor > MONEY_MINOR_MAX || exp < 0 || exp > MONEY_EXP_MAX)
        return CP_ERR_INVALID;
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + minor % 10);
        minor /= 10;
    } while (minor > 0);
    while (n < (size_t)exp + 1)
        digits[n++] = '0'; /* 5 at exp 2 is 0.05 */
    size_t len = n + (exp > 0 ? 1 : 0);
    if (len + 1 > cap)
        return CP_ERR_LIMIT;
    size_t o = 0;
    for (size_t k = n; k > 0; k--) {
        if (exp > 0 && k == (size_t)exp)
            buf[o++] = '.';
        buf[o++] = digits[k - 1];
    }
    buf[o] = '\0';
    return (int)o;
}

int money_restate(const char *stored, size_t len, int exp, char *buf, size_t cap)
{
    int64_t minor;
    int rc = money_parse_stored(stored, len, exp, &minor);
    return rc != CP_OK ? rc : money_format(minor, exp, buf, cap);
}

/* num / den rounded half to even; num < 2^64, den > 0. */
static uint64_t div_half_even(uint64_t num, uint64_t den)
{
    uint64_t q = num / den, r = num % den;
    if (r > den - r || (r == den - r && (q & 1u)))
        q++;
    return q;
}

int money_discount(const struct money_rule *rule, int64_t order, int64_t *discount)
{
    if (order < 0 || order > MONEY_MINOR_MAX)
        return CP_ERR_LIMIT;
    if (rule->value <= 0 || rule->max_discount == 0 || rule->max_discount < -1 ||
        rule->min_order < -1)
        return CP_ERR_INVALID;
    if (rule->value > MONEY_MINOR_MAX || rule->max_discount > MONEY_MINOR_MAX ||
        rule->min_order > MONEY_MINOR_MAX)
        return CP_ERR_LIMIT;
    int64_t d;
    switch (rule->kind) {
    case MONEY_PERCENTAGE:
        if (rule->value > MONEY_PERCENT_FULL)
            return CP_ERR_LIMIT;
        /* < 10^15 x 10^4 < 2^64 */
        d = (int64_t)div_half_even((uint64_t)order * (uint64_t)rule->value, MONEY_PERCENT_FULL);
        break;
    case MONEY_AMOUNT: d = rule->value; break;
    default: return CP_ERR_INVALID;
    }
    if (rule->min_order >= 0 && order < rule->min_order) {
        *discount = 0;
        return MONEY_BELOW_MINIMUM;
    }
    if (rule->max_discount > 0 && d > rule->max_discount)
        d = rule->max_discount;
    if (d > order)
        d = order;
    *discount = d;
    return MONEY_APPLIES;
}
