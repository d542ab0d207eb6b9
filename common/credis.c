#include "first.h"

#include "credis.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "lua_scripts.h"

/* The key of one of the coupon's kinds, and the user as a field; CP_OK or the
 * encoder's error (an id out of range). */
static int key_of(char *key, enum rkey_kind kind, int64_t coupon_id, size_t *len)
{
    int n = rkey_coupon(key, RKEY_MAX, kind, coupon_id);
    if (n < 0)
        return n;
    *len = (size_t)n;
    return CP_OK;
}

static void say(char *why, size_t cap, const char *text)
{
    if (why != NULL && cap > 0)
        snprintf(why, cap, "%s", text);
}

/* "<command> <key of kind> <user>": the reply, or NULL (no reply, or ids out of range). */
static redisReply *user_command(struct rcli *r, const char *command, enum rkey_kind kind,
                                int64_t coupon_id, int64_t user_id)
{
    char key[RKEY_MAX], uid[24];
    size_t klen;
    int ulen = rkey_user_encode(user_id, uid, sizeof uid);
    if (key_of(key, kind, coupon_id, &klen) != CP_OK || ulen < 0)
        return NULL;
    const char *argv[3] = {command, key, uid};
    size_t argvlen[3] = {strlen(command), klen, (size_t)ulen};
    return rcli_command_argv(r, 3, argv, argvlen);
}

/* An integer reply into *v and freed; CP_OK, or CP_ERR_UNAVAILABLE (freed too). */
static int take_integer(redisReply *reply, long long *v)
{
    if (reply == NULL)
        return CP_ERR_UNAVAILABLE;
    int ok = reply->type == REDIS_REPLY_INTEGER;
    if (ok)
        *v = reply->integer;
    freeReplyObject(reply);
    return ok ? CP_OK : CP_ERR_UNAVAILABLE;
}

/* 1 / 0 from an integer reply (EXISTS, HEXISTS), or CP_ERR_UNAVAILABLE. */
static int take_flag(redisReply *reply)
{
    long long v = 0;
    int rc = take_integer(reply, &v);
    return rc != CP_OK ? rc : v > 0;
}

/* ------------------------------------------------------------ holders ---- */

/* 1 held (*out set), 0 nil, CP_ERR_UNAVAILABLE; the reply is not freed. */
static int read_issuance(const redisReply *reply, struct rkey_issuance *out)
{
    if (reply->type == REDIS_REPLY_NIL)
        return 0;
    if (reply->type == REDIS_REPLY_STRING &&
        rkey_issuance_decode(reply->str, reply->len, out) == CP_OK)
        return 1;
    return CP_ERR_UNAVAILABLE;
}

