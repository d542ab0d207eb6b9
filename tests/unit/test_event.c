/*
 * test_event.c - unit tests of common/event, the Kafka event format shared by
 * producer and consumer: encode -> decode round trips, the strict decoder's
 * rejections (event id, missing/extra/mistyped members, time, size), the
 * message key and the downstream coupon.issued value; new event ids are distinct
 * across pool refills and across fork().
 */
#include "first.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "cp_limits.h"
#include "event.h"

#define GOOD_ID "0123456789abcdef0123456789abcdef"
#define GOOD_AT "2026-11-24T19:31:41.123Z"

static int decode(const char *text, struct issue_event *ev, const char **reason)
{
    return event_decode(text, strlen(text), ev, reason);
}

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void event_new_id_is_distinct_across_refills(void)
{
    enum { N = 300 }; /* several pools of 64 */
    static char ids[N][CP_EVENT_ID_HEX + 1];
    for (size_t i = 0; i < N; i++) {
        CU_ASSERT_EQUAL_FATAL(event_new_id(ids[i]), CP_OK);
        CU_ASSERT(event_id_valid(ids[i], strlen(ids[i])));
    }
    qsort(ids, N, sizeof ids[0], by_text);
    size_t same = 0;
    for (size_t i = 1; i < N; i++)
        same += strcmp(ids[i - 1], ids[i]) == 0;
    CU_ASSERT_EQUAL(same, 0);
}

/* A worker forked after its parent drew an id must not repeat the parent's next ones. */
static void event_new_id_differs_in_a_forked_child(void)
{
    char parent_id[CP_EVENT_ID_HEX + 1], child_id[CP_EVENT_ID_HEX + 1] = "";
    CU_ASSERT_EQUAL_FATAL(event_new_id(parent_id), CP_OK); /* the pool is filled now */
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        char id[CP_EVENT_ID_HEX + 1];
        int ok = event_new_id(id) == CP_OK &&
                 write(fds[1], id, CP_EVENT_ID_HEX) == (ssize_t)CP_EVENT_ID_HEX;
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], child_id, CP_EVENT_ID_HEX);
    close(fds[0]);
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL_FATAL(n, CP_EVENT_ID_HEX);
    child_id[CP_EVENT_ID_HEX] = '\0';
    CU_ASSERT_EQUAL_FATAL(event_new_id(parent_id), CP_OK); /* the parent's next one */
    CU_ASSERT_STRING_NOT_EQUAL(parent_id, child_id);
}

