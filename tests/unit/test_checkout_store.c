/*
 * test_checkout_store.c - the checkout applier's MariaDB side (consumer/checkout_store)
 * over the scripted fake (db_fake.h): the exact statements and values of a redeem, a
 * hold, a release, a lapse and a cancel with their coupon.redemption outbox rows;
 * several versions of one issuance in order in one transaction; a row not persisted
 * yet and a version applied before writing nothing; a deadlock running the
 * transaction again from its start; a connection lost mid-transaction committing
 * nothing; an UPDATE another applier raced rolled back; the recent coupons. The Redis
 * side (credis_checkout) is tests/unit/test_credis_checkout.c; both together against
 * real servers are tests/integration/test_checkout.py.
 */
#include "first.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "checkout_store.h"
#include "cp_err.h"
#include "db.h"
#include "db_fake.h"
#include "unit_main.h"

static const char row_sql[] = "SELECT CAST(id AS SIGNED), CAST(sequence AS SIGNED), "
                              "CAST(checkout_version AS SIGNED) FROM coupon_issue "
                              "WHERE coupon_id = ? AND user_id = ? FOR UPDATE";
static const char apply_sql[] =
    "UPDATE coupon_issue SET used_at = FROM_UNIXTIME(? / 1000), redeemed_order_id = ?, "
    "hold_order_id = ?, hold_expires_at = FROM_UNIXTIME(? / 1000), checkout_version = ? "
    "WHERE id = ? AND checkout_version = ?";
static const char outbox_sql[] =
    "INSERT INTO event_outbox (topic, msg_key, payload) VALUES (?, ?, ?)";
static const char coupons_sql[] = "SELECT CAST(id AS SIGNED) FROM coupon ORDER BY id DESC LIMIT ?";

#define COUPON 42
#define AT     1700000000000LL /* 2023-11-14T22:13:20.000Z */
#define UNTIL  1700000600000LL /* 2023-11-14T22:23:20.000Z */

static struct db *db;
static struct checkout_store *s;

static void fresh(void)
{
    checkout_store_free(s);
    db_free(db);
    fake_reset();
    db = fake_db();
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    s = checkout_store_new(db, "coupon.redemption", 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
}

static struct planned_change rec(int64_t user, int64_t version, char type, const char *order)
{
    struct planned_change c;
    memset(&c, 0, sizeof c);
    c.change.user_id = user;
    c.change.version = version;
    c.change.type = (enum rkey_change_type)type;
    c.change.at_ms = AT + version;
    c.change.until_ms = UNTIL;
    snprintf(c.change.order_id, sizeof c.change.order_id, "%s", order);
    return c;
}

/* The log as names: "begin lock update outbox commit autocommit" (prepares left out). */
static const char *trace(void)
{
    static const struct {
        const char *sql, *name;
    } names[] = {
        {row_sql, "lock"}, {apply_sql, "update"}, {outbox_sql, "outbox"}, {coupons_sql, "coupons"}};
    static char buf[4096];
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < fake.nlog && off < sizeof buf; i++) {
        const char *line = fake.log[i], *word = line;
        if (strncmp(line, "prepare ", 8) == 0)
            continue;
        if (strncmp(line, "exec ", 5) == 0) {
            word = "exec?";
            for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
                if (strncmp(line + 5, names[k].sql, strlen(names[k].sql)) == 0)
                    word = names[k].name;
        }
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", off ? " " : "", word);
    }
    return buf;
}

/* The values bound to the k-th execute of sql ("" when there are fewer). */
static const char *bound(const char *sql, int k)
{
    for (int i = 0;; i++) {
        const char *e = fake_exec(i);
        if (*e == '\0')
            return "";
        if (strncmp(e + 5, sql, strlen(sql)) == 0 && strncmp(e + 5 + strlen(sql), " <- ", 4) == 0 &&
            k-- == 0)
            return e + 5 + strlen(sql) + 4;
    }
}

static void row(const char *cols)
{
    fake_rows(row_sql, (const char *[]){cols, NULL});
}

static void no_row(void)
{
    fake_rows(row_sql, (const char *[]){NULL});
}

/* One change's statements: its row (cols), the UPDATE, the outbox INSERT failing with
 * outbox_err (0: succeeding). */
static void script_one(const char *cols, unsigned outbox_err)
{
    row(cols);
    fake_ok(apply_sql, 1, 0);
    if (outbox_err != 0)
        fake_fail(outbox_sql, outbox_err);
    else
        fake_ok(outbox_sql, 1, 900);
}

