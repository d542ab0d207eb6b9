/*
 * first.h - included first by every .c file of the project.
 *
 * It pulls in autoconf's config.h and the feature-test macros every module
 * relies on (POSIX threads, clock_gettime, getrandom, strnlen, ...), so that
 * no file depends on include order for the meaning of a libc prototype.
 */
#ifndef COUPON_FIRST_H
#define COUPON_FIRST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#endif