static void event_encode_then_decode_round_trips(void)
{
    static const struct issue_event rows[] = {
        {GOOD_ID, 42, 7, 1, 1795548701123},
        {"ffffffffffffffffffffffffffffffff", INT64_MAX, INT64_MAX, INT64_MAX, 0},
        {"00000000000000000000000000000000", 1, 1, 1, 253402300799999},
        {"a1b2c3d4e5f60718293a4b5c6d7e8f90", 9007199254740993, 12345678901234, 1000, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char buf[CP_EVENT_MAX_BYTES];
        int n = event_encode(&rows[i], buf, sizeof buf);
        CU_ASSERT_FATAL(n > 0);
        CU_ASSERT_EQUAL((size_t)n, strlen(buf));
        struct issue_event back;
        memset(&back, 0xee, sizeof back);
        const char *why = "unset";
        int rc = event_decode(buf, (size_t)n, &back, &why);
        if (rc != CP_OK)
            fprintf(stderr, "\n  row %zu: %s -> %d (%s)\n", i, buf, rc, why ? why : "-");
        CU_ASSERT_EQUAL(rc, CP_OK);
        CU_ASSERT_PTR_NULL(why);
        CU_ASSERT_STRING_EQUAL(back.event_id, rows[i].event_id);
        CU_ASSERT_EQUAL(back.coupon_id, rows[i].coupon_id);
        CU_ASSERT_EQUAL(back.user_id, rows[i].user_id);
        CU_ASSERT_EQUAL(back.sequence, rows[i].sequence);
        CU_ASSERT_EQUAL(back.issued_at_ms, rows[i].issued_at_ms);
    }
}

static void event_encode_writes_the_documented_json(void)
{
    struct issue_event ev = {GOOD_ID, 42, 7, 1, 1795548701123};
    char buf[CP_EVENT_MAX_BYTES];
    int n = event_encode(&ev, buf, sizeof buf);
    const char *want = "{\"eventId\":\"" GOOD_ID "\",\"couponId\":42,\"userId\":7,"
                       "\"sequence\":1,\"issuedAt\":\"" GOOD_AT "\"}";
    CU_ASSERT_EQUAL(n, (int)strlen(want));
    CU_ASSERT_STRING_EQUAL(buf, want);
    /* Too small a buffer is reported, never truncated silently. */
    CU_ASSERT_EQUAL(event_encode(&ev, buf, (size_t)n), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(event_encode(&ev, buf, (size_t)n + 1), n);
}

static void event_encode_of_the_largest_event_fits_the_limit(void)
{
    struct issue_event ev = {GOOD_ID, INT64_MAX, INT64_MAX, INT64_MAX, 253402300799999};
    char buf[CP_EVENT_MAX_BYTES];
    int n = event_encode(&ev, buf, sizeof buf);
    CU_ASSERT(n > 0 && n < CP_EVENT_MAX_BYTES);
}

static void event_key_is_coupon_colon_user(void)
{
    struct issue_event ev = {GOOD_ID, 42, 7, 1, 0};
    char key[48];
    CU_ASSERT_EQUAL(event_key(&ev, key, sizeof key), 4);
    CU_ASSERT_STRING_EQUAL(key, "42:7");
    ev.coupon_id = INT64_MAX;
    ev.user_id = INT64_MAX;
    CU_ASSERT_EQUAL(event_key(&ev, key, sizeof key), 39);
    CU_ASSERT_STRING_EQUAL(key, "9223372036854775807:9223372036854775807");
    CU_ASSERT_EQUAL(event_key(&ev, key, 39), CP_ERR_LIMIT);
    /* Same coupon, different users: different keys, so a hot coupon spreads. */
    char k1[48], k2[48];
    struct issue_event a = {GOOD_ID, 5, 1, 1, 0}, b = {GOOD_ID, 5, 2, 2, 0};
    CU_ASSERT(event_key(&a, k1, sizeof k1) > 0);
    CU_ASSERT(event_key(&b, k2, sizeof k2) > 0);
    CU_ASSERT_STRING_NOT_EQUAL(k1, k2);
}

static void event_key_parse_reads_back_what_event_key_wrote(void)
{
    struct issue_event ev = {GOOD_ID, INT64_MAX, 7, 1, 0};
    char key[48];
    int n = event_key(&ev, key, sizeof key);
    int64_t c = 0, u = 0;
    CU_ASSERT_EQUAL(event_key_parse(key, (size_t)n, &c, &u), CP_OK);
    CU_ASSERT_EQUAL(c, INT64_MAX);
    CU_ASSERT_EQUAL(u, 7);
    static const char *const bad[] = {"",      ":",    "1:",   ":1",
                                      "1",     "0:1",  "1:0",  "01:2",
                                      "1:2:3", "-1:2", "1: 2", "9223372036854775808:1",
                                      "1:2x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = event_key_parse(bad[i], strlen(bad[i]), &c, &u);
        if (rc != CP_ERR_INVALID)
            fprintf(stderr, "\n  key \"%s\" accepted\n", bad[i]);
        CU_ASSERT_EQUAL(rc, CP_ERR_INVALID);
    }
    CU_ASSERT_EQUAL(event_key_parse(NULL, 0, &c, &u), CP_ERR_INVALID);
}

static void event_new_id_is_32_lowercase_hex_and_random(void)
{
    char a[CP_EVENT_ID_HEX + 1], b[CP_EVENT_ID_HEX + 1];
    CU_ASSERT_EQUAL(event_new_id(a), CP_OK);
    CU_ASSERT_EQUAL(event_new_id(b), CP_OK);
    CU_ASSERT_EQUAL(strlen(a), CP_EVENT_ID_HEX);
    CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef"), CP_EVENT_ID_HEX);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    /* A fresh id is accepted by the decoder. */
    struct issue_event ev = {"", 1, 2, 3, 0};
    memcpy(ev.event_id, a, sizeof a);
    char buf[CP_EVENT_MAX_BYTES];
    int n = event_encode(&ev, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0);
    struct issue_event back;
    const char *why;
    CU_ASSERT_EQUAL(event_decode(buf, (size_t)n, &back, &why), CP_OK);
}

/* Each row is a valid event with one thing wrong; the reason must name it. */
static void event_decode_rejects_bad_events(void)
{
#define EV(id, c, u, s, at)                                                                       \
    "{\"eventId\":" id ",\"couponId\":" c ",\"userId\":" u ",\"sequence\":" s ",\"issuedAt\":" at \
    "}"
#define QID "\"" GOOD_ID "\""
#define QAT "\"" GOOD_AT "\""
    static const struct {
        const char *label;
        const char *text;
        const char *reason_part; /* a word the reason must contain */
    } rows[] = {
        {"eventId 31 hex", EV("\"0123456789abcdef0123456789abcde\"", "1", "2", "3", QAT),
         "eventId"},
        {"eventId 33 hex", EV("\"0123456789abcdef0123456789abcdef0\"", "1", "2", "3", QAT),
         "eventId"},
        {"eventId uppercase hex", EV("\"0123456789ABCDEF0123456789abcdef\"", "1", "2", "3", QAT),
         "eventId"},
        {"eventId non-hex", EV("\"0123456789abcdeg0123456789abcdef\"", "1", "2", "3", QAT),
         "eventId"},
        {"eventId with dashes", EV("\"01234567-89ab-cdef-0123-456789abcdef\"", "1", "2", "3", QAT),
         "eventId"},
        {"eventId empty", EV("\"\"", "1", "2", "3", QAT), "eventId"},
        {"eventId number", EV("1234", "1", "2", "3", QAT), "eventId"},
        {"eventId null", EV("null", "1", "2", "3", QAT), "eventId"},
        {"eventId escaped NUL",
         EV("\"0123456789abcdef0123456789abcde\\u0000\"", "1", "2", "3", QAT), "eventId"},
        {"couponId 0", EV(QID, "0", "2", "3", QAT), "couponId"},
        {"couponId -1", EV(QID, "-1", "2", "3", QAT), "couponId"},
        {"couponId 2^63", EV(QID, "9223372036854775808", "2", "3", QAT), "couponId"},
        {"couponId string", EV(QID, "\"1\"", "2", "3", QAT), "couponId"},
        {"couponId float", EV(QID, "1.0", "2", "3", QAT), "couponId"},
        {"couponId null", EV(QID, "null", "2", "3", QAT), "couponId"},
        {"userId 0", EV(QID, "1", "0", "3", QAT), "userId"},
        {"userId true", EV(QID, "1", "true", "3", QAT), "userId"},
        {"userId 1e3", EV(QID, "1", "1e3", "3", QAT), "userId"},
        {"sequence 0", EV(QID, "1", "2", "0", QAT), "sequence"},
        {"sequence array", EV(QID, "1", "2", "[3]", QAT), "sequence"},
        {"sequence object", EV(QID, "1", "2", "{}", QAT), "sequence"},
        {"issuedAt number", EV(QID, "1", "2", "3", "1795548701123"), "issuedAt"},
        {"issuedAt no zone", EV(QID, "1", "2", "3", "\"2026-11-24T19:31:41.123\""), "issuedAt"},
        {"issuedAt Feb 30", EV(QID, "1", "2", "3", "\"2026-02-30T19:31:41Z\""), "issuedAt"},
        {"issuedAt garbage", EV(QID, "1", "2", "3", "\"yesterday\""), "issuedAt"},
        {"issuedAt empty", EV(QID, "1", "2", "3", "\"\""), "issuedAt"},
        {"issuedAt too long",
         EV(QID, "1", "2", "3", "\"2026-11-24T19:31:41.1234567890123456789Z\""), "issuedAt"},
        {"missing eventId", "{\"couponId\":1,\"userId\":2,\"sequence\":3,\"issuedAt\":" QAT "}",
         "eventId"},
        {"missing couponId",
         "{\"eventId\":" QID ",\"userId\":2,\"sequence\":3,\"issuedAt\":" QAT "}", "couponId"},
        {"missing userId",
         "{\"eventId\":" QID ",\"couponId\":1,\"sequence\":3,\"issuedAt\":" QAT "}", "userId"},
        {"missing sequence",
         "{\"eventId\":" QID ",\"couponId\":1,\"userId\":2,\"issuedAt\":" QAT "}", "sequence"},
        {"missing issuedAt", "{\"eventId\":" QID ",\"couponId\":1,\"userId\":2,\"sequence\":3}",
         "issuedAt"},
        {"extra member",
         "{\"eventId\":" QID ",\"couponId\":1,\"userId\":2,\"sequence\":3,\"issuedAt\":" QAT
         ",\"x\":1}",
         "unknown"},
        {"extra member differing in case",
         "{\"eventId\":" QID ",\"couponId\":1,\"userId\":2,\"sequence\":3,\"issuedAt\":" QAT
         ",\"UserId\":2}",
         "unknown"},
        {"duplicate member",
         "{\"eventId\":" QID ",\"couponId\":1,\"userId\":2,\"sequence\":3,\"issuedAt\":" QAT
         ",\"userId\":2}",
         "duplicate"},
        {"empty object", "{}", "eventId"},
        {"array", "[" EV(QID, "1", "2", "3", QAT) "]", "object"},
        {"trailing bytes", EV(QID, "1", "2", "3", QAT) "x", NULL},
        {"empty", "", "empty"},
        {"not JSON", "coupon 1 user 2", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct issue_event ev;
        const char *why = NULL;
        int rc = decode(rows[i].text, &ev, &why);
        int bad = rc != CP_ERR_INVALID || why == NULL ||
                  (rows[i].reason_part != NULL && strstr(why, rows[i].reason_part) == NULL);
        if (bad)
            fprintf(stderr, "\n  row %zu (%s): rc %d reason '%s'\n", i, rows[i].label, rc,
                    why ? why : "(null)");
        CU_ASSERT_FALSE(bad);
    }
#undef EV
#undef QID
#undef QAT
}

static void event_decode_rejects_oversize_input(void)
{
    /* A valid event padded with whitespace beyond CP_EVENT_MAX_BYTES. */
    char buf[CP_EVENT_MAX_BYTES + 2];
    struct issue_event ev = {GOOD_ID, 1, 2, 3, 0};
    int n = event_encode(&ev, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0);
    memset(buf + n, ' ', sizeof buf - (size_t)n);
    const char *why = NULL;
    CU_ASSERT_EQUAL(event_decode(buf, CP_EVENT_MAX_BYTES, &ev, &why), CP_OK);
    CU_ASSERT_EQUAL(event_decode(buf, CP_EVENT_MAX_BYTES + 1, &ev, &why), CP_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "limit"));
}

static void event_decode_accepts_any_member_order_and_offsets(void)
{
    const char *text = "{ \"issuedAt\" : \"2026-11-25T04:31:41.123+09:00\", \"sequence\":3,"
                       "\"userId\":2,\"couponId\":1,\"eventId\":\"" GOOD_ID "\" }\n";
    struct issue_event ev;
    const char *why = NULL;
    CU_ASSERT_EQUAL(decode(text, &ev, &why), CP_OK);
    CU_ASSERT_EQUAL(ev.coupon_id, 1);
    CU_ASSERT_EQUAL(ev.user_id, 2);
    CU_ASSERT_EQUAL(ev.sequence, 3);
    CU_ASSERT_EQUAL(ev.issued_at_ms, 1795548701123);
}

static void event_encode_issued_writes_the_downstream_value(void)
{
    struct issue_event ev = {GOOD_ID, 42, 7, 1, 1795548701123};
    char buf[CP_EVENT_MAX_BYTES];
    int n = event_encode_issued(&ev, 99, 1795548702000, buf, sizeof buf);
    const char *want = "{\"id\":99,\"couponId\":42,\"userId\":7,\"sequence\":1,"
                       "\"issuedAt\":\"" GOOD_AT "\","
                       "\"persistedAt\":\"2026-11-24T19:31:42.000Z\"}";
    CU_ASSERT_EQUAL(n, (int)strlen(want));
    CU_ASSERT_STRING_EQUAL(buf, want);
    CU_ASSERT_EQUAL(event_encode_issued(&ev, 99, 0, buf, 10), CP_ERR_LIMIT);
}

static void event_encode_redemption_writes_both_kinds(void)
{
    char buf[CP_EVENT_MAX_BYTES];
    struct redemption_event ev = {REDEMPTION_REDEEMED, 42, 7, 3, "o-1", 1795548702000, 0, 0};
    int n = event_encode_redemption(&ev, buf, sizeof buf);
    const char *want = "{\"type\":\"coupon.redeemed\",\"couponId\":42,\"userId\":7,"
                       "\"sequence\":3,\"orderId\":\"o-1\","
                       "\"redeemedAt\":\"2026-11-24T19:31:42.000Z\"}";
    CU_ASSERT_EQUAL(n, (int)strlen(want));
    CU_ASSERT_STRING_EQUAL(buf, want);
    ev.kind = REDEMPTION_CANCELLED;
    n = event_encode_redemption(&ev, buf, sizeof buf);
    CU_ASSERT(n > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"type\":\"coupon.redemption_cancelled\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"cancelledAt\":\"2026-11-24T19:31:42.000Z\"}"));
    CU_ASSERT_EQUAL(event_encode_redemption(&ev, buf, 20), CP_ERR_LIMIT);
    ev.order_id = NULL;
    CU_ASSERT_EQUAL(event_encode_redemption(&ev, buf, sizeof buf), CP_ERR_INVALID);
}

static void event_encode_redemption_writes_holds_with_their_version(void)
{
    char buf[CP_EVENT_MAX_BYTES];
    struct redemption_event ev = {REDEMPTION_HELD, 42, 7, 3, "o:1", 1795548702000,
                                  1795548762500,   5};
    int n = event_encode_redemption(&ev, buf, sizeof buf);
    const char *want = "{\"type\":\"coupon.held\",\"couponId\":42,\"userId\":7,"
                       "\"sequence\":3,\"version\":5,\"orderId\":\"o:1\","
                       "\"heldAt\":\"2026-11-24T19:31:42.000Z\","
                       "\"holdExpiresAt\":\"2026-11-24T19:32:42.500Z\"}";
    CU_ASSERT_EQUAL(n, (int)strlen(want));
    CU_ASSERT_STRING_EQUAL(buf, want);
    ev.kind = REDEMPTION_HOLD_RELEASED;
    ev.version = 6;
    n = event_encode_redemption(&ev, buf, sizeof buf);
    want = "{\"type\":\"coupon.hold_released\",\"couponId\":42,\"userId\":7,"
           "\"sequence\":3,\"version\":6,\"orderId\":\"o:1\","
           "\"releasedAt\":\"2026-11-24T19:31:42.000Z\",\"reason\":\"released\"}";
    CU_ASSERT_EQUAL(n, (int)strlen(want));
    CU_ASSERT_STRING_EQUAL(buf, want);
    ev.kind = REDEMPTION_HOLD_LAPSED;
    CU_ASSERT(event_encode_redemption(&ev, buf, sizeof buf) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"reason\":\"lapsed\"}"));
    ev.kind = REDEMPTION_REDEEMED;
    CU_ASSERT(event_encode_redemption(&ev, buf, sizeof buf) > 0);
    CU_ASSERT_PTR_NULL(strstr(buf, "holdExpiresAt")); /* only a hold has its end */
    ev.kind = REDEMPTION_HELD;
    ev.hold_until_ms = -1;
    CU_ASSERT_EQUAL(event_encode_redemption(&ev, buf, sizeof buf), CP_ERR_INVALID);
    ev.kind = (enum redemption_kind)99;
    CU_ASSERT_EQUAL(event_encode_redemption(&ev, buf, sizeof buf), CP_ERR_INVALID);
}

