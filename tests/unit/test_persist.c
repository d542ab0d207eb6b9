/*
 * test_persist.c - consumer/persist and its parts (coupon_cache, idalloc,
 * issue_insert, issued_outbox, sqltext) over the scripted fake (db_fake.h):
 * the exact statements of a batch's transaction on the optimistic and the
 * checking path, a redelivery's duplicate key running the batch again,
 * checking, a deadlock running it again from the same outcomes, and a
 * connection lost mid-transaction committing nothing.
 */
#include "first.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "conf.h"
#include "coupon_cache.h"
#include "cp_err.h"
#include "db.h"
#include "db_fake.h"
#include "persist.h"
#include "sqltext.h"
#include "unit_main.h"

static const char idalloc_sql[] = "SELECT CAST(@@innodb_autoinc_lock_mode AS SIGNED), "
                                  "CAST(@@auto_increment_increment AS SIGNED)";
static const char validity_sql[] =
    "SELECT COALESCE(CAST(usable_days AS SIGNED), -1), "
    "COALESCE(CAST(UNIX_TIMESTAMP(usable_until) * 1000 AS SIGNED), -1) FROM coupon WHERE id = ?";
static const char lock1_sql[] =
    "SELECT CAST(id AS SIGNED), 0 FROM coupon WHERE id IN (?) ORDER BY id FOR UPDATE";
static const char row_values[] =
    "(?, ?, ?, ?, FROM_UNIXTIME(? / 1000), FROM_UNIXTIME(? / 1000), ?, "
    "FROM_UNIXTIME(? / 1000))";
static const char insert_head[] = "INSERT INTO coupon_issue (coupon_id, user_id, sequence, "
                                  "event_id, issued_at, persisted_at, code, usable_until) VALUES ";
static const char existing2_sql[] =
    "SELECT user_id, 0 FROM coupon_issue WHERE coupon_id = ? AND user_id IN (?,?)";
static const char ids1_sql[] =
    "SELECT user_id, id FROM coupon_issue WHERE coupon_id = ? AND user_id IN (?)";
static const char outbox1_sql[] =
    "INSERT INTO event_outbox (topic, msg_key, payload) VALUES (?, ?, ?)";
static const char outbox2_sql[] =
    "INSERT INTO event_outbox (topic, msg_key, payload) VALUES (?, ?, ?),(?, ?, ?)";
static const char issued_sql[] =
    "UPDATE coupon SET issued_quantity = issued_quantity + ? WHERE id = ?";

static struct cp_conf conf;
static struct db *db;
static struct persist *p;
static char insert1_sql[512], insert2_sql[1024];

static int suite_init(void)
{
    char err[128];
    conf_defaults(&conf);
    if (conf_set(&conf, "code_secret", "0123456789abcdef0123456789abcdef", err, sizeof err) != 0)
        return 1;
    snprintf(insert1_sql, sizeof insert1_sql, "%s%s", insert_head, row_values);
    snprintf(insert2_sql, sizeof insert2_sql, "%s%s,%s", insert_head, row_values, row_values);
    return 0;
}

