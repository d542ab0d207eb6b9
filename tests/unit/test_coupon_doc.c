/*
 * test_coupon_doc.c - the admin API's body validation (fcgi-app/coupon_doc.c): what a
 * create or a patch accepts exactly, what it refuses and with which field named, and
 * that the served document round-trips the stored values. No server needed.
 */
#include "first.h"

#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "coupon_doc.h"
#include "cp_err.h"
#include "unit_main.h"

#define VALID_CREATE                                                              \
    "{\"title\":\"Flash\",\"couponType\":\"FIRST_COME_FIRST_SERVED\","            \
    "\"discountType\":\"PERCENTAGE\",\"discountValue\":10,\"totalQuantity\":100," \
    "\"startAt\":\"2026-01-01T00:00:00Z\",\"endAt\":\"2030-01-01T00:00:00Z\"}"

static int create(const char *body, struct coupon *c, const char **why)
{
    memset(c, 0, sizeof *c);
    *why = NULL;
    return coupon_doc_parse_create(body, strlen(body), c, why);
}

static void create_accepts_a_valid_body_exactly(void)
{
    struct coupon c;
    const char *why;
    CU_ASSERT_EQUAL_FATAL(create(VALID_CREATE, &c, &why), CP_OK);
    CU_ASSERT_STRING_EQUAL(c.title, "Flash");
    CU_ASSERT_STRING_EQUAL(c.coupon_type, "FIRST_COME_FIRST_SERVED");
    CU_ASSERT_STRING_EQUAL(c.discount_type, "PERCENTAGE");
    CU_ASSERT_EQUAL(c.total_quantity, 100);
    CU_ASSERT_EQUAL(c.start_ms, 1767225600000LL);
    CU_ASSERT_EQUAL(c.end_ms, 1893456000000LL);
    CU_ASSERT_FALSE(c.has_code);
}

