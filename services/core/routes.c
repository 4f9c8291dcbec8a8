/* routes.c — core-service's fares, presence and dispatch routes: HTTP only. Each handler reads
 * and validates its fields (replying the 4xx that names the field), takes the caller from the
 * verified principal, calls fares.c, presence.c or dispatch.c, and replies once. Domain errors
 * become a status and an envelope here and nowhere else. (The OAuth routes are oauth_routes.c's.)
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/util.h"
#include "core.h"
#include "dispatch.h"
#include "dispatch_store.h"
#include "fare_model.h"
#include "hint.h"

/* ---- body checks ----------------------------------------------------------------------------
 * Internal routes are called by other services that may add fields over time, so their bodies
 * are read with antar_req_fields_lenient (http.h): unknown fields are ignored, a null is an
 * absent field, numbers and booleans may come as strings holding them, and everything else is
 * checked as strictly as public input. The public route stays strict (antar_req_fields). */

/* vehicle_type, when present, must be one core prices and dispatches. */
static bool vehicle_ok(antar_req_t *req, const char *vt)
{
    if (!vt || core_vehicle_parse(vt) >= 0)
        return true;
    antar_http_fail(req, ANTAR_E_INVALID_FIELD, "vehicle_type",
                    "vehicle_type must be motorcycle or car");
    return false;
}

/* ---- fares ---------------------------------------------------------------------------------- */