static void fresh(void)
{
    persist_free(p);
    db_free(db);
    fake_reset();
    db = fake_db();
    p = persist_new(&conf, db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
}

static void item(struct persist_item *it, int64_t coupon, int64_t user, int64_t seq)
{
    memset(it, 0, sizeof *it);
    snprintf(it->ev.event_id, sizeof it->ev.event_id, "%032llx", (unsigned long long)user);
    it->ev.coupon_id = coupon;
    it->ev.user_id = user;
    it->ev.sequence = seq;
    it->ev.issued_at_ms = 1700000000000;
}

static void sqltext_joins_items_and_refuses_what_does_not_fit(void)
{
    char buf[64];
    CU_ASSERT_EQUAL(sqltext_list(buf, sizeof buf, "IN (", "?", 3, ")"), CP_OK);
    CU_ASSERT_STRING_EQUAL(buf, "IN (?,?,?)");
    CU_ASSERT_EQUAL(sqltext_size("IN (", "?", 3, ")"), strlen("IN (?,?,?)") + 1);
    CU_ASSERT_EQUAL(sqltext_list(buf, 10, "IN (", "?", 3, ")"), CP_ERR_LIMIT);
    CU_ASSERT_STRING_EQUAL(buf, "");
}

static void validity_is_the_earlier_of_days_and_until(void)
{
    struct coupon_validity none = {1, -1, -1}, days = {1, 2, -1}, both = {1, 2, 1000};
    CU_ASSERT_EQUAL(coupon_validity_until(&none, 500), -1);
    CU_ASSERT_EQUAL(coupon_validity_until(&days, 500), 500 + 2 * 86400000LL);
    CU_ASSERT_EQUAL(coupon_validity_until(&both, 500), 1000);
}

static void first_delivery_inserts_optimistically_in_one_transaction(void)
{
    fresh();
    struct persist_item items[4];
    item(&items[0], 4, 10, 1);
    item(&items[1], 99, 12, 1); /* no such coupon */
    item(&items[2], 4, 11, 2);
    item(&items[3], 4, 10, 1); /* the same issuance twice in the batch */
    fake_rows(idalloc_sql, (const char *[]){"1|1", NULL});
    fake_rows(validity_sql, (const char *[]){"7|-1", NULL}); /* coupon 4 */
    fake_rows(validity_sql, (const char *[]){NULL});         /* coupon 99 */
    fake_ok(lock1_sql, 0, 0);
    fake_ok(insert2_sql, 2, 100);
    fake_ok(outbox2_sql, 2, 0);
    fake_ok(issued_sql, 1, 0);
    fake_rows(validity_sql, (const char *[]){NULL}); /* 99, not remembered */
    int64_t at = 0;
    CU_ASSERT_EQUAL_FATAL(persist_batch(p, items, 4, &at), CP_OK);
    CU_ASSERT_EQUAL(items[0].outcome, PERSIST_NEW);
    CU_ASSERT_EQUAL(items[0].row_id, 100);
    CU_ASSERT_EQUAL(items[2].outcome, PERSIST_NEW);
    CU_ASSERT_EQUAL(items[2].row_id, 101);
    CU_ASSERT_EQUAL(items[3].outcome, PERSIST_DUPLICATE);
    CU_ASSERT_EQUAL(items[1].outcome, PERSIST_UNKNOWN_COUPON);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
    CU_ASSERT_EQUAL(fake_count("begin"), 1);
    CU_ASSERT_EQUAL(fake_count("commit"), 1);
    CU_ASSERT_STRING_EQUAL(fake_exec(3) + 5 + strlen(lock1_sql), " <- 4");
    /* Both rows with their code, usable_until 7 days on, persisted_at = *at. */
    char want[512];
    int64_t until = 1700000000000 + 7 * 86400000LL;
    const char *ins = fake_exec(4) + 5 + strlen(insert2_sql);
    snprintf(want, sizeof want, " <- 4,10,1,'%032x',1700000000000,%lld,'", 10, (long long)at);
    CU_ASSERT_EQUAL(strncmp(ins, want, strlen(want)), 0);
    snprintf(want, sizeof want, "',%lld,4,11,2,'%032x'", (long long)until, 11);
    CU_ASSERT_PTR_NOT_NULL(strstr(ins, want));
    const char *ob = fake_exec(5) + 5 + strlen(outbox2_sql);
    CU_ASSERT_EQUAL(strncmp(ob, " <- 'coupon.issued','4','{", 26), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(ob, "\"id\":101"));
    CU_ASSERT_STRING_EQUAL(fake_exec(6) + 5 + strlen(issued_sql), " <- 2,4");
    struct persist_stats st;
    persist_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.inserted, 2);
    CU_ASSERT_EQUAL(st.duplicates, 1);
    CU_ASSERT_EQUAL(st.unknown, 1);
    CU_ASSERT_EQUAL(st.db_errors, 0);
}

