/*
 * jwtv.c - bearer JWT verification: the checks around cjose (see jwtv.h for the
 * order and the promises). The keys are common/jwks's; base64url and algorithm
 * names are read by common/jose_strict.
 *
 * Token header and payload go through common/jsonv (json-c, the house's strict
 * parser). cjose brings its own parser (jansson; the two libraries' exported
 * symbols are versioned so they coexist in one process). So that cjose never reads
 * a header differently from us, the "alg" cjose reads from the token header must
 * be the one we checked.
 *
 * Nothing here depends on cjose's own policy: we refuse "none", HS* and unknown
 * algorithms, check alg against the key's algorithms, the signature's exact length,
 * "crit", the base64url alphabet and padding before cjose sees the token, and
 * cjose_jws_verify() is called only with a key we selected by kid.
 *
 * What cjose 0.6.2.1 (Debian 12) itself does, measured by feeding it the vectors of
 * tests/unit/jwtv_vectors.h directly: cjose_jws_verify() does refuse an RS/PS alg on
 * an EC key, ES on an RSA key, HS* on any non-"oct" key and "none". It accepts, and
 * we refuse: PS256 on a key whose JWK "alg" is RS256 (it ignores the JWK's "alg"),
 * RS384 (it also implements RS512, PS384/512, ES384/512, and HS* on "oct" keys),
 * duplicate header members (jansson keeps the last: {"alg":"none",...,"alg":"RS256"}
 * verifies), any "crit", a missing or non-string "kid", '=' padding at import,
 * non-canonical base64url (a second spelling of a valid token verifies), and an
 * ES256 signature with bytes appended (R || S || junk verifies: cjose splits
 * sig_len / 2). Its error codes are not trusted to mean ENOMEM (common/jwks), and
 * its base64url decoder aborts on some text (common/jose_strict).
 */
#include "first.h"

#include "jwtv.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include <cjose/cjose.h>
#include <openssl/err.h>
#include <json-c/json.h>

#include "cp_err.h"
#include "cp_limits.h"
#include "jsonv.h"

#define SCOPE_ADMIN    "coupon:admin"
#define SCOPE_CHECKOUT "coupon:checkout"
#define TWO_POW_63     9223372036854775808.0

static const char *const refusal_names[] = {
    [JWTV_OK] = "ok",
    [JWTV_TOO_LARGE] = "too_large",
    [JWTV_MALFORMED] = "malformed",
    [JWTV_BAD_HEADER] = "bad_header",
    [JWTV_ALG_NOT_ALLOWED] = "alg_not_allowed",
    [JWTV_CRIT] = "crit",
    [JWTV_UNKNOWN_KID] = "unknown_kid",
    [JWTV_KEY_MISMATCH] = "key_mismatch",
    [JWTV_BAD_SIGNATURE] = "bad_signature",
    [JWTV_BAD_PAYLOAD] = "bad_payload",
    [JWTV_NO_EXPIRY] = "no_expiry",
    [JWTV_EXPIRED] = "expired",
    [JWTV_NOT_YET_VALID] = "not_yet_valid",
    [JWTV_WRONG_ISSUER] = "wrong_issuer",
    [JWTV_WRONG_AUDIENCE] = "wrong_audience",
    [JWTV_BAD_USER] = "bad_user",
    [JWTV_ERROR] = "error",
};

const char *jwtv_refusal_name(enum jwtv_refusal r)
{
    if ((unsigned)r >= sizeof refusal_names / sizeof refusal_names[0])
        return "unknown";
    return refusal_names[r];
}

int jwtv_algs_parse(const char *text, unsigned *mask)
{
    unsigned m = 0;
    if (text == NULL || mask == NULL)
        return CP_ERR_INVALID;
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        unsigned bit = jose_alg_bit(p, len);
        if (bit == 0)
            return CP_ERR_INVALID; /* empty, "none", HS*, anything unknown */
        m |= bit;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *mask = m;
    return CP_OK;
}

int jwtv_policy_check(const struct jwtv_policy *policy)
{
    if (policy == NULL || policy->algs == 0 || (policy->algs & ~(unsigned)JOSE_ALG_ALL) != 0)
        return CP_ERR_INVALID;
    if (policy->user_claim == NULL || policy->user_claim[0] == '\0')
        return CP_ERR_INVALID;
    if (policy->leeway_s < 0 || policy->leeway_s > JWTV_LEEWAY_MAX_S)
        return CP_ERR_INVALID;
    return CP_OK;
}

