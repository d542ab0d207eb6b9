#include "first.h"

#include "decimal.h"

#include "cp_err.h"

int decimal_parse_u63(const char *s, size_t len, int64_t *out)
{
    if (s == NULL || len == 0 || len > 19 || (s[0] == '0' && len > 1))
        return CP_ERR_INVALID;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CP_ERR_INVALID;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits never overflow 64 bits */
    }
    if (v > (uint64_t)INT64_MAX)
        return CP_ERR_INVALID;
    *out = (int64_t)v;
    return CP_OK;
}

int decimal_parse_id(const char *s, size_t len, int64_t *out)
{
    int64_t v;
    if (decimal_parse_u63(s, len, &v) != CP_OK || v < 1)
        return CP_ERR_INVALID;
    *out = v;
    return CP_OK;
}