static void a_redelivery_rolls_back_and_runs_again_checking(void)
{
    fresh();
    struct persist_item items[2];
    item(&items[0], 4, 10, 1); /* persisted before */
    item(&items[1], 4, 11, 2);
    fake_rows(idalloc_sql, (const char *[]){"1|1", NULL});
    fake_rows(validity_sql, (const char *[]){"-1|-1", NULL});
    fake_ok(lock1_sql, 0, 0);
    fake_fail(insert2_sql, FAKE_ER_DUP_ENTRY);
    /* again, checking */
    fake_ok(lock1_sql, 0, 0);
    fake_rows(existing2_sql, (const char *[]){"10|0", NULL});
    fake_ok(insert1_sql, 1, 300);
    fake_rows(ids1_sql, (const char *[]){"11|205", NULL});
    fake_ok(outbox1_sql, 1, 0);
    fake_ok(issued_sql, 1, 0);
    int64_t at = 0;
    CU_ASSERT_EQUAL_FATAL(persist_batch(p, items, 2, &at), CP_OK);
    CU_ASSERT_EQUAL(items[0].outcome, PERSIST_DUPLICATE);
    CU_ASSERT_EQUAL(items[1].outcome, PERSIST_NEW);
    CU_ASSERT_EQUAL(items[1].row_id, 205); /* read back, not LAST_INSERT_ID */
    CU_ASSERT_EQUAL(fake_count("rollback"), 1);
    CU_ASSERT_EQUAL(fake_count("commit"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(fake_exec(5), " <- 4,10,11"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fake_exec(8), "\"id\":205"));
    CU_ASSERT_STRING_EQUAL(fake_exec(9) + 5 + strlen(issued_sql), " <- 1,4");
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
    struct persist_stats st;
    persist_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.redelivered_batches, 1);
    CU_ASSERT_EQUAL(st.inserted, 1);
    CU_ASSERT_EQUAL(st.duplicates, 1);
}

static void a_deadlock_runs_the_batch_again_from_the_same_outcomes(void)
{
    fresh();
    struct persist_item items[1];
    item(&items[0], 4, 10, 1);
    fake_rows(idalloc_sql, (const char *[]){"1|1", NULL});
    fake_rows(validity_sql, (const char *[]){"-1|-1", NULL});
    fake_ok(lock1_sql, 0, 0);
    fake_ok(insert1_sql, 1, 50);
    fake_ok(outbox1_sql, 1, 0);
    fake_fail(issued_sql, FAKE_ER_DEADLOCK);
    fake_ok(lock1_sql, 0, 0);
    fake_ok(insert1_sql, 1, 51);
    fake_ok(outbox1_sql, 1, 0);
    fake_ok(issued_sql, 1, 0);
    int64_t at = 0;
    CU_ASSERT_EQUAL_FATAL(persist_batch(p, items, 1, &at), CP_OK);
    CU_ASSERT_EQUAL(items[0].outcome, PERSIST_NEW);
    CU_ASSERT_EQUAL(items[0].row_id, 51);
    CU_ASSERT_EQUAL(fake_count("begin"), 2);
    CU_ASSERT_EQUAL(fake_count("commit"), 1);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    struct persist_stats st;
    persist_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.inserted, 1); /* counted once */
    CU_ASSERT_EQUAL(st.redelivered_batches, 0);
}

