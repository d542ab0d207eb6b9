# coupon-fcgi: the FastCGI program (master + pre-forked workers). Everything but
# main.c is a library so unit tests and fuzz targets link the same code.
noinst_LIBRARIES += fcgi-app/libfcgiapp.a
fcgi_app_libfcgiapp_a_SOURCES = \
	fcgi-app/worker.h fcgi-app/worker.c \
	fcgi-app/defer.h fcgi-app/defer.c \
	fcgi-app/app.h fcgi-app/app.c \
	fcgi-app/http.h fcgi-app/http.c \
	fcgi-app/problem.h fcgi-app/problem.c \
	fcgi-app/router.h fcgi-app/router.c \
	fcgi-app/auth.h fcgi-app/auth.c \
	fcgi-app/ratelimit.h fcgi-app/ratelimit.c \
	fcgi-app/stock.h fcgi-app/stock.c \
	fcgi-app/handlers.h fcgi-app/health.c \
	fcgi-app/issue.h fcgi-app/issue.c \
	fcgi-app/issue_decide.h fcgi-app/issue_decide.c \
	fcgi-app/script.h fcgi-app/script.c \
	fcgi-app/producer.h fcgi-app/producer.c \
	fcgi-app/settle.h fcgi-app/settle.c \
	fcgi-app/metrics.h fcgi-app/metrics.c \
	fcgi-app/series.h fcgi-app/series.c \
	fcgi-app/coupon_store.h fcgi-app/coupon_store.c \
	fcgi-app/coupon_doc.h fcgi-app/coupon_doc.c \
	fcgi-app/invalidate.h fcgi-app/invalidate.c \
	fcgi-app/read.c fcgi-app/admin.c fcgi-app/console_api.c \
	fcgi-app/redeem.h fcgi-app/redeem.c \
	fcgi-app/redeem_body.h fcgi-app/redeem_body.c \
	fcgi-app/checkout.h fcgi-app/checkout.c \
	fcgi-app/redemption_store.h fcgi-app/redemption_store.c \
	fcgi-app/validate.h fcgi-app/validate.c \
	fcgi-app/webhooks_api.c
fcgi_app_libfcgiapp_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/fcgi-app $(FCGI_CFLAGS)

FCGIAPP_LIBS = fcgi-app/libfcgiapp.a cache/libcache.a common/libcommon.a lua/libluascripts.a \
	$(FCGI_LIBS) $(HIREDIS_LIBS) $(RDKAFKA_LIBS) $(MARIADB_LIBS) $(CJOSE_LIBS) $(LIBCRYPTO_LIBS) \
	$(JSONC_LIBS) -lm -lpthread

bin_PROGRAMS += fcgi-app/coupon-fcgi
fcgi_app_coupon_fcgi_SOURCES = fcgi-app/main.c
fcgi_app_coupon_fcgi_CPPFLAGS = $(fcgi_app_libfcgiapp_a_CPPFLAGS)
fcgi_app_coupon_fcgi_LDADD = $(FCGIAPP_LIBS)
