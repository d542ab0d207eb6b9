#include "first.h"

#include "redis_fixture.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "cp_err.h"

static char tmpdir[] = "/tmp/coupon-unit-redis.XXXXXX";
static char sock_path[256];
static pid_t server_pid = -1;
static int tcp_port;
static struct cp_conf client_conf; /* the clients' configuration: set once, outlives them */

int redis_fixture_port(void)
{
    return tcp_port;
}

struct rcli *redis_fixture_client(void)
{
    char err[256];
    struct rcli *c = NULL;
    return rcli_open(&client_conf, &c, err, sizeof err) == CP_OK ? c : NULL;
}

/* A loopback port nobody listens on now (the kernel's choice for port 0). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

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
    tcp_port = free_port();
    if (tcp_port < 0)
        return -1;
    char port[16], err[128];
    snprintf(port, sizeof port, "%d", tcp_port);
    conf_defaults(&client_conf);
    if (conf_set(&client_conf, "redis_port", port, err, sizeof err) != CP_OK)
        return -1;
    server_pid = fork();
    if (server_pid < 0)
        return -1;
    if (server_pid == 0) {
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
               "--unixsocket", sock_path, "--save", "", "--appendonly", "no", "--dir", tmpdir,
               "--loglevel", "warning", (char *)NULL);
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

int redis_fixture_run(const char *suite, const struct unit_case *cases, size_t n)
{
    int started = redis_fixture_start();
    if (started == 77) {
        fprintf(stderr, "redis-server not found: skipped\n");
        return 77;
    }
    if (started != 0) {
        fprintf(stderr, "could not start redis-server\n");
        redis_fixture_stop();
        return 2;
    }
    int status = unit_run_suite(suite, NULL, cases, n);
    redis_fixture_stop();
    return status;
}
