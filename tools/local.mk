# tools: developer and test programs that are built but not installed.
# coupon-token mints the bearer JWTs coupon-fcgi verifies (dev keys, JWKS, valid and
# deliberately broken tokens) for scripts/token, the integration tests and the benchmark.
noinst_PROGRAMS += tools/coupon-token
tools_coupon_token_SOURCES = tools/coupon-token.c
tools_coupon_token_CFLAGS = $(AM_CFLAGS) $(LIBCRYPTO_CFLAGS)
tools_coupon_token_LDADD = $(JSONC_LIBS) $(LIBCRYPTO_LIBS) -lpthread
