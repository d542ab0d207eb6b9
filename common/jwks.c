/*
 * jwks.c - the key set: a JWKS read strictly and imported into cjose (see jwks.h
 * for what is kept, skipped and refused).
 *
 * All JSON here goes through common/jsonv (json-c, the house's strict parser).
 * cjose brings its own parser (jansson; the two libraries' exported symbols are
 * versioned so they coexist in one process). So that cjose never reads a key
 * differently from us, each JWK is handed to cjose as json-c's re-serialisation of
 * the object we checked, and cjose's reading of its type, size and curve must be
 * ours. jsonv refuses duplicate members at the top level only; here we also compare
 * the member names in the text with the members json-c kept, which refuses
 * duplicates at any depth.
 *
 * What cjose 0.6.2.1 (Debian 12) does with keys, measured: cjose_jwk_import()
 * accepts RSA keys of any size and "oct" keys, ignores a JWK's "alg" when it
 * verifies (so a key pinned to RS256 would verify PS256: the algorithms a key may
 * verify are kept here, for common/jwtv to check), and reports an EC point off the
 * curve as "out of memory" - so no cjose error code is trusted to mean ENOMEM
 * here. Its base64url decoder assert()s on a '=' inside the text: every member it
 * decodes has passed jose_b64u_canonical() first (common/jose_strict).
 */
#include "first.h"

#include "jwks.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <openssl/err.h>
#include <json-c/json.h>

#include "cp_err.h"
#include "cp_limits.h"
#include "jose_strict.h"
#include "jsonv.h"

#define RSA_MIN_BITS     2048
#define P256_COORD_BYTES 32
#define P256_SIG_BYTES   64 /* R || S, 32 bytes each (RFC 7518 3.4) */
#define KID_MAX_BYTES    (CP_JWK_KID_MAX_CHARS * 4)

struct jwks_key {
    char kid[KID_MAX_BYTES + 1];
    size_t kid_len;
    cjose_jwk_t *jwk; /* NULL: skipped, kept only for the duplicate-kid check */
    unsigned algs;    /* the enum jose_alg bits this key may verify */
    size_t sig_len;   /* the exact signature length in bytes */
};

struct jwks {
    size_t n;
    struct jwks_key key[CP_JWKS_MAX_KEYS];
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
}

static bool has_member(struct json_object *obj, const char *name)
{
    return json_object_object_get_ex(obj, name, NULL) != 0;
}

/* Member names in a JSON text json-c has accepted: strings followed by ':'. */
static size_t count_names_in_text(const char *buf, size_t len)
{
    size_t names = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '"')
            continue;
        for (i++; i < len && buf[i] != '"'; i++) {
            if (buf[i] == '\\')
                i++;
        }
        size_t j = i + 1;
        while (j < len && (buf[j] == ' ' || buf[j] == '\t' || buf[j] == '\r' || buf[j] == '\n'))
            j++;
        names += j < len && buf[j] == ':';
    }
    return names;
}

/* Members json-c kept, in all objects of the tree (depth bounded by jsonv). */
static size_t count_members(struct json_object *v)
{
    size_t n = 0;
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, name, child)
        {
            (void)name;
            n += 1 + count_members(child);
        }
    } else if (json_object_is_type(v, json_type_array)) {
        size_t len = json_object_array_length(v);
        for (size_t i = 0; i < len; i++)
            n += count_members(json_object_array_get_idx(v, i));
    }
    return n;
}

/* The bit length and parity of the unsigned big-endian integer in a base64url text;
 * CP_ERR_INVALID (err set) if the text is absent or not canonical base64url. */
static int b64u_uint(const char *text, size_t *bits, bool *odd, char *err, size_t errlen,
                     const char *what)
{
    uint8_t *raw = NULL;
    size_t n = 0;
    int rc = text == NULL ? CP_ERR_INVALID : jose_b64u_decode(text, strlen(text), &raw, &n);
    if (rc != CP_OK) {
        if (rc == CP_ERR_INVALID)
            seterr(err, errlen, "%s is missing or not base64url", what);
        goto out;
    }
    size_t i = 0;
    while (i < n && raw[i] == 0)
        i++;
    *bits = 0;
    *odd = n > 0 && (raw[n - 1] & 1) != 0;
    if (i < n) {
        unsigned top = raw[i];
        size_t b = 0;
        while (top != 0) {
            b++;
            top >>= 1;
        }
        *bits = (n - i - 1) * 8 + b;
    }
out:
    if (raw != NULL)
        cjose_get_dealloc()(raw);
    return rc;
}

