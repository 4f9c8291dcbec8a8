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
 * quote's, so the id stays within user-service's 64-character limit with the full tag. The token
 * itself is quote.c; this file keeps its key and decides when a quote is honoured. */
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "antar/config.h"
#include "antar/log.h"
#include "antar/trace.h"
#include "ai.h"
#include "antar/util.h"
#include "dispatch.h"
#include "dispatch_store.h"
#include "fare_model.h"
#include "quote.h"

/* Two points closer than this are "the same place": there is no trip to price. */
#define FARE_MIN_TRIP_M 1.0

/* Surge from the pickup cell's demand over 10 minutes against the available drivers of the
 * type around the pickup (fare_model.h has the formula). count_demand adds this request to the
 * demand first: an estimate is itself a sign of demand. One Redis round trip for all three,
 * and an estimate's only one: its quote is signed, not stored.
 *
 * With the models (ai.c, docs/ai.md): duration_s is the learned ETA, the surge weighs the
 * forecast of the next 15 minutes' orders in the pickup's area against the same supply, and
 * *pickup_eta_s (may be NULL; -1 when no driver is free nearby) is the nearest free driver's
 * way to the pickup. The price keeps the tariff's own duration, so that a better ETA changes
 * what the customer is told, not what they pay. */
static antar_err_t fare_price(long long user_id, const core_trip_t *t, bool count_demand,
                              core_fare_t *out, long long *pickup_eta_s)
{
    const core_settings_t *s = core_settings();
    long long now = antar_now_ms(), demand = 0, supply = 0;
    char cell[48];
    double near_lat = NAN, near_lng = NAN;
    core_fare_cell(t->pickup_lat, t->pickup_lng, cell, sizeof cell);
    antar_err_t err = core_store_fare_inputs(
        cell, user_id, now, count_demand, t->vehicle_type, t->pickup_lat, t->pickup_lng,
        s->radius_m, now - s->presence_ttl_s * 1000, &demand, &supply, &near_lat, &near_lng);
    if (err != ANTAR_OK)
        return err;
    core_vehicle_t v = (core_vehicle_t)core_vehicle_parse(t->vehicle_type);
    bool car = v == CORE_VEHICLE_CAR;
    int surge = core_fare_surge_tenths(demand, supply);
    double t0 = core_ai_now_s();
    bool ai_used = false;
    double forecast = 0;
    if (core_ai_demand(t->pickup_lat, t->pickup_lng, now, &forecast)) {
        surge = core_fare_surge_tenths(llround(forecast), supply);
        ai_used = true;
    }
    *out =
        core_fare_compute(v, t->pickup_lat, t->pickup_lng, t->dropoff_lat, t->dropoff_lng, surge);
    /* The trip, and the nearest free driver's way to the pickup, in one prediction. */
    bool near = pickup_eta_s && isfinite(near_lat) && isfinite(near_lng);
    const double legs[2][4] = {{t->pickup_lat, t->pickup_lng, t->dropoff_lat, t->dropoff_lng},
                               {near_lat, near_lng, t->pickup_lat, t->pickup_lng}};
    double eta[2];
    bool model = core_ai_eta_legs(legs, near ? 2 : 1, car, now, eta);
    if (model) {
        out->duration_s = (long long)ceil(eta[0]);
        ai_used = true;
    }
    if (pickup_eta_s)
        *pickup_eta_s = !near   ? -1
                        : model ? (long long)ceil(eta[1])
                                : core_fare_compute(v, near_lat, near_lng, t->pickup_lat,
                                                    t->pickup_lng, CORE_SURGE_MIN_TENTHS)
                                      .duration_s;
    if (ai_used)
        core_ai_latency("estimate", core_ai_now_s() - t0);
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
static antar_err_t check_trip(const core_trip_t *t, antar_outcome_t *why)
{
    if (!same_place(t))
        return ANTAR_OK;
    return antar_outcome_fail(why, ANTAR_E_INVALID_FIELD, "dropoff_lat",
                              "dropoff must be a different place from pickup");
}

/* ---- the quote key ------------------------------------------------------------------------ */

static pthread_once_t quote_key_once = PTHREAD_ONCE_INIT;
static unsigned char quote_key[CORE_QUOTE_KEY_LEN];
static bool quote_key_ok;

/* Without a usable CSRF key there is no quote key: estimates carry quote_id null and no id is
 * honoured. */
static void quote_key_load(void)
{
    const antar_config_t *cfg = antar_config();
    quote_key_ok = sodium_init() >= 0 && cfg && core_quote_key_derive(cfg->csrf_key_hex, quote_key);
    if (!quote_key_ok)
        antar_logf("error", "ANTAR_CSRF_KEY unusable: fare quotes are disabled");
}

static bool quote_key_ready(void)
{
    pthread_once(&quote_key_once, quote_key_load);
    return quote_key_ok;
}

static bool quote_sign(long long user_id, const core_trip_t *t, const core_fare_t *f,
                       long long expires_s, char out[CORE_QUOTE_ID_LEN + 1])
{
    return quote_key_ready() && core_quote_sign(quote_key, user_id, t, f, expires_s, out);
}

static bool quote_open(const char *quote_id, long long user_id, const core_trip_t *t,
                       long long now_ms, core_fare_t *f, long long *expires_ms)
{
    return quote_key_ready() &&
           core_quote_open(quote_key, quote_id, user_id, t, now_ms, f, expires_ms);
}

/* ---- the routes' work --------------------------------------------------------------------- */

antar_err_t core_fares_estimate(long long user_id, const core_trip_t *t, json_t **out,
                                antar_outcome_t *why)
{
    antar_err_t err = check_trip(t, why);
    if (err != ANTAR_OK)
        return err;
    core_fare_t f;
    long long pickup_eta_s = -1;
    if ((err = fare_price(user_id, t, true, &f, &pickup_eta_s)) != ANTAR_OK)
        return err;
    /* Whole seconds: the token carries expires_s. */
    long long expires_s = antar_now_ms() / 1000 + core_settings()->quote_ttl_s;
    char quote_id[CORE_QUOTE_ID_LEN + 1];
    bool signed_ok = quote_sign(user_id, t, &f, expires_s, quote_id);
    json_t *res = fare_json(signed_ok ? quote_id : NULL, t->vehicle_type, &f,
                            signed_ok ? expires_s * 1000 : 0);
    if (!res)
        return ANTAR_E_NOMEM;
    /* The nearest free driver's way to the pickup; null when nobody is free nearby. */
    json_object_set_new(res, "pickup_eta_s",
                        pickup_eta_s >= 0 ? json_integer(pickup_eta_s) : json_null());
    *out = res;
    return ANTAR_OK;
}

antar_err_t core_fares_quote(long long user_id, const char *quote_id, const core_trip_t *t,
                             json_t **out, antar_outcome_t *why)
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
    if ((err = fare_price(user_id, t, false, &f, NULL)) != ANTAR_OK)
        return err;
    if (!(res = fare_json(NULL, t->vehicle_type, &f, 0)))
        return ANTAR_E_NOMEM;
    json_object_set_new(res, "quoted", json_false());
    *out = res;
    return ANTAR_OK;
}
