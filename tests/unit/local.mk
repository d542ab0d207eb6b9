# CUnit unit tests of common/ and of coupon-fcgi's request layer and producer.
# Each is one program; `make check` runs them (exit status != 0 on a failure).
# test_router needs no server; test_producer uses librdkafka's in-process mock
# cluster (loopback only, ~15 s).
# unit_main.c: the one registry/run/exit-status routine every program shares.
check_LIBRARIES = tests/unit/libunitmain.a
tests_unit_libunitmain_a_SOURCES = tests/unit/unit_main.c tests/unit/unit_main.h
tests_unit_libunitmain_a_CPPFLAGS = $(AM_CPPFLAGS) $(CUNIT_CFLAGS)

UNIT_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/fcgi-app $(FCGI_CFLAGS) $(CUNIT_CFLAGS)
UNIT_COMMON_LIBS = common/libcommon.a $(JSONC_LIBS) $(CUNIT_LIBS) -lpthread
UNIT_FCGIAPP_LIBS = $(FCGIAPP_LIBS) $(CUNIT_LIBS) -lpthread

UNIT_TESTS = tests/unit/test_conf tests/unit/test_timefmt tests/unit/test_jsonv \
	tests/unit/test_event tests/unit/test_router tests/unit/test_producer \
	tests/unit/test_lua tests/unit/test_lru tests/unit/test_l2 tests/unit/test_rkey \
	tests/unit/test_issue_decide tests/unit/test_coupon_doc tests/unit/test_series
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

tests_unit_test_conf_SOURCES = tests/unit/test_conf.c
tests_unit_test_conf_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_conf_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_timefmt_SOURCES = tests/unit/test_timefmt.c
tests_unit_test_timefmt_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_timefmt_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_jsonv_SOURCES = tests/unit/test_jsonv.c
tests_unit_test_jsonv_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_jsonv_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_rkey_SOURCES = tests/unit/test_rkey.c
tests_unit_test_rkey_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_rkey_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_issue_decide_SOURCES = tests/unit/test_issue_decide.c
tests_unit_test_issue_decide_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_issue_decide_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_coupon_doc_SOURCES = tests/unit/test_coupon_doc.c
tests_unit_test_coupon_doc_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_coupon_doc_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_series_SOURCES = tests/unit/test_series.c
tests_unit_test_series_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_series_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_event_SOURCES = tests/unit/test_event.c
tests_unit_test_event_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_event_LDADD = tests/unit/libunitmain.a $(UNIT_COMMON_LIBS)

tests_unit_test_router_SOURCES = tests/unit/test_router.c
tests_unit_test_router_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_router_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_producer_SOURCES = tests/unit/test_producer.c
tests_unit_test_producer_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_producer_LDADD = tests/unit/libunitmain.a $(UNIT_FCGIAPP_LIBS)

tests_unit_test_lua_SOURCES = tests/unit/test_lua.c tests/unit/redis_fixture.h \
	tests/unit/redis_fixture.c
tests_unit_test_lua_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_lua_LDADD = tests/unit/libunitmain.a lua/libluascripts.a $(HIREDIS_LIBS) $(CUNIT_LIBS)

tests_unit_test_l2_SOURCES = tests/unit/test_l2.c tests/unit/redis_fixture.h \
	tests/unit/redis_fixture.c
tests_unit_test_l2_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_l2_LDADD = tests/unit/libunitmain.a cache/libcache.a $(HIREDIS_LIBS) $(CUNIT_LIBS) -lpthread

tests_unit_test_lru_SOURCES = tests/unit/test_lru.c
tests_unit_test_lru_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_lru_LDADD = tests/unit/libunitmain.a cache/libcache.a $(CUNIT_LIBS) -lpthread

# The threaded LRU test again under helgrind (data races, lock order), and the unit
# tests under memcheck. Both need the programs built first (test order in TESTS).
# (Not in a sanitizer build: valgrind cannot run ASan-instrumented programs.)
if !ENABLE_SANITIZERS
TESTS += tests/unit/lru-helgrind.sh tests/unit/memcheck.sh
endif
EXTRA_DIST += tests/unit/lru-helgrind.sh tests/unit/memcheck.sh
CLEANFILES += tests/unit/*.memcheck.out