/* The alg family a JWA name belongs to: 'R' (RSA), 'E' (EC), 'S' (symmetric or none),
 * 0 (something else: EdDSA, key management algorithms...). */
static char alg_family(const char *alg)
{
    if (strncmp(alg, "RS", 2) == 0 || strncmp(alg, "PS", 2) == 0)
        return 'R';
    if (strncmp(alg, "ES", 2) == 0)
        return 'E';
    if (strncmp(alg, "HS", 2) == 0 || strcmp(alg, "none") == 0)
        return 'S';
    return 0;
}

/*
 * Checks the idx-th JWK and, if usable, imports it into keys->key[keys->n].
 * CP_OK whether kept or skipped; CP_ERR_INVALID (err set) refuses the set.
 */
static int add_key(struct jwks *keys, struct json_object *k, size_t idx, char *err, size_t errlen)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"};
    int rc = CP_ERR_INVALID;
    cjose_jwk_t *jwk = NULL;
    cjose_err cerr = {0};
    char what[32];

    if (!json_object_is_type(k, json_type_object)) {
        seterr(err, errlen, "key %zu is not an object", idx);
        goto out;
    }
    size_t kid_len = 0, chars = 0, alg_len = 0;
    const char *kid = jose_member_str(k, "kid", &kid_len);
    if (kid == NULL || jsonv_utf8_chars(kid, kid_len, &chars) != CP_OK || chars == 0 ||
        chars > CP_JWK_KID_MAX_CHARS || memchr(kid, '\0', kid_len) != NULL) {
        seterr(err, errlen, "key %zu: \"kid\" missing or not a string of 1..%d characters", idx,
               CP_JWK_KID_MAX_CHARS);
        goto out;
    }
    const char *kty = jose_member_str(k, "kty", NULL);
    if (kty == NULL) {
        seterr(err, errlen, "key %zu: \"kty\" missing or not a string", idx);
        goto out;
    }
    if (strcmp(kty, "oct") == 0) {
        seterr(err, errlen, "key %zu: symmetric (\"oct\") keys are refused", idx);
        goto out;
    }
    for (size_t i = 0; i < sizeof private_members / sizeof private_members[0]; i++) {
        if (has_member(k, private_members[i])) {
            seterr(err, errlen, "key %zu: carries private key material (\"%s\")", idx,
                   private_members[i]);
            goto out;
        }
    }
    const char *use = jose_member_str(k, "use", NULL), *alg = jose_member_str(k, "alg", &alg_len);
    if ((use == NULL && has_member(k, "use")) || (alg == NULL && has_member(k, "alg"))) {
        seterr(err, errlen, "key %zu: \"use\" or \"alg\" is not a string", idx);
        goto out;
    }
    bool is_rsa = strcmp(kty, "RSA") == 0, is_ec = strcmp(kty, "EC") == 0;
    const char *crv = jose_member_str(k, "crv", NULL);
    unsigned algs = is_rsa ? (JOSE_ALG_RS256 | JOSE_ALG_PS256) : JOSE_ALG_ES256;
    bool usable = (is_rsa || is_ec) && (use == NULL || strcmp(use, "sig") == 0);
    if (alg != NULL) {
        char fam = alg_family(alg);
        unsigned bit = jose_alg_bit(alg, alg_len);
        if (fam == 'S' || (fam == 'R' && !is_rsa) || (fam == 'E' && !is_ec) ||
            (bit == JOSE_ALG_ES256 && (crv == NULL || strcmp(crv, "P-256") != 0))) {
            seterr(err, errlen, "key %zu: \"alg\":\"%.16s\" does not fit \"kty\":\"%.16s\"", idx,
                   alg, kty);
            goto out;
        }
        if (bit == 0)
            usable = false; /* an algorithm we do not verify: the key is useless to us */
        algs = bit;
    }
    if (is_ec && (crv == NULL || strcmp(crv, "P-256") != 0))
        usable = false;
    /* Duplicate kids are checked among all keys, kept or not. */
    for (size_t i = 0; i < keys->n; i++) {
        if (keys->key[i].kid_len == kid_len && memcmp(keys->key[i].kid, kid, kid_len) == 0) {
            seterr(err, errlen, "key %zu: duplicate \"kid\"", idx);
            goto out;
        }
    }
    struct jwks_key *slot = &keys->key[keys->n];
    memcpy(slot->kid, kid, kid_len);
    slot->kid[kid_len] = '\0';
    slot->kid_len = kid_len;
    slot->jwk = NULL;
    slot->algs = 0;
    if (!usable) {
        keys->n++; /* remembered for the duplicate check; never selected (algs == 0) */
        rc = CP_OK;
        goto out;
    }
    if (is_rsa) {
        size_t nbits = 0, ebits = 0;
        bool nodd = false, eodd = false;
        (void)snprintf(what, sizeof what, "key %zu: \"n\"", idx); /* fits: idx < 100 */
        rc = b64u_uint(jose_member_str(k, "n", NULL), &nbits, &nodd, err, errlen, what);
        if (rc != CP_OK)
            goto out;
        (void)snprintf(what, sizeof what, "key %zu: \"e\"", idx);
        rc = b64u_uint(jose_member_str(k, "e", NULL), &ebits, &eodd, err, errlen, what);
        if (rc != CP_OK)
            goto out;
        rc = CP_ERR_INVALID;
        if (nbits < RSA_MIN_BITS) {
            seterr(err, errlen, "key %zu: RSA modulus of %zu bits, under %d", idx, nbits,
                   RSA_MIN_BITS);
            goto out;
        }
        if (!eodd || ebits < 2 || ebits > 64) {
            seterr(err, errlen, "key %zu: RSA public exponent not odd in 3..2^64", idx);
            goto out;
        }
        slot->sig_len = (nbits + 7) / 8;
    } else {
        /* cjose's base64url decoder assert()s - aborts the process - on some malformed
         * input ('=' inside the text): it only ever sees text we checked. */
        const char *x = jose_member_str(k, "x", NULL), *y = jose_member_str(k, "y", NULL);
        if (x == NULL || y == NULL || !jose_b64u_canonical(x, strlen(x)) ||
            !jose_b64u_canonical(y, strlen(y)) ||
            jose_b64u_decoded_len(strlen(x)) != P256_COORD_BYTES ||
            jose_b64u_decoded_len(strlen(y)) != P256_COORD_BYTES) {
            seterr(err, errlen, "key %zu: \"x\"/\"y\" missing or not base64url of %d bytes", idx,
                   P256_COORD_BYTES);
            goto out;
        }
        slot->sig_len = P256_SIG_BYTES;
    }
    /* cjose parses the JWK again: give it json-c's text of exactly what we checked. */
    size_t text_len = 0;
    const char *text = json_object_to_json_string_length(
        k, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &text_len);
    if (text == NULL) {
        rc = CP_ERR_NOMEM;
        goto out;
    }
    jwk = cjose_jwk_import(text, text_len, &cerr);
    if (jwk == NULL) {
        /* Not CP_ERR_NOMEM even for CJOSE_ERR_NO_MEMORY: cjose 0.6.2 reports an EC point
         * off its curve that way. */
        rc = CP_ERR_INVALID;
        seterr(err, errlen, "key %zu: cjose cannot import it (cjose: %s)", idx,
               cerr.message != NULL ? cerr.message : "?");
        goto out;
    }
    /* cjose's reading of the key must be ours. */
    cjose_jwk_kty_t ckty = cjose_jwk_get_kty(jwk, &cerr);
    if ((is_rsa &&
         (ckty != CJOSE_JWK_KTY_RSA || cjose_jwk_get_keysize(jwk, &cerr) < RSA_MIN_BITS)) ||
        (is_ec &&
         (ckty != CJOSE_JWK_KTY_EC || cjose_jwk_EC_get_curve(jwk, &cerr) != CJOSE_JWK_EC_P_256))) {
        rc = CP_ERR_INVALID;
        seterr(err, errlen, "key %zu: cjose reads another key type, size or curve", idx);
        goto out;
    }
    slot->jwk = jwk;
    slot->algs = algs;
    jwk = NULL;
    keys->n++;
    rc = CP_OK;
