/*
 * test_redemption_store.c - fcgi-app/redemption_store over the scripted fake
 * (db_fake.h): the code look-up's one, none and two rows, a row of another code, a
 * code of the wrong length. (The redemption transactions moved to the consumer's
 * applier with issue 26: test_checkout_store.)
 */
#include "first.h"

#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "db.h"
#include "db_fake.h"
#include "redemption_store.h"
#include "unit_main.h"

static const char code_sql[] = "SELECT CAST(coupon_id AS SIGNED), CAST(user_id AS SIGNED), code "
                               "FROM coupon_issue WHERE code = ? LIMIT 2";

static struct db *db;

static void fresh(void)
{
    db_free(db);
    fake_reset();
    db = fake_db();
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
}

static void find_code_answers_one_none_or_two_rows(void)
{
    fresh();
    int64_t cid = 0, uid = 0;
    fake_rows(code_sql, (const char *[]){"4|8|ABCDEFGHJKMN", NULL});
    CU_ASSERT_EQUAL(redemption_store_find_code(db, "ABCDEFGHJKMN", &cid, &uid), CP_OK);
    CU_ASSERT_EQUAL(cid, 4);
    CU_ASSERT_EQUAL(uid, 8);
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(code_sql), " <- 'ABCDEFGHJKMN'");
    fake_rows(code_sql, (const char *[]){NULL});
    CU_ASSERT_EQUAL(redemption_store_find_code(db, "ABCDEFGHJKMN", &cid, &uid), CP_ERR_NOT_FOUND);
    fake_rows(code_sql, (const char *[]){"4|8|ABCDEFGHJKMN", "5|9|ABCDEFGHJKMN", NULL});
    CU_ASSERT_EQUAL(redemption_store_find_code(db, "ABCDEFGHJKMN", &cid, &uid), CP_ERR_CONFLICT);
    /* A row whose code differs (the index compared bytes another way) is no match. */
    fake_rows(code_sql, (const char *[]){"4|8|ABCDEFGHJKMP", NULL});
    CU_ASSERT_EQUAL(redemption_store_find_code(db, "ABCDEFGHJKMN", &cid, &uid), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(redemption_store_find_code(db, "SHORT", &cid, &uid), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"find_code_answers_one_none_or_two_rows", find_code_answers_one_none_or_two_rows},
    };
    int rc = unit_run_suite("redemption_store", NULL, UNIT_CASES(tests));
    db_free(db);
    fake_reset();
    return rc;
}
