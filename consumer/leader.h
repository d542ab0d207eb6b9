/*
 * leader.h - one active holder of a duty among however many consumers run: a
 * MariaDB named lock, GET_LOCK(name, 0), held on a connection of its own.
 *
 * MariaDB releases a named lock when the session that holds it ends - a clean
 * exit, a SIGKILL, a lost host once the server sees the connection go - so
 * another consumer takes the duty over at its next check. The relay keeps its
 * lock on its working connection (relay_db.c: the lock and its reads and
 * deletes fail together). The reconciler runs on the main thread, whose connection
 * common/db drops after a connection error of any batch, which would drop the
 * lock unnoticed: its lock lives here, on a client (common/db) that does
 * nothing else. A new connection (db_session) means the lock went with the
 * old one.
 *
 * leader_check() asks, in one prepared statement, whether this connection holds
 * the lock and takes it when it is free. Called every few seconds it also keeps
 * the connection from idling out (wait_timeout), which would release the lock.
 * Changes of holding are logged ("<duty>: holding the lock <name>"). One thread.
 */
#ifndef COUPON_LEADER_H
#define COUPON_LEADER_H

#include "db.h"

struct leader;

/* Over db (the caller's, which must outlive it); no I/O (the first check connects).
 * `name` and `duty` are copied. NULL: out of memory or a name too long. Freeing the
 * db's connection releases the lock; NULL is a no-op for leader_free. */
struct leader *leader_new(struct db *db, const char *name, const char *duty);
void leader_free(struct leader *l);

/* 1: this process holds the lock (now, or from before); 0: another session holds it;
 * CP_ERR_UNAVAILABLE: MariaDB failed - the connection is dropped, and the lock with it. */
int leader_check(struct leader *l);
/* 1 while the connection of the last check that found the lock held is still open. */
int leader_held(const struct leader *l);

#endif
