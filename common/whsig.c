#include "first.h"

#include "whsig.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "cp_err.h"

#define PREFIX_LEN (sizeof WHSIG_PREFIX - 1)
#define MAC_BYTES  32

int whsig_secret_new(char *out, size_t cap)
{
    unsigned char key[WHSIG_KEY_BYTES];
    if (cap < PREFIX_LEN + 4 * ((sizeof key + 2) / 3) + 1)
        return CP_ERR_LIMIT;
    if (RAND_bytes(key, (int)sizeof key) != 1)
        return CP_ERR_SYSTEM;
    memcpy(out, WHSIG_PREFIX, PREFIX_LEN);
    (void)EVP_EncodeBlock((unsigned char *)out + PREFIX_LEN, key, (int)sizeof key);
    OPENSSL_cleanse(key, sizeof key);
    return CP_OK;
}

int whsig_secret_key(const char *secret, unsigned char key[WHSIG_KEY_MAX_BYTES])
{
    if (strncmp(secret, WHSIG_PREFIX, PREFIX_LEN) == 0)
        secret += PREFIX_LEN;
    size_t n = strlen(secret);
    if (n == 0 || n % 4 != 0 || n > 4 * ((WHSIG_KEY_MAX_BYTES + 2) / 3))
        return CP_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        char c = secret[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok || (c != '=' && i > 0 && secret[i - 1] == '='))
            return CP_ERR_INVALID;
    }
    unsigned char buf[4 * ((WHSIG_KEY_MAX_BYTES + 2) / 3)];
    int got = EVP_DecodeBlock(buf, (const unsigned char *)secret, (int)n);
    if (got < 0)
        return CP_ERR_INVALID;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    got -= (secret[n - 1] == '=') + (secret[n - 2] == '=');
    if (got < WHSIG_KEY_MIN_BYTES || got > WHSIG_KEY_MAX_BYTES)
        return CP_ERR_INVALID;
    memcpy(key, buf, (size_t)got);
    OPENSSL_cleanse(buf, sizeof buf);
    return got;
}

/* The raw MAC of "id.timestamp.body" with the secret's key. */
static int mac(const char *secret, const char *id, int64_t timestamp, const void *body,
               size_t body_len, unsigned char out[MAC_BYTES])
{
    unsigned char key[WHSIG_KEY_MAX_BYTES];
    int klen = whsig_secret_key(secret, key);
    if (klen < 0)
        return klen;
    char ts[24];
    int tlen = snprintf(ts, sizeof ts, ".%" PRId64 ".", timestamp);
    int rc = CP_ERR_INTERNAL;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    if (ctx != NULL && EVP_MAC_init(ctx, key, (size_t)klen, params) == 1 &&
        EVP_MAC_update(ctx, (const unsigned char *)id, strlen(id)) == 1 &&
        EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tlen) == 1 &&
        EVP_MAC_update(ctx, body, body_len) == 1 &&
        EVP_MAC_final(ctx, out, &outl, MAC_BYTES) == 1 && outl == MAC_BYTES)
        rc = CP_OK;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int whsig_sign(const char *secret, const char *id, int64_t timestamp, const void *body,
               size_t body_len, char *out, size_t cap)
{
    unsigned char raw[MAC_BYTES];
    if (cap < WHSIG_SIGNATURE_MAX)
        return CP_ERR_LIMIT;
    int rc = mac(secret, id, timestamp, body, body_len, raw);
    if (rc != CP_OK)
        return rc;
    memcpy(out, "v1,", 3);
    (void)EVP_EncodeBlock((unsigned char *)out + 3, raw, MAC_BYTES);
    return CP_OK;
}

int whsig_header(const char *secret, const char *previous, const char *id, int64_t timestamp,
                 const void *body, size_t body_len, char *out, size_t cap)
{
    int rc = whsig_sign(secret, id, timestamp, body, body_len, out, cap);
    if (rc != CP_OK || previous == NULL || previous[0] == '\0')
        return rc;
    size_t n = strlen(out);
    if (cap < n + 1 + WHSIG_SIGNATURE_MAX)
        return CP_ERR_LIMIT;
    out[n] = ' ';
    return whsig_sign(previous, id, timestamp, body, body_len, out + n + 1, cap - n - 1);
}

int whsig_verify(const char *secret, const char *id, int64_t timestamp, const void *body,
                 size_t body_len, const char *header)
{
    char want[WHSIG_SIGNATURE_MAX];
    int rc = whsig_sign(secret, id, timestamp, body, body_len, want, sizeof want);
    if (rc != CP_OK)
        return rc;
    size_t wlen = strlen(want);
    const char *p = header;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n == wlen && CRYPTO_memcmp(p, want, wlen) == 0)
            return CP_OK;
        p += n;
    }
    return CP_ERR_FORBIDDEN;
}
