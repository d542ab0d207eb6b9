/*
 * coupon-token - mints the bearer JWTs that coupon-fcgi verifies, for developers, the
 * integration tests and the benchmark. Not part of the service: nothing here runs in
 * production, but every token it prints is real (RS256/ES256 over OpenSSL's libcrypto).
 *
 *   keygen --dir DIR   development keys DIR/rs256.pem (RSA 2048) and DIR/es256.pem (P-256),
 *                      PKCS#8, mode 0600, created once and kept; DIR/jwks.json, the public
 *                      JWKS of both, rewritten (temp file + rename) only when it changes.
 *   jwks KEY.pem...    the public JWKS of those keys (private or public PEM) on stdout.
 *   sign ...           tokens, one per line; see usage().
 *
 * A key's kid is "dev-rs256-" or "dev-es256-" and the first 4 bytes, in hex, of the SHA-256
 * of its DER SubjectPublicKeyInfo: the same key always gets the same kid, so a JWKS built
 * later (key rotation) names the keys that signed earlier tokens the same way.
 *
 * Key files are created with link(2) from a temp file: two keygens racing on one folder
 * never replace each other's key; the loser loads the winner's.
 *
 * `sign --count N` splits users USER_ID..USER_ID+N-1 into chunks of CHUNK_TOKENS tokens.
 * Worker threads take the next chunk, sign it into the chunk's own buffer, and the main
 * thread prints the chunks in order, freeing each one. Workers run at most CHUNKS_AHEAD
 * chunks per thread ahead of the printer, so memory stays bounded for any N (10 million
 * RS256 tokens would be 6 GB if held at once). Each worker has its own copy of the key,
 * its own digest contexts and payload object: the workers share nothing but the queue.
 * All tokens of one run share the same iat/exp (read once, at the start).
 *
 * Exit status: 0, 1 on a failure (reason on stderr), 2 on bad arguments (with usage).
 */
#include "first.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define EXIT_USAGE 2

#define TOKEN_COUNT_MAX   10000000LL
#define THREADS_MAX       256
#define TTL_ABS_MAX       (100LL * 366 * 86400) /* a century either way */
#define RAW_JSON_MAX      (64 * 1024)           /* --header-json, --payload-json, --sub-raw */
#define CLAIM_TEXT_MAX    4096                  /* --iss, --aud, --scope, --kid */
#define KEY_FILE_MAX      (1024 * 1024)         /* a PEM key, or --hmac-key-file */
#define CHUNK_TOKENS      256
#define CHUNKS_AHEAD      4 /* per worker thread */
#define RSA_KEY_BITS      2048
#define ES256_COORD_BYTES 32
#define KID_HASH_BYTES    4
#define KID_MAX           64
#define SIGNATURE_MAX     1024 /* RSA up to 8192 bits; DER ECDSA-P256 is ~72 */
#define JSON_OUT_FLAGS    (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define JSON_PRETTY_FLAGS (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)
#define DEFAULT_ISS       "coupon-dev"
#define DEFAULT_AUD       "coupon-api"
#define DEFAULT_TTL       3600
#define RS256_FILE        "rs256.pem"
#define ES256_FILE        "es256.pem"
#define JWKS_FILE         "jwks.json"

enum key_kind { KEY_RSA, KEY_EC_P256 };
enum jwt_alg { ALG_RS256, ALG_ES256, ALG_HS256, ALG_NONE };

static const char *const alg_names[] = {"RS256", "ES256", "HS256", "none"};

/* A growable byte buffer; data is NUL-terminated whenever len > 0. */
struct buf {
    char *data;
    size_t len, cap;
};

/* --------------------------------------------------------------- errors ---- */

static void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ssl_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void verrorf(const char *fmt, va_list ap, const char *ssl_reason)
{
    char msg[1024];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (ssl_reason)
        fprintf(stderr, "coupon-token: %s: %s\n", msg, ssl_reason);
    else
        fprintf(stderr, "coupon-token: %s\n", msg);
}

static void errorf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verrorf(fmt, ap, NULL);
    va_end(ap);
}

/* Like errorf, with the newest OpenSSL error of this thread appended; clears the queue. */
static void ssl_errorf(const char *fmt, ...)
{
    char reason[256] = "unknown OpenSSL error";
    unsigned long code = ERR_peek_last_error();
    va_list ap;

    if (code != 0)
        ERR_error_string_n(code, reason, sizeof(reason));
    ERR_clear_error();
    va_start(ap, fmt);
    verrorf(fmt, ap, reason);
    va_end(ap);
}

/* -------------------------------------------------------------- helpers ---- */

