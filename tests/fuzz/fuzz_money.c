/*
 * fuzz_money.c - libFuzzer target for common/money: the amount parser that reads
 * orderAmount, minOrderAmount and maxDiscountAmount from request bodies (and the
 * DECIMAL text MariaDB returns), and the discount computed from them.
 *
 * Input: byte 0 picks the exponent (0..3) and bytes 1-2 a percentage (1..10000
 * hundredths); the rest is the amount text.
 *
 * Invariants checked (abort when broken):
 *   - what parses is in 0..MONEY_MINOR_MAX, formats back to text that parses to the
 *     same value, and is byte-identical to it when it has exactly exp decimals;
 *   - the stored-value reader agrees on every text the strict parser accepts;
 *   - the discount of a parsed order is <= the order and the cap, and a percentage
 *     is within half a minor unit of the exact product (half-even rounding).
 */
#include "first.h"

#include "fuzz_check.h"

#include <stdint.h>
#include <string.h>

#include "cp_err.h"
#include "money.h"

static void check_discount(int64_t order, int64_t pct, int64_t cap)
{
    struct money_rule r = {MONEY_PERCENTAGE, pct, -1, cap};
    int64_t d = -1;
    CHECK(money_discount(&r, order, &d) == MONEY_APPLIES);
    CHECK(d >= 0 && d <= order && (cap < 0 || d <= cap));
    if (cap < 0) {
        /* |d x 10^4 - order x pct| <= 5000, in 128 bits */
        __int128 diff = (__int128)d * MONEY_PERCENT_FULL - (__int128)order * pct;
        CHECK(diff <= MONEY_PERCENT_FULL / 2 && diff >= -(MONEY_PERCENT_FULL / 2));
    }
    struct money_rule a = {MONEY_AMOUNT, pct, order, -1};
    CHECK(money_discount(&a, order, &d) == MONEY_APPLIES && d == (pct < order ? pct : order));
    if (order > 0)
        CHECK(money_discount(&a, order - 1, &d) == MONEY_BELOW_MINIMUM && d == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int exp = data[0] % (MONEY_EXP_MAX + 1);
    int64_t pct = (int64_t)((data[1] << 8 | data[2]) % MONEY_PERCENT_FULL) + 1;
    const char *s = (const char *)data + 3;
    size_t len = size - 3;
    char out[MONEY_TEXT_MAX];
    int64_t v = -1, again = -1, stored = -1;
    int rc = money_parse(s, len, exp, &v);
    int src = money_parse_stored(s, len, exp, &stored);
    if (rc != CP_OK) {
        CHECK(v == -1 && (rc == CP_ERR_INVALID || rc == CP_ERR_LIMIT));
        return 0;
    }
    CHECK(src == CP_OK && stored == v);
    CHECK(v >= 0 && v <= MONEY_MINOR_MAX);
    int n = money_format(v, exp, out, sizeof out);
    CHECK(n > 0 && (size_t)n < sizeof out && out[n] == '\0');
    CHECK(money_parse(out, (size_t)n, exp, &again) == CP_OK && again == v);
    const char *dot = memchr(s, '.', len);
    size_t decimals = dot == NULL ? 0 : len - (size_t)(dot - s) - 1;
    if (decimals == (size_t)exp)
        CHECK((size_t)n == len && memcmp(out, s, len) == 0);
    check_discount(v, pct, -1);
    check_discount(v, pct, pct);
    return 0;
}
