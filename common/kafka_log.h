/*
 * kafka_log.h - librdkafka's own log lines through the project's log module.
 *
 * Left alone, librdkafka writes its lines straight to stderr in a format of its
 * own ("%3|1796116844.649|FAIL|rdkafka#producer-1| [thrd:...]: ... refused"),
 * which log processing cannot parse and log_level does not filter.
 * kafka_log_install() sets a log callback on a configuration, before
 * rd_kafka_new(), that turns each line into one log_write event: the syslog
 * severity librdkafka uses mapped to ours (kafka_log_level), with the client's
 * name and librdkafka's facility in the message. Meant for every Kafka client
 * the programs create.
 *
 * The callback runs on librdkafka's own threads; log_write is thread-safe and
 * the module keeps no state, so any number of clients may share it.
 */
#ifndef COUPON_KAFKA_LOG_H
#define COUPON_KAFKA_LOG_H

#include <librdkafka/rdkafka.h>

#include "log.h"

/* Routes the log lines of the client created from `conf` through log_write. */
void kafka_log_install(rd_kafka_conf_t *conf);

/*
 * A new configuration with our log callback and the n {name, value} settings: the one
 * place every Kafka client of the programs is configured. NULL with the reason in
 * errbuf when librdkafka refuses a setting.
 */
rd_kafka_conf_t *kafka_log_conf_new(const char *const (*settings)[2], size_t n, char *errbuf,
                                    size_t errlen);

/* syslog severity (0 emerg .. 7 debug) -> ours: 0-3 error, 4 warn, 5-6 info, 7+ debug. */
enum log_level kafka_log_level(int syslog_level);

#endif