/* Parses all of TEXT as a decimal integer in [min, max]; -1 on anything else. */
static int parse_ll(const char *text, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long value;

    if (text[0] == '\0' ||
        !(text[0] == '-' || text[0] == '+' || (text[0] >= '0' && text[0] <= '9')))
        return -1;
    errno = 0;
    value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

static int buf_reserve(struct buf *b, size_t extra)
{
    size_t need, cap;
    char *grown;

    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    grown = realloc(b->data, cap);
    if (!grown)
        return -1;
    b->data = grown;
    b->cap = cap;
    return 0;
}

static int buf_append(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

/* Appends base64url without padding (RFC 7515 section 2) of DATA. */
static int buf_append_b64url(struct buf *b, const void *data, size_t len)
{
    size_t encoded_max, i;
    char *dst;
    int written;

    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return -1;
    encoded_max = (len + 2) / 3 * 4;
    if (buf_reserve(b, encoded_max) < 0)
        return -1;
    dst = b->data + b->len;
    written = EVP_EncodeBlock((unsigned char *)dst, data, (int)len);
    if (written < 0)
        return -1;
    while (written > 0 && dst[written - 1] == '=')
        written--;
    for (i = 0; i < (size_t)written; i++) {
        if (dst[i] == '+')
            dst[i] = '-';
        else if (dst[i] == '/')
            dst[i] = '_';
    }
    b->len += (size_t)written;
    b->data[b->len] = '\0';
    return 0;
}

/* Reads all of PATH (at most MAX bytes) into a malloc'd, NUL-terminated buffer. */
static int read_file(const char *path, size_t max, unsigned char **out, size_t *out_len)
{
    struct buf content = {0};
    char block[8192];
    FILE *fp = NULL;
    size_t got;
    int rc = -1;

    fp = fopen(path, "rb");
    if (!fp) {
        errorf("%s: %s", path, strerror(errno));
        goto out;
    }
    while ((got = fread(block, 1, sizeof(block), fp)) > 0) {
        if (content.len + got > max) {
            errorf("%s: larger than %zu bytes", path, max);
            goto out;
        }
        if (buf_append(&content, block, got) < 0) {
            errorf("%s: out of memory", path);
            goto out;
        }
    }
    if (ferror(fp)) {
        errorf("%s: read error", path);
        goto out;
    }
    if (buf_reserve(&content, 0) < 0) {
        errorf("%s: out of memory", path);
        goto out;
    }
    content.data[content.len] = '\0';
    *out = (unsigned char *)content.data;
    *out_len = content.len;
    content.data = NULL;
    rc = 0;
out:
    if (fp)
        fclose(fp);
    free(content.data);
    return rc;
}

/* Writes DATA to PATH through a temp file in the same folder, so no reader ever sees a
 * partial file. NO_CLOBBER: link(2) instead of rename(2); returns 1, writing nothing, when
 * PATH exists already. 0 when written, -1 on failure (reported). */
static int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                             bool no_clobber)
{
    char tmp[PATH_MAX];
    const char *p = data;
    bool tmp_made = false;
    size_t left = len;
    int fd = -1, rc = -1, n;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        errorf("%s: path too long", path);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        errorf("%s: %s", tmp, strerror(errno));
        goto out;
    }
    tmp_made = true;
    if (fchmod(fd, mode) < 0) {
        errorf("%s: chmod: %s", tmp, strerror(errno));
        goto out;
    }
    while (left > 0) {
        ssize_t wrote = write(fd, p, left);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0) {
            errorf("%s: write: %s", tmp, wrote < 0 ? strerror(errno) : "no progress");
            goto out;
        }
        p += wrote;
        left -= (size_t)wrote;
    }
    if (fsync(fd) < 0) {
        errorf("%s: fsync: %s", tmp, strerror(errno));
        goto out;
    }
    n = close(fd);
    fd = -1;
    if (n < 0) {
        errorf("%s: close: %s", tmp, strerror(errno));
        goto out;
    }
    if (no_clobber) {
        if (link(tmp, path) < 0) {
            if (errno == EEXIST) {
                rc = 1;
                goto out;
            }
            errorf("%s: link: %s", path, strerror(errno));
            goto out;
        }
    } else {
        if (rename(tmp, path) < 0) {
            errorf("%s: rename: %s", path, strerror(errno));
            goto out;
        }
        tmp_made = false;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    return rc;
}

/* mkdir -p DIR, each new level mode 0700. */
static int make_dirs(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir), i;

    if (len == 0 || len >= sizeof(path)) {
        errorf("bad folder name '%s'", dir);
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            errorf("%s: mkdir: %s", path, strerror(errno));
            return -1;
        }
        path[i] = i < len ? '/' : '\0';
    }
    return 0;
}

/* ----------------------------------------------------------------- keys ---- */

static int refuse_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Loads a PEM key: a private key, or (when !need_private) a public one too. */
static EVP_PKEY *key_load(const char *path, bool need_private)
{
    unsigned char *pem = NULL;
    size_t pem_len = 0;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;

    if (read_file(path, KEY_FILE_MAX, &pem, &pem_len) < 0)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)pem_len);
    if (!bio) {
        ssl_errorf("%s", path);
        goto out;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, refuse_passphrase, NULL);
    if (!pkey && !need_private) {
        BIO_free(bio);
        bio = BIO_new_mem_buf(pem, (int)pem_len);
        if (bio)
            pkey = PEM_read_bio_PUBKEY(bio, NULL, refuse_passphrase, NULL);
    }
    if (!pkey)
        ssl_errorf("%s: not a PEM %skey (or encrypted)", path, need_private ? "private " : "");
    else
        ERR_clear_error(); /* what the private-key attempt left */
out:
    BIO_free(bio);
    if (pem)
        OPENSSL_cleanse(pem, pem_len);
    free(pem);
    return pkey;
}

/* RSA, or EC on P-256: the two kinds a JWS here can use. */
static int key_kind_of(EVP_PKEY *pkey, const char *name, enum key_kind *out)
{
    char group[64];
    size_t group_len = 0;

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        *out = KEY_RSA;
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_group_name(pkey, group, sizeof(group), &group_len) == 1 &&
        (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
        *out = KEY_EC_P256;
        return 0;
    }
    ERR_clear_error();
    errorf("%s: key type %s; only RSA and EC P-256 keys are supported", name,
           EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "unknown");
    return -1;
}

/* The kid of a key: dev-rs256-XXXXXXXX / dev-es256-XXXXXXXX (see the top of the file). */
static int key_kid(EVP_PKEY *pkey, enum key_kind kind, char *out, size_t out_size)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned char *der = NULL;
    size_t digest_len = 0;
    int der_len, rc = -1, n;

    der_len = i2d_PUBKEY(pkey, &der);
    if (der_len <= 0) {
        ssl_errorf("encoding the public key");
        goto out;
    }
    if (EVP_Q_digest(NULL, "SHA256", NULL, der, (size_t)der_len, digest, &digest_len) != 1 ||
        digest_len < KID_HASH_BYTES) {
        ssl_errorf("hashing the public key");
        goto out;
    }
    n = snprintf(out, out_size, "dev-%s-%02x%02x%02x%02x", kind == KEY_RSA ? "rs256" : "es256",
                 digest[0], digest[1], digest[2], digest[3]);
    if (n < 0 || (size_t)n >= out_size) {
        errorf("kid buffer too small");
        goto out;
    }
    rc = 0;
