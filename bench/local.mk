# bench: the load benchmark (scripts/bench). ceiling-fcgi is the trivial FastCGI
# responder measured as the ceiling; it is built with everything else (noinst: never
# installed) so that scripts/bench finds it in the build tree. The wrk scripts, the
# report generator and the README are only distributed; results stay in the source tree.
noinst_PROGRAMS += bench/ceiling-fcgi
bench_ceiling_fcgi_SOURCES = bench/ceiling.c
bench_ceiling_fcgi_CPPFLAGS = $(AM_CPPFLAGS) $(FCGI_CFLAGS)
bench_ceiling_fcgi_LDADD = $(FCGI_LIBS) -lpthread

EXTRA_DIST += \
	bench/README.md \
	bench/report.lua \
	bench/get.lua \
	bench/issue.lua bench/issue-jwt.lua \
	bench/issue-multi.lua \
	bench/redeem.lua \
	bench/reference.lua \
	bench/report.py \
	bench/plot.gp \
	scripts/bench \
	scripts/lib/benchstack.sh
