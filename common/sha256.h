/*
 * sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), small and
 * dependency-free: the MAC behind the code of every issuance (issuecode.h).
 * No library we link exposes a stable hash API, and this is ~150 lines checked
 * against the FIPS 180 and RFC 4231 test vectors in tests/unit/test_issuecode.c.
 *
 * struct sha256 is plain state on the caller's stack: init, update any number
 * of times, final. Nothing is allocated, nothing is shared: every function is
 * thread-safe on distinct states. Not constant-time with respect to the message
 * length (it never needs to be: lengths here are public); constant-time in the
 * message and key contents (no data-dependent branches or table indexes).
 */
#ifndef COUPON_SHA256_H
#define COUPON_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32
#define SHA256_BLOCK_BYTES  64

struct sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    unsigned char block[SHA256_BLOCK_BYTES];
    size_t fill; /* bytes waiting in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[SHA256_DIGEST_BYTES]);

/* One-shot digest. */
void sha256_digest(const void *data, size_t len, unsigned char out[SHA256_DIGEST_BYTES]);

/* HMAC-SHA256(key, msg): keys longer than a block are hashed first (RFC 2104). */
void sha256_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len,
                 unsigned char out[SHA256_DIGEST_BYTES]);

#endif
