/*
 * jose_strict.h - the strict reading of JOSE text shared by the key set (common/jwks)
 * and the token verifier (common/jwtv): the algorithm names we verify, canonical
 * base64url, and members that must be strings. Internal to those two modules (and
 * their tests); nothing here knows about keys or claims.
 *
 * Base64url is held to one spelling per byte string: the RFC 7515 alphabet only,
 * no '=' padding, no blanks, a length that encodes whole bytes and zero unused
 * bits in the last symbol - so a token or a key cannot be re-spelled while keeping
 * its meaning. jose_b64u_decode() is the only way either module decodes: cjose's
 * own decoder assert()s (aborts the process) on some malformed text, so it is only
 * ever handed text jose_b64u_canonical() has passed.
 *
 * Algorithm names are case-sensitive, as in JWA (RFC 7518): "RS256", "ES256" and
 * "PS256" and nothing else; "none", HS* and every other name map to 0.
 * Stateless; thread-safe. Memory from jose_b64u_decode() is the caller's, freed
 * with cjose_get_dealloc().
 */
#ifndef COUPON_JOSE_STRICT_H
#define COUPON_JOSE_STRICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* The JWS algorithms we verify, as bits (a policy's allowed set, a key's usable set). */
enum jose_alg {
    JOSE_ALG_RS256 = 1u << 0,
    JOSE_ALG_ES256 = 1u << 1,
    JOSE_ALG_PS256 = 1u << 2,
};
#define JOSE_ALG_ALL (JOSE_ALG_RS256 | JOSE_ALG_ES256 | JOSE_ALG_PS256)

/* The enum jose_alg bit of an algorithm name of len bytes, 0 if we do not verify it. */
unsigned jose_alg_bit(const char *name, size_t len);

/* True if the len bytes at p are non-empty canonical base64url (see above). */
bool jose_b64u_canonical(const char *p, size_t len);

/* The number of bytes a canonical base64url text of len symbols decodes to. */
size_t jose_b64u_decoded_len(size_t len);

/* Decodes a canonical base64url text into *out (*outlen bytes, freed with
 * cjose_get_dealloc()). CP_ERR_INVALID if it is not canonical, CP_ERR_NOMEM;
 * *out is NULL on failure. */
int jose_b64u_decode(const char *p, size_t len, uint8_t **out, size_t *outlen);

/* The member name of obj if it is present and a string (its length in *len when len
 * is not NULL), else NULL. The text belongs to obj. */
const char *jose_member_str(struct json_object *obj, const char *name, size_t *len);

#endif
