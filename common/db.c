#include "first.h"

#include "db.h"

#include <errmsg.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <string.h>

#include "cp_err.h"

int db_connect(const struct cp_conf *conf, MYSQL **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    MYSQL *db = mysql_init(NULL);
    if (db == NULL) {
        snprintf(errbuf, errlen, "mysql_init: out of memory");
        return CP_ERR_NOMEM;
    }
    unsigned int timeout_s = (unsigned int)((conf->db_timeout_ms + 999) / 1000);
    my_bool off = 0;
    /* Reconnecting behind our back would silently drop a transaction. */
    if (mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s) ||
        mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &timeout_s) ||
        mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &timeout_s) ||
        mysql_options(db, MYSQL_OPT_RECONNECT, &off) ||
        mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4") ||
        mysql_options(db, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'")) {
        snprintf(errbuf, errlen, "mysql_options: %s", mysql_error(db));
        mysql_close(db);
        return CP_ERR_INTERNAL;
    }
    const char *sock = conf->db_socket[0] ? conf->db_socket : NULL;
    if (mysql_real_connect(db, conf->db_host, conf->db_user, conf->db_password, conf->db_name,
                           (unsigned int)conf->db_port, sock, 0) == NULL) {
        snprintf(errbuf, errlen, "connect to MariaDB %s:%d: %s", conf->db_host, conf->db_port,
                 mysql_error(db));
        mysql_close(db);
        return CP_ERR_UNAVAILABLE;
    }
    *out = db;
    return CP_OK;
}

int db_is_connection_error(unsigned int e)
{
    switch (e) {
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_CONN_HOST_ERROR:
    case CR_CONNECTION_ERROR:
    case CR_SERVER_LOST_EXTENDED:
    case CR_COMMANDS_OUT_OF_SYNC:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_QUERY_INTERRUPTED: return 1;
    default: return e >= 2000 && e < 3000; /* every client-side (CR_*) error */
    }
}

void db_bind_i64(MYSQL_BIND *b, int64_t *v, my_bool *is_null)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = v;
    b->is_null = is_null;
}

void db_bind_text(MYSQL_BIND *b, char *buf, size_t cap, unsigned long *len, my_bool *is_null)
{
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = buf;
    b->buffer_length = cap;
    b->length = len;
    b->is_null = is_null;
}
