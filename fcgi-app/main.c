/*
 * main.c - coupon-fcgi: the pre-forking master, or a single worker under spawn-fcgi.
 *
 * Standalone: the master opens the listening socket, zeroes the shared metrics,
 * forks `workers` processes and then only supervises. A worker that dies after
 * it ran a while (WORKER_STABLE_MS) is replaced at once. One that dies young,
 * or a fork that fails, leaves its slot empty until a retry with backoff (0.5 s
 * doubling to 10 s, per slot): workers failing at start (a crash loop) cost
 * little, the master keeps answering signals, and it logs the cause once per
 * streak of failures, not on every respawn. SIGHUP re-reads the configuration
 * and starts a new generation of workers before asking the old one to stop
 * (the socket never closes, so no connection is refused and requests in flight
 * finish);
 * SIGTERM/SIGINT stops every worker gracefully and exits 0 when they are gone.
 * Under spawn-fcgi (fd 0 is a listening socket) this process is one worker.
 */
#include "first.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "auth.h"
#include "clock.h"
#include "conf.h"
#include "cp_err.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "router.h"
#include "series.h"
#include "stock.h"
#include "worker.h"

#define MAX_WORKERS            256
#define NSLOTS                 (MAX_WORKERS * 2) /* a reload runs two generations side by side */
#define LISTEN_BACKLOG         1024
/* Delay before respawning a slot whose worker died young or could not be forked. */
#define RESPAWN_BACKOFF_MIN_MS 500
#define RESPAWN_BACKOFF_MAX_MS 10000
/* A worker that lived this long was not failing at start: replaced at once, backoff reset. */
#define WORKER_STABLE_MS       5000

struct cli {
    const char *config_path;
    const char *listen, *workers, *threads;
    int print_config;
    int print_routes;
};

struct slot {
    pid_t pid;           /* > 0 while a worker runs in the slot */
    unsigned generation; /* of the worker running or due */
    int wanted;          /* the slot should hold a worker of `generation` */
    int64_t started_ms;  /* when its worker was forked (monotonic) */
    int64_t due_ms;      /* wanted, no worker: (re)spawn at or after this time */
    int backoff_ms;      /* the last delay after an early death or failed fork; 0: none */
};

/* Workers dying young or failed forks since the pool was last healthy. */
struct streak {
    unsigned failures;
    char cause[128]; /* of the last one reported */
};

static void usage(FILE *out)
{
    fprintf(out, "usage: coupon-fcgi [-c FILE] [--listen unix:PATH|HOST:PORT] [--workers N]\n"
                 "                   [--threads N] [--print-config] [--print-routes]\n"
                 "Serves the coupon API over FastCGI. With fd 0 a listening socket (spawn-fcgi)\n"
                 "it runs as one worker; otherwise it pre-forks N workers on --listen.\n");
}

static int parse_cli(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'}, {"threads", required_argument, NULL, 't'},
        {"print-config", no_argument, NULL, 'p'},  {"print-routes", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    memset(cli, 0, sizeof *cli);
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cli->config_path = optarg; break;
        case 'l': cli->listen = optarg; break;
        case 'w': cli->workers = optarg; break;
        case 't': cli->threads = optarg; break;
        case 'p': cli->print_config = 1; break;
        case 'r': cli->print_routes = 1; break;
        case 'h': usage(stdout); exit(0);
        default: return CP_ERR_INVALID;
        }
    }
    return optind == argc ? CP_OK : CP_ERR_INVALID;
}

