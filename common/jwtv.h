/*
 * jwtv.h - verification of bearer JWTs (compact JWS) against a JWKS: the policy
 * around cjose, which does the signature arithmetic and nothing else here.
 *
 * Keys come from common/jwks: an immutable set, shared by any number of threads,
 * each key carrying the algorithms it may verify. Algorithm names and base64url are
 * read by common/jose_strict, the same way for keys and tokens.
 *
 * Tokens. jwtv_verify() checks, in this order, and stops at the first failure:
 *   1. size (CP_MAX_TOKEN_BYTES) and shape: exactly three parts of the base64url
 *      alphabet, no padding, canonical trailing bits, none empty;
 *   2. header: strict JSON object (common/jsonv), "alg" and "kid" strings; "alg"
 *      in the policy (never "none" or HS*); any "crit" refused; "kid" selects the
 *      key (header "jwk"/"jku"/"x5c"/"x5u" are never used), whose type and own
 *      "alg" must match the token's; the signature must have the key's length;
 *   3. the signature (cjose_jws_verify) - nothing in the payload is trusted before;
 *   4. payload: strict JSON object; registered claims correctly typed; exp
 *      present, not past (with leeway); nbf not in the future (with leeway);
 *      iss/aud as configured; the user claim and the scopes.
 * Header and payload (like the JWKS in common/jwks) are held to jsonv's limits:
 * nesting of at most CP_MAX_JSON_DEPTH, at most CP_MAX_JSON_KEYS top-level members.
 * The refusal reason is a short stable name for logs and metrics; it must not
 * be sent to the client beyond "invalid token" (it would help a forger).
 * Stateless apart from the key set, which jwtv_verify() only reads; thread-safe.
 */
#ifndef COUPON_JWTV_H
#define COUPON_JWTV_H

#include <stddef.h>
#include <stdint.h>

#include "jose_strict.h"
#include "jwks.h"

/* "RS256,ES256" (comma separated, blanks around names allowed, names case-
 * sensitive as in JWA) -> *mask, enum jose_alg bits (common/jose_strict.h).
 * CP_ERR_INVALID (and *mask untouched) for an unknown name, "none", any HS*, an
 * empty name or an empty list. */
int jwtv_algs_parse(const char *text, unsigned *mask);

enum jwtv_scope {
    JWTV_SCOPE_ADMIN = 1u << 0,    /* coupon:admin */
    JWTV_SCOPE_CHECKOUT = 1u << 1, /* coupon:checkout */
};

struct jwtv_policy {
    unsigned algs;          /* allowed algorithms (enum jose_alg bits, not 0) */
    const char *issuer;     /* the "iss" a token must carry exactly; "" or NULL = not checked */
    const char *audience;   /* must equal "aud" (string) or be one element of "aud" (array of
                             * strings); "" or NULL = not checked */
    const char *user_claim; /* the claim holding the user id, e.g. "sub" (not NULL/empty) */
    int64_t leeway_s;       /* clock skew allowed on exp and nbf, 0..JWTV_LEEWAY_MAX_S */
};
#define JWTV_LEEWAY_MAX_S 300

/* CP_OK if the policy is usable by jwtv_verify(), else CP_ERR_INVALID. For
 * configuration time: jwtv_verify() refuses to run with a bad policy. */
int jwtv_policy_check(const struct jwtv_policy *policy);

/* Why a token was refused; stable short names via jwtv_refusal_name(). */
enum jwtv_refusal {
    JWTV_OK = 0,
    JWTV_TOO_LARGE,       /* over CP_MAX_TOKEN_BYTES */
    JWTV_MALFORMED,       /* not three base64url parts, an empty part (signature included:
                           * an unsigned "alg":"none" token ends here), padding, other bytes,
                           * non-canonical base64url */
    JWTV_BAD_HEADER,      /* not a strict JSON object, duplicate members, alg/kid missing or
                           * not strings */
    JWTV_ALG_NOT_ALLOWED, /* not in the policy; "none", HS* and unknown names always */
    JWTV_CRIT,            /* any "crit" header: we understand no extension */
    JWTV_UNKNOWN_KID,     /* no key of the set has this kid */
    JWTV_KEY_MISMATCH,    /* alg family differs from the kid's key type, or the key's alg */
    JWTV_BAD_SIGNATURE,   /* wrong length for the key, or does not verify */
    JWTV_BAD_PAYLOAD,     /* not a strict JSON object, duplicate members, wrongly typed
                           * registered claims (exp/nbf/iat/iss/aud/scope) */
    JWTV_NO_EXPIRY,       /* exp missing */
    JWTV_EXPIRED,         /* now > exp + leeway */
    JWTV_NOT_YET_VALID,   /* nbf > now + leeway */
    JWTV_WRONG_ISSUER,    /* iss missing or different while an issuer is configured */
    JWTV_WRONG_AUDIENCE,  /* aud missing or not matching while an audience is configured */
    JWTV_BAD_USER,        /* user claim missing/not a positive int64, no service scope */
    JWTV_ERROR,           /* no verdict on the token: out of memory or a bad policy/argument
                           * (the return code says which) */
};

/* "ok", "too_large", "malformed", ..., "error"; "unknown" outside the enum. */
const char *jwtv_refusal_name(enum jwtv_refusal r);

struct jwtv_claims {
    int64_t user_id; /* >= 1; 0 only for a token with an admin/checkout scope whose user
                      * claim is absent or not a valid id */
    int64_t exp;     /* NumericDate seconds (fractional part dropped) */
    unsigned scopes; /* enum jwtv_scope bits from the "scope" claim: a space-separated
                      * string (RFC 8693); unknown scopes ignored */
};

/* Verifies `token` (len bytes, need not be NUL-terminated) at time now_s.
 * CP_OK: *out filled, *why = JWTV_OK. CP_ERR_INVALID: the token is refused,
 * *why says why, *out untouched. CP_ERR_NOMEM (our own allocation failed; one
 * inside cjose shows as a refusal, cjose's error codes being unreliable) and
 * CP_ERR_INTERNAL (NULL argument or a policy failing jwtv_policy_check()):
 * *why = JWTV_ERROR (why == NULL: CP_ERR_INTERNAL, nothing written). Leaves no
 * OpenSSL error queued on the calling thread. Thread-safe given a shared const keys. */
int jwtv_verify(const struct jwks *keys, const struct jwtv_policy *policy, const char *token,
                size_t len, int64_t now_s, struct jwtv_claims *out, enum jwtv_refusal *why);

#endif
