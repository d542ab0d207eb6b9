#include "first.h"

#include "credis_checkout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "decimal.h"
#include "lua_scripts.h"
#include "timefmt.h"

#define SWEEP_PIPELINE 256 /* sweeps per round trip */
#define SOME_FAILED    1   /* look_chunk: some replies were errors, the pipeline is whole */

int credis_checkout_mark(struct rcli *r, int64_t coupon_id)
{
    redisReply *rep = rcli_command(r, "SADD " RKEY_CHECKOUT_DIRTY " %" PRId64, coupon_id);
    int rc = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? CP_OK : CP_ERR_UNAVAILABLE;
    if (rep != NULL)
        freeReplyObject(rep);
    return rc;
}

int credis_checkout_mark_append(struct rcli *r, int64_t coupon_id)
{
    return rcli_append(r, "SADD " RKEY_CHECKOUT_DIRTY " %" PRId64, coupon_id);
}

int credis_checkout_state(struct rcli *r, int64_t coupon_id, int64_t user_id,
                          struct rkey_checkout_state *out)
{
    char key[RKEY_MAX], uid[24];
    if (rkey_coupon(key, sizeof key, RKEY_REDEEM, coupon_id) < 0 ||
        rkey_user_encode(user_id, uid, sizeof uid) < 0)
        return CP_ERR_INVALID;
    redisReply *rep = rcli_command(r, "HGET %s %s", key, uid);
    int rc = CP_ERR_UNAVAILABLE;
    if (rep != NULL && rep->type == REDIS_REPLY_NIL)
        rc = 0;
    else if (rep != NULL && rep->type == REDIS_REPLY_STRING &&
             rkey_checkout_state_decode(rep->str, rep->len, out) == CP_OK)
        rc = 1;
    if (rep != NULL)
        freeReplyObject(rep);
    return rc;
}

int credis_checkout_restore(struct rcli *r, int64_t coupon_id,
                            const struct credis_checkout_restore_item *items, size_t n,
                            long long *added)
{
    char keys[2][RKEY_MAX];
    const char **argv = malloc((5 + 2 * n) * sizeof *argv);
    size_t *argvlen = malloc((5 + 2 * n) * sizeof *argvlen);
    char(*vals)[2][RKEY_VALUE_MAX + CP_ORDER_ID_MAX_CHARS] = malloc((n ? n : 1) * sizeof *vals);
    int rc = CP_ERR_NOMEM;
    if (argv == NULL || argvlen == NULL || vals == NULL)
        goto out;
    rc = CP_ERR_INVALID;
    int k0 = rkey_coupon(keys[0], sizeof keys[0], RKEY_REDEEM, coupon_id);
    int k1 = rkey_coupon(keys[1], sizeof keys[1], RKEY_HOLDS, coupon_id);
    if (k0 < 0 || k1 < 0)
        goto out;
    static const char *const head[] = {"EVAL", NULL, "2"};
    for (int i = 0; i < 3; i++) {
        argv[i] = i == 1 ? lua_restore_checkout_script : head[i];
        argvlen[i] = strlen(argv[i]);
    }
    argv[3] = keys[0];
    argvlen[3] = (size_t)k0;
    argv[4] = keys[1];
    argvlen[4] = (size_t)k1;
    for (size_t i = 0; i < n; i++) {
        int ulen = rkey_user_encode(items[i].user_id, vals[i][0], sizeof vals[i][0]);
        int slen = rkey_checkout_state_encode(&items[i].state, vals[i][1], sizeof vals[i][1]);
        if (ulen < 0 || slen < 0)
            goto out;
        argv[5 + 2 * i] = vals[i][0];
        argvlen[5 + 2 * i] = (size_t)ulen;
        argv[6 + 2 * i] = vals[i][1];
        argvlen[6 + 2 * i] = (size_t)slen;
    }
    /* EVAL, not EVALSHA: an operator's command, run where the keys live ({ID}). */
    redisReply *rep = rcli_command_argv(r, (int)(5 + 2 * n), argv, argvlen);
    rc = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? CP_OK : CP_ERR_UNAVAILABLE;
    if (rc == CP_OK)
        *added += rep->integer;
    if (rep != NULL)
        freeReplyObject(rep);
out:
    free(vals);
    free(argvlen);
    free(argv);
    return rc;
}

int credis_checkout_take(struct rcli *r, int64_t *ids, size_t cap, size_t *n)
{
    *n = 0;
    redisReply *rep = rcli_command(r, "SPOP " RKEY_CHECKOUT_DIRTY " %lld", (long long)cap);
    if (rep == NULL || (rep->type != REDIS_REPLY_ARRAY && rep->type != REDIS_REPLY_NIL)) {
        if (rep != NULL)
            freeReplyObject(rep);
        return CP_ERR_UNAVAILABLE;
    }
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && *n < cap; i++) {
        const redisReply *e = rep->element[i];
        if (e->type == REDIS_REPLY_STRING && decimal_parse_id(e->str, e->len, &ids[*n]) == CP_OK)
            (*n)++;
    }
    freeReplyObject(rep);
    return CP_OK;
}