/* File, then environment, then command line. */
static int load_conf(const struct cli *cli, struct cp_conf *conf)
{
    char err[512];
    int rc = conf_load(conf, cli->config_path, err, sizeof err);
    if (rc == CP_OK && cli->listen)
        rc = conf_set(conf, "listen", cli->listen, err, sizeof err);
    if (rc == CP_OK && cli->workers)
        rc = conf_set(conf, "workers", cli->workers, err, sizeof err);
    if (rc == CP_OK && cli->threads)
        rc = conf_set(conf, "threads", cli->threads, err, sizeof err);
    enum log_level level = LOG_LEVEL_INFO;
    if (rc == CP_OK && log_level_parse(conf->log_level, &level) != CP_OK) {
        snprintf(err, sizeof err, "log_level: expected debug|info|warn|error");
        rc = CP_ERR_INVALID;
    }
    /* The codes of the issuances are a MAC under this key: without it they would be
     * computable by anyone (and the consumer must hold the same one). */
    if (rc == CP_OK && !cli->print_config && strlen(conf->code_secret) < CP_CODE_SECRET_MIN_BYTES) {
        snprintf(err, sizeof err,
                 "code_secret must be set (at least %d bytes, the same as "
                 "coupon-consumer's)",
                 CP_CODE_SECRET_MIN_BYTES);
        rc = CP_ERR_INVALID;
    }
    if (rc != CP_OK) {
        log_error("configuration: %s", err);
        return rc;
    }
    log_init("coupon-fcgi", level);
    return CP_OK;
}

static int fd0_is_listening_socket(void)
{
    int accepting = 0;
    socklen_t len = sizeof accepting;
    return getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting;
}

static int open_listener(const char *listen)
{
    const char *path = listen;
    if (strncmp(listen, "unix:", 5) == 0) {
        path = listen + 5;
        struct stat st;
        /* A socket file left by a crashed master would make bind fail. */
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path);
    }
    int fd = FCGX_OpenSocket(path, LISTEN_BACKLOG);
    if (fd < 0) {
        log_error("cannot listen on %s: %s", listen, strerror(errno));
        return -1;
    }
    if (strncmp(listen, "unix:", 5) == 0 && chmod(path, 0660) != 0)
        log_warn("chmod %s: %s", path, strerror(errno));
    return fd;
}

/* Refuses a configuration whose auth settings a worker could not start with (a missing
 * JWKS file, say), before any worker is forked; warns once about auth_mode = none. */
static int auth_check(const struct cp_conf *conf)
{
    char err[512];
    struct auth *probe = auth_new(conf, NULL, NULL, err, sizeof err);
    if (probe == NULL) {
        log_error("configuration: %s", err);
        return CP_ERR_INVALID;
    }
    auth_free(probe);
    if (conf->auth_mode == CONF_AUTH_NONE)
        log_warn("auth_mode = none: requests are not authenticated and any client can act as "
                 "any user (benchmarks and local trials only)");
    return CP_OK;
}

/* The per-user limits every worker of this host shares (ratelimit.h): created before
 * the first fork so that each worker inherits the same mapping. */
static struct ratelimit *limits_new(const struct cp_conf *conf)
{
    struct ratelimit_config rc = {{
        [RATELIMIT_ISSUE] = {conf->ratelimit_issue_per_s, (uint32_t)conf->ratelimit_issue_burst},
        [RATELIMIT_REDEEM] = {conf->ratelimit_redeem_per_s, (uint32_t)conf->ratelimit_redeem_burst},
    }};
    char err[256];
    if (ratelimit_config_check(&rc, RATELIMIT_CAPACITY_DEFAULT, err, sizeof err) != CP_OK) {
        log_error("configuration: ratelimit_*: %s", err);
        return NULL;
    }
    struct ratelimit *rl = ratelimit_new(&rc, RATELIMIT_CAPACITY_DEFAULT);
    if (rl == NULL)
        log_error("the per-user limits' shared table could not be mapped: %s", strerror(errno));
    return rl;
}

/* The tables every worker of this host shares, mapped before the first fork. */
struct host_tables {
    struct ratelimit *limits; /* per-user limits (ratelimit.h) */
    struct stock *stock;      /* issued counts (stock.h) */
};

/* The issued counts every worker of this host answers from (stock.h); NULL logged. */
static struct stock *stock_table_new(void)
{
    struct stock_config sc = {.capacity = STOCK_CAPACITY_DEFAULT, .ttl_ms = STOCK_TTL_MS};
    struct stock *st = stock_new(&sc);
    if (st == NULL)
        log_error("the issued counts' shared table could not be mapped: %s", strerror(errno));
    return st;
}

/* Forks one worker; returns its pid, or -1 with errno set when fork failed. */
static pid_t spawn_worker(const struct cp_conf *conf, int listen_fd, const struct host_tables *host)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t none;
    sigemptyset(&none);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    _exit(worker_run(conf, listen_fd, host->limits, host->stock));
}

