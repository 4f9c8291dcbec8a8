/* user-service routes: HTTP only. Each handler validates its fields (antar_req_fields sends
 * the 4xx naming the field), takes the caller from the verified principal, calls users.c or
 * orders.c, and replies once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "antar/events.h"
#include "antar/trace.h"
#include "user.h"

static long long caller_id(antar_req_t *req)
{
    const antar_principal_t *p = antar_req_principal(req);
    return p ? p->id : 0;
}

/* ---- accounts ---------------------------------------------------------------------------- */

static bool formats_ok(antar_req_t *req, const char *email, const char *phone)
{
    if (email && !antar_valid_email(email)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "email",
                        "email must be a valid address such as name@example.com");
        return false;
    }
    if (phone && !antar_valid_phone(phone)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "phone",
                        "phone must be 8 to 15 digits, optionally starting with +");
        return false;
    }
    return true;
}

static void post_users(antar_req_t *req)
{
    const char *name = NULL, *email = NULL, *phone = NULL, *password = NULL;
    const antar_field_t f[] = {
        ANTAR_F_NAME(true, &name),
        ANTAR_F_EMAIL(true, &email),
        ANTAR_F_PHONE(true, &phone),
        ANTAR_F_NEW_PASSWORD(&password),
    };
    if (antar_req_fields(req, f, ANTAR_NFIELDS(f)) != ANTAR_OK)
        return;
    if (!formats_ok(req, email, phone))
        return;
    antar_outcome_t why = {0};
    json_t *user = NULL;
    antar_err_t err = users_signup(name, email, phone, password, &user, &why);
    antar_http_reply_outcome(req, err, 201, user, &why);
}

static void get_me(antar_req_t *req)
{
    antar_outcome_t why = {0};
    json_t *user = NULL;
    antar_err_t err = users_get(caller_id(req), &user, &why);
    antar_http_reply_outcome(req, err, 200, user, &why);
}

static void patch_me(antar_req_t *req)
{
    const char *name = NULL, *email = NULL, *phone = NULL;
    const antar_field_t f[] = {
        ANTAR_F_NAME(false, &name),
        ANTAR_F_EMAIL(false, &email),
        ANTAR_F_PHONE(false, &phone),
    };
    if (antar_req_fields(req, f, ANTAR_NFIELDS(f)) != ANTAR_OK)
        return;
    if (!name && !email && !phone) {
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, NULL,
                        "give at least one of name, email, phone");
        return;
    }
    if (!formats_ok(req, email, phone))
        return;
    antar_outcome_t why = {0};
    json_t *user = NULL;
    antar_err_t err = users_update(caller_id(req), name, email, phone, &user, &why);
    antar_http_reply_outcome(req, err, 200, user, &why);
}

/* ---- orders ------------------------------------------------------------------------------ */

/* An Idempotency-Key is 1 to 64 printable ASCII characters. */
static bool key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > 64)
        return false;
    for (; *k; k++)
        if (*k < 0x20 || *k > 0x7e)
            return false;
    return true;
}

static void post_orders(antar_req_t *req)
{
    order_input_t in = {0};
    const antar_field_t f[] = {
        ANTAR_F_LAT("pickup_lat", true, &in.pickup_lat, NULL),
        ANTAR_F_LNG("pickup_lng", true, &in.pickup_lng, NULL),
        ANTAR_F_ADDRESS("pickup_address", true, &in.pickup_address),
        ANTAR_F_LAT("dropoff_lat", true, &in.dropoff_lat, NULL),
        ANTAR_F_LNG("dropoff_lng", true, &in.dropoff_lng, NULL),
        ANTAR_F_ADDRESS("dropoff_address", true, &in.dropoff_address),
        ANTAR_F_VEHICLE(true, &in.vehicle_type),
        ANTAR_F_("quote_id", ANTAR_FIELD_STRING, false, 1, 64, &in.quote_id, NULL),
    };
    if (antar_req_fields(req, f, ANTAR_NFIELDS(f)) != ANTAR_OK)
        return;
    in.idempotency_key = antar_req_header(req, "Idempotency-Key");
    if (in.idempotency_key && !key_ok(in.idempotency_key)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "Idempotency-Key",
                        "Idempotency-Key must be 1 to 64 printable ASCII characters");
        return;
    }
    antar_outcome_t why = {0};
    json_t *order = NULL;
    bool replayed = false;
    antar_err_t err = orders_create(caller_id(req), &in, &order, &replayed, &why);
    if (err != ANTAR_OK) {
        antar_http_reply_outcome(req, err, 0, NULL, &why);
        return;
    }
    /* A replay answers 200 with the order the first request created (201 only creates), so a
     * client can tell a retry from a new order; the header says so too. */
    if (replayed)
        antar_http_add_header(req, "Idempotent-Replayed", "true");
    antar_http_reply(req, replayed ? 200 : 201, order);
}