static void one_change_is_applied(char type, const char *want_update, const char *want_payload)
{
    fresh();
    struct planned_change c[1] = {rec(7, 3, type, "order-1")};
    script_one("100|5|2", 0);
    struct checkout_store_counts k;
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 1, &k), CP_OK);
    CU_ASSERT_STRING_EQUAL(trace(), "connect begin lock update outbox commit autocommit");
    CU_ASSERT_STRING_EQUAL(bound(row_sql, 0), "42,7");
    CU_ASSERT_STRING_EQUAL(bound(apply_sql, 0), want_update);
    char want[1200];
    snprintf(want, sizeof want, "'coupon.redemption','42','%s'", want_payload);
    CU_ASSERT_STRING_EQUAL(bound(outbox_sql, 0), want);
    CU_ASSERT_EQUAL(k.applied, 1);
    CU_ASSERT_EQUAL(k.duplicates + k.waiting, 0);
    CU_ASSERT_EQUAL(c[0].action, CHANGE_APPLY);
    CU_ASSERT_EQUAL(c[0].row_id, 100);
    CU_ASSERT_EQUAL(c[0].sequence, 5);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_redeem_sets_used_at_and_the_order(void)
{
    one_change_is_applied(
        'R', "1700000000003,'order-1',NULL,NULL,3,100,2",
        "{\"type\":\"coupon.redeemed\",\"couponId\":42,\"userId\":7,\"sequence\":5,"
        "\"version\":3,\"orderId\":\"order-1\",\"redeemedAt\":\"2023-11-14T22:13:20.003Z\"}");
}

static void a_hold_sets_the_hold_order_and_its_end(void)
{
    one_change_is_applied(
        'H', "NULL,NULL,'order-1',1700000600000,3,100,2",
        "{\"type\":\"coupon.held\",\"couponId\":42,\"userId\":7,\"sequence\":5,\"version\":3,"
        "\"orderId\":\"order-1\",\"heldAt\":\"2023-11-14T22:13:20.003Z\","
        "\"holdExpiresAt\":\"2023-11-14T22:23:20.000Z\"}");
}

static void a_release_clears_every_column(void)
{
    one_change_is_applied(
        'X', "NULL,NULL,NULL,NULL,3,100,2",
        "{\"type\":\"coupon.hold_released\",\"couponId\":42,\"userId\":7,\"sequence\":5,"
        "\"version\":3,\"orderId\":\"order-1\",\"releasedAt\":\"2023-11-14T22:13:20.003Z\","
        "\"reason\":\"released\"}");
}

static void a_lapse_clears_every_column(void)
{
    one_change_is_applied(
        'L', "NULL,NULL,NULL,NULL,3,100,2",
        "{\"type\":\"coupon.hold_released\",\"couponId\":42,\"userId\":7,\"sequence\":5,"
        "\"version\":3,\"orderId\":\"order-1\",\"releasedAt\":\"2023-11-14T22:13:20.003Z\","
        "\"reason\":\"lapsed\"}");
}

static void a_cancel_clears_every_column(void)
{
    one_change_is_applied(
        'C', "NULL,NULL,NULL,NULL,3,100,2",
        "{\"type\":\"coupon.redemption_cancelled\",\"couponId\":42,\"userId\":7,\"sequence\":5,"
        "\"version\":3,\"orderId\":\"order-1\",\"cancelledAt\":\"2023-11-14T22:13:20.003Z\"}");
}

