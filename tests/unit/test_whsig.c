/*
 * test_whsig.c - Standard Webhooks signatures (common/whsig) against the reference
 * test vector of the specification's libraries (secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,
 * id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330, body {"test": 2432232314}),
 * and the behaviour around it: the prefix is optional, rotation sends two
 * signatures, verification accepts any one v1 entry, secrets are whsec_ + base64 of
 * 24..64 bytes.
 */
#include "first.h"

#include <string.h>

#include <CUnit/Basic.h>

#include "cp_err.h"
#include "unit_main.h"
#include "whsig.h"

static const char vec_secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char vec_id[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
static const char vec_body[] = "{\"test\": 2432232314}";
static const char vec_sig[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
#define VEC_TS 1614265330

static void whsig_signs_the_reference_vector(void)
{
    char out[WHSIG_SIGNATURE_MAX];
    CU_ASSERT_EQUAL(
        whsig_sign(vec_secret, vec_id, VEC_TS, vec_body, strlen(vec_body), out, sizeof out), CP_OK);
    CU_ASSERT_STRING_EQUAL(out, vec_sig);
    /* The same key without its prefix. */
    CU_ASSERT_EQUAL(
        whsig_sign(vec_secret + 6, vec_id, VEC_TS, vec_body, strlen(vec_body), out, sizeof out),
        CP_OK);
    CU_ASSERT_STRING_EQUAL(out, vec_sig);
}

static void whsig_signature_changes_with_every_input(void)
{
    char a[WHSIG_SIGNATURE_MAX];
    const char *body = vec_body;
    size_t n = strlen(body);
    CU_ASSERT_EQUAL(whsig_sign(vec_secret, vec_id, VEC_TS + 1, body, n, a, sizeof a), CP_OK);
    CU_ASSERT_STRING_NOT_EQUAL(a, vec_sig);
    CU_ASSERT_EQUAL(whsig_sign(vec_secret, "msg_other", VEC_TS, body, n, a, sizeof a), CP_OK);
    CU_ASSERT_STRING_NOT_EQUAL(a, vec_sig);
    CU_ASSERT_EQUAL(whsig_sign(vec_secret, vec_id, VEC_TS, body, n - 1, a, sizeof a), CP_OK);
    CU_ASSERT_STRING_NOT_EQUAL(a, vec_sig);
}

static void whsig_verify_accepts_one_valid_entry_among_others(void)
{
    char header[512];
    snprintf(header, sizeof header,
             "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "
             "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= %s",
             vec_sig);
    size_t n = strlen(vec_body);
    CU_ASSERT_EQUAL(whsig_verify(vec_secret, vec_id, VEC_TS, vec_body, n, header), CP_OK);
    CU_ASSERT_EQUAL(whsig_verify(vec_secret, vec_id, VEC_TS, vec_body, n, vec_sig), CP_OK);
    CU_ASSERT_EQUAL(
        whsig_verify(vec_secret, vec_id, VEC_TS, vec_body, n, "v1,dawfeoifkpqwoekfpqoekf"),
        CP_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(whsig_verify(vec_secret, vec_id, VEC_TS, vec_body, n, "v1,"), CP_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(whsig_verify(vec_secret, vec_id, VEC_TS, vec_body, n, "v1,g0hM9SsE"),
                    CP_ERR_FORBIDDEN);
    CU_ASSERT_EQUAL(whsig_verify(vec_secret, vec_id, VEC_TS + 1, vec_body, n, vec_sig),
                    CP_ERR_FORBIDDEN);
}

static void whsig_header_during_rotation_carries_both(void)
{
    char fresh[WHSIG_SECRET_MAX], header[WHSIG_HEADER_MAX];
    CU_ASSERT_EQUAL(whsig_secret_new(fresh, sizeof fresh), CP_OK);
    size_t n = strlen(vec_body);
    CU_ASSERT_EQUAL(
        whsig_header(fresh, vec_secret, vec_id, VEC_TS, vec_body, n, header, sizeof header), CP_OK);
    CU_ASSERT_PTR_NOT_NULL(strchr(header, ' '));
    CU_ASSERT_PTR_NOT_NULL(strstr(header, vec_sig));
    CU_ASSERT_EQUAL(whsig_verify(fresh, vec_id, VEC_TS, vec_body, n, header), CP_OK);
    CU_ASSERT_EQUAL(whsig_verify(vec_secret, vec_id, VEC_TS, vec_body, n, header), CP_OK);
    CU_ASSERT_EQUAL(whsig_header(fresh, "", vec_id, VEC_TS, vec_body, n, header, sizeof header),
                    CP_OK);
    CU_ASSERT_PTR_NULL(strchr(header, ' '));
}

static void whsig_new_secrets_are_prefixed_random_and_valid(void)
{
    char a[WHSIG_SECRET_MAX], b[WHSIG_SECRET_MAX];
    unsigned char key[WHSIG_KEY_MAX_BYTES];
    CU_ASSERT_EQUAL(whsig_secret_new(a, sizeof a), CP_OK);
    CU_ASSERT_EQUAL(whsig_secret_new(b, sizeof b), CP_OK);
    CU_ASSERT_EQUAL(strncmp(a, "whsec_", 6), 0);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_EQUAL(whsig_secret_key(a, key), WHSIG_KEY_BYTES);
    CU_ASSERT_EQUAL(whsig_secret_new(a, 20), CP_ERR_LIMIT);
}

static void whsig_refuses_bad_secrets(void)
{
    unsigned char key[WHSIG_KEY_MAX_BYTES];
    char out[WHSIG_SIGNATURE_MAX];
    CU_ASSERT_EQUAL(whsig_secret_key(vec_secret, key), 24);
    CU_ASSERT_EQUAL(whsig_secret_key("", key), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(whsig_secret_key("whsec_", key), CP_ERR_INVALID);
    CU_ASSERT_EQUAL(whsig_secret_key("whsec_c2hvcnQ=", key), CP_ERR_INVALID); /* 5 bytes */
    CU_ASSERT_EQUAL(whsig_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", key),
                    CP_ERR_INVALID);
    CU_ASSERT_EQUAL(whsig_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwA", key),
                    CP_ERR_INVALID); /* not a multiple of 4 */
    CU_ASSERT_EQUAL(whsig_secret_key("whsec_MfKQ9r8G=YqrTwjUPD8ILPZIo2LaLaSw", key),
                    CP_ERR_INVALID); /* padding inside */
    CU_ASSERT_EQUAL(whsig_sign("whsec_", vec_id, VEC_TS, "", 0, out, sizeof out), CP_ERR_INVALID);
}

int main(void)
{
    static const struct unit_case cases[] = {
        {"whsig_signs_the_reference_vector", whsig_signs_the_reference_vector},
        {"whsig_signature_changes_with_every_input", whsig_signature_changes_with_every_input},
        {"whsig_verify_accepts_one_valid_entry_among_others",
         whsig_verify_accepts_one_valid_entry_among_others},
        {"whsig_header_during_rotation_carries_both", whsig_header_during_rotation_carries_both},
        {"whsig_new_secrets_are_prefixed_random_and_valid",
         whsig_new_secrets_are_prefixed_random_and_valid},
        {"whsig_refuses_bad_secrets", whsig_refuses_bad_secrets},
    };
    return unit_run_suite("whsig", NULL, UNIT_CASES(cases));
}
