/*
 * main.c - coupon-fcgi: the pre-forking master, or a single worker under spawn-fcgi.
 *
 * Standalone: the master opens the listening socket, zeroes the shared metrics,
 * forks `workers` processes and then only supervises: a worker that dies is
 * replaced at once; SIGHUP re-reads the configuration and starts a new
 * generation of workers before asking the old one to stop (the socket never
 * closes, so no connection is refused and requests in flight finish);
 * SIGTERM/SIGINT stops every worker gracefully and exits 0 when they are gone.
 * Under spawn-fcgi (fd 0 is a listening socket) this process is one worker.
 */
#include "first.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "conf.h"
#include "cp_err.h"
#include "log.h"
#include "metrics.h"
#include "series.h"
#include "worker.h"

#define MAX_WORKERS 256
#define LISTEN_BACKLOG 1024

struct cli {
    const char *config_path;
    const char *listen, *workers, *threads;
    int print_config;
};

struct slot {
    pid_t pid;
    unsigned generation;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: coupon-fcgi [-c FILE] [--listen unix:PATH|HOST:PORT] [--workers N]\n"
            "                   [--threads N] [--print-config]\n"
            "Serves the coupon API over FastCGI. With fd 0 a listening socket (spawn-fcgi)\n"
            "it runs as one worker; otherwise it pre-forks N workers on --listen.\n");
}

static int parse_cli(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'}, {"threads", required_argument, NULL, 't'},
        {"print-config", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(cli, 0, sizeof *cli);
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cli->config_path = optarg; break;
        case 'l': cli->listen = optarg; break;
        case 'w': cli->workers = optarg; break;
        case 't': cli->threads = optarg; break;
        case 'p': cli->print_config = 1; break;
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

static pid_t spawn_worker(const struct cp_conf *conf, int listen_fd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t none;
    sigemptyset(&none);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    _exit(worker_run(conf, listen_fd));
}

static int count_alive(const struct slot *slots, int n)
{
    int alive = 0;
    for (int i = 0; i < n; i++)
        alive += slots[i].pid > 0;
    return alive;
}

/* Waits for one of the signals in set, sampling the console's ring at every wall-clock
 * second meanwhile. Returns the signal, or -1 when the wait ended without one. */
static int next_signal(const sigset_t *set, struct series *series, struct metrics *metrics)
{
    struct timespec now;
    if (series == NULL || clock_gettime(CLOCK_REALTIME, &now) != 0) {
        int sig;
        return sigwait(set, &sig) == 0 ? sig : -1;
    }
    series_sample(series, metrics, (int64_t)now.tv_sec);
    /* Until just after the next second starts. */
    struct timespec wait = {0, 1000000000L - now.tv_nsec + 1000000L};
    if (wait.tv_nsec >= 1000000000L) {
        wait.tv_sec = 1;
        wait.tv_nsec -= 1000000000L;
    }
    int sig = sigtimedwait(set, NULL, &wait);
    return sig > 0 ? sig : -1;
}

static int run_master(const struct cli *cli, struct cp_conf *conf)
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
    struct slot slots[MAX_WORKERS * 2];
    memset(slots, 0, sizeof slots);
    unsigned generation = 1;
    for (int i = 0; i < nworkers; i++) {
        slots[i].pid = spawn_worker(conf, listen_fd);
        slots[i].generation = generation;
    }
    log_info("master %d: %d workers x %d threads on %s", (int)getpid(), nworkers, conf->threads,
             conf->listen);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int stopping = 0;
    for (;;) {
        metrics_gauge_set(metrics, G_WORKERS, count_alive(slots, MAX_WORKERS * 2));
        if (stopping && count_alive(slots, MAX_WORKERS * 2) == 0)
            break;
        int sig = next_signal(&set, series, metrics);
        if (sig < 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping)
                log_info("master: stopping %d workers", count_alive(slots, MAX_WORKERS * 2));
            stopping = 1;
            for (int i = 0; i < MAX_WORKERS * 2; i++)
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGTERM);
        } else if (sig == SIGHUP && !stopping) {
            struct cp_conf fresh;
            if (load_conf(cli, &fresh) != CP_OK) {
                log_error("reload: configuration rejected, keeping the running one");
                continue;
            }
            if (strcmp(fresh.listen, conf->listen) != 0)
                log_warn("reload: 'listen' changes need a restart; keeping %s", conf->listen);
            snprintf(fresh.listen, sizeof fresh.listen, "%s", conf->listen);
            *conf = fresh;
            int want = conf->workers > 0 ? conf->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
            if (want < 1 || want > MAX_WORKERS)
                want = nworkers;
            generation++;
            int started = 0;
            for (int i = 0; i < MAX_WORKERS * 2 && started < want; i++) {
                if (slots[i].pid > 0)
                    continue;
                slots[i].pid = spawn_worker(conf, listen_fd);
                slots[i].generation = generation;
                started++;
            }
            /* The new generation accepts on the same socket; the old one drains. */
            for (int i = 0; i < MAX_WORKERS * 2; i++)
                if (slots[i].pid > 0 && slots[i].generation != generation)
                    kill(slots[i].pid, SIGTERM);
            nworkers = want;
            log_info("reload: generation %u started with %d workers", generation, started);
        }
        /* Reap every child that exited; replace the ones that were not asked to stop. */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < MAX_WORKERS * 2; i++) {
                if (slots[i].pid != pid)
                    continue;
                slots[i].pid = 0;
                if (stopping || slots[i].generation != generation)
                    break;
                metrics_add(metrics, M_WORKER_RESTARTS, 1);
                if (WIFSIGNALED(status))
                    log_warn("worker %d killed by signal %d; replacing it", (int)pid,
                             WTERMSIG(status));
                else
                    log_warn("worker %d exited with %d; replacing it", (int)pid,
                             WEXITSTATUS(status));
                if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
                    /* A worker that cannot start would otherwise fork in a tight loop. */
                    struct timespec pause = {0, 500 * 1000 * 1000};
                    nanosleep(&pause, NULL);
                }
                slots[i].pid = spawn_worker(conf, listen_fd);
                break;
            }
        }
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
    if (load_conf(&cli, &conf) != CP_OK)
        return 2;
    if (cli.print_config) {
        conf_dump(&conf, stdout);
        return 0;
    }
    if (fd0_is_listening_socket())
        return worker_run(&conf, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    return run_master(&cli, &conf);
}
