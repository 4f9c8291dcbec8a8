/* routes.c — core-service's fares, presence and dispatch routes: HTTP only. Each handler reads
 * and validates its fields (replying the 4xx that names the field), takes the caller from the
 * verified principal, calls fares.c, presence.c or dispatch.c, and replies once. Domain errors
 * become a status and an envelope here and nowhere else. (The OAuth routes are oauth.c's.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "dispatch.h"
#include "fare_model.h"

#define MAX_ID 9007199254740992LL /* 2^53: ids stay exact in JSON numbers */

/* The domain's outcome: result with status on success, else the error with the field and
 * message the domain gave (the error's default message otherwise). Steals result. */
static void reply(antar_req_t *req, antar_err_t err, int status, json_t *result,
                  const core_why_t *why)
{
    if (err == ANTAR_OK) {
        antar_http_reply(req, status, result);
        return;
    }
    json_decref(result);
    if (why && why->message[0])
        antar_http_fail(req, err, why->field, "%s", why->message);
    else
        antar_http_fail(req, err, why ? why->field : NULL, NULL);
}

/* ---- lenient body readers ------------------------------------------------------------------
 * Internal routes are called by other services that may add fields over time, so their bodies
 * are read leniently rather than with antar_req_fields: unknown fields are ignored, known ones
 * are type- and range-checked. Each reader returns false after replying 422 (missing_field /
 * invalid_field naming the field); the handler then returns. A JSON number or a string holding
 * one is accepted for numbers. */

static json_t *body_get(antar_req_t *req, const char *name, bool required, bool *present)
{
    json_t *v = json_object_get(antar_req_body(req), name);
    if (json_is_null(v))
        v = NULL;
    if (present)
        *present = v != NULL;
    if (!v && required)
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, name, "%s is required", name);
    return v;
}

static bool body_number(antar_req_t *req, const char *name, bool required, double min, double max,
                        double *out, bool *present)
{
    bool here = false;
    json_t *v = body_get(req, name, required, &here);
    if (present)
        *present = here;
    if (!v)
        return !required;
    double d;
    if (json_is_number(v))
        d = json_number_value(v);
    else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        d = strtod(s, &end);
        if (!*s || *end)
            goto bad;
    } else
        goto bad;
    if (!isfinite(d) || d < min || d > max)
        goto bad;
    *out = d;
    return true;
bad:
    antar_http_fail(req, ANTAR_E_INVALID_FIELD, name, "%s must be a number between %g and %g", name,
                    min, max);
    return false;
}

static bool body_int(antar_req_t *req, const char *name, bool required, long long min,
                     long long max, long long *out, bool *present)
{
    bool here = false;
    json_t *v = body_get(req, name, required, &here);
    if (present)
        *present = here;
    if (!v)
        return !required;
    long long n;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        n = strtoll(s, &end, 10);
        if (!*s || *end)
            goto bad;
    } else
        goto bad;
    if (n < min || n > max)
        goto bad;
    *out = n;
    return true;
bad:
    antar_http_fail(req, ANTAR_E_INVALID_FIELD, name, "%s must be an integer between %lld and %lld",
                    name, min, max);
    return false;
}

/* A string of at most maxlen bytes, no control characters; borrowed until the reply. */
static bool body_string(antar_req_t *req, const char *name, bool required, size_t maxlen,
                        const char **out)
{
    json_t *v = body_get(req, name, required, NULL);
    if (!v)
        return !required;
    if (!json_is_string(v) || json_string_length(v) > maxlen)
        goto bad;
    const char *s = json_string_value(v);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            goto bad;
    if (strlen(s) != json_string_length(v)) /* an embedded NUL */
        goto bad;
    *out = s;
    return true;
bad:
    antar_http_fail(req, ANTAR_E_INVALID_FIELD, name, "%s must be a string of at most %zu bytes",
                    name, maxlen);
    return false;
}

