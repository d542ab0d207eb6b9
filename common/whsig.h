/*
 * whsig.h - Standard Webhooks signatures: the secrets of webhook endpoints and
 * the three headers every delivery carries.
 *
 *   webhook-id         the event id (the same on every attempt: receivers dedupe by it)
 *   webhook-timestamp  unix seconds of this attempt
 *   webhook-signature  "v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>", and
 *                      during a rotation's overlap a second one after a space
 *
 * A secret is "whsec_" + base64 of WHSIG_KEY_BYTES random bytes (the key the HMAC
 * uses is the decoded bytes, as the specification says); whsig_secret_new draws
 * them from OpenSSL's RAND_bytes. HMAC and base64 are OpenSSL's libcrypto. A
 * secret is never logged. Pure functions; thread-safe.
 */
#ifndef COUPON_WHSIG_H
#define COUPON_WHSIG_H

#include <stddef.h>
#include <stdint.h>

#define WHSIG_PREFIX        "whsec_"
#define WHSIG_KEY_BYTES     32 /* what we generate */
#define WHSIG_KEY_MIN_BYTES 24 /* what we accept */
#define WHSIG_KEY_MAX_BYTES 64
#define WHSIG_SECRET_MAX    (6 + 4 * ((WHSIG_KEY_MAX_BYTES + 2) / 3) + 1) /* NUL included */
#define WHSIG_SIGNATURE_MAX (3 + 44 + 1)                                  /* "v1," + 44 + NUL */
#define WHSIG_HEADER_MAX    (2 * WHSIG_SIGNATURE_MAX)                     /* two, a space */

/* A new secret "whsec_<base64 of WHSIG_KEY_BYTES random bytes>" into out (cap at least
 * WHSIG_SECRET_MAX): CP_OK, or CP_ERR_SYSTEM when the random generator failed. */
int whsig_secret_new(char *out, size_t cap);

/* The key bytes of a secret ("whsec_" optional): their count, or CP_ERR_INVALID when
 * it is not base64 of WHSIG_KEY_MIN_BYTES..WHSIG_KEY_MAX_BYTES bytes. */
int whsig_secret_key(const char *secret, unsigned char key[WHSIG_KEY_MAX_BYTES]);

/* "v1,<base64 signature>" of (id, timestamp, body) with secret into out (cap at least
 * WHSIG_SIGNATURE_MAX): CP_OK, CP_ERR_INVALID (bad secret), CP_ERR_LIMIT. */
int whsig_sign(const char *secret, const char *id, int64_t timestamp, const void *body,
               size_t body_len, char *out, size_t cap);

/* The webhook-signature header: the signature with secret, then (previous non-NULL and
 * not empty) a space and the one with previous. Same codes as whsig_sign. */
int whsig_header(const char *secret, const char *previous, const char *id, int64_t timestamp,
                 const void *body, size_t body_len, char *out, size_t cap);

/* A receiver's check: CP_OK when one of the space-separated "v1,..." entries of header
 * is the signature with secret (compared in constant time; other versions ignored),
 * CP_ERR_FORBIDDEN when none is, CP_ERR_INVALID for a bad secret. */
int whsig_verify(const char *secret, const char *id, int64_t timestamp, const void *body,
                 size_t body_len, const char *header);

#endif
