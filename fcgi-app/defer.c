#include "first.h"

#include "defer.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"

/* A slot's state area, aligned for any state a handler copies in. */
struct state_area {
    alignas(max_align_t) unsigned char bytes[DEFER_STATE_MAX];
};

struct parked {
    int slot;
    const struct defer_ops *ops;
};

struct defer {
    int nslots;
    int current;               /* the slot begun last; -1 = none */
    int current_parked;        /* it was parked */
    struct state_area *states; /* per slot */
    struct parked *parked;     /* this round's, in the order parked */
    int nparked;
    const struct defer_ops *kinds[DEFER_KINDS_MAX]; /* this round's, first park first */
    int nkinds;
    void **batch; /* flush's argument */
};

struct defer *defer_new(int nslots)
{
    if (nslots <= 0)
        return NULL;
    struct defer *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->nslots = nslots;
    d->current = -1;
    d->states = calloc((size_t)nslots, sizeof *d->states);
    d->parked = calloc((size_t)nslots, sizeof *d->parked);
    d->batch = calloc((size_t)nslots, sizeof *d->batch);
    if (d->states == NULL || d->parked == NULL || d->batch == NULL) {
        defer_free(d);
        return NULL;
    }
    return d;
}

void defer_free(struct defer *d)
{
    if (d == NULL)
        return;
    free(d->batch);
    free(d->parked);
    free(d->states);
    free(d);
}

void defer_begin(struct defer *d, int slot)
{
    d->current = slot >= 0 && slot < d->nslots ? slot : -1;
    d->current_parked = 0;
}

/* The index of ops among this round's kinds, added when new; -1 when full. */
static int kind_of(struct defer *d, const struct defer_ops *ops)
{
    for (int k = 0; k < d->nkinds; k++)
        if (d->kinds[k] == ops)
            return k;
    if (d->nkinds == DEFER_KINDS_MAX)
        return -1;
    d->kinds[d->nkinds] = ops;
    return d->nkinds++;
}

int defer_park(struct defer *d, const struct defer_ops *ops, const void *state, size_t size)
{
    if (d == NULL)
        return CP_ERR_UNAVAILABLE;
    if (d->current < 0 || d->current_parked || size > DEFER_STATE_MAX || kind_of(d, ops) < 0)
        return CP_ERR_LIMIT;
    memcpy(d->states[d->current].bytes, state, size);
    d->parked[d->nparked++] = (struct parked){.slot = d->current, .ops = ops};
    d->current_parked = 1;
    return CP_OK;
}

int defer_parked(const struct defer *d)
{
    return d->current >= 0 && d->current_parked;
}

int defer_count(const struct defer *d)
{
    return d->nparked;
}

void defer_round(struct defer *d, struct app_thread *t, const struct defer_host *host)
{
    for (int k = 0; k < d->nkinds; k++) {
        int n = 0;
        for (int i = 0; i < d->nparked; i++)
            if (d->parked[i].ops == d->kinds[k])
                d->batch[n++] = d->states[d->parked[i].slot].bytes;
        d->kinds[k]->flush(t, d->batch, n);
    }
    for (int i = 0; i < d->nparked; i++) {
        const struct parked *p = &d->parked[i];
        struct http_response resp;
        host->resume(host->ctx, p->slot, &resp);
        p->ops->finish(t, d->states[p->slot].bytes, &resp);
        host->answer(host->ctx, p->slot, &resp);
    }
    d->nparked = 0;
    d->nkinds = 0;
    d->current = -1;
    d->current_parked = 0;
}
