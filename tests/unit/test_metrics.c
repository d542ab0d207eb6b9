/*
 * test_metrics.c - fcgi-app/metrics: the shared counter file under several
 * processes. Under spawn-fcgi every process opens the same file at the same
 * moment, so these cases fork processes that open it together (released by one
 * pipe, as close to simultaneously as the scheduler allows) and add counters;
 * the file must then hold the exact sum - no process killed by SIGBUS, no
 * count lost to another opener's truncation or re-initialisation. Counters are
 * read back the way GET /metrics shows them (metrics_render).
 */
#include "first.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "unit_main.h"

#include "cp_err.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

#define OPENERS   8
#define ADDS_EACH 20000
#define ROUNDS    500

static char tmpdir[64];

static void path_for(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* coupon_issued_total as rendered, or UINT64_MAX if it cannot be read. */
static uint64_t issued_total(struct metrics *m)
{
    static char body[HTTP_RESPONSE_BODY_MAX];
    struct http_response resp;
    http_response_init(&resp, body, sizeof body);
    if (metrics_render(m, &resp) != CP_OK)
        return UINT64_MAX;
    body[resp.body_len < sizeof body ? resp.body_len : sizeof body - 1] = '\0';
    const char *p = strstr(body, "\ncoupon_issued_total ");
    if (p == NULL)
        return UINT64_MAX;
    return strtoull(p + strlen("\ncoupon_issued_total "), NULL, 10);
}

static uint64_t issued_in_file(const char *path)
{
    char err[256];
    struct metrics *m = metrics_open(path, 0, err, sizeof err);
    if (m == NULL) {
        fprintf(stderr, "%s\n", err);
        return UINT64_MAX;
    }
    uint64_t v = issued_total(m);
    metrics_close(m);
    return v;
}

/* Child: waits for the start signal (EOF on the pipe), opens, adds, exits 0. */
static void opener(const char *path, int start_fd)
{
    char c, err[256];
    while (read(start_fd, &c, 1) > 0)
        ;
    struct metrics *m = metrics_open(path, 0, err, sizeof err);
    if (m == NULL)
        _exit(3);
    for (int i = 0; i < ADDS_EACH; i++)
        metrics_add(m, M_ISSUED, 1);
    metrics_close(m);
    _exit(0);
}

/* Forks OPENERS processes that open `path` together; returns how many exited 0. */
static int run_openers(const char *path)
{
    int start[2];
    if (pipe(start) != 0)
        return -1;
    pid_t pids[OPENERS];
    int forked = 0;
    for (; forked < OPENERS; forked++) {
        pids[forked] = fork();
        if (pids[forked] < 0)
            break;
        if (pids[forked] == 0) {
            close(start[1]);
            opener(path, start[0]);
        }
    }
    close(start[0]);
    close(start[1]); /* every child reads EOF now: go */
    int ok = 0;
    for (int i = 0; i < forked; i++) {
        int status;
        if (waitpid(pids[i], &status, 0) != pids[i])
            continue;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            ok++;
        else if (WIFSIGNALED(status))
            fprintf(stderr, "opener killed by signal %d\n", WTERMSIG(status));
        else
            fprintf(stderr, "opener exited with %d\n", WEXITSTATUS(status));
    }
    return ok;
}

static void metrics_concurrent_openers_of_a_new_file_lose_no_count(void)
{
    char path[128];
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(path, sizeof path, "%s/fresh-%d", tmpdir, round);
        CU_ASSERT_EQUAL_FATAL(run_openers(path), OPENERS);
        uint64_t got = issued_in_file(path);
        CU_ASSERT_EQUAL(got, (uint64_t)OPENERS * ADDS_EACH);
        if (got != (uint64_t)OPENERS * ADDS_EACH) {
            fprintf(stderr, "round %d: %" PRIu64 " of %d\n", round, got, OPENERS * ADDS_EACH);
            break;
        }
        unlink(path);
    }
}

