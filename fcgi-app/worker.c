#include "first.h"

#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "app.h"
#include "clock.h"
#include "cp_err.h"
#include "invalidate.h"
#include "log.h"
#include "problem.h"
#include "router.h"

struct worker {
    struct app app;
    int listen_fd;
    atomic_int stopping;
    int nthreads;
    pthread_t *threads;
};

/* How long a blocked accept(2) waits before the thread looks at the stop flag. */
#define ACCEPT_TIMEOUT_MS  250
/*
 * A connection nginx keeps open (fastcgi_keep_conn) belongs to the web server
 * (FastCGI 3.5: "the Web server retains responsibility for the connection"):
 * closing it ourselves races with nginx sending the next request on it (a 502).
 * So a thread waits for the next request on it in poll(2) slices of this length,
 * looking at the stop flag in between, and a stopping worker closes a kept
 * connection only once it has been idle for KEPT_DRAIN_IDLE_MS - nginx reuses
 * its most recently used connections first, so an idle one is the least likely
 * to be picked at that moment. nginx closes kept connections itself after
 * keepalive_requests or keepalive_timeout (deploy/nginx).
 */
#define KEPT_POLL_MS       250
#define KEPT_DRAIN_IDLE_MS 500

static void serve_one(struct app_thread *t, FCGX_Request *fcgi)
{
    struct app *app = t->app;
    int64_t t0 = clock_mono_us();
    metrics_gauge_add(app->metrics, G_IN_FLIGHT, 1);

    struct http_request req;
    struct http_response resp;
    http_response_init(&resp, t->resp_buf, sizeof t->resp_buf);
    enum metrics_route route = ROUTE_UNKNOWN;
    switch (http_request_read(fcgi, &req, t->body_buf, sizeof t->body_buf,
                              (size_t)app->conf->max_body_bytes)) {
    case HTTP_READ_OK:
        log_set_request_id(req.request_id);
        route = router_dispatch(t, &req, &resp);
        break;
    case HTTP_READ_URI_TOO_LONG:
        problem_fail(&resp, CP_ERR_URI_TOO_LONG, "request URI or query string too long");
        break;
    case HTTP_READ_BODY_TOO_LARGE:
        problem_fail(&resp, CP_ERR_LIMIT, "request body over %d bytes", app->conf->max_body_bytes);
        break;
    case HTTP_READ_BAD_LENGTH: problem_fail(&resp, CP_ERR_INVALID, "invalid Content-Length"); break;
    case HTTP_READ_IO:
        problem_fail(&resp, CP_ERR_INVALID, "request body shorter than Content-Length");
        break;
    }
    if (resp.status >= 500 && resp.status != 503)
        log_error("%s %s -> %d", req.method_text, req.path, resp.status);
    if (http_response_send(fcgi, &resp, req.method == HTTP_HEAD) != CP_OK)
        log_debug("client went away before the response was written");
    metrics_observe(app->metrics, route, resp.status, clock_mono_us() - t0);
    metrics_gauge_add(app->metrics, G_IN_FLIGHT, -1);
    log_set_request_id(NULL);
}

/*
 * The thread holds a kept connection: wait until nginx sends on it (or closes it).
 * 1 = go on to FCGX_Accept_r; 0 = the worker is stopping and the connection has been
 * idle long enough to close.
 */
static int await_kept_connection(struct worker *w, int fd)
{
    int idle_ms = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, KEPT_POLL_MS);
        if (n != 0)
            return 1; /* readable, hung up, or an error FCGX_Accept_r will meet */
        idle_ms += KEPT_POLL_MS;
        if (atomic_load(&w->stopping) && idle_ms >= KEPT_DRAIN_IDLE_MS)
            return 0;
    }
}

static void *thread_main(void *arg)
{
    struct worker *w = arg;
    struct app_thread *t = calloc(1, sizeof *t);
    if (t == NULL) {
        log_error("out of memory starting a request thread");
        return NULL;
    }
    t->app = &w->app;
    FCGX_Request fcgi;
    if (FCGX_InitRequest(&fcgi, w->listen_fd, 0) != 0) {
        log_error("FCGX_InitRequest failed");
        free(t);
        return NULL;
    }
    for (;;) {
        /* A kept connection is served until nginx is done with it, even while
         * stopping; without one, a stopping thread accepts nothing new. */
        if (fcgi.ipcFd >= 0) {
            if (!await_kept_connection(w, fcgi.ipcFd))
                break;
        } else if (atomic_load(&w->stopping)) {
            break;
        }
        /* On a kept connection FCGX_Accept_r reads nginx's next request from it. */
        int rc = FCGX_Accept_r(&fcgi);
        if (rc < 0) {
            /* -EAGAIN: the accept timeout expired (see worker_run); look at the flag. */
            if (rc != -EAGAIN && rc != -EWOULDBLOCK && !atomic_load(&w->stopping)) {
                log_warn("FCGX_Accept_r failed: %d", rc);
                clock_sleep_ms(10);
            }
            continue;
        }
        serve_one(t, &fcgi);
        FCGX_Finish_r(&fcgi);
    }
    FCGX_Free(&fcgi, 1);
    rcli_free(t->redis);
    if (t->db != NULL)
        mysql_close(t->db);
    free(t);
    mysql_thread_end();
    return NULL;
}

