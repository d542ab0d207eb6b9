/*
 * worker.h - one worker process: a pool of threads accepting FastCGI requests
 * on a shared listening socket.
 *
 * Everything that must not cross fork() - the Kafka producer, Redis and
 * MariaDB connections, threads - is created here, after fork. Each thread owns
 * a struct app_thread and loops FCGX_Accept_r -> dispatch -> FCGX_Finish_r, so a
 * request waiting on Redis or Kafka blocks one thread, not the process.
 * SIGTERM (or SIGINT) stops accepting: threads blocked in accept(2) notice
 * within the socket's accept timeout (SO_RCVTIMEO), requests in flight finish
 * undisturbed (no signal reaches a request thread), the producer flushes, and
 * worker_run returns 0.
 */
#ifndef COUPON_WORKER_H
#define COUPON_WORKER_H

#include "conf.h"

/* Serves listen_fd until SIGTERM. Returns 0 on a clean stop, 1 on a start failure. */
int worker_run(const struct cp_conf *conf, int listen_fd);

#endif
