/*
 * test_money.c - exact amounts (common/money): the strict parser and formatter at
 * each exponent, the currency table, and the discount table: half-even ties both
 * ways, exponents 0/2/3, caps, minimum, AMOUNT above the order, 100 %, tiny amounts
 * and the 64-bit limits. Expected values are written out (checked independently
 * with Python's decimal module, ROUND_HALF_EVEN), never computed here.
 */
#include "first.h"

#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "money.h"
#include "unit_main.h"

static void money_exponent_comes_from_the_currency_table(void)
{
    static const struct {
        const char *currency;
        int exp;
    } rows[] = {{"JPY", 0}, {"KRW", 0}, {"CLP", 0}, {"ISK", 0}, {"VND", 0}, {"BHD", 3},
                {"KWD", 3}, {"OMR", 3}, {"JOD", 3}, {"TND", 3}, {"IQD", 3}, {"LYD", 3},
                {"EUR", 2}, {"USD", 2}, {"XYZ", 2}, {"", 2}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CU_ASSERT_EQUAL(money_exponent(rows[i].currency), rows[i].exp);
    CU_ASSERT_EQUAL(money_exponent(NULL), 2);
    CU_ASSERT(money_currency_valid("EUR", 3));
    CU_ASSERT(!money_currency_valid("eur", 3));
    CU_ASSERT(!money_currency_valid("EU", 2));
    CU_ASSERT(!money_currency_valid("EURO", 4));
    CU_ASSERT(!money_currency_valid("E1R", 3));
}

static void money_parse_is_strict_and_exact(void)
{
    static const struct {
        const char *text;
        int exp, rc;
        int64_t minor;
    } rows[] = {
        {"12.50", 2, CP_OK, 1250},
        {"12.5", 2, CP_OK, 1250},
        {"12", 2, CP_OK, 1200},
        {"0", 2, CP_OK, 0},
        {"0.00", 2, CP_OK, 0},
        {"1250", 0, CP_OK, 1250},
        {"1.005", 3, CP_OK, 1005},
        {"999999999999.99", 2, CP_OK, 99999999999999LL},
        {"999999999999.999", 3, CP_OK, 999999999999999LL},
        {"12.505", 2, CP_ERR_LIMIT, 0},
        {"12.500", 2, CP_ERR_LIMIT, 0}, /* zeros too: more decimals than EUR has */
        {"1.0", 0, CP_ERR_LIMIT, 0},
        {"1.0050", 3, CP_ERR_LIMIT, 0},
        {"1000000000000", 2, CP_ERR_LIMIT, 0},
        {"-1", 2, CP_ERR_INVALID, 0},
        {"+1", 2, CP_ERR_INVALID, 0},
        {"01", 2, CP_ERR_INVALID, 0},
        {"00.5", 2, CP_ERR_INVALID, 0},
        {"1.", 2, CP_ERR_INVALID, 0},
        {".5", 2, CP_ERR_INVALID, 0},
        {"", 2, CP_ERR_INVALID, 0},
        {" 1", 2, CP_ERR_INVALID, 0},
        {"1 ", 2, CP_ERR_INVALID, 0},
        {"1e3", 2, CP_ERR_INVALID, 0},
        {"1,5", 2, CP_ERR_INVALID, 0},
        {"0x10", 2, CP_ERR_INVALID, 0},
        {"1.5", 4, CP_ERR_INVALID, 0}, /* no currency has four decimals */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t v = -7;
        int rc = money_parse(rows[i].text, strlen(rows[i].text), rows[i].exp, &v);
        CU_ASSERT_EQUAL(rc, rows[i].rc);
        CU_ASSERT_EQUAL(v, rows[i].rc == CP_OK ? rows[i].minor : -7);
        if (rc != rows[i].rc)
            fprintf(stderr, "row %zu (%s): %d\n", i, rows[i].text, rc);
    }
    int64_t v = 0;
    CU_ASSERT_EQUAL(money_parse_stored("10.000", 6, 2, &v), CP_OK);
    CU_ASSERT_EQUAL(v, 1000);
    CU_ASSERT_EQUAL(money_parse_stored("0.500", 5, 2, &v), CP_OK);
    CU_ASSERT_EQUAL(v, 50);
    CU_ASSERT_EQUAL(money_parse_stored("500.000", 7, 0, &v), CP_OK);
    CU_ASSERT_EQUAL(v, 500);
    CU_ASSERT_EQUAL(money_parse_stored("12.345", 6, 2, &v), CP_ERR_LIMIT);
}

static void money_format_writes_exactly_exp_decimals(void)
{
    char buf[MONEY_TEXT_MAX];
    static const struct {
        int64_t minor;
        int exp;
        const char *want;
    } rows[] = {{5, 2, "0.05"},
                {0, 0, "0"},
                {0, 3, "0.000"},
                {123456, 3, "123.456"},
                {1250, 0, "1250"},
                {99999999999999LL, 2, "999999999999.99"},
                {999999999999999LL, 3, "999999999999.999"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CU_ASSERT_EQUAL(money_format(rows[i].minor, rows[i].exp, buf, sizeof buf),
                        (int)strlen(rows[i].want));
        CU_ASSERT_STRING_EQUAL(buf, rows[i].want);
    }
    CU_ASSERT_EQUAL(money_format(-1, 2, buf, sizeof buf), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(money_format(MONEY_MINOR_MAX + 1, 2, buf, sizeof buf), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(money_format(1250, 2, buf, 5), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(money_restate("10.000", 6, 2, buf, sizeof buf), 5);
    CU_ASSERT_STRING_EQUAL(buf, "10.00");
}

/* One row: a campaign (exponent, kind, value, optional minimum and cap) and an order. */
struct row {
    int exp;
    enum money_kind kind;
    const char *value, *min, *max, *order;
    int outcome;
    const char *discount;
};

static const struct row rows[] = {
    /* PERCENTAGE, exponent 2 */
    {2, MONEY_PERCENTAGE, "10", NULL, NULL, "100.00", MONEY_APPLIES, "10.00"},
    {2, MONEY_PERCENTAGE, "10", NULL, NULL, "12.25", MONEY_APPLIES, "1.22"}, /* tie, down */
    {2, MONEY_PERCENTAGE, "10", NULL, NULL, "12.35", MONEY_APPLIES, "1.24"}, /* tie, up */
    {2, MONEY_PERCENTAGE, "10", NULL, NULL, "12.36", MONEY_APPLIES, "1.24"},
    {2, MONEY_PERCENTAGE, "10", NULL, NULL, "12.34", MONEY_APPLIES, "1.23"},
    {2, MONEY_PERCENTAGE, "12.5", NULL, NULL, "0.04", MONEY_APPLIES, "0.00"}, /* 0.5: to 0 */
    {2, MONEY_PERCENTAGE, "12.5", NULL, NULL, "0.12", MONEY_APPLIES, "0.02"}, /* 1.5: to 2 */
    {2, MONEY_PERCENTAGE, "33.33", NULL, NULL, "1234.56", MONEY_APPLIES, "411.48"},
    {2, MONEY_PERCENTAGE, "100", NULL, NULL, "59.99", MONEY_APPLIES, "59.99"},
    {2, MONEY_PERCENTAGE, "0.01", NULL, NULL, "1.00", MONEY_APPLIES, "0.00"},
    {2, MONEY_PERCENTAGE, "0.01", NULL, NULL, "50.00", MONEY_APPLIES, "0.00"},  /* tie */
    {2, MONEY_PERCENTAGE, "0.01", NULL, NULL, "150.00", MONEY_APPLIES, "0.02"}, /* tie */
    {2, MONEY_PERCENTAGE, "10", NULL, NULL, "0", MONEY_APPLIES, "0.00"},
    {2, MONEY_PERCENTAGE, "99.99", NULL, NULL, "999999999999.99", MONEY_APPLIES, "999899999999.99"},
    {2, MONEY_PERCENTAGE, "100", NULL, NULL, "999999999999.99", MONEY_APPLIES, "999999999999.99"},
    /* caps */
    {2, MONEY_PERCENTAGE, "20", NULL, "5.00", "100.00", MONEY_APPLIES, "5.00"},
    {2, MONEY_PERCENTAGE, "20", NULL, "5.00", "25.00", MONEY_APPLIES, "5.00"},
    {2, MONEY_PERCENTAGE, "20", NULL, "5.00", "24.99", MONEY_APPLIES, "5.00"}, /* 4.998 */
    {2, MONEY_PERCENTAGE, "20", NULL, "5.00", "20.00", MONEY_APPLIES, "4.00"},
    {2, MONEY_PERCENTAGE, "10", "10.00", "1.00", "10.00", MONEY_APPLIES, "1.00"},
    /* minimum */
    {2, MONEY_AMOUNT, "10", "50.00", NULL, "49.99", MONEY_BELOW_MINIMUM, "0.00"},
    {2, MONEY_AMOUNT, "10", "50.00", NULL, "50", MONEY_APPLIES, "10.00"},
    {2, MONEY_PERCENTAGE, "10", "50", NULL, "0", MONEY_BELOW_MINIMUM, "0.00"},
    {0, MONEY_PERCENTAGE, "10", "1000", "50", "999", MONEY_BELOW_MINIMUM, "0"},
    /* AMOUNT, capped at the order */
    {2, MONEY_AMOUNT, "10", NULL, NULL, "25.00", MONEY_APPLIES, "10.00"},
    {2, MONEY_AMOUNT, "10", NULL, NULL, "7.50", MONEY_APPLIES, "7.50"},
    {0, MONEY_AMOUNT, "500", NULL, NULL, "300", MONEY_APPLIES, "300"},
    {0, MONEY_AMOUNT, "1", NULL, NULL, "0", MONEY_APPLIES, "0"},
    {3, MONEY_AMOUNT, "1.5", NULL, NULL, "1.250", MONEY_APPLIES, "1.250"},
    {3, MONEY_AMOUNT, "1.5", NULL, NULL, "2", MONEY_APPLIES, "1.500"},
    /* exponent 0 */
    {0, MONEY_PERCENTAGE, "15", NULL, NULL, "1250", MONEY_APPLIES, "188"}, /* 187.5: up */
    {0, MONEY_PERCENTAGE, "15", NULL, NULL, "1270", MONEY_APPLIES, "190"}, /* 190.5: down */
    {0, MONEY_PERCENTAGE, "33.33", NULL, NULL, "1", MONEY_APPLIES, "0"},
    /* exponent 3 */
    {3, MONEY_PERCENTAGE, "12.5", NULL, NULL, "1.005", MONEY_APPLIES, "0.126"},
    {3, MONEY_PERCENTAGE, "5", NULL, NULL, "0.010", MONEY_APPLIES, "0.000"}, /* 0.5: to 0 */
    {3, MONEY_PERCENTAGE, "5", NULL, NULL, "0.030", MONEY_APPLIES, "0.002"}, /* 1.5: to 2 */
    {3, MONEY_PERCENTAGE, "100", NULL, NULL, "999999999999.999", MONEY_APPLIES, "999999999999.999"},
    {3, MONEY_PERCENTAGE, "99.99", NULL, NULL, "999999999999.999", MONEY_APPLIES,
     "999899999999.999"},
    {3, MONEY_PERCENTAGE, "50", NULL, "0.001", "0.001", MONEY_APPLIES, "0.000"}, /* tie */
};

static int64_t amount(const char *text, int exp)
{
    int64_t v = -1;
    if (text != NULL)
        CU_ASSERT_EQUAL_FATAL(money_parse(text, strlen(text), exp, &v), CP_OK);
    return v;
}

static void money_discount_table(void)
{
    CU_ASSERT(sizeof rows / sizeof rows[0] >= 30);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct money_rule rule = {
            r->kind, amount(r->value, r->kind == MONEY_PERCENTAGE ? MONEY_PERCENT_EXP : r->exp),
            amount(r->min, r->exp), amount(r->max, r->exp)};
        int64_t d = -1;
        char buf[MONEY_TEXT_MAX] = "";
        int outcome = money_discount(&rule, amount(r->order, r->exp), &d);
        CU_ASSERT(money_format(d, r->exp, buf, sizeof buf) > 0);
        if (outcome != r->outcome || strcmp(buf, r->discount) != 0)
            fprintf(stderr, "row %zu: %s of %s -> %d %s (want %d %s)\n", i, r->value, r->order,
                    outcome, buf, r->outcome, r->discount);
        CU_ASSERT_EQUAL(outcome, r->outcome);
        CU_ASSERT_STRING_EQUAL(buf, r->discount);
    }
}

static void money_discount_refuses_what_could_overflow(void)
{
    int64_t d = 7;
    struct money_rule pct = {MONEY_PERCENTAGE, MONEY_PERCENT_FULL, -1, -1};
    CU_ASSERT_EQUAL(money_discount(&pct, MONEY_MINOR_MAX, &d), MONEY_APPLIES);
    CU_ASSERT_EQUAL(d, MONEY_MINOR_MAX);
    d = 7;
    CU_ASSERT_EQUAL(money_discount(&pct, MONEY_MINOR_MAX + 1, &d), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(money_discount(&pct, INT64_MAX, &d), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(money_discount(&pct, -1, &d), CP_ERR_LIMIT);
    pct.value = MONEY_PERCENT_FULL + 1; /* above 100 % */
    CU_ASSERT_EQUAL(money_discount(&pct, 100, &d), CP_ERR_LIMIT);
    pct.value = 0;
    CU_ASSERT_EQUAL(money_discount(&pct, 100, &d), CP_ERR_INVALID);
    struct money_rule amt = {MONEY_AMOUNT, MONEY_MINOR_MAX + 1, -1, -1};
    CU_ASSERT_EQUAL(money_discount(&amt, 100, &d), CP_ERR_LIMIT);
    amt.value = 100;
    amt.max_discount = 0;
    CU_ASSERT_EQUAL(money_discount(&amt, 100, &d), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(d, 7); /* untouched by every refusal */
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"money_exponent_comes_from_the_currency_table",
         money_exponent_comes_from_the_currency_table},
        {"money_parse_is_strict_and_exact", money_parse_is_strict_and_exact},
        {"money_format_writes_exactly_exp_decimals", money_format_writes_exactly_exp_decimals},
        {"money_discount_table", money_discount_table},
        {"money_discount_refuses_what_could_overflow", money_discount_refuses_what_could_overflow},
    };
    return unit_run_suite("money", NULL, UNIT_CASES(tests));
}
