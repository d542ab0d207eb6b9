#include "first.h"

#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "app.h"
#include "auth.h"
#include "clock.h"
#include "cp_err.h"
#include "defer.h"
#include "invalidate.h"
#include "log.h"
#include "problem.h"
#include "router.h"

struct worker {
    struct app *app;
    int listen_fd;
    int slots_per_thread;
    atomic_int stopping;
    int nthreads;
    pthread_t *threads;
};

/*
 * A connection nginx keeps open (fastcgi_keep_conn) belongs to the web server
 * (FastCGI 3.5: "the Web server retains responsibility for the connection"):
 * closing it ourselves races with nginx sending the next request on it (a 502).
 * So a stopping worker closes a kept connection only once it has been idle for
 * KEPT_DRAIN_IDLE_MS - nginx reuses its most recently used connections first, so
 * an idle one is the least likely to be picked at that moment - and only when no
 * request is waiting on it: its idle time is that of its last answer, and a request
 * nginx sent since (not yet seen by this round) would be reset with the connection.
 * With nginx's pool at 128 per worker, connections reached only at the load's peaks
 * sit idle for seconds between requests; test_process's reload test met that as one
 * 502 in 17,296 requests before this check. The check leaves a window of microseconds
 * (between it and the close), not a round's. nginx closes kept connections itself
 * after keepalive_requests or keepalive_timeout (deploy/nginx).
 * A thread's epoll_wait(2) wakes at least every LOOP_POLL_MS to look at the stop flag.
 */
#define LOOP_POLL_MS          250
#define KEPT_DRAIN_IDLE_MS    500
/* After an accept error other than "nothing to accept" (EMFILE, ENOBUFS, ...). */
#define ACCEPT_ERROR_PAUSE_MS 10

/*
 * One FastCGI connection of a thread, and the request read from it until it is
 * answered. A thread owns request_slots of them: it polls the kept connections and
 * (while one slot has none) the listening socket, reads every request that arrived,
 * answers each at once except those a handler parked (defer.h), which are finished
 * at the end of the round. A request never waits across polls, so stopping needs no
 * bookkeeping beyond the kept connections.
 */
struct slot {
    FCGX_Request fcgi;
    int64_t idle_since_ms; /* monotonic; when its last answer was written */
    struct http_request req;
    int64_t started_us;
    enum metrics_route route;
    int unwatched; /* epoll_ctl failed: close the connection once its request is answered */
};

/*
 * The thread's connections and, while a slot is free, the listening socket are in one
 * epoll set: a round costs what is ready, not what is kept - with poll(2) over 64 kept
 * connections a read (one request per round) spent twice the CPU of one polling 16.
 * A slot's descriptor is added after every accept on it (EEXIST when it is the
 * connection it had: libfcgi may close a kept connection nginx closed and accept a new
 * one, under the same number, inside FCGX_Accept_r); closing a descriptor removes it.
 */
#define LISTEN_EVENT UINT32_MAX

struct request_loop {
    struct worker *w;
    struct app_thread *t;
    int nslots;
    struct slot *slots;
    int epfd;
    int listen_in_set;
    struct epoll_event *events; /* nslots + 1 */
    struct defer *defer;        /* the requests handlers parked this round */
};

static void answer(struct request_loop *l, struct slot *s, const struct http_response *resp)
{
    struct app *app = l->t->app;
    if (resp->status >= 500 && resp->status != 503)
        log_error("%s %s -> %d", s->req.method_text, s->req.path, resp->status);
    if (http_response_send(&s->fcgi, resp, s->req.method == HTTP_HEAD) != CP_OK)
        log_debug("client went away before the response was written");
    metrics_observe(app->metrics, s->route, resp->status, clock_mono_us() - s->started_us);
    metrics_gauge_add(app->metrics, G_IN_FLIGHT, -1);
    /* On a kept connection (fastcgi_keep_conn) the descriptor stays open - unless the
     * thread could not watch it (watch_slot): nginx then opens another. */
    FCGX_Finish_r(&s->fcgi);
    if (s->unwatched) {
        FCGX_Free(&s->fcgi, 1);
        s->unwatched = 0;
    }
    s->idle_since_ms = clock_mono_ms();
    log_set_request_id(NULL);
}

/* A request has been accepted on the slot: read it, then answer it unless its handler
 * parked it (defer.h). */
