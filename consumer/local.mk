# consumer: coupon-consumer (Kafka coupon.issue -> MariaDB, exactly once) and
# coupon-admin (operator commands such as rebuild-redis).
CONSUMER_LIBS = common/libcommon.a lua/libluascripts.a $(RDKAFKA_LIBS) $(MARIADB_LIBS) \
	$(HIREDIS_LIBS) $(JSONC_LIBS) $(LIBCRYPTO_LIBS) $(LIBCURL_LIBS) -lpthread

bin_PROGRAMS += consumer/coupon-consumer consumer/coupon-admin
consumer_coupon_consumer_SOURCES = consumer/consumer.c \
	consumer/persist.h consumer/persist.c \
	consumer/sqltext.h consumer/sqltext.c \
	consumer/coupon_cache.h consumer/coupon_cache.c \
	consumer/idalloc.h consumer/idalloc.c \
	consumer/issue_insert.h consumer/issue_insert.c \
	consumer/issued_outbox.h consumer/issued_outbox.c \
	consumer/issue_lookup.h consumer/issue_lookup.c \
	consumer/outbox.h consumer/outbox.c \
	consumer/downstream.h consumer/downstream.c \
	consumer/report.h consumer/report.c \
	consumer/reconcile.h consumer/reconcile.c \
	consumer/leader.h consumer/leader.c \
	consumer/relay.h consumer/relay.c \
	consumer/relay_db.h consumer/relay_db.c \
	consumer/checkout_plan.h consumer/checkout_plan.c \
	consumer/checkout_store.h consumer/checkout_store.c \
	consumer/checkout_apply.h consumer/checkout_apply.c \
	consumer/dispatch.h consumer/dispatch.c
consumer_coupon_consumer_LDADD = $(CONSUMER_LIBS)

consumer_coupon_admin_SOURCES = consumer/admin_main.c consumer/rebuild.h consumer/rebuild.c
consumer_coupon_admin_LDADD = $(CONSUMER_LIBS)
