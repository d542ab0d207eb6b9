/*
 * test_timefmt.c - unit tests of common/timefmt: RFC 3339 <-> epoch ms round
 * trips, offsets, fractions of 1..9 digits, leap years and a table of garbage.
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "timefmt.h"

static int parse(const char *text, int64_t *ms)
{
    return timefmt_parse_ms(text, strlen(text), ms);
}

static void timefmt_formats_utc_with_milliseconds(void)
{
    static const struct {
        int64_t ms;
        const char *text;
    } rows[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-1000, "1969-12-31T23:59:59.000Z"},
        {951782400000, "2000-02-29T00:00:00.000Z"},
        {1709164800123, "2024-02-29T00:00:00.123Z"},
        {1795548701123, "2026-11-24T19:31:41.123Z"},
        {253402300799999, "9999-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char buf[TIMEFMT_LEN];
        int n = timefmt_format_ms(rows[i].ms, buf, sizeof buf);
        CU_ASSERT_EQUAL(n, 24);
        if (n > 0 && strcmp(buf, rows[i].text) != 0)
            fprintf(stderr, "\n  row %zu: %" PRId64 " -> %s, want %s\n", i, rows[i].ms, buf,
                    rows[i].text);
        CU_ASSERT_STRING_EQUAL(buf, rows[i].text);
        int64_t back = 0;
        CU_ASSERT_EQUAL(parse(buf, &back), CP_OK);
        CU_ASSERT_EQUAL(back, rows[i].ms);
    }
}

static void timefmt_round_trips_many_instants(void)
{
    /* Every ~37 hours + 7 ms across 1900..2100: format then parse is the identity. */
    const int64_t step = (int64_t)37 * 3600 * 1000 + 7;
    for (int64_t ms = -2208988800000; ms < 4102444800000; ms += step) {
        char buf[TIMEFMT_LEN];
        int64_t back = -42;
        if (timefmt_format_ms(ms, buf, sizeof buf) != 24 || parse(buf, &back) != CP_OK ||
            back != ms) {
            fprintf(stderr, "\n  round trip failed at %" PRId64 " (%s -> %" PRId64 ")\n", ms, buf,
                    back);
            CU_FAIL("round trip");
            return;
        }
    }
    CU_PASS("round trips");
}

static void timefmt_format_reports_a_small_buffer(void)
{
    char buf[TIMEFMT_LEN - 1];
    CU_ASSERT_EQUAL(timefmt_format_ms(0, buf, sizeof buf), CP_ERR_LIMIT);
}