out:
    OPENSSL_free(der);
    return rc;
}

static int json_add_string(struct json_object *obj, const char *member, const char *value)
{
    struct json_object *str = json_object_new_string(value);

    if (!str || json_object_object_add(obj, member, str) != 0) {
        json_object_put(str);
        errorf("out of memory");
        return -1;
    }
    return 0;
}

/* Adds MEMBER = base64url of the big-endian bytes of the key's BIGNUM parameter PARAM,
 * left-padded with zeros to PAD bytes (0: minimal length, as JWK's RSA "n" and "e"). */
static int jwk_add_bn(struct json_object *jwk, const char *member, EVP_PKEY *pkey,
                      const char *param, int pad)
{
    struct buf text = {0};
    unsigned char *bytes = NULL;
    BIGNUM *bn = NULL;
    int len, rc = -1;

    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1) {
        ssl_errorf("reading the key's %s", param);
        goto out;
    }
    len = pad > 0 ? pad : BN_num_bytes(bn);
    bytes = malloc(len > 0 ? (size_t)len : 1);
    if (!bytes) {
        errorf("out of memory");
        goto out;
    }
    if ((pad > 0 ? BN_bn2binpad(bn, bytes, pad) : BN_bn2bin(bn, bytes)) != len) {
        ssl_errorf("encoding the key's %s", param);
        goto out;
    }
    if (buf_append_b64url(&text, bytes, (size_t)len) < 0) {
        errorf("out of memory");
        goto out;
    }
    if (json_add_string(jwk, member, text.data) < 0)
        goto out;
    rc = 0;
out:
    BN_free(bn);
    free(bytes);
    free(text.data);
    return rc;
}

/* The public JWK of a key; NAME is for messages. NULL on failure (reported). */
static struct json_object *key_jwk(EVP_PKEY *pkey, const char *name)
{
    struct json_object *jwk = NULL;
    enum key_kind kind;
    char kid[KID_MAX];
    bool ok = false;

    if (key_kind_of(pkey, name, &kind) < 0 || key_kid(pkey, kind, kid, sizeof(kid)) < 0)
        goto out;
    jwk = json_object_new_object();
    if (!jwk) {
        errorf("out of memory");
        goto out;
    }
    if (kind == KEY_RSA) {
        if (json_add_string(jwk, "kty", "RSA") < 0 || json_add_string(jwk, "kid", kid) < 0 ||
            json_add_string(jwk, "use", "sig") < 0 || json_add_string(jwk, "alg", "RS256") < 0 ||
            jwk_add_bn(jwk, "n", pkey, OSSL_PKEY_PARAM_RSA_N, 0) < 0 ||
            jwk_add_bn(jwk, "e", pkey, OSSL_PKEY_PARAM_RSA_E, 0) < 0)
            goto out;
    } else {
        if (json_add_string(jwk, "kty", "EC") < 0 || json_add_string(jwk, "crv", "P-256") < 0 ||
            json_add_string(jwk, "kid", kid) < 0 || json_add_string(jwk, "use", "sig") < 0 ||
            json_add_string(jwk, "alg", "ES256") < 0 ||
            jwk_add_bn(jwk, "x", pkey, OSSL_PKEY_PARAM_EC_PUB_X, ES256_COORD_BYTES) < 0 ||
            jwk_add_bn(jwk, "y", pkey, OSSL_PKEY_PARAM_EC_PUB_Y, ES256_COORD_BYTES) < 0)
            goto out;
    }
    ok = true;
out:
    if (!ok) {
        json_object_put(jwk);
        jwk = NULL;
    }
    return jwk;
}

/* {"keys":[...]} of KEYS, serialized (pretty, with a final newline) into OUT. */
static int jwks_text(EVP_PKEY *const *keys, const char *const *names, size_t key_count,
                     struct buf *out)
{
    struct json_object *jwks = NULL, *list = NULL, *jwk;
    const char *text;
    size_t text_len = 0, i;
    int rc = -1;

    jwks = json_object_new_object();
    list = json_object_new_array();
    if (!jwks || !list || json_object_object_add(jwks, "keys", list) != 0) {
        json_object_put(list);
        errorf("out of memory");
        goto out;
    }
    for (i = 0; i < key_count; i++) {
        jwk = key_jwk(keys[i], names[i]);
        if (!jwk)
            goto out;
        if (json_object_array_add(list, jwk) != 0) {
            json_object_put(jwk);
            errorf("out of memory");
            goto out;
        }
    }
    text = json_object_to_json_string_length(jwks, JSON_PRETTY_FLAGS, &text_len);
    if (!text || buf_append(out, text, text_len) < 0 || buf_append(out, "\n", 1) < 0) {
        errorf("out of memory");
        goto out;
    }
    rc = 0;
out:
    json_object_put(jwks);
    return rc;
}

/* DIR/FILE's key, generated (and written, mode 0600) when the file does not exist. */
static EVP_PKEY *key_ensure(const char *dir, const char *file, enum key_kind kind)
{
    char path[PATH_MAX];
    EVP_PKEY *pkey = NULL;
    BIO *pem = NULL;
    char *pem_data = NULL;
    long pem_len;
    struct stat st;
    int n, written;

    n = snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        errorf("%s: path too long", dir);
        goto fail;
    }
    if (stat(path, &st) == 0)
        return key_load(path, true);
    if (errno != ENOENT) {
        errorf("%s: %s", path, strerror(errno));
        goto fail;
    }
    if (kind == KEY_RSA)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)RSA_KEY_BITS);
    else
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!pkey) {
        ssl_errorf("generating %s", path);
        goto fail;
    }
    pem = BIO_new(BIO_s_secmem());
    if (!pem || PEM_write_bio_PrivateKey(pem, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        ssl_errorf("encoding %s", path);
        goto fail;
    }
    pem_len = BIO_get_mem_data(pem, &pem_data);
    if (pem_len <= 0 || !pem_data) {
        ssl_errorf("encoding %s", path);
        goto fail;
    }
    written = write_file_atomic(path, pem_data, (size_t)pem_len, 0600, true);
    if (written < 0)
        goto fail;
    BIO_free(pem);
    if (written == 1) { /* another keygen created it meanwhile: theirs wins */
        EVP_PKEY_free(pkey);
        return key_load(path, true);
    }
    return pkey;
fail:
    BIO_free(pem);
    EVP_PKEY_free(pkey);
    return NULL;
}