/* --- claims ---------------------------------------------------------------- */

/*
 * A NumericDate claim: a JSON integer 0..INT64_MAX, or a finite non-negative
 * double below 2^63 whose fraction is dropped (round_up: rounded up instead, for
 * nbf, so neither rounding widens the validity window). CP_ERR_NOT_FOUND if
 * absent, CP_ERR_INVALID for any other type (null included) or value.
 */
static int numeric_date(struct json_object *payload, const char *name, bool round_up, int64_t *out)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(payload, name, &v))
        return CP_ERR_NOT_FOUND;
    if (json_object_is_type(v, json_type_int))
        return jsonv_get_int_range(payload, name, 0, INT64_MAX, out);
    if (!json_object_is_type(v, json_type_double))
        return CP_ERR_INVALID;
    double d = json_object_get_double(v);
    if (!isfinite(d) || d < 0 || d >= TWO_POW_63)
        return CP_ERR_INVALID;
    int64_t t = (int64_t)d;
    if (round_up && (double)t < d)
        t++;
    *out = t;
    return CP_OK;
}

/* A present claim must be a string (returned with its length), absent is fine. */
static int opt_string(struct json_object *payload, const char *name, const char **s, size_t *len)
{
    struct json_object *v = NULL;
    *s = NULL;
    *len = 0;
    if (!json_object_object_get_ex(payload, name, &v))
        return CP_OK;
    if (!json_object_is_type(v, json_type_string))
        return CP_ERR_INVALID;
    *s = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    return CP_OK;
}

static bool same(const char *a, size_t alen, const char *b)
{
    return a != NULL && alen == strlen(b) && memcmp(a, b, alen) == 0;
}

/* "aud": absent, a string or an array of strings. *match: the audience is in it. */
static int audience(struct json_object *payload, const char *want, bool *match)
{
    struct json_object *v = NULL;
    *match = false;
    if (!json_object_object_get_ex(payload, "aud", &v))
        return CP_OK;
    if (json_object_is_type(v, json_type_string)) {
        *match = same(json_object_get_string(v), (size_t)json_object_get_string_len(v), want);
        return CP_OK;
    }
    if (!json_object_is_type(v, json_type_array))
        return CP_ERR_INVALID;
    size_t n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        if (!json_object_is_type(e, json_type_string))
            return CP_ERR_INVALID;
        if (same(json_object_get_string(e), (size_t)json_object_get_string_len(e), want))
            *match = true;
    }
    return CP_OK;
}

static unsigned scope_bits(const char *s, size_t len)
{
    unsigned bits = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (same(s + start, i - start, SCOPE_ADMIN))
            bits |= JWTV_SCOPE_ADMIN;
        else if (same(s + start, i - start, SCOPE_CHECKOUT))
            bits |= JWTV_SCOPE_CHECKOUT;
    }
    return bits;
}

/* The user id: a JSON integer 1..INT64_MAX or a string of decimal digits of that
 * range without sign or leading zero. */
static int user_id(struct json_object *payload, const char *claim, int64_t *out)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(payload, claim, &v))
        return CP_ERR_NOT_FOUND;
    if (json_object_is_type(v, json_type_int))
        return jsonv_get_id(payload, claim, out);
    if (!json_object_is_type(v, json_type_string))
        return CP_ERR_INVALID;
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (len == 0 || len > 19 || s[0] == '0')
        return CP_ERR_INVALID;
    uint64_t id = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CP_ERR_INVALID;
        id = id * 10 + (uint64_t)(s[i] - '0'); /* 19 digits < 2^64: no wrap */
    }
    if (id > (uint64_t)INT64_MAX)
        return CP_ERR_INVALID;
    *out = (int64_t)id;
    return CP_OK;
}

