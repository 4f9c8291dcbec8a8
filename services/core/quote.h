/* quote.h — the fare quote token of core-service (fares.c explains the format): pure functions
 * of a key, a fare and a trip, so that the unit tests and the fuzzer drive them without Redis. */
#ifndef CORE_QUOTE_H
#define CORE_QUOTE_H

#include <stdbool.h>
#include <sodium.h>

#include "dispatch.h"
#include "fare_model.h"

#define CORE_QUOTE_ID_LEN 64 /* base64url of the 48 raw bytes, no padding */
#define CORE_QUOTE_KEY_LEN crypto_auth_KEYBYTES

/* The quote key from the CSRF key's hex (at least 16 bytes of it): BLAKE2b keyed with it over a
 * fixed context, so the two keys differ. false when hex is unusable. */
bool core_quote_key_derive(const char *csrf_key_hex, unsigned char key[CORE_QUOTE_KEY_LEN]);
/* Sign fare f of user_id's trip t until expires_s (unix seconds) into out. false when a value
 * does not fit its field (no real trip does): the fare then goes out without a quote. */
bool core_quote_sign(const unsigned char key[CORE_QUOTE_KEY_LEN], long long user_id,
                     const core_trip_t *t, const core_fare_t *f, long long expires_s,
                     char out[CORE_QUOTE_ID_LEN + 1]);
/* The fare of quote_id (any C string) when it is user_id's, for trip t, and not expired at now_ms;
 * false for anything else, malformed ids included. Outputs written only on success. */
bool core_quote_open(const unsigned char key[CORE_QUOTE_KEY_LEN], const char *quote_id,
                     long long user_id, const core_trip_t *t, long long now_ms, core_fare_t *f,
                     long long *expires_ms);

#endif
