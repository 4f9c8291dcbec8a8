/* driver-service routes: HTTP only — parse, authorize, call the domain, respond. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "antar/http.h"
#include "antar/util.h"
#include "driver.h"

static const char *const statuses[] = {"online", "offline", NULL};

static long long me(antar_req_t *req)
{
    const antar_principal_t *p = antar_req_principal(req);
    return p ? p->id : 0;
}

/* The outbox's event id, when it looks like one. */
static const char *event_id(antar_req_t *req)
{
    const char *k = antar_req_header(req, "Idempotency-Key");
    return k && *k && strlen(k) <= 100 ? k : NULL;
}

/* ---- public: drivers ------------------------------------------------------------------- */

static void drivers_signup(antar_req_t *req)
{
    driver_signup_t in = {0};
    const antar_field_t fields[] = {
        ANTAR_F_NAME(true, &in.name),
        ANTAR_F_EMAIL(true, &in.email),
        ANTAR_F_PHONE(true, &in.phone),
        ANTAR_F_NEW_PASSWORD(&in.password),
        ANTAR_F_VEHICLE(true, &in.vehicle_type),
        ANTAR_F_PLATE(true, &in.plate_number),
    };
    json_t *out = NULL;
    antar_outcome_t why = {0};
    if (antar_req_fields(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    antar_err_t err = driver_signup(&in, &out, &why);
    antar_http_reply_outcome(req, err, 201, out, &why);
}

static void drivers_me_get(antar_req_t *req)
{
    json_t *out = NULL;
    antar_err_t err = driver_get(me(req), &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

static void drivers_me_patch(antar_req_t *req)
{
    driver_patch_t p = {0};
    const antar_field_t fields[] = {
        ANTAR_F_NAME(false, &p.name),
        ANTAR_F_EMAIL(false, &p.email),
        ANTAR_F_PHONE(false, &p.phone),
        ANTAR_F_PLATE(false, &p.plate_number),
    };
    json_t *out = NULL;
    antar_outcome_t why = {0};
    if (antar_req_fields(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    if (!p.name && !p.email && !p.phone && !p.plate_number) {
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, NULL,
                        "give at least one of name, email, phone, plate_number");
        return;
    }
    antar_err_t err = driver_update(me(req), &p, &out, &why);
    antar_http_reply_outcome(req, err, 200, out, &why);
}

static void drivers_me_status(antar_req_t *req)
{
    const char *status = NULL;
    const antar_field_t fields[] = {
        {.name = "status",
         .type = ANTAR_FIELD_ENUM,
         .required = true,
         .choices = statuses,
         .out = &status,
         .present = NULL},
    };
    json_t *out = NULL;
    if (antar_req_fields(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    antar_err_t err = driver_set_status(me(req), status, &out);
    if (err == ANTAR_E_CONFLICT) {
        antar_http_fail(req, err, "status", "cannot go offline during a trip");
        return;
    }
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

static void drivers_me_location(antar_req_t *req)
{
    double lat = 0, lng = 0;
    const antar_field_t fields[] = {
        ANTAR_F_LAT("lat", true, &lat, NULL),
        ANTAR_F_LNG("lng", true, &lng, NULL),
    };
    json_t *out = NULL;
    if (antar_req_fields(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    antar_err_t err = driver_set_location(me(req), lat, lng, &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

static void drivers_me_earnings(antar_req_t *req)
{
    json_t *out = NULL;
    antar_err_t err = driver_earnings(me(req), &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* Where to wait (docs/ai.md): core's answer as it is; a driver core does not see online is
 * told to go online first. */
static void drivers_me_waiting_hint(antar_req_t *req)
{
    json_t *out = NULL;
    antar_err_t err = driver_waiting_hint(me(req), &out);
    if (err == ANTAR_E_CONFLICT) {
        antar_http_fail(req, err, "status", "go online with a position to get a waiting hint");
        return;
    }
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* ---- public: offers and trips ---------------------------------------------------------- */

static void offers_list(antar_req_t *req)
{
    json_t *out = NULL;
    antar_err_t err = offer_list_pending(me(req), &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* A driver's action on one of their offers or trips: {param} is the id, the body takes no
 * fields (anything in it is refused, not ignored), and a 409 says why in conflict_msg. */
typedef antar_err_t (*driver_action_fn)(long long driver_id, long long id, json_t **out);

static void driver_action(antar_req_t *req, const char *param, driver_action_fn fn,
                          const char *conflict_msg)
{
    long long id;
    json_t *out = NULL;
    if (antar_req_param_id(req, param, &id) != ANTAR_OK)
        return;
    if (antar_req_fields(req, NULL, 0) != ANTAR_OK)
        return;
    antar_err_t err = fn(me(req), id, &out);
    if (err == ANTAR_E_CONFLICT) {
        antar_http_fail(req, err, NULL, "%s", conflict_msg);
        return;
    }
    if (err == ANTAR_E_TIMEOUT || err == ANTAR_E_UNAVAILABLE) {
        /* No answer is not a no: the change is kept as asked and confirmed later. */
        antar_http_fail(req, err, NULL,
                        "user-service did not answer in time; nothing is lost: send the same "
                        "request again, or wait and reload");
        return;
    }
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

static void offers_accept(antar_req_t *req)
{
    driver_action(req, "id", offer_accept, "the offer is no longer open");
}

static void offers_reject(antar_req_t *req)
{
    driver_action(req, "id", offer_reject, "the offer is no longer pending");
}

static void trips_pickup(antar_req_t *req)
{
    driver_action(req, "order_id", trip_pickup, "only an accepted trip can be picked up");
}

static void trips_complete(antar_req_t *req)
{
    driver_action(req, "order_id", trip_complete, "only a picked-up trip can be completed");
}

/* A query argument as an integer in [min, max]; false (422 sent) when it is not one. */
static bool query_int(antar_req_t *req, const char *name, long long min, long long max,
                      long long *out)
{
    const char *s = antar_req_query(req, name);
    if (!s)
        return true;
    char *end = NULL;
    errno = 0;
    long long v = strlen(s) <= 18 ? strtoll(s, &end, 10) : 0;
    if (!end || end == s || *end || errno || v < min || v > max) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, name,
                        "%s must be an integer between %lld "
                        "and %lld",
                        name, min, max);
        return false;
    }
    *out = v;
    return true;
}

static void trips_list(antar_req_t *req)
{
    long long cursor = 0, limit = 20;
    json_t *out = NULL;
    if (!query_int(req, "cursor", 1, 9007199254740992LL, &cursor) ||
        !query_int(req, "limit", 1, 50, &limit))
        return;
    antar_err_t err = trip_list(me(req), cursor, (int)limit, &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* ---- internal --------------------------------------------------------------------------
 * Bodies from our other services are read with antar_req_fields_lenient: fields we do not use
 * are ignored (a newer caller may send more), the ones we use are checked as strictly as public
 * input. */

static void internal_credentials_verify(antar_req_t *req)
{
    const char *username = NULL, *password = NULL;
    json_t *out = NULL;
    /* Internal bodies are read leniently (http.h): core may add fields. The limits are core's
     * (username ≤ 254, password ≤ 1024): sign-up allows 128 characters, and a longer password
     * simply fails like any wrong one (401). */
    const antar_field_t fields[] = {
        ANTAR_F_("username", ANTAR_FIELD_STRING, true, 0, 254, &username, NULL),
        ANTAR_F_("password", ANTAR_FIELD_STRING, true, 0, 1024, &password, NULL),
    };
    if (antar_req_fields_lenient(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    antar_err_t err = driver_verify_credentials(username, password, &out);
    if (err == ANTAR_E_UNAUTHORIZED) {
        antar_http_fail(req, ANTAR_E_INVALID_CREDENTIALS, NULL, NULL);
        return;
    }
    if (err == ANTAR_E_UNAVAILABLE) /* every hashing slot busy: the line is bounded */
        antar_http_add_header(req, "Retry-After", "1");
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

static void internal_driver_get(antar_req_t *req)
{
    long long id;
    json_t *out = NULL;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    antar_err_t err = driver_public(id, &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

static void internal_offers_create(antar_req_t *req)
{
    offer_new_t in = {0};
    bool has_driver_lng = false;
    const char *expires_at = NULL;
    json_t *out = NULL;
    bool created = false;
    const antar_field_t fields[] = {
        ANTAR_F_ID("order_id", true, &in.order_id),
        ANTAR_F_ID("driver_id", true, &in.driver_id),
        ANTAR_F_("vehicle_type", ANTAR_FIELD_STRING, false, 0, 16, &in.vehicle_type, NULL),
        ANTAR_F_LAT("pickup_lat", true, &in.pickup_lat, &in.has_pickup),
        ANTAR_F_LNG("pickup_lng", true, &in.pickup_lng, NULL),
        ANTAR_F_LAT("dropoff_lat", true, &in.dropoff_lat, &in.has_dropoff),
        ANTAR_F_LNG("dropoff_lng", true, &in.dropoff_lng, NULL),
        ANTAR_F_ADDRESS("pickup_address", false, &in.pickup_address),
        ANTAR_F_ADDRESS("dropoff_address", false, &in.dropoff_address),
        ANTAR_F_PRICE(true, &in.price, &in.has_price),
        ANTAR_F_("currency", ANTAR_FIELD_STRING, false, 0, 3, &in.currency, NULL),
        ANTAR_F_("expires_at", ANTAR_FIELD_STRING, false, 0, 40, &expires_at, NULL),
        ANTAR_F_("customer_first_name", ANTAR_FIELD_STRING, false, 0, 100, &in.customer_first_name,
                 NULL),
        ANTAR_F_LAT("driver_lat", false, &in.driver_lat, &in.has_driver_pos),
        ANTAR_F_LNG("driver_lng", false, &in.driver_lng, &has_driver_lng),
        ANTAR_F_("pickup_eta_s", ANTAR_FIELD_INT, false, 0, 86400, &in.pickup_eta_s,
                 &in.has_pickup_eta),
    };
    if (antar_req_fields_lenient(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    if (in.vehicle_type && strcmp(in.vehicle_type, "motorcycle") != 0 &&
        strcmp(in.vehicle_type, "car") != 0) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "vehicle_type",
                        "vehicle_type must be motorcycle or car");
        return;
    }
    if (in.has_driver_pos != has_driver_lng) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, in.has_driver_pos ? "driver_lng" : "driver_lat",
                        "driver_lat and driver_lng come together");
        return;
    }
    if (expires_at && (in.expires_ms = antar_time_parse(expires_at)) < 0) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "expires_at",
                        "expires_at must be an RFC 3339 time");
        return;
    }
    antar_outcome_t why = {0};
    antar_err_t err = offer_create(&in, &out, &created, &why);
    antar_http_reply_outcome(req, err, created ? 201 : 200, out, &why);
}

static void internal_offers_expire(antar_req_t *req)
{
    long long id;
    json_t *out = NULL;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    antar_err_t err = offer_expire(id, &out);
    if (err == ANTAR_E_CONFLICT && out) {
        /* Core needs to see that the offer was accepted: it rides along with the 409. */
        json_t *env = antar_envelope(409, NULL, err, NULL, "the offer was already accepted");
        json_object_set_new(env, "result", out);
        antar_http_reply_json(req, 409, env);
        return;
    }
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

static void internal_order_cancelled(antar_req_t *req)
{
    long long id;
    json_t *out = NULL;
    if (antar_req_param_id(req, "order_id", &id) != ANTAR_OK)
        return;
    antar_err_t err = offer_order_cancelled(id, event_id(req), &out);
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

static void internal_driver_rating(antar_req_t *req)
{
    long long id, order_id = 0, rating = 0;
    json_t *out = NULL;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    const antar_field_t fields[] = {
        ANTAR_F_ID("order_id", true, &order_id),
        ANTAR_F_("rating", ANTAR_FIELD_INT, true, 1, 5, &rating, NULL),
    };
    if (antar_req_fields_lenient(req, fields, ANTAR_NFIELDS(fields)) != ANTAR_OK)
        return;
    antar_err_t err = driver_rate(id, order_id, (int)rating, event_id(req), &out);
    if (err == ANTAR_E_CONFLICT) {
        antar_http_fail(req, err, "order_id", "this driver did not complete that order");
        return;
    }
    if (err == ANTAR_E_NOT_YET) {
        antar_http_fail(req, err, "order_id", "this driver's trip is not completed yet");
        return;
    }
    antar_http_reply_outcome(req, err, 200, out, NULL);
}

/* ---- audit (the ops client) ------------------------------------------------------------ */

static void audit_list(antar_req_t *req, audit_kind_t kind, const char *tag)
{
    long long after = 0, next = 0;
    int limit = 0;
    json_t *items = NULL;
    if (antar_req_page(req, 500, 1000, tag, &after, 1, &limit) != ANTAR_OK)
        return;
    antar_err_t err = audit_page(kind, after, limit, &items, &next);
    if (err != ANTAR_OK) {
        antar_http_reply_outcome(req, err, 200, NULL, NULL);
        return;
    }
    char cur[ANTAR_CURSOR_MAX];
    if (next > 0)
        antar_cursor_encode(tag, &next, 1, cur);
    antar_http_reply_page(req, items, next > 0 ? cur : NULL);
}

static void audit_trips(antar_req_t *req)
{
    audit_list(req, AUDIT_TRIPS, "dat");
}

static void audit_offers(antar_req_t *req)
{
    audit_list(req, AUDIT_OFFERS, "dao");
}

static void audit_drivers(antar_req_t *req)
{
    audit_list(req, AUDIT_DRIVERS, "dad");
}

#define DRV ANTAR_AUTH_DRIVER, "driver"
#define SVC ANTAR_AUTH_SERVICE, "internal"
#define OPS ANTAR_AUTH_SERVICE, "ops"

const antar_route_t driver_routes[] = {
    {"POST", "/drivers", drivers_signup, ANTAR_AUTH_NONE, NULL, 0},
    {"GET", "/drivers/me", drivers_me_get, DRV, 0},
    {"PATCH", "/drivers/me", drivers_me_patch, DRV, 0},
    {"PUT", "/drivers/me/status", drivers_me_status, DRV, 0},
    {"PUT", "/drivers/me/location", drivers_me_location, DRV, 0},
    {"GET", "/drivers/me/earnings", drivers_me_earnings, DRV, 0},
    {"GET", "/drivers/me/waiting-hint", drivers_me_waiting_hint, DRV, 0},
    {"GET", "/offers", offers_list, DRV, 0},
    {"POST", "/offers/{id}/accept", offers_accept, DRV, 0},
    {"POST", "/offers/{id}/reject", offers_reject, DRV, 0},
    {"POST", "/trips/{order_id}/pickup", trips_pickup, DRV, 0},
    {"POST", "/trips/{order_id}/complete", trips_complete, DRV, 0},
    {"GET", "/trips", trips_list, DRV, 0},
    {"POST", "/internal/credentials/verify", internal_credentials_verify, SVC, 0},
    {"GET", "/internal/drivers/{id}", internal_driver_get, SVC, 0},
    {"POST", "/internal/drivers/{id}/ratings", internal_driver_rating, SVC, 0},
    {"POST", "/internal/offers", internal_offers_create, SVC, 0},
    {"POST", "/internal/offers/{id}/expire", internal_offers_expire, SVC, 0},
    {"POST", "/internal/orders/{order_id}/cancelled", internal_order_cancelled, SVC, 0},
    {"GET", "/internal/audit/trips", audit_trips, OPS, 0},
    {"GET", "/internal/audit/offers", audit_offers, OPS, 0},
    {"GET", "/internal/audit/drivers", audit_drivers, OPS, 0},
};
const size_t driver_routes_len = sizeof driver_routes / sizeof driver_routes[0];
