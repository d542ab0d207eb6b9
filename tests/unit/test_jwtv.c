/*
 * test_jwtv.c - unit tests of common/jwtv, bearer JWT verification against a
 * JWKS, and of the key set it verifies against (common/jwks): known-answer tokens
 * (valid RS256/ES256/PS256, every attack and policy refusal with its exact
 * reason), the JWKS loader's refusals and skips, key rotation, the algorithm list
 * parser and the policy check.
 *
 * The keys and tokens are tests/unit/jwtv_vectors.h's (made once by
 * tests/unit/jwtv_vectors.py, shared with tests/fuzz/fuzz_jwtv.c); nothing is
 * generated at run time. Tokens expire in 2100; every case passes NOW (2026).
 */
#include "first.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <openssl/err.h>

#include "unit_main.h"

#include "cp_err.h"
#include "cp_limits.h"
#include "jwks.h"
#include "jwtv.h"
#include "jwtv_vectors.h"

#define JWKS_A_ONLY "{\"keys\":[" JWK_RSA_A "]}"

static struct jwks *keys_all, *keys_a;

static const struct jwtv_policy policy = {
    .algs = JOSE_ALG_ALL,
    .issuer = ISS,
    .audience = AUD,
    .user_claim = "sub",
    .leeway_s = 60,
};

static int suite_init(void)
{
    char err[256];
    keys_all = jwks_parse(JWKS_ALL, strlen(JWKS_ALL), err, sizeof err);
    if (keys_all == NULL) {
        fprintf(stderr, "JWKS_ALL: %s\n", err);
        return 1;
    }
    keys_a = jwks_parse(JWKS_A_ONLY, strlen(JWKS_A_ONLY), err, sizeof err);
    if (keys_a == NULL) {
        fprintf(stderr, "JWKS_A_ONLY: %s\n", err);
        return 1;
    }
    return 0;
}

/* --- helpers --------------------------------------------------------------- */

static void check_refused(const struct jwks *keys, const struct jwtv_policy *pol, const char *tok,
                          size_t len, enum jwtv_refusal want, int line)
{
    struct jwtv_claims c = {.user_id = -7, .exp = -7, .scopes = 0xdead};
    enum jwtv_refusal why = JWTV_OK;
    int rc = jwtv_verify(keys, pol, tok, len, NOW, &c, &why);
    if (rc != CP_ERR_INVALID || why != want)
        fprintf(stderr, "\n  line %d: rc %d why %s, want %s\n", line, rc, jwtv_refusal_name(why),
                jwtv_refusal_name(want));
    CU_ASSERT_EQUAL(rc, CP_ERR_INVALID);
    CU_ASSERT_EQUAL(why, want);
    /* *out untouched on refusal */
    CU_ASSERT(c.user_id == -7 && c.exp == -7 && c.scopes == 0xdead);
}

static void check_ok(const struct jwks *keys, const struct jwtv_policy *pol, const char *tok,
                     int64_t user_id, int64_t exp, unsigned scopes, int line)
{
    struct jwtv_claims c = {0};
    enum jwtv_refusal why = JWTV_ERROR;
    int rc = jwtv_verify(keys, pol, tok, strlen(tok), NOW, &c, &why);
    if (rc != CP_OK || c.user_id != user_id || c.exp != exp || c.scopes != scopes)
        fprintf(stderr, "\n  line %d: rc %d why %s user %" PRId64 " exp %" PRId64 " scopes %u\n",
                line, rc, jwtv_refusal_name(why), c.user_id, c.exp, c.scopes);
    CU_ASSERT_EQUAL(rc, CP_OK);
    CU_ASSERT_EQUAL(why, JWTV_OK);
    CU_ASSERT_EQUAL(c.user_id, user_id);
    CU_ASSERT_EQUAL(c.exp, exp);
    CU_ASSERT_EQUAL(c.scopes, scopes);
}

/* The checks against the full key set. */
#define REFUSED(tok, want) check_refused(keys_all, &policy, tok, strlen(tok), want, __LINE__)

#define REFUSED_P(pol, tok, want) check_refused(keys_all, pol, tok, strlen(tok), want, __LINE__)

#define ACCEPTED(tok, uid, exp, scopes) check_ok(keys_all, &policy, tok, uid, exp, scopes, __LINE__)

#define ACCEPTED_P(pol, tok, uid, exp, scopes) \
    check_ok(keys_all, pol, tok, uid, exp, scopes, __LINE__)

#define ADMIN    JWTV_SCOPE_ADMIN
#define CHECKOUT JWTV_SCOPE_CHECKOUT

/* --- valid tokens ---------------------------------------------------------- */

static void jwtv_accepts_valid_rs256(void)
{
    ACCEPTED(TOK_RS256_VALID, 12345, EXP, 0);
}

static void jwtv_accepts_valid_es256(void)
{
    ACCEPTED(TOK_ES256_VALID, 777, EXP, CHECKOUT);
}

static void jwtv_accepts_valid_ps256(void)
{
    ACCEPTED(TOK_PS256_VALID, 9, EXP, 0);
}

static void jwtv_accepts_rs256_made_by_pyjwt(void)
{
    ACCEPTED(TOK_RS256_PYJWT, 31337, EXP, 0);
}

