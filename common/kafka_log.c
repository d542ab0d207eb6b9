#include "first.h"

#include "kafka_log.h"

enum log_level kafka_log_level(int syslog_level)
{
    if (syslog_level <= 3) /* LOG_EMERG, LOG_ALERT, LOG_CRIT, LOG_ERR */
        return LOG_LEVEL_ERROR;
    if (syslog_level == 4) /* LOG_WARNING */
        return LOG_LEVEL_WARN;
    if (syslog_level <= 6) /* LOG_NOTICE, LOG_INFO */
        return LOG_LEVEL_INFO;
    return LOG_LEVEL_DEBUG;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    log_write(kafka_log_level(level), "kafka %s %s: %s", rk != NULL ? rd_kafka_name(rk) : "-",
              fac != NULL ? fac : "-", buf != NULL ? buf : "");
}

void kafka_log_install(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_log_cb(conf, on_log);
}

rd_kafka_conf_t *kafka_log_conf_new(const char *const (*settings)[2], size_t n, char *errbuf,
                                    size_t errlen)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    kafka_log_install(kc);
    for (size_t i = 0; i < n; i++) {
        if (rd_kafka_conf_set(kc, settings[i][0], settings[i][1], errbuf, errlen) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(kc);
            return NULL;
        }
    }
    return kc;
}
