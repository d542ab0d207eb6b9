# Fuzz targets (libFuzzer) for request parsing/routing and the JSON decoders,
# with their seed corpus and dictionary beside them.
#
#   CC=clang ./configure --enable-fuzzers && make check
#       builds tests/fuzz/fuzz_* with -fsanitize=fuzzer,address,undefined (the code
#       under test is compiled into each target so it carries coverage) and runs
#       each for 20 s (tests/fuzz/run-short.sh; FUZZ_SECONDS=N for longer).
#   ordinary builds
#       link the same harnesses with replay_main.c and replay the seed corpus once
#       (tests/fuzz/replay.sh), so the harnesses always compile and the seeds pass.
#
# fuzz_router replaces the handlers that need Redis/Kafka/MariaDB at link time
# (-Wl,--wrap=...); see the comment at the top of fuzz_router.c for the limit.
FUZZ_TARGETS = tests/fuzz/fuzz_jsonv tests/fuzz/fuzz_event tests/fuzz/fuzz_router \
	tests/fuzz/fuzz_rkey tests/fuzz/fuzz_jwtv tests/fuzz/fuzz_money
check_PROGRAMS += $(FUZZ_TARGETS)
EXTRA_DIST += tests/fuzz/run-short.sh tests/fuzz/replay.sh tests/fuzz/json.dict \
	tests/fuzz/fuzz_check.h \
	tests/fuzz/corpus

FUZZ_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/fcgi-app $(FCGI_CFLAGS)
FUZZ_ROUTER_WRAPS = -Wl,--wrap=read_coupon_handle,--wrap=read_issue_status_handle \
	-Wl,--wrap=read_user_coupons_handle,--wrap=admin_create_handle \
	-Wl,--wrap=admin_patch_handle,--wrap=admin_stats_handle \
	-Wl,--wrap=health_handle,--wrap=health_metrics_handle,--wrap=issue_handle \
	-Wl,--wrap=redeem_handle,--wrap=redeem_cancel_handle,--wrap=redeem_by_code_handle \
	-Wl,--wrap=validate_handle

# The modules under test, compiled into the target (instrumented in fuzzer builds).
FUZZ_JSONV_UNDER_TEST = common/jsonv.c
FUZZ_EVENT_UNDER_TEST = common/event.c common/jsonv.c common/timefmt.c
FUZZ_RKEY_UNDER_TEST = common/rkey.c common/decimal.c common/event.c
FUZZ_JWTV_UNDER_TEST = common/jwtv.c common/jwks.c common/jose_strict.c common/jsonv.c
FUZZ_ROUTER_UNDER_TEST = fcgi-app/router.c fcgi-app/http.c fcgi-app/problem.c \
	fcgi-app/issue.c fcgi-app/redeem.c fcgi-app/validate.c common/jsonv.c common/issuecode.c \
	common/money.c
FUZZ_MONEY_UNDER_TEST = common/money.c

tests_fuzz_fuzz_jsonv_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_jsonv_LDADD = common/libcommon.a $(JSONC_LIBS)
tests_fuzz_fuzz_event_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_event_LDADD = common/libcommon.a $(JSONC_LIBS)
tests_fuzz_fuzz_rkey_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_rkey_LDADD = common/libcommon.a $(JSONC_LIBS)
# jwtv_vectors.h: the keys and tokens it shares with tests/unit/test_jwtv.c
tests_fuzz_fuzz_jwtv_CPPFLAGS = $(FUZZ_CPPFLAGS) -I$(top_srcdir)/tests/unit
tests_fuzz_fuzz_jwtv_LDADD = common/libcommon.a $(CJOSE_LIBS) $(LIBCRYPTO_LIBS) $(JSONC_LIBS)
tests_fuzz_fuzz_money_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_money_LDADD = common/libcommon.a
tests_fuzz_fuzz_router_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_router_LDADD = $(FCGIAPP_LIBS) -lpthread

if ENABLE_FUZZERS
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -g
TESTS += tests/fuzz/run-short.sh

tests_fuzz_fuzz_jsonv_SOURCES = tests/fuzz/fuzz_jsonv.c $(FUZZ_JSONV_UNDER_TEST)
tests_fuzz_fuzz_jsonv_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_jsonv_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_event_SOURCES = tests/fuzz/fuzz_event.c $(FUZZ_EVENT_UNDER_TEST)
tests_fuzz_fuzz_event_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_event_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_rkey_SOURCES = tests/fuzz/fuzz_rkey.c $(FUZZ_RKEY_UNDER_TEST)
tests_fuzz_fuzz_rkey_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_rkey_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_jwtv_SOURCES = tests/fuzz/fuzz_jwtv.c $(FUZZ_JWTV_UNDER_TEST)
tests_fuzz_fuzz_jwtv_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_jwtv_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_money_SOURCES = tests/fuzz/fuzz_money.c $(FUZZ_MONEY_UNDER_TEST)
tests_fuzz_fuzz_money_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_money_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_router_SOURCES = tests/fuzz/fuzz_router.c $(FUZZ_ROUTER_UNDER_TEST)
tests_fuzz_fuzz_router_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_router_LDFLAGS = $(FUZZ_FLAGS) $(FUZZ_ROUTER_WRAPS)
else
TESTS += tests/fuzz/replay.sh

tests_fuzz_fuzz_jsonv_SOURCES = tests/fuzz/fuzz_jsonv.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_event_SOURCES = tests/fuzz/fuzz_event.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_rkey_SOURCES = tests/fuzz/fuzz_rkey.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_jwtv_SOURCES = tests/fuzz/fuzz_jwtv.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_money_SOURCES = tests/fuzz/fuzz_money.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_router_SOURCES = tests/fuzz/fuzz_router.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_router_LDFLAGS = $(FUZZ_ROUTER_WRAPS)
# Per-target CFLAGS exist in the other branch, so automake uses them here too.
tests_fuzz_fuzz_jsonv_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_event_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_router_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_rkey_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_jwtv_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_money_CFLAGS = $(AM_CFLAGS)
endif
