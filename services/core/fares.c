/* fares.c — POST /fares/estimate (customers) and POST /internal/fares/quote (user-service).
 *
 * The arithmetic is fare_model.c; this file adds the live inputs (demand counters and online
 * supply for the surge, from Redis) and the quotes: an estimate is stored for
 * ANTAR_QUOTE_TTL_S so that the price the customer saw is the price of the order they place. */
#include <math.h>
#include <string.h>

#include "antar/log.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "core.h"
#include "dispatch.h"
#include "dispatch_store.h"
#include "fare_model.h"

/* Two points closer than this are "the same place": there is no trip to price. */
#define FARE_MIN_TRIP_M 1.0
/* Quoted coordinates must match the order's to this precision (≈ 1 cm). */
#define FARE_COORD_EPS 1e-7
#define QUOTE_ID_HEX 32

typedef struct {
    double pickup_lat, pickup_lng, dropoff_lat, dropoff_lng;
    const char *vehicle_type;
} trip_t;

/* Surge from the pickup cell's demand over 10 minutes against the available drivers of the
 * type around the pickup (fare_model.h has the formula). count_demand adds this request to the
 * demand first: an estimate is itself a sign of demand. */
static antar_err_t fare_price(const trip_t *t, bool count_demand, core_fare_t *out)
{
    const core_settings_t *s = core_settings();
    long long now = antar_now_ms(), demand = 0, supply = 0;
    char cell[48];
    core_fare_cell(t->pickup_lat, t->pickup_lng, cell, sizeof cell);
    antar_err_t err;
    if (count_demand && (err = core_store_demand_add(cell, now)) != ANTAR_OK)
        return err;
    if ((err = core_store_demand(cell, now, &demand)) != ANTAR_OK)
        return err;
    if ((err = core_store_supply(t->vehicle_type, t->pickup_lat, t->pickup_lng, s->radius_m,
                                 now - s->presence_ttl_s * 1000, &supply)) != ANTAR_OK)
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

static bool same_place(const trip_t *t)
{
    return core_fare_haversine_m(t->pickup_lat, t->pickup_lng, t->dropoff_lat, t->dropoff_lng) <
           FARE_MIN_TRIP_M;
}

static void reply_error(antar_req_t *req, antar_err_t err)
{
    antar_http_fail(req, err, NULL, NULL);
}

/* POST /fares/estimate (role user) */
static void fares_estimate(antar_req_t *req)
{
    static const char *const vehicles[] = {"motorcycle", "car", NULL};
    trip_t t = {0};
    const antar_field_t fields[] = {
        {"pickup_lat", ANTAR_FIELD_NUMBER, true, -90, 90, NULL, &t.pickup_lat, NULL},
        {"pickup_lng", ANTAR_FIELD_NUMBER, true, -180, 180, NULL, &t.pickup_lng, NULL},
        {"dropoff_lat", ANTAR_FIELD_NUMBER, true, -90, 90, NULL, &t.dropoff_lat, NULL},
        {"dropoff_lng", ANTAR_FIELD_NUMBER, true, -180, 180, NULL, &t.dropoff_lng, NULL},
        {"vehicle_type", ANTAR_FIELD_ENUM, true, 0, 0, vehicles, &t.vehicle_type, NULL},
    };
    if (antar_req_fields(req, fields, sizeof fields / sizeof fields[0]) != ANTAR_OK)
        return;
    if (same_place(&t)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "dropoff_lat",
                        "dropoff must be a different place from pickup");
        return;
    }
    const antar_principal_t *p = antar_req_principal(req);
    core_fare_t f;
    antar_err_t err = fare_price(&t, true, &f);
    if (err != ANTAR_OK) {
        reply_error(req, err);
        return;
    }
    char quote_id[QUOTE_ID_HEX + 1];
    antar_random_hex(quote_id, QUOTE_ID_HEX / 2);
    long long expires_ms = antar_now_ms() + core_settings()->quote_ttl_s * 1000;
    json_t *q = json_pack(
        "{sI sf sf sf sf ss sI sI sI si sI}", "user_id", (json_int_t)(p ? p->id : 0), "pickup_lat",
        t.pickup_lat, "pickup_lng", t.pickup_lng, "dropoff_lat", t.dropoff_lat, "dropoff_lng",
        t.dropoff_lng, "vehicle_type", t.vehicle_type, "price", (json_int_t)f.price, "distance_m",
        (json_int_t)f.distance_m, "duration_s", (json_int_t)f.duration_s, "surge_tenths",
        f.surge_tenths, "expires_ms", (json_int_t)expires_ms);
    if (!q) {
        reply_error(req, ANTAR_E_NOMEM);
        return;
    }
    err = core_store_quote_put(quote_id, q, core_settings()->quote_ttl_s);
    json_decref(q);
    if (err != ANTAR_OK) {
        reply_error(req, err);
        return;
    }
    antar_http_reply(req, 200, fare_json(quote_id, t.vehicle_type, &f, expires_ms));
}