/* Cursors are opaque to clients: base64url("o:<last id>"), lib/http_page.c's format. */
static void get_orders(antar_req_t *req)
{
    long long before = 0;
    int limit = 20;
    if (antar_req_page(req, 20, 50, "o", &before, 1, &limit) != ANTAR_OK)
        return;
    json_t *items = NULL;
    long long next = 0;
    antar_err_t err = orders_list(caller_id(req), before, limit, &items, &next);
    if (err != ANTAR_OK) {
        antar_http_reply_outcome(req, err, 0, NULL, NULL);
        return;
    }
    char cur[ANTAR_CURSOR_MAX];
    if (next > 0)
        antar_cursor_encode("o", &next, 1, cur);
    antar_http_reply_page(req, items, next > 0 ? cur : NULL);
}

static void get_order(antar_req_t *req)
{
    long long id;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    antar_outcome_t why = {0};
    json_t *order = NULL;
    antar_err_t err = orders_get_for_user(caller_id(req), id, &order, &why);
    antar_http_reply_outcome(req, err, 200, order, &why);
}

static void post_cancel(antar_req_t *req)
{
    long long id;
    const char *reason = NULL;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    const antar_field_t f[] = {
        ANTAR_F_("reason", ANTAR_FIELD_STRING, false, 1, 255, &reason, NULL),
    };
    if (antar_req_fields(req, f, ANTAR_NFIELDS(f)) != ANTAR_OK)
        return;
    antar_outcome_t why = {0};
    json_t *order = NULL;
    antar_err_t err = orders_cancel(caller_id(req), id, reason, &order, &why);
    antar_http_reply_outcome(req, err, 200, order, &why);
}

static void post_rating(antar_req_t *req)
{
    long long id, rating = 0;
    const char *comment = NULL;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    const antar_field_t f[] = {
        ANTAR_F_("rating", ANTAR_FIELD_INT, true, 1, 5, &rating, NULL),
        ANTAR_F_("comment", ANTAR_FIELD_STRING, false, 0, 500, &comment, NULL),
    };
    if (antar_req_fields(req, f, ANTAR_NFIELDS(f)) != ANTAR_OK)
        return;
    antar_outcome_t why = {0};
    json_t *r = NULL;
    antar_err_t err = orders_rate(caller_id(req), id, (int)rating, comment, &r, &why);
    antar_http_reply_outcome(req, err, 201, r, &why);
}

/* ---- internal (service tokens) ------------------------------------------------------------ */

static void post_verify(antar_req_t *req)
{
    const char *username = NULL, *password = NULL;
    /* Longer passwords than sign-up allows are checked (and fail) like any other, so that the
     * answer is always the same 401 and never tells anything about the account. */
    const antar_field_t f[] = {
        ANTAR_F_("username", ANTAR_FIELD_STRING, true, 1, 254, &username, NULL),
        ANTAR_F_("password", ANTAR_FIELD_STRING, true, 1, 1024, &password, NULL),
    };
    if (antar_req_fields(req, f, ANTAR_NFIELDS(f)) != ANTAR_OK)
        return;
    json_t *who = NULL;
    antar_err_t err = users_verify_credentials(username, password, &who);
    if (err == ANTAR_E_UNAUTHORIZED) {
        antar_http_fail(req, ANTAR_E_INVALID_CREDENTIALS, NULL, NULL);
        return;
    }
    if (err != ANTAR_OK) {
        if (err == ANTAR_E_UNAVAILABLE) /* every hashing slot busy: the line is bounded */
            antar_http_add_header(req, "Retry-After", "1");
        antar_http_reply_outcome(req, err, 0, NULL, NULL);
        return;
    }
    antar_http_reply(req, 200, who);
}

