/*
 * test_validate.c - the validation endpoint's pure parts (fcgi-app/validate): the
 * strict body (exactly one of code and couponId, orderAmount a string amount) and the
 * order of the reasons.
 */
#include "first.h"

#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "money.h"
#include "unit_main.h"
#include "validate.h"

static void validate_body_takes_one_reference_and_a_string_amount(void)
{
    struct validate_body b;
    const char *why = NULL;
    const char *by_id = "{\"couponId\":7,\"orderAmount\":\"12.50\"}";
    CU_ASSERT_EQUAL(validate_parse_body(by_id, strlen(by_id), &b, &why), CP_OK);
    CU_ASSERT_EQUAL(b.coupon_id, 7);
    CU_ASSERT_STRING_EQUAL(b.code, "");
    CU_ASSERT_STRING_EQUAL(b.amount, "12.50");
    const char *by_code = "{\"code\":\"w185-1y4x-djqw\",\"orderAmount\":\"0\"}";
    CU_ASSERT_EQUAL(validate_parse_body(by_code, strlen(by_code), &b, &why), CP_OK);
    CU_ASSERT_STRING_EQUAL(b.code, "W1851Y4XDJQW");
    CU_ASSERT_EQUAL(b.coupon_id, 0);
    static const struct {
        const char *body;
        int rc;
    } bad[] = {
        {"", CP_ERR_INVALID},
        {"[]", CP_ERR_INVALID},
        {"{\"orderAmount\":\"1\"}", CP_ERR_INVALID},
        {"{\"couponId\":7,\"code\":\"W1851Y4XDJQW\",\"orderAmount\":\"1\"}", CP_ERR_INVALID},
        {"{\"couponId\":0,\"orderAmount\":\"1\"}", CP_ERR_INVALID},
        {"{\"couponId\":\"7\",\"orderAmount\":\"1\"}", CP_ERR_INVALID},
        {"{\"couponId\":7,\"orderAmount\":\"1\",\"x\":1}", CP_ERR_INVALID},
        {"{\"code\":\"UUUUUUUUUUUU\",\"orderAmount\":\"1\"}", CP_ERR_INVALID},
        {"{\"couponId\":7}", CP_ERR_BAD_AMOUNT},
        {"{\"couponId\":7,\"orderAmount\":12.5}", CP_ERR_BAD_AMOUNT},
        {"{\"couponId\":7,\"orderAmount\":null}", CP_ERR_BAD_AMOUNT},
        {"{\"couponId\":7,\"orderAmount\":\"-1\"}", CP_ERR_BAD_AMOUNT},
        {"{\"couponId\":7,\"orderAmount\":\"1.0001\"}", CP_ERR_BAD_AMOUNT},
        {"{\"couponId\":7,\"orderAmount\":\"1000000000000\"}", CP_ERR_BAD_AMOUNT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        CU_ASSERT_EQUAL(validate_parse_body(bad[i].body, strlen(bad[i].body), &b, &why), bad[i].rc);
        CU_ASSERT_PTR_NOT_NULL(why);
    }
}

static void validate_reasons_come_in_their_documented_order(void)
{
    const int64_t now = 1000000;
    struct validate_issuance none = {.usable_until_ms = -1},
                             fresh = {.issued = 1, .usable_until_ms = -1},
                             used = {.issued = 1, .redeemed = 1, .usable_until_ms = now - 1},
                             past = {.issued = 1, .usable_until_ms = now},
                             later = {.issued = 1, .usable_until_ms = now + 1},
                             held = {.issued = 1, .held = 1, .usable_until_ms = now + 1},
                             held_past = {.issued = 1, .held = 1, .usable_until_ms = now};
    /* a hold comes after the issuance's own state, before the order's */
    CU_ASSERT_EQUAL(validate_decide(&held, -1, now, MONEY_BELOW_MINIMUM), VALIDATE_HELD);
    CU_ASSERT_EQUAL(validate_decide(&held_past, -1, now, MONEY_APPLIES), VALIDATE_EXPIRED);
    CU_ASSERT_EQUAL(validate_decide(&none, now - 1, now, MONEY_BELOW_MINIMUM), VALIDATE_NOT_ISSUED);
    CU_ASSERT_EQUAL(validate_decide(&used, -1, now, MONEY_BELOW_MINIMUM),
                    VALIDATE_ALREADY_REDEEMED);
    CU_ASSERT_EQUAL(validate_decide(&past, -1, now, MONEY_BELOW_MINIMUM), VALIDATE_EXPIRED);
    CU_ASSERT_EQUAL(validate_decide(&fresh, now, now, MONEY_APPLIES), VALIDATE_EXPIRED);
    CU_ASSERT_EQUAL(validate_decide(&later, now + 1, now, MONEY_BELOW_MINIMUM),
                    VALIDATE_BELOW_MINIMUM);
    CU_ASSERT_EQUAL(validate_decide(&later, -1, now, MONEY_APPLIES), VALIDATE_OK);
    CU_ASSERT_PTR_NULL(validate_reason_code(VALIDATE_OK));
    CU_ASSERT_STRING_EQUAL(validate_reason_code(VALIDATE_NOT_ISSUED), "COUPON_NOT_ISSUED");
    CU_ASSERT_STRING_EQUAL(validate_reason_code(VALIDATE_ALREADY_REDEEMED),
                           "COUPON_ALREADY_REDEEMED");
    CU_ASSERT_STRING_EQUAL(validate_reason_code(VALIDATE_EXPIRED), "COUPON_EXPIRED");
    CU_ASSERT_STRING_EQUAL(validate_reason_code(VALIDATE_HELD), "COUPON_HELD");
    CU_ASSERT_STRING_EQUAL(validate_reason_code(VALIDATE_BELOW_MINIMUM), "ORDER_BELOW_MINIMUM");
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"validate_body_takes_one_reference_and_a_string_amount",
         validate_body_takes_one_reference_and_a_string_amount},
        {"validate_reasons_come_in_their_documented_order",
         validate_reasons_come_in_their_documented_order},
    };
    return unit_run_suite("validate", NULL, UNIT_CASES(tests));
}
