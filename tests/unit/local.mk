# CUnit unit tests of common/ and of coupon-fcgi's request layer and producer.
# Each is one program; `make check` runs them (exit status != 0 on a failure).
# test_router, test_metrics, test_rslot and test_rcli (fake connections) need no server, nor
# do test_db and the MariaDB stores' tests (test_coupon_store, test_redemption_store,
# test_persist, test_relay_db, test_reconcile, test_checkout_store: db_fake.h);
# test_lua, test_l2, test_rcli_redis, test_credis and test_credis_checkout start a private
# redis-server; test_producer and test_outbox use librdkafka's in-process mock cluster
# (loopback only, ~15 s).
# unit_main.c: the one registry/run/exit-status routine every program shares.
check_LIBRARIES = tests/unit/libunitmain.a tests/unit/libdbfake.a
tests_unit_libunitmain_a_SOURCES = tests/unit/unit_main.c tests/unit/unit_main.h
tests_unit_libunitmain_a_CPPFLAGS = $(AM_CPPFLAGS) $(CUNIT_CFLAGS)
# db_fake: a scripted MariaDB behind struct db_ops for every store's test (no server).
tests_unit_libdbfake_a_SOURCES = tests/unit/db_fake.c tests/unit/db_fake.h
tests_unit_libdbfake_a_CPPFLAGS = $(AM_CPPFLAGS) $(MARIADB_CFLAGS)

UNIT_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/fcgi-app $(FCGI_CFLAGS) $(CUNIT_CFLAGS)
UNIT_COMMON_LIBS = common/libcommon.a $(JSONC_LIBS) $(LIBCRYPTO_LIBS) $(CUNIT_LIBS) -lpthread
UNIT_FCGIAPP_LIBS = $(FCGIAPP_LIBS) $(CUNIT_LIBS) -lpthread

UNIT_TESTS = tests/unit/test_conf tests/unit/test_timefmt tests/unit/test_jsonv \
	tests/unit/test_event tests/unit/test_router tests/unit/test_producer \
	tests/unit/test_lua tests/unit/test_redeem_lua tests/unit/test_lru tests/unit/test_holders tests/unit/test_l2 tests/unit/test_rkey \
	tests/unit/test_issue_decide tests/unit/test_coupon_doc tests/unit/test_metrics \
	tests/unit/test_outbox tests/unit/test_downstream tests/unit/test_checkout_plan tests/unit/test_kafka_log \
	tests/unit/test_app tests/unit/test_issuecode tests/unit/test_series tests/unit/test_rslot \
	tests/unit/test_rcli tests/unit/test_rcli_redis tests/unit/test_jwtv tests/unit/test_ratelimit tests/unit/test_stock \
	tests/unit/test_money tests/unit/test_validate \
	tests/unit/test_db tests/unit/test_coupon_store tests/unit/test_redemption_store \
	tests/unit/test_persist tests/unit/test_relay_db tests/unit/test_reconcile \
	tests/unit/test_checkout_store tests/unit/test_credis tests/unit/test_credis_checkout \
	tests/unit/test_defer \
	tests/unit/test_whsig tests/unit/test_whurl
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

tests_unit_test_conf_SOURCES = tests/unit/test_conf.c
tests_unit_test_conf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_conf_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_rslot_SOURCES = tests/unit/test_rslot.c
tests_unit_test_rslot_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_rslot_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS) $(HIREDIS_LIBS)

tests_unit_test_rcli_SOURCES = tests/unit/test_rcli.c
tests_unit_test_rcli_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_rcli_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS) $(HIREDIS_LIBS)

tests_unit_test_rcli_redis_SOURCES = tests/unit/test_rcli_redis.c tests/unit/redis_fixture.h \
	tests/unit/redis_fixture.c
tests_unit_test_rcli_redis_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_rcli_redis_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS) $(HIREDIS_LIBS)

tests_unit_test_timefmt_SOURCES = tests/unit/test_timefmt.c
tests_unit_test_timefmt_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_timefmt_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_jsonv_SOURCES = tests/unit/test_jsonv.c
tests_unit_test_jsonv_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_jsonv_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_money_SOURCES = tests/unit/test_money.c
tests_unit_test_money_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_money_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_whsig_SOURCES = tests/unit/test_whsig.c
tests_unit_test_whsig_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_whsig_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_whurl_SOURCES = tests/unit/test_whurl.c
tests_unit_test_whurl_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_whurl_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_validate_SOURCES = tests/unit/test_validate.c
tests_unit_test_validate_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_validate_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_rkey_SOURCES = tests/unit/test_rkey.c
tests_unit_test_rkey_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_rkey_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_issue_decide_SOURCES = tests/unit/test_issue_decide.c
tests_unit_test_issue_decide_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_issue_decide_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_coupon_doc_SOURCES = tests/unit/test_coupon_doc.c
tests_unit_test_coupon_doc_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_coupon_doc_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_app_SOURCES = tests/unit/test_app.c
tests_unit_test_app_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_app_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_series_SOURCES = tests/unit/test_series.c
tests_unit_test_series_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_series_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_event_SOURCES = tests/unit/test_event.c
tests_unit_test_event_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_event_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_issuecode_SOURCES = tests/unit/test_issuecode.c
tests_unit_test_issuecode_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_issuecode_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_router_SOURCES = tests/unit/test_router.c
tests_unit_test_router_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_router_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_producer_SOURCES = tests/unit/test_producer.c
tests_unit_test_producer_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_producer_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_metrics_SOURCES = tests/unit/test_metrics.c
tests_unit_test_metrics_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_metrics_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

