/* fares.c — the fare rules behind POST /fares/estimate (customers) and POST
 * /internal/fares/quote (user-service); routes.c speaks HTTP for them.
 *
 * The arithmetic is fare_model.c; this file adds the live inputs (demand counters and online
 * supply for the surge, from Redis) and the quotes: an estimate is stored for
 * ANTAR_QUOTE_TTL_S so that the price the customer saw is the price of the order they place. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "antar/log.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "dispatch.h"
#include "dispatch_store.h"
#include "fare_model.h"

/* Two points closer than this are "the same place": there is no trip to price. */
#define FARE_MIN_TRIP_M 1.0
/* Quoted coordinates must match the order's to this precision (≈ 1 cm). */
#define FARE_COORD_EPS 1e-7
#define QUOTE_ID_HEX 32

/* Surge from the pickup cell's demand over 10 minutes against the available drivers of the
 * type around the pickup (fare_model.h has the formula). count_demand adds this request to the
 * demand first: an estimate is itself a sign of demand. One Redis round trip for all three;
 * an estimate's only other one is storing its quote, which needs the price computed here. */
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

antar_err_t core_fares_estimate(long long user_id, const core_trip_t *t, json_t **out,
                                core_why_t *why)
{
    antar_err_t err = check_trip(t, why);
    if (err != ANTAR_OK)
        return err;
    core_fare_t f;
    if ((err = fare_price(t, true, &f)) != ANTAR_OK)
        return err;
    char quote_id[QUOTE_ID_HEX + 1];
    antar_random_hex(quote_id, QUOTE_ID_HEX / 2);
    long long expires_ms = antar_now_ms() + core_settings()->quote_ttl_s * 1000;
    json_t *q = json_pack("{sI sf sf sf sf ss sI sI sI si sI}", "user_id", (json_int_t)user_id,
                          "pickup_lat", t->pickup_lat, "pickup_lng", t->pickup_lng, "dropoff_lat",
                          t->dropoff_lat, "dropoff_lng", t->dropoff_lng, "vehicle_type",
                          t->vehicle_type, "price", (json_int_t)f.price, "distance_m",
                          (json_int_t)f.distance_m, "duration_s", (json_int_t)f.duration_s,
                          "surge_tenths", f.surge_tenths, "expires_ms", (json_int_t)expires_ms);
    if (!q)
        return ANTAR_E_NOMEM;
    err = core_store_quote_put(quote_id, q, core_settings()->quote_ttl_s);
    json_decref(q);
    if (err != ANTAR_OK)
        return err;
    json_t *res = fare_json(quote_id, t->vehicle_type, &f, expires_ms);
    if (!res)
        return ANTAR_E_NOMEM;
    *out = res;
    return ANTAR_OK;
}

static bool near(json_t *q, const char *key, double v)
{
    json_t *x = json_object_get(q, key);
    return json_is_number(x) && fabs(json_number_value(x) - v) <= FARE_COORD_EPS;
}

/* The stored quote when it is this user's, for this trip and vehicle, and not expired. */
static bool quote_matches(json_t *q, long long user_id, const core_trip_t *t, long long now_ms)
{
    json_t *u = json_object_get(q, "user_id"), *vt = json_object_get(q, "vehicle_type"),
           *exp = json_object_get(q, "expires_ms"), *price = json_object_get(q, "price");
    return json_is_integer(u) && json_integer_value(u) == user_id && json_is_string(vt) &&
           strcmp(json_string_value(vt), t->vehicle_type) == 0 && json_is_integer(exp) &&
           json_integer_value(exp) > now_ms && json_is_integer(price) &&
           near(q, "pickup_lat", t->pickup_lat) && near(q, "pickup_lng", t->pickup_lng) &&
           near(q, "dropoff_lat", t->dropoff_lat) && near(q, "dropoff_lng", t->dropoff_lng);
}

static bool quote_id_valid(const char *s)
{
    if (strlen(s) != QUOTE_ID_HEX)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

/* The fare of a stored quote, or NULL when it cannot be honoured. */
static json_t *quoted_fare(const char *quote_id, json_t *q, long long user_id, const core_trip_t *t)
{
    if (!quote_matches(q, user_id, t, antar_now_ms()))
        return NULL;
    core_fare_t f = {
        .distance_m = json_integer_value(json_object_get(q, "distance_m")),
        .duration_s = json_integer_value(json_object_get(q, "duration_s")),
        .price = json_integer_value(json_object_get(q, "price")),
        .surge_tenths = (int)json_integer_value(json_object_get(q, "surge_tenths")),
    };
    if (f.surge_tenths < CORE_SURGE_MIN_TENTHS || f.surge_tenths > CORE_SURGE_MAX_TENTHS)
        f.surge_tenths = CORE_SURGE_MIN_TENTHS;
    return fare_json(quote_id, t->vehicle_type, &f,
                     json_integer_value(json_object_get(q, "expires_ms")));
}

antar_err_t core_fares_quote(long long user_id, const char *quote_id, const core_trip_t *t,
                             json_t **out, core_why_t *why)
{
    antar_err_t err = check_trip(t, why);
    if (err != ANTAR_OK)
        return err;
    json_t *res = NULL;
    if (quote_id && quote_id_valid(quote_id)) {
        json_t *q = NULL;
        err = core_store_quote_get(quote_id, &q);
        if (err != ANTAR_OK && err != ANTAR_E_NOT_FOUND)
            return err;
        if (err == ANTAR_OK) {
            res = quoted_fare(quote_id, q, user_id, t);
            json_decref(q);
        }
        if (res) {
            json_object_set_new(res, "quoted", json_true());
            *out = res;
            return ANTAR_OK;
        }
        /* Unknown, expired, someone else's or for another trip: the order gets today's price,
         * never the stale or borrowed one. */
        antar_log_json("info", "quote_not_honoured",
                       json_pack("{sI}", "user_id", (json_int_t)user_id));
    }
    core_fare_t f;
    if ((err = fare_price(t, false, &f)) != ANTAR_OK)
        return err;
    if (!(res = fare_json(NULL, t->vehicle_type, &f, 0)))
        return ANTAR_E_NOMEM;
    json_object_set_new(res, "quoted", json_false());
    *out = res;
    return ANTAR_OK;
}