/* -------------------------------------------------------------- signing ---- */

/* What every token of one `sign` run shares; read-only once the workers start. */
struct sign_plan {
    enum jwt_alg alg;
    EVP_PKEY *key;           /* RS256/ES256: the signing key */
    unsigned char *hmac_key; /* HS256 */
    size_t hmac_key_len;
    struct buf header_b64;                   /* base64url of the header */
    struct buf fixed_payload_b64;            /* of --payload-json; len 0: generated */
    const char *iss, *aud, *scope, *sub_raw; /* scope, sub_raw: NULL when not given */
    long long iat, exp, nbf;
    bool has_nbf;
    int64_t first_user;
    long long count;
};

/* One worker's private state. */
struct signer {
    const struct sign_plan *plan;
    EVP_PKEY *key;            /* this thread's copy of plan->key */
    EVP_MD_CTX *template_ctx; /* initialized for signing once; copied for each token */
    EVP_MD_CTX *sign_ctx;
    struct json_object *payload; /* generated claims; sub replaced for each token */
};

static int json_add_int64(struct json_object *obj, const char *member, int64_t value)
{
    struct json_object *number = json_object_new_int64(value);

    if (!number || json_object_object_add(obj, member, number) != 0) {
        json_object_put(number);
        errorf("out of memory");
        return -1;
    }
    return 0;
}

/* sub as the JSON text RAW, printed verbatim: json-c would re-format numbers and escapes. */
static int json_add_verbatim(struct json_object *obj, const char *member, const char *raw)
{
    struct json_object *value = json_object_new_string("");
    char *text = strdup(raw);

    if (!value || !text)
        goto fail;
    json_object_set_serializer(value, json_object_userdata_to_json_string, text,
                               json_object_free_userdata);
    text = NULL; /* value owns it now */
    if (json_object_object_add(obj, member, value) != 0)
        goto fail;
    return 0;
fail:
    free(text);
    json_object_put(value);
    errorf("out of memory");
    return -1;
}

/* The claims of PLAN for the first user; NULL on failure (reported). */
static struct json_object *payload_new(const struct sign_plan *plan)
{
    struct json_object *payload = json_object_new_object();
    char sub[32];

    if (!payload) {
        errorf("out of memory");
        return NULL;
    }
    snprintf(sub, sizeof(sub), "%" PRId64, plan->first_user);
    if (json_add_string(payload, "iss", plan->iss) < 0 ||
        (plan->sub_raw ? json_add_verbatim(payload, "sub", plan->sub_raw)
                       : json_add_string(payload, "sub", sub)) < 0 ||
        json_add_string(payload, "aud", plan->aud) < 0 ||
        json_add_int64(payload, "iat", plan->iat) < 0 ||
        (plan->has_nbf && json_add_int64(payload, "nbf", plan->nbf) < 0) ||
        json_add_int64(payload, "exp", plan->exp) < 0 ||
        (plan->scope && json_add_string(payload, "scope", plan->scope) < 0)) {
        json_object_put(payload);
        return NULL;
    }
    return payload;
}

static void signer_free(struct signer *s)
{
    EVP_MD_CTX_free(s->sign_ctx);
    EVP_MD_CTX_free(s->template_ctx);
    EVP_PKEY_free(s->key);
    json_object_put(s->payload);
    memset(s, 0, sizeof(*s));
}

static int signer_init(struct signer *s, const struct sign_plan *plan)
{
    memset(s, 0, sizeof(*s));
    s->plan = plan;
    if (plan->fixed_payload_b64.len == 0) {
        s->payload = payload_new(plan);
        if (!s->payload)
            goto fail;
    }
    if (plan->alg != ALG_RS256 && plan->alg != ALG_ES256)
        return 0;
    s->key = EVP_PKEY_dup(plan->key);
    s->template_ctx = EVP_MD_CTX_new();
    s->sign_ctx = EVP_MD_CTX_new();
    if (!s->key || !s->template_ctx || !s->sign_ctx ||
        EVP_DigestSignInit_ex(s->template_ctx, NULL, "SHA256", NULL, NULL, s->key, NULL) != 1) {
        ssl_errorf("preparing to sign");
        goto fail;
    }
    return 0;
fail:
    signer_free(s);
    return -1;
}

/* The JWS signature of INPUT in SIG (raw r||s for ES256, as RFC 7518 3.4 asks). */
static int signer_sign(struct signer *s, const char *input, size_t input_len, unsigned char *sig,
                       size_t *sig_len)
{
    unsigned char der[SIGNATURE_MAX];
    const unsigned char *der_cursor = der;
    size_t der_len = sizeof(der);
    const BIGNUM *r, *sv;
    const struct sign_plan *plan = s->plan;
    ECDSA_SIG *ecdsa = NULL;
    int rc = -1;

    switch (plan->alg) {
    case ALG_NONE: *sig_len = 0; return 0;
    case ALG_HS256:
        if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, plan->hmac_key, plan->hmac_key_len,
                       (const unsigned char *)input, input_len, sig, SIGNATURE_MAX, sig_len)) {
            ssl_errorf("HMAC-SHA256");
            return -1;
        }
        return 0;
    case ALG_RS256:
        *sig_len = SIGNATURE_MAX;
        if (EVP_MD_CTX_copy_ex(s->sign_ctx, s->template_ctx) != 1 ||
            EVP_DigestSign(s->sign_ctx, sig, sig_len, (const unsigned char *)input, input_len) !=
                1) {
            ssl_errorf("RS256 signing");
            return -1;
        }
        return 0;
    case ALG_ES256: break;
    }
    if (EVP_MD_CTX_copy_ex(s->sign_ctx, s->template_ctx) != 1 ||
        EVP_DigestSign(s->sign_ctx, der, &der_len, (const unsigned char *)input, input_len) != 1) {
        ssl_errorf("ES256 signing");
        goto out;
    }
    ecdsa = d2i_ECDSA_SIG(NULL, &der_cursor, (long)der_len);
    if (!ecdsa) {
        ssl_errorf("decoding the ECDSA signature");
        goto out;
    }
    ECDSA_SIG_get0(ecdsa, &r, &sv);
    if (BN_bn2binpad(r, sig, ES256_COORD_BYTES) != ES256_COORD_BYTES ||
        BN_bn2binpad(sv, sig + ES256_COORD_BYTES, ES256_COORD_BYTES) != ES256_COORD_BYTES) {
        ssl_errorf("encoding the ECDSA signature");
        goto out;
    }
    *sig_len = 2 * ES256_COORD_BYTES;
    rc = 0;
