/*
 * test_redemption_store.c - fcgi-app/redemption_store's transactions over the
 * scripted fake (db_fake.h): the winner's UPDATE, read and outbox INSERT in one
 * COMMIT; a loser's ROLLBACK and the read that says why; a deadlock running the
 * whole transaction again; a connection lost mid-transaction committing
 * nothing; the code look-up's one, none and two rows.
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

static const char redeem_sql[] =
    "UPDATE coupon_issue SET used_at = FROM_UNIXTIME(? / 1000), redeemed_order_id = ? "
    "WHERE coupon_id = ? AND user_id = ? AND used_at IS NULL "
    "AND (usable_until IS NULL OR usable_until > FROM_UNIXTIME(? / 1000))";
static const char cancel_sql[] = "UPDATE coupon_issue SET used_at = NULL, redeemed_order_id = NULL "
                                 "WHERE coupon_id = ? AND user_id = ? AND redeemed_order_id = ?";
static const char read_sql[] =
    "SELECT " COUPON_STORE_ISSUANCE_COLUMNS ", c.discount_type, CAST(c.discount_value AS CHAR), "
    "COALESCE(c.currency, '') "
    "FROM coupon_issue ci JOIN coupon c ON c.id = ci.coupon_id "
    "WHERE ci.coupon_id = ? AND ci.user_id = ?";
static const char outbox_sql[] =
    "INSERT INTO event_outbox (topic, msg_key, payload) VALUES (?, ?, ?)";
static const char code_sql[] = "SELECT CAST(coupon_id AS SIGNED), CAST(user_id AS SIGNED), code "
                               "FROM coupon_issue WHERE code = ? LIMIT 2";

/* The row after a redemption by order-1 at 5000, and before any. */
static const char *const redeemed_row[] = {"3|1000|5000|-1|ABCDEFGHJKMN|order-1|AMOUNT|10.00|",
                                           NULL};
static const char *const free_row[] = {"3|1000|-1|-1|ABCDEFGHJKMN||AMOUNT|10.00|", NULL};

static struct db *db;

static void fresh(void)
{
    db_free(db);
    fake_reset();
    db = fake_db();
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
}

static int redeem(enum redeem_outcome *o, struct redemption *red)
{
    return redemption_store_redeem(db, "redemptions", 4, 8, "order-1", 5000, o, red);
}

