/*
 * test_relay_db.c - the relay's MariaDB side (consumer/relay_db) over the
 * scripted fake (db_fake.h): the relay lock taken once per connection and
 * again after a lost one, the oldest rows stamped with their ids and a
 * malformed row holding back the rows behind it, and deletes of exactly the
 * published ids in chunks of RELAY_DELETE_CHUNK. The Kafka side (relay.c) is
 * covered by tests/integration/test_redemption.py.
 */
#include "first.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "db.h"
#include "db_fake.h"
#include "relay_db.h"
#include "unit_main.h"

static const char lock_sql[] = "SELECT IF(IS_USED_LOCK(?) = CONNECTION_ID(), 1, GET_LOCK(?, 0))";
static const char fetch_sql[] =
    "SELECT CAST(id AS SIGNED), topic, msg_key, payload FROM event_outbox ORDER BY id LIMIT ?";

static struct db *db;
static struct relay_db *r;

static void fresh(void)
{
    relay_db_free(r);
    db_free(db);
    fake_reset();
    db = fake_db();
    r = relay_db_new(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
}

static void the_lock_is_taken_once_per_connection(void)
{
    fresh();
    fake_rows(lock_sql, (const char *[]){"0", NULL});
    fake_rows(lock_sql, (const char *[]){"NULL", NULL});
    fake_rows(lock_sql, (const char *[]){"1", NULL});
    CU_ASSERT_EQUAL(relay_db_lead(r), CP_ERR_CONFLICT);
    CU_ASSERT_EQUAL(relay_db_lead(r), CP_ERR_CONFLICT);
    CU_ASSERT_FALSE(relay_db_leading(r));
    CU_ASSERT_EQUAL(relay_db_lead(r), CP_OK);
    CU_ASSERT_TRUE(relay_db_leading(r));
    CU_ASSERT_EQUAL(relay_db_lead(r), CP_OK); /* held: not asked again */
    CU_ASSERT_EQUAL(fake_count("exec"), 3);
    /* The connection goes, and the lock with it: asked again on the next one. */
    fake_fail(fetch_sql, FAKE_CR_SERVER_LOST);
    struct relay_row rows[2];
    size_t n = 9;
    CU_ASSERT_EQUAL(relay_db_fetch(r, rows, 2, &n), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_FALSE(relay_db_leading(r));
    fake_rows(lock_sql, (const char *[]){"1", NULL});
    CU_ASSERT_EQUAL(relay_db_lead(r), CP_OK);
    CU_ASSERT_EQUAL(fake.connects, 2);
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(lock_sql),
                           " <- 'coupon_outbox_relay','coupon_outbox_relay'");
    CU_ASSERT_EQUAL(fake_pending(), 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
}

static void rows_are_read_in_id_order_stamped_with_their_ids(void)
{
    fresh();
    fake_rows(fetch_sql,
              (const char *[]){"5|coupon.issued|4|{\"a\":1}", "6|coupon.redemption|4|{\"b\":2}",
                               "7|coupon.issued|4|not json", "8|coupon.issued|4|{\"c\":3}", NULL});
    struct relay_row *rows = calloc(8, sizeof *rows);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rows);
    size_t n = 0;
    CU_ASSERT_EQUAL(relay_db_fetch(r, rows, 8, &n), CP_OK);
    CU_ASSERT_EQUAL(n, 2); /* the malformed row 7 holds back 8 */
    CU_ASSERT_STRING_EQUAL(fake_exec(0) + 5 + strlen(fetch_sql), " <- 8");
    CU_ASSERT_EQUAL(rows[0].id, 5);
    CU_ASSERT_STRING_EQUAL(rows[1].topic, "coupon.redemption");
    CU_ASSERT_EQUAL(rows[1].klen, 1);
    CU_ASSERT_EQUAL(memcmp(rows[1].key, "4", 1), 0);
    CU_ASSERT_EQUAL(rows[0].state, -1);
    rows[0].value[rows[0].vlen] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(rows[0].value, "\"eventId\":5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rows[0].value, "\"a\":1"));
    free(rows);
}

static void deletes_name_exactly_the_published_ids_in_chunks(void)
{
    fresh();
    enum { N = RELAY_DELETE_CHUNK + 1 };
    struct relay_row *rows = calloc(N, sizeof *rows);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rows);
    for (int i = 0; i < N; i++)
        rows[i].id = 100 + i;
    fake_ok(NULL, RELAY_DELETE_CHUNK, 0);
    fake_ok("DELETE FROM event_outbox WHERE id IN (?)", 0, 0); /* another relay took it */
    uint64_t deleted = 0;
    CU_ASSERT_EQUAL(relay_db_delete(r, rows, N, &deleted), CP_OK);
    CU_ASSERT_EQUAL(deleted, RELAY_DELETE_CHUNK);
    CU_ASSERT_EQUAL(strncmp(fake_exec(0), "exec DELETE FROM event_outbox WHERE id IN (?,?,", 47),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(fake_exec(0), "?) <- 100,101,"));
    CU_ASSERT_STRING_EQUAL(fake_exec(1), "exec DELETE FROM event_outbox WHERE id IN (?) <- 600");
    fake_fail(NULL, FAKE_CR_SERVER_LOST);
    CU_ASSERT_EQUAL(relay_db_delete(r, rows, 1, &deleted), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(deleted, 0);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
    free(rows);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"the_lock_is_taken_once_per_connection", the_lock_is_taken_once_per_connection},
        {"rows_are_read_in_id_order_stamped_with_their_ids",
         rows_are_read_in_id_order_stamped_with_their_ids},
        {"deletes_name_exactly_the_published_ids_in_chunks",
         deletes_name_exactly_the_published_ids_in_chunks},
    };
    int rc = unit_run_suite("relay_db", NULL, UNIT_CASES(tests));
    relay_db_free(r);
    db_free(db);
    fake_reset();
    return rc;
}
