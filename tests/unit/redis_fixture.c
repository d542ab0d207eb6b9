#include "first.h"

#include "redis_fixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/coupon-unit-redis.XXXXXX";
static char sock_path[256];
static pid_t server_pid = -1;

redisContext *redis_fixture_connect(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectUnixWithTimeout(sock_path, tv);
    if (c != NULL && c->err != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

int redis_fixture_start(void)
{
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(sock_path, sizeof sock_path, "%s/redis.sock", tmpdir);
    server_pid = fork();
    if (server_pid < 0)
        return -1;
    if (server_pid == 0) {
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock_path, "--save",
               "", "--appendonly", "no", "--dir", tmpdir, "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        redisContext *c = redis_fixture_connect();
        if (c != NULL) {
            redisFree(c);
            return 0;
        }
        int status;
        if (waitpid(server_pid, &status, WNOHANG) == server_pid) {
            server_pid = -1;
            return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? 77 : -1;
        }
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

void redis_fixture_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    unlink(sock_path);
    rmdir(tmpdir);
}