int credis_checkout_records(struct rcli *r, int64_t coupon_id, size_t max, credis_change_fn fn,
                            void *arg, size_t *bad)
{
    char key[RKEY_MAX], cursor[32] = "0";
    size_t seen = 0;
    *bad = 0;
    if (rkey_coupon(key, sizeof key, RKEY_RPENDING, coupon_id) < 0)
        return CP_ERR_INVALID;
    do {
        redisReply *rep = rcli_command(r, "HSCAN %s %s COUNT 1000", key, cursor);
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len >= sizeof cursor ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            if (rep != NULL)
                freeReplyObject(rep);
            return CP_ERR_UNAVAILABLE;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len + 1);
        const redisReply *kv = rep->element[1];
        int rc = CP_OK;
        for (size_t i = 0; i + 1 < kv->elements && seen < max && rc == CP_OK; i += 2) {
            const redisReply *f = kv->element[i], *v = kv->element[i + 1];
            struct rkey_change c;
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
                rkey_change_decode(f->str, f->len, v->str, v->len, &c) != CP_OK) {
                (*bad)++;
                continue;
            }
            seen++;
            rc = fn(arg, &c);
        }
        freeReplyObject(rep);
        if (rc != CP_OK)
            return rc;
    } while (strcmp(cursor, "0") != 0 && seen < max);
    return CP_OK;
}

int credis_checkout_drop(struct rcli *r, int64_t coupon_id, const struct credis_change_id *ids,
                         size_t n)
{
    char key[RKEY_MAX], fields[CREDIS_CHECKOUT_DROP_CHUNK][48];
    const char *argv[CREDIS_CHECKOUT_DROP_CHUNK + 2];
    size_t argvlen[CREDIS_CHECKOUT_DROP_CHUNK + 2];
    int klen = rkey_coupon(key, sizeof key, RKEY_RPENDING, coupon_id);
    if (klen < 0)
        return CP_ERR_INVALID;
    argv[0] = "HDEL";
    argvlen[0] = 4;
    argv[1] = key;
    argvlen[1] = (size_t)klen;
    for (size_t at = 0; at < n; at += CREDIS_CHECKOUT_DROP_CHUNK) {
        size_t m = n - at < CREDIS_CHECKOUT_DROP_CHUNK ? n - at : CREDIS_CHECKOUT_DROP_CHUNK;
        for (size_t i = 0; i < m; i++) {
            int len = snprintf(fields[i], sizeof fields[i], "%" PRId64 ":%" PRId64,
                               ids[at + i].user_id, ids[at + i].version);
            argv[2 + i] = fields[i];
            argvlen[2 + i] = (size_t)len;
        }
        redisReply *rep = rcli_command_argv(r, (int)m + 2, argv, argvlen);
        int ok = rep != NULL && rep->type == REDIS_REPLY_INTEGER;
        if (rep != NULL)
            freeReplyObject(rep);
        if (!ok)
            return CP_ERR_UNAVAILABLE;
    }
    return CP_OK;
}

/* The argv of redeem.lua's sweep on one coupon (EVALSHA; the strings live in *sa). */
struct sweep_args {
    char keys[4][RKEY_MAX], max[16];
    const char *argv[9];
    size_t argvlen[9];
};

static int sweep_args(const char *sha, int64_t coupon_id, int max, struct sweep_args *sa)
{
    static const enum rkey_kind kinds[4] = {RKEY_USERS, RKEY_REDEEM, RKEY_HOLDS, RKEY_RPENDING};
    for (int i = 0; i < 4; i++) {
        int len = rkey_coupon(sa->keys[i], sizeof sa->keys[i], kinds[i], coupon_id);
        if (len < 0)
            return CP_ERR_INVALID;
        sa->argv[3 + i] = sa->keys[i];
        sa->argvlen[3 + i] = (size_t)len;
    }
    static const char *const fixed[] = {"EVALSHA", NULL, "4"};
    for (int i = 0; i < 3; i++) {
        sa->argv[i] = i == 1 ? sha : fixed[i];
        sa->argvlen[i] = strlen(sa->argv[i]);
    }
    sa->argv[7] = "sweep";
    sa->argvlen[7] = 5;
    sa->argvlen[8] = (size_t)snprintf(sa->max, sizeof sa->max, "%d", max);
    sa->argv[8] = sa->max;
    return CP_OK;
}

static int load_sweep(struct rcli *r, char sha[41])
{
    if (sha[0] != '\0')
        return CP_OK;
    redisReply *l = rcli_command(r, "SCRIPT LOAD %s", lua_redeem_script);
    int ok = l != NULL && l->type == REDIS_REPLY_STRING && l->len == 40;
    if (ok)
        memcpy(sha, l->str, 41);
    if (l != NULL)
        freeReplyObject(l);
    return ok ? CP_OK : CP_ERR_UNAVAILABLE;
}

/* One pipeline of m sweeps (sa holds their argv until the replies are read); each
 * coupon's records afterwards into left[] (-1: its sweep failed). */
