/*
 * rslot.h - the key space of a Redis Cluster, as pure functions: the slot of a
 * key, the key of a formatted command, and the cluster's answers about slots
 * (-MOVED / -ASK, CLUSTER SLOTS entries). rcli routes with them.
 *
 * The slot of a key is the cluster spec's CRC16 (XMODEM: polynomial 0x1021,
 * initial value 0) of its hash tag - the text between its first '{' and the
 * first '}' after it, when not empty - or of the whole key, mod 16384. The key
 * of a command is argv[1], or argv[3] for EVAL/EVALSHA (and their _RO and
 * FCALL forms) when numkeys is not 0; commands such as PING, PUBLISH, SCRIPT,
 * WAIT, MULTI, EXEC have none. No I/O, no allocation; thread-safe.
 */
#ifndef COUPON_RSLOT_H
#define COUPON_RSLOT_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define RSLOT_COUNT 16384

/* What a command is to a router, besides its slot. */
enum rslot_kind { RSLOT_PLAIN, RSLOT_MULTI, RSLOT_END /* EXEC or DISCARD */ };

uint16_t rslot_crc16(const char *buf, size_t len);
int rslot_of_key(const char *key, size_t len);
/* The slot of a formatted command's key (-1: none, or not a well-formed command)
 * and, when kind is not NULL, its kind. */
int rslot_of_command(const char *cmd, size_t len, enum rslot_kind *kind);

/*
 * "MOVED 3999 host:port" or "ASK 3999 host:port": 1 with *ask, *slot, the host
 * (`self` when the reply names none) in host[0..cap) and *port; 0 for any other
 * reply.
 */
int rslot_redirect(const redisReply *r, const char *self, int *ask, int *slot, char *host,
                   size_t cap, int *port);

/*
 * One entry of CLUSTER SLOTS: 1 with the range [*from, *to] and its master's host
 * (`asked`, the node that answered, when the entry names none) and port; 0 for an
 * entry of another shape, out of range, or whose master's address is unknown ("?").
 */
int rslot_range(const redisReply *entry, const char *asked, const char **host, int *port, int *from,
                int *to);

#endif
