/*
 * test_checkout_plan.c - consumer/checkout_plan: which pending checkout changes are
 * applied, dropped as applied before, or left waiting - exactly, for redeliveries,
 * gaps, rows not yet persisted and several issuances at once.
 */
#include "first.h"

#include <string.h>

#include <CUnit/Basic.h>

#include "checkout_plan.h"
#include "unit_main.h"

static struct planned_change change(int64_t user, int64_t version, char type)
{
    struct planned_change c;
    memset(&c, 0, sizeof c);
    c.change.user_id = user;
    c.change.version = version;
    c.change.type = (enum rkey_change_type)type;
    strcpy(c.change.order_id, "o");
    return c;
}

static void plan_sorts_by_user_then_version_and_lists_users(void)
{
    struct planned_change c[] = {change(9, 2, 'R'), change(3, 1, 'H'), change(9, 1, 'H'),
                                 change(3, 2, 'X'), change(5, 1, 'R')};
    int64_t users[5];
    size_t nu = checkout_plan_sort(c, 5, users);
    CU_ASSERT_EQUAL(nu, 3);
    CU_ASSERT_EQUAL(users[0], 3);
    CU_ASSERT_EQUAL(users[1], 5);
    CU_ASSERT_EQUAL(users[2], 9);
    static const int64_t want[5][2] = {{3, 1}, {3, 2}, {5, 1}, {9, 1}, {9, 2}};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(c[i].change.user_id, want[i][0]);
        CU_ASSERT_EQUAL(c[i].change.version, want[i][1]);
    }
}

static void plan_applies_the_next_versions_in_order(void)
{
    struct planned_change c[] = {change(1, 3, 'C'), change(1, 2, 'R'), change(1, 1, 'H')};
    int64_t users[3];
    size_t nu = checkout_plan_sort(c, 3, users);
    struct plan_row rows[] = {{1, 1, 100, 7, 0}};
    CU_ASSERT_EQUAL(checkout_plan_mark(c, 3, rows, nu), 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(c[i].action, CHANGE_APPLY);
        CU_ASSERT_EQUAL(c[i].row_id, 100);
        CU_ASSERT_EQUAL(c[i].sequence, 7);
    }
}

static void plan_drops_what_is_applied_and_waits_behind_a_gap(void)
{
    /* user 1 stored at version 2: 1 and 2 are duplicates, 3 applies, 5 waits (4 missing) */
    struct planned_change c[] = {change(1, 1, 'H'), change(1, 2, 'R'), change(1, 3, 'C'),
                                 change(1, 5, 'R')};
    int64_t users[4];
    size_t nu = checkout_plan_sort(c, 4, users);
    struct plan_row rows[] = {{1, 1, 100, 7, 2}};
    CU_ASSERT_EQUAL(checkout_plan_mark(c, 4, rows, nu), 1);
    CU_ASSERT_EQUAL(c[0].action, CHANGE_DUPLICATE);
    CU_ASSERT_EQUAL(c[1].action, CHANGE_DUPLICATE);
    CU_ASSERT_EQUAL(c[2].action, CHANGE_APPLY);
    CU_ASSERT_EQUAL(c[3].action, CHANGE_WAIT);
}

static void plan_waits_for_an_issuance_not_yet_persisted(void)
{
    struct planned_change c[] = {change(2, 1, 'R'), change(4, 1, 'R'), change(2, 2, 'C')};
    int64_t users[3];
    size_t nu = checkout_plan_sort(c, 3, users);
    CU_ASSERT_EQUAL(nu, 2);
    struct plan_row rows[] = {{2, 0, 0, 0, 0}, {4, 1, 400, 1, 0}};
    CU_ASSERT_EQUAL(checkout_plan_mark(c, 3, rows, nu), 1);
    CU_ASSERT_EQUAL(c[0].action, CHANGE_WAIT); /* user 2, v1 */
    CU_ASSERT_EQUAL(c[1].action, CHANGE_WAIT); /* user 2, v2 */
    CU_ASSERT_EQUAL(c[2].action, CHANGE_APPLY);
    CU_ASSERT_EQUAL(c[2].row_id, 400);
    /* a user missing from rows altogether waits too */
    CU_ASSERT_EQUAL(checkout_plan_mark(c, 3, rows + 1, 1), 1);
    CU_ASSERT_EQUAL(c[0].action, CHANGE_WAIT);
}

static void plan_marks_again_from_scratch(void)
{
    /* db_tx runs the plan again after a deadlock: the second run must not count the
     * first run's applications as stored */
    struct planned_change c[] = {change(1, 1, 'R')};
    int64_t users[1];
    size_t nu = checkout_plan_sort(c, 1, users);
    struct plan_row rows[] = {{1, 1, 10, 1, 0}};
    CU_ASSERT_EQUAL(checkout_plan_mark(c, 1, rows, nu), 1);
    CU_ASSERT_EQUAL(checkout_plan_mark(c, 1, rows, nu), 1);
    CU_ASSERT_EQUAL(c[0].action, CHANGE_APPLY);
    CU_ASSERT_EQUAL(checkout_plan_mark(c, 0, rows, nu), 0);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"plan_sorts_by_user_then_version_and_lists_users",
         plan_sorts_by_user_then_version_and_lists_users},
        {"plan_applies_the_next_versions_in_order", plan_applies_the_next_versions_in_order},
        {"plan_drops_what_is_applied_and_waits_behind_a_gap",
         plan_drops_what_is_applied_and_waits_behind_a_gap},
        {"plan_waits_for_an_issuance_not_yet_persisted",
         plan_waits_for_an_issuance_not_yet_persisted},
        {"plan_marks_again_from_scratch", plan_marks_again_from_scratch},
    };
    return unit_run_suite("checkout_plan", NULL, UNIT_CASES(tests));
}
