/*
 * coupon_store.h - coupons in MariaDB (the source of truth for campaigns) and
 * their issuance parameters in Redis (coupon:{ID}:meta).
 *
 * Every statement is prepared; ids and times travel as bound integers, never
 * as text in SQL. Times are epoch milliseconds (the session runs in UTC).
 * Functions take the caller's thread-owned client (common/db) and return
 * CP_OK, CP_ERR_NOT_FOUND, or db.h's codes when MariaDB failed.
 */
#ifndef COUPON_COUPON_STORE_H
#define COUPON_COUPON_STORE_H

#include <stdint.h>

#include "cp_limits.h"
#include "db.h"

struct coupon {
    int64_t id;
    char title[CP_TITLE_MAX_CHARS * 4 + 1];
    char code[CP_CODE_MAX_CHARS * 4 + 1];
    int has_code;
    char coupon_type[32];
    char discount_type[16];
    char discount_value[32]; /* DECIMAL as text, e.g. "10.00" */
    int64_t start_ms, end_ms;
    int64_t total_quantity; /* -1 = unlimited */
    int64_t issued_quantity;
    char description[CP_DESCRIPTION_MAX_CHARS * 4 + 1];
    int has_description;
    int64_t created_ms, updated_ms;
    /* Validity after issuance (set at creation only): -1 = no limit. */
    int64_t usable_days;
    int64_t usable_until_ms;
    /* Money (issue 26, set at creation only): "" = NULL. The amounts are DECIMAL text
     * as MariaDB wrote it ("50.000"); common/money.h reads them at the currency's
     * exponent. */
    char currency[4];
    char min_order_amount[32];
    char max_discount_amount[32];
};

/* Loads one coupon. */
int coupon_store_get(struct db *db, int64_t id, struct coupon *out);

/* Whether any issuance row exists for the coupon (1/0), or a negative error. */
int coupon_store_has_issues(struct db *db, int64_t id);

/* Inserts a new coupon and sets c->id. CP_ERR_CONFLICT for a code already in use,
 * CP_ERR_INVALID when the server's checks refuse it. */
int coupon_store_insert(struct db *db, struct coupon *c);

/* Writes the changeable fields (title, description, end_ms, total_quantity). */
int coupon_store_update(struct db *db, const struct coupon *c);

/* An issuance held now, as a condition on `coupon_issue` (MariaDB's clock): a hold that
 * lapsed is not counted even before the checkout applier wrote its lapse. */
#define COUPON_STORE_HELD_NOW "hold_order_id IS NOT NULL AND hold_expires_at > NOW(3)"

/* Rows in coupon_issue for the coupon, and how many are redeemed (redeemed != NULL) and
 * held now (held != NULL). */
int coupon_store_count_issues(struct db *db, int64_t id, int64_t *count, int64_t *redeemed,
                              int64_t *held);

/* One persisted issuance as reads show it. Times -1 = NULL; code "" = NULL. */
struct issuance {
    int64_t sequence, issued_ms, used_ms, usable_until_ms;
    char code[CP_ISSUE_CODE_CHARS + 1];
    char order_id[CP_ORDER_ID_MAX_CHARS + 1];
};

/* The columns of struct issuance in a SELECT over `coupon_issue ci`, in the order
 * coupon_store_bind_issuance() binds them (COUPON_STORE_ISSUANCE_NCOLS of them). */
#define COUPON_STORE_ISSUANCE_COLUMNS                                                    \
    "CAST(ci.sequence AS SIGNED), CAST(UNIX_TIMESTAMP(ci.issued_at) * 1000 AS SIGNED), " \
    "COALESCE(CAST(UNIX_TIMESTAMP(ci.used_at) * 1000 AS SIGNED), -1), "                  \
    "COALESCE(CAST(UNIX_TIMESTAMP(ci.usable_until) * 1000 AS SIGNED), -1), "             \
    "COALESCE(ci.code, ''), COALESCE(ci.redeemed_order_id, '') "
#define COUPON_STORE_ISSUANCE_NCOLS 6

struct coupon_store_issuance_lens {
    unsigned long code_len, order_len;
};
/* Binds res[0..COUPON_STORE_ISSUANCE_NCOLS) to *is; after a fetch, finish terminates
 * the strings (the bind API does not). */
void coupon_store_bind_issuance(MYSQL_BIND *res, struct issuance *is,
                                struct coupon_store_issuance_lens *lens);
void coupon_store_finish_issuance(struct issuance *is,
                                  const struct coupon_store_issuance_lens *lens);

/* One persisted issuance; CP_ERR_NOT_FOUND when there is no row. */
int coupon_store_issue_get(struct db *db, int64_t coupon_id, int64_t user_id, struct issuance *out);

struct user_coupon {
    int64_t issue_id, coupon_id;
    struct issuance is;
    char title[CP_TITLE_MAX_CHARS * 4 + 1];
};
typedef int (*coupon_store_row_fn)(void *arg, const struct user_coupon *row);

/* A user's persisted issuances with coupon_issue.id < before_id, newest first, at
 * most `limit`; fn is called per row (a non-zero return stops and is returned). */
int coupon_store_user_coupons(struct db *db, int64_t user_id, int64_t before_id, int limit,
                              coupon_store_row_fn fn, void *arg);

/* One campaign of the console's list. */
struct coupon_summary {
    int64_t id, total_quantity /* -1 = unlimited */, issued_quantity, start_ms, end_ms;
    int64_t redeemed, held; /* coupon_store_checkout_counts; coupon_store_list sets 0 */
    char title[CP_TITLE_MAX_CHARS * 4 + 1];
};

/* Coupons with id < before_id, newest first, at most `limit` rows into out; *n rows. */
int coupon_store_list(struct db *db, int64_t before_id, int limit, struct coupon_summary *out,
                      size_t *n);

/* Sets redeemed and held (COUPON_STORE_HELD_NOW) of rows[0..n) with one aggregate over
 * coupon_issue, grouped by coupon, for the ids between the rows' least and greatest:
 * for a page of coupon_store_list that range is exactly the page's ids (a keyset page
 * skips none), and the statement's text is the same for every page. Rows of any other
 * set are counted right too; coupons in the range that are not rows are read, not kept. */
int coupon_store_checkout_counts(struct db *db, struct coupon_summary *rows, size_t n);

#endif
