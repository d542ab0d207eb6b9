# libcommon: configuration, logging, errors, JSON, time, the Kafka event format
# and connection helpers shared by every program, and librdkafka's log lines routed
# through the log module.
noinst_LIBRARIES += common/libcommon.a
common_libcommon_a_SOURCES = \
	common/first.h common/cp_limits.h \
	common/cp_err.h common/cp_err.c \
	common/log.h common/log.c \
	common/conf.h common/conf.c \
	common/timefmt.h common/timefmt.c \
	common/jsonv.h common/jsonv.c \
	common/jose_strict.h common/jose_strict.c \
	common/jwks.h common/jwks.c \
	common/jwtv.h common/jwtv.c \
	common/event.h common/event.c \
	common/decimal.h common/decimal.c \
	common/money.h common/money.c \
	common/clock.h common/clock.c \
	common/rkey.h common/rkey.c \
	common/issuecode.h common/issuecode.c \
	common/db.h common/db.c \
	common/rconn.h common/rconn.c \
	common/rslot.h common/rslot.c \
	common/rnodes.h common/rnodes.c \
	common/rcli.h common/rcli.c \
	common/credis.h common/credis.c \
	common/credis_checkout.h common/credis_checkout.c \
	common/kafka_log.h common/kafka_log.c \
	common/whsig.h common/whsig.c \
	common/whurl.h common/whurl.c \
	common/whstore.h common/whstore.c
