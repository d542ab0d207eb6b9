/*
 * test_rslot.c - the key space of a Redis Cluster (common/rslot): the spec's CRC16
 * vector, hash tags, the key of a formatted command (argv[1]; EVAL/EVALSHA numkeys;
 * commands without a key), -MOVED/-ASK replies and CLUSTER SLOTS entries.
 */
#include "first.h"

#include <stdarg.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "rslot.h"
#include "unit_main.h"

static void crc16_is_the_cluster_spec_one(void)
{
    CU_ASSERT_EQUAL(rslot_crc16("123456789", 9), 0x31C3);
    CU_ASSERT_EQUAL(rslot_of_key("123456789", 9), 0x31C3 % RSLOT_COUNT);
    CU_ASSERT_EQUAL(rslot_of_key("foo", 3), 12182);
    CU_ASSERT_EQUAL(rslot_of_key("bar", 3), 5061);
    CU_ASSERT_EQUAL(rslot_crc16("", 0), 0);
}

static void hash_tags_decide_the_slot(void)
{
    int user = rslot_of_key("user1000", 8);
    CU_ASSERT_EQUAL(rslot_of_key("{user1000}.following", 20), user);
    CU_ASSERT_EQUAL(rslot_of_key("{user1000}.followers", 20), user);
    /* The first '{' and the first '}' after it; an empty tag hashes the whole key. */
    CU_ASSERT_EQUAL(rslot_of_key("foo{}{bar}", 10), rslot_crc16("foo{}{bar}", 10) % RSLOT_COUNT);
    CU_ASSERT_EQUAL(rslot_of_key("foo{{bar}}zap", 13), rslot_of_key("{bar", 4));
    CU_ASSERT_EQUAL(rslot_of_key("foo{bar}{zap}", 13), rslot_of_key("bar", 3));
    CU_ASSERT_EQUAL(rslot_of_key("foo{bar", 7), rslot_crc16("foo{bar", 7) % RSLOT_COUNT);
    /* Every key of a coupon, and the consumers' metrics keys, share their slot. */
    CU_ASSERT_EQUAL(rslot_of_key("coupon:{42}:users", 17), rslot_of_key("42", 2));
    CU_ASSERT_EQUAL(rslot_of_key("coupon:{42}:pending", 19), rslot_of_key("42", 2));
    CU_ASSERT_EQUAL(rslot_of_key("coupon:metrics:{consumers}:h-1", 30),
                    rslot_of_key("coupon:metrics:{consumers}", 26));
}

static int slot_of(const char *fmt, ...)
{
    char *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(len > 0);
    int slot = rslot_of_command(buf, (size_t)len, NULL);
    redisFreeCommand(buf);
    return slot;
}

static void the_key_of_a_command(void)
{
    CU_ASSERT_EQUAL(slot_of("GET foo"), 12182);
    CU_ASSERT_EQUAL(slot_of("hset %s f v", "bar"), 5061); /* any case */
    CU_ASSERT_EQUAL(slot_of("EVALSHA %s 2 {a}x {a}y 7", "0123"), rslot_of_key("a", 1));
    CU_ASSERT_EQUAL(slot_of("EVAL %s 1 bar", "return 1"), 5061);
    CU_ASSERT_EQUAL(slot_of("EVALSHA %s 0 foo", "0123"), -1); /* numkeys 0: no key */
    CU_ASSERT_EQUAL(slot_of("EVAL %s 1", "return 1"), -1);
    static const char *const keyless[] = {
        "PING",          "MULTI",         "EXEC",    "WAIT 1 100", "PUBLISH ch 1", "SCRIPT LOAD x",
        "CLUSTER SLOTS", "INFO keyspace", "DISCARD", "TIME",       "DBSIZE",       "CLIENT LIST"};
    for (size_t i = 0; i < sizeof keyless / sizeof keyless[0]; i++)
        CU_ASSERT_EQUAL(slot_of(keyless[i]), -1);
    enum rslot_kind kind;
    CU_ASSERT_EQUAL(rslot_of_command("*1\r\n$5\r\nmulti\r\n", 15, &kind), -1);
    CU_ASSERT_EQUAL(kind, RSLOT_MULTI);
    CU_ASSERT_EQUAL(rslot_of_command("*1\r\n$4\r\nEXEC\r\n", 14, &kind), -1);
    CU_ASSERT_EQUAL(kind, RSLOT_END);
    CU_ASSERT_EQUAL(rslot_of_command("*2\r\n$3\r\nGET\r\n$9\r\nfoo", 23, &kind), -1); /* cut */
    CU_ASSERT_EQUAL(rslot_of_command("GET foo", 7, &kind), -1);
}

/* An error reply as hiredis builds one. */
static redisReply error_reply(const char *text)
{
    return (redisReply){.type = REDIS_REPLY_ERROR, .str = (char *)text, .len = strlen(text)};
}