static void versions_of_one_issuance_apply_in_order_in_one_transaction(void)
{
    fresh();
    /* Any order in; user 3 stored at version 1, user 9 not persisted yet. */
    struct planned_change c[] = {rec(3, 4, 'C', "o-b"), rec(9, 1, 'H', "o-z"),
                                 rec(3, 2, 'H', "o-a"), rec(3, 1, 'H', "o-0"),
                                 rec(3, 3, 'R', "o-a")};
    row("300|11|1");
    no_row();
    for (int i = 0; i < 3; i++) {
        fake_ok(apply_sql, 1, 0);
        fake_ok(outbox_sql, 1, 0);
    }
    struct checkout_store_counts k;
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 5, &k), CP_OK);
    CU_ASSERT_STRING_EQUAL(trace(), "connect begin lock lock update outbox update outbox update "
                                    "outbox commit autocommit");
    CU_ASSERT_STRING_EQUAL(bound(row_sql, 0), "42,3");
    CU_ASSERT_STRING_EQUAL(bound(row_sql, 1), "42,9");
    CU_ASSERT_STRING_EQUAL(bound(apply_sql, 0), "NULL,NULL,'o-a',1700000600000,2,300,1");
    CU_ASSERT_STRING_EQUAL(bound(apply_sql, 1), "1700000000003,'o-a',NULL,NULL,3,300,2");
    CU_ASSERT_STRING_EQUAL(bound(apply_sql, 2), "NULL,NULL,NULL,NULL,4,300,3");
    CU_ASSERT_PTR_NOT_NULL(strstr(bound(outbox_sql, 0), "\"type\":\"coupon.held\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(bound(outbox_sql, 1), "\"version\":3,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(bound(outbox_sql, 2), "\"sequence\":11,\"version\":4,"));
    CU_ASSERT_EQUAL(k.applied, 3);
    CU_ASSERT_EQUAL(k.duplicates, 1);
    CU_ASSERT_EQUAL(k.waiting, 1);
    /* Sorted by (user, version) and marked: what the applier drops and keeps. */
    static const enum change_action want[] = {CHANGE_DUPLICATE, CHANGE_APPLY, CHANGE_APPLY,
                                              CHANGE_APPLY, CHANGE_WAIT};
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(c[i].action, want[i]);
    CU_ASSERT_EQUAL(c[4].change.user_id, 9);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_row_not_persisted_yet_waits_and_writes_nothing(void)
{
    fresh();
    struct planned_change c[] = {rec(5, 1, 'R', "o"), rec(5, 2, 'C', "o")};
    no_row();
    struct checkout_store_counts k;
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 2, &k), CHECKOUT_STORE_NOTHING);
    CU_ASSERT_STRING_EQUAL(trace(), "connect begin lock rollback autocommit");
    CU_ASSERT_EQUAL(k.waiting, 2);
    CU_ASSERT_EQUAL(k.applied + k.duplicates, 0);
    CU_ASSERT_EQUAL(c[0].action, CHANGE_WAIT);
    CU_ASSERT_EQUAL(c[1].action, CHANGE_WAIT);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_version_applied_before_is_dropped_and_writes_nothing(void)
{
    fresh();
    struct planned_change c[] = {rec(5, 2, 'R', "o")};
    row("500|1|2");
    struct checkout_store_counts k;
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 1, &k), CHECKOUT_STORE_NOTHING);
    CU_ASSERT_STRING_EQUAL(trace(), "connect begin lock rollback autocommit");
    CU_ASSERT_EQUAL(k.duplicates, 1);
    CU_ASSERT_EQUAL(k.applied + k.waiting, 0);
    CU_ASSERT_EQUAL(c[0].action, CHANGE_DUPLICATE);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_deadlock_runs_the_transaction_again_from_its_start(void)
{
    fresh();
    struct planned_change c[] = {rec(8, 2, 'R', "o"), rec(8, 1, 'H', "o")};
    row("800|3|0");
    fake_ok(apply_sql, 1, 0);
    fake_ok(outbox_sql, 1, 0);
    fake_fail(apply_sql, FAKE_ER_DEADLOCK); /* version 2: InnoDB rolled back version 1 too */
    row("800|3|0");
    fake_ok(apply_sql, 1, 0);
    fake_ok(outbox_sql, 1, 0);
    fake_ok(apply_sql, 1, 0);
    fake_ok(outbox_sql, 1, 0);
    struct checkout_store_counts k;
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 2, &k), CP_OK);
    CU_ASSERT_STRING_EQUAL(trace(), "connect begin lock update outbox update rollback autocommit "
                                    "begin lock update outbox update outbox commit autocommit");
    /* The second run applies both again, from version 0: the same plan, not the first's. */
    CU_ASSERT_STRING_EQUAL(bound(apply_sql, 2), "NULL,NULL,'o',1700000600000,1,800,0");
    CU_ASSERT_STRING_EQUAL(bound(apply_sql, 3), "1700000000002,'o',NULL,NULL,2,800,1");
    CU_ASSERT_EQUAL(k.applied, 2);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void deadlocks_every_run_time_out(void)
{
    fresh();
    struct planned_change c[] = {rec(8, 1, 'R', "o")};
    for (int i = 0; i < DB_ATTEMPTS; i++)
        fake_fail(row_sql, FAKE_ER_DEADLOCK);
    struct checkout_store_counts k = {9, 9, 9};
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 1, &k), CP_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(fake_count("begin"), DB_ATTEMPTS);
    CU_ASSERT_EQUAL(fake_count("rollback"), DB_ATTEMPTS);
    CU_ASSERT_EQUAL(fake_count("commit"), 0);
    CU_ASSERT_EQUAL(k.applied + k.duplicates + k.waiting, 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_connection_lost_mid_transaction_commits_nothing(void)
{
    fresh();
    struct planned_change c[] = {rec(8, 1, 'R', "o")};
    script_one("800|3|0", FAKE_CR_SERVER_LOST);
    struct checkout_store_counts k;
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 1, &k), CP_ERR_UNAVAILABLE);
    CU_ASSERT_STRING_EQUAL(trace(), "connect begin lock update outbox close");
    CU_ASSERT_EQUAL(k.applied, 0);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
    /* The next call connects again and runs the whole transaction. */
    script_one("800|3|0", 0);
    int from = fake.nlog;
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 1, &k), CP_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(fake_log_from(from), "connect\nbegin\n"));
    CU_ASSERT_EQUAL(fake_count("commit"), 1);
    CU_ASSERT_EQUAL(k.applied, 1);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void an_update_another_applier_raced_rolls_back(void)
{
    fresh();
    struct planned_change c[] = {rec(8, 2, 'C', "o"), rec(8, 1, 'R', "o")};
    row("800|3|0");
    fake_ok(apply_sql, 1, 0);
    fake_ok(outbox_sql, 1, 0);
    fake_ok(apply_sql, 0, 0); /* version 1 is no longer the row's */
    struct checkout_store_counts k = {9, 9, 9};
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 2, &k), CHECKOUT_STORE_RACED);
    CU_ASSERT_STRING_EQUAL(trace(), "connect begin lock update outbox update rollback autocommit");
    CU_ASSERT_EQUAL(k.applied + k.duplicates + k.waiting, 0);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_refused_outbox_row_rolls_the_change_back(void)
{
    fresh();
    struct planned_change c[] = {rec(8, 1, 'R', "o")};
    script_one("800|3|0", FAKE_ER_DUP_ENTRY);
    struct checkout_store_counts k;
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 1, &k), CP_ERR_CONFLICT);
    CU_ASSERT_STRING_EQUAL(trace(), "connect begin lock update outbox rollback autocommit");
    CU_ASSERT_EQUAL(fake.open_conns, 1); /* a statement's error keeps the connection */
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void more_records_than_the_capacity_are_refused(void)
{
    fresh();
    struct planned_change c[17];
    for (int i = 0; i < 17; i++)
        c[i] = rec(i + 1, 1, 'R', "o");
    struct checkout_store_counts k;
    CU_ASSERT_EQUAL(checkout_store_apply(s, COUPON, c, 17, &k), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(fake.nlog, 0);
}

static void recent_coupons_are_listed_newest_first_up_to_cap(void)
{
    fresh();
    fake_rows(coupons_sql, (const char *[]){"9", "8", "7", NULL});
    int64_t ids[2] = {0, 0};
    size_t n = 9;
    CU_ASSERT_EQUAL(checkout_store_coupons(s, ids, 2, &n), CP_OK);
    CU_ASSERT_STRING_EQUAL(bound(coupons_sql, 0), "2");
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(ids[0], 9);
    CU_ASSERT_EQUAL(ids[1], 8);
    fake_fail(coupons_sql, FAKE_CR_SERVER_LOST);
    CU_ASSERT_EQUAL(checkout_store_coupons(s, ids, 2, &n), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"a_redeem_sets_used_at_and_the_order", a_redeem_sets_used_at_and_the_order},
        {"a_hold_sets_the_hold_order_and_its_end", a_hold_sets_the_hold_order_and_its_end},
        {"a_release_clears_every_column", a_release_clears_every_column},
        {"a_lapse_clears_every_column", a_lapse_clears_every_column},
        {"a_cancel_clears_every_column", a_cancel_clears_every_column},
        {"versions_of_one_issuance_apply_in_order_in_one_transaction",
         versions_of_one_issuance_apply_in_order_in_one_transaction},
        {"a_row_not_persisted_yet_waits_and_writes_nothing",
         a_row_not_persisted_yet_waits_and_writes_nothing},
        {"a_version_applied_before_is_dropped_and_writes_nothing",
         a_version_applied_before_is_dropped_and_writes_nothing},
        {"a_deadlock_runs_the_transaction_again_from_its_start",
         a_deadlock_runs_the_transaction_again_from_its_start},
        {"deadlocks_every_run_time_out", deadlocks_every_run_time_out},
        {"a_connection_lost_mid_transaction_commits_nothing",
         a_connection_lost_mid_transaction_commits_nothing},
        {"an_update_another_applier_raced_rolls_back", an_update_another_applier_raced_rolls_back},
        {"a_refused_outbox_row_rolls_the_change_back", a_refused_outbox_row_rolls_the_change_back},
        {"more_records_than_the_capacity_are_refused", more_records_than_the_capacity_are_refused},
        {"recent_coupons_are_listed_newest_first_up_to_cap",
         recent_coupons_are_listed_newest_first_up_to_cap},
    };
    int rc = unit_run_suite("checkout_store", NULL, UNIT_CASES(tests));
    checkout_store_free(s);
    db_free(db);
    fake_reset();
    return rc;
}
