/*
 * test_db.c - common/db over the scripted fake (tests/unit/db_fake.h): lazy
 * connect and its back-off, the statement cache, errors mapped to codes, a
 * connection error dropping the connection, and db_tx's commit, rollback and
 * deadlock re-runs. The fake itself is what every store's test uses.
 */
#include "first.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "db.h"
#include "db_fake.h"
#include "unit_main.h"

static const char q_one[] = "SELECT a, b FROM t WHERE id = ?";
static const char q_upd[] = "UPDATE t SET a = ? WHERE id = ?";

static struct db *fresh(void)
{
    fake_reset();
    struct db *db = fake_db();
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    return db;
}

static int select_one(struct db *db, int64_t id, int64_t *a, char *b, size_t cap)
{
    unsigned long blen = 0;
    MYSQL_BIND p, res[2];
    db_bind_i64(&p, &id, NULL);
    db_bind_i64(&res[0], a, NULL);
    db_bind_text(&res[1], b, cap, &blen, NULL);
    int rc = db_fetch_one(db, q_one, &p, res);
    if (rc == CP_OK)
        db_text_end(b, cap, blen);
    return rc;
}

static void open_does_no_io_and_connects_on_first_use(void)
{
    struct db *db = fresh();
    CU_ASSERT_EQUAL(fake.connects, 0);
    CU_ASSERT_EQUAL(db_session(db), 0);
    fake_rows(q_one, (const char *[]){"7|seven", NULL});
    int64_t a = 0;
    char b[16];
    CU_ASSERT_EQUAL(select_one(db, 3, &a, b, sizeof b), CP_OK);
    CU_ASSERT_EQUAL(a, 7);
    CU_ASSERT_STRING_EQUAL(b, "seven");
    CU_ASSERT_EQUAL(db_session(db), 1);
    CU_ASSERT_STRING_EQUAL(fake_log_from(0), "connect\nprepare SELECT a, b FROM t WHERE id = ?\n"
                                             "exec SELECT a, b FROM t WHERE id = ? <- 3");
    db_free(db);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
    CU_ASSERT_EQUAL(fake.open_stmts, 0);
}