/* The claims of a verified payload, in the order of enum jwtv_refusal. */
static enum jwtv_refusal check_claims(const struct jwtv_policy *policy, struct json_object *payload,
                                      int64_t now_s, struct jwtv_claims *out)
{
    int64_t exp = 0, nbf = 0, iat = 0;
    const char *iss = NULL, *scope = NULL;
    size_t iss_len = 0, scope_len = 0;
    bool aud_match = false;

    int exp_rc = numeric_date(payload, "exp", false, &exp);
    int nbf_rc = numeric_date(payload, "nbf", true, &nbf);
    int iat_rc = numeric_date(payload, "iat", false, &iat);
    if (exp_rc == CP_ERR_INVALID || nbf_rc == CP_ERR_INVALID || iat_rc == CP_ERR_INVALID)
        return JWTV_BAD_PAYLOAD;
    if (opt_string(payload, "iss", &iss, &iss_len) != CP_OK ||
        opt_string(payload, "scope", &scope, &scope_len) != CP_OK)
        return JWTV_BAD_PAYLOAD;
    const char *want_aud = policy->audience != NULL ? policy->audience : "";
    if (audience(payload, want_aud, &aud_match) != CP_OK)
        return JWTV_BAD_PAYLOAD;

    if (exp_rc == CP_ERR_NOT_FOUND)
        return JWTV_NO_EXPIRY;
    /* exp >= 0 and nbf >= 0: the differences below cannot overflow as unsigned. */
    if (now_s > exp && (uint64_t)now_s - (uint64_t)exp > (uint64_t)policy->leeway_s)
        return JWTV_EXPIRED;
    if (nbf_rc == CP_OK && nbf > now_s &&
        (uint64_t)nbf - (uint64_t)now_s > (uint64_t)policy->leeway_s)
        return JWTV_NOT_YET_VALID;
    if (policy->issuer != NULL && policy->issuer[0] != '\0' && !same(iss, iss_len, policy->issuer))
        return JWTV_WRONG_ISSUER;
    if (want_aud[0] != '\0' && !aud_match)
        return JWTV_WRONG_AUDIENCE;

    unsigned scopes = scope != NULL ? scope_bits(scope, scope_len) : 0;
    int64_t uid = 0;
    if (user_id(payload, policy->user_claim, &uid) != CP_OK) {
        if ((scopes & (JWTV_SCOPE_ADMIN | JWTV_SCOPE_CHECKOUT)) == 0)
            return JWTV_BAD_USER;
        uid = 0; /* a service token: the caller decides what it may do without a user */
    }
    out->user_id = uid;
    out->exp = exp;
    out->scopes = scopes;
    return JWTV_OK;
}

/* --- verification ---------------------------------------------------------- */

struct part {
    const char *p;
    size_t len;
};

/* Exactly three canonical base64url parts, none empty. */
static bool split_token(const char *token, size_t len, struct part parts[3])
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && token[i] != '.')
            continue;
        if (k == 3)
            return false;
        parts[k].p = token + start;
        parts[k].len = i - start;
        if (!jose_b64u_canonical(parts[k].p, parts[k].len))
            return false;
        k++;
        start = i + 1;
    }
    return k == 3;
}

/* The JSON object of a decoded header or payload (strict, common/jsonv). CP_OK, or
 * CP_ERR_NOMEM with *r = JWTV_ERROR, or CP_ERR_INVALID with *r = bad. */
static int part_object(const uint8_t *text, size_t len, enum jwtv_refusal bad,
                       struct json_object **out, enum jwtv_refusal *r)
{
    int rc = jsonv_parse_object((const char *)text, len, out, NULL);
    if (rc == CP_OK)
        return CP_OK;
    *r = rc == CP_ERR_NOMEM ? JWTV_ERROR : bad;
    return rc == CP_ERR_NOMEM ? CP_ERR_NOMEM : CP_ERR_INVALID;
}