static void begin_request(struct request_loop *l, struct slot *s)
{
    struct app_thread *t = l->t;
    struct app *app = t->app;
    s->started_us = clock_mono_us();
    metrics_gauge_add(app->metrics, G_IN_FLIGHT, 1);
    struct http_response resp;
    http_response_init(&resp, t->resp_buf, sizeof t->resp_buf);
    s->route = ROUTE_UNKNOWN;
    defer_begin(l->defer, (int)(s - l->slots));
    memset(&s->req, 0, sizeof s->req);
    s->req.method_text = "?";
    switch (http_request_read(&s->fcgi, &s->req, t->body_buf, sizeof t->body_buf,
                              (size_t)app->conf->max_body_bytes)) {
    case HTTP_READ_OK:
        log_set_request_id(s->req.request_id);
        s->route = router_dispatch(t, &s->req, &resp);
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
    if (defer_parked(l->defer)) {
        /* The handler copied what it needs: the body buffer is free for the next. */
        log_set_request_id(NULL);
        return;
    }
    answer(l, s, &resp);
}

/* defer_host: a parked request's response is written into the thread's buffer, under
 * its request id, and sent as any other. */
static void resume_parked(void *ctx, int slot, struct http_response *resp)
{
    struct request_loop *l = ctx;
    http_response_init(resp, l->t->resp_buf, sizeof l->t->resp_buf);
    log_set_request_id(l->slots[slot].req.request_id);
}

static void answer_parked(void *ctx, int slot, struct http_response *resp)
{
    struct request_loop *l = ctx;
    answer(l, &l->slots[slot], resp);
}

/* The round's parked requests: each kind's flush once, then their answers. */
static void finish_parked(struct request_loop *l)
{
    if (defer_count(l->defer) == 0)
        return;
    const struct defer_host host = {.resume = resume_parked, .answer = answer_parked, .ctx = l};
    defer_round(l->defer, l->t, &host);
}

/* 1 when input is waiting on the connection (a request nginx already sent). */
static int input_waiting(int fd)
{
    char byte;
    return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Puts the slot's connection into the thread's epoll set (see LISTEN_EVENT). 0 = watched
 * (or no connection), -1 = it could not be: its next request would never be seen. */
static int watch_slot(struct request_loop *l, struct slot *s)
{
    if (s->fcgi.ipcFd < 0)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(s - l->slots)};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, s->fcgi.ipcFd, &ev) != 0 && errno != EEXIST) {
        log_warn("epoll_ctl: %s; closing a FastCGI connection after its request", strerror(errno));
        return -1;
    }
    return 0;
}

/* The listening socket in the set while the thread has a free slot and is not stopping. */
static void watch_listen(struct request_loop *l, int want)
{
    if (want == l->listen_in_set)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = LISTEN_EVENT};
    if (epoll_ctl(l->epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->w->listen_fd, &ev) != 0) {
        log_warn("epoll_ctl on the listening socket: %s", strerror(errno));
        return;
    }
    l->listen_in_set = want;
}

/* FCGX_Accept_r on a slot: on a kept connection it reads nginx's next request from
 * it (or, when nginx closed it, accepts a new one); otherwise it accepts. 1 = a
 * request to serve, 0 = none (the listening socket had nothing left: it is
 * non-blocking and shared with every thread of every worker). */
static int accept_on(struct request_loop *l, struct slot *s)
{
    int rc = FCGX_Accept_r(&s->fcgi);
    if (watch_slot(l, s) != 0) {
        if (rc < 0)
            FCGX_Free(&s->fcgi, 1);
        else
            s->unwatched = 1; /* answered first, then closed (answer) */
    }
    if (rc >= 0)
        return 1;
    if (rc != -EAGAIN && rc != -EWOULDBLOCK && rc != -EINTR && !atomic_load(&l->w->stopping)) {
        log_warn("FCGX_Accept_r failed: %d", rc);
        clock_sleep_ms(ACCEPT_ERROR_PAUSE_MS);
    }
    return 0;
}

/* One round: wait, read everything that arrived, answer it all. 0 = the thread is done
 * (stopping, and no connection left). */
static int loop_round(struct request_loop *l)
{
    int stopping = atomic_load(&l->w->stopping), kept = 0, has_free = 0;
    int64_t now = clock_mono_ms();
    for (int i = 0; i < l->nslots; i++) {
        struct slot *s = &l->slots[i];
        if (s->fcgi.ipcFd >= 0 && stopping && now - s->idle_since_ms >= KEPT_DRAIN_IDLE_MS &&
            !input_waiting(s->fcgi.ipcFd))
            FCGX_Free(&s->fcgi, 1); /* idle long enough to close (see KEPT_DRAIN_IDLE_MS) */
        if (s->fcgi.ipcFd < 0)
            has_free = 1;
        else
            kept++;
    }
    /* A stopping thread accepts nothing new, but serves its kept connections. */
    watch_listen(l, !stopping && has_free);
    if (kept == 0 && !l->listen_in_set)
        return !stopping;
    int ready = epoll_wait(l->epfd, l->events, l->nslots + 1, LOOP_POLL_MS);
    if (ready <= 0) {
        if (ready < 0 && errno != EINTR)
            log_warn("epoll_wait: %s", strerror(errno));
        return 1;
    }
    int listen_ready = 0;
    for (int j = 0; j < ready; j++) {
        uint32_t which = l->events[j].data.u32;
        if (which == LISTEN_EVENT) {
            listen_ready = 1;
            continue;
        }
        /* Readable, hung up, or an error FCGX_Accept_r will meet. */
        struct slot *s = &l->slots[which];
        if (s->fcgi.ipcFd >= 0 && accept_on(l, s))
            begin_request(l, s);
    }
    /* New connections into the free slots, until there is nothing left to accept. */
    for (int i = 0; listen_ready && i < l->nslots; i++) {
        struct slot *s = &l->slots[i];
        if (s->fcgi.ipcFd >= 0)
            continue;
        if (!accept_on(l, s))
            break;
        begin_request(l, s);
    }
    finish_parked(l);
    return 1;
}

