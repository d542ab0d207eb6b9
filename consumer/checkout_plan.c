#include "first.h"

#include "checkout_plan.h"

#include <stdlib.h>

static int cmp_change(const void *a, const void *b)
{
    const struct rkey_change *x = &((const struct planned_change *)a)->change;
    const struct rkey_change *y = &((const struct planned_change *)b)->change;
    if (x->user_id != y->user_id)
        return x->user_id < y->user_id ? -1 : 1;
    return (x->version > y->version) - (x->version < y->version);
}

size_t checkout_plan_sort(struct planned_change *c, size_t n, int64_t *users)
{
    qsort(c, n, sizeof *c, cmp_change);
    size_t nu = 0;
    for (size_t i = 0; i < n; i++)
        if (nu == 0 || users[nu - 1] != c[i].change.user_id)
            users[nu++] = c[i].change.user_id;
    return nu;
}

static const struct plan_row *row_of(const struct plan_row *rows, size_t nrows, int64_t user)
{
    size_t lo = 0, hi = nrows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rows[mid].user_id == user)
            return &rows[mid];
        if (rows[mid].user_id < user)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t checkout_plan_mark(struct planned_change *c, size_t n, const struct plan_row *rows,
                          size_t nrows)
{
    size_t apply = 0;
    for (size_t i = 0; i < n;) {
        int64_t user = c[i].change.user_id;
        const struct plan_row *row = row_of(rows, nrows, user);
        int64_t version = row != NULL && row->found ? row->version : -1;
        int blocked = version < 0; /* no row: everything of this user waits */
        for (; i < n && c[i].change.user_id == user; i++) {
            c[i].row_id = row != NULL && row->found ? row->row_id : 0;
            c[i].sequence = row != NULL && row->found ? row->sequence : 0;
            if (!blocked && c[i].change.version <= version) {
                c[i].action = CHANGE_DUPLICATE;
            } else if (!blocked && c[i].change.version == version + 1) {
                c[i].action = CHANGE_APPLY;
                version++;
                apply++;
            } else {
                c[i].action = CHANGE_WAIT; /* and so is every later version */
                blocked = 1;
            }
        }
    }
    return apply;
}
