# deploy: web server, spawn-fcgi and systemd files, installed as examples under
# $(pkgdatadir)/deploy/ (they carry placeholders or fixed production paths; see
# deploy/README.md), and the default configuration file.
deploydir = $(pkgdatadir)/deploy
dist_deploy_DATA = deploy/README.md deploy/coupon.conf.example

deploynginxdir = $(deploydir)/nginx
dist_deploynginx_DATA = deploy/nginx/coupon.conf deploy/nginx/coupon-http.conf

deploylighttpddir = $(deploydir)/lighttpd
dist_deploylighttpd_DATA = deploy/lighttpd/coupon.conf deploy/lighttpd/lighttpd.conf \
	deploy/lighttpd/ratelimit.lua

deploylighttpderrorsdir = $(deploylighttpddir)/errors
dist_deploylighttpderrors_DATA = \
	deploy/lighttpd/errors/400.html deploy/lighttpd/errors/403.html \
	deploy/lighttpd/errors/404.html deploy/lighttpd/errors/408.html \
	deploy/lighttpd/errors/411.html deploy/lighttpd/errors/413.html \
	deploy/lighttpd/errors/414.html deploy/lighttpd/errors/417.html \
	deploy/lighttpd/errors/431.html deploy/lighttpd/errors/500.html \
	deploy/lighttpd/errors/501.html deploy/lighttpd/errors/502.html \
	deploy/lighttpd/errors/503.html deploy/lighttpd/errors/504.html \
	deploy/lighttpd/errors/505.html

deployspawnfcgidir = $(deploydir)/spawn-fcgi
dist_deployspawnfcgi_DATA = deploy/spawn-fcgi/README.md
dist_deployspawnfcgi_SCRIPTS = deploy/spawn-fcgi/coupon-fcgi.spawn

deploysystemddir = $(deploydir)/systemd
dist_deploysystemd_DATA = deploy/systemd/coupon-fcgi.service \
	deploy/systemd/coupon-fcgi-spawn.service deploy/systemd/coupon-consumer.service \
	deploy/systemd/coupon.sysusers.conf

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
