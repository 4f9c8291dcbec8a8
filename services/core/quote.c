/* quote.c — the fare quote token (format in fares.c): sign and open, given the key. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "antar/util.h"
#include "quote.h"

/* Quoted coordinates must match the order's on this grid (1e-7°, ≈ 1 cm). */
#define QUOTE_COORD_SCALE 1e7
#define QUOTE_PAYLOAD_LEN 16
#define QUOTE_RAW_LEN (QUOTE_PAYLOAD_LEN + crypto_auth_BYTES)
/* The message of the quote key's derivation: a different key from the CSRF one it comes from. */
#define QUOTE_KEY_CONTEXT "antar/core/quote-id/v1"

bool core_quote_key_derive(const char *csrf_key_hex, unsigned char key[CORE_QUOTE_KEY_LEN])
{
    unsigned char master[64];
    size_t len = 0;
    bool ok = csrf_key_hex &&
              sodium_hex2bin(master, sizeof master, csrf_key_hex, strlen(csrf_key_hex), NULL, &len,
                             NULL) == 0 &&
              len >= 16 &&
              crypto_generichash(key, CORE_QUOTE_KEY_LEN, (const unsigned char *)QUOTE_KEY_CONTEXT,
                                 strlen(QUOTE_KEY_CONTEXT), master, len) == 0;
    sodium_memzero(master, sizeof master);
    return ok;
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* What the tag covers besides the payload: the user, the vehicle and the trip on the grid. */
#define QUOTE_MSG_LEN (QUOTE_PAYLOAD_LEN + 8 + 1 + 4 * 8)
static void quote_message(unsigned char msg[QUOTE_MSG_LEN], const unsigned char *payload,
                          long long user_id, const core_trip_t *t)
{
    memcpy(msg, payload, QUOTE_PAYLOAD_LEN);
    unsigned char *p = msg + QUOTE_PAYLOAD_LEN;
    put_be(p, (uint64_t)user_id, 8);
    p[8] = (unsigned char)core_vehicle_parse(t->vehicle_type);
    p += 9;
    const double c[4] = {t->pickup_lat, t->pickup_lng, t->dropoff_lat, t->dropoff_lng};
    for (int i = 0; i < 4; i++, p += 8)
        put_be(p, (uint64_t)llround(c[i] * QUOTE_COORD_SCALE), 8);
}

bool core_quote_sign(const unsigned char key[CORE_QUOTE_KEY_LEN], long long user_id,
                     const core_trip_t *t, const core_fare_t *f, long long expires_s,
                     char out[CORE_QUOTE_ID_LEN + 1])
{
    if (expires_s <= 0 || expires_s > UINT32_MAX || f->price < 0 || f->price > UINT32_MAX ||
        f->distance_m < 0 || f->distance_m > UINT32_MAX || f->duration_s < 0 ||
        f->duration_s > 0xffffff || f->surge_tenths < 0 || f->surge_tenths > 0xff)
        return false;
    unsigned char raw[QUOTE_RAW_LEN], msg[QUOTE_MSG_LEN];
    put_be(raw, (uint64_t)expires_s, 4);
    put_be(raw + 4, (uint64_t)f->price, 4);
    put_be(raw + 8, (uint64_t)f->distance_m, 4);
    put_be(raw + 12, (uint64_t)f->duration_s, 3);
    raw[15] = (unsigned char)f->surge_tenths;
    quote_message(msg, raw, user_id, t);
    crypto_auth(raw + QUOTE_PAYLOAD_LEN, msg, sizeof msg, key);
    sodium_bin2base64(out, CORE_QUOTE_ID_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return true;
}

/* A tag that does not verify covers everything that can be wrong but the expiry. */
bool core_quote_open(const unsigned char key[CORE_QUOTE_KEY_LEN], const char *quote_id,
                     long long user_id, const core_trip_t *t, long long now_ms, core_fare_t *f,
                     long long *expires_ms)
{
    unsigned char raw[QUOTE_RAW_LEN], msg[QUOTE_MSG_LEN];
    size_t len = 0;
    if (strlen(quote_id) != CORE_QUOTE_ID_LEN ||
        antar_b64url_decode(quote_id, CORE_QUOTE_ID_LEN, raw, sizeof raw, &len) != 0 ||
        len != sizeof raw)
        return false;
    quote_message(msg, raw, user_id, t);
    if (crypto_auth_verify(raw + QUOTE_PAYLOAD_LEN, msg, sizeof msg, key) != 0)
        return false;
    long long exp = (long long)get_be(raw, 4) * 1000;
    if (exp <= now_ms)
        return false;
    *f = (core_fare_t){
        .price = (long long)get_be(raw + 4, 4),
        .distance_m = (long long)get_be(raw + 8, 4),
        .duration_s = (long long)get_be(raw + 12, 3),
        .surge_tenths = raw[15],
    };
    if (f->surge_tenths < CORE_SURGE_MIN_TENTHS || f->surge_tenths > CORE_SURGE_MAX_TENTHS)
        f->surge_tenths = CORE_SURGE_MIN_TENTHS;
    *expires_ms = exp;
    return true;
}