int jwtv_verify(const struct jwks *keys, const struct jwtv_policy *policy, const char *token,
                size_t len, int64_t now_s, struct jwtv_claims *out, enum jwtv_refusal *why)
{
    int rc = CP_ERR_INTERNAL;
    enum jwtv_refusal r = JWTV_ERROR;
    uint8_t *hdr_raw = NULL, *pt = NULL;
    size_t hdr_len = 0, pt_len = 0, alg_len = 0, kid_len = 0;
    struct json_object *hdr = NULL, *payload = NULL;
    cjose_jws_t *jws = NULL;
    cjose_err cerr = {0};
    struct part parts[3];
    struct jwtv_claims claims;

    if (why == NULL)
        return CP_ERR_INTERNAL;
    if (keys == NULL || out == NULL || (token == NULL && len > 0) ||
        jwtv_policy_check(policy) != CP_OK)
        goto out;

    rc = CP_ERR_INVALID;
    /* 1. Size and shape. */
    if (len > CP_MAX_TOKEN_BYTES) {
        r = JWTV_TOO_LARGE;
        goto out;
    }
    if (token == NULL || !split_token(token, len, parts)) {
        r = JWTV_MALFORMED;
        goto out;
    }

    /* 2. Header, algorithm, key. */
    rc = jose_b64u_decode(parts[0].p, parts[0].len, &hdr_raw, &hdr_len);
    if (rc != CP_OK) {
        r = rc == CP_ERR_NOMEM ? JWTV_ERROR : JWTV_MALFORMED;
        goto out;
    }
    rc = part_object(hdr_raw, hdr_len, JWTV_BAD_HEADER, &hdr, &r);
    if (rc != CP_OK)
        goto out;
    rc = CP_ERR_INVALID;
    const char *alg = jose_member_str(hdr, "alg", &alg_len);
    const char *kid = jose_member_str(hdr, "kid", &kid_len);
    if (alg == NULL || kid == NULL) {
        r = JWTV_BAD_HEADER;
        goto out;
    }
    unsigned bit = jose_alg_bit(alg, alg_len);
    if (bit == 0 || (policy->algs & bit) == 0) {
        r = JWTV_ALG_NOT_ALLOWED;
        goto out;
    }
    if (json_object_object_get_ex(hdr, "crit", NULL)) {
        r = JWTV_CRIT;
        goto out;
    }
    const struct jwks_key *key = jwks_find(keys, kid, kid_len);
    if (key == NULL) {
        r = JWTV_UNKNOWN_KID;
        goto out;
    }
    if ((jwks_key_algs(key) & bit) == 0) {
        r = JWTV_KEY_MISMATCH;
        goto out;
    }
    if (jose_b64u_decoded_len(parts[2].len) != jwks_key_sig_len(key)) {
        r = JWTV_BAD_SIGNATURE;
        goto out;
    }

    /* 3. Signature. cjose parses the token again (header with jansson); its alg must
     * be the one we checked. A failure of cjose is a refusal whatever its error code
     * (cjose 0.6.2 says "out of memory" for some bad input): fail closed, never 5xx. */
    jws = cjose_jws_import(token, len, &cerr);
    if (jws == NULL) {
        r = JWTV_BAD_HEADER; /* e.g. a number jansson cannot hold, which json-c took */
        goto out;
    }
    const char *calg = cjose_header_get(cjose_jws_get_protected(jws), CJOSE_HDR_ALG, &cerr);
    if (calg == NULL || !same(alg, alg_len, calg)) {
        r = JWTV_BAD_HEADER;
        goto out;
    }
    if (!cjose_jws_verify(jws, jwks_key_jwk(key), &cerr)) {
        r = JWTV_BAD_SIGNATURE;
        goto out;
    }

    /* 4. Payload and claims, now that they are signed. */
    if (!cjose_jws_get_plaintext(jws, &pt, &pt_len, &cerr)) {
        rc = CP_ERR_INTERNAL;
        r = JWTV_ERROR;
        goto out;
    }
    rc = part_object(pt, pt_len, JWTV_BAD_PAYLOAD, &payload, &r);
    if (rc != CP_OK)
        goto out;
    r = check_claims(policy, payload, now_s, &claims);
    if (r != JWTV_OK) {
        rc = CP_ERR_INVALID;
        goto out;
    }
    *out = claims;
    rc = CP_OK;
out:
    json_object_put(payload);
    json_object_put(hdr);
    if (hdr_raw != NULL)
        cjose_get_dealloc()(hdr_raw);
    cjose_jws_release(jws); /* pt belongs to jws */
    /* A refusal may leave OpenSSL errors queued on this thread (cjose pops one per
     * failure; OpenSSL can push several), and a later SSL_get_error() of any TLS client
     * on the same thread would read them. */
    if (rc != CP_OK)
        ERR_clear_error();
    *why = rc == CP_OK ? JWTV_OK : r;
    return rc;
}