int credis_holder_get(struct rcli *r, int64_t coupon_id, int64_t user_id, struct rkey_issuance *out)
{
    redisReply *reply = user_command(r, "HGET", RKEY_USERS, coupon_id, user_id);
    if (reply == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = read_issuance(reply, out);
    freeReplyObject(reply);
    return rc;
}

int credis_holder_exists(struct rcli *r, int64_t coupon_id, int64_t user_id)
{
    return take_flag(user_command(r, "HEXISTS", RKEY_USERS, coupon_id, user_id));
}

int credis_claim_status(struct rcli *r, int64_t coupon_id, int64_t user_id, int *held,
                        struct rkey_issuance *out, int *pending)
{
    *held = *pending = 0;
    redisReply *users = user_command(r, "HGET", RKEY_USERS, coupon_id, user_id);
    if (users == NULL)
        return CP_ERR_UNAVAILABLE;
    int flag = take_flag(user_command(r, "HEXISTS", RKEY_PENDING, coupon_id, user_id));
    /* What the users hash holds counts only when the pending half answered too; a
     * value that is not an issuance is no issuance (the status read says "unknown"). */
    if (flag >= 0) {
        *pending = flag;
        *held = read_issuance(users, out) == 1;
    }
    freeReplyObject(users);
    return flag < 0 ? CP_ERR_UNAVAILABLE : CP_OK;
}

int credis_issued(struct rcli *r, int64_t coupon_id, long long *n)
{
    char key[RKEY_MAX];
    size_t klen;
    if (key_of(key, RKEY_USERS, coupon_id, &klen) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    return take_integer(rcli_command(r, "HLEN %b", key, klen), n);
}

/* One HSCAN page's pairs to fn; CP_OK, fn's error, or CP_ERR_UNAVAILABLE. */
static int scan_page(const redisReply *page, credis_holder_fn fn, void *arg)
{
    if (page->type != REDIS_REPLY_ARRAY || page->elements % 2 != 0)
        return CP_ERR_UNAVAILABLE;
    for (size_t i = 0; i < page->elements; i += 2) {
        const redisReply *f = page->element[i], *v = page->element[i + 1];
        struct rkey_issuance iss;
        struct credis_holder h;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            rkey_user_decode(f->str, f->len, &h.user_id) != CP_OK ||
            rkey_issuance_decode(v->str, v->len, &iss) != CP_OK)
            return CP_ERR_UNAVAILABLE;
        h.sequence = iss.sequence;
        h.issued_at_ms = iss.issued_at_ms;
        int rc = fn(arg, &h);
        if (rc != CP_OK)
            return rc;
    }
    return CP_OK;
}

int credis_holders_scan(struct rcli *r, int64_t coupon_id, credis_holder_fn fn, void *arg)
{
    char key[RKEY_MAX], cursor[24] = "0";
    size_t klen;
    if (key_of(key, RKEY_USERS, coupon_id, &klen) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    do {
        redisReply *page =
            rcli_command(r, "HSCAN %b %s COUNT " CREDIS_SCAN_PAGE, key, klen, cursor);
        if (page == NULL)
            return CP_ERR_UNAVAILABLE;
        int rc = CP_ERR_UNAVAILABLE;
        if (page->type == REDIS_REPLY_ARRAY && page->elements == 2 &&
            page->element[0]->type == REDIS_REPLY_STRING && page->element[0]->len < sizeof cursor) {
            memcpy(cursor, page->element[0]->str, page->element[0]->len);
            cursor[page->element[0]->len] = '\0';
            rc = scan_page(page->element[1], fn, arg);
        }
        freeReplyObject(page);
        if (rc != CP_OK)
            return rc;
    } while (strcmp(cursor, "0") != 0);
    return CP_OK;
}

int credis_state_exists(struct rcli *r, int64_t coupon_id)
{
    char users[RKEY_MAX], seq[RKEY_MAX];
    size_t ulen, slen;
    if (key_of(users, RKEY_USERS, coupon_id, &ulen) != CP_OK ||
        key_of(seq, RKEY_SEQ, coupon_id, &slen) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    /* Two keys in one command: one coupon's, so one slot ({ID}). */
    return take_flag(rcli_command(r, "EXISTS %b %b", users, ulen, seq, slen));
}

int credis_counts(struct rcli *r, const int64_t *coupon_ids, size_t n, long long *issued,
                  long long *pending)
{
    long long *const out[2] = {issued, pending};
    static const enum rkey_kind kinds[2] = {RKEY_USERS, RKEY_PENDING};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++)
            if (out[k] != NULL)
                out[k][i] = -1;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            char key[RKEY_MAX];
            size_t klen;
            if (out[k] != NULL && (key_of(key, kinds[k], coupon_ids[i], &klen) != CP_OK ||
                                   rcli_append(r, "HLEN %b", key, klen) != CP_OK))
                return CP_ERR_UNAVAILABLE;
        }
    /* Every reply is read, so a node that failed (a cluster) costs only its coupons. */
    int failed = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            redisReply *rep = NULL;
            if (out[k] == NULL)
                continue;
            if (rcli_get_reply(r, &rep) != CP_OK)
                rep = NULL;
            if (take_integer(rep, &out[k][i]) != CP_OK) {
                out[k][i] = -1;
                failed++;
            }
        }
    return failed;
}

/* --------------------------------------------------------------- meta ---- */

