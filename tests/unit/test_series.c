/*
 * test_series.c - fcgi-app/series.c: the console's per-second ring. Two mappings of
 * one file stand for a worker (claims) and the master (sampler); the metrics mapping
 * is real, so the answers by status are the counters /metrics shows.
 */
#include "first.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "metrics.h"
#include "series.h"

static char path[64];
static struct metrics *m;
static struct series *master, *worker;
static struct series_view v;

static int open_all(void)
{
    char err[256];
    snprintf(path, sizeof path, "/tmp/test_series.%ld", (long)getpid());
    m = metrics_open(path, 1, err, sizeof err);
    master = m ? series_open(path, 1, err, sizeof err) : NULL;
    worker = master ? series_open(path, 0, err, sizeof err) : NULL;
    if (worker == NULL)
        fprintf(stderr, "%s\n", err);
    return worker == NULL;
}

static void close_all(void)
{
    char series_path[80];
    series_close(worker);
    series_close(master);
    metrics_close(m);
    snprintf(series_path, sizeof series_path, "%s.series", path);
    unlink(series_path);
    unlink(path);
    worker = master = NULL;
    m = NULL;
}

static uint32_t answers_of(const struct series_view *view, int code, int j)
{
    for (int i = 0; i < view->nstatus; i++)
        if (view->status_code[i] == code)
            return view->answers[i][j];
    return 0xffffffffu;
}

static void series_counts_claims_per_campaign_and_second(void)
{
    CU_ASSERT_FATAL(open_all() == 0);
    series_sample(master, m, 1000); /* baseline */
    for (int i = 0; i < 30; i++)
        series_claim(worker, 7);
    series_claim(worker, 8);
    for (int i = 0; i < 3; i++)
        metrics_observe(m, ROUTE_ISSUE, 201, 100);
    metrics_observe(m, ROUTE_ISSUE_REF, 201, 100);
    metrics_observe(m, ROUTE_ISSUE, 409, 100);
    metrics_observe(m, ROUTE_COUPON_GET, 200, 100); /* not an issue answer */
    series_sample(master, m, 1001);                 /* closes second 1000 */
    series_claim(worker, 7);
    series_sample(master, m, 1002);
    CU_ASSERT_EQUAL(series_read(worker, 7, 10, &v), CP_OK);
    CU_ASSERT_EQUAL(v.last_sec, 1001);
    CU_ASSERT_TRUE(v.tracked);
    CU_ASSERT_EQUAL(v.claims[8], 30);
    CU_ASSERT_EQUAL(v.claims[9], 1);
    CU_ASSERT_EQUAL(v.claims[7], 0); /* before the baseline: nothing */
    CU_ASSERT_EQUAL(answers_of(&v, 201, 8), 4);
    CU_ASSERT_EQUAL(answers_of(&v, 409, 8), 1);
    CU_ASSERT_EQUAL(answers_of(&v, 200, 8), 0);
    CU_ASSERT_EQUAL(answers_of(&v, 201, 9), 0);
    CU_ASSERT_EQUAL(series_read(worker, 8, 10, &v), CP_OK);
    CU_ASSERT_EQUAL(v.claims[8], 1);
    CU_ASSERT_EQUAL(series_read(worker, 9, 10, &v), CP_OK);
    CU_ASSERT_FALSE(v.tracked);
    CU_ASSERT_EQUAL(v.claims[8], 0);
    close_all();
}

