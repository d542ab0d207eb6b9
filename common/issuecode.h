/*
 * issuecode.h - the code of an issuance: 12 human-typable characters that
 * identify one (coupon, user, sequence) and that nobody can derive without the
 * deployment's code_secret.
 *
 *   code = Crockford base32 of the first 60 bits of
 *          HMAC-SHA256(code_secret, "cpn-code-v1" || be64(couponId) || be64(userId)
 *                                   || be64(sequence))
 *
 * Both coupon-fcgi (the 201 of the issue path, reads of issuances not yet in
 * MariaDB) and coupon-consumer (which stores it with the row) compute it, so the
 * two always agree for one secret. 60 bits: a guess hits one of N live codes
 * with probability N / 2^60; two issuances share a code with probability about
 * N^2 / 2^61 (10^7 issuances: 4 in 10^5), which is why MariaDB indexes the
 * code without a UNIQUE constraint and redemption by code refuses an ambiguous
 * one instead of letting a collision stop the consumer (see docs/ARCHITECTURE.md).
 *
 * Typed codes are normalised the Crockford way before use: case-insensitive,
 * O read as 0, I and L as 1, hyphens ignored; U and anything else is invalid.
 * issuecode_equal() compares in constant time. Pure functions; thread-safe.
 */
#ifndef COUPON_ISSUECODE_H
#define COUPON_ISSUECODE_H

#include <stddef.h>
#include <stdint.h>

#include "cp_limits.h"

/* Writes the code and a NUL into out. CP_ERR_INVALID for an empty secret. */
int issuecode_compute(const char *secret, size_t secret_len, int64_t coupon_id, int64_t user_id,
                      int64_t sequence, char out[CP_ISSUE_CODE_CHARS + 1]);

/* Normalises a typed code (at most CP_ISSUE_CODE_INPUT_MAX bytes) into out;
 * CP_ERR_INVALID unless it holds exactly CP_ISSUE_CODE_CHARS symbols. */
int issuecode_normalise(const char *in, size_t len, char out[CP_ISSUE_CODE_CHARS + 1]);

/* 1 when the two codes are equal; the time taken does not depend on where they differ. */
int issuecode_equal(const char a[CP_ISSUE_CODE_CHARS], const char b[CP_ISSUE_CODE_CHARS]);

/* Crockford base32 of the low 5*n_chars bits of `bits`, most significant symbol first
 * (n_chars <= 12); out holds n_chars + 1 bytes. */
void issuecode_base32(uint64_t bits, size_t n_chars, char *out);

#endif