int credis_meta_write(struct rcli *r, int64_t coupon_id, int64_t total, int64_t start_ms,
                      int64_t end_ms, char *why, size_t cap)
{
    struct rkey_meta_cmd cmd;
    int argc = rkey_meta_hset(&cmd, coupon_id, total, start_ms, end_ms);
    if (argc < 0) {
        say(why, cap, "coupon id out of range");
        return CP_ERR_INVALID;
    }
    redisReply *reply = rcli_command_argv(r, argc, cmd.argv, cmd.argvlen);
    if (reply == NULL) {
        say(why, cap, rcli_errstr(r));
        return CP_ERR_UNAVAILABLE;
    }
    int rc = CP_OK;
    if (reply->type == REDIS_REPLY_ERROR) {
        say(why, cap, reply->str);
        rc = CP_ERR_UNAVAILABLE;
    }
    freeReplyObject(reply);
    return rc;
}

/* ---------------------------------------------------- pending records ---- */

/* Appends one HDEL for recs[0..n), all of one coupon, n <= CREDIS_HDEL_FIELDS_MAX. The
 * command is formatted (copied) by rcli: the buffers are free again on return. */
static int append_hdel(struct rcli *r, const struct credis_pending *recs, size_t n)
{
    const char *argv[CREDIS_HDEL_FIELDS_MAX + 2];
    size_t argvlen[CREDIS_HDEL_FIELDS_MAX + 2];
    char key[RKEY_MAX], users[CREDIS_HDEL_FIELDS_MAX][24];
    if (key_of(key, RKEY_PENDING, recs[0].coupon_id, &argvlen[1]) != CP_OK)
        return CP_ERR_INVALID;
    argv[0] = "HDEL";
    argvlen[0] = 4;
    argv[1] = key;
    for (size_t i = 0; i < n; i++) {
        int len = rkey_user_encode(recs[i].user_id, users[i], sizeof users[i]);
        if (len < 0)
            return CP_ERR_INVALID;
        argv[i + 2] = users[i];
        argvlen[i + 2] = (size_t)len;
    }
    return rcli_append_argv(r, (int)n + 2, argv, argvlen);
}

