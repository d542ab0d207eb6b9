# scripts: the two top commands (up, check), down, migrate, and the helpers that install
# packages, build, and start/stop the real servers. They run from the source tree, so
# they are only distributed -- except migrate, which operators need on the servers:
# it is installed as bin/coupon-migrate, pointing at the installed migrations.
EXTRA_DIST += \
	scripts/up scripts/down scripts/check scripts/migrate \
	scripts/lib/common.sh scripts/lib/deps.sh scripts/lib/build.sh scripts/lib/stack.sh \
	scripts/lib/web.sh scripts/lib/cluster.sh scripts/lib/layout.sh scripts/token \
	scripts/kafka/pom.xml scripts/kafka/log4j.properties scripts/kafka/tools-log4j.properties \
	.ci/run

bin_SCRIPTS = scripts/coupon-migrate
CLEANFILES += scripts/coupon-migrate

scripts/coupon-migrate: $(srcdir)/scripts/migrate Makefile
	$(AM_V_GEN)$(MKDIR_P) scripts && \
	sed -e 's|@pkgdatadir[@]|$(pkgdatadir)|g' $(srcdir)/scripts/migrate >$@.tmp && \
	chmod +x $@.tmp && mv -f $@.tmp $@