static void get_internal_order(antar_req_t *req)
{
    long long id;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    antar_outcome_t why = {0};
    json_t *order = NULL;
    antar_err_t err = orders_get_internal(id, &order, &why);
    antar_http_reply_outcome(req, err, 200, order, &why);
}

typedef antar_err_t (*driver_move_fn)(long long id, long long driver_id, const json_t *driver,
                                      json_t **out, antar_outcome_t *why);

/* Take the optional "driver" object out of the body (the driver's public profile, which
 * driver-service sends along for the order_status event) before the body is validated; the
 * result is kept until the reply, or NULL when absent. Only its known fields are ever copied.
 * A "driver" that is not an object is 422 invalid_field (reply sent, *bad set). */
static const json_t *driver_hint(antar_req_t *req, bool *bad)
{
    json_t *body = antar_req_body(req);
    json_t *d = json_object_get(body, "driver");
    *bad = false;
    if (!d)
        return NULL;
    if (!json_is_object(d)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "driver", "driver must be an object");
        *bad = true;
        return NULL;
    }
    json_t *kept = antar_req_keep(req, json_incref(d));
    json_object_del(body, "driver");
    return kept;
}

static void driver_move(antar_req_t *req, driver_move_fn fn)
{
    long long id, driver_id = 0;
    bool bad;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    const json_t *hint = driver_hint(req, &bad);
    if (bad)
        return;
    const antar_field_t f[] = {
        ANTAR_F_ID("driver_id", true, &driver_id),
    };
    if (antar_req_fields(req, f, ANTAR_NFIELDS(f)) != ANTAR_OK)
        return;
    antar_outcome_t why = {0};
    json_t *order = NULL;
    antar_err_t err = fn(id, driver_id, hint, &order, &why);
    antar_http_reply_outcome(req, err, 200, order, &why);
}

static void post_assign(antar_req_t *req)
{
    long long id, driver_id = 0, offer_id = 0, pickup_eta_s = -1;
    bool bad;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    const json_t *hint = driver_hint(req, &bad);
    if (bad)
        return;
    const antar_field_t f[] = {
        ANTAR_F_ID("driver_id", true, &driver_id),
        ANTAR_F_ID("offer_id", false, &offer_id),
        ANTAR_F_("pickup_eta_s", ANTAR_FIELD_INT, false, 0, 86400, &pickup_eta_s, NULL),
    };
    if (antar_req_fields(req, f, ANTAR_NFIELDS(f)) != ANTAR_OK)
        return;
    antar_outcome_t why = {0};
    json_t *order = NULL;
    antar_err_t err = orders_assign(id, driver_id, offer_id, pickup_eta_s, hint, &order, &why);
    antar_http_reply_outcome(req, err, 200, order, &why);
}

static void post_pickup(antar_req_t *req)
{
    driver_move(req, orders_pickup);
}

static void post_complete(antar_req_t *req)
{
    driver_move(req, orders_complete);
}

static void post_expire(antar_req_t *req)
{
    long long id;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    if (antar_req_fields(req, NULL, 0) != ANTAR_OK)
        return;
    const char *key = antar_req_header(req, "Idempotency-Key");
    if (key && !key_ok(key)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "Idempotency-Key",
                        "Idempotency-Key must be 1 to 64 printable ASCII characters");
        return;
    }
    antar_outcome_t why = {0};
    json_t *order = NULL;
    antar_err_t err = orders_expire(id, key, &order, &why);
    antar_http_reply_outcome(req, err, 200, order, &why);
}

/* ---- push (antar/events.h) ------------------------------------------------------------------ */

/* GET /events: a customer's, a driver's or the ops city stream. A customer's stream starts out
 * following the order a driver is on (its driver_position events). */
static void get_events(antar_req_t *req)
{
    const antar_principal_t *p = antar_req_principal(req);
    long long ids[1];
    size_t n = 0;
    if (p && p->role == ANTAR_AUTH_USER) {
        antar_err_t err = orders_following(p->id, ids, 1, &n);
        if (err != ANTAR_OK) {
            antar_http_reply_outcome(req, err, 0, NULL, NULL);
            return;
        }
    }
    antar_events_serve(req, ids, n);
}

