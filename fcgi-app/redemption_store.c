#include "first.h"

#include "redemption_store.h"

#include <string.h>

#include "cp_err.h"
#include "db.h"
#include "issuecode.h"

static const char code_sql[] = "SELECT CAST(coupon_id AS SIGNED), CAST(user_id AS SIGNED), code "
                               "FROM coupon_issue WHERE code = ? LIMIT 2";

/* The rows of one code, compared in constant time. */
struct code_match {
    char want[CP_ISSUE_CODE_CHARS + 1], got[CP_ISSUE_CODE_CHARS + 1];
    unsigned long got_len;
    int64_t cid, uid, *coupon_id, *user_id;
    int rows, match;
};

static int code_row(void *arg)
{
    struct code_match *m = arg;
    /* The index matched bytes; the constant-time comparison is what decides, and a row
     * of another length can never match. */
    int equal = m->got_len == CP_ISSUE_CODE_CHARS && issuecode_equal(m->got, m->want);
    if (equal && m->rows == 0) {
        *m->coupon_id = m->cid;
        *m->user_id = m->uid;
    }
    m->match += equal;
    m->rows++;
    return CP_OK;
}

int redemption_store_find_code(struct db *db, const char *code, int64_t *coupon_id,
                               int64_t *user_id)
{
    static const char dummy[CP_ISSUE_CODE_CHARS + 1] = "000000000000";
    if (strlen(code) != CP_ISSUE_CODE_CHARS)
        return CP_ERR_INVALID;
    struct code_match m = {.coupon_id = coupon_id, .user_id = user_id};
    memcpy(m.want, code, sizeof m.want);
    unsigned long want_len = CP_ISSUE_CODE_CHARS;
    MYSQL_BIND p[1], res[3];
    db_bind_text(&p[0], m.want, want_len, &want_len, NULL);
    db_bind_i64(&res[0], &m.cid, NULL);
    db_bind_i64(&res[1], &m.uid, NULL);
    db_bind_text(&res[2], m.got, sizeof m.got, &m.got_len, NULL);
    int rc = db_fetch_each(db, code_sql, p, res, code_row, &m);
    if (rc != CP_OK)
        return rc;
    if (m.rows == 0)
        (void)issuecode_equal(dummy, m.want); /* the same comparison as a found row costs */
    return m.match == 0 ? CP_ERR_NOT_FOUND : m.match == 1 ? CP_OK : CP_ERR_CONFLICT;
}