static void create_refuses_each_bad_field_and_names_it(void)
{
    static const struct {
        const char *body, *field;
    } rows[] = {
        {"{}", "title"},
        {"{\"title\":\"x\"}", "couponType"},
        {"[1]", NULL},
        {"{\"title\":\"Flash\",\"couponType\":\"LOTTERY\",\"discountType\":\"PERCENTAGE\","
         "\"discountValue\":10,\"totalQuantity\":100,\"startAt\":\"2026-01-01T00:00:00Z\","
         "\"endAt\":\"2030-01-01T00:00:00Z\"}",
         "couponType"},
        {"{\"title\":\"Flash\",\"couponType\":\"FIRST_COME_FIRST_SERVED\",\"discountType\":"
         "\"PERCENTAGE\",\"discountValue\":101,\"totalQuantity\":100,\"startAt\":"
         "\"2026-01-01T00:00:00Z\",\"endAt\":\"2030-01-01T00:00:00Z\"}",
         "discountValue"},
        {"{\"title\":\"Flash\",\"couponType\":\"FIRST_COME_FIRST_SERVED\",\"discountType\":"
         "\"AMOUNT\",\"discountValue\":1.005,\"totalQuantity\":100,\"startAt\":"
         "\"2026-01-01T00:00:00Z\",\"endAt\":\"2030-01-01T00:00:00Z\"}",
         "discountValue"},
        {"{\"title\":\"Flash\",\"couponType\":\"FIRST_COME_FIRST_SERVED\",\"discountType\":"
         "\"PERCENTAGE\",\"discountValue\":10,\"startAt\":\"2026-01-01T00:00:00Z\","
         "\"endAt\":\"2030-01-01T00:00:00Z\"}",
         "totalQuantity"},
        {"{\"title\":\"Flash\",\"couponType\":\"FIRST_COME_FIRST_SERVED\",\"discountType\":"
         "\"PERCENTAGE\",\"discountValue\":10,\"totalQuantity\":0,\"startAt\":"
         "\"2026-01-01T00:00:00Z\",\"endAt\":\"2030-01-01T00:00:00Z\"}",
         "totalQuantity"},
        {"{\"title\":\"Flash\",\"couponType\":\"FIRST_COME_FIRST_SERVED\",\"discountType\":"
         "\"PERCENTAGE\",\"discountValue\":10,\"totalQuantity\":100,\"startAt\":"
         "\"2030-01-01T00:00:00Z\",\"endAt\":\"2026-01-01T00:00:00Z\"}",
         "startAt"},
        {"{\"title\":\"Flash\",\"couponType\":\"FIRST_COME_FIRST_SERVED\",\"discountType\":"
         "\"PERCENTAGE\",\"discountValue\":10,\"totalQuantity\":100,\"startAt\":"
         "\"1999-12-31T23:59:59Z\",\"endAt\":\"2030-01-01T00:00:00Z\"}",
         "startAt"},
        {"{\"title\":\"Flash\",\"couponType\":\"FIRST_COME_FIRST_SERVED\",\"discountType\":"
         "\"PERCENTAGE\",\"discountValue\":10,\"totalQuantity\":100,\"startAt\":"
         "\"2026-01-01T00:00:00Z\",\"endAt\":\"2030-01-01T00:00:00Z\",\"extra\":1}",
         "unknown member"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct coupon c;
        const char *why;
        int rc = create(rows[i].body, &c, &why);
        CU_ASSERT_EQUAL(rc, CP_ERR_INVALID);
        CU_ASSERT_PTR_NOT_NULL(why);
        if (rc != CP_ERR_INVALID || why == NULL ||
            (rows[i].field != NULL && strstr(why, rows[i].field) == NULL)) {
            fprintf(stderr, "\n  row %zu: rc %d, why \"%s\", want \"%s\"\n", i, rc,
                    why ? why : "(null)", rows[i].field ? rows[i].field : "-");
            CU_FAIL("wrong refusal");
        }
    }
}

static void patch_changes_only_what_it_names(void)
{
    struct coupon c;
    const char *why;
    CU_ASSERT_EQUAL_FATAL(create(VALID_CREATE, &c, &why), CP_OK);
    int total_changed = -1;
    const char *patch = "{\"title\":\"Flash 2\",\"totalQuantity\":200}";
    CU_ASSERT_EQUAL(coupon_doc_apply_patch(patch, strlen(patch), &c, &total_changed, &why), CP_OK);
    CU_ASSERT_STRING_EQUAL(c.title, "Flash 2");
    CU_ASSERT_EQUAL(c.total_quantity, 200);
    CU_ASSERT_EQUAL(total_changed, 1);
    CU_ASSERT_EQUAL(c.end_ms, 1893456000000LL);
    patch = "{\"endAt\":\"2031-01-01T00:00:00Z\"}";
    CU_ASSERT_EQUAL(coupon_doc_apply_patch(patch, strlen(patch), &c, &total_changed, &why), CP_OK);
    CU_ASSERT_EQUAL(total_changed, 0);
    static const char *const bad[] = {"{}",
                                      "{\"startAt\":\"2026-01-01T00:00:00Z\"}",
                                      "{\"endAt\":\"2025-01-01T00:00:00Z\"}",
                                      "{\"totalQuantity\":-5}",
                                      "{\"title\":\"\"}",
                                      "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct coupon before = c;
        int rc = coupon_doc_apply_patch(bad[i], strlen(bad[i]), &c, &total_changed, &why);
        if (rc != CP_ERR_INVALID)
            fprintf(stderr, "\n  patch %s accepted\n", bad[i]);
        CU_ASSERT_EQUAL(rc, CP_ERR_INVALID);
        if (memcmp(&before, &c, sizeof c) != 0)
            fprintf(stderr, "\n  refused patch %s changed the coupon\n", bad[i]);
        CU_ASSERT_EQUAL(memcmp(&before, &c, sizeof c), 0); /* a refused patch changes nothing */
    }
}

static void document_carries_the_stored_values(void)
{
    struct coupon c;
    const char *why;
    CU_ASSERT_EQUAL_FATAL(create(VALID_CREATE, &c, &why), CP_OK);
    c.id = 9;
    char buf[CP_DOC_MAX_BYTES];
    int n = coupon_doc_write(&c, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"id\":9"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"totalQuantity\":100"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"startAt\":\"2026-01-01T00:00:00.000Z\""));
    CU_ASSERT_EQUAL(coupon_doc_write(&c, buf, 16), CP_ERR_LIMIT);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"create_accepts_a_valid_body_exactly", create_accepts_a_valid_body_exactly},
        {"create_refuses_each_bad_field_and_names_it", create_refuses_each_bad_field_and_names_it},
        {"patch_changes_only_what_it_names", patch_changes_only_what_it_names},
        {"document_carries_the_stored_values", document_carries_the_stored_values},
    };
    return unit_run_suite("coupon_doc", NULL, UNIT_CASES(tests));
}