static void jwtv_token_need_not_be_nul_terminated(void)
{
    size_t n = strlen(TOK_ES256_VALID);
    char *buf = malloc(n + 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memcpy(buf, TOK_ES256_VALID, n);
    memcpy(buf + n, ".AAAA.x", 8); /* trailing bytes beyond len are not read */
    struct jwtv_claims c = {0};
    enum jwtv_refusal why = JWTV_ERROR;
    CU_ASSERT_EQUAL(jwtv_verify(keys_all, &policy, buf, n, NOW, &c, &why), CP_OK);
    CU_ASSERT_EQUAL(c.user_id, 777);
    /* ...but a length that covers them is another token. */
    CU_ASSERT_EQUAL(jwtv_verify(keys_all, &policy, buf, n + 5, NOW, &c, &why), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(why, JWTV_MALFORMED);
    free(buf);
}

/* --- scopes ---------------------------------------------------------------- */

static void jwtv_scope_admin_sets_admin(void)
{
    ACCEPTED(TOK_SCOPE_ADMIN, 12345, EXP, ADMIN);
}

static void jwtv_scope_checkout_sets_checkout(void)
{
    ACCEPTED(TOK_SCOPE_CHECKOUT, 12345, EXP, CHECKOUT);
}

static void jwtv_scope_both_among_others_sets_both(void)
{
    ACCEPTED(TOK_SCOPE_BOTH, 12345, EXP, ADMIN | CHECKOUT);
}

static void jwtv_scope_unknown_and_near_misses_are_ignored(void)
{
    /* "coupon:adminx  coupon COUPON:ADMIN coupon:read ": no prefix, case or blank tricks */
    ACCEPTED(TOK_SCOPE_UNKNOWN, 12345, EXP, 0);
}

static void jwtv_scope_not_a_string_is_bad_payload(void)
{
    REFUSED(TOK_SCOPE_ARRAY, JWTV_BAD_PAYLOAD);
    REFUSED(TOK_SCOPE_NUMBER, JWTV_BAD_PAYLOAD);
}

/* --- algorithms and keys --------------------------------------------------- */

static void jwtv_alg_none_without_signature_is_malformed(void)
{
    /* "h.p." has an empty signature: refused by shape before the header is read. */
    REFUSED(TOK_NONE_UNSIGNED, JWTV_MALFORMED);
}

static void jwtv_alg_none_with_signature_is_not_allowed(void)
{
    REFUSED(TOK_NONE_SIGNED, JWTV_ALG_NOT_ALLOWED);
    REFUSED(TOK_NONE_MIXED_CASE, JWTV_ALG_NOT_ALLOWED);
}

static void jwtv_hs256_keyed_with_the_rsa_public_key_is_not_allowed(void)
{
    /* The classic algorithm confusion: HMAC keyed with the PEM of rsa-a's public key. */
    REFUSED(TOK_HS256_CONFUSION, JWTV_ALG_NOT_ALLOWED);
    struct jwtv_policy p = policy;
    p.algs = JOSE_ALG_RS256;
    REFUSED_P(&p, TOK_HS256_CONFUSION, JWTV_ALG_NOT_ALLOWED);
}

static void jwtv_unsupported_alg_is_not_allowed(void)
{
    REFUSED(TOK_RS384, JWTV_ALG_NOT_ALLOWED);
}

static void jwtv_alg_outside_the_policy_is_not_allowed(void)
{
    struct jwtv_policy p = policy;
    p.algs = JOSE_ALG_ES256;
    REFUSED_P(&p, TOK_RS256_VALID, JWTV_ALG_NOT_ALLOWED);
    REFUSED_P(&p, TOK_PS256_VALID, JWTV_ALG_NOT_ALLOWED);
    ACCEPTED_P(&p, TOK_ES256_VALID, 777, EXP, CHECKOUT);
    p.algs = JOSE_ALG_RS256 | JOSE_ALG_PS256;
    REFUSED_P(&p, TOK_ES256_VALID, JWTV_ALG_NOT_ALLOWED);
}

static void jwtv_rs256_naming_the_ec_kid_is_key_mismatch(void)
{
    REFUSED(TOK_RS256_EC_KID, JWTV_KEY_MISMATCH);
}

static void jwtv_es256_naming_an_rsa_kid_is_key_mismatch(void)
{
    REFUSED(TOK_ES256_RSA_KID, JWTV_KEY_MISMATCH);
}

static void jwtv_ps256_on_a_key_pinned_to_rs256_is_key_mismatch(void)
{
    REFUSED(TOK_PS256_ON_RS256_KEY, JWTV_KEY_MISMATCH);
}

static void jwtv_unknown_kid_is_refused(void)
{
    REFUSED(TOK_UNKNOWN_KID, JWTV_UNKNOWN_KID);
}

static void jwtv_key_rotation_refuses_tokens_of_a_removed_key(void)
{
    /* The set now holds only rsa-a: rsa-b's and ec-a's tokens name unknown kids. */
    check_refused(keys_a, &policy, TOK_PS256_VALID, strlen(TOK_PS256_VALID), JWTV_UNKNOWN_KID,
                  __LINE__);
    check_refused(keys_a, &policy, TOK_RS256_PYJWT, strlen(TOK_RS256_PYJWT), JWTV_UNKNOWN_KID,
                  __LINE__);
    check_refused(keys_a, &policy, TOK_ES256_VALID, strlen(TOK_ES256_VALID), JWTV_UNKNOWN_KID,
                  __LINE__);
    check_ok(keys_a, &policy, TOK_RS256_VALID, 12345, EXP, 0, __LINE__);
}

/* --- time ------------------------------------------------------------------ */

static void jwtv_expired_token_is_refused(void)
{
    REFUSED(TOK_EXPIRED, JWTV_EXPIRED); /* exp = NOW - 61, leeway 60 */
}

static void jwtv_exp_within_leeway_is_accepted(void)
{
    ACCEPTED(TOK_EXP_IN_LEEWAY, 12345, NOW - 60, 0);
    struct jwtv_policy p = policy;
    p.leeway_s = 0;
    REFUSED_P(&p, TOK_EXP_IN_LEEWAY, JWTV_EXPIRED);
}

static void jwtv_exp_fraction_is_dropped(void)
{
    ACCEPTED(TOK_EXP_FRACTION, 12345, EXP, 0); /* EXP + 0.75 */
}

static void jwtv_nbf_in_the_future_is_refused(void)
{
    REFUSED(TOK_NBF_FUTURE, JWTV_NOT_YET_VALID);   /* nbf = NOW + 61 */
    REFUSED(TOK_NBF_FRACTION, JWTV_NOT_YET_VALID); /* NOW + 60.5 rounds up to NOW + 61 */
}

static void jwtv_nbf_within_leeway_is_accepted(void)
{
    ACCEPTED(TOK_NBF_IN_LEEWAY, 12345, EXP, 0);
}

static void jwtv_missing_exp_is_no_expiry(void)
{
    REFUSED(TOK_NO_EXP, JWTV_NO_EXPIRY);
}

static void jwtv_mistyped_time_claims_are_bad_payload(void)
{
    REFUSED(TOK_EXP_STRING, JWTV_BAD_PAYLOAD);
    REFUSED(TOK_EXP_NEGATIVE, JWTV_BAD_PAYLOAD);
    REFUSED(TOK_EXP_NULL, JWTV_BAD_PAYLOAD);
    REFUSED(TOK_EXP_HUGE_INT, JWTV_BAD_PAYLOAD);        /* 10^19 > INT64_MAX */
    REFUSED(TOK_EXP_OVERFLOW_DOUBLE, JWTV_BAD_PAYLOAD); /* 1e999 */
    REFUSED(TOK_NBF_STRING, JWTV_BAD_PAYLOAD);
    REFUSED(TOK_IAT_STRING, JWTV_BAD_PAYLOAD);
}

/* --- issuer and audience --------------------------------------------------- */

static void jwtv_wrong_issuer_is_refused(void)
{
    REFUSED(TOK_WRONG_ISS, JWTV_WRONG_ISSUER);
    REFUSED(TOK_ISS_NO_SLASH, JWTV_WRONG_ISSUER); /* exact comparison */
}

static void jwtv_missing_issuer_is_refused_when_one_is_configured(void)
{
    REFUSED(TOK_NO_ISS, JWTV_WRONG_ISSUER);
    struct jwtv_policy p = policy;
    p.issuer = "";
    ACCEPTED_P(&p, TOK_NO_ISS, 12345, EXP, 0);
    ACCEPTED_P(&p, TOK_WRONG_ISS, 12345, EXP, 0);
    p.issuer = NULL;
    ACCEPTED_P(&p, TOK_NO_ISS, 12345, EXP, 0);
}

static void jwtv_issuer_not_a_string_is_bad_payload(void)
{
    REFUSED(TOK_ISS_NUMBER, JWTV_BAD_PAYLOAD);
    struct jwtv_policy p = policy;
    p.issuer = ""; /* typed even when not checked */
    REFUSED_P(&p, TOK_ISS_NUMBER, JWTV_BAD_PAYLOAD);
}

static void jwtv_wrong_audience_is_refused(void)
{
    REFUSED(TOK_WRONG_AUD, JWTV_WRONG_AUDIENCE);
    REFUSED(TOK_NO_AUD, JWTV_WRONG_AUDIENCE);
    struct jwtv_policy p = policy;
    p.audience = "";
    ACCEPTED_P(&p, TOK_NO_AUD, 12345, EXP, 0);
    ACCEPTED_P(&p, TOK_WRONG_AUD, 12345, EXP, 0);
}

static void jwtv_audience_array_containing_it_is_accepted(void)
{
    ACCEPTED(TOK_AUD_ARRAY_OK, 12345, EXP, 0);
}

static void jwtv_audience_array_without_it_is_refused(void)
{
    REFUSED(TOK_AUD_ARRAY_NO, JWTV_WRONG_AUDIENCE);
    REFUSED(TOK_AUD_ARRAY_EMPTY, JWTV_WRONG_AUDIENCE);
}

static void jwtv_audience_array_with_a_non_string_is_bad_payload(void)
{
    REFUSED(TOK_AUD_ARRAY_NONSTRING, JWTV_BAD_PAYLOAD);
}

/* --- signature and encoding ------------------------------------------------ */

static void jwtv_tampered_payload_is_bad_signature(void)
{
    REFUSED(TOK_TAMPERED_PAYLOAD, JWTV_BAD_SIGNATURE); /* "12345" -> "12346", re-encoded */
}

static void jwtv_tampered_signature_is_bad_signature(void)
{
    REFUSED(TOK_TAMPERED_SIGNATURE, JWTV_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0); /* no OpenSSL error left queued on this thread */
    REFUSED(TOK_ES256_TAMPERED, JWTV_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
}

static void jwtv_es256_signature_of_wrong_length_is_bad_signature(void)
{
    REFUSED(TOK_ES256_SIG_65_BYTES, JWTV_BAD_SIGNATURE); /* R || S || 00 */
    REFUSED(TOK_ES256_SIG_DER, JWTV_BAD_SIGNATURE);      /* DER, as some libraries emit */
}

static void jwtv_stripped_signature_is_malformed(void)
{
    REFUSED(TOK_STRIPPED_SIGNATURE, JWTV_MALFORMED);
}

static void jwtv_bad_base64url_character_is_malformed(void)
{
    REFUSED(TOK_BAD_BASE64_CHAR, JWTV_MALFORMED); /* '+' in the payload */
    char buf[CP_MAX_TOKEN_BYTES];
    size_t n = strlen(TOK_RS256_VALID);
    /* '=' inside a part makes cjose's base64url decoder abort() the process: it must
     * be refused before cjose sees the token. */
    static const char bad[] = {'/', '=', ' ', '\n', '\0', '\x80', '%', '*'};
    for (size_t i = 0; i < sizeof bad; i++) {
        memcpy(buf, TOK_RS256_VALID, n);
        buf[20] = bad[i]; /* inside the header */
        check_refused(keys_all, &policy, buf, n, JWTV_MALFORMED, __LINE__);
    }
}

static void jwtv_base64_padding_is_malformed(void)
{
    REFUSED(TOK_PADDED_HEADER, JWTV_MALFORMED);
}

static void jwtv_non_canonical_base64url_is_malformed(void)
{
    /* The signature's last symbol with an unused bit set decodes to the same bytes in
     * lenient decoders: a second spelling of a valid token. */
    REFUSED(TOK_NONCANONICAL_SIGNATURE, JWTV_MALFORMED);
}

static void jwtv_wrong_number_of_parts_is_malformed(void)
{
    static const char *const toks[] = {
        "", ".", "..", "...", "a.b", "a.b.c.d", ".b.c", "a..c", "YQ.YQ.YQ.", "YQ",
    };
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
        REFUSED(toks[i], JWTV_MALFORMED);
    char buf[CP_MAX_TOKEN_BYTES];
    size_t n = strlen(TOK_RS256_VALID);
    buf[0] = ' ';
    memcpy(buf + 1, TOK_RS256_VALID, n);
    check_refused(keys_all, &policy, buf, n + 1, JWTV_MALFORMED, __LINE__); /* leading blank */
    buf[n + 1] = '\n';
    check_refused(keys_all, &policy, buf + 1, n + 1, JWTV_MALFORMED, __LINE__); /* trailing LF */
    /* NULL with length 0 is an empty token. */
    check_refused(keys_all, &policy, NULL, 0, JWTV_MALFORMED, __LINE__);
}

static void jwtv_token_over_the_size_limit_is_refused_first(void)
{
    static char big[CP_MAX_TOKEN_BYTES + 2];
    memset(big, 'A', sizeof big - 1);
    check_refused(keys_all, &policy, big, CP_MAX_TOKEN_BYTES + 1, JWTV_TOO_LARGE, __LINE__);
    check_refused(keys_all, &policy, big, CP_MAX_TOKEN_BYTES, JWTV_MALFORMED, __LINE__);
    /* A valid token followed by padding bytes inside len is judged on its size first. */
    size_t n = strlen(TOK_RS256_VALID);
    memcpy(big, TOK_RS256_VALID, n);
    check_refused(keys_all, &policy, big, CP_MAX_TOKEN_BYTES + 1, JWTV_TOO_LARGE, __LINE__);
}

/* --- strict header and payload ---------------------------------------------- */

static void jwtv_duplicate_header_member_is_bad_header(void)
{
    REFUSED(TOK_DUP_HEADER, JWTV_BAD_HEADER);
    REFUSED(TOK_DUP_HEADER_ALG_NONE_FIRST, JWTV_BAD_HEADER); /* "alg":"none" ... "alg":"RS256" */
    REFUSED(TOK_DUP_HEADER_ESCAPED, JWTV_BAD_HEADER);        /* "kid" and "\u006bid" */
}

static void jwtv_duplicate_payload_member_is_bad_payload(void)
{
    REFUSED(TOK_DUP_PAYLOAD, JWTV_BAD_PAYLOAD);
}

static void jwtv_crit_header_is_refused(void)
{
    REFUSED(TOK_CRIT, JWTV_CRIT);
    REFUSED(TOK_CRIT_EMPTY, JWTV_CRIT);
}

static void jwtv_header_needs_alg_and_kid_strings_in_an_object(void)
{
    REFUSED(TOK_HEADER_NO_KID, JWTV_BAD_HEADER);
    REFUSED(TOK_HEADER_KID_NUMBER, JWTV_BAD_HEADER);
    REFUSED(TOK_HEADER_ALG_NUMBER, JWTV_BAD_HEADER);
    REFUSED(TOK_HEADER_NOT_OBJECT, JWTV_BAD_HEADER);
    REFUSED(TOK_HEADER_NOT_JSON, JWTV_BAD_HEADER);
    REFUSED(TOK_HEADER_TRAILING, JWTV_BAD_HEADER);
}

static void jwtv_payload_must_be_a_strict_json_object(void)
{
    REFUSED(TOK_PAYLOAD_NOT_OBJECT, JWTV_BAD_PAYLOAD);
    REFUSED(TOK_PAYLOAD_NOT_JSON, JWTV_BAD_PAYLOAD);
    REFUSED(TOK_PAYLOAD_33_MEMBERS, JWTV_BAD_PAYLOAD); /* over CP_MAX_JSON_KEYS (jsonv) */
}

/* --- the user claim --------------------------------------------------------- */

static void jwtv_invalid_user_claim_is_bad_user(void)
{
    static const char *const toks[] = {
        TOK_SUB_ZERO,  TOK_SUB_NEG,     TOK_SUB_LEADING_ZERO, TOK_SUB_OVERFLOW,
        TOK_SUB_FLOAT, TOK_SUB_MISSING, TOK_SUB_INT_ZERO,     TOK_SUB_INT_NEG,
        TOK_SUB_EMPTY, TOK_SUB_SPACE,   TOK_SUB_PLUS,         TOK_SUB_ALPHA,
        TOK_SUB_BOOL,  TOK_SUB_NULL,    TOK_SUB_INT_OVERFLOW, TOK_SUB_FLOAT_ONE,
    };
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
        REFUSED(toks[i], JWTV_BAD_USER);
}

static void jwtv_user_claim_accepts_int64_max_as_string_and_integer(void)
{
    ACCEPTED(TOK_SUB_MAX, INT64_MAX, EXP, 0);
    ACCEPTED(TOK_SUB_INT_MAX, INT64_MAX, EXP, 0);
}

static void jwtv_checkout_scope_without_numeric_user_gives_user_0(void)
{
    ACCEPTED(TOK_CHECKOUT_SERVICE_SUB, 0, EXP, CHECKOUT);
}

static void jwtv_admin_scope_without_user_gives_user_0(void)
{
    ACCEPTED(TOK_ADMIN_NO_SUB, 0, EXP, ADMIN);
    ACCEPTED(TOK_ADMIN_WITH_SUB, 5, EXP, ADMIN);
}

static void jwtv_user_claim_name_comes_from_the_policy(void)
{
    struct jwtv_policy p = policy;
    p.user_claim = "uid";
    REFUSED_P(&p, TOK_RS256_VALID, JWTV_BAD_USER);
    p.user_claim = "exp"; /* any claim holding a positive integer will do */
    ACCEPTED_P(&p, TOK_RS256_VALID, EXP, EXP, 0);
}

/* --- arguments -------------------------------------------------------------- */

static void jwtv_bad_arguments_are_internal_errors(void)
{
    const char *t = TOK_RS256_VALID;
    size_t n = strlen(t);
    struct jwtv_claims c;
    enum jwtv_refusal why = JWTV_OK;
    struct jwtv_policy p = policy;
    CU_ASSERT_EQUAL(jwtv_verify(NULL, &policy, t, n, NOW, &c, &why), CP_ERR_INTERNAL);
    CU_ASSERT_EQUAL(why, JWTV_ERROR);
    why = JWTV_OK;
    CU_ASSERT_EQUAL(jwtv_verify(keys_all, NULL, t, n, NOW, &c, &why), CP_ERR_INTERNAL);
    CU_ASSERT_EQUAL(why, JWTV_ERROR);
    CU_ASSERT_EQUAL(jwtv_verify(keys_all, &policy, t, n, NOW, NULL, &why), CP_ERR_INTERNAL);
    CU_ASSERT_EQUAL(jwtv_verify(keys_all, &policy, t, n, NOW, &c, NULL), CP_ERR_INTERNAL);
    CU_ASSERT_EQUAL(jwtv_verify(keys_all, &policy, NULL, 5, NOW, &c, &why), CP_ERR_INTERNAL);
    p.leeway_s = JWTV_LEEWAY_MAX_S + 1;
    CU_ASSERT_EQUAL(jwtv_verify(keys_all, &p, t, n, NOW, &c, &why), CP_ERR_INTERNAL);
    CU_ASSERT_EQUAL(why, JWTV_ERROR);
}

static void jwtv_policy_check_enforces_ranges(void)
{
    struct jwtv_policy p = policy;
    CU_ASSERT_EQUAL(jwtv_policy_check(&p), CP_OK);
    p.leeway_s = JWTV_LEEWAY_MAX_S;
    CU_ASSERT_EQUAL(jwtv_policy_check(&p), CP_OK);
    p.leeway_s = -1;
    CU_ASSERT_EQUAL(jwtv_policy_check(&p), CP_ERR_INVALID);
    p = policy;
    p.algs = 0;
    CU_ASSERT_EQUAL(jwtv_policy_check(&p), CP_ERR_INVALID);
    p.algs = 1u << 7;
    CU_ASSERT_EQUAL(jwtv_policy_check(&p), CP_ERR_INVALID);
    p = policy;
    p.user_claim = "";
    CU_ASSERT_EQUAL(jwtv_policy_check(&p), CP_ERR_INVALID);
    p.user_claim = NULL;
    CU_ASSERT_EQUAL(jwtv_policy_check(&p), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(jwtv_policy_check(NULL), CP_ERR_INVALID);
}

/* --- algorithm lists ------------------------------------------------------- */

static void jwtv_algs_parse_accepts_lists(void)
{
    unsigned m = 0;
    CU_ASSERT_EQUAL(jwtv_algs_parse("RS256,ES256", &m), CP_OK);
    CU_ASSERT_EQUAL(m, JOSE_ALG_RS256 | JOSE_ALG_ES256);
    CU_ASSERT_EQUAL(jwtv_algs_parse(" PS256 ,\tRS256 ", &m), CP_OK);
    CU_ASSERT_EQUAL(m, JOSE_ALG_PS256 | JOSE_ALG_RS256);
    CU_ASSERT_EQUAL(jwtv_algs_parse("ES256", &m), CP_OK);
    CU_ASSERT_EQUAL(m, JOSE_ALG_ES256);
    CU_ASSERT_EQUAL(jwtv_algs_parse("RS256,ES256,PS256,RS256", &m), CP_OK);
    CU_ASSERT_EQUAL(m, JOSE_ALG_ALL);
}

static void jwtv_algs_parse_refuses_none_hmac_unknown_and_empty(void)
{
    static const char *const bad[] = {
        "none",  "HS256", "HS384", "HS512",  "RS256,none", "ES256,HS256",
        "",      " ",     ",",     "RS256,", ",RS256",     "RS256,,ES256",
        "rs256", "RS512", "ES384", "EdDSA",  "RS 256",     "RS256;ES256",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned m = 0xabc;
        int rc = jwtv_algs_parse(bad[i], &m);
        if (rc != CP_ERR_INVALID)
            fprintf(stderr, "\n  \"%s\" accepted\n", bad[i]);
        CU_ASSERT_EQUAL(rc, CP_ERR_INVALID);
        CU_ASSERT_EQUAL(m, 0xabc);
    }
    CU_ASSERT_EQUAL(jwtv_algs_parse(NULL, &(unsigned){0}), CP_ERR_INVALID);
}

static void jwtv_refusal_names_are_distinct(void)
{
    CU_ASSERT_STRING_EQUAL(jwtv_refusal_name(JWTV_OK), "ok");
    CU_ASSERT_STRING_EQUAL(jwtv_refusal_name(JWTV_EXPIRED), "expired");
    CU_ASSERT_STRING_EQUAL(jwtv_refusal_name(JWTV_ALG_NOT_ALLOWED), "alg_not_allowed");
    CU_ASSERT_STRING_EQUAL(jwtv_refusal_name((enum jwtv_refusal)999), "unknown");
    for (int i = JWTV_OK; i <= JWTV_ERROR; i++) {
        const char *a = jwtv_refusal_name((enum jwtv_refusal)i);
        CU_ASSERT(a != NULL && strcmp(a, "unknown") != 0);
        for (int j = JWTV_OK; j < i; j++)
            CU_ASSERT(strcmp(a, jwtv_refusal_name((enum jwtv_refusal)j)) != 0);
    }
}

/* --- JWKS -------------------------------------------------------------------- */

static void keys_refused(const char *jwks, size_t len, const char *want_in_err, int line)
{
    char err[256] = "";
    struct jwks *k = jwks_parse(jwks, len, err, sizeof err);
    if (k != NULL || strstr(err, want_in_err) == NULL)
        fprintf(stderr, "\n  line %d: %s (err \"%s\", want \"%s\")\n", line,
                k != NULL ? "accepted" : "refused", err, want_in_err);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want_in_err));
    jwks_free(k);
}

static size_t keys_kept(const char *jwks)
{
    char err[256] = "";
    struct jwks *k = jwks_parse(jwks, strlen(jwks), err, sizeof err);
    if (k == NULL)
        fprintf(stderr, "\n  refused: %s\n", err);
    size_t n = jwks_count(k);
    jwks_free(k);
    return n;
}

#define KEYS_REFUSED(jwks, why) keys_refused(jwks, strlen(jwks), why, __LINE__)
#define RSA_KEY(members)        "{\"kty\":\"RSA\"," members "," RSA_B_PUB "}"
#define EC_KEY(members)         "{\"kty\":\"EC\"," members "," EC_A_PUB "}"

static void jwks_parse_keeps_rsa_and_p256_signature_keys(void)
{
    CU_ASSERT_EQUAL(jwks_count(keys_all), 3);
    CU_ASSERT_EQUAL(jwks_count(keys_a), 1);
    /* use "enc", EC P-384, OKP and coherent algorithms we do not verify are skipped */
    CU_ASSERT_EQUAL(
        keys_kept("{\"keys\":[" JWK_RSA_A "," RSA_KEY(
            "\"kid\":\"enc\",\"use\":\"enc\"") ","
                                               "{\"kty\":\"EC\",\"kid\":\"p384\"," EC_P384_PUB "},"
                                               "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":"
                                               "\"Ed25519\",\"x\":\"AA\"}," RSA_KEY(
                                                   "\"kid\":\"rs512\",\"alg\":\"RS512\"") "]}"),
        1);
    /* extra members (x5c, key_ops, ...) and other top-level members are ignored */
    CU_ASSERT_EQUAL(keys_kept("{\"other\":1,\"keys\":[" RSA_KEY("\"kid\":\"x\",\"x5c\":[\"AA\"],"
                                                                "\"key_ops\":[\"verify\"]") "]}"),
                    1);
    CU_ASSERT_EQUAL(jwks_count(NULL), 0);
    jwks_free(NULL);
}

static void jwks_parse_refuses_symmetric_keys(void)
{
    KEYS_REFUSED("{\"keys\":[" JWK_RSA_A ",{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}]}",
                 "symmetric");
}

static void jwks_parse_refuses_keys_without_a_valid_kid(void)
{
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"use\":\"sig\"") "]}", "kid");
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"\"") "]}", "kid");
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":7") "]}", "kid");
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"01234567890123456789012345678901234567890123"
                                       "456789012345678901234\"") "]}",
                 "kid"); /* 65 characters */
    /* even a key we would skip must have one */
    KEYS_REFUSED("{\"keys\":[" JWK_RSA_A ",{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}]}",
                 "kid");
    /* 64 characters (2-byte ones) are fine */
    CU_ASSERT_EQUAL(keys_kept("{\"keys\":[" RSA_KEY("\"kid\":\"ééééééééééééééééééééééééééééééééé"
                                                    "ééééééééééééééééééééééééééééééé\"") "]}"),
                    1);
}