static void statements_are_prepared_once_per_connection(void)
{
    struct db *db = fresh();
    int64_t a;
    char b[16];
    fake_rows(q_one, (const char *[]){"1|x", NULL});
    fake_rows(q_one, (const char *[]){NULL});
    CU_ASSERT_EQUAL(select_one(db, 1, &a, b, sizeof b), CP_OK);
    CU_ASSERT_EQUAL(select_one(db, 2, &a, b, sizeof b), CP_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(fake_count("prepare"), 1);
    CU_ASSERT_EQUAL(fake_count("exec"), 2);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
    db_free(db);
}

static void the_least_recently_used_statement_is_closed_first(void)
{
    struct db *db = fresh();
    char sql[DB_STMT_CACHE + 1][32];
    for (int i = 0; i <= DB_STMT_CACHE; i++) {
        snprintf(sql[i], sizeof sql[i], "DELETE FROM t%d", i);
        fake_ok(sql[i], 0, 0);
        CU_ASSERT_EQUAL(db_exec(db, sql[i], NULL), CP_OK);
        /* The cache is full: t0 used again leaves t1 the least recent when t32 comes. */
        if (i == DB_STMT_CACHE - 1) {
            fake_ok(sql[0], 0, 0);
            CU_ASSERT_EQUAL(db_exec(db, sql[0], NULL), CP_OK);
        }
    }
    CU_ASSERT_EQUAL(fake.open_stmts, DB_STMT_CACHE);
    fake_ok(sql[0], 0, 0);
    fake_ok(sql[1], 0, 0);
    CU_ASSERT_EQUAL(db_exec(db, sql[0], NULL), CP_OK); /* still prepared */
    CU_ASSERT_EQUAL(fake_count("prepare"), DB_STMT_CACHE + 1);
    CU_ASSERT_EQUAL(db_exec(db, sql[1], NULL), CP_OK); /* was closed: prepared again */
    CU_ASSERT_EQUAL(fake_count("prepare"), DB_STMT_CACHE + 2);
    CU_ASSERT_EQUAL(fake.open_stmts, DB_STMT_CACHE);
    CU_ASSERT_EQUAL(fake.unexpected, 0);
    db_free(db);
}

static void a_refused_connect_backs_off(void)
{
    struct db *db = fresh();
    fake.refuse_connect = 1;
    CU_ASSERT_EQUAL(db_exec(db, q_upd, NULL), CP_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(db_errstr(db), "connection refused"));
    fake.now_ms += DB_BACKOFF_MS - 1;
    CU_ASSERT_EQUAL(db_exec(db, q_upd, NULL), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fake.connects, 1); /* no attempt during the back-off */
    fake.now_ms += 1;
    int64_t v[2] = {5, 6};
    MYSQL_BIND p[2];
    db_bind_i64(&p[0], &v[0], NULL);
    db_bind_i64(&p[1], &v[1], NULL);
    fake_ok(q_upd, 1, 0);
    CU_ASSERT_EQUAL(db_exec(db, q_upd, p), CP_OK);
    CU_ASSERT_EQUAL(fake.connects, 2);
    CU_ASSERT_EQUAL(db_affected_rows(db), 1);
    db_free(db);
}

static void a_lost_connection_is_dropped_and_reopened(void)
{
    struct db *db = fresh();
    int64_t a;
    char b[16];
    fake_fail(q_one, FAKE_CR_SERVER_LOST);
    CU_ASSERT_EQUAL(select_one(db, 1, &a, b, sizeof b), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(db_errno(db), FAKE_CR_SERVER_LOST);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
    CU_ASSERT_EQUAL(fake.open_stmts, 0);
    CU_ASSERT_EQUAL(db_session(db), 0);
    fake_rows(q_one, (const char *[]){"2|y", NULL});
    CU_ASSERT_EQUAL(select_one(db, 1, &a, b, sizeof b), CP_OK);
    CU_ASSERT_EQUAL(db_session(db), 2);
    CU_ASSERT_EQUAL(fake_count("prepare"), 2); /* prepared again on the new connection */
    db_free(db);
}

static void statement_errors_map_to_codes_and_keep_the_connection(void)
{
    struct db *db = fresh();
    fake_fail(q_upd, FAKE_ER_DUP_ENTRY);
    fake_fail(q_upd, FAKE_ER_CHECK);
    fake_fail(q_upd, 1146 /* no such table */);
    int64_t v[2] = {1, 2};
    MYSQL_BIND p[2];
    db_bind_i64(&p[0], &v[0], NULL);
    db_bind_i64(&p[1], &v[1], NULL);
    CU_ASSERT_EQUAL(db_exec(db, q_upd, p), CP_ERR_CONFLICT);
    CU_ASSERT_EQUAL(db_exec(db, q_upd, p), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(db_exec(db, q_upd, p), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(fake.connects, 1);
    CU_ASSERT_EQUAL(fake.open_conns, 1);
    db_free(db);
}

static void a_deadlocked_statement_alone_runs_again(void)
{
    struct db *db = fresh();
    fake_fail(q_upd, FAKE_ER_DEADLOCK);
    fake_ok(q_upd, 1, 0);
    int64_t v[2] = {1, 2};
    MYSQL_BIND p[2];
    db_bind_i64(&p[0], &v[0], NULL);
    db_bind_i64(&p[1], &v[1], NULL);
    CU_ASSERT_EQUAL(db_exec(db, q_upd, p), CP_OK);
    CU_ASSERT_EQUAL(fake_count("exec"), 2);
    fake_fail(q_upd, FAKE_ER_DEADLOCK);
    fake_fail(q_upd, FAKE_ER_DEADLOCK);
    fake_fail(q_upd, FAKE_ER_DEADLOCK);
    CU_ASSERT_EQUAL(db_exec(db, q_upd, p), CP_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(fake_count("exec"), 2 + DB_ATTEMPTS);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    db_free(db);
}

struct each {
    int64_t a;
    char b[4];
    unsigned long blen;
    int64_t seen[8];
    int n, stop_at;
};

static int each_row(void *arg)
{
    struct each *e = arg;
    e->seen[e->n++] = e->a;
    return e->n == e->stop_at ? 42 : 0;
}

static void fetch_each_calls_back_per_row_and_stops_when_told(void)
{
    struct db *db = fresh();
    struct each e = {.stop_at = 0};
    MYSQL_BIND res[2];
    db_bind_i64(&res[0], &e.a, NULL);
    db_bind_text(&res[1], e.b, sizeof e.b, &e.blen, NULL);
    fake_rows("SELECT a, b FROM t", (const char *[]){"1|a", "2|bbbbbb", "3|c", NULL});
    CU_ASSERT_EQUAL(db_fetch_each(db, "SELECT a, b FROM t", NULL, res, each_row, &e), CP_OK);
    CU_ASSERT_EQUAL(e.n, 3);
    CU_ASSERT_EQUAL(e.seen[1], 2);
    fake_rows("SELECT a, b FROM t", (const char *[]){"1|a", "2|b", "3|c", NULL});
    e.n = 0;
    e.stop_at = 2;
    CU_ASSERT_EQUAL(db_fetch_each(db, "SELECT a, b FROM t", NULL, res, each_row, &e), 42);
    CU_ASSERT_EQUAL(e.n, 2);
    /* A fetch that fails with the connection drops it. */
    fake_script(&(struct fake_reply){
        .sql = "SELECT a, b FROM t", .rows = {"9|z"}, .fetch_err = FAKE_CR_SERVER_LOST});
    e.n = 0;
    e.stop_at = 0;
    CU_ASSERT_EQUAL(db_fetch_each(db, "SELECT a, b FROM t", NULL, res, each_row, &e),
                    CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(e.n, 1);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
    db_free(db);
}

struct tx_arg {
    int runs;
    int ret;
};

static int tx_body(struct db *db, void *arg)
{
    struct tx_arg *t = arg;
    t->runs++;
    int rc = db_exec(db, q_upd, NULL);
    return rc != CP_OK ? rc : t->ret;
}

static void tx_commits_and_restores_autocommit(void)
{
    struct db *db = fresh();
    struct tx_arg t = {0, CP_OK};
    fake_ok(q_upd, 1, 0);
    CU_ASSERT_EQUAL(db_tx(db, tx_body, &t), CP_OK);
    CU_ASSERT_STRING_EQUAL(fake_log_from(0), "connect\nbegin\nprepare UPDATE t SET a = ? WHERE "
                                             "id = ?\nexec UPDATE t SET a = ? WHERE id = ? <- "
                                             "\ncommit\nautocommit");
    db_free(db);
}

static void tx_rolls_back_on_a_positive_or_negative_return(void)
{
    struct db *db = fresh();
    struct tx_arg t = {0, 1};
    fake_ok(q_upd, 0, 0);
    CU_ASSERT_EQUAL(db_tx(db, tx_body, &t), 1);
    fake_fail(q_upd, FAKE_ER_DUP_ENTRY);
    t.ret = CP_OK;
    CU_ASSERT_EQUAL(db_tx(db, tx_body, &t), CP_ERR_CONFLICT);
    CU_ASSERT_EQUAL(t.runs, 2);
    CU_ASSERT_EQUAL(fake_count("rollback"), 2);
    CU_ASSERT_EQUAL(fake_count("autocommit"), 2);
    CU_ASSERT_EQUAL(fake_count("commit"), 0);
    db_free(db);
}

static void a_deadlock_runs_the_whole_transaction_again(void)
{
    struct db *db = fresh();
    struct tx_arg t = {0, CP_OK};
    fake_fail(q_upd, FAKE_ER_DEADLOCK);
    fake_fail(q_upd, FAKE_ER_LOCK_WAIT);
    fake_ok(q_upd, 1, 0);
    CU_ASSERT_EQUAL(db_tx(db, tx_body, &t), CP_OK);
    CU_ASSERT_EQUAL(t.runs, 3);
    CU_ASSERT_EQUAL(fake_count("begin"), 3);
    CU_ASSERT_EQUAL(fake_count("rollback"), 2);
    CU_ASSERT_EQUAL(fake_count("commit"), 1);
    /* Deadlocked every time: given up after DB_ATTEMPTS runs. */
    t.runs = 0;
    for (int i = 0; i < DB_ATTEMPTS; i++)
        fake_fail(q_upd, FAKE_ER_DEADLOCK);
    CU_ASSERT_EQUAL(db_tx(db, tx_body, &t), CP_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(t.runs, DB_ATTEMPTS);
    CU_ASSERT_EQUAL(fake_pending(), 0);
    db_free(db);
}

static void a_connection_lost_mid_transaction_commits_nothing(void)
{
    struct db *db = fresh();
    struct tx_arg t = {0, CP_OK};
    fake_fail(q_upd, FAKE_CR_SERVER_LOST);
    CU_ASSERT_EQUAL(db_tx(db, tx_body, &t), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(t.runs, 1);
    CU_ASSERT_EQUAL(fake_count("commit"), 0);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
    /* A commit that fails with the connection: unavailable, not retried. */
    fake_ok(q_upd, 1, 0);
    fake.fail_control[DB_COMMIT] = FAKE_CR_SERVER_LOST;
    CU_ASSERT_EQUAL(db_tx(db, tx_body, &t), CP_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(t.runs, 2);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
    db_free(db);
}

static void a_closed_idle_connection_is_dropped_before_use(void)
{
    struct db *db = fresh();
    CU_ASSERT_EQUAL(db_ping(db), CP_OK);
    fake.closed = 1;
    db_drop_closed(db);
    CU_ASSERT_EQUAL(fake.open_conns, 0);
    CU_ASSERT_EQUAL(db_ping(db), CP_OK);
    CU_ASSERT_EQUAL(fake.connects, 2);
    db_free(db);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"open_does_no_io_and_connects_on_first_use", open_does_no_io_and_connects_on_first_use},
        {"statements_are_prepared_once_per_connection",
         statements_are_prepared_once_per_connection},
        {"the_least_recently_used_statement_is_closed_first",
         the_least_recently_used_statement_is_closed_first},
        {"a_refused_connect_backs_off", a_refused_connect_backs_off},
        {"a_lost_connection_is_dropped_and_reopened", a_lost_connection_is_dropped_and_reopened},
        {"statement_errors_map_to_codes_and_keep_the_connection",
         statement_errors_map_to_codes_and_keep_the_connection},
        {"a_deadlocked_statement_alone_runs_again", a_deadlocked_statement_alone_runs_again},
        {"fetch_each_calls_back_per_row_and_stops_when_told",
         fetch_each_calls_back_per_row_and_stops_when_told},
        {"tx_commits_and_restores_autocommit", tx_commits_and_restores_autocommit},
        {"tx_rolls_back_on_a_positive_or_negative_return",
         tx_rolls_back_on_a_positive_or_negative_return},
        {"a_deadlock_runs_the_whole_transaction_again",
         a_deadlock_runs_the_whole_transaction_again},
        {"a_connection_lost_mid_transaction_commits_nothing",
         a_connection_lost_mid_transaction_commits_nothing},
        {"a_closed_idle_connection_is_dropped_before_use",
         a_closed_idle_connection_is_dropped_before_use},
    };
    int rc = unit_run_suite("db", NULL, UNIT_CASES(tests));
    fake_reset();
    return rc;
}