static int count_alive(const struct slot *slots)
{
    int alive = 0;
    for (int i = 0; i < NSLOTS; i++)
        alive += slots[i].pid > 0;
    return alive;
}

/* The delay before the slot's next attempt: 0.5 s, doubling, capped. */
static int next_backoff(struct slot *s)
{
    s->backoff_ms = s->backoff_ms == 0 ? RESPAWN_BACKOFF_MIN_MS : s->backoff_ms * 2;
    if (s->backoff_ms > RESPAWN_BACKOFF_MAX_MS)
        s->backoff_ms = RESPAWN_BACKOFF_MAX_MS;
    return s->backoff_ms;
}

/*
 * A worker died young or could not be forked. Said once per streak (and again
 * if the cause changes), not on every respawn: a worker that cannot start logs
 * its own error just before it exits, once per attempt, and the backoff keeps
 * those few.
 */
static void note_failure(struct streak *st, pid_t pid, const char *cause, int64_t lived_ms,
                         int retry_ms)
{
    if (st->failures++ > 0 && strcmp(st->cause, cause) == 0) {
        log_debug("worker start failed again (%s); retry in %d ms", cause, retry_ms);
        return;
    }
    snprintf(st->cause, sizeof st->cause, "%s", cause);
    if (pid > 0)
        log_error("workers die soon after start: worker %d %s %lld ms after it was started; "
                  "respawning with backoff (%d ms now, up to %d s); said again only if the "
                  "cause changes",
                  (int)pid, cause, (long long)lived_ms, retry_ms, RESPAWN_BACKOFF_MAX_MS / 1000);
    else
        log_error("cannot start workers: %s; retrying with backoff (%d ms now, up to %d s); "
                  "said again only if the cause changes",
                  cause, retry_ms, RESPAWN_BACKOFF_MAX_MS / 1000);
}

/* Forks a worker into every slot that wants one and whose time has come. */
static void spawn_due(struct slot *slots, struct streak *st, const struct cp_conf *conf,
                      int listen_fd, const struct host_tables *host, int64_t now)
{
    for (int i = 0; i < NSLOTS; i++) {
        struct slot *s = &slots[i];
        if (!s->wanted || s->pid > 0 || s->due_ms > now)
            continue;
        pid_t pid = spawn_worker(conf, listen_fd, host);
        if (pid < 0) {
            char cause[128];
            snprintf(cause, sizeof cause, "fork failed: %s", strerror(errno));
            int retry = next_backoff(s);
            s->due_ms = now + retry;
            note_failure(st, 0, cause, 0, retry);
            continue;
        }
        s->pid = pid;
        s->started_ms = now;
    }
}

/* Ends the failure streak once a worker of the running generation has lived a while. */
static void check_recovered(const struct slot *slots, struct streak *st, unsigned generation,
                            int64_t now)
{
    if (st->failures == 0)
        return;
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].pid > 0 && slots[i].generation == generation &&
            now - slots[i].started_ms >= WORKER_STABLE_MS) {
            log_info("workers start again (after %u failed starts)", st->failures);
            st->failures = 0;
            st->cause[0] = '\0';
            return;
        }
}

/* Milliseconds until the loop has something to do without a signal; -1: nothing. */
static int64_t next_wakeup(const struct slot *slots, const struct streak *st, unsigned generation,
                           int stopping, int64_t now)
{
    int64_t at = -1;
    for (int i = 0; i < NSLOTS; i++) {
        const struct slot *s = &slots[i];
        int64_t t = -1;
        if (!stopping && s->wanted && s->pid == 0)
            t = s->due_ms;
        else if (st->failures > 0 && s->pid > 0 && s->generation == generation)
            t = s->started_ms + WORKER_STABLE_MS;
        if (t >= 0 && (at < 0 || t < at))
            at = t;
    }
    return at < 0 ? -1 : at > now ? at - now : 0;
}

