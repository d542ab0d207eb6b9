/*
 * admin_main.c - coupon-admin, the operator's command line.
 *
 *   coupon-admin [-c FILE] rebuild-redis [--coupon ID]
 *       restore the issuance state in Redis from MariaDB (see rebuild.h)
 */
#include "first.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "cp_err.h"
#include "db.h"
#include "log.h"
#include "rebuild.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: coupon-admin [-c FILE] rebuild-redis [--coupon ID]\n"
                 "  rebuild-redis  restore every coupon's issuance state in Redis from\n"
                 "                 MariaDB (run once the consumer has caught up)\n");
}

static int parse_id(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v <= 0)
        return CP_ERR_INVALID;
    *out = v;
    return CP_OK;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
        config_path = argv[i + 1];
        i += 2;
    }
    if (i >= argc || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
        usage(i >= argc ? stderr : stdout);
        return i >= argc ? 2 : 0;
    }
    const char *cmd = argv[i++];
    int64_t coupon_id = 0;
    if (strcmp(cmd, "rebuild-redis") != 0) {
        fprintf(stderr, "coupon-admin: unknown command %s\n", cmd);
        usage(stderr);
        return 2;
    }
    if (i < argc) {
        if (i + 2 != argc || strcmp(argv[i], "--coupon") != 0 ||
            parse_id(argv[i + 1], &coupon_id) != CP_OK) {
            usage(stderr);
            return 2;
        }
    }
    struct cp_conf conf;
    char err[512];
    if (conf_load(&conf, config_path, err, sizeof err) != CP_OK) {
        fprintf(stderr, "coupon-admin: %s\n", err);
        return 2;
    }
    log_init("coupon-admin", LOG_LEVEL_WARN);
    if (db_library_init() != CP_OK)
        return 1;
    int rc = rebuild_redis(&conf, coupon_id, stdout);
    db_library_end();
    return rc == CP_OK ? 0 : 1;
}