/* A file of the right size but another layout's version word: reset exactly once. */
static void metrics_concurrent_openers_of_a_foreign_file_reset_it_once(void)
{
    char path[128], err[256];
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(path, sizeof path, "%s/foreign-%d", tmpdir, round);
        struct metrics *m = metrics_open(path, 0, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        metrics_close(m);
        int fd = open(path, O_WRONLY);
        CU_ASSERT_FATAL(fd >= 0);
        unsigned foreign = 0x12345678u; /* the version word comes first */
        CU_ASSERT_EQUAL(pwrite(fd, &foreign, sizeof foreign, 0), (ssize_t)sizeof foreign);
        close(fd);
        CU_ASSERT_EQUAL_FATAL(run_openers(path), OPENERS);
        uint64_t got = issued_in_file(path);
        CU_ASSERT_EQUAL(got, (uint64_t)OPENERS * ADDS_EACH);
        if (got != (uint64_t)OPENERS * ADDS_EACH) {
            fprintf(stderr, "round %d: %" PRIu64 " of %d\n", round, got, OPENERS * ADDS_EACH);
            break;
        }
        unlink(path);
    }
}

static void metrics_open_of_an_existing_file_keeps_its_counters(void)
{
    char path[128], err[256];
    path_for(path, sizeof path, "existing");
    struct metrics *m = metrics_open(path, 0, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    metrics_add(m, M_ISSUED, 7);
    /* A second process maps it while the first still has it mapped. */
    struct metrics *again = metrics_open(path, 0, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    CU_ASSERT_EQUAL(issued_total(again), 7);
    metrics_add(again, M_ISSUED, 1);
    CU_ASSERT_EQUAL(issued_total(m), 8);
    metrics_close(again);
    metrics_close(m);
    CU_ASSERT_EQUAL(issued_in_file(path), 8);
    unlink(path);
}

/* A file longer than this build's layout is never shrunk (another process may map all of it). */
static void metrics_open_never_shrinks_the_file(void)
{
    char path[128], err[256];
    path_for(path, sizeof path, "longer");
    struct metrics *m = metrics_open(path, 0, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    metrics_add(m, M_ISSUED, 5);
    metrics_close(m);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    off_t longer = st.st_size + 4096;
    CU_ASSERT_EQUAL_FATAL(truncate(path, longer), 0);
    CU_ASSERT_EQUAL(issued_in_file(path), 5);
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, longer);
    unlink(path);
}

/* The standalone master's open (create) starts from zero, without truncating. */
static void metrics_open_create_resets_the_counters(void)
{
    char path[128], err[256];
    path_for(path, sizeof path, "master");
    struct metrics *m = metrics_open(path, 0, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    metrics_add(m, M_ISSUED, 3);
    struct metrics *master = metrics_open(path, 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(master);
    CU_ASSERT_EQUAL(issued_total(master), 0);
    metrics_add(m, M_ISSUED, 2); /* the old mapping stays valid: no SIGBUS */
    CU_ASSERT_EQUAL(issued_total(master), 2);
    metrics_close(master);
    metrics_close(m);
    unlink(path);
}

static void metrics_open_reports_an_unusable_path(void)
{
    char path[128], err[256] = "";
    path_for(path, sizeof path, "no-such-dir/metrics");
    CU_ASSERT_PTR_NULL(metrics_open(path, 0, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    metrics_close(NULL);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"metrics_concurrent_openers_of_a_new_file_lose_no_count",
         metrics_concurrent_openers_of_a_new_file_lose_no_count},
        {"metrics_concurrent_openers_of_a_foreign_file_reset_it_once",
         metrics_concurrent_openers_of_a_foreign_file_reset_it_once},
        {"metrics_open_of_an_existing_file_keeps_its_counters",
         metrics_open_of_an_existing_file_keeps_its_counters},
        {"metrics_open_never_shrinks_the_file", metrics_open_never_shrinks_the_file},
        {"metrics_open_create_resets_the_counters", metrics_open_create_resets_the_counters},
        {"metrics_open_reports_an_unusable_path", metrics_open_reports_an_unusable_path},
    };
    log_init("test_metrics", LOG_LEVEL_WARN);
    const char *parent = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_metrics.XXXXXX", parent && *parent ? parent : "/tmp");
    if (strlen(tmpdir) >= sizeof tmpdir - 1 || mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    int rc = unit_run_suite("metrics", NULL, UNIT_CASES(tests));
    rmdir(tmpdir);
    return rc;
}
