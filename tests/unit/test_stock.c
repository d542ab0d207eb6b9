/*
 * test_stock.c - fcgi-app/stock: the age bound counted from when a read was sent, on an
 * injected clock; a new entry answers only after a read sent since its birth; counts never
 * go back (raised by higher reads, dropped by a lower one); a full group leaves newcomers
 * uncached rather than evicting fresh entries; and, with several processes x threads
 * reading and refreshing against a "Redis" counter that a writer raises, not one answer
 * below an answer completed before it began, and not one older than the TTL - counted.
 */
#include "first.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "clock.h"
#include "cp_err.h"
#include "stock.h"

static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static struct stock *make(size_t capacity, int64_t ttl_ms)
{
    struct stock_config cfg = {.capacity = capacity, .ttl_ms = ttl_ms, .clock = fake_clock};
    struct stock *st = stock_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    return st;
}

static int64_t get(struct stock *st, int64_t id)
{
    int64_t v = -1;
    return stock_get(st, id, &v) == CP_OK ? v : -1;
}

/* A read of n sent in the next millisecond and answered `took` ms later. */
static void read_redis(struct stock *st, int64_t id, int64_t n, int64_t took)
{
    fake_now++;
    int64_t sent = stock_now(st);
    fake_now += took;
    stock_put(st, id, n, sent);
}

static void new_entry_answers_only_after_a_read_sent_since_its_birth(void)
{
    fake_now = 1000;
    struct stock *st = make(STOCK_CAPACITY_DEFAULT, 900);
    CU_ASSERT_EQUAL(get(st, 7), -1);
    read_redis(st, 7, 3, 2); /* sent before the entry existed: it is born, not fresh */
    CU_ASSERT_EQUAL(get(st, 7), -1);
    read_redis(st, 7, 4, 2);
    CU_ASSERT_EQUAL(get(st, 7), 4);
    CU_ASSERT_EQUAL(get(st, 8), -1);
    stock_free(st);
}

static void age_bound_counts_from_when_the_read_was_sent(void)
{
    fake_now = 5000;
    struct stock *st = make(STOCK_CAPACITY_DEFAULT, 900);
    read_redis(st, 1, 10, 0);
    int64_t sent = fake_now + 1;
    read_redis(st, 1, 10, 300); /* a slow read: stored 300 ms after it was sent */
    CU_ASSERT_EQUAL(get(st, 1), 10);
    fake_now = sent + 899;
    CU_ASSERT_EQUAL(get(st, 1), 10);
    fake_now = sent + 900; /* 900 ms after sending, 600 after storing: too old */
    CU_ASSERT_EQUAL(get(st, 1), -1);
    /* An older read finishing late never makes the entry look younger. */
    int64_t old_sent = fake_now - 500;
    stock_put(st, 1, 10, old_sent);
    fake_now = old_sent + 900;
    CU_ASSERT_EQUAL(get(st, 1), -1);
    stock_free(st);
}

static void counts_never_go_back_higher_reads_raise_lower_ones_drop(void)
{
    fake_now = 100;
    struct stock *st = make(STOCK_CAPACITY_DEFAULT, 900);
    read_redis(st, 9, 5, 1);
    read_redis(st, 9, 6, 1);
    CU_ASSERT_EQUAL(get(st, 9), 6);
    read_redis(st, 9, 8, 1);
    CU_ASSERT_EQUAL(get(st, 9), 8);
    read_redis(st, 9, 8, 1);
    CU_ASSERT_EQUAL(get(st, 9), 8);
    /* Lower than the entry (a rollback, or two reads answered out of order): dropped. */
    read_redis(st, 9, 7, 1);
    CU_ASSERT_EQUAL(get(st, 9), -1);
    /* The next entry is born after that read and answers only a later read. */
    read_redis(st, 9, 7, 1);
    CU_ASSERT_EQUAL(get(st, 9), -1);
    read_redis(st, 9, 7, 1);
    CU_ASSERT_EQUAL(get(st, 9), 7);
    stock_forget(st, 9);
    CU_ASSERT_EQUAL(get(st, 9), -1);
    stock_free(st);
}

static void a_full_group_leaves_newcomers_uncached_until_an_entry_is_stale(void)
{
    fake_now = 10000;
    struct stock *st = make(STOCK_WAYS, 100); /* one group */
    for (int64_t id = 1; id <= STOCK_WAYS; id++) {
        read_redis(st, id, id, 1);
        read_redis(st, id, id, 1);
        CU_ASSERT_EQUAL(get(st, id), id);
    }
    read_redis(st, 99, 5, 1);
    read_redis(st, 99, 5, 1);
    CU_ASSERT_EQUAL(get(st, 99), -1);
    for (int64_t id = 1; id <= STOCK_WAYS; id++)
        CU_ASSERT_EQUAL(get(st, id), id);
    fake_now += 100; /* all stale: the least recently read goes */
    read_redis(st, 2, 2, 1);
    read_redis(st, 99, 5, 1);
    read_redis(st, 99, 5, 1);
    CU_ASSERT_EQUAL(get(st, 99), 5);
    CU_ASSERT_EQUAL(get(st, 2), 2);
    CU_ASSERT_EQUAL(get(st, 1), -1);
    stock_free(st);
}

