/*
 * worker.h - one worker process: a pool of request threads on a shared
 * listening socket, each serving several FastCGI connections.
 *
 * Everything that must not cross fork() - the Kafka producer, Redis and
 * MariaDB connections, threads - is created here, after fork (app_new,
 * app_thread_new). Each thread owns a struct app_thread and request_slots FastCGI
 * connections (slots). It waits (epoll) on the connections nginx keeps open and,
 * while a slot is free, the listening socket (non-blocking: every thread waits on
 * it, one wins each accept); it reads every request that arrived and answers each
 * at once, except those a handler parked (defer.h): at the end of the round each
 * kind of parked work is flushed once and those requests are answered. That is how
 * a handler serves many requests per round trip and per wake-up without the
 * transport knowing which handler does. A request
 * that blocks (a MariaDB read, Kafka with issue_ack=kafka) holds its thread's
 * other connections meanwhile, so issue_ack=kafka and redis_wait_replicas >= 1 get
 * fewer slots per thread and more threads (worker_slots_per_thread).
 * SIGTERM (or SIGINT) stops accepting: every request read is answered (none
 * waits across polls), kept connections are closed once idle, no signal reaches
 * a request thread, the producer flushes, and worker_run returns 0.
 */
#ifndef COUPON_WORKER_H
#define COUPON_WORKER_H

#include "conf.h"
#include "ratelimit.h"
#include "stock.h"

/* The defaults of threads and request_slots (0 in the configuration). issue_ack=redis:
 * few threads, many connections each (measured in bench/README.md); issue_ack=kafka or
 * redis_wait_replicas >= 1: more threads with fewer connections each, since each claim
 * waits for the broker or the replicas while its thread's other connections wait.
 * Every mode serves WORKER_DEFAULT_CONNECTIONS per worker: nginx's pool of kept
 * connections (deploy/nginx/coupon-http.conf, worker_processes x keepalive) must stay
 * at most half of all workers' slots, or idle kept connections can hold every slot
 * while new connections wait in the listen backlog until nginx times them out. */
#define WORKER_DEFAULT_CONNECTIONS   256
#define WORKER_DEFAULT_THREADS       4
#define WORKER_DEFAULT_SLOTS         (WORKER_DEFAULT_CONNECTIONS / WORKER_DEFAULT_THREADS)
#define WORKER_DEFAULT_WAIT_THREADS  16
#define WORKER_DEFAULT_WAIT_SLOTS    (WORKER_DEFAULT_CONNECTIONS / WORKER_DEFAULT_WAIT_THREADS)
#define WORKER_DEFAULT_KAFKA_THREADS 64
#define WORKER_DEFAULT_KAFKA_SLOTS   (WORKER_DEFAULT_CONNECTIONS / WORKER_DEFAULT_KAFKA_THREADS)

/* The request threads of one worker (threads, or its default). */
int worker_threads(const struct cp_conf *conf);

/* The FastCGI connections one request thread serves (request_slots, or its default). */
int worker_slots_per_thread(const struct cp_conf *conf);

/* Serves listen_fd until SIGTERM. Returns 0 on a clean stop, 1 on a start failure. rl
 * and stock: the per-user limits and the issued counts shared by every worker of the
 * host (created before fork by the master; NULL = none). */
int worker_run(const struct cp_conf *conf, int listen_fd, struct ratelimit *rl,
               struct stock *stock);

#endif