static void series_read_refuses_a_window_out_of_range(void)
{
    CU_ASSERT_FATAL(open_all() == 0);
    CU_ASSERT_EQUAL(series_read(worker, 1, 0, &v), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(series_read(worker, 1, SERIES_SECONDS + 1, &v), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(series_read(worker, 1, SERIES_SECONDS, &v), CP_OK);
    CU_ASSERT_EQUAL(v.last_sec, 0); /* nothing sampled yet */
    close_all();
}

static void series_skips_seconds_the_sampler_missed(void)
{
    CU_ASSERT_FATAL(open_all() == 0);
    series_sample(master, m, 2000);
    series_claim(worker, 5);
    series_sample(master, m, 2001);
    /* The master was busy for 3 s: the claims land in the second that closes. */
    series_claim(worker, 5);
    series_claim(worker, 5);
    series_sample(master, m, 2005);
    CU_ASSERT_EQUAL(series_read(worker, 5, 10, &v), CP_OK);
    CU_ASSERT_EQUAL(v.last_sec, 2004);
    CU_ASSERT_EQUAL(v.claims[9], 2);
    CU_ASSERT_EQUAL(v.claims[8], 0);
    CU_ASSERT_EQUAL(v.claims[7], 0);
    CU_ASSERT_EQUAL(v.claims[5], 1); /* second 2000 */
    /* A whole ring later the old seconds do not come back as new ones. */
    series_sample(master, m, 2005 + SERIES_SECONDS);
    CU_ASSERT_EQUAL(series_read(worker, 5, SERIES_SECONDS, &v), CP_OK);
    uint64_t sum = 0;
    for (int j = 0; j < SERIES_SECONDS; j++)
        sum += v.claims[j];
    CU_ASSERT_EQUAL(sum, 0);
    close_all();
}

static void series_tracks_at_most_its_slots_and_frees_idle_ones(void)
{
    CU_ASSERT_FATAL(open_all() == 0);
    series_sample(master, m, 3000);
    for (int64_t id = 1; id <= SERIES_CAMPAIGNS; id++)
        series_claim(worker, id * 1000); /* all share home slot 1000 % 64: probing */
    series_claim(worker, 999999);        /* table full: not tracked */
    series_sample(master, m, 3001);
    CU_ASSERT_EQUAL(series_read(worker, 999999, 10, &v), CP_OK);
    CU_ASSERT_FALSE(v.tracked);
    for (int64_t id = 1; id <= SERIES_CAMPAIGNS; id++) {
        CU_ASSERT_EQUAL(series_read(worker, id * 1000, 10, &v), CP_OK);
        CU_ASSERT_TRUE(v.tracked);
        CU_ASSERT_EQUAL(v.claims[9], 1);
    }
    /* Campaign 2000 keeps selling; after a whole idle window the others are released. */
    for (int64_t s = 3002; s <= 3001 + SERIES_SECONDS + 1; s++) {
        series_claim(worker, 2000);
        series_sample(master, m, s);
    }
    CU_ASSERT_EQUAL(series_read(worker, 1000, 10, &v), CP_OK);
    CU_ASSERT_FALSE(v.tracked);
    CU_ASSERT_EQUAL(series_read(worker, 2000, 10, &v), CP_OK);
    CU_ASSERT_TRUE(v.tracked);
    CU_ASSERT_EQUAL(v.claims[9], 1);
    series_claim(worker, 999999); /* a freed slot: now tracked, from zero */
    series_sample(master, m, 3001 + SERIES_SECONDS + 2);
    CU_ASSERT_EQUAL(series_read(worker, 999999, SERIES_SECONDS, &v), CP_OK);
    CU_ASSERT_TRUE(v.tracked);
    uint64_t sum = 0;
    for (int j = 0; j < SERIES_SECONDS; j++)
        sum += v.claims[j];
    CU_ASSERT_EQUAL(sum, 1);
    close_all();
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"series_counts_claims_per_campaign_and_second",
         series_counts_claims_per_campaign_and_second},
        {"series_read_refuses_a_window_out_of_range", series_read_refuses_a_window_out_of_range},
        {"series_skips_seconds_the_sampler_missed", series_skips_seconds_the_sampler_missed},
        {"series_tracks_at_most_its_slots_and_frees_idle_ones",
         series_tracks_at_most_its_slots_and_frees_idle_ones},
    };
    return unit_run_suite("series", NULL, UNIT_CASES(tests));
}
