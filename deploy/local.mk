# deploy: web server, spawn-fcgi and systemd files, installed as examples under
# $(pkgdatadir)/deploy/ (they carry placeholders or fixed production paths; see
# deploy/README.md), and the default configuration file.
deploydir = $(pkgdatadir)/deploy
dist_deploy_DATA = deploy/README.md deploy/coupon.conf.example \
	deploy/coupon-cluster.conf.example

deploynginxdir = $(deploydir)/nginx
dist_deploynginx_DATA = deploy/nginx/coupon.conf deploy/nginx/coupon-http.conf \
	deploy/nginx/upstream-two-hosts.conf deploy/nginx/coupon-gateway.server.conf \
	deploy/nginx/coupon-gateway.location.conf

# The multi-host layout's Redis Cluster node and Kafka broker (examples, issue #14).
deployredisdir = $(deploydir)/redis
dist_deployredis_DATA = deploy/redis/redis-cluster-node.conf
deploykafkadir = $(deploydir)/kafka
dist_deploykafka_DATA = deploy/kafka/broker.properties

deploylighttpddir = $(deploydir)/lighttpd
dist_deploylighttpd_DATA = deploy/lighttpd/coupon.conf deploy/lighttpd/lighttpd.conf \
	deploy/lighttpd/ratelimit.lua deploy/lighttpd/coupon-gateway.conf

deploylighttpderrorsdir = $(deploylighttpddir)/errors
dist_deploylighttpderrors_DATA = \
	deploy/lighttpd/errors/400.html deploy/lighttpd/errors/401.html deploy/lighttpd/errors/403.html \
	deploy/lighttpd/errors/404.html deploy/lighttpd/errors/408.html \
	deploy/lighttpd/errors/411.html deploy/lighttpd/errors/413.html \
	deploy/lighttpd/errors/414.html deploy/lighttpd/errors/417.html \
	deploy/lighttpd/errors/431.html deploy/lighttpd/errors/500.html \
	deploy/lighttpd/errors/501.html deploy/lighttpd/errors/502.html \
	deploy/lighttpd/errors/503.html deploy/lighttpd/errors/504.html \
	deploy/lighttpd/errors/505.html

deployprometheusdir = $(deploydir)/prometheus
dist_deployprometheus_DATA = deploy/prometheus/prometheus.yml deploy/prometheus/alerts.yml

deploygrafanadir = $(deploydir)/grafana
dist_deploygrafana_DATA = deploy/grafana/coupon-dashboard.json

deployspawnfcgidir = $(deploydir)/spawn-fcgi
dist_deployspawnfcgi_DATA = deploy/spawn-fcgi/README.md
dist_deployspawnfcgi_SCRIPTS = deploy/spawn-fcgi/coupon-fcgi.spawn

deploysystemddir = $(deploydir)/systemd
dist_deploysystemd_DATA = deploy/systemd/coupon-fcgi.service \
	deploy/systemd/coupon-fcgi-spawn.service deploy/systemd/coupon-consumer.service \
	deploy/systemd/coupon.sysusers.conf

# The operator console (static files served at /console/ by nginx and lighttpd). The
# chart library comes from the npm registry, pinned by package-lock.json: `npm ci` in
# the build folder, then its built file is copied beside the console's own files under
# a name that carries its version (served with a long cache lifetime). The result,
# $(builddir)/console-site/, is what scripts/lib/web.sh serves; `make install` puts it
# in $(pkgdatadir)/deploy/console/. (A folder name of its own: a target under
# deploy/console/ would resolve to the source file through VPATH.)
CONSOLE_UPLOT_VERSION = 1.6.32
CONSOLE_VENDOR = console-site/vendor/uPlot-$(CONSOLE_UPLOT_VERSION).iife.min.js \
	console-site/vendor/uPlot-$(CONSOLE_UPLOT_VERSION).min.css
CONSOLE_FILES = index.html console.js console.css
CONSOLE_STAGED = console-site/index.html console-site/console.js console-site/console.css
CONSOLE_NPM_STAMP = console-site/npm/node_modules/.package-lock.json
EXTRA_DIST += deploy/console/package.json deploy/console/package-lock.json \
	deploy/console/index.html deploy/console/console.js deploy/console/console.css