/* POST /fares/estimate (role user) */
static void fares_estimate(antar_req_t *req)
{
    core_trip_t t = {0};
    const antar_field_t fields[] = {
        ANTAR_F_LAT("pickup_lat", true, &t.pickup_lat, NULL),
        ANTAR_F_LNG("pickup_lng", true, &t.pickup_lng, NULL),
        ANTAR_F_LAT("dropoff_lat", true, &t.dropoff_lat, NULL),
        ANTAR_F_LNG("dropoff_lng", true, &t.dropoff_lng, NULL),
        ANTAR_F_VEHICLE(true, &t.vehicle_type),
    };
    if (antar_req_fields(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    const antar_principal_t *p = antar_req_principal(req);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    antar_err_t err = core_fares_estimate(p ? p->id : 0, &t, &out, &why);
    antar_http_reply_outcome(req, err, 200, out, &why);
}

/* POST /internal/fares/quote (role service) {user_id, quote_id?, pickup_*, dropoff_*,
 * vehicle_type} → the quoted fare ("quoted": true) or a fresh one ("quoted": false). */
static void fares_quote(antar_req_t *req)
{
    core_trip_t t = {0};
    long long user_id = 0;
    const char *quote_id = NULL;
    const antar_field_t fields[] = {
        ANTAR_F_ID("user_id", true, &user_id),
        ANTAR_F_("quote_id", ANTAR_FIELD_STRING, false, 0, 128, &quote_id, NULL),
        ANTAR_F_LAT("pickup_lat", true, &t.pickup_lat, NULL),
        ANTAR_F_LNG("pickup_lng", true, &t.pickup_lng, NULL),
        ANTAR_F_LAT("dropoff_lat", true, &t.dropoff_lat, NULL),
        ANTAR_F_LNG("dropoff_lng", true, &t.dropoff_lng, NULL),
        ANTAR_F_("vehicle_type", ANTAR_FIELD_STRING, true, 0, 16, &t.vehicle_type, NULL),
    };
    if (antar_req_fields_lenient(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK ||
        !vehicle_ok(req, t.vehicle_type))
        return;
    antar_outcome_t why = {0};
    json_t *out = NULL;
    antar_err_t err = core_fares_quote(user_id, quote_id, &t, &out, &why);
    antar_http_reply_outcome(req, err, 200, out, &why);
}

/* ---- presence -------------------------------------------------------------------------------- */

/* PUT /internal/drivers/{id}/presence {status, vehicle_type, lat?, lng?} */
static void presence_put(antar_req_t *req)
{
    long long id;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    const char *status = NULL, *vt = NULL;
    double lat = 0, lng = 0;
    bool has_lat = false, has_lng = false;
    const antar_field_t fields[] = {
        ANTAR_F_("status", ANTAR_FIELD_STRING, true, 0, 16, &status, NULL),
        ANTAR_F_("vehicle_type", ANTAR_FIELD_STRING, false, 0, 16, &vt, NULL),
        ANTAR_F_LAT("lat", false, &lat, &has_lat),
        ANTAR_F_LNG("lng", false, &lng, &has_lng),
    };
    if (antar_req_fields_lenient(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    bool online = strcmp(status, "online") == 0;
    if (!online && strcmp(status, "offline") != 0) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "status", "status must be online or offline");
        return;
    }
    if (online && !vt) {
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, "vehicle_type", "vehicle_type is required");
        return;
    }
    if (!vehicle_ok(req, vt))
        return;
    if (has_lat != has_lng) {
        const char *missing = has_lat ? "lng" : "lat";
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, missing, "lat and lng go together");
        return;
    }
    json_t *out = NULL;
    antar_err_t err = core_presence_set(id, online, vt, has_lat, lat, lng, &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* POST /internal/drivers/positions {positions: [{driver_id, lat, lng}, ...]} (1 to
 * CORE_POSITIONS_MAX items) → {applied, ignored, unknown: [ids]}. driver-service's batch of
 * location pings. In a form body, positions is that array as JSON text. Items are checked as
 * strictly as presence's fields (numbers may come as strings holding them, as everywhere on
 * internal routes); the first bad one is a 422 naming it ("positions[3].lat") and nothing of the
 * batch is applied. */
#define CORE_POSITIONS_MAX 1000

/* A JSON number, or a string holding one in full (the lenient internal reading). */
static bool lenient_number(json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > 40)
        return false;
    char *end = NULL;
    double d = strtod(s, &end);
    if (*end || !isfinite(d) || !(isdigit((unsigned char)s[0]) || s[0] == '-'))
        return false;
    *out = d;
    return true;
}

static void positions_post(antar_req_t *req)
{
    json_t *list = json_object_get(antar_req_body(req), "positions");
    if (json_is_string(list)) {
        /* A form body (or a sender that wrote the list as text) carries it as JSON text. */
        list = antar_req_keep(
            req, json_loadb(json_string_value(list), json_string_length(list), 0, NULL));
        if (!list) {
            antar_http_fail(req, ANTAR_E_INVALID_FIELD, "positions",
                            "positions must be an array of 1 to %d positions", CORE_POSITIONS_MAX);
            return;
        }
    }
    if (!list || json_is_null(list)) {
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, "positions", "positions is required");
        return;
    }
    size_t n = json_array_size(list);
    if (!json_is_array(list) || n == 0 || n > CORE_POSITIONS_MAX) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "positions",
                        "positions must be an array of 1 to %d positions", CORE_POSITIONS_MAX);
        return;
    }
    core_position_t *p = calloc(n, sizeof *p);
    if (!p) {
        antar_http_fail(req, ANTAR_E_NOMEM, NULL, NULL);
        return;
    }
    static const char *const names[] = {"driver_id", "lat", "lng"};
    static const double lo[] = {1, -90, -180}, hi[] = {ANTAR_ID_MAX, 90, 180};
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(list, i);
        double v[3];
        for (int k = 0; k < 3; k++) {
            json_t *f = json_object_get(item, names[k]);
            char field[48];
            snprintf(field, sizeof field, "positions[%zu].%s", i, names[k]);
            if (!json_is_object(item) || !f || json_is_null(f)) {
                antar_http_fail(req, ANTAR_E_MISSING_FIELD, field, "%s is required", field);
                goto fail;
            }
            bool ok = lenient_number(f, &v[k]) && v[k] >= lo[k] && v[k] <= hi[k] &&
                      (k > 0 || v[k] == (double)(long long)v[k]);
            if (!ok) {
                if (k == 0)
                    antar_http_fail(req, ANTAR_E_INVALID_FIELD, field, "%s must be an integer id",
                                    field);
                else
                    antar_http_fail(req, ANTAR_E_INVALID_FIELD, field,
                                    "%s must be a number between %g and %g", field, lo[k], hi[k]);
                goto fail;
            }
        }
        p[i] = (core_position_t){(long long)v[0], v[1], v[2]};
    }
    json_t *out = NULL;
    antar_err_t err = core_presence_positions(p, n, &out);
    free(p);
    antar_http_reply_outcome(req, err, 200, out, NULL);
    return;
fail:
    free(p);
}