# Consumer modules are compiled into their tests from consumer/ (the consumer has no library).
UNIT_CONSUMER_CPPFLAGS = $(UNIT_CPPFLAGS) -I$(top_srcdir)/consumer

tests_unit_test_outbox_SOURCES = tests/unit/test_outbox.c consumer/outbox.h consumer/outbox.c
tests_unit_test_outbox_CPPFLAGS = $(UNIT_CONSUMER_CPPFLAGS)
tests_unit_test_outbox_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS) $(RDKAFKA_LIBS)

# consumer/downstream.c against the fake outbox_add of the test (link seam: no outbox.c).
tests_unit_test_checkout_plan_SOURCES = tests/unit/test_checkout_plan.c consumer/checkout_plan.h \
	consumer/checkout_plan.c
tests_unit_test_checkout_plan_CPPFLAGS = $(UNIT_CONSUMER_CPPFLAGS)
tests_unit_test_checkout_plan_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_downstream_SOURCES = tests/unit/test_downstream.c consumer/downstream.h \
	consumer/downstream.c
tests_unit_test_downstream_CPPFLAGS = $(UNIT_CONSUMER_CPPFLAGS)
tests_unit_test_downstream_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS) $(RDKAFKA_LIBS)

tests_unit_test_kafka_log_SOURCES = tests/unit/test_kafka_log.c
tests_unit_test_kafka_log_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_kafka_log_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS) $(RDKAFKA_LIBS)

tests_unit_test_lua_SOURCES = tests/unit/test_lua.c tests/unit/redis_fixture.h \
	tests/unit/redis_fixture.c
tests_unit_test_lua_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_lua_LDADD = tests/unit/libunitmain.a lua/libluascripts.a common/libcommon.a \
	$(HIREDIS_LIBS) $(CUNIT_LIBS) -lpthread

tests_unit_test_redeem_lua_SOURCES = tests/unit/test_redeem_lua.c tests/unit/redis_fixture.h \
	tests/unit/redis_fixture.c
tests_unit_test_redeem_lua_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_redeem_lua_LDADD = tests/unit/libunitmain.a lua/libluascripts.a common/libcommon.a \
	$(HIREDIS_LIBS) $(CUNIT_LIBS) -lpthread

# common/credis, every command on a coupon's keys, against the private redis-server.
tests_unit_test_credis_SOURCES = tests/unit/test_credis.c tests/unit/redis_fixture.h \
	tests/unit/redis_fixture.c
tests_unit_test_credis_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_credis_LDADD = tests/unit/libunitmain.a common/libcommon.a lua/libluascripts.a \
	$(JSONC_LIBS) $(LIBCRYPTO_LIBS) \
	$(HIREDIS_LIBS) $(CUNIT_LIBS) -lpthread

# common/credis_checkout, the applier's commands on a coupon's checkout keys, likewise.
tests_unit_test_credis_checkout_SOURCES = tests/unit/test_credis_checkout.c \
	tests/unit/redis_fixture.h tests/unit/redis_fixture.c
tests_unit_test_credis_checkout_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_credis_checkout_LDADD = tests/unit/libunitmain.a common/libcommon.a \
	lua/libluascripts.a $(JSONC_LIBS) $(LIBCRYPTO_LIBS) $(HIREDIS_LIBS) $(CUNIT_LIBS) -lpthread

tests_unit_test_defer_SOURCES = tests/unit/test_defer.c
tests_unit_test_defer_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_defer_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_l2_SOURCES = tests/unit/test_l2.c tests/unit/redis_fixture.h \
	tests/unit/redis_fixture.c
tests_unit_test_l2_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_l2_LDADD = tests/unit/libunitmain.a cache/libcache.a common/libcommon.a \
	$(HIREDIS_LIBS) $(CUNIT_LIBS) -lpthread

tests_unit_test_lru_SOURCES = tests/unit/test_lru.c
tests_unit_test_lru_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_lru_LDADD = tests/unit/libunitmain.a cache/libcache.a common/libcommon.a \
	$(CUNIT_LIBS) -lpthread

