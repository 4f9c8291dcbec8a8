/* fares.c — the fare rules behind POST /fares/estimate (customers) and POST
 * /internal/fares/quote (user-service); routes.c speaks HTTP for them.
 *
 * The arithmetic is fare_model.c; this file adds the live inputs (demand counters and online
 * supply for the surge, from Redis) and the quotes, so that the price the customer saw is the
 * price of the order they place within ANTAR_QUOTE_TTL_S.
 *
 * A quote is stateless: core stores nothing per estimate (an estimate is cheap to ask for, so
 * storing each one let any customer fill Redis). quote_id is
 *   base64url_nopad(payload[16] || tag[32])                                   = 64 chars
 *   payload = expires_s u32 | price u32 | distance_m u32 | duration_s u24 | surge_tenths u8
 *   tag     = crypto_auth (HMAC-SHA512-256) of payload || user_id i64 || vehicle u8 ||
 *             pickup_lat, pickup_lng, dropoff_lat, dropoff_lng as i64 round(deg × 1e7)
 * (big-endian), under a key derived from ANTAR_CSRF_KEY for quotes only. The user, vehicle and
 * trip are not carried: the order supplies them and the tag only verifies when they are the
 * quote's, so the id stays within user-service's 64-character limit with the full tag. */
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "antar/config.h"
#include "antar/log.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "dispatch.h"
#include "dispatch_store.h"
#include "fare_model.h"

/* Two points closer than this are "the same place": there is no trip to price. */
#define FARE_MIN_TRIP_M 1.0
/* Quoted coordinates must match the order's on this grid (1e-7°, ≈ 1 cm). */
#define QUOTE_COORD_SCALE 1e7
#define QUOTE_PAYLOAD_LEN 16
#define QUOTE_RAW_LEN (QUOTE_PAYLOAD_LEN + crypto_auth_BYTES)
#define QUOTE_ID_LEN 64 /* base64url of QUOTE_RAW_LEN = 48 bytes, no padding */
/* The message of the quote key's derivation: a different key from the CSRF one it comes from. */
#define QUOTE_KEY_CONTEXT "antar/core/quote-id/v1"

/* Surge from the pickup cell's demand over 10 minutes against the available drivers of the
 * type around the pickup (fare_model.h has the formula). count_demand adds this request to the
 * demand first: an estimate is itself a sign of demand. One Redis round trip for all three,
 * and an estimate's only one: its quote is signed, not stored. */
static antar_err_t fare_price(const core_trip_t *t, bool count_demand, core_fare_t *out)
{
    const core_settings_t *s = core_settings();
    long long now = antar_now_ms(), demand = 0, supply = 0;
    char cell[48];
    core_fare_cell(t->pickup_lat, t->pickup_lng, cell, sizeof cell);
    antar_err_t err = core_store_fare_inputs(cell, now, count_demand, t->vehicle_type,
                                             t->pickup_lat, t->pickup_lng, s->radius_m,
                                             now - s->presence_ttl_s * 1000, &demand, &supply);
    if (err != ANTAR_OK)
        return err;
    *out = core_fare_compute((core_vehicle_t)core_vehicle_parse(t->vehicle_type), t->pickup_lat,
                             t->pickup_lng, t->dropoff_lat, t->dropoff_lng,
                             core_fare_surge_tenths(demand, supply));
    return ANTAR_OK;
}

/* The fare as the API shows it. quote_id NULL / expires_ms 0 → null. */
static json_t *fare_json(const char *quote_id, const char *vt, const core_fare_t *f,
                         long long expires_ms)
{
    json_t *o = json_pack("{so ss sI sI sI ss sf}", "quote_id",
                          quote_id ? json_string(quote_id) : json_null(), "vehicle_type", vt,
                          "distance_m", (json_int_t)f->distance_m, "duration_s",
                          (json_int_t)f->duration_s, "price", (json_int_t)f->price, "currency",
                          "IDR", "surge_multiplier", f->surge_tenths / 10.0);
    if (!o)
        return NULL;
    if (expires_ms > 0) {
        char ts[32];
        antar_time_rfc3339(expires_ms, ts);
        json_object_set_new(o, "expires_at", json_string(ts));
    } else
        json_object_set_new(o, "expires_at", json_null());
    return o;
}

static bool same_place(const core_trip_t *t)
{
    return core_fare_haversine_m(t->pickup_lat, t->pickup_lng, t->dropoff_lat, t->dropoff_lng) <
           FARE_MIN_TRIP_M;
}

/* Pickup and dropoff closer than FARE_MIN_TRIP_M: there is no trip to price. */
static antar_err_t check_trip(const core_trip_t *t, core_why_t *why)
{
    if (!same_place(t))
        return ANTAR_OK;
    why->field = "dropoff_lat";
    snprintf(why->message, sizeof why->message, "%s",
             "dropoff must be a different place from pickup");
    return ANTAR_E_INVALID_FIELD;
}

/* ---- the quote token ---------------------------------------------------------------------- */

static pthread_once_t quote_key_once = PTHREAD_ONCE_INIT;
static unsigned char quote_key[crypto_auth_KEYBYTES];
static bool quote_key_ok;

/* The quote key: BLAKE2b keyed with the CSRF key over QUOTE_KEY_CONTEXT. Without a usable
 * CSRF key there is no quote key: estimates carry quote_id null and no id is honoured. */