/* Waits for one of `set` at most `ms` (-1: no limit); 0 when none came. */
static int wait_signal(const sigset_t *set, int64_t ms)
{
    int sig;
    if (ms < 0) {
        sig = sigwaitinfo(set, NULL);
    } else {
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        sig = sigtimedwait(set, NULL, &ts);
    }
    return sig > 0 ? sig : 0; /* EAGAIN: timed out; EINTR: look again */
}

/*
 * The console's ring (series.h) wants one sample per wall-clock second: samples when the
 * second changed since the last one, and returns the milliseconds until the next second
 * starts (-1: no ring, nothing to wait for).
 */
static int64_t sample_series(struct series *series, struct metrics *metrics, int64_t *last_s)
{
    struct timespec now;
    if (series == NULL || clock_gettime(CLOCK_REALTIME, &now) != 0)
        return -1;
    if ((int64_t)now.tv_sec != *last_s) {
        series_sample(series, metrics, (int64_t)now.tv_sec);
        *last_s = (int64_t)now.tv_sec;
    }
    return (1000000000L - now.tv_nsec) / 1000000L + 1;
}

/* Reaps every child that exited; schedules the replacement of those not asked to stop. */
static void reap(struct slot *slots, struct streak *st, unsigned generation, int stopping,
                 struct metrics *metrics)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int64_t now = clock_mono_ms();
        for (int i = 0; i < NSLOTS; i++) {
            struct slot *s = &slots[i];
            if (s->pid != pid)
                continue;
            s->pid = 0;
            if (stopping || s->generation != generation) {
                s->wanted = 0;
                break;
            }
            metrics_add(metrics, M_WORKER_RESTARTS, 1);
            int64_t lived = now - s->started_ms;
            char cause[96];
            if (WIFSIGNALED(status))
                snprintf(cause, sizeof cause, "was killed by signal %d (%s)", WTERMSIG(status),
                         strsignal(WTERMSIG(status)));
            else /* worker_run returns 1 when it could not start */
                snprintf(cause, sizeof cause, "exited with status %d%s", WEXITSTATUS(status),
                         WEXITSTATUS(status) == 1 && lived < WORKER_STABLE_MS
                             ? " (start failed: its error is logged above)"
                             : "");
            if (lived >= WORKER_STABLE_MS) {
                log_warn("worker %d %s after %lld s; replacing it", (int)pid, cause,
                         (long long)(lived / 1000));
                s->backoff_ms = 0;
                s->due_ms = now;
            } else {
                int retry = next_backoff(s);
                s->due_ms = now + retry;
                note_failure(st, pid, cause, lived, retry);
            }
            break;
        }
    }
}

