/*
 * ceiling.c - ceiling-fcgi: the most trivial FastCGI responder, for the benchmark only.
 *
 * scripts/bench puts it behind the same nginx site as coupon-fcgi and measures it first:
 * whatever any FastCGI program can serve on this machine, through this web server, with
 * this process and thread model, is the ceiling every scenario is compared with.
 *
 * The model is coupon-fcgi's, on purpose: a master opens the listening socket (unix:PATH
 * or HOST:PORT, backlog 1024), pre-forks `--workers` processes, and each worker runs
 * `--threads` threads looping FCGX_Accept_r -> fixed answer -> FCGX_Finish_r on that one
 * shared socket (no accept serialisation, no upstream keep-alive). The answer is a small
 * constant JSON document, about the size of an issue answer, with no I/O of any kind.
 *
 * SIGTERM/SIGINT to the master stops the workers (SIGTERM, default action: they have no
 * state to save) and removes a unix socket. It is not hardened and not installed: it
 * serves nothing real.
 */
#include "first.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#define CEILING_BACKLOG     1024
#define CEILING_MAX_WORKERS 64
#define CEILING_MAX_THREADS 1024

/* About as long as a 201 of the issue path, so both move the same bytes. */
static const char ceiling_body[] =
    "{\"couponId\":1,\"userId\":1000001,\"sequence\":1,\"status\":\"ISSUED\","
    "\"issuedAt\":\"2026-01-01T00:00:00.000Z\"}";

struct ceiling {
    int listen_fd;
    int nworkers;
    int nthreads;
    const char *listen;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ceiling-fcgi --listen unix:PATH|HOST:PORT [--workers N] [--threads N]\n"
                 "A constant FastCGI answer, the benchmark's ceiling (N workers x N threads).\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static void *serve(void *arg)
{
    const struct ceiling *c = arg;
    FCGX_Request req;
    char head[160];
    int hlen = snprintf(head, sizeof head,
                        "Status: 200 OK\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n",
                        sizeof ceiling_body - 1);
    if (hlen < 0 || (size_t)hlen >= sizeof head)
        return NULL;
    if (FCGX_InitRequest(&req, c->listen_fd, 0) != 0) {
        fprintf(stderr, "ceiling-fcgi: FCGX_InitRequest failed\n");
        return NULL;
    }
    for (int failures = 0;;) {
        if (FCGX_Accept_r(&req) < 0) {
            /* One failure is a peer gone between connect and accept; a run of them is
             * libfcgi refusing for good (its SIGUSR1 handler, say): stop, never spin. */
            if (++failures < 100)
                continue;
            fprintf(stderr, "ceiling-fcgi: worker %d: accept keeps failing, exiting\n",
                    (int)getpid());
            _exit(1);
        }
        failures = 0;
        if (FCGX_PutStr(head, hlen, req.out) == hlen)
            (void)FCGX_PutStr(ceiling_body, (int)sizeof ceiling_body - 1, req.out);
        FCGX_Finish_r(&req);
    }
    return NULL;
}

/* One worker process: nthreads - 1 extra threads plus this one, all accepting. */
static int worker_main(const struct ceiling *c)
{
    int rc = 1;
    int started = 0;
    pthread_t *threads = calloc((size_t)c->nthreads, sizeof *threads);
    if (threads == NULL) {
        fprintf(stderr, "ceiling-fcgi: out of memory\n");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    for (started = 1; started < c->nthreads; started++) {
        if (pthread_create(&threads[started], NULL, serve, (void *)c) != 0) {
            fprintf(stderr, "ceiling-fcgi: pthread_create failed after %d threads\n", started);
            goto out;
        }
    }
    serve((void *)c);
    rc = 0;
out:
    /* Reached only on a start failure (serve never returns in normal operation). */
    free(threads);
    return rc;
}

static int open_listener(const char *listen)
{
    const char *path = listen;
    if (strncmp(listen, "unix:", 5) == 0) {
        struct stat st;
        path = listen + 5;
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) != 0) {
            fprintf(stderr, "ceiling-fcgi: unlink %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    int fd = FCGX_OpenSocket(path, CEILING_BACKLOG);
    if (fd < 0)
        fprintf(stderr, "ceiling-fcgi: cannot listen on %s\n", listen);
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct ceiling c = {.listen_fd = -1, .nworkers = 0, .nthreads = 16, .listen = NULL};
    pid_t pids[CEILING_MAX_WORKERS];
    int spawned = 0, rc = 1, opt;

    while ((opt = getopt_long(argc, argv, "l:w:t:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l': c.listen = optarg; break;
        case 'w':
            if (parse_int(optarg, 0, CEILING_MAX_WORKERS, &c.nworkers) != 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 't':
            if (parse_int(optarg, 1, CEILING_MAX_THREADS, &c.nthreads) != 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (c.listen == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (c.nworkers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c.nworkers = n < 1 ? 1 : (n > CEILING_MAX_WORKERS ? CEILING_MAX_WORKERS : (int)n);
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "ceiling-fcgi: FCGX_Init failed\n");
        return 1;
    }
    c.listen_fd = open_listener(c.listen);
    if (c.listen_fd < 0)
        return 1;

    /* The master waits for SIGTERM/SIGINT with sigwait; workers get the default actions. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, &old) != 0)
        goto out;
    for (; spawned < c.nworkers; spawned++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "ceiling-fcgi: fork: %s\n", strerror(errno));
            goto out;
        }
        if (pid == 0) {
            /* libfcgi's FCGX_Init caught SIGTERM (it only makes accept fail): a worker
             * has nothing to finish, the default action ends it. */
            if (signal(SIGTERM, SIG_DFL) == SIG_ERR || sigprocmask(SIG_SETMASK, &old, NULL) != 0)
                _exit(1);
            _exit(worker_main(&c));
        }
        pids[spawned] = pid;
    }
    fprintf(stderr, "ceiling-fcgi: master %d: %d workers x %d threads on %s\n", (int)getpid(),
            c.nworkers, c.nthreads, c.listen);
    int sig = 0;
    if (sigwait(&set, &sig) != 0)
        goto out;
    rc = 0;
out:
    for (int i = 0; i < spawned; i++)
        (void)kill(pids[i], SIGTERM);
    for (int i = 0; i < spawned; i++)
        (void)waitpid(pids[i], NULL, 0);
    if (strncmp(c.listen, "unix:", 5) == 0)
        (void)unlink(c.listen + 5);
    return rc;
}
