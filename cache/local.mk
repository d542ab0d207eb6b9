# cache: the in-process LRU (L1) and the Redis cache-aside layer (L2), linked by
# coupon-fcgi (and by anything else that wants them); knows nothing about coupons.
noinst_LIBRARIES += cache/libcache.a
cache_libcache_a_SOURCES = cache/lru.h cache/lru.c cache/l2.h cache/l2.c