static int run_master(const struct cli *cli, struct cp_conf *conf, const struct host_tables *host)
{
    char err[256];
    int listen_fd = open_listener(conf->listen);
    if (listen_fd < 0)
        return 1;
    struct metrics *metrics = metrics_open(conf->metrics_path, 1, err, sizeof err);
    if (metrics == NULL) {
        log_error("%s", err);
        return 1;
    }
    /* The master is the one sampler of the console's ring (series.h). */
    struct series *series = series_open(conf->metrics_path, 1, err, sizeof err);
    if (series == NULL)
        log_warn("%s; the console's time series stay empty", err);
    int nworkers = conf->workers > 0 ? conf->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nworkers < 1)
        nworkers = 1;
    if (nworkers > MAX_WORKERS)
        nworkers = MAX_WORKERS;
    struct slot slots[NSLOTS];
    memset(slots, 0, sizeof slots);
    struct streak streak = {0, ""};
    unsigned generation = 1;
    int64_t now = clock_mono_ms();
    for (int i = 0; i < nworkers; i++)
        slots[i] = (struct slot){.wanted = 1, .generation = generation, .due_ms = now};
    log_info("master %d: %d workers x %d threads x %d connections on %s", (int)getpid(), nworkers,
             worker_threads(conf), worker_slots_per_thread(conf), conf->listen);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int stopping = 0;
    int64_t sampled_s = -1;
    for (;;) {
        now = clock_mono_ms();
        if (!stopping)
            spawn_due(slots, &streak, conf, listen_fd, host, now);
        check_recovered(slots, &streak, generation, now);
        metrics_gauge_set(metrics, G_WORKERS, count_alive(slots));
        if (stopping && count_alive(slots) == 0)
            break;
        int64_t wait = next_wakeup(slots, &streak, generation, stopping, now);
        int64_t to_sample = sample_series(series, metrics, &sampled_s);
        if (to_sample >= 0 && (wait < 0 || to_sample < wait))
            wait = to_sample;
        int sig = wait_signal(&set, wait);
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping)
                log_info("master: stopping %d workers", count_alive(slots));
            stopping = 1;
            for (int i = 0; i < NSLOTS; i++) {
                slots[i].wanted = 0; /* a respawn still due is dropped */
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGTERM);
            }
        } else if (sig == SIGHUP && !stopping) {
            struct cp_conf fresh;
            if (load_conf(cli, &fresh) != CP_OK || auth_check(&fresh) != CP_OK) {
                log_error("reload: configuration rejected, keeping the running one");
                continue;
            }
            if (fresh.ratelimit_issue_per_s != conf->ratelimit_issue_per_s ||
                fresh.ratelimit_issue_burst != conf->ratelimit_issue_burst ||
                fresh.ratelimit_redeem_per_s != conf->ratelimit_redeem_per_s ||
                fresh.ratelimit_redeem_burst != conf->ratelimit_redeem_burst)
                log_warn("reload: 'ratelimit_*' changes need a restart; keeping the running "
                         "limits");
            if (strcmp(fresh.listen, conf->listen) != 0)
                log_warn("reload: 'listen' changes need a restart; keeping %s", conf->listen);
            snprintf(fresh.listen, sizeof fresh.listen, "%s", conf->listen);
            *conf = fresh;
            int want = conf->workers > 0 ? conf->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
            if (want < 1 || want > MAX_WORKERS)
                want = nworkers;
            generation++;
            now = clock_mono_ms();
            int assigned = 0;
            for (int i = 0; i < NSLOTS; i++) {
                struct slot *s = &slots[i];
                if (s->pid == 0)
                    s->wanted = 0; /* an old generation's respawn still due is dropped */
                if (s->pid == 0 && assigned < want) {
                    *s = (struct slot){.wanted = 1, .generation = generation, .due_ms = now};
                    assigned++;
                }
            }
            spawn_due(slots, &streak, conf, listen_fd, host, now);
            /* The new generation accepts on the same socket; the old one drains. */
            for (int i = 0; i < NSLOTS; i++)
                if (slots[i].pid > 0 && slots[i].generation != generation)
                    kill(slots[i].pid, SIGTERM);
            nworkers = want;
            int started = 0;
            for (int i = 0; i < NSLOTS; i++)
                started += slots[i].pid > 0 && slots[i].generation == generation;
            log_info("reload: generation %u started with %d of %d workers", generation, started,
                     want);
        }
        reap(slots, &streak, generation, stopping, metrics);
    }
    if (strncmp(conf->listen, "unix:", 5) == 0)
        unlink(conf->listen + 5);
    series_close(series);
    metrics_close(metrics);
    log_info("master: all workers stopped");
    return 0;
}

int main(int argc, char **argv)
{
    struct cli cli;
    struct cp_conf conf;
    if (parse_cli(argc, argv, &cli) != CP_OK) {
        usage(stderr);
        return 2;
    }
    if (cli.print_routes) { /* needs no configuration */
        router_print_routes(stdout);
        return 0;
    }
    if (load_conf(&cli, &conf) != CP_OK)
        return 2;
    if (cli.print_config) {
        conf_dump(&conf, stdout);
        return 0;
    }
    if (auth_check(&conf) != CP_OK)
        return 2;
    struct host_tables host = {limits_new(&conf), stock_table_new()};
    if (host.limits == NULL || host.stock == NULL) {
        ratelimit_free(host.limits);
        stock_free(host.stock);
        return 1;
    }
    if (fd0_is_listening_socket()) {
        /* spawn-fcgi -F N forks N of these: each has its own limits and stock table
         * (docs/ARCHITECTURE). */
        int rc = worker_run(&conf, 0, host.limits, host.stock);
        ratelimit_free(host.limits);
        stock_free(host.stock);
        return rc;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = run_master(&cli, &conf, &host);
    ratelimit_free(host.limits);
    stock_free(host.stock);
    return rc;
}