/* ---- audit (the ops client) ---------------------------------------------------------------- */

static void get_audit_orders(antar_req_t *req)
{
    long long after = 0, next = 0;
    int limit = 0;
    if (antar_req_page(req, 500, 1000, "uao", &after, 1, &limit) != ANTAR_OK)
        return;
    json_t *items = NULL;
    antar_err_t err = orders_audit(after, limit, &items, &next);
    if (err != ANTAR_OK) {
        antar_http_reply_outcome(req, err, 0, NULL, NULL);
        return;
    }
    char cur[ANTAR_CURSOR_MAX];
    if (next > 0)
        antar_cursor_encode("uao", &next, 1, cur);
    antar_http_reply_page(req, items, next > 0 ? cur : NULL);
}

/* ---- ops reads for the console (docs/console.md) -------------------------------------------- */

/* GET /ops/orders/{id}: the order, its timeline and every recorded span of its traces. */
static void get_ops_order(antar_req_t *req)
{
    long long id;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    antar_outcome_t why = {0};
    json_t *out = NULL;
    antar_err_t err = orders_ops(id, &out, &why);
    antar_http_add_header(req, "Cache-Control", "no-store");
    antar_http_reply_outcome(req, err, 200, out, &why);
}

static bool trace_id_ok(const char *s)
{
    return s && strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32 && strspn(s, "0") != 32;
}

/* GET /ops/traces/{trace_id}: the recorded spans of one trace. */
static void get_ops_trace(antar_req_t *req)
{
    const char *tid = antar_req_param(req, "trace_id");
    if (!trace_id_ok(tid)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "trace_id",
                        "trace_id must be 32 lowercase hex digits, not all zero");
        return;
    }
    json_t *steps = NULL, *spans = NULL;
    antar_err_t err = antar_trace_record_read(0, tid, &steps, &spans);
    if (err != ANTAR_OK) {
        antar_http_reply_outcome(req, err, 0, NULL, NULL);
        return;
    }
    json_decref(steps);
    antar_http_add_header(req, "Cache-Control", "no-store");
    antar_http_reply(req, 200, json_pack("{s:s, s:o}", "trace_id", tid, "spans", spans));
}

#define U ANTAR_AUTH_USER
#define S ANTAR_AUTH_SERVICE

const antar_route_t user_routes[] = {
    {"POST", "/users", post_users, ANTAR_AUTH_NONE, NULL, 0},
    {"GET", "/users/me", get_me, U, "user", 0},
    {"PATCH", "/users/me", patch_me, U, "user", 0},
    {"POST", "/orders", post_orders, U, "user", 0},
    {"GET", "/orders", get_orders, U, "user", 0},
    {"GET", "/orders/{id}", get_order, U, "user", 0},
    {"POST", "/orders/{id}/cancel", post_cancel, U, "user", 0},
    {"POST", "/orders/{id}/rating", post_rating, U, "user", 0},
    {"POST", "/internal/credentials/verify", post_verify, S, "internal", 0},
    {"GET", "/internal/orders/{id}", get_internal_order, S, "internal", 0},
    {"POST", "/internal/orders/{id}/assign", post_assign, S, "internal", 0},
    {"POST", "/internal/orders/{id}/pickup", post_pickup, S, "internal", 0},
    {"POST", "/internal/orders/{id}/complete", post_complete, S, "internal", 0},
    {"POST", "/internal/orders/{id}/expire", post_expire, S, "internal", 0},
    {"GET", "/internal/audit/orders", get_audit_orders, S, "ops", 0},
    /* Every principal: the handler admits a service token only with the ops scope. */
    {"GET", "/events", get_events, U | ANTAR_AUTH_DRIVER | S, NULL, 0},
    {"GET", "/ops/orders/{id}", get_ops_order, S, "ops", 0},
    {"GET", "/ops/traces/{trace_id}", get_ops_trace, S, "ops", 0},
    /* The browser console's files, a fixed list (console.c); the edge routes /console/ here. */
    {"GET", "/console/{file}", console_file, ANTAR_AUTH_NONE, NULL, 0},
};
const size_t user_routes_len = sizeof user_routes / sizeof user_routes[0];