/* PUT /internal/drivers/{id}/availability {available, order_id?} */
static void availability_put(antar_req_t *req)
{
    long long id, order_id = 0;
    bool available = false, has_order = false;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    const antar_field_t fields[] = {
        ANTAR_F_("available", ANTAR_FIELD_BOOL, true, 0, 0, &available, NULL),
        ANTAR_F_("order_id", ANTAR_FIELD_INT, false, 1, ANTAR_ID_MAX, &order_id, &has_order),
    };
    if (antar_req_fields_lenient(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    if (!available && !has_order) {
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, "order_id",
                        "order_id is required when available is false");
        return;
    }
    json_t *out = NULL;
    antar_err_t err = core_availability_set(id, available, order_id, &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* GET /internal/drivers/{id}/waiting-hint → where the idle driver should wait (hint.c). */
static void waiting_hint(antar_req_t *req)
{
    long long id;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    json_t *out = NULL;
    antar_outcome_t why = {0};
    antar_err_t err = core_hint_waiting(id, &out, &why);
    antar_http_reply_outcome(req, err, 200, out, &why);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

/* POST /internal/dispatch {order_id, user_id, vehicle_type, pickup_*, dropoff_*, price,
 * currency} → 202. A redelivery is 202 too and changes nothing. */
static void dispatch_create(antar_req_t *req)
{
    core_order_t o = {0};
    const antar_field_t fields[] = {
        ANTAR_F_ID("order_id", true, &o.order_id),
        ANTAR_F_ID("user_id", true, &o.user_id),
        ANTAR_F_("vehicle_type", ANTAR_FIELD_STRING, true, 0, 16, &o.vehicle_type, NULL),
        ANTAR_F_LAT("pickup_lat", true, &o.pickup_lat, NULL),
        ANTAR_F_LNG("pickup_lng", true, &o.pickup_lng, NULL),
        ANTAR_F_LAT("dropoff_lat", true, &o.dropoff_lat, NULL),
        ANTAR_F_LNG("dropoff_lng", true, &o.dropoff_lng, NULL),
        ANTAR_F_PRICE(true, &o.price, NULL),
        ANTAR_F_("currency", ANTAR_FIELD_STRING, false, 0, 3, &o.currency, NULL),
        ANTAR_F_ADDRESS("pickup_address", false, &o.pickup_address),
        ANTAR_F_ADDRESS("dropoff_address", false, &o.dropoff_address),
        ANTAR_F_("customer_first_name", ANTAR_FIELD_STRING, false, 0, 100, &o.customer_first_name,
                 NULL),
    };
    if (antar_req_fields_lenient(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK ||
        !vehicle_ok(req, o.vehicle_type))
        return;
    if (o.currency && strcmp(o.currency, "IDR") != 0) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "currency", "currency must be IDR");
        return;
    }
    json_t *out = NULL;
    antar_err_t err = core_dispatch_create(&o, &out);
    antar_http_reply_outcome(req, err, 202, out, NULL);
}

/* The order from the path and {driver_id, offer_id} from the body. */
static bool offer_body(antar_req_t *req, long long *order_id, long long *driver_id,
                       long long *offer_id, bool offer_required)
{
    if (antar_req_param_id(req, "order_id", order_id) != ANTAR_OK)
        return false;
    const antar_field_t fields[] = {
        ANTAR_F_ID("driver_id", true, driver_id),
        ANTAR_F_ID("offer_id", offer_required, offer_id),
    };
    return antar_req_fields_lenient(req, fields, ANTAR_NFIELDS(fields)) == ANTAR_OK;
}

/* POST /internal/dispatch/{order_id}/rejected {driver_id, offer_id} → the next candidate now. */
static void dispatch_rejected(antar_req_t *req)
{
    long long order_id, driver_id = 0, offer_id = 0;
    if (!offer_body(req, &order_id, &driver_id, &offer_id, true))
        return;
    json_t *out = NULL;
    antar_err_t err = core_dispatch_rejected(order_id, driver_id, offer_id, &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* POST /internal/dispatch/{order_id}/accepted {driver_id, offer_id?} → done, driver busy. */
static void dispatch_accepted(antar_req_t *req)
{
    long long order_id, driver_id = 0, offer_id = 0;
    if (!offer_body(req, &order_id, &driver_id, &offer_id, false))
        return;
    json_t *out = NULL;
    antar_err_t err = core_dispatch_accepted(order_id, driver_id, &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* POST /internal/dispatch/{order_id}/cancel {} → stop; free the driver. */
static void dispatch_cancel(antar_req_t *req)
{
    long long order_id;
    if (antar_req_param_id(req, "order_id", &order_id) != ANTAR_OK)
        return;
    json_t *out = NULL;
    antar_err_t err = core_dispatch_cancel(order_id, &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* ---- audit (the ops client) ----------------------------------------------------------------- */

typedef antar_err_t (*audit_fn)(const core_scan_pos_t *from, int limit, json_t **items,
                                core_scan_pos_t *next, bool *more);

/* A SCAN-paged audit list: the cursor carries the SCAN position (dispatch_store.h). */
static void audit_list(antar_req_t *req, const char *tag, audit_fn fn)
{
    long long v[3] = {0};
    int limit = 0;
    if (antar_req_page(req, 500, 1000, tag, v, 3, &limit) != ANTAR_OK)
        return;
    core_scan_pos_t from = {.scan = v[0], .count = v[1], .after = v[2]}, next = {0};
    json_t *items = NULL;
    bool more = false;
    antar_err_t err = fn(&from, limit, &items, &next, &more);
    if (err != ANTAR_OK) {
        antar_http_reply_outcome(req, err, 200, NULL, NULL);
        return;
    }
    char cur[ANTAR_CURSOR_MAX];
    if (more)
        antar_cursor_encode(tag, (const long long[]){next.scan, next.count, next.after}, 3, cur);
    antar_http_reply_page(req, items, more ? cur : NULL);
}

/* GET /internal/audit/presence (scope ops) */
static void audit_presence(antar_req_t *req)
{
    audit_list(req, "cap", core_store_presence_audit);
}

/* GET /internal/audit/dispatches (scope ops) */
static void audit_dispatches(antar_req_t *req)
{
    audit_list(req, "cad", core_store_dispatch_audit);
}

/* ---- the city for the console (scope ops, docs/console.md) ---------------------------------- */

#define CITY_LAT -6.2
#define CITY_LNG 106.82
#define CITY_BOX_KM 120.0
#define CITY_MAX_DRIVERS 5000
#define CITY_MAX_ORDERS 1000
#define CITY_MAX_CELLS 400

/* Available drivers of vehicle type vt within radius_m of (lat, lng), as dispatch would find
 * them (a driver with an offer open is locked, so not counted). */
static long long city_supply(json_t *drivers, const char *vt, double lat, double lng, long radius_m)
{
    long long n = 0;
    size_t i;
    json_t *d;
    json_array_foreach(drivers, i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "state")), "available") ||
            strcmp(json_string_value(json_object_get(d, "vehicle_type")), vt))
            continue;
        if (core_fare_haversine_m(lat, lng, json_real_value(json_object_get(d, "lat")),
                                  json_real_value(json_object_get(d, "lng"))) <= radius_m)
            n++;
    }
    return n;
}

/* Add the cell of (lat, lng) to cells (n of them, at most CITY_MAX_CELLS) unless there. */
static void city_cell_add(char cells[][48], size_t *n, double lat, double lng)
{
    char c[48];
    core_fare_cell(lat, lng, c, sizeof c);
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(cells[i], c))
            return;
    if (*n < CITY_MAX_CELLS)
        snprintf(cells[(*n)++], 48, "%s", c);
}

/* GET /ops/city: every online driver by state, the open orders, and demand and surge in the
 * cells where they are (the cells of the fare model: demand = distinct customers over 10 min,
 * surge from demand against the available drivers around the cell's centre). */
static void ops_city(antar_req_t *req)
{
    json_t *drivers = NULL, *orders = NULL;
    antar_err_t err = core_store_city(CITY_LAT, CITY_LNG, CITY_BOX_KM, CITY_MAX_DRIVERS,
                                      CITY_MAX_ORDERS, &drivers, &orders);
    if (err != ANTAR_OK) {
        antar_http_reply_outcome(req, err, 200, NULL, NULL);
        return;
    }
    static _Thread_local char cells[CITY_MAX_CELLS][48];
    const char *names[CITY_MAX_CELLS];
    long long demand[CITY_MAX_CELLS] = {0};
    size_t n = 0, i;
    json_t *x;
    json_array_foreach(orders, i, x)
    {
        city_cell_add(cells, &n, json_number_value(json_object_get(x, "pickup_lat")),
                      json_number_value(json_object_get(x, "pickup_lng")));
    }
    json_array_foreach(drivers, i, x)
    {
        city_cell_add(cells, &n, json_real_value(json_object_get(x, "lat")),
                      json_real_value(json_object_get(x, "lng")));
    }
    for (i = 0; i < n; i++)
        names[i] = cells[i];
    long long now = antar_now_ms();
    err = core_store_city_demand(names, n, now, demand);
    if (err != ANTAR_OK) {
        json_decref(drivers);
        json_decref(orders);
        antar_http_reply_outcome(req, err, 200, NULL, NULL);
        return;
    }
    const core_settings_t *st = core_settings();
    json_t *out_cells = json_array();
    for (i = 0; out_cells && i < n; i++) {
        if (demand[i] <= 0)
            continue;
        long r = 0, c = 0;
        if (sscanf(cells[i], "%ld:%ld", &r, &c) != 2)
            continue;
        double lat = (r + 0.5) * CORE_FARE_CELL_DEG, lng = (c + 0.5) * CORE_FARE_CELL_DEG;
        long long sm = city_supply(drivers, "motorcycle", lat, lng, st->radius_m);
        long long sc = city_supply(drivers, "car", lat, lng, st->radius_m);
        json_array_append_new(
            out_cells,
            json_pack("{s:s, s:f, s:f, s:f, s:f, s:I, s:{s:I, s:I}, s:{s:f, s:f}}", "cell",
                      cells[i], "south_lat", r * CORE_FARE_CELL_DEG, "west_lng",
                      c * CORE_FARE_CELL_DEG, "north_lat", (r + 1) * CORE_FARE_CELL_DEG, "east_lng",
                      (c + 1) * CORE_FARE_CELL_DEG, "demand", (json_int_t)demand[i], "supply",
                      "motorcycle", (json_int_t)sm, "car", (json_int_t)sc, "surge_multiplier",
                      "motorcycle", core_fare_surge_tenths(demand[i], sm) / 10.0, "car",
                      core_fare_surge_tenths(demand[i], sc) / 10.0));
    }
    char at[32];
    antar_time_rfc3339(now, at);
    antar_http_add_header(req, "Cache-Control", "no-store");
    antar_http_reply_outcome(req, ANTAR_OK, 200,
                             json_pack("{s:s, s:o, s:o, s:o}", "at", at, "drivers", drivers,
                                       "orders", orders, "cells",
                                       out_cells ? out_cells : json_array()),
                             NULL);
}

/* ---- route tables (core.h) ------------------------------------------------------------------ */

const antar_route_t core_fares_routes[] = {
    {"POST", "/fares/estimate", fares_estimate, ANTAR_AUTH_USER, "user", 0},
    {"POST", "/internal/fares/quote", fares_quote, ANTAR_AUTH_SERVICE, "internal", 0},
};
const size_t core_fares_routes_len = sizeof core_fares_routes / sizeof core_fares_routes[0];

#define SVC ANTAR_AUTH_SERVICE, "internal"

const antar_route_t core_dispatch_routes[] = {
    {"POST", "/internal/dispatch", dispatch_create, SVC, 0},
    {"POST", "/internal/dispatch/{order_id}/rejected", dispatch_rejected, SVC, 0},
    {"POST", "/internal/dispatch/{order_id}/accepted", dispatch_accepted, SVC, 0},
    {"POST", "/internal/dispatch/{order_id}/cancel", dispatch_cancel, SVC, 0},
    {"PUT", "/internal/drivers/{id}/presence", presence_put, SVC, 0},
    {"PUT", "/internal/drivers/{id}/availability", availability_put, SVC, 0},
    {"POST", "/internal/drivers/positions", positions_post, SVC, 0},
    {"GET", "/internal/drivers/{id}/waiting-hint", waiting_hint, SVC, 0},
    {"GET", "/internal/audit/presence", audit_presence, ANTAR_AUTH_SERVICE, "ops", 0},
    {"GET", "/internal/audit/dispatches", audit_dispatches, ANTAR_AUTH_SERVICE, "ops", 0},
    {"GET", "/ops/city", ops_city, ANTAR_AUTH_SERVICE, "ops", 0},
};
const size_t core_dispatch_routes_len =
    sizeof core_dispatch_routes / sizeof core_dispatch_routes[0];
