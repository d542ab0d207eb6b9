/*
 * test_ratelimit.c - fcgi-app/ratelimit: burst and refusal with the exact retry-after,
 * exact refill on an injected clock, independence of classes and of users, the unlimited
 * class, a table far smaller than the user population, and the shared table under several
 * processes x threads: at a fixed instant exactly `burst` takes succeed in total, over an
 * interval never more than burst + floor(rate * T), and workers SIGKILLed at any instant
 * (possibly holding a group lock) do not wedge the takes that follow.
 */
#include "first.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "clock.h"
#include "cp_err.h"
#include "ratelimit.h"

static struct ratelimit *make(double issue_rate, uint32_t issue_burst, double redeem_rate,
                              uint32_t redeem_burst, size_t capacity)
{
    struct ratelimit_config cfg = {.cls = {
                                       [RATELIMIT_ISSUE] = {issue_rate, issue_burst},
                                       [RATELIMIT_REDEEM] = {redeem_rate, redeem_burst},
                                   }};
    struct ratelimit *rl = ratelimit_new(&cfg, capacity);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rl);
    return rl;
}

static int take(struct ratelimit *rl, enum ratelimit_class c, int64_t user, int64_t now,
                int64_t *retry)
{
    return ratelimit_take(rl, c, user, now, retry);
}

static struct ratelimit_stats stats(struct ratelimit *rl, enum ratelimit_class c)
{
    struct ratelimit_stats st;
    memset(&st, 0xff, sizeof st);
    CU_ASSERT_EQUAL(ratelimit_stats(rl, c, &st), CP_OK);
    return st;
}

static void burst_then_refusal_with_exact_retry_after(void)
{
    struct ratelimit *rl = make(10, 5, 10, 5, RATELIMIT_CAPACITY_DEFAULT); /* a token/100 ms */
    int64_t retry = -1;
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 42, 1000, &retry), CP_OK);
        CU_ASSERT_EQUAL(retry, 0);
    }
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 42, 1000, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 100);
    /* A refusal changes nothing: the next token is still due at 1100. */
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 42, 1050, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 50);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 42, 1099, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 1);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 42, 1100, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 42, 1100, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 100);
    /* retry_after_ms is optional. */
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 42, 1100, NULL), CP_ERR_LIMIT);
    struct ratelimit_stats st = stats(rl, RATELIMIT_ISSUE);
    CU_ASSERT_EQUAL(st.allowed, 6);
    CU_ASSERT_EQUAL(st.limited, 5);
    CU_ASSERT_EQUAL(st.evicted, 0);
    /* Any monotonic origin works, negative included. */
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 43, -7000, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 43, -7000, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 100);
    ratelimit_free(rl);
}

static void refill_over_injected_time_is_exact(void)
{
    struct ratelimit *rl = make(4, 2, 0.5, 1, RATELIMIT_CAPACITY_DEFAULT); /* 250 ms, 2 s */
    int64_t retry;
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 0, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 0, &retry), CP_OK);
    /* A take every millisecond for 10 s: one success every 250 ms exactly, and every
     * refusal names the remaining time to the next one. */
    int granted = 0, wrong_time = 0, wrong_retry = 0;
    for (int64_t t = 1; t <= 10000; t++) {
        int rc = take(rl, RATELIMIT_ISSUE, 1, t, &retry);
        if (rc == CP_OK) {
            granted++;
            wrong_time += t % 250 != 0;
        } else {
            wrong_retry += rc != CP_ERR_LIMIT || retry != 250 - t % 250;
        }
    }
    CU_ASSERT_EQUAL(granted, 40); /* floor(4/s * 10 s): b + floor(r T) = 42 with the 2 above */
    CU_ASSERT_EQUAL(wrong_time, 0);
    CU_ASSERT_EQUAL(wrong_retry, 0);
    /* Idle for a long time: back to a full bucket, never more than burst. */
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 3600000, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 3600000, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 3600000, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 250);
    /* A fractional rate: 0.5/s with burst 1 is a token every 2 s. */
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_REDEEM, 1, 0, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_REDEEM, 1, 1999, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 1);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_REDEEM, 1, 2000, &retry), CP_OK);
    ratelimit_free(rl);
    /* 3/s: 1/r = 333,333.3 us is rounded up to 333,334 - a token is never early. */
    rl = make(3, 1, 0, 1, RATELIMIT_CAPACITY_DEFAULT);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 0, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 333, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 1);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 334, &retry), CP_OK);
    ratelimit_free(rl);
}