out:
    ECDSA_SIG_free(ecdsa);
    return rc;
}

/* Appends the token of USER and a newline to OUT. */
static int signer_token(struct signer *s, int64_t user, struct buf *out)
{
    const struct sign_plan *plan = s->plan;
    unsigned char sig[SIGNATURE_MAX];
    size_t start = out->len, sig_len = 0, payload_len = 0;
    const char *payload;
    char sub[32];

    if (buf_append(out, plan->header_b64.data, plan->header_b64.len) < 0 ||
        buf_append(out, ".", 1) < 0)
        goto oom;
    if (plan->fixed_payload_b64.len > 0) {
        if (buf_append(out, plan->fixed_payload_b64.data, plan->fixed_payload_b64.len) < 0)
            goto oom;
    } else {
        if (!plan->sub_raw) {
            snprintf(sub, sizeof(sub), "%" PRId64, user);
            if (json_add_string(s->payload, "sub", sub) < 0)
                return -1;
        }
        payload = json_object_to_json_string_length(s->payload, JSON_OUT_FLAGS, &payload_len);
        if (!payload || buf_append_b64url(out, payload, payload_len) < 0)
            goto oom;
    }
    /* The signing input is the text just appended; sign it before OUT can move. */
    if (signer_sign(s, out->data + start, out->len - start, sig, &sig_len) < 0)
        return -1;
    if (buf_append(out, ".", 1) < 0 || buf_append_b64url(out, sig, sig_len) < 0 ||
        buf_append(out, "\n", 1) < 0)
        goto oom;
    return 0;
oom:
    errorf("out of memory");
    return -1;
}

/* ------------------------------------------------------- sign --count N ---- */

struct chunk {
    struct buf text;
    bool done;
};

/* The queue between the workers and the printer; fields below `lock` are guarded by it. */
struct batch {
    const struct sign_plan *plan;
    struct chunk *chunks;
    size_t chunk_count, window;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    size_t next_chunk; /* the next one a worker takes */
    size_t printed;    /* chunks [0, printed) are printed and freed */
    bool failed;
};

static void *batch_worker(void *arg)
{
    struct batch *b = arg;
    struct signer s;
    bool ok = signer_init(&s, b->plan) == 0;
    size_t k;
    long long i, first, last;

    pthread_mutex_lock(&b->lock);
    if (!ok)
        b->failed = true;
    for (;;) {
        while (!b->failed && b->next_chunk < b->chunk_count &&
               b->next_chunk >= b->printed + b->window)
            pthread_cond_wait(&b->changed, &b->lock);
        if (b->failed || b->next_chunk >= b->chunk_count)
            break;
        k = b->next_chunk++;
        pthread_mutex_unlock(&b->lock);

        first = (long long)k * CHUNK_TOKENS;
        last = first + CHUNK_TOKENS < b->plan->count ? first + CHUNK_TOKENS : b->plan->count;
        for (i = first; ok && i < last; i++)
            ok = signer_token(&s, b->plan->first_user + i, &b->chunks[k].text) == 0;

        pthread_mutex_lock(&b->lock);
        if (!ok)
            b->failed = true;
        b->chunks[k].done = true;
        pthread_cond_broadcast(&b->changed);
    }
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->lock);
    signer_free(&s);
    return NULL;
}

/* Signs plan->count tokens on THREADS threads and prints them to stdout in order. */
static int batch_run(const struct sign_plan *plan, long threads)
{
    struct batch b = {.plan = plan};
    pthread_t *ids = NULL;
    long started = 0, t;
    size_t k;
    bool lock_made = false, cond_made = false;
    int rc = -1, err;

    b.chunk_count = (size_t)((plan->count + CHUNK_TOKENS - 1) / CHUNK_TOKENS);
    if ((size_t)threads > b.chunk_count)
        threads = (long)b.chunk_count;
    b.window = (size_t)threads * CHUNKS_AHEAD;
    b.chunks = calloc(b.chunk_count, sizeof(*b.chunks));
    ids = calloc((size_t)threads, sizeof(*ids));
    if (!b.chunks || !ids) {
        errorf("out of memory");
        goto out;
    }
    if (pthread_mutex_init(&b.lock, NULL) != 0) {
        errorf("pthread_mutex_init failed");
        goto out;
    }
    lock_made = true;
    if (pthread_cond_init(&b.changed, NULL) != 0) {
        errorf("pthread_cond_init failed");
        goto out;
    }
    cond_made = true;
    for (t = 0; t < threads; t++) {
        err = pthread_create(&ids[t], NULL, batch_worker, &b);
        if (err != 0) {
            errorf("pthread_create: %s", strerror(err));
            pthread_mutex_lock(&b.lock);
            b.failed = true;
            pthread_cond_broadcast(&b.changed);
            pthread_mutex_unlock(&b.lock);
            break;
        }
        started++;
    }
    for (k = 0; k < b.chunk_count; k++) {
        struct buf text;
        bool done;

        pthread_mutex_lock(&b.lock);
        while (!b.chunks[k].done && !b.failed)
            pthread_cond_wait(&b.changed, &b.lock);
        done = b.chunks[k].done;
        text = b.chunks[k].text;
        if (done)
            memset(&b.chunks[k].text, 0, sizeof(text));
        pthread_mutex_unlock(&b.lock);
        if (!done) /* a worker failed: stop printing */
            break;
        if (text.len > 0 && fwrite(text.data, 1, text.len, stdout) != text.len) {
            errorf("writing tokens: %s", strerror(errno));
            free(text.data);
            pthread_mutex_lock(&b.lock);
            b.failed = true;
            pthread_cond_broadcast(&b.changed);
            pthread_mutex_unlock(&b.lock);
            break;
        }
        free(text.data);
        pthread_mutex_lock(&b.lock);
        b.printed = k + 1;
        pthread_cond_broadcast(&b.changed);
        pthread_mutex_unlock(&b.lock);
    }
    for (t = 0; t < started; t++)
        pthread_join(ids[t], NULL);
    rc = b.failed || started < threads ? -1 : 0;
out:
    if (cond_made)
        pthread_cond_destroy(&b.changed);
    if (lock_made)
        pthread_mutex_destroy(&b.lock);
    for (k = 0; b.chunks && k < b.chunk_count; k++)
        free(b.chunks[k].text.data);
    free(b.chunks);
    free(ids);
    return rc;
}