out:
    if (jwk != NULL)
        (void)cjose_jwk_release(jwk); /* false only when other references remain */
    return rc;
}

void jwks_free(struct jwks *keys)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; i < keys->n; i++) {
        if (keys->key[i].jwk != NULL)
            (void)cjose_jwk_release(keys->key[i].jwk);
    }
    free(keys);
}

size_t jwks_count(const struct jwks *keys)
{
    size_t kept = 0;
    if (keys == NULL)
        return 0;
    for (size_t i = 0; i < keys->n; i++)
        kept += keys->key[i].jwk != NULL;
    return kept;
}

struct jwks *jwks_parse(const char *jwks, size_t len, char *err, size_t errlen)
{
    struct jwks *keys = NULL;
    struct json_object *doc = NULL, *arr = NULL;
    const char *reason = NULL;
    int rc = CP_ERR_INVALID;

    if (jwks == NULL || len == 0) {
        seterr(err, errlen, "empty JWKS");
        goto out;
    }
    if (len > CP_JWKS_MAX_BYTES) {
        seterr(err, errlen, "JWKS larger than %d bytes", CP_JWKS_MAX_BYTES);
        goto out;
    }
    rc = jsonv_parse_object(jwks, len, &doc, &reason);
    if (rc != CP_OK) {
        if (rc != CP_ERR_NOMEM)
            rc = CP_ERR_INVALID;
        seterr(err, errlen, "JWKS is not strict JSON: %s", reason != NULL ? reason : "?");
        goto out;
    }
    rc = CP_ERR_INVALID;
    if (count_names_in_text(jwks, len) != count_members(doc)) {
        seterr(err, errlen, "JWKS is not strict JSON: duplicate member name in a key");
        goto out;
    }
    if (!json_object_object_get_ex(doc, "keys", &arr) ||
        !json_object_is_type(arr, json_type_array)) {
        seterr(err, errlen, "JWKS is not an object with a \"keys\" array");
        goto out;
    }
    size_t n = json_object_array_length(arr);
    if (n > CP_JWKS_MAX_KEYS) {
        seterr(err, errlen, "JWKS holds %zu keys, more than %d", n, CP_JWKS_MAX_KEYS);
        goto out;
    }
    keys = calloc(1, sizeof *keys);
    if (keys == NULL) {
        rc = CP_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = add_key(keys, json_object_array_get_idx(arr, i), i, err, errlen);
        if (rc != CP_OK)
            goto out;
    }
    if (jwks_count(keys) == 0) {
        rc = CP_ERR_INVALID;
        seterr(err, errlen, "JWKS holds no usable signature key (RSA, or EC P-256)");
        goto out;
    }
    rc = CP_OK;
out:
    json_object_put(doc);
    if (rc == CP_ERR_NOMEM)
        seterr(err, errlen, "out of memory");
    if (rc != CP_OK) {
        jwks_free(keys);
        keys = NULL;
        ERR_clear_error(); /* cjose may leave errors for this thread's next TLS call */
    }
    return keys;
}