static bool body_bool(antar_req_t *req, const char *name, bool required, bool *out, bool *present)
{
    bool here = false;
    json_t *v = body_get(req, name, required, &here);
    if (present)
        *present = here;
    if (!v)
        return !required;
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else if (json_is_string(v) && strcmp(json_string_value(v), "true") == 0)
        *out = true;
    else if (json_is_string(v) && strcmp(json_string_value(v), "false") == 0)
        *out = false;
    else {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, name, "%s must be true or false", name);
        return false;
    }
    return true;
}

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
    static const char *const vehicles[] = {"motorcycle", "car", NULL};
    core_trip_t t = {0};
    const antar_field_t fields[] = {
        {"pickup_lat", ANTAR_FIELD_NUMBER, true, -90, 90, NULL, &t.pickup_lat, NULL},
        {"pickup_lng", ANTAR_FIELD_NUMBER, true, -180, 180, NULL, &t.pickup_lng, NULL},
        {"dropoff_lat", ANTAR_FIELD_NUMBER, true, -90, 90, NULL, &t.dropoff_lat, NULL},
        {"dropoff_lng", ANTAR_FIELD_NUMBER, true, -180, 180, NULL, &t.dropoff_lng, NULL},
        {"vehicle_type", ANTAR_FIELD_ENUM, true, 0, 0, vehicles, &t.vehicle_type, NULL},
    };
    if (antar_req_fields(req, fields, sizeof fields / sizeof fields[0]) != ANTAR_OK)
        return;
    const antar_principal_t *p = antar_req_principal(req);
    core_why_t why = {0};
    json_t *out = NULL;
    antar_err_t err = core_fares_estimate(p ? p->id : 0, &t, &out, &why);
    reply(req, err, 200, out, &why);
}

/* POST /internal/fares/quote (role service) {user_id, quote_id?, pickup_*, dropoff_*,
 * vehicle_type} → the quoted fare ("quoted": true) or a fresh one ("quoted": false). */
static void fares_quote(antar_req_t *req)
{
    core_trip_t t = {0};
    long long user_id = 0;
    const char *quote_id = NULL;
    if (!body_int(req, "user_id", true, 1, MAX_ID, &user_id, NULL) ||
        !body_string(req, "quote_id", false, 128, &quote_id) ||
        !body_number(req, "pickup_lat", true, -90, 90, &t.pickup_lat, NULL) ||
        !body_number(req, "pickup_lng", true, -180, 180, &t.pickup_lng, NULL) ||
        !body_number(req, "dropoff_lat", true, -90, 90, &t.dropoff_lat, NULL) ||
        !body_number(req, "dropoff_lng", true, -180, 180, &t.dropoff_lng, NULL) ||
        !body_string(req, "vehicle_type", true, 16, &t.vehicle_type) ||
        !vehicle_ok(req, t.vehicle_type))
        return;
    core_why_t why = {0};
    json_t *out = NULL;
    antar_err_t err = core_fares_quote(user_id, quote_id, &t, &out, &why);
    reply(req, err, 200, out, &why);
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
    if (!body_string(req, "status", true, 16, &status))
        return;
    bool online = strcmp(status, "online") == 0;
    if (!online && strcmp(status, "offline") != 0) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "status", "status must be online or offline");
        return;
    }
    if (!body_string(req, "vehicle_type", online, 16, &vt) || !vehicle_ok(req, vt))
        return;
    if (!body_number(req, "lat", false, -90, 90, &lat, &has_lat) ||
        !body_number(req, "lng", false, -180, 180, &lng, &has_lng))
        return;
    if (has_lat != has_lng) {
        const char *missing = has_lat ? "lng" : "lat";
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, missing, "lat and lng go together");
        return;
    }
    json_t *out = NULL;
    antar_err_t err = core_presence_set(id, online, vt, has_lat, lat, lng, &out);
    reply(req, err, 200, out, NULL);
}