/* ---------------------------------------------------------- subcommands ---- */

static void usage(FILE *to)
{
    fputs("usage: coupon-token keygen --dir DIR\n"
          "       coupon-token jwks KEY.pem [KEY.pem...]\n"
          "       coupon-token sign --key KEY.pem [options] USER_ID\n"
          "\n"
          "keygen  creates DIR/rs256.pem (RSA 2048) and DIR/es256.pem (P-256) unless they\n"
          "        exist (mode 0600, PKCS#8), and (re)writes DIR/jwks.json, their public JWKS.\n"
          "jwks    prints the public JWKS of the keys (private or public PEM).\n"
          "sign    prints a JWT per line; kid dev-rs256-/dev-es256-<8 hex of the key's SHA-256>.\n"
          "  --key KEY.pem        signing key (RS256/ES256); HS256/none: only the kid's source\n"
          "  --alg ALG            RS256, ES256, HS256 or none [from the key's type]\n"
          "  --kid KID            header kid [derived from the key]\n"
          "  --iss ISS            [" DEFAULT_ISS "]\n"
          "  --aud AUD            [" DEFAULT_AUD "]\n"
          "  --ttl SECONDS        exp = now + SECONDS; negative: already expired [3600]\n"
          "  --nbf-in SECONDS     adds nbf = now + SECONDS\n"
          "  --scope SCOPE        adds scope, e.g. \"coupon:checkout\" or \"coupon:admin\"\n"
          "  --sub-raw JSON       sub is this JSON value, verbatim (e.g. 42, null, \"-1\")\n"
          "  --count N            N tokens, for users USER_ID .. USER_ID+N-1 in order [1]\n"
          "  --threads T          signing threads [number of CPUs]\n"
          "  --header-json RAW    sign exactly these header bytes (--kid is then refused)\n"
          "  --payload-json RAW   sign exactly these payload bytes (USER_ID optional)\n"
          "  --hmac-key-file FILE HS256 key: the raw bytes of FILE (e.g. a public key PEM)\n"
          "USER_ID: 0..2^63-1; sub is its decimal string. --alg none prints header.payload.\n"
          "Exit status: 0 ok, 1 failure (reason on stderr), 2 bad arguments.\n",
          to);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verrorf(fmt, ap, NULL);
    va_end(ap);
    usage(stderr);
    return EXIT_USAGE;
}

static int cmd_keygen(int argc, char **argv)
{
    static const struct option options[] = {{"dir", required_argument, NULL, 'd'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *dir = NULL;
    const char *names[2] = {RS256_FILE, ES256_FILE};
    EVP_PKEY *keys[2] = {NULL, NULL};
    struct buf jwks = {0};
    unsigned char *old = NULL;
    size_t old_len = 0;
    char path[PATH_MAX];
    int opt, n, rc = EXIT_FAILURE;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'd': dir = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return usage_error("keygen: bad option");
        }
    }
    if (!dir || optind != argc)
        return usage_error("keygen takes --dir DIR and nothing else");
    n = snprintf(path, sizeof(path), "%s/%s", dir, JWKS_FILE);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        errorf("%s: path too long", dir);
        goto out;
    }
    if (make_dirs(dir) < 0)
        goto out;
    keys[0] = key_ensure(dir, RS256_FILE, KEY_RSA);
    if (!keys[0])
        goto out;
    keys[1] = key_ensure(dir, ES256_FILE, KEY_EC_P256);
    if (!keys[1])
        goto out;
    if (jwks_text(keys, names, 2, &jwks) < 0)
        goto out;
    /* Unchanged: leave the file alone, so a watcher does not reload for nothing. */
    if (access(path, F_OK) == 0 && read_file(path, KEY_FILE_MAX, &old, &old_len) == 0 &&
        old_len == jwks.len && memcmp(old, jwks.data, old_len) == 0) {
        rc = 0;
        goto out;
    }
    if (write_file_atomic(path, jwks.data, jwks.len, 0644, false) < 0)
        goto out;
    rc = 0;
out:
    EVP_PKEY_free(keys[0]);
    EVP_PKEY_free(keys[1]);
    free(jwks.data);
    free(old);
    return rc;
}

