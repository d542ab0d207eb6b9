#include "first.h"

#include "series.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cp_err.h"

#define SERIES_VERSION 0x53455201u /* "SER" v1 */

struct sample {
    atomic_int_least64_t sec; /* the second these counts belong to; 0 = being written */
    atomic_uint_least32_t claims[SERIES_CAMPAIGNS];
    atomic_uint_least32_t answers[SERIES_STATUSES];
};

struct series_shm {
    atomic_uint version;
    atomic_int_least64_t slot_id[SERIES_CAMPAIGNS]; /* coupon id, 0 = free */
    atomic_uint_least64_t slot_claims[SERIES_CAMPAIGNS];
    atomic_int_least64_t last_sec;
    atomic_int nstatus;
    atomic_int status_code[SERIES_STATUSES];
    struct sample ring[SERIES_SECONDS];
};

/* The sampler's private state (only the process that samples uses it). */
struct sampler {
    int started;
    int64_t prev_sec;
    int64_t seen_id[SERIES_CAMPAIGNS];
    uint64_t seen_claims[SERIES_CAMPAIGNS];
    int64_t last_claim_sec[SERIES_CAMPAIGNS];
    uint64_t seen_answers[SERIES_STATUSES];
};

struct series {
    struct series_shm *shm;
    struct sampler smp;
};