tests_unit_test_holders_SOURCES = tests/unit/test_holders.c
tests_unit_test_holders_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_holders_LDADD = tests/unit/libunitmain.a cache/libcache.a common/libcommon.a \
	$(CUNIT_LIBS) -lpthread

# The threaded LRU test again under helgrind (data races, lock order), and the unit
# tests under memcheck. Both need the programs built first (test order in TESTS).
# (Not in a sanitizer build: valgrind cannot run ASan-instrumented programs.)
if !ENABLE_SANITIZERS
TESTS += tests/unit/lru-helgrind.sh tests/unit/memcheck.sh
endif
EXTRA_DIST += tests/unit/lru-helgrind.sh tests/unit/memcheck.sh tests/unit/jwtv_vectors.py
CLEANFILES += tests/unit/*.memcheck.out

# Who is asking (issue 24): JWT verification over cjose with known-answer tokens, and the
# per-user limits' shared table (forks processes to prove the counts across them).
tests_unit_test_jwtv_SOURCES = tests/unit/test_jwtv.c tests/unit/jwtv_vectors.h
tests_unit_test_jwtv_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_jwtv_LDADD = tests/unit/libunitmain.a common/libcommon.a $(CJOSE_LIBS) \
	$(LIBCRYPTO_LIBS) $(JSONC_LIBS) $(CUNIT_LIBS) -lpthread

tests_unit_test_ratelimit_SOURCES = tests/unit/test_ratelimit.c
tests_unit_test_ratelimit_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_ratelimit_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

# MariaDB's client (common/db) and every store over the scripted fake (db_fake.h).
UNIT_DB_LIBS = tests/unit/libunitmain.a tests/unit/libdbfake.a
tests_unit_test_db_SOURCES = tests/unit/test_db.c
tests_unit_test_db_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_db_LDADD = $(UNIT_DB_LIBS) $(UNIT_COMMON_LIBS) $(MARIADB_LIBS)

tests_unit_test_coupon_store_SOURCES = tests/unit/test_coupon_store.c
tests_unit_test_coupon_store_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_coupon_store_LDADD = $(UNIT_DB_LIBS) $(UNIT_FCGIAPP_LIBS)

tests_unit_test_redemption_store_SOURCES = tests/unit/test_redemption_store.c
tests_unit_test_redemption_store_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_redemption_store_LDADD = $(UNIT_DB_LIBS) $(UNIT_FCGIAPP_LIBS)

# persist and its parts, compiled from consumer/ like the other consumer tests.
tests_unit_test_persist_SOURCES = tests/unit/test_persist.c consumer/persist.h consumer/persist.c \
	consumer/coupon_cache.h consumer/coupon_cache.c consumer/idalloc.h consumer/idalloc.c \
	consumer/issue_insert.h consumer/issue_insert.c consumer/issued_outbox.h \
	consumer/issued_outbox.c consumer/sqltext.h consumer/sqltext.c
tests_unit_test_persist_CPPFLAGS = $(UNIT_CONSUMER_CPPFLAGS)
tests_unit_test_persist_LDADD = $(UNIT_DB_LIBS) $(UNIT_COMMON_LIBS) $(MARIADB_LIBS)

tests_unit_test_relay_db_SOURCES = tests/unit/test_relay_db.c consumer/relay_db.h \
	consumer/relay_db.c consumer/leader.h consumer/leader.c consumer/sqltext.h consumer/sqltext.c
tests_unit_test_relay_db_CPPFLAGS = $(UNIT_CONSUMER_CPPFLAGS)
tests_unit_test_relay_db_LDADD = $(UNIT_DB_LIBS) $(UNIT_COMMON_LIBS) $(MARIADB_LIBS)

# The reconciler's MariaDB side: its reads and its lock.
tests_unit_test_reconcile_SOURCES = tests/unit/test_reconcile.c consumer/issue_lookup.h \
	consumer/issue_lookup.c consumer/leader.h consumer/leader.c
tests_unit_test_reconcile_CPPFLAGS = $(UNIT_CONSUMER_CPPFLAGS)
tests_unit_test_reconcile_LDADD = $(UNIT_DB_LIBS) $(UNIT_COMMON_LIBS) $(MARIADB_LIBS)

# The checkout applier's MariaDB side: its transaction and the recent coupons.
tests_unit_test_checkout_store_SOURCES = tests/unit/test_checkout_store.c \
	consumer/checkout_store.h consumer/checkout_store.c consumer/checkout_plan.h \
	consumer/checkout_plan.c
tests_unit_test_checkout_store_CPPFLAGS = $(UNIT_CONSUMER_CPPFLAGS)
tests_unit_test_checkout_store_LDADD = $(UNIT_DB_LIBS) $(UNIT_COMMON_LIBS) $(MARIADB_LIBS)

tests_unit_test_stock_SOURCES = tests/unit/test_stock.c
tests_unit_test_stock_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_stock_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)