static void a_connection_lost_mid_batch_commits_nothing_and_reconnects(void)
{
    fresh();
    struct persist_item items[1];
    item(&items[0], 4, 10, 1);
    fake_rows(idalloc_sql, (const char *[]){"2|1", NULL}); /* interleaved: check first */
    fake_rows(validity_sql, (const char *[]){"-1|-1", NULL});
    fake_ok(lock1_sql, 0, 0);
    fake_fail("SELECT user_id, 0 FROM coupon_issue WHERE coupon_id = ? AND user_id IN (?)",
              FAKE_CR_SERVER_LOST);
    int64_t at = 0;
    CU_ASSERT_EQUAL(persist_batch(p, items, 1, &at), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fake_count("commit"), 0);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
    struct persist_stats st;
    persist_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.db_errors, 1);
    CU_ASSERT_EQUAL(st.inserted, 0);
    /* The same batch again on a new connection: the id allocation is asked again. */
    fake_rows(idalloc_sql, (const char *[]){"2|1", NULL});
    fake_ok(lock1_sql, 0, 0); /* coupon 4 is remembered */
    fake_rows("SELECT user_id, 0 FROM coupon_issue WHERE coupon_id = ? AND user_id IN (?)",
              (const char *[]){NULL});
    fake_ok(insert1_sql, 1, 60);
    fake_rows(ids1_sql, (const char *[]){"10|60", NULL});
    fake_ok(outbox1_sql, 1, 0);
    fake_ok(issued_sql, 1, 0);
    CU_ASSERT_EQUAL(persist_batch(p, items, 1, &at), CP_OK);
    CU_ASSERT_EQUAL(items[0].row_id, 60);
    CU_ASSERT_EQUAL(fake.connects, 2);
    CU_ASSERT_EQUAL(fake_count("exec SELECT CAST(@@"), 2);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void a_batch_over_a_chunk_is_two_inserts_and_one_update(void)
{
    fresh();
    enum { N = PERSIST_CHUNK_ROWS + 1 };
    static struct persist_item items[N];
    for (int i = 0; i < N; i++)
        item(&items[i], 4, 1000 + i, i + 1);
    fake_rows(idalloc_sql, (const char *[]){"1|1", NULL});
    fake_rows(validity_sql, (const char *[]){"-1|-1", NULL});
    fake_ok(lock1_sql, 0, 0);
    fake_ok(NULL, PERSIST_CHUNK_ROWS, 1);            /* the full chunk */
    fake_ok(NULL, PERSIST_CHUNK_ROWS, 0);            /* its outbox rows */
    fake_ok(insert1_sql, 1, PERSIST_CHUNK_ROWS + 1); /* the one left */
    fake_ok(outbox1_sql, 1, 0);
    fake_ok(issued_sql, 1, 0);
    int64_t at = 0;
    CU_ASSERT_EQUAL_FATAL(persist_batch(p, items, N, &at), CP_OK);
    CU_ASSERT_EQUAL(items[N - 1].row_id, PERSIST_CHUNK_ROWS + 1);
    CU_ASSERT_EQUAL(items[0].row_id, 1);
    CU_ASSERT_EQUAL(fake_count("exec"), 8);
    CU_ASSERT_STRING_EQUAL(fake_exec(7) + 5 + strlen(issued_sql), " <- 501,4");
    CU_ASSERT_EQUAL(fake_pending(), 0);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"sqltext_joins_items_and_refuses_what_does_not_fit",
         sqltext_joins_items_and_refuses_what_does_not_fit},
        {"validity_is_the_earlier_of_days_and_until", validity_is_the_earlier_of_days_and_until},
        {"first_delivery_inserts_optimistically_in_one_transaction",
         first_delivery_inserts_optimistically_in_one_transaction},
        {"a_redelivery_rolls_back_and_runs_again_checking",
         a_redelivery_rolls_back_and_runs_again_checking},
        {"a_deadlock_runs_the_batch_again_from_the_same_outcomes",
         a_deadlock_runs_the_batch_again_from_the_same_outcomes},
        {"a_connection_lost_mid_batch_commits_nothing_and_reconnects",
         a_connection_lost_mid_batch_commits_nothing_and_reconnects},
        {"a_batch_over_a_chunk_is_two_inserts_and_one_update",
         a_batch_over_a_chunk_is_two_inserts_and_one_update},
    };
    int rc = unit_run_suite("persist", suite_init, UNIT_CASES(tests));
    persist_free(p);
    db_free(db);
    fake_reset();
    return rc;
}