static void redirect_replies_are_parsed(void)
{
    char host[64];
    int ask, slot, port;
    redisReply r = error_reply("MOVED 3999 10.0.0.2:6381");
    CU_ASSERT_EQUAL(rslot_redirect(&r, "self", &ask, &slot, host, sizeof host, &port), 1);
    CU_ASSERT(!ask && slot == 3999 && port == 6381 && strcmp(host, "10.0.0.2") == 0);
    r = error_reply("ASK 12 :7002"); /* no host: the node that answered */
    CU_ASSERT_EQUAL(rslot_redirect(&r, "self", &ask, &slot, host, sizeof host, &port), 1);
    CU_ASSERT(ask && slot == 12 && port == 7002 && strcmp(host, "self") == 0);
    static const char *const others[] = {"MOVED 16384 a:1", "MOVED 1 a:0",      "MOVED 1 a",
                                         "MOVED x a:1",     "CLUSTERDOWN down", "TRYAGAIN later"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        r = error_reply(others[i]);
        CU_ASSERT_EQUAL(rslot_redirect(&r, "self", &ask, &slot, host, sizeof host, &port), 0);
    }
    r = (redisReply){.type = REDIS_REPLY_STATUS, .str = (char *)"MOVED 1 a:1", .len = 11};
    CU_ASSERT_EQUAL(rslot_redirect(&r, "self", &ask, &slot, host, sizeof host, &port), 0);
    CU_ASSERT_EQUAL(rslot_redirect(NULL, "self", &ask, &slot, host, sizeof host, &port), 0);
    /* A host that does not fit is refused, not cut. */
    r = error_reply("MOVED 1 0123456789.example:7000");
    CU_ASSERT_EQUAL(rslot_redirect(&r, "self", &ask, &slot, host, 8, &port), 0);
}

/* One CLUSTER SLOTS entry: [from, to, [host, port, id]]. */
struct entry {
    redisReply from, to, host, port, master, whole;
    redisReply *master_parts[2], *parts[3];
};

static const redisReply *entry(struct entry *e, long long from, long long to, const char *host,
                               long long port)
{
    e->from = (redisReply){.type = REDIS_REPLY_INTEGER, .integer = from};
    e->to = (redisReply){.type = REDIS_REPLY_INTEGER, .integer = to};
    e->host = (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)host, .len = strlen(host)};
    e->port = (redisReply){.type = REDIS_REPLY_INTEGER, .integer = port};
    e->master_parts[0] = &e->host;
    e->master_parts[1] = &e->port;
    e->master = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 2, .element = e->master_parts};
    e->parts[0] = &e->from;
    e->parts[1] = &e->to;
    e->parts[2] = &e->master;
    e->whole = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 3, .element = e->parts};
    return &e->whole;
}

static void cluster_slots_entries_are_checked(void)
{
    struct entry e;
    const char *host;
    int port, from, to;
    CU_ASSERT_EQUAL(
        rslot_range(entry(&e, 0, 5460, "10.0.0.1", 7001), "asked", &host, &port, &from, &to), 1);
    CU_ASSERT(from == 0 && to == 5460 && port == 7001 && strcmp(host, "10.0.0.1") == 0);
    /* No host: the node that answered. "?": the endpoint is unknown - not usable. */
    CU_ASSERT_EQUAL(rslot_range(entry(&e, 1, 2, "", 7002), "asked", &host, &port, &from, &to), 1);
    CU_ASSERT_STRING_EQUAL(host, "asked");
    CU_ASSERT_EQUAL(rslot_range(entry(&e, 1, 2, "?", 7002), "asked", &host, &port, &from, &to), 0);
    CU_ASSERT_EQUAL(rslot_range(entry(&e, 2, 1, "h", 7002), "asked", &host, &port, &from, &to), 0);
    CU_ASSERT_EQUAL(
        rslot_range(entry(&e, 0, RSLOT_COUNT, "h", 7002), "asked", &host, &port, &from, &to), 0);
    CU_ASSERT_EQUAL(rslot_range(entry(&e, 0, 1, "h", 0), "asked", &host, &port, &from, &to), 0);
    entry(&e, 0, 1, "h", 1);
    e.whole.elements = 2; /* no master */
    CU_ASSERT_EQUAL(rslot_range(&e.whole, "asked", &host, &port, &from, &to), 0);
}

int main(void)
{
    static const struct unit_case tests[] = {
        {"crc16_is_the_cluster_spec_one", crc16_is_the_cluster_spec_one},
        {"hash_tags_decide_the_slot", hash_tags_decide_the_slot},
        {"the_key_of_a_command", the_key_of_a_command},
        {"redirect_replies_are_parsed", redirect_replies_are_parsed},
        {"cluster_slots_entries_are_checked", cluster_slots_entries_are_checked},
    };
    return unit_run_suite("rslot", NULL, UNIT_CASES(tests));
}