static void invalid_configuration_is_rejected(void)
{
    size_t caps[] = {0, 2, 6, (size_t)STOCK_CAPACITY_MAX * 2};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        struct stock_config cfg = {.capacity = caps[i], .ttl_ms = 900};
        errno = 0;
        CU_ASSERT_PTR_NULL(stock_new(&cfg));
        CU_ASSERT_EQUAL(errno, EINVAL);
    }
    int64_t ttls[] = {0, -1, STOCK_AGE_MAX_MS + 1};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++) {
        struct stock_config cfg = {.capacity = STOCK_CAPACITY_DEFAULT, .ttl_ms = ttls[i]};
        CU_ASSERT_PTR_NULL(stock_new(&cfg));
    }
    CU_ASSERT_PTR_NULL(stock_new(NULL));
    stock_free(NULL);
    int64_t v = 0;
    CU_ASSERT_EQUAL(stock_get(NULL, 1, &v), CP_ERR_NOT_FOUND);
    stock_put(NULL, 1, 1, 0);
    stock_forget(NULL, 1);
}

/* The shared world of the concurrent test: per coupon a "Redis" count the writer raises,
 * when each value was reached (after the increment), and the highest answer completed. */
#define COUPONS    6
#define RAISES     20000
#define PROCS      3
#define THREADS    4
#define RUN_MS     2000
#define SHARED_TTL 3

struct world {
    _Atomic int64_t redis[COUPONS];
    _Atomic int64_t reached_ms[COUPONS][RAISES + 2];
    _Atomic int64_t completed_max[COUPONS];
    _Atomic int64_t went_back, too_old, answers, hits;
    _Atomic int stop;
};

static struct world *w;
static struct stock *shared;

static void *reader_run(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&w->stop)) {
        int c = (int)(rand_r(&seed) % COUPONS);
        int64_t floor = atomic_load(&w->completed_max[c]);
        int64_t began = clock_mono_ms(), v;
        if (stock_get(shared, c + 1, &v) == CP_OK) {
            atomic_fetch_add(&w->hits, 1);
        } else {
            int64_t sent = stock_now(shared);
            if (rand_r(&seed) % 4 == 0)
                sched_yield(); /* a slow round trip now and then, either way of the read */
            v = atomic_load(&w->redis[c]);
            if (rand_r(&seed) % 16 == 0)
                usleep(100);
            stock_put(shared, c + 1, v, sent);
        }
        if (v < floor)
            atomic_fetch_add(&w->went_back, 1);
        /* Every value reached SHARED_TTL ms or more before the look-up must be in it (the
         * rest of a request is STOCK_TTL_MS's margin, measured from outside). */
        if (v + 1 <= RAISES && atomic_load(&w->reached_ms[c][v + 1]) <= began - SHARED_TTL)
            atomic_fetch_add(&w->too_old, 1);
        int64_t m = atomic_load(&w->completed_max[c]);
        while (m < v && !atomic_compare_exchange_weak(&w->completed_max[c], &m, v))
            ;
        atomic_fetch_add(&w->answers, 1);
        if (rand_r(&seed) % 64 == 0)
            sched_yield(); /* let the writer run on a small machine */
    }
    return NULL;
}

static void readers(int proc)
{
    pthread_t th[THREADS];
    int n = 0;
    for (; n < THREADS; n++)
        if (pthread_create(&th[n], NULL, reader_run, (void *)(uintptr_t)(proc * 100 + n + 1)))
            break;
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

static void processes_and_threads_never_go_back_nor_answer_too_old(void)
{
    w = mmap(NULL, sizeof *w, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(w != MAP_FAILED);
    for (int c = 0; c < COUPONS; c++)
        for (int k = 0; k < RAISES + 2; k++)
            atomic_init(&w->reached_ms[c][k], INT64_MAX);
    /* 8 slots for 6 coupons: collisions, evictions and drops all happen. */
    struct stock_config cfg = {.capacity = 8, .ttl_ms = SHARED_TTL};
    shared = stock_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(shared);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        CU_ASSERT_FATAL(pids[p] >= 0);
        if (pids[p] == 0) {
            readers(p);
            _exit(0);
        }
    }
    int64_t end = clock_mono_ms() + RUN_MS;
    int raises = 0;
    while (clock_mono_ms() < end && raises < RAISES) {
        raises++;
        for (int c = 0; c < COUPONS; c++) {
            atomic_store(&w->redis[c], raises);
            atomic_store(&w->reached_ms[c][raises], clock_mono_ms());
        }
        sched_yield();
    }
    atomic_store(&w->stop, 1);
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        CU_ASSERT_EQUAL(waitpid(pids[p], &status, 0), pids[p]);
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    printf("\n  %d raises, %lld answers (%lld from the table): %lld went back, %lld too old\n",
           raises, (long long)atomic_load(&w->answers), (long long)atomic_load(&w->hits),
           (long long)atomic_load(&w->went_back), (long long)atomic_load(&w->too_old));
    CU_ASSERT(raises > 1000);
    CU_ASSERT(atomic_load(&w->hits) > 1000);
    CU_ASSERT_EQUAL(atomic_load(&w->went_back), 0);
    CU_ASSERT_EQUAL(atomic_load(&w->too_old), 0);
    stock_free(shared);
    munmap(w, sizeof *w);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"new_entry_answers_only_after_a_read_sent_since_its_birth",
         new_entry_answers_only_after_a_read_sent_since_its_birth},
        {"age_bound_counts_from_when_the_read_was_sent",
         age_bound_counts_from_when_the_read_was_sent},
        {"counts_never_go_back_higher_reads_raise_lower_ones_drop",
         counts_never_go_back_higher_reads_raise_lower_ones_drop},
        {"a_full_group_leaves_newcomers_uncached_until_an_entry_is_stale",
         a_full_group_leaves_newcomers_uncached_until_an_entry_is_stale},
        {"invalid_configuration_is_rejected", invalid_configuration_is_rejected},
        {"processes_and_threads_never_go_back_nor_answer_too_old",
         processes_and_threads_never_go_back_nor_answer_too_old},
    };
    return unit_run_suite("stock", NULL, UNIT_CASES(tests));
}