static void jwks_parse_refuses_duplicate_kids(void)
{
    KEYS_REFUSED("{\"keys\":[" JWK_RSA_A "," RSA_KEY("\"kid\":\"rsa-a\"") "]}", "duplicate");
    /* also when one of them would be skipped */
    KEYS_REFUSED("{\"keys\":[" JWK_RSA_A "," RSA_KEY("\"kid\":\"rsa-a\",\"use\":\"enc\"") "]}",
                 "duplicate");
}

static char *jwks_of_n_keys(size_t n)
{
    static const char key[] = RSA_KEY("\"kid\":\"k%zu\"");
    size_t cap = 16 + n * (sizeof key + 8);
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    size_t len = (size_t)snprintf(buf, cap, "{\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf[len++] = ',';
        len += (size_t)snprintf(buf + len, cap - len, key, i);
    }
    snprintf(buf + len, cap - len, "]}");
    return buf;
}

static void jwks_parse_refuses_more_than_the_key_limit(void)
{
    char *ok = jwks_of_n_keys(CP_JWKS_MAX_KEYS);
    char *over = jwks_of_n_keys(CP_JWKS_MAX_KEYS + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(over);
    CU_ASSERT_EQUAL(keys_kept(ok), CP_JWKS_MAX_KEYS);
    KEYS_REFUSED(over, "more than");
    free(ok);
    free(over);
}

static void jwks_parse_refuses_rsa_under_2048_bits(void)
{
    KEYS_REFUSED("{\"keys\":[" JWK_RSA_A ",{\"kty\":\"RSA\",\"kid\":\"weak\"," RSA_1024_PUB "}]}",
                 "under 2048");
}

static void jwks_parse_refuses_private_key_material(void)
{
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"x\",\"d\":\"AQAB\"") "]}", "private");
    KEYS_REFUSED("{\"keys\":[" EC_KEY("\"kid\":\"x\",\"d\":\"AQAB\"") "]}", "private");
}