static int cmd_jwks(int argc, char **argv)
{
    EVP_PKEY **keys = NULL;
    struct buf jwks = {0};
    int i, key_count = 0, rc = EXIT_FAILURE;

    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        return usage_error("jwks takes one or more KEY.pem files");
    }
    keys = calloc((size_t)argc, sizeof(*keys));
    if (!keys) {
        errorf("out of memory");
        goto out;
    }
    for (i = 1; i < argc; i++) {
        keys[key_count] = key_load(argv[i], false);
        if (!keys[key_count])
            goto out;
        key_count++;
    }
    if (jwks_text(keys, (const char *const *)argv + 1, (size_t)key_count, &jwks) < 0)
        goto out;
    if (fwrite(jwks.data, 1, jwks.len, stdout) != jwks.len) {
        errorf("writing the JWKS: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    for (i = 0; i < key_count; i++)
        EVP_PKEY_free(keys[i]);
    free(keys);
    free(jwks.data);
    return rc;
}

/* Base64url of a JSON header or payload given on the command line, as is. */
static int raw_json_b64(const char *option, const char *raw, struct buf *out)
{
    size_t len = strlen(raw);

    if (len > RAW_JSON_MAX) {
        errorf("%s: longer than %d bytes", option, RAW_JSON_MAX);
        return -1;
    }
    if (buf_append_b64url(out, raw, len) < 0) {
        errorf("out of memory");
        return -1;
    }
    return 0;
}

/* The generated header: {"alg":...,"typ":"JWT","kid":...}; kid left out when NULL. */
static int header_b64(enum jwt_alg alg, const char *kid, struct buf *out)
{
    struct json_object *header = json_object_new_object();
    const char *text;
    size_t text_len = 0;
    int rc = -1;

    if (!header) {
        errorf("out of memory");
        goto out;
    }
    if (json_add_string(header, "alg", alg_names[alg]) < 0 ||
        json_add_string(header, "typ", "JWT") < 0 ||
        (kid && json_add_string(header, "kid", kid) < 0))
        goto out;
    text = json_object_to_json_string_length(header, JSON_OUT_FLAGS, &text_len);
    if (!text || buf_append_b64url(out, text, text_len) < 0) {
        errorf("out of memory");
        goto out;
    }
    rc = 0;
out:
    json_object_put(header);
    return rc;
}

static int parse_alg(const char *name, enum jwt_alg *out)
{
    static const enum jwt_alg algs[] = {ALG_RS256, ALG_ES256, ALG_HS256, ALG_NONE};
    size_t i;

    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(name, alg_names[algs[i]]) == 0) {
            *out = algs[i];
            return 0;
        }
    }
    return -1;
}

static bool valid_json(const char *text)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *value;
    size_t len = strlen(text);
    bool ok;

    if (!tok)
        return false;
    /* The length counts the NUL: a number or literal at the end is complete only there. */
    value = json_tokener_parse_ex(tok, text, (int)len + 1);
    ok = json_tokener_get_error(tok) == json_tokener_success &&
         json_tokener_get_parse_end(tok) >= len;
    json_object_put(value);
    json_tokener_free(tok);
    return ok;
}

/* Options of `sign` with a value to check; ids above any character. */
enum sign_option {
    OPT_KEY = 256,
    OPT_ALG,
    OPT_KID,
    OPT_ISS,
    OPT_AUD,
    OPT_TTL,
    OPT_NBF_IN,
    OPT_SCOPE,
    OPT_SUB_RAW,
    OPT_COUNT,
    OPT_HEADER_JSON,
    OPT_PAYLOAD_JSON,
    OPT_HMAC_KEY_FILE,
    OPT_THREADS,
    OPT_HELP,
};

static int text_option(const char *name, const char *value, size_t max, const char **out)
{
    if (strlen(value) > max)
        return usage_error("--%s: longer than %zu bytes", name, max);
    *out = value;
    return 0;
}

