# Integration suites: tests/integration/run starts Redis, MariaDB, Kafka, the consumer,
# coupon-fcgi, nginx and lighttpd once on free loopback ports, runs every
# tests/integration/test_*.py against them and tears everything down (see the runner).
# It finds the programs in the build tree and the deploy files in the source tree through
# the two variables below (other local.mk files may append with +=).
AM_TESTS_ENVIRONMENT = \
	COUPON_BUILD_DIR='$(abs_top_builddir)'; COUPON_SRC_DIR='$(abs_top_srcdir)'; \
	export COUPON_BUILD_DIR COUPON_SRC_DIR;

# The committed .clang-format holds for every C file (fast, so it runs first).
TESTS += tests/format.sh
EXTRA_DIST += tests/format.sh .clang-format
# One module owns every Redis command on a coupon's keys (common/credis): a grep of the
# product code that names any other place that spells one.
TESTS += tests/redis_owner.sh
EXTRA_DIST += tests/redis_owner.sh

TESTS += tests/integration/run
# The cluster layout's suites (test_cluster*.py) run with `tests/integration/run
# --cluster`, which scripts/check calls once, outside make check (not in TESTS, so the
# sanitizer pass does not run it again).
# Every suite file must be listed here to be in the tarball (make dist/distcheck); the
# runner itself finds them by name (test_*.py), listed or not.
EXTRA_DIST += \
	tests/integration/run \
	tests/integration/harness.py \
	tests/integration/fcgi_client.py \
	tests/integration/test_stack.py \
	tests/integration/test_issue.py \
	tests/integration/test_auth.py \
	tests/integration/test_process.py \
	tests/integration/test_read_admin.py \
	tests/integration/test_consumer.py \
	tests/integration/test_rebuild.py \
	tests/integration/test_bad_input.py \
	tests/integration/test_faults.py \
	tests/integration/test_console.py \
	tests/integration/test_monitoring.py \
	tests/integration/test_cluster.py \
	tests/integration/test_webhooks.py \
	tests/browser/console.mjs