static void jwks_parse_refuses_alg_contradicting_the_key(void)
{
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"x\",\"alg\":\"ES256\"") "]}", "does not fit");
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"x\",\"alg\":\"HS256\"") "]}", "does not fit");
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"x\",\"alg\":\"none\"") "]}", "does not fit");
    KEYS_REFUSED("{\"keys\":[" EC_KEY("\"kid\":\"x\",\"alg\":\"RS256\"") "]}", "does not fit");
    KEYS_REFUSED("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"x\",\"alg\":\"ES256\"," EC_P384_PUB "}]}",
                 "does not fit");
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"x\",\"alg\":256") "]}", "not a string");
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"x\",\"use\":[\"sig\"]") "]}", "not a string");
}

static void jwks_parse_refuses_garbage(void)
{
    KEYS_REFUSED("", "empty");
    KEYS_REFUSED("garbage", "strict JSON");
    KEYS_REFUSED("{}", "\"keys\" array");
    KEYS_REFUSED("[]", "JSON object");
    KEYS_REFUSED("{\"keys\":{}}", "\"keys\" array");
    KEYS_REFUSED("{\"keys\":[" JWK_RSA_A "]} x", "strict JSON");
    KEYS_REFUSED("{\"keys\":[" JWK_RSA_A "],\"keys\":[]}", "strict JSON");
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"a\",\"kid\":\"b\"") "]}", "strict JSON");
    KEYS_REFUSED("{\"keys\":[1]}", "not an object");
    KEYS_REFUSED("{\"keys\":[{\"kid\":\"x\"}]}", "kty");
    KEYS_REFUSED("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"x\",\"n\":\"A+B\",\"e\":\"AQAB\"}]}",
                 "base64url");
    KEYS_REFUSED("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"x\",\"e\":\"AQAB\"}]}", "\"n\"");
    KEYS_REFUSED("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"x\",\"crv\":\"P-256\",\"x\":\"AA\","
                 "\"y\":\"AA\"}]}",
                 "\"x\"/\"y\"");
    /* '=' inside a coordinate: cjose's decoder would abort() the process (fuzz finding) */
    KEYS_REFUSED("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"x\",\"crv\":\"P-256\","
                 "\"x\":\"IP3uEZ5VERhUk4u5QgvvYH4JxsXpb9CaUuWo3-2Z-=U\","
                 "\"y\":\"YL3WVR3Lsg_vtmKAy-q6odlx57oOPKdSg_VRI-9YISg\"}]}",
                 "\"x\"/\"y\"");
    /* a point off the curve (cjose calls it "out of memory": still a refusal, not ENOMEM) */
    KEYS_REFUSED("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"x\",\"crv\":\"P-256\","
                 "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\","
                 "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}]}",
                 "cjose cannot import");
    keys_refused("{\"keys\":[]}\0", 13, "NUL", __LINE__);
    keys_refused(NULL, 0, "empty", __LINE__);
    char *big = calloc(1, CP_JWKS_MAX_BYTES + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', CP_JWKS_MAX_BYTES + 1);
    keys_refused(big, CP_JWKS_MAX_BYTES + 1, "larger than", __LINE__);
    free(big);
    /* err may be NULL */
    CU_ASSERT_PTR_NULL(jwks_parse("x", 1, NULL, 0));
}