/* PUT /internal/drivers/{id}/availability {available, order_id?} */
static void availability_put(antar_req_t *req)
{
    long long id, order_id = 0;
    bool available = false, has_order = false;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    if (!body_bool(req, "available", true, &available, NULL) ||
        !body_int(req, "order_id", false, 1, MAX_ID, &order_id, &has_order))
        return;
    if (!available && !has_order) {
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, "order_id",
                        "order_id is required when available is false");
        return;
    }
    json_t *out = NULL;
    antar_err_t err = core_availability_set(id, available, order_id, &out);
    reply(req, err, 200, out, NULL);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

/* POST /internal/dispatch {order_id, user_id, vehicle_type, pickup_*, dropoff_*, price,
 * currency} → 202. A redelivery is 202 too and changes nothing. */
static void dispatch_create(antar_req_t *req)
{
    core_order_t o = {0};
    if (!body_int(req, "order_id", true, 1, MAX_ID, &o.order_id, NULL) ||
        !body_int(req, "user_id", true, 1, MAX_ID, &o.user_id, NULL) ||
        !body_string(req, "vehicle_type", true, 16, &o.vehicle_type) ||
        !body_number(req, "pickup_lat", true, -90, 90, &o.pickup_lat, NULL) ||
        !body_number(req, "pickup_lng", true, -180, 180, &o.pickup_lng, NULL) ||
        !body_number(req, "dropoff_lat", true, -90, 90, &o.dropoff_lat, NULL) ||
        !body_number(req, "dropoff_lng", true, -180, 180, &o.dropoff_lng, NULL) ||
        !body_int(req, "price", true, 0, 1000000000LL, &o.price, NULL) ||
        !body_string(req, "currency", false, 3, &o.currency) ||
        !body_string(req, "pickup_address", false, 255, &o.pickup_address) ||
        !body_string(req, "dropoff_address", false, 255, &o.dropoff_address) ||
        !vehicle_ok(req, o.vehicle_type))
        return;
    if (o.currency && strcmp(o.currency, "IDR") != 0) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "currency", "currency must be IDR");
        return;
    }
    json_t *out = NULL;
    antar_err_t err = core_dispatch_create(&o, &out);
    reply(req, err, 202, out, NULL);
}

/* The order from the path and {driver_id, offer_id} from the body. */
static bool offer_body(antar_req_t *req, long long *order_id, long long *driver_id,
                       long long *offer_id, bool offer_required)
{
    if (antar_req_param_id(req, "order_id", order_id) != ANTAR_OK)
        return false;
    return body_int(req, "driver_id", true, 1, MAX_ID, driver_id, NULL) &&
           body_int(req, "offer_id", offer_required, 1, MAX_ID, offer_id, NULL);
}

/* POST /internal/dispatch/{order_id}/rejected {driver_id, offer_id} → the next candidate now. */
static void dispatch_rejected(antar_req_t *req)
{
    long long order_id, driver_id = 0, offer_id = 0;
    if (!offer_body(req, &order_id, &driver_id, &offer_id, true))
        return;
    json_t *out = NULL;
    antar_err_t err = core_dispatch_rejected(order_id, driver_id, offer_id, &out);
    reply(req, err, 200, out, NULL);
}

/* POST /internal/dispatch/{order_id}/accepted {driver_id, offer_id?} → done, driver busy. */
static void dispatch_accepted(antar_req_t *req)
{
    long long order_id, driver_id = 0, offer_id = 0;
    if (!offer_body(req, &order_id, &driver_id, &offer_id, false))
        return;
    json_t *out = NULL;
    antar_err_t err = core_dispatch_accepted(order_id, driver_id, &out);
    reply(req, err, 200, out, NULL);
}

/* POST /internal/dispatch/{order_id}/cancel {} → stop; free the driver. */
static void dispatch_cancel(antar_req_t *req)
{
    long long order_id;
    if (antar_req_param_id(req, "order_id", &order_id) != ANTAR_OK)
        return;
    json_t *out = NULL;
    antar_err_t err = core_dispatch_cancel(order_id, &out);
    reply(req, err, 200, out, NULL);
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
};
const size_t core_dispatch_routes_len =
    sizeof core_dispatch_routes / sizeof core_dispatch_routes[0];
