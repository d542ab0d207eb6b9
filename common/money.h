/*
 * money.h - exact decimal amounts and the discount of a coupon on an order (issue 26).
 *
 * An amount is an int64 count of its currency's minor unit (cents, fils, yen); the
 * exponent (decimals of the minor unit) comes from the currency: 0 for JPY, KRW, CLP,
 * ISK, VND, UGX, PYG, XAF, XOF, 3 for BHD, KWD, OMR, JOD, TND, IQD, LYD, 2 for any
 * other code and for no currency at all (a campaign without one). No floating point
 * anywhere: amounts come in as text and leave as text.
 *
 * Text is strict: `0` or a digit 1-9 and at most MONEY_INT_DIGITS_MAX digits in all,
 * then optionally `.` and 1..exponent digits. No sign, exponent, spaces or leading
 * zeros; more decimals than the currency has are refused even when they are zeros
 * ("1.000" is not a JPY or EUR amount), so what a client sends is exactly what we
 * compute with. MONEY_INT_DIGITS_MAX = 12 is what the SQL type DECIMAL(15,3) holds,
 * so every amount fits its column and every product below fits 64 bits unsigned:
 * order < 10^15 minor units, percentage <= 10^4 hundredths of a percent.
 *
 * The discount (money_discount): PERCENTAGE = order x percent / 100 rounded half to
 * even at the minor unit, AMOUNT = the value; either capped by the campaign's
 * maxDiscountAmount and by the order itself; an order below minOrderAmount gets
 * none (MONEY_BELOW_MINIMUM). Pure functions, no I/O, no state; thread-safe.
 */
#ifndef COUPON_MONEY_H
#define COUPON_MONEY_H

#include <stddef.h>
#include <stdint.h>

#define MONEY_EXP_DEFAULT    2  /* no currency, or one not in the table */
#define MONEY_EXP_MAX        3  /* the most decimals any currency has (and the SQL scale) */
#define MONEY_INT_DIGITS_MAX 12 /* digits before the point: DECIMAL(15,3) */
#define MONEY_MINOR_MAX      999999999999999LL /* 10^15 - 1: the largest amount at exp 3 */
#define MONEY_PERCENT_EXP    2                 /* a percentage has two decimals: 12.5 % = 1250 */
#define MONEY_PERCENT_FULL   10000             /* 100 % in hundredths of a percent */
#define MONEY_TEXT_MAX       24                /* the longest amount text, NUL included */

/* 1 when s[0..len) is three upper-case ASCII letters (an ISO 4217 alpha-3 code's form). */
int money_currency_valid(const char *s, size_t len);

/* Decimals of the currency's minor unit; NULL or "" (no currency) -> MONEY_EXP_DEFAULT. */
int money_exponent(const char *currency);

/* Amount text -> minor units at exponent exp (0..MONEY_EXP_MAX). CP_OK; CP_ERR_INVALID
 * for anything that is not an amount (sign, letters, "1.", ".5", "01", empty);
 * CP_ERR_LIMIT for more decimals than exp or more than MONEY_INT_DIGITS_MAX digits
 * before the point. *minor is untouched on failure. */
int money_parse(const char *s, size_t len, int exp, int64_t *minor);

/* The same for a value MariaDB wrote (DECIMAL as text, "10.500"): zeros after the
 * last significant decimal are dropped first. */
int money_parse_stored(const char *s, size_t len, int exp, int64_t *minor);

/* minor (0..MONEY_MINOR_MAX) at exp as text with exactly exp decimals ("0.00", "1250",
 * "1.005"); returns its length, or CP_ERR_INVALID / CP_ERR_LIMIT (cap too small). */
int money_format(int64_t minor, int exp, char *buf, size_t cap);

/* A stored value (money_parse_stored) written again at exp decimals into buf; its
 * length or a negative error. */
int money_restate(const char *stored, size_t len, int exp, char *buf, size_t cap);

enum money_kind { MONEY_PERCENTAGE, MONEY_AMOUNT };

struct money_rule {
    enum money_kind kind;
    /* PERCENTAGE: hundredths of a percent, 1..MONEY_PERCENT_FULL; AMOUNT: minor units,
     * 1..MONEY_MINOR_MAX. */
    int64_t value;
    int64_t min_order;    /* minor units; -1 = no minimum */
    int64_t max_discount; /* minor units; -1 = no cap */
};

enum money_outcome {
    MONEY_APPLIES = 0,      /* *discount is the discount (possibly 0 on a 0 order) */
    MONEY_BELOW_MINIMUM = 1 /* order < min_order: *discount = 0 */
};

/* The discount of rule on an order of `order` minor units (0..MONEY_MINOR_MAX), in the
 * same unit. MONEY_APPLIES or MONEY_BELOW_MINIMUM; CP_ERR_LIMIT for an order or a rule
 * value out of range (nothing is ever computed past 64 bits), CP_ERR_INVALID for a
 * rule that makes no sense (kind, non-positive value or cap). */
int money_discount(const struct money_rule *rule, int64_t order, int64_t *discount);

#endif