static void classes_are_independent(void)
{
    struct ratelimit *rl = make(1, 2, 100, 10, RATELIMIT_CAPACITY_DEFAULT);
    int64_t retry;
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 7, 0, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 7, 0, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 7, 0, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 1000);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(take(rl, RATELIMIT_REDEEM, 7, 0, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_REDEEM, 7, 0, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 10);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 7, 0, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 1000);
    struct ratelimit_stats is = stats(rl, RATELIMIT_ISSUE), rs = stats(rl, RATELIMIT_REDEEM);
    CU_ASSERT_EQUAL(is.allowed, 2);
    CU_ASSERT_EQUAL(is.limited, 2);
    CU_ASSERT_EQUAL(rs.allowed, 10);
    CU_ASSERT_EQUAL(rs.limited, 1);
    ratelimit_free(rl);
}

static void users_are_independent(void)
{
    struct ratelimit *rl = make(1, 3, 1, 3, RATELIMIT_CAPACITY_DEFAULT);
    int64_t retry;
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 500, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 500, &retry), CP_ERR_LIMIT);
    /* 1,000 others at the same instant each get their whole burst, and only it. */
    int wrong = 0;
    for (int64_t u = 2; u <= 1001; u++) {
        for (int i = 0; i < 3; i++)
            wrong += take(rl, RATELIMIT_ISSUE, u, 500, &retry) != CP_OK;
        wrong += take(rl, RATELIMIT_ISSUE, u, 500, &retry) != CP_ERR_LIMIT || retry != 1000;
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_ISSUE, 1, 600, &retry), CP_ERR_LIMIT);
    CU_ASSERT_EQUAL(retry, 900);
    struct ratelimit_stats st = stats(rl, RATELIMIT_ISSUE);
    CU_ASSERT_EQUAL(st.allowed, 3 + 3000);
    CU_ASSERT_EQUAL(st.limited, 1 + 1000 + 1);
    CU_ASSERT_EQUAL(st.evicted, 0);
    ratelimit_free(rl);
}

static void unlimited_class_never_limits(void)
{
    struct ratelimit *rl = make(0, 0, 1, 1, RATELIMIT_WAYS);
    int64_t retry = -1;
    int refused = 0;
    for (int i = 0; i < 100000; i++)
        refused += take(rl, RATELIMIT_ISSUE, i % 3, 0, &retry) != CP_OK || retry != 0;
    CU_ASSERT_EQUAL(refused, 0);
    struct ratelimit_stats st = stats(rl, RATELIMIT_ISSUE);
    CU_ASSERT_EQUAL(st.allowed, 100000);
    CU_ASSERT_EQUAL(st.limited, 0);
    /* The other class still limits. */
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_REDEEM, 1, 0, &retry), CP_OK);
    CU_ASSERT_EQUAL(take(rl, RATELIMIT_REDEEM, 1, 0, &retry), CP_ERR_LIMIT);
    ratelimit_free(rl);
}

/*
 * 64 slots (8 groups of 8) and 20 new users every millisecond for 10 s (200,000 users):
 * every newcomer is served, non-full buckets are evicted, and a hot user taking every
 * millisecond is never forgotten: it gets exactly b + floor(r T), not a token more.
 */
