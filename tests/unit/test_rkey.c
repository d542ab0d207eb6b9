/*
 * test_rkey.c - the Redis contract (common/rkey): key names, the value formats of
 * coupon:{ID}:users and :pending (the same text lua/issue.lua writes), and strict
 * decoding of what comes back from Redis.
 */
#include "first.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "rkey.h"
#include "unit_main.h"

static void rkey_coupon_names_every_key_with_the_hash_tag(void)
{
    static const struct {
        enum rkey_kind kind;
        const char *want;
    } rows[] = {
        {RKEY_META, "coupon:{42}:meta"},       {RKEY_USERS, "coupon:{42}:users"},
        {RKEY_SEQ, "coupon:{42}:seq"},         {RKEY_FREE, "coupon:{42}:free"},
        {RKEY_PENDING, "coupon:{42}:pending"}, {RKEY_DOC, "coupon:{42}:doc"},
    };
    char buf[RKEY_MAX];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int n = rkey_coupon(buf, sizeof buf, rows[i].kind, 42);
        CU_ASSERT_EQUAL(n, (int)strlen(rows[i].want));
        CU_ASSERT_STRING_EQUAL(buf, rows[i].want);
    }
    /* The longest key fits RKEY_MAX; a smaller buffer is a limit, not a truncation. */
    CU_ASSERT_EQUAL(rkey_coupon(buf, sizeof buf, RKEY_PENDING, INT64_MAX),
                    (int)strlen("coupon:{9223372036854775807}:pending"));
    CU_ASSERT_EQUAL(rkey_coupon(buf, 10, RKEY_META, 42), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(rkey_coupon(buf, sizeof buf, RKEY_META, 0), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(rkey_coupon(buf, sizeof buf, (enum rkey_kind)99, 1), CP_ERR_INVALID);
}

static void rkey_issuance_round_trips_and_refuses_non_canonical_text(void)
{
    struct rkey_issuance v = {.sequence = 7, .issued_at_ms = 1764581234567}, back;
    char buf[RKEY_VALUE_MAX];
    int n = rkey_issuance_encode(&v, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "7:1764581234567"); /* what issue.lua writes */
    CU_ASSERT_EQUAL(rkey_issuance_decode(buf, (size_t)n, &back), CP_OK);
    CU_ASSERT_EQUAL(back.sequence, 7);
    CU_ASSERT_EQUAL(back.issued_at_ms, 1764581234567);
    static const char *const bad[] = {"",      ":",    "7",    "7:",    ":5",
                                      "0:5",   "07:5", "7:05", "-7:5",  "7:-5",
                                      "7:5:1", "7 :5", "7:5 ", "7:1e3", "9223372036854775808:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = rkey_issuance_decode(bad[i], strlen(bad[i]), &back);
        if (rc != CP_ERR_INVALID)
            fprintf(stderr, "\n  \"%s\" accepted\n", bad[i]);
        CU_ASSERT_EQUAL(rc, CP_ERR_INVALID);
    }
    CU_ASSERT_EQUAL(rkey_issuance_decode("7:0", 3, &back), CP_OK); /* time 0 is a time */
    CU_ASSERT_EQUAL(rkey_issuance_decode(NULL, 0, &back), CP_ERR_INVALID);
    v.sequence = 0;
    CU_ASSERT_EQUAL(rkey_issuance_encode(&v, buf, sizeof buf), CP_ERR_INVALID);
}

static void rkey_pending_round_trips_and_checks_the_event_id(void)
{
    struct rkey_pending v = {.event_id = "0123456789abcdef0123456789abcdef",
                             .sequence = 3,
                             .issued_at_ms = 99},
                        back;
    char buf[RKEY_VALUE_MAX];
    int n = rkey_pending_encode(&v, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "0123456789abcdef0123456789abcdef:3:99");
    CU_ASSERT_EQUAL(rkey_pending_decode(buf, (size_t)n, &back), CP_OK);
    CU_ASSERT_STRING_EQUAL(back.event_id, v.event_id);
    CU_ASSERT_EQUAL(back.sequence, 3);
    CU_ASSERT_EQUAL(back.issued_at_ms, 99);
    /* The largest value fits RKEY_VALUE_MAX. */
    v.sequence = INT64_MAX;
    v.issued_at_ms = INT64_MAX;
    n = rkey_pending_encode(&v, buf, sizeof buf);
    CU_ASSERT_EQUAL(n, (int)sizeof buf - 1);
    static const char *const bad[] = {
        "0123456789abcdef0123456789abcdef",        "0123456789abcdef0123456789abcdef:3",
        "0123456789ABCDEF0123456789abcdef:3:99",   "0123456789abcdef0123456789abcde:3:99",
        "0123456789abcdef0123456789abcdef0:3:99",  "0123456789abcdef0123456789abcdef:0:99",
        "0123456789abcdef0123456789abcdef:3:99:1", "g123456789abcdef0123456789abcdef:3:99"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = rkey_pending_decode(bad[i], strlen(bad[i]), &back);
        if (rc != CP_ERR_INVALID)
            fprintf(stderr, "\n  \"%s\" accepted\n", bad[i]);
        CU_ASSERT_EQUAL(rc, CP_ERR_INVALID);
    }
    memcpy(v.event_id, "not an event id", 16);
    CU_ASSERT_EQUAL(rkey_pending_encode(&v, buf, sizeof buf), CP_ERR_INVALID);
}

static void rkey_user_fields_are_ids(void)
{
    char buf[24];
    int64_t u = 0;
    CU_ASSERT_EQUAL(rkey_user_encode(INT64_MAX, buf, sizeof buf), 19);
    CU_ASSERT_EQUAL(rkey_user_decode(buf, 19, &u), CP_OK);
    CU_ASSERT_EQUAL(u, INT64_MAX);
    CU_ASSERT_EQUAL(rkey_user_decode("0", 1, &u), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(rkey_user_decode("012", 3, &u), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(rkey_user_encode(0, buf, sizeof buf), CP_ERR_INVALID);
}

static void rkey_meta_hset_builds_the_one_meta_write(void)
{
    struct rkey_meta_cmd cmd;
    CU_ASSERT_EQUAL(rkey_meta_hset(&cmd, 5, -1, 1000, 2000), 8);
    static const char *const want[] = {"HSET", "coupon:{5}:meta", "total", "-1", "start_ms",
                                       "1000", "end_ms",          "2000"};
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(cmd.argvlen[i], strlen(want[i]));
        CU_ASSERT_NSTRING_EQUAL(cmd.argv[i], want[i], cmd.argvlen[i]);
    }
    CU_ASSERT_EQUAL(rkey_meta_hset(&cmd, 5, -2, 1000, 2000), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(rkey_meta_hset(&cmd, 0, 1, 1000, 2000), CP_ERR_INVALID);
}

static void rkey_consumer_keys_share_one_hash_tag(void)
{
    char buf[RKEY_CONSUMER_KEY_MAX];
    int n = rkey_consumer_metrics(buf, sizeof buf, "host-12xyz", 7);
    CU_ASSERT_EQUAL(n, (int)strlen("coupon:metrics:{consumers}:host-12"));
    CU_ASSERT_STRING_EQUAL(buf, "coupon:metrics:{consumers}:host-12");
    /* The set and every hash: the tag {consumers}, so one MULTI/EXEC is one slot's. */
    CU_ASSERT_PTR_NOT_NULL(strstr(RKEY_CONSUMERS_SET, "{consumers}"));
    char longest[RKEY_INSTANCE_MAX];
    memset(longest, 'i', sizeof longest);
    CU_ASSERT(rkey_consumer_metrics(buf, sizeof buf, longest, sizeof longest) > 0);
    CU_ASSERT_EQUAL(rkey_consumer_metrics(buf, 20, "h", 1), CP_ERR_LIMIT);
}

static void rkey_change_decodes_every_type_and_refuses_the_rest(void)
{
    struct rkey_change c;
    const char *v = "H:1795548702000:1795548762000:shop:order-1.a_b";
    CU_ASSERT_EQUAL(rkey_change_decode("42:3", 4, v, strlen(v), &c), CP_OK);
    CU_ASSERT_EQUAL(c.user_id, 42);
    CU_ASSERT_EQUAL(c.version, 3);
    CU_ASSERT_EQUAL(c.type, RKEY_CHANGE_HELD);
    CU_ASSERT_EQUAL(c.at_ms, 1795548702000);
    CU_ASSERT_EQUAL(c.until_ms, 1795548762000);
    CU_ASSERT_STRING_EQUAL(c.order_id, "shop:order-1.a_b");
    const char *types = "RCHXL";
    for (size_t i = 0; types[i]; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%c:1:0:o", types[i]);
        CU_ASSERT_EQUAL(rkey_change_decode("9223372036854775807:1", 21, buf, strlen(buf), &c),
                        CP_OK);
        CU_ASSERT_EQUAL(c.type, (enum rkey_change_type)types[i]);
        CU_ASSERT_EQUAL(c.user_id, INT64_MAX);
    }
    static const char *const bad_values[] = {
        "",
        "R",
        "R:",
        "Q:1:0:o",
        "R:1:0:",
        "R:1:0",
        "R:01:0:o",
        "R:-1:0:o",
        "R:1:0:o/p",
        "R:1:0:o p",
        "R:1:0:12345678901234567890123456789012345678901234567890123456789012345",
    };
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++)
        CU_ASSERT_EQUAL(rkey_change_decode("1:1", 3, bad_values[i], strlen(bad_values[i]), &c),
                        CP_ERR_INVALID);
    static const char *const bad_fields[] = {"",    "1",    "1:",    ":1", "0:1",
                                             "1:0", "01:1", "1:1:1", "a:1"};
    for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++)
        CU_ASSERT_EQUAL(rkey_change_decode(bad_fields[i], strlen(bad_fields[i]), "R:1:0:o", 7, &c),
                        CP_ERR_INVALID);
    struct rkey_checkout_state st;
    const char *held = "3:H:1000:61000:cart:7";
    CU_ASSERT_EQUAL(rkey_checkout_state_decode(held, strlen(held), &st), CP_OK);
    CU_ASSERT_EQUAL(st.version, 3);
    CU_ASSERT_EQUAL(st.state, 'H');
    CU_ASSERT_EQUAL(st.until_ms, 61000);
    CU_ASSERT_STRING_EQUAL(st.order_id, "cart:7");
    CU_ASSERT_EQUAL(rkey_checkout_state_decode("4:F:5:0:", 8, &st), CP_OK); /* a cancel */
    CU_ASSERT_STRING_EQUAL(st.order_id, "");
    static const char *const bad_states[] = {"",        "1:R:5:0:",    "1:X:5:0:o", "01:R:5:0:o",
                                             "1:R:5:o", "1:H:5:0:o p", "R:5:0:o"};
    for (size_t i = 0; i < sizeof bad_states / sizeof bad_states[0]; i++)
        CU_ASSERT_EQUAL(rkey_checkout_state_decode(bad_states[i], strlen(bad_states[i]), &st),
                        CP_ERR_INVALID);
    char key[RKEY_MAX];
    CU_ASSERT(rkey_coupon(key, sizeof key, RKEY_RPENDING, INT64_MAX) > 0);
    CU_ASSERT_STRING_EQUAL(key, "coupon:{9223372036854775807}:rpending");
    CU_ASSERT(rkey_coupon(key, sizeof key, RKEY_REDEEM, 5) > 0);
    CU_ASSERT_STRING_EQUAL(key, "coupon:{5}:redeem");
    CU_ASSERT(rkey_coupon(key, sizeof key, RKEY_HOLDS, 5) > 0);
    CU_ASSERT_STRING_EQUAL(key, "coupon:{5}:holds");
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"rkey_change_decodes_every_type_and_refuses_the_rest",
         rkey_change_decodes_every_type_and_refuses_the_rest},
        {"rkey_coupon_names_every_key_with_the_hash_tag",
         rkey_coupon_names_every_key_with_the_hash_tag},
        {"rkey_issuance_round_trips_and_refuses_non_canonical_text",
         rkey_issuance_round_trips_and_refuses_non_canonical_text},
        {"rkey_pending_round_trips_and_checks_the_event_id",
         rkey_pending_round_trips_and_checks_the_event_id},
        {"rkey_user_fields_are_ids", rkey_user_fields_are_ids},
        {"rkey_meta_hset_builds_the_one_meta_write", rkey_meta_hset_builds_the_one_meta_write},
        {"rkey_consumer_keys_share_one_hash_tag", rkey_consumer_keys_share_one_hash_tag},
    };
    return unit_run_suite("rkey", NULL, UNIT_CASES(tests));
}
