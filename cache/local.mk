# cache: the in-process LRU (L1), the Redis cache-aside layer (L2) and the sold-out
# holder snapshots, linked by coupon-fcgi; no Redis key or HTTP in here.
noinst_LIBRARIES += cache/libcache.a
cache_libcache_a_SOURCES = cache/lru.h cache/lru.c cache/l2.h cache/l2.c \
	cache/holders.h cache/holders.c