static int app_init(struct app *app, const struct cp_conf *conf)
{
    char err[512];
    memset(app, 0, sizeof *app);
    app->conf = conf;
    app->metrics = metrics_open(conf->metrics_path, 0, err, sizeof err);
    if (app->metrics == NULL) {
        log_error("%s", err);
        return CP_ERR_SYSTEM;
    }
    /* The console's ring (the master samples it); a worker serves without it. */
    app->series = series_open(conf->metrics_path, 0, err, sizeof err);
    if (app->series == NULL)
        log_warn("%s; the console's time series stay empty", err);
    struct lru_config lc;
    struct l2_config l2c;
    app_cache_configs(conf, &lc, &l2c);
    app->l1 = lru_new(&lc);
    app->l2 = l2_new(&l2c, &l2_redis_ops);
    if (app->l1 == NULL || app->l2 == NULL) {
        log_error("worker start failed: out of memory for the caches");
        return CP_ERR_NOMEM;
    }
    if (conf->issue_ack == CONF_ISSUE_ACK_REDIS) {
        app->settler = settler_new(conf, app->metrics);
        if (app->settler == NULL) {
            log_error("worker start failed: cannot start the pending-record settler");
            return CP_ERR_NOMEM;
        }
        /* Only here: with issue_ack=kafka a claim can be rolled back after a sell-out,
         * and a snapshot could then call a user a holder who no longer is one. */
        if (conf->soldout_holders_max > 0) {
            app->holders = holders_new((size_t)conf->soldout_holders_max);
            if (app->holders == NULL) {
                log_error("worker start failed: out of memory for the holder snapshots");
                return CP_ERR_NOMEM;
            }
        }
    }
    app->producer = producer_new(conf, app->settler != NULL ? settler_on_report : NULL,
                                 app->settler, err, sizeof err);
    if (app->producer == NULL) {
        log_error("worker start failed: %s", err);
        return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

static void app_release(struct app *app)
{
    /* The producer first: its final flush still reports to the settler. */
    producer_free(app->producer);
    settler_free(app->settler);
    holders_free(app->holders);
    l2_free(app->l2);
    lru_free(app->l1);
    series_close(app->series);
    metrics_close(app->metrics);
}

int worker_run(const struct cp_conf *conf, int listen_fd)
{
    int rc = 1;
    struct worker w;
    struct invalidator *inv = NULL;
    memset(&w, 0, sizeof w);
    w.listen_fd = listen_fd;
    atomic_init(&w.stopping, 0);

    /* Threads inherit this mask; only the main thread takes SIGTERM/SIGINT/SIGHUP. */
    sigset_t stop_set, old;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_set, &old);
    /*
     * accept(2) honours SO_RCVTIMEO: a thread blocked in it returns EAGAIN every
     * ACCEPT_TIMEOUT_MS and sees the stop flag. No signal is ever sent to a
     * thread, so no read or write of a request in flight can be interrupted.
     * The option belongs to the listening socket every worker shares; setting the
     * same value from each is harmless.
     */
    struct timeval accept_timeout = {0, ACCEPT_TIMEOUT_MS * 1000};
    if (setsockopt(listen_fd, SOL_SOCKET, SO_RCVTIMEO, &accept_timeout, sizeof accept_timeout) != 0)
        log_warn("SO_RCVTIMEO on the listening socket: %s; stopping may wait for a request",
                 strerror(errno));
    signal(SIGPIPE, SIG_IGN);

    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    if (app_init(&w.app, conf) != CP_OK)
        goto out;
    inv = invalidator_start(&w.app);
    if (inv == NULL)
        log_warn("cache invalidation subscriber not started; L1 entries expire by TTL only");
    w.nthreads = conf->threads;
    w.threads = calloc((size_t)w.nthreads, sizeof *w.threads);
    if (w.threads == NULL)
        goto out;
    int started = 0;
    for (; started < w.nthreads; started++)
        if (pthread_create(&w.threads[started], NULL, thread_main, &w) != 0)
            break;
    if (started == 0) {
        log_error("no request thread could be started");
        goto out;
    }
    log_info("worker ready: %d threads", started);

    int sig = 0;
    while (sig != SIGTERM && sig != SIGINT) {
        if (sigwait(&stop_set, &sig) != 0)
            break;
    }
    log_info("worker stopping: finishing requests in flight");
    atomic_store(&w.stopping, 1);
    for (int i = 0; i < started; i++)
        pthread_join(w.threads[i], NULL);
    rc = 0;
out:
    invalidator_stop(inv);
    free(w.threads);
    app_release(&w.app);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