static void loop_free(struct request_loop *l)
{
    for (int i = 0; l->slots != NULL && i < l->nslots; i++)
        FCGX_Free(&l->slots[i].fcgi, 1);
    free(l->slots);
    free(l->events);
    if (l->epfd >= 0)
        close(l->epfd);
    defer_free(l->defer);
    app_thread_free(l->t);
}

static int loop_init(struct request_loop *l, struct worker *w)
{
    memset(l, 0, sizeof *l);
    l->w = w;
    l->epfd = -1;
    l->nslots = w->slots_per_thread;
    size_t n = (size_t)l->nslots;
    l->t = app_thread_new(w->app);
    l->slots = calloc(n, sizeof *l->slots);
    l->events = calloc(n + 1, sizeof *l->events);
    l->defer = defer_new(l->nslots);
    if (l->t == NULL || l->slots == NULL || l->events == NULL || l->defer == NULL) {
        log_error("out of memory starting a request thread");
        return CP_ERR_NOMEM;
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        log_error("epoll_create1: %s", strerror(errno));
        return CP_ERR_SYSTEM;
    }
    l->t->defer = l->defer;
    for (int i = 0; i < l->nslots; i++) {
        if (FCGX_InitRequest(&l->slots[i].fcgi, w->listen_fd, 0) != 0) {
            log_error("FCGX_InitRequest failed");
            l->nslots = i; /* only these are freed */
            return CP_ERR_NOMEM;
        }
    }
    return CP_OK;
}

static void *thread_main(void *arg)
{
    struct request_loop l;
    if (loop_init(&l, arg) == CP_OK)
        while (loop_round(&l)) {
        }
    loop_free(&l);
    db_thread_end();
    return NULL;
}

int worker_threads(const struct cp_conf *conf)
{
    if (conf->threads > 0)
        return conf->threads;
    if (conf->issue_ack == CONF_ISSUE_ACK_KAFKA)
        return WORKER_DEFAULT_KAFKA_THREADS;
    return conf->redis_wait_replicas > 0 ? WORKER_DEFAULT_WAIT_THREADS : WORKER_DEFAULT_THREADS;
}

int worker_slots_per_thread(const struct cp_conf *conf)
{
    if (conf->request_slots > 0)
        return conf->request_slots;
    /* issue_ack=kafka holds a claim until the broker acknowledges it, redis_wait_replicas
     * until the replicas do (such claims are not batched), and a thread answers
     * its connections one after the other: fewer each then, and more threads. Idle kept
     * connections cost a pollfd, so every mode still polls WORKER_DEFAULT_CONNECTIONS. */
    if (conf->issue_ack == CONF_ISSUE_ACK_KAFKA)
        return WORKER_DEFAULT_KAFKA_SLOTS;
    if (conf->redis_wait_replicas > 0)
        return WORKER_DEFAULT_WAIT_SLOTS;
    return WORKER_DEFAULT_SLOTS;
}

int worker_run(const struct cp_conf *conf, int listen_fd, struct ratelimit *rl, struct stock *stock)
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
     * Threads poll(2) the shared listening socket and accept only when it is
     * readable; every thread of every worker is woken, one wins, the others must get
     * EAGAIN rather than block. O_NONBLOCK is a property of the socket every worker
     * shares (setting it again is harmless); the connections accept(2) returns do not
     * inherit it, so requests are read and written blocking. No signal is ever sent
     * to a thread, so no read or write of a request in flight can be interrupted.
     */
    int fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        log_error("O_NONBLOCK on the listening socket: %s", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    w.app = app_new(conf, rl, stock);
    if (w.app == NULL)
        goto out;
    inv = invalidator_start(w.app);
    if (inv == NULL)
        log_warn("cache invalidation subscriber not started; L1 entries expire by TTL only");
    w.nthreads = worker_threads(conf);
    w.slots_per_thread = worker_slots_per_thread(conf);
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
    log_info("worker ready: %d threads x %d connections", started, w.slots_per_thread);

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
    app_free(w.app);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