static void capacity_pressure_never_fails_nor_overgrants_a_hot_user(void)
{
    struct ratelimit *rl = make(10, 5, 1, 1, RATELIMIT_WAYS * 8);
    int64_t retry, cold = 1000000;
    int hot_granted = 0, cold_refused = 0;
    for (int64_t t = 0; t <= 10000; t++) {
        hot_granted += take(rl, RATELIMIT_ISSUE, 1, t, &retry) == CP_OK;
        if (t < 5) /* the flood starts once the hot user is at its limit */
            continue;
        for (int i = 0; i < 20; i++)
            cold_refused += take(rl, RATELIMIT_ISSUE, cold++, t, &retry) != CP_OK;
    }
    CU_ASSERT_EQUAL(hot_granted, 5 + 100);
    CU_ASSERT_EQUAL(cold_refused, 0);
    struct ratelimit_stats st = stats(rl, RATELIMIT_ISSUE);
    CU_ASSERT(st.evicted > 100000);
    CU_ASSERT_EQUAL(st.allowed, (uint64_t)hot_granted + (uint64_t)(cold - 1000000));
    ratelimit_free(rl);
}

static void invalid_configuration_and_arguments_are_rejected(void)
{
    struct ratelimit_config ok = {.cls = {{10, 5}, {0, 0}}};
    char err[160];
    CU_ASSERT_EQUAL(ratelimit_config_check(&ok, 64, err, sizeof err), CP_OK);
    static const size_t bad_caps[] = {0, 4, 100, (size_t)RATELIMIT_CAPACITY_MAX * 2};
    for (size_t i = 0; i < sizeof bad_caps / sizeof bad_caps[0]; i++) {
        errno = 0;
        CU_ASSERT_PTR_NULL(ratelimit_new(&ok, bad_caps[i]));
        CU_ASSERT_EQUAL(errno, EINVAL);
    }
    static const struct ratelimit_class_config bad[] = {
        {10, 0}, {-1, 5}, {NAN, 5}, {INFINITY, 5}, {2e6, 5}, {1e-6, 2}, {1e-300, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ratelimit_config cfg = ok;
        cfg.cls[RATELIMIT_REDEEM] = bad[i];
        err[0] = '\0';
        CU_ASSERT_EQUAL(ratelimit_config_check(&cfg, 64, err, sizeof err), CP_ERR_INVALID);
        CU_ASSERT(strstr(err, "redeem") != NULL);
        CU_ASSERT_PTR_NULL(ratelimit_new(&cfg, 64));
    }
    CU_ASSERT_PTR_NULL(ratelimit_new(NULL, 64));
    struct ratelimit *rl = ratelimit_new(&ok, 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rl);
    int64_t retry = -1;
    CU_ASSERT_EQUAL(ratelimit_take(rl, RATELIMIT_CLASS_COUNT, 1, 0, &retry), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(retry, 0);
    CU_ASSERT_EQUAL(ratelimit_take(NULL, RATELIMIT_ISSUE, 1, 0, &retry), CP_ERR_INVALID);
    struct ratelimit_stats st;
    CU_ASSERT_EQUAL(ratelimit_stats(rl, RATELIMIT_CLASS_COUNT, &st), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(ratelimit_stats(rl, RATELIMIT_ISSUE, NULL), CP_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(ratelimit_class_name(RATELIMIT_ISSUE), "issue");
    CU_ASSERT_STRING_EQUAL(ratelimit_class_name(RATELIMIT_REDEEM), "redeem");
    CU_ASSERT_PTR_NULL(ratelimit_class_name(RATELIMIT_CLASS_COUNT));
    ratelimit_free(rl);
    ratelimit_free(NULL);
}

/* ---- several threads, several processes ---- */

#define PROCS   4
#define THREADS 4
#define TAKES   3000

struct hammer {
    struct ratelimit *rl;
    int start_fd;   /* read end of the start pipe: EOF releases every thread at once */
    int64_t t0;     /* first instant */
    int64_t step;   /* ms between two takes of a thread (0: a fixed instant) */
    int64_t user;   /* the one user everybody hammers */
    long granted;   /* out */
    long malformed; /* out: neither OK nor LIMIT with retry >= 1 */
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    char c;
    while (read(h->start_fd, &c, 1) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < TAKES; i++) {
        int64_t retry = -1;
        int rc = ratelimit_take(h->rl, RATELIMIT_ISSUE, h->user, h->t0 + i * h->step, &retry);
        if (rc == CP_OK && retry == 0)
            h->granted++;
        else if (rc != CP_ERR_LIMIT || retry < 1)
            h->malformed++;
    }
    return NULL;
}

/* THREADS threads on *proto; returns granted takes, or -1 if a take was malformed. */
static long run_threads(const struct hammer *proto)
{
    pthread_t th[THREADS];
    struct hammer h[THREADS];
    int started = 0;
    long total = 0;
    for (; started < THREADS; started++) {
        h[started] = *proto;
        if (pthread_create(&th[started], NULL, hammer_run, &h[started]) != 0)
            break;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        total = total < 0 || h[i].malformed != 0 ? -1 : total + h[i].granted;
    }
    return started == THREADS ? total : -1;
}

/* PROCS processes x THREADS threads on *proto, released together; returns the granted takes
 * they report through a pipe, or -1 on any failure. */
static long run_processes(const struct hammer *proto)
{
    int start[2], report[2];
    long total = 0;
    pid_t pids[PROCS];
    int forked = 0;
    if (pipe(start) != 0)
        return -1;
    if (pipe(report) != 0) {
        close(start[0]);
        close(start[1]);
        return -1;
    }
    for (; forked < PROCS; forked++) {
        pids[forked] = fork();
        if (pids[forked] < 0)
            break;
        if (pids[forked] == 0) {
            close(start[1]);
            close(report[0]);
            struct hammer h = *proto;
            h.start_fd = start[0];
            long n = run_threads(&h);
            _exit(write(report[1], &n, sizeof n) == (ssize_t)sizeof n ? 0 : 1);
        }
    }
    close(start[0]);
    close(report[1]);
    close(start[1]); /* go */
    for (int i = 0; i < forked; i++) {
        long n;
        if (read(report[0], &n, sizeof n) != (ssize_t)sizeof n || n < 0)
            total = -1;
        else if (total >= 0)
            total += n;
    }
    for (int i = 0; i < forked; i++) {
        int status;
        if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            total = -1;
    }
    close(report[0]);
    return forked == PROCS ? total : -1;
}

static void threads_together_grant_exactly_the_burst(void)
{
    struct ratelimit *rl = make(1, 100, 1, 1, RATELIMIT_CAPACITY_DEFAULT);
    int start[2];
    CU_ASSERT_EQUAL_FATAL(pipe(start), 0);
    struct hammer h = {.rl = rl, .start_fd = start[0], .t0 = 5000, .step = 0, .user = 42};
    close(start[1]); /* threads start as soon as they exist */
    long granted = run_threads(&h);
    close(start[0]);
    CU_ASSERT_EQUAL(granted, 100);
    struct ratelimit_stats st = stats(rl, RATELIMIT_ISSUE);
    CU_ASSERT_EQUAL(st.allowed, 100);
    CU_ASSERT_EQUAL(st.limited, (uint64_t)THREADS * TAKES - 100);
    ratelimit_free(rl);
}

static void processes_together_grant_exactly_the_burst(void)
{
    struct ratelimit *rl = make(1, 100, 1, 1, RATELIMIT_CAPACITY_DEFAULT);
    struct hammer h = {.rl = rl, .t0 = 5000, .step = 0, .user = 42};
    long granted = run_processes(&h);
    CU_ASSERT_EQUAL(granted, 100);
    struct ratelimit_stats st = stats(rl, RATELIMIT_ISSUE);
    CU_ASSERT_EQUAL(st.allowed, 100);
    CU_ASSERT_EQUAL(st.limited, (uint64_t)PROCS * THREADS * TAKES - 100);
    ratelimit_free(rl);
}

/* Time moving on in every thread (0..2999 ms, interleaved as the scheduler likes): at most
 * b + floor(r T) = 10 + floor(200/s x 2.999 s) = 609 successes in all. */
static void processes_over_an_interval_never_exceed_burst_plus_rate_times_t(void)
{
    struct ratelimit *rl = make(200, 10, 1, 1, RATELIMIT_CAPACITY_DEFAULT);
    struct hammer h = {.rl = rl, .t0 = 0, .step = 1, .user = 9};
    long granted = run_processes(&h);
    CU_ASSERT(granted >= 10);
    CU_ASSERT(granted <= 10 + 599);
    struct ratelimit_stats st = stats(rl, RATELIMIT_ISSUE);
    CU_ASSERT_EQUAL(st.allowed, (uint64_t)granted);
    CU_ASSERT_EQUAL(st.allowed + st.limited, (uint64_t)PROCS * THREADS * TAKES);
    fprintf(stderr, "\n    granted %ld of at most 609 ", granted);
    ratelimit_free(rl);
}

#define KILL_ROUNDS_MAX 400

/* A child inserting new users without end in a 64-slot table: most of its time is spent
 * under a group lock or with a slot BUSY, which is where SIGKILL should catch it. */
static void churn_forever(struct ratelimit *rl, int64_t first_user)
{
    for (int64_t i = 0;; i++)
        (void)ratelimit_take(rl, RATELIMIT_REDEEM, first_user + i, i / 64, NULL);
}

static void killed_workers_do_not_wedge_later_takes(void)
{
    struct ratelimit *rl = make(1, 3, 1000, 3, RATELIMIT_WAYS * 8);
    struct ratelimit_stats st = {0};
    int rounds = 0, failed = 0;
    unsigned seed = 12345;
    /* Until some child has died holding a group lock (and a later one broke it). */
    for (; rounds < KILL_ROUNDS_MAX && (rounds < 20 || st.lock_breaks == 0); rounds++) {
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0)
            churn_forever(rl, (int64_t)rounds << 32);
        clock_sleep_ms(1 + rand_r(&seed) % 3);
        kill(pid, SIGKILL);
        int status;
        failed += waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status);
        st = stats(rl, RATELIMIT_REDEEM);
    }
    CU_ASSERT_EQUAL(failed, 0);
    /* The parent, afterwards: every group answers at once, and exactly. */
    alarm(30); /* a wedge would hang here: let SIGALRM fail the program instead */
    int64_t start = clock_mono_ms(), retry;
    int wrong = 0;
    for (int64_t u = 1; u <= 1000; u++) {
        for (int i = 0; i < 3; i++)
            wrong += ratelimit_take(rl, RATELIMIT_REDEEM, u, 1 << 30, &retry) != CP_OK;
        wrong += ratelimit_take(rl, RATELIMIT_REDEEM, u, 1 << 30, &retry) != CP_ERR_LIMIT;
    }
    alarm(0);
    CU_ASSERT_EQUAL(wrong, 0);
    st = stats(rl, RATELIMIT_REDEEM);
    fprintf(stderr, "\n    %d kills, %llu lock breaks, last takes %lld ms ", rounds,
            (unsigned long long)st.lock_breaks, (long long)(clock_mono_ms() - start));
    CU_ASSERT(st.lock_breaks > 0);
    ratelimit_free(rl);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"burst_then_refusal_with_exact_retry_after", burst_then_refusal_with_exact_retry_after},
        {"refill_over_injected_time_is_exact", refill_over_injected_time_is_exact},
        {"classes_are_independent", classes_are_independent},
        {"users_are_independent", users_are_independent},
        {"unlimited_class_never_limits", unlimited_class_never_limits},
        {"capacity_pressure_never_fails_nor_overgrants_a_hot_user",
         capacity_pressure_never_fails_nor_overgrants_a_hot_user},
        {"invalid_configuration_and_arguments_are_rejected",
         invalid_configuration_and_arguments_are_rejected},
        {"threads_together_grant_exactly_the_burst", threads_together_grant_exactly_the_burst},
        {"processes_together_grant_exactly_the_burst", processes_together_grant_exactly_the_burst},
        {"processes_over_an_interval_never_exceed_burst_plus_rate_times_t",
         processes_over_an_interval_never_exceed_burst_plus_rate_times_t},
        {"killed_workers_do_not_wedge_later_takes", killed_workers_do_not_wedge_later_takes},
    };
    return unit_run_suite("ratelimit", NULL, UNIT_CASES(tests));
}
