/* antar/password.h — Argon2id password hashing (libsodium crypto_pwhash_str), with a bound on
 * how many hashes run at once so that a burst of sign-ups or logins cannot exhaust memory or
 * starve other requests (ANTAR_ARGON2_MAX_CONCURRENT, default 2; the rest wait in line).
 * Limits: ANTAR_ARGON2_OPSLIMIT / ANTAR_ARGON2_MEMLIMIT, default libsodium INTERACTIVE
 * (2 passes, 64 MiB). */
#ifndef ANTAR_PASSWORD_H
#define ANTAR_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "antar/error.h"

/* The encoded hash is at most this long, NUL included. */
#define ANTAR_PASSWORD_HASH_MAX 128

/* Hash password into out (ANTAR_PASSWORD_HASH_MAX bytes). ANTAR_OK, ANTAR_E_NOMEM, or
 * ANTAR_E_UNAVAILABLE when every hashing slot is taken and the line for one is full or was
 * waited in for ANTAR_ARGON2_MAX_WAIT_MS (ANTAR_ARGON2_MAX_QUEUE waiters at most). */
antar_err_t antar_password_hash(const char *password, char out[ANTAR_PASSWORD_HASH_MAX]);
/* true when password matches hash (constant time inside libsodium). */
bool antar_password_verify(const char *hash, const char *password);
/* Spend the time of one verification without a hash, so that an unknown account answers as
 * slowly as a wrong password (no user enumeration by timing). */
void antar_password_dummy_verify(const char *password);
/* The last step of every credential check: true when password matches hash_or_null, the stored
 * hash of the account found, or NULL when no account was found. With NULL (or a stored value that
 * is not an Argon2id hash) it spends one dummy verification and returns false, so that "no such
 * account" and "wrong password" take the same time and look the same to the caller. A NULL
 * password never matches. */
bool antar_password_check(const char *hash_or_null, const char *password);
/* true when the last verify/check/hash on this thread did not run because no hashing slot could
 * be had in time (the false it returned means "busy", not "wrong password"). */
bool antar_password_busy(void);

#endif
