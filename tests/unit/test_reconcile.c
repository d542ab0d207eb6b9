/*
 * test_reconcile.c - the reconciler's MariaDB side over the scripted fake
 * (db_fake.h): its reads (consumer/issue_lookup) and its lock
 * (consumer/leader: held, taken by another session, lost with its
 * connection and taken again on the next). Its Redis and Kafka side is
 * covered by tests/integration/test_faults.py.
 */
#include "first.h"

#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "db.h"
#include "db_fake.h"
#include "issue_lookup.h"
#include "leader.h"
#include "unit_main.h"

static const char exists_sql[] =
    "SELECT COUNT(*), 0 FROM coupon_issue WHERE coupon_id = ? AND user_id = ?";
static const char recent_sql[] = "SELECT CAST(id AS SIGNED), 0 FROM coupon WHERE end_at > "
                                 "UTC_TIMESTAMP() - INTERVAL 7 DAY ORDER BY id DESC LIMIT ?";
static const char check_sql[] = "SELECT IF(IS_USED_LOCK(?) = CONNECTION_ID(), 1, GET_LOCK(?, 0))";

static void a_row_exists_or_not_or_mariadb_is_down(void)
{
    fake_reset();
    struct db *db = fake_db();
    fake_rows(exists_sql, (const char *[]){"1|0", NULL});
    fake_rows(exists_sql, (const char *[]){"0|0", NULL});
    fake_fail(exists_sql, FAKE_CR_SERVER_LOST);
    CU_ASSERT_EQUAL(issue_lookup_exists(db, 4, 8), 1);
    CU_ASSERT_EQUAL(issue_lookup_exists(db, 4, 9), 0);
    CU_ASSERT_EQUAL(issue_lookup_exists(db, 4, 10), CP_ERR_UNAVAILABLE);
    CU_ASSERT_STRING_EQUAL(fake_exec(1) + 5 + strlen(exists_sql), " <- 4,9");
    CU_ASSERT_EQUAL(fake.unexpected, 0);
    db_free(db);
}

static void recent_coupons_are_read_up_to_the_cap(void)
{
    fake_reset();
    struct db *db = fake_db();
    int64_t ids[2] = {0, 0};
    size_t n = 0;
    fake_rows(recent_sql, (const char *[]){"9|0", "7|0", "3|0", NULL});
    CU_ASSERT_EQUAL(issue_lookup_recent_coupons(db, ids, 2, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(ids[0], 9);
    CU_ASSERT_EQUAL(ids[1], 7);
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(recent_sql), " <- 2");
    fake_fail(recent_sql, 1146);
    CU_ASSERT_EQUAL(issue_lookup_recent_coupons(db, ids, 2, &n), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(n, 0);
    db_free(db);
}

static void the_lock_is_held_lost_with_its_connection_and_taken_again(void)
{
    fake_reset();
    struct db *db = fake_db();
    struct leader *l = leader_new(db, "coupon_reconciler", "reconciler");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    fake_rows(check_sql, (const char *[]){"0", NULL});
    fake_rows(check_sql, (const char *[]){"1", NULL});
    fake_rows(check_sql, (const char *[]){"1", NULL});
    fake_fail(check_sql, FAKE_CR_SERVER_LOST);
    fake_rows(check_sql, (const char *[]){"NULL", NULL});
    fake_rows(check_sql, (const char *[]){"1", NULL});
    CU_ASSERT_EQUAL(leader_check(l), 0); /* another session holds it */
    CU_ASSERT_EQUAL(leader_check(l), 1);
    CU_ASSERT_EQUAL(leader_check(l), 1);
    CU_ASSERT_EQUAL(leader_check(l), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fake.open_conns, 0); /* the lock went with the connection */
    CU_ASSERT_EQUAL(leader_check(l), 0);
    CU_ASSERT_EQUAL(leader_check(l), 1);
    CU_ASSERT_EQUAL(fake.connects, 2);
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(check_sql),
                           " <- 'coupon_reconciler','coupon_reconciler'");
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
    leader_free(l);
    db_free(db);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
}

static void a_lock_name_over_mariadbs_limit_is_refused(void)
{
    fake_reset();
    char name[80];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    struct db *db = fake_db();
    CU_ASSERT_PTR_NULL(leader_new(db, name, "test"));
    db_free(db);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"a_row_exists_or_not_or_mariadb_is_down", a_row_exists_or_not_or_mariadb_is_down},
        {"recent_coupons_are_read_up_to_the_cap", recent_coupons_are_read_up_to_the_cap},
        {"the_lock_is_held_lost_with_its_connection_and_taken_again",
         the_lock_is_held_lost_with_its_connection_and_taken_again},
        {"a_lock_name_over_mariadbs_limit_is_refused", a_lock_name_over_mariadbs_limit_is_refused},
    };
    int rc = unit_run_suite("reconcile", NULL, UNIT_CASES(tests));
    fake_reset();
    return rc;
}