deployconsoledir = $(deploydir)/console
deployconsole_DATA = $(CONSOLE_STAGED)
deployconsolevendordir = $(deployconsoledir)/vendor
deployconsolevendor_DATA = $(CONSOLE_VENDOR)

$(CONSOLE_NPM_STAMP): $(srcdir)/deploy/console/package.json \
		$(srcdir)/deploy/console/package-lock.json
	$(AM_V_GEN)$(MKDIR_P) console-site/npm && \
	cp $(srcdir)/deploy/console/package.json $(srcdir)/deploy/console/package-lock.json \
	  console-site/npm/ && \
	(cd console-site/npm && $(NPM) ci --no-audit --no-fund --loglevel=error) && \
	grep -q '"version": "$(CONSOLE_UPLOT_VERSION)"' \
	  console-site/npm/node_modules/uplot/package.json && \
	touch $@

console-site/vendor/uPlot-$(CONSOLE_UPLOT_VERSION).iife.min.js: $(CONSOLE_NPM_STAMP)
	$(AM_V_GEN)$(MKDIR_P) console-site/vendor && \
	cp console-site/npm/node_modules/uplot/dist/uPlot.iife.min.js $@
console-site/vendor/uPlot-$(CONSOLE_UPLOT_VERSION).min.css: $(CONSOLE_NPM_STAMP)
	$(AM_V_GEN)$(MKDIR_P) console-site/vendor && \
	cp console-site/npm/node_modules/uplot/dist/uPlot.min.css $@

console-site/index.html: $(srcdir)/deploy/console/index.html
	$(AM_V_GEN)$(MKDIR_P) console-site && cp $(srcdir)/deploy/console/index.html $@
console-site/console.js: $(srcdir)/deploy/console/console.js
	$(AM_V_GEN)$(MKDIR_P) console-site && cp $(srcdir)/deploy/console/console.js $@
console-site/console.css: $(srcdir)/deploy/console/console.css
	$(AM_V_GEN)$(MKDIR_P) console-site && cp $(srcdir)/deploy/console/console.css $@

all-local: $(CONSOLE_VENDOR) $(CONSOLE_STAGED)
clean-local: clean-console
clean-console:
	-rm -rf console-site
.PHONY: clean-console

# The default configuration: $(sysconfdir)/coupon/coupon.conf, a copy of
# coupon.conf.example. An existing file is an operator's configuration: `make install`
# keeps it (and says so), `make uninstall` removes the file only while it is still the
# unmodified example. (A plain couponconf_DATA would overwrite it on every install.)
couponconfdir = $(sysconfdir)/coupon

install-data-local: install-coupon-conf
uninstall-local: uninstall-coupon-conf

install-coupon-conf:
	$(MKDIR_P) '$(DESTDIR)$(couponconfdir)'
	@if test -f '$(DESTDIR)$(couponconfdir)/coupon.conf'; then \
	  echo "keeping existing $(DESTDIR)$(couponconfdir)/coupon.conf"; \
	else \
	  echo " $(INSTALL_DATA) coupon.conf.example '$(DESTDIR)$(couponconfdir)/coupon.conf'"; \
	  $(INSTALL_DATA) '$(srcdir)/deploy/coupon.conf.example' \
	    '$(DESTDIR)$(couponconfdir)/coupon.conf'; \
	fi

uninstall-coupon-conf:
	@if test -f '$(DESTDIR)$(couponconfdir)/coupon.conf' && \
	  cmp -s '$(srcdir)/deploy/coupon.conf.example' '$(DESTDIR)$(couponconfdir)/coupon.conf'; \
	then \
	  echo " rm -f '$(DESTDIR)$(couponconfdir)/coupon.conf'"; \
	  rm -f '$(DESTDIR)$(couponconfdir)/coupon.conf'; \
	fi

.PHONY: install-coupon-conf uninstall-coupon-conf