static int sweep_chunk(struct rcli *r, char sha[41], const int64_t *ids, size_t m,
                       int max_per_coupon, struct sweep_args *sa, long long *lapsed,
                       long long *left)
{
    for (size_t i = 0; i < m; i++)
        left[i] = -1;
    if (load_sweep(r, sha) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    for (size_t i = 0; i < m; i++)
        if (sweep_args(sha, ids[i], max_per_coupon, &sa[i]) != CP_OK ||
            rcli_append_argv(r, 9, sa[i].argv, sa[i].argvlen) != CP_OK)
            return CP_ERR_UNAVAILABLE;
    int failed = 0;
    for (size_t i = 0; i < m; i++) {
        redisReply *rep = NULL;
        if (rcli_get_reply(r, &rep) != CP_OK)
            return CP_ERR_UNAVAILABLE;
        if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
            sha[0] = '\0'; /* a node lost it (a restart): loaded again next call */
            left[i] = 0;
        } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
                   rep->element[0]->type == REDIS_REPLY_INTEGER &&
                   rep->element[1]->type == REDIS_REPLY_INTEGER) {
            *lapsed += rep->element[0]->integer;
            left[i] = rep->element[1]->integer;
        } else {
            failed = 1;
        }
        freeReplyObject(rep);
    }
    return failed ? CP_ERR_UNAVAILABLE : CP_OK;
}

/* One pipeline of m looks: ZCOUNT of the holds due by now_ms and HLEN of the records,
 * per coupon, into due[] and left[] (-1: that reply was an error). CP_OK, SOME_FAILED,
 * or CP_ERR_UNAVAILABLE (the pipeline broke: the caller resets its client). */
static int look_chunk(struct rcli *r, const int64_t *ids, size_t m, int64_t now_ms, long long *due,
                      long long *left)
{
    for (size_t i = 0; i < m; i++) {
        char holds[RKEY_MAX], rpending[RKEY_MAX];
        if (rkey_coupon(holds, sizeof holds, RKEY_HOLDS, ids[i]) < 0 ||
            rkey_coupon(rpending, sizeof rpending, RKEY_RPENDING, ids[i]) < 0)
            return CP_ERR_INVALID;
        if (rcli_append(r, "ZCOUNT %s -inf %lld", holds, (long long)now_ms) != CP_OK ||
            rcli_append(r, "HLEN %s", rpending) != CP_OK)
            return CP_ERR_UNAVAILABLE;
    }
    int failed = 0;
    for (size_t i = 0; i < 2 * m; i++) {
        redisReply *rep = NULL;
        if (rcli_get_reply(r, &rep) != CP_OK)
            return CP_ERR_UNAVAILABLE;
        long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
        failed |= v < 0;
        (i % 2 == 0 ? due : left)[i / 2] = v;
        freeReplyObject(rep);
    }
    return failed ? SOME_FAILED : CP_OK;
}

int credis_checkout_sweep(struct rcli *r, char sha[41], const int64_t *ids, size_t n,
                          int max_per_coupon, long long *lapsed, int64_t *with, size_t cap,
                          size_t *nwith)
{
    /* A pipeline's argv live until its replies are read: on the heap, once per call (the
     * applier sweeps once a second). */
    struct sweep_args *sa = malloc(SWEEP_PIPELINE * sizeof *sa);
    int64_t *due_ids = malloc(SWEEP_PIPELINE * sizeof *due_ids);
    long long *due = malloc(SWEEP_PIPELINE * sizeof *due);
    long long *left = malloc(SWEEP_PIPELINE * sizeof *left);
    long long *swept = malloc(SWEEP_PIPELINE * sizeof *swept);
    int rc = sa == NULL || due_ids == NULL || due == NULL || left == NULL || swept == NULL
                 ? CP_ERR_NOMEM
                 : CP_OK;
    int64_t now_ms = timefmt_now_ms();
    for (size_t at = 0; at < n && rc != CP_ERR_NOMEM; at += SWEEP_PIPELINE) {
        size_t m = n - at < SWEEP_PIPELINE ? n - at : SWEEP_PIPELINE, k = 0;
        /* Most coupons have no hold due: a look costs two plain commands, and only the
         * coupons with one run the script. */
        int one = look_chunk(r, ids + at, m, now_ms, due, left);
        if (one < 0) {
            rc = one == CP_ERR_INVALID ? CP_ERR_INVALID : CP_ERR_UNAVAILABLE;
            break;
        }
        if (one == SOME_FAILED)
            rc = CP_ERR_UNAVAILABLE; /* the others go on */
        for (size_t i = 0; i < m; i++)
            if (due[i] > 0)
                due_ids[k++] = ids[at + i];
        if (k > 0 &&
            (one = sweep_chunk(r, sha, due_ids, k, max_per_coupon, sa, lapsed, swept)) != CP_OK)
            rc = CP_ERR_UNAVAILABLE;
        for (size_t i = 0, j = 0; i < m; i++) {
            long long records = due[i] > 0 ? swept[j++] : left[i];
            if (records > 0 && *nwith < cap)
                with[(*nwith)++] = ids[at + i];
        }
    }
    free(swept);
    free(left);
    free(due);
    free(due_ids);
    free(sa);
    return rc;
}