static void quote_key_load(void)
{
    unsigned char master[64];
    size_t len = 0;
    const antar_config_t *cfg = antar_config();
    if (sodium_init() < 0 || !cfg ||
        sodium_hex2bin(master, sizeof master, cfg->csrf_key_hex, strlen(cfg->csrf_key_hex), NULL,
                       &len, NULL) != 0 ||
        len < 16) {
        antar_logf("error", "ANTAR_CSRF_KEY unusable: fare quotes are disabled");
        sodium_memzero(master, sizeof master);
        return;
    }
    quote_key_ok =
        crypto_generichash(quote_key, sizeof quote_key, (const unsigned char *)QUOTE_KEY_CONTEXT,
                           strlen(QUOTE_KEY_CONTEXT), master, len) == 0;
    sodium_memzero(master, sizeof master);
}

static bool quote_key_ready(void)
{
    pthread_once(&quote_key_once, quote_key_load);
    return quote_key_ok;
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

/* Sign the quote into out (QUOTE_ID_LEN + 1). false when a value does not fit its field
 * (no real trip does) or there is no key: the fare then goes out without a quote. */
static bool quote_sign(long long user_id, const core_trip_t *t, const core_fare_t *f,
                       long long expires_s, char out[QUOTE_ID_LEN + 1])
{
    if (!quote_key_ready() || expires_s <= 0 || expires_s > UINT32_MAX || f->price < 0 ||
        f->price > UINT32_MAX || f->distance_m < 0 || f->distance_m > UINT32_MAX ||
        f->duration_s < 0 || f->duration_s > 0xffffff || f->surge_tenths < 0 ||
        f->surge_tenths > 0xff)
        return false;
    unsigned char raw[QUOTE_RAW_LEN], msg[QUOTE_MSG_LEN];
    put_be(raw, (uint64_t)expires_s, 4);
    put_be(raw + 4, (uint64_t)f->price, 4);
    put_be(raw + 8, (uint64_t)f->distance_m, 4);
    put_be(raw + 12, (uint64_t)f->duration_s, 3);
    raw[15] = (unsigned char)f->surge_tenths;
    quote_message(msg, raw, user_id, t);
    crypto_auth(raw + QUOTE_PAYLOAD_LEN, msg, sizeof msg, quote_key);
    sodium_bin2base64(out, QUOTE_ID_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return true;
}

/* The fare of quote_id when it is this user's, for this trip and vehicle, and not expired
 * (a tag that does not verify covers all but the last); false for anything else, malformed
 * ids included. */
static bool quote_open(const char *quote_id, long long user_id, const core_trip_t *t,
                       long long now_ms, core_fare_t *f, long long *expires_ms)
{
    unsigned char raw[QUOTE_RAW_LEN], msg[QUOTE_MSG_LEN];
    size_t len = 0;
    if (!quote_key_ready() || strlen(quote_id) != QUOTE_ID_LEN ||
        sodium_base642bin(raw, sizeof raw, quote_id, QUOTE_ID_LEN, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        len != sizeof raw)
        return false;
    quote_message(msg, raw, user_id, t);
    if (crypto_auth_verify(raw + QUOTE_PAYLOAD_LEN, msg, sizeof msg, quote_key) != 0)
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

/* ---- the routes' work --------------------------------------------------------------------- */

antar_err_t core_fares_estimate(long long user_id, const core_trip_t *t, json_t **out,
                                core_why_t *why)
{
    antar_err_t err = check_trip(t, why);
    if (err != ANTAR_OK)
        return err;
    core_fare_t f;
    if ((err = fare_price(t, true, &f)) != ANTAR_OK)
        return err;
    /* Whole seconds: the token carries expires_s. */
    long long expires_s = antar_now_ms() / 1000 + core_settings()->quote_ttl_s;
    char quote_id[QUOTE_ID_LEN + 1];
    bool signed_ok = quote_sign(user_id, t, &f, expires_s, quote_id);
    json_t *res = fare_json(signed_ok ? quote_id : NULL, t->vehicle_type, &f,
                            signed_ok ? expires_s * 1000 : 0);
    if (!res)
        return ANTAR_E_NOMEM;
    *out = res;
    return ANTAR_OK;
}

antar_err_t core_fares_quote(long long user_id, const char *quote_id, const core_trip_t *t,
                             json_t **out, core_why_t *why)
{
    antar_err_t err = check_trip(t, why);
    if (err != ANTAR_OK)
        return err;
    json_t *res = NULL;
    core_fare_t f;
    if (quote_id) {
        long long expires_ms = 0;
        if (quote_open(quote_id, user_id, t, antar_now_ms(), &f, &expires_ms)) {
            if (!(res = fare_json(quote_id, t->vehicle_type, &f, expires_ms)))
                return ANTAR_E_NOMEM;
            json_object_set_new(res, "quoted", json_true());
            *out = res;
            return ANTAR_OK;
        }
        /* Malformed, tampered, expired, someone else's or for another trip: the order gets
         * today's price, never the stale or borrowed one. */
        antar_log_json("info", "quote_not_honoured",
                       json_pack("{sI}", "user_id", (json_int_t)user_id));
    }
    if ((err = fare_price(t, false, &f)) != ANTAR_OK)
        return err;
    if (!(res = fare_json(NULL, t->vehicle_type, &f, 0)))
        return ANTAR_E_NOMEM;
    json_object_set_new(res, "quoted", json_false());
    *out = res;
    return ANTAR_OK;
}