static void timefmt_handles_only_four_digit_years(void)
{
    char big[64];
    int64_t ms = 0;
    /* Format: years 0000..9999 only, whatever the buffer. */
    CU_ASSERT_EQUAL(timefmt_format_ms(TIMEFMT_MAX_MS, big, sizeof big), 24);
    CU_ASSERT_STRING_EQUAL(big, "9999-12-31T23:59:59.999Z");
    CU_ASSERT_EQUAL(timefmt_format_ms(TIMEFMT_MIN_MS, big, sizeof big), 24);
    CU_ASSERT_STRING_EQUAL(big, "0000-01-01T00:00:00.000Z");
    CU_ASSERT_EQUAL(timefmt_format_ms(TIMEFMT_MAX_MS + 1, big, sizeof big), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(timefmt_format_ms(TIMEFMT_MIN_MS - 1, big, sizeof big), CP_ERR_INVALID);
    CU_ASSERT(timefmt_format_ms(INT64_MAX, big, sizeof big) < 0);
    CU_ASSERT(timefmt_format_ms(INT64_MIN, big, sizeof big) < 0);
    /* Parse: an offset must not push the instant out of those years. */
    CU_ASSERT_EQUAL(parse("0000-01-01T00:00:00Z", &ms), CP_OK);
    CU_ASSERT_EQUAL(ms, TIMEFMT_MIN_MS);
    CU_ASSERT_EQUAL(parse("9999-12-31T23:59:59.999Z", &ms), CP_OK);
    CU_ASSERT_EQUAL(ms, TIMEFMT_MAX_MS);
    CU_ASSERT_EQUAL(parse("0000-01-01T00:00:00+00:01", &ms), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(parse("0000-01-01T00:00:00+23:59", &ms), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(parse("9999-12-31T23:59:59-00:01", &ms), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(parse("0000-01-01T00:00:00-00:01", &ms), CP_OK);
    CU_ASSERT_EQUAL(ms, TIMEFMT_MIN_MS + 60000);
}

static void timefmt_parses_offsets(void)
{
    static const struct {
        const char *text;
        const char *utc;
    } rows[] = {
        {"2026-11-24T19:31:41+09:00", "2026-11-24T10:31:41Z"},
        {"2026-11-24T19:31:41-05:30", "2026-11-25T01:01:41Z"},
        {"2026-11-24T19:31:41+00:00", "2026-11-24T19:31:41Z"},
        {"2026-11-24T19:31:41-00:00", "2026-11-24T19:31:41Z"},
        {"2026-01-01T00:00:00+23:59", "2025-12-31T00:01:00Z"},
        {"2026-12-31T23:59:59.5-23:59", "2027-01-01T23:58:59.500Z"},
        {"2026-11-24t19:31:41z", "2026-11-24T19:31:41Z"},
        {"2026-11-24T19:31:41.250+09:00", "2026-11-24T10:31:41.25Z"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t a = 1, b = 2;
        int ra = parse(rows[i].text, &a), rb = parse(rows[i].utc, &b);
        if (ra != CP_OK || rb != CP_OK || a != b)
            fprintf(stderr, "\n  row %zu: %s=%" PRId64 " (%d) vs %s=%" PRId64 " (%d)\n", i,
                    rows[i].text, a, ra, rows[i].utc, b, rb);
        CU_ASSERT_EQUAL(ra, CP_OK);
        CU_ASSERT_EQUAL(rb, CP_OK);
        CU_ASSERT_EQUAL(a, b);
    }
    int64_t ms = 0;
    CU_ASSERT_EQUAL(parse("1970-01-01T09:00:00+09:00", &ms), CP_OK);
    CU_ASSERT_EQUAL(ms, 0);
    CU_ASSERT_EQUAL(parse("1969-12-31T18:30:00-05:30", &ms), CP_OK);
    CU_ASSERT_EQUAL(ms, 0);
}

static void timefmt_parses_fractions_of_one_to_nine_digits(void)
{
    static const struct {
        const char *text;
        int64_t ms;
    } rows[] = {
        {"1970-01-01T00:00:01Z", 1000},           {"1970-01-01T00:00:01.1Z", 1100},
        {"1970-01-01T00:00:01.12Z", 1120},        {"1970-01-01T00:00:01.123Z", 1123},
        {"1970-01-01T00:00:01.1239Z", 1123}, /* truncated, not rounded */
        {"1970-01-01T00:00:01.12399Z", 1123},     {"1970-01-01T00:00:01.123999Z", 1123},
        {"1970-01-01T00:00:01.1239999Z", 1123},   {"1970-01-01T00:00:01.12399999Z", 1123},
        {"1970-01-01T00:00:01.123999999Z", 1123}, {"1970-01-01T00:00:01.000000001Z", 1000},
        {"1970-01-01T00:00:01.5+00:00", 1500},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t ms = -1;
        int rc = parse(rows[i].text, &ms);
        if (rc != CP_OK || ms != rows[i].ms)
            fprintf(stderr, "\n  row %zu: %s -> rc %d, %" PRId64 "\n", i, rows[i].text, rc, ms);
        CU_ASSERT_EQUAL(rc, CP_OK);
        CU_ASSERT_EQUAL(ms, rows[i].ms);
    }
    int64_t ms;
    CU_ASSERT_EQUAL(parse("1970-01-01T00:00:01.1234567890Z", &ms), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(parse("1970-01-01T00:00:01.Z", &ms), CP_ERR_INVALID);
}

static void timefmt_checks_leap_years(void)
{
    static const struct {
        const char *text;
        int ok;
    } rows[] = {
        {"2024-02-29T00:00:00Z", 1}, {"2023-02-29T00:00:00Z", 0}, {"2000-02-29T00:00:00Z", 1},
        {"1900-02-29T00:00:00Z", 0}, {"2100-02-29T00:00:00Z", 0}, {"2400-02-29T00:00:00Z", 1},
        {"2024-02-30T00:00:00Z", 0}, {"2023-02-28T23:59:59Z", 1}, {"2024-04-31T00:00:00Z", 0},
        {"2024-06-31T00:00:00Z", 0}, {"2024-09-31T00:00:00Z", 0}, {"2024-11-31T00:00:00Z", 0},
        {"2024-12-31T00:00:00Z", 1}, {"2024-01-31T00:00:00Z", 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t ms;
        int rc = parse(rows[i].text, &ms);
        if ((rc == CP_OK) != rows[i].ok)
            fprintf(stderr, "\n  row %zu: %s -> %d\n", i, rows[i].text, rc);
        CU_ASSERT_EQUAL(rc, rows[i].ok ? CP_OK : CP_ERR_INVALID);
    }
    int64_t a, b;
    CU_ASSERT_EQUAL(parse("2024-02-29T00:00:00Z", &a), CP_OK);
    CU_ASSERT_EQUAL(parse("2024-03-01T00:00:00Z", &b), CP_OK);
    CU_ASSERT_EQUAL(b - a, 86400000);
}

static void timefmt_clamps_a_leap_second(void)
{
    int64_t a, b;
    CU_ASSERT_EQUAL(parse("2016-12-31T23:59:60Z", &a), CP_OK);
    CU_ASSERT_EQUAL(parse("2016-12-31T23:59:59Z", &b), CP_OK);
    CU_ASSERT_EQUAL(a, b);
}

static void timefmt_rejects_garbage(void)
{
    static const char *const rows[] = {
        "",
        "2026",
        "2026-11-24",
        "2026-11-24T19:31:41",  /* no offset */
        "2026-11-24T19:31Z",    /* no seconds */
        "2026-11-24 19:31:41Z", /* space instead of T */
        "2026-11-24X19:31:41Z",
        "2026/11/24T19:31:41Z",
        "2026-11-24T19-31-41Z",
        "26-11-24T19:31:41Z",
        "2026-1-24T19:31:41Z",
        "2026-11-4T19:31:41Z",
        "+2026-11-24T19:31:41Z",
        "2026-00-24T19:31:41Z",
        "2026-13-24T19:31:41Z",
        "2026-11-00T19:31:41Z",
        "2026-11-32T19:31:41Z",
        "2026-11-24T24:00:00Z",
        "2026-11-24T23:60:00Z",
        "2026-11-24T23:59:61Z",
        "2026-11-24T19:31:41+24:00",
        "2026-11-24T19:31:41+09:60",
        "2026-11-24T19:31:41+0900",
        "2026-11-24T19:31:41+09",
        "2026-11-24T19:31:41+9:00",
        "2026-11-24T19:31:41+09:00Z",
        "2026-11-24T19:31:41Z+09:00",
        "2026-11-24T19:31:41ZZ",
        "2026-11-24T19:31:41Z ",
        " 2026-11-24T19:31:41Z",
        "2026-11-24T19:31:41.Z",
        "2026-11-24T19:31:41,123Z",
        "2026-11-24T19:31:41.12a3Z",
        "2026-11-24T19:31:41.-1Z",
        "2026-11-24T19:31:41UTC",
        "2026-11-24T19:31:41 +09:00",
        "2026-11-24T1a:31:41Z",
        "2O26-11-24T19:31:41Z",
        "2026-11-24T19:31:41.1234567890Z",
        "2026-11-24T19:31:41\xef\xbc\xba",
        "\xff\xff\xff\xff-11-24T19:31:41Z",
        "now",
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t ms = 12345;
        int rc = parse(rows[i], &ms);
        if (rc != CP_ERR_INVALID)
            fprintf(stderr, "\n  row %zu accepted: '%s' -> %" PRId64 "\n", i, rows[i], ms);
        CU_ASSERT_EQUAL(rc, CP_ERR_INVALID);
        CU_ASSERT_EQUAL(ms, 12345); /* output untouched on failure */
    }
}

static void timefmt_parses_exactly_len_bytes(void)
{
    const char *text = "2026-11-24T19:31:41Zgarbage";
    int64_t ms;
    CU_ASSERT_EQUAL(timefmt_parse_ms(text, 20, &ms), CP_OK);
    CU_ASSERT_EQUAL(timefmt_parse_ms(text, 21, &ms), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(timefmt_parse_ms(text, 19, &ms), CP_ERR_INVALID);
    /* Not NUL-terminated: a copy without terminator is parsed within bounds. */
    char raw[20];
    memcpy(raw, text, sizeof raw);
    CU_ASSERT_EQUAL(timefmt_parse_ms(raw, sizeof raw, &ms), CP_OK);
}

static void timefmt_now_is_plausible(void)
{
    int64_t now = timefmt_now_ms();
    CU_ASSERT(now > 1577836800000); /* after 2020-01-01 */
    CU_ASSERT(now < 4102444800000); /* before 2100-01-01 */
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"timefmt_formats_utc_with_milliseconds", timefmt_formats_utc_with_milliseconds},
        {"timefmt_round_trips_many_instants", timefmt_round_trips_many_instants},
        {"timefmt_format_reports_a_small_buffer", timefmt_format_reports_a_small_buffer},
        {"timefmt_handles_only_four_digit_years", timefmt_handles_only_four_digit_years},
        {"timefmt_parses_offsets", timefmt_parses_offsets},
        {"timefmt_parses_fractions_of_one_to_nine_digits",
         timefmt_parses_fractions_of_one_to_nine_digits},
        {"timefmt_checks_leap_years", timefmt_checks_leap_years},
        {"timefmt_clamps_a_leap_second", timefmt_clamps_a_leap_second},
        {"timefmt_rejects_garbage", timefmt_rejects_garbage},
        {"timefmt_parses_exactly_len_bytes", timefmt_parses_exactly_len_bytes},
        {"timefmt_now_is_plausible", timefmt_now_is_plausible},
    };
    return unit_run_suite("timefmt", NULL, UNIT_CASES(tests));
}
