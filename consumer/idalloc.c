#include "first.h"

#include "idalloc.h"

#include <inttypes.h>
#include <stdlib.h>

#include "cp_err.h"
#include "log.h"

static const char settings_sql[] = "SELECT CAST(@@innodb_autoinc_lock_mode AS SIGNED), "
                                   "CAST(@@auto_increment_increment AS SIGNED)";

struct idalloc {
    uint64_t session; /* the connection it was learnt on; 0 = not yet */
    int consecutive;
};

struct idalloc *idalloc_new(void)
{
    return calloc(1, sizeof(struct idalloc));
}

void idalloc_free(struct idalloc *a)
{
    free(a);
}

int idalloc_consecutive(struct idalloc *a, struct db *db)
{
    if (a->session != 0 && a->session == db_session(db))
        return a->consecutive;
    int64_t v[2] = {-1, -1};
    MYSQL_BIND res[2];
    db_bind_i64(&res[0], &v[0], NULL);
    db_bind_i64(&res[1], &v[1], NULL);
    int rc = db_fetch_one(db, settings_sql, NULL, res);
    if (rc != CP_OK)
        return rc == CP_ERR_NOT_FOUND ? CP_ERR_UNAVAILABLE : rc;
    a->session = db_session(db);
    a->consecutive = (v[0] == 0 || v[0] == 1) && v[1] == 1;
    log_info(
        "mariadb: innodb_autoinc_lock_mode %" PRId64 ", auto_increment_increment %" PRId64 ": %s",
        v[0], v[1], a->consecutive ? "inserting optimistically" : "checking every batch first");
    return a->consecutive;
}