struct series *series_open(const char *metrics_path, int create, char *errbuf, size_t errlen)
{
    char path[512];
    struct series *s = NULL;
    void *map = MAP_FAILED;
    if (snprintf(path, sizeof path, "%s.series", metrics_path) >= (int)sizeof path) {
        snprintf(errbuf, errlen, "series file: metrics_path too long");
        return NULL;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    struct stat st;
    if (fstat(fd, &st) != 0)
        goto fail;
    if ((create || (size_t)st.st_size != sizeof(struct series_shm)) &&
        (ftruncate(fd, 0) != 0 || ftruncate(fd, sizeof(struct series_shm)) != 0))
        goto fail;
    map = mmap(NULL, sizeof(struct series_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        goto fail;
    close(fd);
    fd = -1;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        munmap(map, sizeof(struct series_shm));
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    s->shm = map;
    unsigned expected = 0;
    if (!atomic_compare_exchange_strong(&s->shm->version, &expected, SERIES_VERSION) &&
        expected != SERIES_VERSION) {
        memset(s->shm, 0, sizeof *s->shm);
        atomic_store(&s->shm->version, SERIES_VERSION);
    }
    return s;
fail:
    snprintf(errbuf, errlen, "series file %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return NULL;
}

void series_close(struct series *s)
{
    if (s == NULL)
        return;
    munmap(s->shm, sizeof *s->shm);
    free(s);
}

static size_t home_slot(int64_t coupon_id)
{
    return (size_t)((uint64_t)coupon_id % SERIES_CAMPAIGNS);
}

/* The slot holding coupon_id, or -1. */
static int find_slot(const struct series_shm *shm, int64_t coupon_id)
{
    size_t h = home_slot(coupon_id);
    for (size_t i = 0; i < SERIES_CAMPAIGNS; i++) {
        size_t k = (h + i) % SERIES_CAMPAIGNS;
        if (atomic_load_explicit(&shm->slot_id[k], memory_order_acquire) == coupon_id)
            return (int)k;
    }
    return -1;
}

void series_claim(struct series *s, int64_t coupon_id)
{
    if (s == NULL || coupon_id <= 0)
        return;
    struct series_shm *shm = s->shm;
    int k = find_slot(shm, coupon_id);
    for (size_t i = 0; k < 0 && i < SERIES_CAMPAIGNS; i++) {
        size_t j = (home_slot(coupon_id) + i) % SERIES_CAMPAIGNS;
        int_least64_t free_id = 0;
        if (atomic_compare_exchange_strong(&shm->slot_id[j], &free_id, coupon_id))
            k = (int)j;
        else if (free_id == coupon_id) /* another thread took one for it meanwhile */
            k = (int)j;
    }
    if (k >= 0)
        atomic_fetch_add_explicit(&shm->slot_claims[k], 1, memory_order_relaxed);
}

static uint32_t clamp32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Summed answers of both issue endpoints by metrics status slot; returns the count. */
static int issue_answers(struct metrics *m, int *codes, uint64_t *counts)
{
    int codes2[SERIES_STATUSES];
    uint64_t counts2[SERIES_STATUSES];
    int n = metrics_route_answers(m, ROUTE_ISSUE, codes, counts, SERIES_STATUSES);
    int n2 = metrics_route_answers(m, ROUTE_ISSUE_REF, codes2, counts2, SERIES_STATUSES);
    for (int i = 0; i < n && i < n2; i++)
        counts[i] += counts2[i];
    return n;
}

void series_sample(struct series *s, struct metrics *m, int64_t now_sec)
{
    struct series_shm *shm = s->shm;
    struct sampler *p = &s->smp;
    int codes[SERIES_STATUSES];
    uint64_t answers[SERIES_STATUSES];
    int n = issue_answers(m, codes, answers);
    int64_t sec = now_sec - 1; /* the second that just ended */
    if (!p->started || sec <= p->prev_sec) {
        if (!p->started) {
            memcpy(p->seen_answers, answers, sizeof answers);
            for (int k = 0; k < SERIES_CAMPAIGNS; k++) {
                p->seen_id[k] = atomic_load(&shm->slot_id[k]);
                p->seen_claims[k] = atomic_load(&shm->slot_claims[k]);
                p->last_claim_sec[k] = sec;
            }
            for (int i = 0; i < n; i++)
                atomic_store(&shm->status_code[i], codes[i]);
            atomic_store(&shm->nstatus, n);
            p->prev_sec = sec;
            p->started = 1;
        }
        return;
    }
    struct sample *e = &shm->ring[(uint64_t)sec % SERIES_SECONDS];
    atomic_store_explicit(&e->sec, 0, memory_order_release);
    for (int k = 0; k < SERIES_CAMPAIGNS; k++) {
        int64_t id = atomic_load_explicit(&shm->slot_id[k], memory_order_acquire);
        uint64_t total = atomic_load_explicit(&shm->slot_claims[k], memory_order_relaxed);
        if (id != p->seen_id[k]) {
            /* A new campaign in this slot: its history starts now. */
            for (size_t r = 0; r < SERIES_SECONDS; r++)
                atomic_store_explicit(&shm->ring[r].claims[k], 0, memory_order_relaxed);
            p->seen_id[k] = id;
            p->last_claim_sec[k] = sec;
        }
        uint64_t delta = total >= p->seen_claims[k] ? total - p->seen_claims[k] : total;
        p->seen_claims[k] = total;
        if (delta > 0)
            p->last_claim_sec[k] = sec;
        atomic_store_explicit(&e->claims[k], clamp32(delta), memory_order_relaxed);
        if (id != 0 && sec - p->last_claim_sec[k] >= SERIES_SECONDS) {
            /* Idle for the whole window: give the slot back. */
            atomic_store_explicit(&shm->slot_claims[k], 0, memory_order_relaxed);
            atomic_store_explicit(&shm->slot_id[k], 0, memory_order_release);
            p->seen_claims[k] = 0;
        }
    }
    for (int i = 0; i < SERIES_STATUSES; i++) {
        uint64_t d =
            i < n && answers[i] >= p->seen_answers[i] ? answers[i] - p->seen_answers[i] : 0;
        atomic_store_explicit(&e->answers[i], clamp32(d), memory_order_relaxed);
        p->seen_answers[i] = i < n ? answers[i] : 0;
    }
    atomic_store_explicit(&e->sec, sec, memory_order_release);
    atomic_store_explicit(&shm->last_sec, sec, memory_order_release);
    p->prev_sec = sec;
}

int series_read(struct series *s, int64_t coupon_id, int seconds, struct series_view *v)
{
    if (seconds < 1 || seconds > SERIES_SECONDS)
        return CP_ERR_INVALID;
    struct series_shm *shm = s->shm;
    memset(v, 0, sizeof *v);
    v->seconds = seconds;
    v->last_sec = atomic_load_explicit(&shm->last_sec, memory_order_acquire);
    v->nstatus = atomic_load(&shm->nstatus);
    if (v->nstatus < 0 || v->nstatus > SERIES_STATUSES)
        v->nstatus = 0;
    for (int i = 0; i < v->nstatus; i++)
        v->status_code[i] = atomic_load(&shm->status_code[i]);
    int k = find_slot(shm, coupon_id);
    v->tracked = k >= 0;
    if (v->last_sec == 0)
        return CP_OK;
    for (int j = 0; j < seconds; j++) {
        int64_t sec = v->last_sec - (seconds - 1) + j;
        if (sec <= 0)
            continue;
        struct sample *e = &shm->ring[(uint64_t)sec % SERIES_SECONDS];
        if (atomic_load_explicit(&e->sec, memory_order_acquire) != sec)
            continue; /* not sampled (the sampler was late) or being rewritten */
        uint32_t claims = k >= 0 ? atomic_load_explicit(&e->claims[k], memory_order_relaxed) : 0;
        uint32_t ans[SERIES_STATUSES];
        for (int i = 0; i < v->nstatus; i++)
            ans[i] = atomic_load_explicit(&e->answers[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->sec, memory_order_acquire) != sec)
            continue;
        v->claims[j] = claims;
        for (int i = 0; i < v->nstatus; i++)
            v->answers[i][j] = ans[i];
    }
    return CP_OK;
}