static void a_won_redemption_commits_the_row_and_its_event(void)
{
    fresh();
    fake_ok(redeem_sql, 1, 0);
    fake_rows(read_sql, redeemed_row);
    fake_ok(outbox_sql, 1, 0);
    enum redeem_outcome o = REDEEM_NO_ROW;
    struct redemption red;
    CU_ASSERT_EQUAL_FATAL(redeem(&o, &red), CP_OK);
    CU_ASSERT_EQUAL(o, REDEEM_NEW);
    CU_ASSERT_EQUAL(red.is.used_ms, 5000);
    CU_ASSERT_STRING_EQUAL(red.discount_value, "10.00");
    CU_ASSERT_STRING_EQUAL(fake.log[1], "begin");
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(redeem_sql), " <- 5000,'order-1',4,8,5000");
    CU_ASSERT_STRING_EQUAL(fake_exec(1) + 5 + strlen(read_sql), " <- 4,8");
    const char *ev = fake_exec(2);
    CU_ASSERT_EQUAL(strncmp(ev + 5 + strlen(outbox_sql), " <- 'redemptions','4','{", 24), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "\"orderId\":\"order-1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(ev, "coupon.redeemed"));
    CU_ASSERT_STRING_EQUAL(fake.log[fake.nlog - 2], "commit");
    CU_ASSERT_STRING_EQUAL(fake.log[fake.nlog - 1], "autocommit");
    CU_ASSERT_EQUAL(fake_count("rollback"), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_lost_redemption_rolls_back_and_the_row_says_why(void)
{
    fresh();
    enum redeem_outcome o;
    struct redemption red;
    /* Redeemed by this order already: a replay. */
    fake_ok(redeem_sql, 0, 0);
    fake_rows(read_sql, redeemed_row);
    CU_ASSERT_EQUAL(redeem(&o, &red), CP_OK);
    CU_ASSERT_EQUAL(o, REDEEM_REPLAY);
    CU_ASSERT_EQUAL(fake_count("rollback"), 1);
    CU_ASSERT_EQUAL(fake_count("commit"), 0);
    /* By another order. */
    fake_ok(redeem_sql, 0, 0);
    fake_rows(read_sql,
              (const char *[]){"3|1000|4000|-1|ABCDEFGHJKMN|order-2|AMOUNT|10.00|", NULL});
    CU_ASSERT_EQUAL(redeem(&o, &red), CP_OK);
    CU_ASSERT_EQUAL(o, REDEEM_CONFLICT);
    /* Not redeemed, past usable_until. */
    fake_ok(redeem_sql, 0, 0);
    fake_rows(read_sql, (const char *[]){"3|1000|-1|5000|ABCDEFGHJKMN||AMOUNT|10.00|", NULL});
    CU_ASSERT_EQUAL(redeem(&o, &red), CP_OK);
    CU_ASSERT_EQUAL(o, REDEEM_EXPIRED);
    /* No row. */
    fake_ok(redeem_sql, 0, 0);
    fake_rows(read_sql, (const char *[]){NULL});
    CU_ASSERT_EQUAL(redeem(&o, &red), CP_OK);
    CU_ASSERT_EQUAL(o, REDEEM_NO_ROW);
    CU_ASSERT_EQUAL(fake_count("exec INSERT"), 0);
    CU_ASSERT_EQUAL(fake_count("exec"), 8);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_deadlock_runs_the_redemption_again_from_its_update(void)
{
    fresh();
    fake_ok(redeem_sql, 1, 0);
    fake_rows(read_sql, redeemed_row);
    fake_fail(outbox_sql, FAKE_ER_DEADLOCK);
    fake_ok(redeem_sql, 1, 0);
    fake_rows(read_sql, redeemed_row);
    fake_ok(outbox_sql, 1, 0);
    enum redeem_outcome o;
    struct redemption red;
    CU_ASSERT_EQUAL(redeem(&o, &red), CP_OK);
    CU_ASSERT_EQUAL(o, REDEEM_NEW);
    CU_ASSERT_EQUAL(fake_count("begin"), 2);
    CU_ASSERT_EQUAL(fake_count("rollback"), 1);
    CU_ASSERT_EQUAL(fake_count("commit"), 1);
    CU_ASSERT_EQUAL(fake_count("exec"), 6);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_connection_lost_mid_redemption_commits_nothing(void)
{
    fresh();
    fake_ok(redeem_sql, 1, 0);
    fake_fail(read_sql, FAKE_CR_SERVER_LOST);
    enum redeem_outcome o;
    struct redemption red;
    CU_ASSERT_EQUAL(redeem(&o, &red), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fake_count("commit"), 0);
    CU_ASSERT_EQUAL(fake_count("exec"), 2);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
    CU_ASSERT_EQUAL(fake_pending(), 0);
}

static void a_cancel_between_the_two_statements_runs_the_redemption_again(void)
{
    fresh();
    fake_ok(redeem_sql, 0, 0); /* lost to a redemption that a cancel then undid */
    fake_rows(read_sql, free_row);
    fake_ok(redeem_sql, 1, 0);
    fake_rows(read_sql, redeemed_row);
    fake_ok(outbox_sql, 1, 0);
    enum redeem_outcome o;
    struct redemption red;
    CU_ASSERT_EQUAL(redeem(&o, &red), CP_OK);
    CU_ASSERT_EQUAL(o, REDEEM_NEW);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void cancel_commits_its_event_or_says_why_not(void)
{
    fresh();
    enum cancel_outcome o;
    fake_ok(cancel_sql, 1, 0);
    fake_rows(read_sql, free_row);
    fake_ok(outbox_sql, 1, 0);
    CU_ASSERT_EQUAL(redemption_store_cancel(db, "redemptions", 4, 8, "order-1", 6000, &o), CP_OK);
    CU_ASSERT_EQUAL(o, CANCEL_DONE);
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(cancel_sql), " <- 4,8,'order-1'");
    CU_ASSERT_PTR_NOT_NULL(strstr(fake_exec(2), "coupon.redemption_cancelled"));
    fake_ok(cancel_sql, 0, 0);
    fake_rows(read_sql, free_row);
    CU_ASSERT_EQUAL(redemption_store_cancel(db, "redemptions", 4, 8, "order-1", 6000, &o), CP_OK);
    CU_ASSERT_EQUAL(o, CANCEL_NOOP);
    fake_ok(cancel_sql, 0, 0);
    fake_rows(read_sql, redeemed_row);
    CU_ASSERT_EQUAL(redemption_store_cancel(db, "redemptions", 4, 8, "order-9", 6000, &o), CP_OK);
    CU_ASSERT_EQUAL(o, CANCEL_MISMATCH);
    CU_ASSERT_EQUAL(fake_count("commit"), 1);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
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
        {"a_won_redemption_commits_the_row_and_its_event",
         a_won_redemption_commits_the_row_and_its_event},
        {"a_lost_redemption_rolls_back_and_the_row_says_why",
         a_lost_redemption_rolls_back_and_the_row_says_why},
        {"a_deadlock_runs_the_redemption_again_from_its_update",
         a_deadlock_runs_the_redemption_again_from_its_update},
        {"a_connection_lost_mid_redemption_commits_nothing",
         a_connection_lost_mid_redemption_commits_nothing},
        {"a_cancel_between_the_two_statements_runs_the_redemption_again",
         a_cancel_between_the_two_statements_runs_the_redemption_again},
        {"cancel_commits_its_event_or_says_why_not", cancel_commits_its_event_or_says_why_not},
        {"find_code_answers_one_none_or_two_rows", find_code_answers_one_none_or_two_rows},
    };
    int rc = unit_run_suite("redemption_store", NULL, UNIT_CASES(tests));
    db_free(db);
    fake_reset();
    return rc;
}