int credis_pending_drop(struct rcli *r, const struct credis_pending *recs, size_t n,
                        long long *removed, char *why, size_t cap)
{
    size_t commands = 0;
    int rc = 0;
    *removed = 0;
    for (size_t from = 0; from < n;) {
        size_t to = from + 1;
        while (to < n && to - from < CREDIS_HDEL_FIELDS_MAX &&
               recs[to].coupon_id == recs[from].coupon_id)
            to++;
        if (append_hdel(r, recs + from, to - from) != CP_OK) {
            rc = CP_ERR_UNAVAILABLE;
            break;
        }
        commands++;
        from = to;
    }
    /* Every reply of what was sent is read: a node that failed (a cluster) costs only
     * its own records. */
    for (size_t i = 0; i < commands; i++) {
        redisReply *reply = NULL;
        if (rcli_get_reply(r, &reply) != CP_OK) {
            rc = CP_ERR_UNAVAILABLE;
            continue;
        }
        if (reply->type == REDIS_REPLY_INTEGER) {
            *removed += reply->integer;
        } else if (rc >= 0) {
            if (rc == 0)
                say(why, cap, reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
            rc++;
        }
        freeReplyObject(reply);
    }
    return rc;
}

int credis_pending_drop_field(struct rcli *r, int64_t coupon_id, const char *field, size_t len)
{
    char key[RKEY_MAX];
    size_t klen;
    if (key_of(key, RKEY_PENDING, coupon_id, &klen) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    redisReply *reply = rcli_command(r, "HDEL %b %b", key, klen, field, len);
    if (reply == NULL)
        return CP_ERR_UNAVAILABLE;
    freeReplyObject(reply);
    return CP_OK;
}

int credis_pending_each(struct rcli *r, int64_t coupon_id, credis_pending_fn fn, void *arg)
{
    char key[RKEY_MAX];
    size_t klen;
    if (key_of(key, RKEY_PENDING, coupon_id, &klen) != CP_OK)
        return CP_ERR_UNAVAILABLE;
    redisReply *h = rcli_command(r, "HGETALL %b", key, klen);
    if (h == NULL)
        return CP_ERR_UNAVAILABLE;
    int rc = h->type == REDIS_REPLY_ARRAY ? CP_OK : CP_ERR_UNAVAILABLE;
    for (size_t i = 0; i + 1 < h->elements && rc == CP_OK; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            rc = fn(arg, f->str, f->len, v->str, v->len);
    }
    freeReplyObject(h);
    return rc;
}

/* ------------------------------------------------------------ scripts ---- */

/* argv[2..]: numkeys and the coupon's keys of `kinds`. */
static int script_keys(struct credis_script *s, int64_t coupon_id, const enum rkey_kind *kinds,
                       int nkeys)
{
    static const char *const numkeys[] = {"0", "1", "2", "3", "4", "5"};
    memset(s, 0, sizeof *s);
    s->argv[2] = numkeys[nkeys];
    s->argvlen[2] = 1;
    for (int i = 0; i < nkeys; i++) {
        if (key_of(s->keys[i], kinds[i], coupon_id, &s->argvlen[3 + i]) != CP_OK)
            return CP_ERR_INVALID;
        s->argv[3 + i] = s->keys[i];
    }
    s->argc = 3 + nkeys;
    return CP_OK;
}

/* The next argument: a user as rkey writes it, in the struct's args[slot]. */
static int script_user(struct credis_script *s, int slot, int64_t user_id)
{
    int n = rkey_user_encode(user_id, s->args[slot], sizeof s->args[slot]);
    if (n < 0)
        return n;
    s->argv[s->argc] = s->args[slot];
    s->argvlen[s->argc++] = (size_t)n;
    return CP_OK;
}

/* The next argument: an integer (decimal) in the struct's args[slot]. */
static void script_int(struct credis_script *s, int slot, int64_t v)
{
    int n = snprintf(s->args[slot], sizeof s->args[slot], "%" PRId64, v);
    s->argv[s->argc] = s->args[slot];
    s->argvlen[s->argc++] = (size_t)n;
}

int credis_issue_script(struct credis_script *s, int64_t coupon_id, int64_t user_id,
                        const char *event_id, int outbox_bound)
{
    static const enum rkey_kind kinds[5] = {RKEY_META, RKEY_USERS, RKEY_SEQ, RKEY_FREE,
                                            RKEY_PENDING};
    if (script_keys(s, coupon_id, kinds, 5) != CP_OK || script_user(s, 0, user_id) != CP_OK)
        return CP_ERR_INVALID;
    s->argv[s->argc] = event_id;
    s->argvlen[s->argc++] = CP_EVENT_ID_HEX;
    script_int(s, 1, outbox_bound);
    return CP_OK;
}

int credis_rollback_script(struct credis_script *s, int64_t coupon_id, int64_t user_id,
                           int64_t sequence)
{
    static const enum rkey_kind kinds[3] = {RKEY_USERS, RKEY_FREE, RKEY_PENDING};
    if (script_keys(s, coupon_id, kinds, 3) != CP_OK || script_user(s, 0, user_id) != CP_OK)
        return CP_ERR_INVALID;
    script_int(s, 1, sequence);
    return CP_OK;
}

int credis_meta_update_script(struct credis_script *s, int64_t coupon_id, int64_t total,
                              int64_t start_ms, int64_t end_ms)
{
    static const enum rkey_kind kinds[2] = {RKEY_META, RKEY_USERS};
    if (script_keys(s, coupon_id, kinds, 2) != CP_OK)
        return CP_ERR_INVALID;
    script_int(s, 0, total);
    script_int(s, 1, start_ms);
    script_int(s, 2, end_ms);
    return CP_OK;
}

int credis_redeem_script(struct credis_script *s, int64_t coupon_id, const char *op,
                         int64_t user_id, const char *order, int64_t hold_ttl_ms, int64_t usable_ms,
                         int64_t usable_until_ms, int outbox_bound)
{
    static const enum rkey_kind kinds[4] = {RKEY_USERS, RKEY_REDEEM, RKEY_HOLDS, RKEY_RPENDING};
    if (op == NULL || order == NULL || script_keys(s, coupon_id, kinds, 4) != CP_OK)
        return CP_ERR_INVALID;
    s->argv[s->argc] = op;
    s->argvlen[s->argc++] = strlen(op);
    if (script_user(s, 0, user_id) != CP_OK)
        return CP_ERR_INVALID;
    s->argv[s->argc] = order;
    s->argvlen[s->argc++] = strlen(order);
    script_int(s, 1, hold_ttl_ms);
    script_int(s, 2, usable_ms);
    script_int(s, 3, usable_until_ms);
    script_int(s, 4, outbox_bound);
    return CP_OK;
}

/* restore.lua's argv: EVAL, the source, 2, users, seq, the highest sequence, then a
 * (user, "<seq>:<issuedAtMs>") pair per holder; texts in vals. */
static int restore_argv(int64_t coupon_id, const struct credis_holder *holders, size_t n,
                        const char **argv, size_t *argvlen, char (*vals)[2][RKEY_VALUE_MAX],
                        char keys[2][RKEY_MAX], char *maxseq, size_t maxcap)
{
    int64_t max = 0;
    for (size_t i = 0; i < n; i++)
        if (holders[i].sequence > max)
            max = holders[i].sequence;
    argv[0] = "EVAL";
    argv[1] = lua_restore_script;
    argv[2] = "2";
    argv[3] = keys[0];
    argv[4] = keys[1];
    argv[5] = maxseq;
    if (key_of(keys[0], RKEY_USERS, coupon_id, &argvlen[3]) != CP_OK ||
        key_of(keys[1], RKEY_SEQ, coupon_id, &argvlen[4]) != CP_OK)
        return CP_ERR_INVALID;
    snprintf(maxseq, maxcap, "%" PRId64, max);
    argvlen[0] = 4;
    argvlen[1] = strlen(argv[1]);
    argvlen[2] = 1;
    argvlen[5] = strlen(maxseq);
    for (size_t i = 0; i < n; i++) {
        struct rkey_issuance v = {.sequence = holders[i].sequence,
                                  .issued_at_ms = holders[i].issued_at_ms};
        int ulen = rkey_user_encode(holders[i].user_id, vals[i][0], sizeof vals[i][0]);
        int vlen = rkey_issuance_encode(&v, vals[i][1], sizeof vals[i][1]);
        if (ulen < 0 || vlen < 0)
            return CP_ERR_INVALID;
        argv[6 + 2 * i] = vals[i][0];
        argvlen[6 + 2 * i] = (size_t)ulen;
        argv[7 + 2 * i] = vals[i][1];
        argvlen[7 + 2 * i] = (size_t)vlen;
    }
    return CP_OK;
}

int credis_restore(struct rcli *r, int64_t coupon_id, const struct credis_holder *holders, size_t n,
                   long long *added, char *why, size_t cap)
{
    char keys[2][RKEY_MAX], maxseq[24];
    const char **argv = malloc((6 + 2 * n) * sizeof *argv);
    size_t *argvlen = malloc((6 + 2 * n) * sizeof *argvlen);
    char(*vals)[2][RKEY_VALUE_MAX] = malloc((n ? n : 1) * sizeof *vals);
    int rc = CP_ERR_NOMEM;
    if (argv == NULL || argvlen == NULL || vals == NULL) {
        say(why, cap, "out of memory");
        goto out;
    }
    rc = restore_argv(coupon_id, holders, n, argv, argvlen, vals, keys, maxseq, sizeof maxseq);
    if (rc != CP_OK) {
        say(why, cap, "an id out of range");
        goto out;
    }
    /* EVAL, not EVALSHA: run where the keys live (both carry the coupon's {ID}). */
    redisReply *rep = rcli_command_argv(r, (int)(6 + 2 * n), argv, argvlen);
    rc = CP_ERR_UNAVAILABLE;
    if (rep == NULL) {
        say(why, cap, rcli_errstr(r));
        goto out;
    }
    if (rep->type == REDIS_REPLY_INTEGER) {
        *added += rep->integer;
        rc = CP_OK;
    } else {
        say(why, cap, rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
    }
    freeReplyObject(rep);
out:
    free(vals);
    free(argvlen);
    free(argv);
    return rc;
}

/* ------------------------------------------------ the document, changes ---- */

int credis_doc_key(char *buf, size_t cap, int64_t coupon_id)
{
    return rkey_coupon(buf, cap, RKEY_DOC, coupon_id);
}

int credis_announce_change(struct rcli *r, int64_t coupon_id)
{
    redisReply *reply = rcli_command(r, "PUBLISH " RKEY_INVALIDATE_CHANNEL " %" PRId64, coupon_id);
    if (reply == NULL)
        return CP_ERR_UNAVAILABLE;
    freeReplyObject(reply);
    return CP_OK;
}