struct jwks *jwks_load(const char *path, char *err, size_t errlen)
{
    struct jwks *keys = NULL;
    char *buf = NULL;
    FILE *f = NULL;
    char why[256];

    if (path == NULL) {
        seterr(err, errlen, "no JWKS path");
        goto out;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(CP_JWKS_MAX_BYTES + 1);
    if (buf == NULL) {
        seterr(err, errlen, "out of memory");
        goto out;
    }
    size_t n = fread(buf, 1, CP_JWKS_MAX_BYTES + 1, f);
    if (ferror(f)) {
        seterr(err, errlen, "%s: read error", path);
        goto out;
    }
    if (n > CP_JWKS_MAX_BYTES) {
        seterr(err, errlen, "%s: larger than %d bytes", path, CP_JWKS_MAX_BYTES);
        goto out;
    }
    keys = jwks_parse(buf, n, why, sizeof why);
    if (keys == NULL)
        seterr(err, errlen, "%s: %s", path, why);
out:
    free(buf);
    if (f != NULL)
        (void)fclose(f); /* read-only: nothing to flush, nothing to lose */
    return keys;
}

const struct jwks_key *jwks_find(const struct jwks *keys, const char *kid, size_t len)
{
    for (size_t i = 0; i < keys->n; i++) {
        const struct jwks_key *k = &keys->key[i];
        if (k->jwk != NULL && k->kid_len == len && memcmp(k->kid, kid, len) == 0)
            return k;
    }
    return NULL;
}

unsigned jwks_key_algs(const struct jwks_key *key)
{
    return key->algs;
}

size_t jwks_key_sig_len(const struct jwks_key *key)
{
    return key->sig_len;
}

const cjose_jwk_t *jwks_key_jwk(const struct jwks_key *key)
{
    return key->jwk;
}
