/*
 * fuzz_jwtv.c - libFuzzer target for common/jwtv, the verifier of every bearer
 * token. Two ways in:
 *   - any input is a token, verified against a fixed JWKS (the public keys of
 *     tests/unit/test_jwtv.c, whose tokens seed the corpus) under two policies;
 *   - an input starting with '{' is also parsed as a JWKS, and is signed as a
 *     payload (ES256, cjose) with a key the harness makes at start-up, so the
 *     claim checks behind the signature are reached with arbitrary payloads.
 * Besides crashes, leaks and sanitizer reports it aborts when a promise breaks:
 *   - every refusal is CP_ERR_INVALID with a named reason other than ok/error,
 *     and an oversized token is refused as too_large;
 *   - an accepted token fits the size limit, has three parts, carries a user
 *     id >= 1 or an admin/checkout scope, and only known scope bits;
 *   - a token cjose itself signed with a key of the set is never refused for its
 *     shape, header, key or signature (only for its payload or claims);
 *   - a JWKS accepted holds 1..CP_JWKS_MAX_KEYS usable keys.
 * The start-up key is random, but no outcome depends on its value.
 *
 * Finding (2026-12, ~0.7M runs): cjose's base64url decoder assert()s on a '='
 * inside the text, aborting the process; a JWK coordinate reached it. jwks and jwtv
 * now let cjose decode only text common/jose_strict has checked;
 * corpus/fuzz_jwtv/jwks_ec_x_equals_sign and equals_sign_inside_payload keep both
 * ways in covered.
 */
#include "first.h"

#include "fuzz_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>

#include "cp_err.h"
#include "cp_limits.h"
#include "jwks.h"
#include "jwtv.h"
#include "jwtv_vectors.h"

#define SIGNER_KID "fuzz-signer"

static struct jwks *keys;
static cjose_jwk_t *signer;

static const struct jwtv_policy policies[] = {
    {.algs = JOSE_ALG_ALL, .issuer = ISS, .audience = AUD, .user_claim = "sub", .leeway_s = 60},
    {.algs = JOSE_ALG_ES256 | JOSE_ALG_PS256,
     .issuer = "",
     .audience = NULL,
     .user_claim = "uid",
     .leeway_s = 0},
};

/* The fixed keys plus the public half of a fresh EC P-256 signing key. */
static void init_once(void)
{
    cjose_err cerr;
    char err[256];
    if (keys != NULL)
        return;
    signer = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
    CHECK(signer != NULL);
    char *pub = cjose_jwk_to_json(signer, false, &cerr);
    CHECK(pub != NULL && pub[0] == '{');
    size_t cap = sizeof JWK_LIST_ALL + strlen(pub) + 64;
    char *jwks = malloc(cap);
    CHECK(jwks != NULL);
    int n = snprintf(jwks, cap, "{\"keys\":[" JWK_LIST_ALL ",{\"kid\":\"" SIGNER_KID "\",%s]}",
                     pub + 1);
    CHECK(n > 0 && (size_t)n < cap);
    keys = jwks_parse(jwks, (size_t)n, err, sizeof err);
    if (keys == NULL)
        fprintf(stderr, "fuzz_jwtv: harness JWKS refused: %s\n", err);
    CHECK(keys != NULL && jwks_count(keys) == 4);
    free(jwks);
    cjose_get_dealloc()(pub);
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == c;
    return n;
}

/* Verifies under every policy and checks the promises; returns the first policy's reason. */
static enum jwtv_refusal verify_checked(const char *tok, size_t len)
{
    enum jwtv_refusal first = JWTV_ERROR;
    for (size_t p = 0; p < sizeof policies / sizeof policies[0]; p++) {
        struct jwtv_claims c = {.user_id = -1, .exp = -1, .scopes = ~0u};
        enum jwtv_refusal why = JWTV_ERROR;
        int rc = jwtv_verify(keys, &policies[p], tok, len, NOW, &c, &why);
        CHECK(rc == CP_OK || rc == CP_ERR_INVALID); /* no allocation fails here */
        if (rc == CP_OK) {
            CHECK(why == JWTV_OK);
            CHECK(len <= CP_MAX_TOKEN_BYTES && count_char(tok, len, '.') == 2);
            CHECK(memchr(tok, '=', len) == NULL);
            CHECK((c.scopes & ~(unsigned)(JWTV_SCOPE_ADMIN | JWTV_SCOPE_CHECKOUT)) == 0);
            CHECK(c.user_id >= 1 || (c.user_id == 0 && c.scopes != 0));
            CHECK(c.exp >= NOW - policies[p].leeway_s);
        } else if (rc == CP_ERR_INVALID) {
            CHECK(why != JWTV_OK && why != JWTV_ERROR);
            CHECK(strcmp(jwtv_refusal_name(why), "unknown") != 0);
            CHECK(c.user_id == -1 && c.exp == -1 && c.scopes == ~0u);
            if (len > CP_MAX_TOKEN_BYTES)
                CHECK(why == JWTV_TOO_LARGE);
        } else {
            CHECK(why == JWTV_ERROR);
        }
        if (p == 0)
            first = why;
    }
    return first;
}

/* Signs the input as a payload with the harness key and verifies the result. */
static void sign_and_verify(const uint8_t *data, size_t size)
{
    cjose_err cerr;
    cjose_header_t *hdr = cjose_header_new(&cerr);
    CHECK(hdr != NULL);
    CHECK(cjose_header_set(hdr, CJOSE_HDR_ALG, CJOSE_HDR_ALG_ES256, &cerr));
    CHECK(cjose_header_set(hdr, CJOSE_HDR_KID, SIGNER_KID, &cerr));
    cjose_jws_t *jws = cjose_jws_sign(signer, hdr, data, size, &cerr);
    CHECK(jws != NULL);
    const char *ser = NULL;
    CHECK(cjose_jws_export(jws, &ser, &cerr) && ser != NULL);
    size_t len = strlen(ser);
    enum jwtv_refusal why = verify_checked(ser, len);
    if (len <= CP_MAX_TOKEN_BYTES)
        CHECK(why == JWTV_OK || why == JWTV_ERROR || why >= JWTV_BAD_PAYLOAD);
    cjose_jws_release(jws);
    cjose_header_release(hdr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    (void)verify_checked((const char *)data, size);
    if (size > 0 && data[0] == '{') {
        char err[128];
        struct jwks *k = jwks_parse((const char *)data, size, err, sizeof err);
        if (k != NULL)
            CHECK(jwks_count(k) >= 1 && jwks_count(k) <= CP_JWKS_MAX_KEYS);
        else
            CHECK(err[0] != '\0');
        jwks_free(k);
        sign_and_verify(data, size);
    }
    return 0;
}