static void jwks_parse_refuses_empty_or_keyless_sets(void)
{
    KEYS_REFUSED("{\"keys\":[]}", "no usable");
    KEYS_REFUSED("{\"keys\":[" RSA_KEY("\"kid\":\"enc\",\"use\":\"enc\"") "]}", "no usable");
    KEYS_REFUSED("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"p384\"," EC_P384_PUB "}]}", "no usable");
}

static char tmp_path[256];

static const char *write_tmp(const char *text, size_t len)
{
    const char *dir = getenv("TMPDIR");
    snprintf(tmp_path, sizeof tmp_path, "%s/test_jwtv.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmp_path);
    if (fd < 0)
        return NULL;
    ssize_t w = write(fd, text, len);
    if (close(fd) != 0 || w < 0 || (size_t)w != len)
        return NULL;
    return tmp_path;
}

static void jwks_load_reads_a_file_within_the_limit(void)
{
    char err[512] = "";
    const char *path = write_tmp(JWKS_ALL, strlen(JWKS_ALL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    struct jwks *k = jwks_load(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(k);
    CU_ASSERT_EQUAL(jwks_count(k), 3);
    jwks_free(k);
    (void)unlink(path);

    char *big = malloc(CP_JWKS_MAX_BYTES + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', CP_JWKS_MAX_BYTES + 1);
    memcpy(big, JWKS_A_ONLY, strlen(JWKS_A_ONLY)); /* valid JSON, then blanks */
    path = write_tmp(big, CP_JWKS_MAX_BYTES);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    k = jwks_load(path, err, sizeof err);
    CU_ASSERT_EQUAL(jwks_count(k), 1); /* exactly the limit */
    jwks_free(k);
    (void)unlink(path);
    path = write_tmp(big, CP_JWKS_MAX_BYTES + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    k = jwks_load(path, err, sizeof err);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than"));
    (void)unlink(path);
    free(big);

    path = write_tmp("{\"keys\":[]}", 11);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    CU_ASSERT_PTR_NULL(jwks_load(path, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path)); /* the path prefixes the reason */
    (void)unlink(path);
    CU_ASSERT_PTR_NULL(jwks_load("/nonexistent/jwks.json", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/jwks.json"));
}

/* --- threads ----------------------------------------------------------------- */

static void *verify_many(void *arg)
{
    (void)arg;
    static const char *const toks[] = {TOK_RS256_VALID, TOK_ES256_VALID, TOK_PS256_VALID,
                                       TOK_TAMPERED_PAYLOAD};
    for (int i = 0; i < 50; i++) {
        for (size_t t = 0; t < 4; t++) {
            struct jwtv_claims c;
            enum jwtv_refusal why;
            int rc = jwtv_verify(keys_all, &policy, toks[t], strlen(toks[t]), NOW, &c, &why);
            if ((t < 3) != (rc == CP_OK))
                return (void *)1;
        }
    }
    return NULL;
}

static void jwtv_verify_shares_one_key_set_between_threads(void)
{
    pthread_t th[4];
    int started = 0;
    for (int i = 0; i < 4; i++)
        started += pthread_create(&th[i], NULL, verify_many, NULL) == 0;
    CU_ASSERT_EQUAL(started, 4);
    for (int i = 0; i < started; i++) {
        void *res = (void *)1;
        CU_ASSERT_EQUAL(pthread_join(th[i], &res), 0);
        CU_ASSERT_PTR_NULL(res);
    }
}

int main(void)
{
    static const struct unit_case tests[] = {
#define CASE(fn) {#fn, fn}
        CASE(jwtv_accepts_valid_rs256),
        CASE(jwtv_accepts_valid_es256),
        CASE(jwtv_accepts_valid_ps256),
        CASE(jwtv_accepts_rs256_made_by_pyjwt),
        CASE(jwtv_token_need_not_be_nul_terminated),
        CASE(jwtv_scope_admin_sets_admin),
        CASE(jwtv_scope_checkout_sets_checkout),
        CASE(jwtv_scope_both_among_others_sets_both),
        CASE(jwtv_scope_unknown_and_near_misses_are_ignored),
        CASE(jwtv_scope_not_a_string_is_bad_payload),
        CASE(jwtv_alg_none_without_signature_is_malformed),
        CASE(jwtv_alg_none_with_signature_is_not_allowed),
        CASE(jwtv_hs256_keyed_with_the_rsa_public_key_is_not_allowed),
        CASE(jwtv_unsupported_alg_is_not_allowed),
        CASE(jwtv_alg_outside_the_policy_is_not_allowed),
        CASE(jwtv_rs256_naming_the_ec_kid_is_key_mismatch),
        CASE(jwtv_es256_naming_an_rsa_kid_is_key_mismatch),
        CASE(jwtv_ps256_on_a_key_pinned_to_rs256_is_key_mismatch),
        CASE(jwtv_unknown_kid_is_refused),
        CASE(jwtv_key_rotation_refuses_tokens_of_a_removed_key),
        CASE(jwtv_expired_token_is_refused),
        CASE(jwtv_exp_within_leeway_is_accepted),
        CASE(jwtv_exp_fraction_is_dropped),
        CASE(jwtv_nbf_in_the_future_is_refused),
        CASE(jwtv_nbf_within_leeway_is_accepted),
        CASE(jwtv_missing_exp_is_no_expiry),
        CASE(jwtv_mistyped_time_claims_are_bad_payload),
        CASE(jwtv_wrong_issuer_is_refused),
        CASE(jwtv_missing_issuer_is_refused_when_one_is_configured),
        CASE(jwtv_issuer_not_a_string_is_bad_payload),
        CASE(jwtv_wrong_audience_is_refused),
        CASE(jwtv_audience_array_containing_it_is_accepted),
        CASE(jwtv_audience_array_without_it_is_refused),
        CASE(jwtv_audience_array_with_a_non_string_is_bad_payload),
        CASE(jwtv_tampered_payload_is_bad_signature),
        CASE(jwtv_tampered_signature_is_bad_signature),
        CASE(jwtv_es256_signature_of_wrong_length_is_bad_signature),
        CASE(jwtv_stripped_signature_is_malformed),
        CASE(jwtv_bad_base64url_character_is_malformed),
        CASE(jwtv_base64_padding_is_malformed),
        CASE(jwtv_non_canonical_base64url_is_malformed),
        CASE(jwtv_wrong_number_of_parts_is_malformed),
        CASE(jwtv_token_over_the_size_limit_is_refused_first),
        CASE(jwtv_duplicate_header_member_is_bad_header),
        CASE(jwtv_duplicate_payload_member_is_bad_payload),
        CASE(jwtv_crit_header_is_refused),
        CASE(jwtv_header_needs_alg_and_kid_strings_in_an_object),
        CASE(jwtv_payload_must_be_a_strict_json_object),
        CASE(jwtv_invalid_user_claim_is_bad_user),
        CASE(jwtv_user_claim_accepts_int64_max_as_string_and_integer),
        CASE(jwtv_checkout_scope_without_numeric_user_gives_user_0),
        CASE(jwtv_admin_scope_without_user_gives_user_0),
        CASE(jwtv_user_claim_name_comes_from_the_policy),
        CASE(jwtv_bad_arguments_are_internal_errors),
        CASE(jwtv_policy_check_enforces_ranges),
        CASE(jwtv_algs_parse_accepts_lists),
        CASE(jwtv_algs_parse_refuses_none_hmac_unknown_and_empty),
        CASE(jwtv_refusal_names_are_distinct),
        CASE(jwks_parse_keeps_rsa_and_p256_signature_keys),
        CASE(jwks_parse_refuses_symmetric_keys),
        CASE(jwks_parse_refuses_keys_without_a_valid_kid),
        CASE(jwks_parse_refuses_duplicate_kids),
        CASE(jwks_parse_refuses_more_than_the_key_limit),
        CASE(jwks_parse_refuses_rsa_under_2048_bits),
        CASE(jwks_parse_refuses_private_key_material),
        CASE(jwks_parse_refuses_alg_contradicting_the_key),
        CASE(jwks_parse_refuses_garbage),
        CASE(jwks_parse_refuses_empty_or_keyless_sets),
        CASE(jwks_load_reads_a_file_within_the_limit),
        CASE(jwtv_verify_shares_one_key_set_between_threads),
#undef CASE
    };
    int status = unit_run_suite("jwtv", suite_init, UNIT_CASES(tests));
    jwks_free(keys_all);
    jwks_free(keys_a);
    return status;
}
