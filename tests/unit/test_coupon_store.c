/*
 * test_coupon_store.c - fcgi-app/coupon_store's MariaDB statements over the
 * scripted fake (db_fake.h): the exact SQL and bound values, rows read back
 * (NULL columns, text cut to its buffer), and every failure a caller answers
 * differently (not found, duplicate code, refused value, deadlock run again,
 * server gone).
 */
#include "first.h"

#include <stdint.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "coupon_store.h"
#include "cp_err.h"
#include "db.h"
#include "db_fake.h"
#include "unit_main.h"

static const char insert_sql[] =
    "INSERT INTO coupon (title, code, coupon_type, discount_type, discount_value, start_at, "
    "end_at, total_quantity, description, usable_days, usable_until, currency, "
    "min_order_amount, max_discount_amount) VALUES (?, ?, ?, ?, ?, "
    "FROM_UNIXTIME(? / 1000), FROM_UNIXTIME(? / 1000), ?, ?, ?, FROM_UNIXTIME(? / 1000), ?, ?, "
    "?)";
static const char update_sql[] =
    "UPDATE coupon SET title = ?, description = ?, end_at = FROM_UNIXTIME(? / 1000), "
    "total_quantity = ? WHERE id = ?";
static const char count_sql[] =
    "SELECT COUNT(*), COUNT(used_at), COUNT(CASE WHEN hold_order_id IS NOT NULL AND "
    "hold_expires_at > NOW(3) THEN 1 END) FROM coupon_issue WHERE coupon_id = ?";
static const char checkout_sql[] =
    "SELECT CAST(coupon_id AS SIGNED), COUNT(used_at), COUNT(CASE WHEN hold_order_id IS NOT "
    "NULL AND hold_expires_at > NOW(3) THEN 1 END) FROM coupon_issue WHERE coupon_id BETWEEN ? "
    "AND ? GROUP BY coupon_id";
static const char list_sql[] =
    "SELECT CAST(id AS SIGNED), title, COALESCE(CAST(total_quantity AS SIGNED), -1), "
    "CAST(issued_quantity AS SIGNED), CAST(UNIX_TIMESTAMP(start_at) * 1000 AS SIGNED), "
    "CAST(UNIX_TIMESTAMP(end_at) * 1000 AS SIGNED) FROM coupon WHERE id < ? ORDER BY id DESC "
    "LIMIT ?";

static struct db *db;

static struct db *fresh(void)
{
    db_free(db);
    fake_reset();
    db = fake_db();
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    return db;
}

static void sample(struct coupon *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->title, "Winter sale");
    strcpy(c->coupon_type, "FIRST_COME");
    strcpy(c->discount_type, "AMOUNT");
    strcpy(c->discount_value, "10.00");
    c->start_ms = 1000;
    c->end_ms = 2000;
    c->total_quantity = -1;
    c->usable_days = 7;
    c->usable_until_ms = -1;
}

