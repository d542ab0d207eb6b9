/*
 * jwks.h - the key set bearer tokens are verified against: a JWKS document
 * {"keys":[...]} (RFC 7517) read strictly into an immutable set of cjose keys,
 * each with the algorithms it may verify. common/jwtv selects keys here by kid.
 *
 * jwks_parse()/jwks_load() take at most CP_JWKS_MAX_BYTES of strict JSON: duplicate
 * members anywhere, NULs, bad UTF-8 and trailing bytes refuse it. Every key must
 * carry a "kid" (string of 1..CP_JWK_KID_MAX_CHARS characters, unique in the set)
 * and no private parts; a symmetric ("oct") key, an RSA key under 2048 bits, a key
 * whose "alg" contradicts its "kty", or more than CP_JWKS_MAX_KEYS keys refuse the
 * whole set. Kept: RSA keys and EC P-256 keys whose "use" is absent or "sig" and
 * whose "alg" is absent or one we verify (RS256/PS256 on RSA, ES256 on EC).
 * Skipped (not usable, not an error): "use":"enc" keys, other curves and key types,
 * and coherent algorithms we do not verify (RS384, ES384, ...). A set with no kept
 * key is refused. A refusal names its reason in err and leaves no OpenSSL error
 * queued on the calling thread.
 *
 * Ownership and threads: the caller owns the set (jwks_free). It is never modified
 * after parsing, so one set may be shared by any number of threads verifying
 * tokens; a struct jwks_key lives as long as its set. Rotation = parse the new
 * JWKS, swap the pointer under the caller's own lock/RCU, free the old set once no
 * verification uses it.
 */
#ifndef COUPON_JWKS_H
#define COUPON_JWKS_H

#include <stddef.h>

#include <cjose/jwk.h>

/* Immutable parsed JWKS; safe to share between threads for verification. */
struct jwks;

/* One kept key of a set. */
struct jwks_key;

/* Parses a JWKS document of len bytes (need not be NUL-terminated). Returns the
 * set, or NULL with the reason in err (errlen > 0; "out of memory" included). */
struct jwks *jwks_parse(const char *jwks, size_t len, char *err, size_t errlen);

/* jwks_parse() over a file of at most CP_JWKS_MAX_BYTES bytes; the reason names
 * the path. */
struct jwks *jwks_load(const char *path, char *err, size_t errlen);

/* Number of keys kept (>= 1 for any set returned; 0 for NULL). */
size_t jwks_count(const struct jwks *keys);

/* Frees the set; NULL is a no-op. No verification may be using it. */
void jwks_free(struct jwks *keys);

/* The kept key whose "kid" is the len bytes at kid (compared byte for byte), or
 * NULL: no key of the set, or one that was skipped. */
const struct jwks_key *jwks_find(const struct jwks *keys, const char *kid, size_t len);

/* The enum jose_alg bits (common/jose_strict.h) the key may verify. */
unsigned jwks_key_algs(const struct jwks_key *key);

/* The exact length in bytes of the key's signatures (RSA: the modulus; ES256: 64). */
size_t jwks_key_sig_len(const struct jwks_key *key);

/* The key as cjose holds it, for cjose_jws_verify(). */
const cjose_jwk_t *jwks_key_jwk(const struct jwks_key *key);

#endif