static void event_stamp_puts_the_outbox_id_first(void)
{
    char buf[64];
    CU_ASSERT_EQUAL(event_stamp(12, "{\"a\":1}", 7, buf, sizeof buf), 20);
    CU_ASSERT_STRING_EQUAL(buf, "{\"eventId\":12,\"a\":1}");
    CU_ASSERT_EQUAL(event_stamp(5, "{}", 2, buf, sizeof buf), 13);
    CU_ASSERT_STRING_EQUAL(buf, "{\"eventId\":5}");
    CU_ASSERT_EQUAL(event_stamp(5, "[1]", 3, buf, sizeof buf), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(event_stamp(5, "{", 1, buf, sizeof buf), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(event_stamp(123456, "{\"a\":1}", 7, buf, 20), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(event_outbox_key(42, buf, sizeof buf), 2);
    CU_ASSERT_STRING_EQUAL(buf, "42");
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"event_encode_then_decode_round_trips", event_encode_then_decode_round_trips},
        {"event_encode_writes_the_documented_json", event_encode_writes_the_documented_json},
        {"event_encode_of_the_largest_event_fits_the_limit",
         event_encode_of_the_largest_event_fits_the_limit},
        {"event_key_is_coupon_colon_user", event_key_is_coupon_colon_user},
        {"event_key_parse_reads_back_what_event_key_wrote",
         event_key_parse_reads_back_what_event_key_wrote},
        {"event_new_id_is_32_lowercase_hex_and_random",
         event_new_id_is_32_lowercase_hex_and_random},
        {"event_decode_rejects_bad_events", event_decode_rejects_bad_events},
        {"event_decode_rejects_oversize_input", event_decode_rejects_oversize_input},
        {"event_decode_accepts_any_member_order_and_offsets",
         event_decode_accepts_any_member_order_and_offsets},
        {"event_encode_issued_writes_the_downstream_value",
         event_encode_issued_writes_the_downstream_value},
        {"event_encode_redemption_writes_both_kinds", event_encode_redemption_writes_both_kinds},
        {"event_encode_redemption_writes_holds_with_their_version",
         event_encode_redemption_writes_holds_with_their_version},
        {"event_stamp_puts_the_outbox_id_first", event_stamp_puts_the_outbox_id_first},
        {"event_new_id_is_distinct_across_refills", event_new_id_is_distinct_across_refills},
        {"event_new_id_differs_in_a_forked_child", event_new_id_differs_in_a_forked_child},
    };
    return unit_run_suite("event", NULL, UNIT_CASES(tests));
}