static void get_reads_every_column_and_nulls(void)
{
    fresh();
    fake_rows(NULL, (const char *[]){"42|Winter sale|NULL|FIRST_COME|AMOUNT|10.00|1000|2000|-1|5|"
                                     "NULL|900|950|7|-1|EUR|50.000|",
                                     NULL});
    struct coupon c;
    CU_ASSERT_EQUAL_FATAL(coupon_store_get(db, 42, &c), CP_OK);
    CU_ASSERT_EQUAL(c.id, 42);
    CU_ASSERT_STRING_EQUAL(c.title, "Winter sale");
    CU_ASSERT_FALSE(c.has_code);
    CU_ASSERT_STRING_EQUAL(c.code, "");
    CU_ASSERT_STRING_EQUAL(c.discount_value, "10.00");
    CU_ASSERT_STRING_EQUAL(c.currency, "EUR");
    CU_ASSERT_STRING_EQUAL(c.min_order_amount, "50.000");
    CU_ASSERT_STRING_EQUAL(c.max_discount_amount, "");
    CU_ASSERT_EQUAL(c.total_quantity, -1);
    CU_ASSERT_EQUAL(c.issued_quantity, 5);
    CU_ASSERT_FALSE(c.has_description);
    CU_ASSERT_EQUAL(c.usable_days, 7);
    CU_ASSERT_EQUAL(c.usable_until_ms, -1);
    const char *exec = fake_exec(0);
    CU_ASSERT_EQUAL(strncmp(exec, "exec SELECT id, title, code, coupon_type", 40), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(exec, "FROM coupon WHERE id = ? <- 42"));
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void get_without_a_row_is_not_found_and_a_lost_server_unavailable(void)
{
    fresh();
    fake_rows(NULL, (const char *[]){NULL});
    fake_fail(NULL, FAKE_CR_SERVER_LOST);
    struct coupon c;
    CU_ASSERT_EQUAL(coupon_store_get(db, 7, &c), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(coupon_store_get(db, 7, &c), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fake.open_conns, 0); /* dropped: the next call reconnects */
}

static void insert_binds_nulls_and_returns_the_new_id(void)
{
    fresh();
    struct coupon c;
    sample(&c);
    fake_ok(insert_sql, 1, 77);
    CU_ASSERT_EQUAL(coupon_store_insert(db, &c), CP_OK);
    CU_ASSERT_EQUAL(c.id, 77);
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(insert_sql),
                           " <- 'Winter sale',NULL,'FIRST_COME','AMOUNT','10.00',1000,2000,NULL,"
                           "NULL,7,NULL,NULL,NULL,NULL");
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void insert_maps_a_duplicate_code_and_a_refused_value(void)
{
    fresh();
    struct coupon c;
    sample(&c);
    c.has_code = 1;
    strcpy(c.code, "WINTER");
    fake_fail(insert_sql, FAKE_ER_DUP_ENTRY);
    fake_fail(insert_sql, FAKE_ER_CHECK);
    CU_ASSERT_EQUAL(coupon_store_insert(db, &c), CP_ERR_CONFLICT);
    CU_ASSERT_EQUAL(coupon_store_insert(db, &c), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(c.id, 0);
    CU_ASSERT_EQUAL(fake.open_conns, 1); /* the connection is fine */
}

static void an_update_chosen_as_deadlock_victim_runs_again(void)
{
    fresh();
    struct coupon c;
    sample(&c);
    c.id = 9;
    c.total_quantity = 100;
    fake_fail(update_sql, FAKE_ER_DEADLOCK);
    fake_ok(update_sql, 1, 0);
    CU_ASSERT_EQUAL(coupon_store_update(db, &c), CP_OK);
    CU_ASSERT_EQUAL(fake_count("exec"), 2);
    CU_ASSERT_EQUAL(fake_count("prepare"), 1);
    CU_ASSERT_STRING_EQUAL(fake_exec(1) + 5 + strlen(update_sql),
                           " <- 'Winter sale',NULL,2000,100,9");
    CU_ASSERT_EQUAL(fake_pending(), 0);
}

static void count_issues_reads_every_count(void)
{
    fresh();
    fake_rows(count_sql, (const char *[]){"12|3|2", NULL});
    int64_t count = 0, redeemed = 0, held = 0;
    CU_ASSERT_EQUAL(coupon_store_count_issues(db, 5, &count, &redeemed, &held), CP_OK);
    CU_ASSERT_EQUAL(count, 12);
    CU_ASSERT_EQUAL(redeemed, 3);
    CU_ASSERT_EQUAL(held, 2);
    fake_rows(count_sql, (const char *[]){"12|3|2", NULL});
    CU_ASSERT_EQUAL(coupon_store_count_issues(db, 5, &count, NULL, NULL), CP_OK);
    fake_rows("SELECT EXISTS(SELECT 1 FROM coupon_issue WHERE coupon_id = ?)",
              (const char *[]){"1", NULL});
    CU_ASSERT_EQUAL(coupon_store_has_issues(db, 5), 1);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

struct seen {
    int n, stop_at;
    int64_t ids[4];
    char titles[4][CP_TITLE_MAX_CHARS * 4 + 1];
    char codes[4][CP_ISSUE_CODE_CHARS + 1];
    int64_t used[4];
};

static int on_user_coupon(void *arg, const struct user_coupon *row)
{
    struct seen *s = arg;
    s->ids[s->n] = row->issue_id;
    snprintf(s->titles[s->n], sizeof s->titles[0], "%s", row->title);
    snprintf(s->codes[s->n], sizeof s->codes[0], "%s", row->is.code);
    s->used[s->n] = row->is.used_ms;
    return ++s->n == s->stop_at ? CP_ERR_LIMIT : CP_OK;
}

static void user_coupons_calls_back_per_row_until_told_to_stop(void)
{
    fresh();
    const char *rows[] = {"30|4|Spring|2|1000|-1|-1|ABCDEFGHJKMN|", "20|3|Autumn|1|900|950|-1||o-1",
                          NULL};
    fake_rows(NULL, rows);
    struct seen s = {0};
    CU_ASSERT_EQUAL(coupon_store_user_coupons(db, 8, 100, 2, on_user_coupon, &s), CP_OK);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_EQUAL(s.ids[0], 30);
    CU_ASSERT_STRING_EQUAL(s.titles[1], "Autumn");
    CU_ASSERT_STRING_EQUAL(s.codes[0], "ABCDEFGHJKMN");
    CU_ASSERT_EQUAL(s.used[1], 950);
    CU_ASSERT_PTR_NOT_NULL(strstr(fake_exec(0), "ORDER BY ci.id DESC LIMIT ? <- 8,100,2"));
    fake_rows(NULL, rows);
    struct seen stop = {.stop_at = 1};
    CU_ASSERT_EQUAL(coupon_store_user_coupons(db, 8, 100, 2, on_user_coupon, &stop), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(stop.n, 1);
}

static void list_refuses_more_rows_than_its_limit(void)
{
    fresh();
    struct coupon_summary out[2];
    size_t n = 0;
    fake_rows(list_sql, (const char *[]){"5|A|10|1|0|1", "4|B|-1|0|0|1", NULL});
    CU_ASSERT_EQUAL(coupon_store_list(db, 6, 2, out, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(out[1].title, "B");
    CU_ASSERT_EQUAL(out[1].total_quantity, -1);
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(list_sql), " <- 6,2");
    fake_rows(list_sql, (const char *[]){"5|A|10|1|0|1", "4|B|-1|0|0|1", "3|C|1|1|0|1", NULL});
    CU_ASSERT_EQUAL(coupon_store_list(db, 6, 2, out, &n), CP_ERR_INTERNAL);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void checkout_counts_group_a_page_by_its_id_range(void)
{
    fresh();
    struct coupon_summary page[3] = {{.id = 9, .held = 7}, {.id = 8, .redeemed = 7}, {.id = 6}};
    /* 7 is not a row (a test of another set than a page): read, not kept. */
    fake_rows(checkout_sql, (const char *[]){"6|4|1", "7|5|5", "9|0|2", NULL});
    CU_ASSERT_EQUAL(coupon_store_checkout_counts(db, page, 3), CP_OK);
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(checkout_sql), " <- 6,9");
    CU_ASSERT_EQUAL(page[0].redeemed, 0);
    CU_ASSERT_EQUAL(page[0].held, 2);
    CU_ASSERT_EQUAL(page[1].redeemed, 0); /* no issuance: no group, and 0 */
    CU_ASSERT_EQUAL(page[1].held, 0);
    CU_ASSERT_EQUAL(page[2].redeemed, 4);
    CU_ASSERT_EQUAL(page[2].held, 1);
    CU_ASSERT_EQUAL(coupon_store_checkout_counts(db, page, 0), CP_OK); /* no statement */
    CU_ASSERT_EQUAL(fake_count("exec"), 1);
    fake_fail(checkout_sql, FAKE_CR_SERVER_LOST);
    CU_ASSERT_EQUAL(coupon_store_checkout_counts(db, page, 3), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"get_reads_every_column_and_nulls", get_reads_every_column_and_nulls},
        {"get_without_a_row_is_not_found_and_a_lost_server_unavailable",
         get_without_a_row_is_not_found_and_a_lost_server_unavailable},
        {"insert_binds_nulls_and_returns_the_new_id", insert_binds_nulls_and_returns_the_new_id},
        {"insert_maps_a_duplicate_code_and_a_refused_value",
         insert_maps_a_duplicate_code_and_a_refused_value},
        {"an_update_chosen_as_deadlock_victim_runs_again",
         an_update_chosen_as_deadlock_victim_runs_again},
        {"count_issues_reads_every_count", count_issues_reads_every_count},
        {"user_coupons_calls_back_per_row_until_told_to_stop",
         user_coupons_calls_back_per_row_until_told_to_stop},
        {"list_refuses_more_rows_than_its_limit", list_refuses_more_rows_than_its_limit},
        {"checkout_counts_group_a_page_by_its_id_range",
         checkout_counts_group_a_page_by_its_id_range},
    };
    int rc = unit_run_suite("coupon_store", NULL, UNIT_CASES(tests));
    db_free(db);
    fake_reset();
    return rc;
}