static int cmd_sign(int argc, char **argv)
{
    static const struct option options[] = {
        {"key", required_argument, NULL, OPT_KEY},
        {"alg", required_argument, NULL, OPT_ALG},
        {"kid", required_argument, NULL, OPT_KID},
        {"iss", required_argument, NULL, OPT_ISS},
        {"aud", required_argument, NULL, OPT_AUD},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"nbf-in", required_argument, NULL, OPT_NBF_IN},
        {"scope", required_argument, NULL, OPT_SCOPE},
        {"sub-raw", required_argument, NULL, OPT_SUB_RAW},
        {"count", required_argument, NULL, OPT_COUNT},
        {"header-json", required_argument, NULL, OPT_HEADER_JSON},
        {"payload-json", required_argument, NULL, OPT_PAYLOAD_JSON},
        {"hmac-key-file", required_argument, NULL, OPT_HMAC_KEY_FILE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct sign_plan plan = {.iss = DEFAULT_ISS, .aud = DEFAULT_AUD, .count = 1};
    const char *key_path = NULL, *kid = NULL, *header_json = NULL, *payload_json = NULL;
    const char *hmac_path = NULL;
    bool alg_given = false, claims_given = false;
    long long ttl = DEFAULT_TTL, nbf_in = 0, user = -1, number;
    long threads;
    char derived_kid[KID_MAX];
    enum key_kind kind = KEY_RSA;
    time_t now;
    int opt, rc = EXIT_FAILURE, bad;

    threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    if (threads > THREADS_MAX)
        threads = THREADS_MAX;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        bad = 0;
        switch (opt) {
        case OPT_KEY: key_path = optarg; break;
        case OPT_ALG:
            if (parse_alg(optarg, &plan.alg) < 0)
                return usage_error("--alg: RS256, ES256, HS256 or none, not '%s'", optarg);
            alg_given = true;
            break;
        case OPT_KID: bad = text_option("kid", optarg, CLAIM_TEXT_MAX, &kid); break;
        case OPT_ISS:
            bad = text_option("iss", optarg, CLAIM_TEXT_MAX, &plan.iss);
            claims_given = true;
            break;
        case OPT_AUD:
            bad = text_option("aud", optarg, CLAIM_TEXT_MAX, &plan.aud);
            claims_given = true;
            break;
        case OPT_SCOPE:
            bad = text_option("scope", optarg, CLAIM_TEXT_MAX, &plan.scope);
            claims_given = true;
            break;
        case OPT_TTL:
            if (parse_ll(optarg, -TTL_ABS_MAX, TTL_ABS_MAX, &ttl) < 0)
                return usage_error("--ttl: seconds, |ttl| <= %lld, not '%s'", TTL_ABS_MAX, optarg);
            claims_given = true;
            break;
        case OPT_NBF_IN:
            if (parse_ll(optarg, -TTL_ABS_MAX, TTL_ABS_MAX, &nbf_in) < 0)
                return usage_error("--nbf-in: |seconds| <= %lld, not '%s'", TTL_ABS_MAX, optarg);
            plan.has_nbf = true;
            claims_given = true;
            break;
        case OPT_SUB_RAW:
            if (strlen(optarg) > RAW_JSON_MAX || !valid_json(optarg))
                return usage_error("--sub-raw: not one JSON value: '%s'", optarg);
            plan.sub_raw = optarg;
            claims_given = true;
            break;
        case OPT_COUNT:
            if (parse_ll(optarg, 1, TOKEN_COUNT_MAX, &plan.count) < 0)
                return usage_error("--count: 1..%lld, not '%s'", TOKEN_COUNT_MAX, optarg);
            break;
        case OPT_THREADS:
            if (parse_ll(optarg, 1, THREADS_MAX, &number) < 0)
                return usage_error("--threads: 1..%d, not '%s'", THREADS_MAX, optarg);
            threads = (long)number;
            break;
        case OPT_HEADER_JSON:
            bad = text_option("header-json", optarg, RAW_JSON_MAX, &header_json);
            break;
        case OPT_PAYLOAD_JSON:
            bad = text_option("payload-json", optarg, RAW_JSON_MAX, &payload_json);
            break;
        case OPT_HMAC_KEY_FILE: hmac_path = optarg; break;
        case OPT_HELP: usage(stdout); return 0;
        default: return usage_error("sign: bad option");
        }
        if (bad)
            return bad;
    }
    if (optind < argc) {
        if (optind + 1 < argc)
            return usage_error("sign takes one USER_ID, got '%s' too", argv[optind + 1]);
        if (parse_ll(argv[optind], 0, INT64_MAX, &user) < 0)
            return usage_error("USER_ID: 0..%" PRId64 ", not '%s'", INT64_MAX, argv[optind]);
        if (user > INT64_MAX - (plan.count - 1))
            return usage_error("USER_ID + --count passes %" PRId64, INT64_MAX);
    } else if (!payload_json) {
        return usage_error("sign needs USER_ID");
    }
    if (payload_json && claims_given)
        return usage_error("--payload-json excludes --iss/--aud/--ttl/--nbf-in/--scope/--sub-raw");
    if (header_json && kid)
        return usage_error("--header-json excludes --kid");
    if (!key_path && !(alg_given && (plan.alg == ALG_HS256 || plan.alg == ALG_NONE)))
        return usage_error("sign needs --key (or --alg HS256/none)");
    if (alg_given && plan.alg == ALG_HS256 && !hmac_path)
        return usage_error("--alg HS256 needs --hmac-key-file");
    if (hmac_path && !(alg_given && plan.alg == ALG_HS256))
        return usage_error("--hmac-key-file goes with --alg HS256");

    /* Arguments are sound; from here on a failure exits 1. */
    if (key_path) {
        bool need_private = !alg_given || plan.alg == ALG_RS256 || plan.alg == ALG_ES256;
        plan.key = key_load(key_path, need_private);
        if (!plan.key || key_kind_of(plan.key, key_path, &kind) < 0)
            goto out;
        if (!alg_given)
            plan.alg = kind == KEY_RSA ? ALG_RS256 : ALG_ES256;
        if ((plan.alg == ALG_RS256 && kind != KEY_RSA) ||
            (plan.alg == ALG_ES256 && kind != KEY_EC_P256)) {
            errorf("--alg %s cannot sign with %s (an %s key)", alg_names[plan.alg], key_path,
                   kind == KEY_RSA ? "RSA" : "EC P-256");
            goto out;
        }
        if (!kid) {
            if (key_kid(plan.key, kind, derived_kid, sizeof(derived_kid)) < 0)
                goto out;
            kid = derived_kid;
        }
    }
    if (hmac_path && read_file(hmac_path, KEY_FILE_MAX, &plan.hmac_key, &plan.hmac_key_len) < 0)
        goto out;
    now = time(NULL);
    if (now == (time_t)-1) {
        errorf("time: %s", strerror(errno));
        goto out;
    }
    plan.iat = (long long)now;
    plan.exp = plan.iat + ttl;
    plan.nbf = plan.iat + nbf_in;
    plan.first_user = user < 0 ? 0 : (int64_t)user;
    if (header_json ? raw_json_b64("--header-json", header_json, &plan.header_b64) < 0
                    : header_b64(plan.alg, kid, &plan.header_b64) < 0)
        goto out;
    if (payload_json && raw_json_b64("--payload-json", payload_json, &plan.fixed_payload_b64) < 0)
        goto out;
    if (batch_run(&plan, threads) < 0)
        goto out;
    if (fflush(stdout) != 0) {
        errorf("writing tokens: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(plan.key);
    if (plan.hmac_key)
        OPENSSL_cleanse(plan.hmac_key, plan.hmac_key_len);
    free(plan.hmac_key);
    free(plan.header_b64.data);
    free(plan.fixed_payload_b64.data);
    return rc;
}

int main(int argc, char **argv)
{
    const char *command = argc > 1 ? argv[1] : "";
    int rc;

    if (strcmp(command, "keygen") == 0)
        rc = cmd_keygen(argc - 1, argv + 1);
    else if (strcmp(command, "jwks") == 0)
        rc = cmd_jwks(argc - 1, argv + 1);
    else if (strcmp(command, "sign") == 0)
        rc = cmd_sign(argc - 1, argv + 1);
    else if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0)
        rc = (usage(stdout), 0);
    else
        rc = usage_error("%s", argc > 1 ? "unknown command" : "missing command");
    if (fflush(stdout) != 0 || ferror(stdout)) {
        errorf("writing to stdout failed");
        rc = EXIT_FAILURE;
    }
    return rc;
}