static bool near(json_t *q, const char *key, double v)
{
    json_t *x = json_object_get(q, key);
    return json_is_number(x) && fabs(json_number_value(x) - v) <= FARE_COORD_EPS;
}

/* The stored quote when it is this user's, for this trip and vehicle, and not expired. */
static bool quote_matches(json_t *q, long long user_id, const trip_t *t, long long now_ms)
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

/* POST /internal/fares/quote (role service) {user_id, quote_id?, pickup_*, dropoff_*,
 * vehicle_type} → the quoted fare ("quoted": true) or a fresh one ("quoted": false). */
static void fares_quote(antar_req_t *req)
{
    trip_t t = {0};
    long long user_id = 0;
    const char *quote_id = NULL;
    if (!core_body_int(req, "user_id", true, 1, 9007199254740992LL, &user_id, NULL) ||
        !core_body_string(req, "quote_id", false, 128, &quote_id) ||
        !core_body_number(req, "pickup_lat", true, -90, 90, &t.pickup_lat, NULL) ||
        !core_body_number(req, "pickup_lng", true, -180, 180, &t.pickup_lng, NULL) ||
        !core_body_number(req, "dropoff_lat", true, -90, 90, &t.dropoff_lat, NULL) ||
        !core_body_number(req, "dropoff_lng", true, -180, 180, &t.dropoff_lng, NULL) ||
        !core_body_string(req, "vehicle_type", true, 16, &t.vehicle_type))
        return;
    if (core_vehicle_parse(t.vehicle_type) < 0) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "vehicle_type",
                        "vehicle_type must be motorcycle or car");
        return;
    }
    if (same_place(&t)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "dropoff_lat",
                        "dropoff must be a different place from pickup");
        return;
    }
    antar_err_t err;
    if (quote_id && quote_id_valid(quote_id)) {
        json_t *q = NULL;
        err = core_store_quote_get(quote_id, &q);
        if (err != ANTAR_OK && err != ANTAR_E_NOT_FOUND) {
            reply_error(req, err);
            return;
        }
        long long now = antar_now_ms();
        if (err == ANTAR_OK && quote_matches(q, user_id, &t, now)) {
            core_fare_t f = {
                .distance_m = json_integer_value(json_object_get(q, "distance_m")),
                .duration_s = json_integer_value(json_object_get(q, "duration_s")),
                .price = json_integer_value(json_object_get(q, "price")),
                .surge_tenths = (int)json_integer_value(json_object_get(q, "surge_tenths")),
            };
            if (f.surge_tenths < CORE_SURGE_MIN_TENTHS || f.surge_tenths > CORE_SURGE_MAX_TENTHS)
                f.surge_tenths = CORE_SURGE_MIN_TENTHS;
            json_t *res = fare_json(quote_id, t.vehicle_type, &f,
                                    json_integer_value(json_object_get(q, "expires_ms")));
            json_decref(q);
            json_object_set_new(res, "quoted", json_true());
            antar_http_reply(req, 200, res);
            return;
        }
        json_decref(q);
        /* Unknown, expired, someone else's or for another trip: the order gets today's price,
         * never the stale or borrowed one. */
        antar_log_json("info", "quote_not_honoured",
                       json_pack("{sI}", "user_id", (json_int_t)user_id));
    }
    core_fare_t f;
    if ((err = fare_price(&t, false, &f)) != ANTAR_OK) {
        reply_error(req, err);
        return;
    }
    json_t *res = fare_json(NULL, t.vehicle_type, &f, 0);
    json_object_set_new(res, "quoted", json_false());
    antar_http_reply(req, 200, res);
}

const antar_route_t core_fares_routes[] = {
    {"POST", "/fares/estimate", fares_estimate, ANTAR_AUTH_USER, "user", 0},
    {"POST", "/internal/fares/quote", fares_quote, ANTAR_AUTH_SERVICE, "internal", 0},
};
const size_t core_fares_routes_len = sizeof core_fares_routes / sizeof core_fares_routes[0];
