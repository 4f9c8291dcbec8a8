/* antar/http.h — the HTTP server every service uses: libmicrohttpd (epoll + thread pool), a
 * router with {param} patterns, body collection and parsing, field validation, and the one
 * place where the response envelope of DESIGN.md is built.
 *
 * Life of a request: MHD collects the body (413 past cfg->body_limit), the router matches the
 * path (404) and method (405 + Allow), the content type is checked on writes (415), the body is
 * parsed (JSON → 400 malformed_json; form → string fields), the auth hook runs for routes that
 * need a role (401/403), then the handler runs. A handler must end with exactly one reply call.
 * All memory of a request (body, params, kept JSON) is released after the response is queued.
 */
#ifndef ANTAR_HTTP_H
#define ANTAR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "antar/config.h"
#include "antar/error.h"

typedef struct antar_req antar_req_t;
typedef struct antar_server antar_server_t;

/* Roles, as a bitmask on routes and as the role of a principal. */
enum {
    ANTAR_AUTH_NONE = 0,    /* public route */
    ANTAR_AUTH_USER = 1,    /* a customer's token (client user-app) */
    ANTAR_AUTH_DRIVER = 2,  /* a driver's token (client driver-app) */
    ANTAR_AUTH_SERVICE = 4, /* a service token (client_credentials) */
};

/* Route flags. */
enum {
    ANTAR_ROUTE_NO_CSRF = 1, /* state-changing route exempt from CSRF (OAuth endpoints) */
    ANTAR_ROUTE_RAW = 2,     /* handler reads the raw body itself (OAuth form endpoints keep
                                their RFC error format); the body is still size-limited */
    /* Also served on the internal listener (its path is not under /internal/): the ops routes,
     * and core's token and JWKS endpoints that peers fetch their credentials from. Only for
     * handlers that call no peer. */
    ANTAR_ROUTE_INTERNAL_TOO = 4,
};

/* Who is calling, filled by the auth hook from a verified access token. */
typedef struct {
    char sub[64];       /* "user:17", "driver:5", "service:user-service" */
    long long id;       /* 17 for user:17 / driver:17; 0 for a service */
    unsigned role;      /* one ANTAR_AUTH_* bit */
    char client_id[64]; /* "user-app", "driver-app", "user-service", ... */
    char scope[256];    /* space-separated */
    char jti[64];
    char kid[64];  /* the signing key's id: a retired key's tokens are refused (revocation) */
    long long exp; /* unix seconds */
} antar_principal_t;

typedef void (*antar_handler_fn)(antar_req_t *req);

typedef struct {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* "/orders/{id}/cancel"; a {name} segment matches one path segment */
    antar_handler_fn handler;
    unsigned auth;     /* bitmask of roles allowed; ANTAR_AUTH_NONE = anyone */
    const char *scope; /* scope the token must carry, or NULL */
    unsigned flags;    /* ANTAR_ROUTE_* */
} antar_route_t;

/* Checks the caller for a route that needs a role. Returns ANTAR_OK after setting the request's
 * principal, or an error (UNAUTHORIZED, INVALID_TOKEN, FORBIDDEN, CSRF_INVALID) that the server
 * turns into the envelope. Installed by antar_auth (lib/auth). */
typedef antar_err_t (*antar_auth_hook_fn)(antar_req_t *req, const antar_route_t *route);

/* A dependency check for /health: ANTAR_OK when the dependency answers. */
typedef antar_err_t (*antar_health_fn)(void);

/* ---- server ---------------------------------------------------------------------------- */

/* New server for cfg (borrowed, must outlive the server). Registers the built-in routes
 * GET /health, /health/live, /health/ready, /metrics, /openapi.json, /docs and /docs/{file}.
 * NULL on out of memory. */
antar_server_t *antar_server_new(const antar_config_t *cfg);
/* Add routes (the array is borrowed and must outlive the server). */
void antar_server_add_routes(antar_server_t *s, const antar_route_t *routes, size_t n);
/* Add a named dependency to /health ("mariadb", "redis", "core-service", ...). */
void antar_server_add_health_check(antar_server_t *s, const char *name, antar_health_fn fn);
void antar_server_set_auth_hook(antar_server_t *s, antar_auth_hook_fn fn);
/* Print "METHOD PATTERN\n" for every route, built-in ones included (contract tests). */
void antar_server_print_routes(const antar_server_t *s, FILE *out);
/* Bind the two listeners and start their thread pools: cfg->port (cfg->threads) serves every
 * route but /internal/...; cfg->internal_port (cfg->internal_threads) serves /internal/..., the
 * ops routes and ANTAR_ROUTE_INTERNAL_TOO routes, on threads that may not call peers
 * (antar_thread_is_internal, util.h). 0, or -1 with a logged reason. */
int antar_server_start(antar_server_t *s);
/* Graceful stop, in this order (lib/service.c on SIGTERM):
 * set_draining — /health/ready answers 503 "draining" and every reply carries Connection: close;
 * quiesce — both listeners stop accepting (new connects are refused; open ones are served);
 * wait_idle — until no request is in flight (0) or deadline_ms on the monotonic clock (-1). */
void antar_server_set_draining(antar_server_t *s);
bool antar_server_draining(const antar_server_t *s);
void antar_server_quiesce(antar_server_t *s);
int antar_server_wait_idle(antar_server_t *s, long long deadline_ms);
long antar_server_inflight(const antar_server_t *s);
/* Stop accepting, finish running requests, join threads (both listeners). */
void antar_server_stop(antar_server_t *s);
void antar_server_free(antar_server_t *s);

/* ---- request --------------------------------------------------------------------------- */

const char *antar_req_method(const antar_req_t *req);
/* Path without the query string. */
const char *antar_req_path(const antar_req_t *req);
/* The matched route pattern ("/orders/{id}"), for logs and metrics. */
const char *antar_req_route(const antar_req_t *req);
/* Path parameter by name, or NULL. Borrowed until the reply. */
const char *antar_req_param(const antar_req_t *req, const char *name);
/* Path parameter as a positive id; ANTAR_E_NOT_FOUND (and a 404 reply already sent) when it
 * is not a decimal integer in 1..2^53. Handler returns on error. */
antar_err_t antar_req_param_id(antar_req_t *req, const char *name, long long *out);
/* Query-string argument, or NULL. */
const char *antar_req_query(const antar_req_t *req, const char *name);
/* Request header (case-insensitive), or NULL. */
const char *antar_req_header(const antar_req_t *req, const char *name);
/* Parsed body: a JSON object (form fields become JSON strings). Never NULL for a handler (an
 * empty object when there is no body). Borrowed until the reply. */
json_t *antar_req_body(const antar_req_t *req);
bool antar_req_is_form(const antar_req_t *req);
/* The raw body bytes (for ANTAR_ROUTE_RAW routes) and its length; "" when none. */
const char *antar_req_raw_body(const antar_req_t *req, size_t *len);
const char *antar_req_content_type(const antar_req_t *req);
/* How many times the query string names the parameter (0 when absent). */
int antar_req_query_count(const antar_req_t *req, const char *name);
/* Client address as text ("127.0.0.1"). Behind the edge (a loopback peer) it is the edge's
 * X-Forwarded-For, which the edge overwrites with the address it saw; otherwise the peer. */
const char *antar_req_client_ip(const antar_req_t *req);
/* Verified caller, or NULL on a public route. */
const antar_principal_t *antar_req_principal(const antar_req_t *req);
antar_principal_t *antar_req_principal_mut(antar_req_t *req);
/* Request id (also sent back as X-Request-Id). */
const char *antar_req_id(const antar_req_t *req);
/* Keep a JSON value alive until the reply (steals the reference); returns it. */
json_t *antar_req_keep(antar_req_t *req, json_t *value);
/* Request-lifetime string copy; released after the reply. NULL on out of memory. */
char *antar_req_strdup(antar_req_t *req, const char *s);

/* ---- field validation ------------------------------------------------------------------ */

typedef enum {
    ANTAR_FIELD_STRING, /* out: const char ** ; min/max = length in characters (UTF-8) */
    ANTAR_FIELD_INT,    /* out: long long *   ; min/max = value range */
    ANTAR_FIELD_NUMBER, /* out: double *      ; min/max = value range (finite only) */
    ANTAR_FIELD_BOOL,   /* out: bool *        ; JSON true/false, form "true"/"false" */
    ANTAR_FIELD_ENUM,   /* out: const char ** ; one of choices */
} antar_field_type_t;

typedef struct {
    const char *name;
    antar_field_type_t type;
    bool required;
    double min, max;
    const char *const *choices; /* ENUM: NULL-terminated list */
    void *out;                  /* see the type; untouched when the field is absent */
    bool *present;              /* optional: set to whether the field was given */
} antar_field_t;

/* Validate the body against fields: a field not listed (other than csrf_token) is 422
 * unknown_field; a missing required field 422 missing_field; a wrong type, a string with a
 * control character or invalid UTF-8, or a value out of range 422 invalid_field. JSON bodies
 * must use JSON types (a number for INT/NUMBER); form bodies give strings that must parse
 * completely. On failure the 4xx envelope naming the field is already sent and the error is
 * returned: the handler just returns. Outputs are written only on success. */
antar_err_t antar_req_fields(antar_req_t *req, const antar_field_t *fields, size_t n);

/* antar_req_fields for service-to-service messages: only for routes that take a service token
 * (ANTAR_AUTH_SERVICE); public routes stay strict, so that a client's typo or wrong type is
 * always reported. Our services are deployed one at a time, so a message from a newer (or older)
 * peer must never be refused for its shape alone. Relaxed, and nothing else:
 *  - a field not listed is ignored (a newer sender may add fields);
 *  - a JSON null counts as absent (a sender with no value for an optional field), so a required
 *    field sent as null is 422 missing_field;
 *  - INT, NUMBER and BOOL also take a JSON string holding the value, parsed exactly as a form
 *    field is ("42", "-6.2", "1e3", "true"): numbers that went through a DECIMAL column, a queue
 *    or another language as text.
 * Everything else is checked as strictly as antar_req_fields, with the same 422 naming the
 * field: wrong types (5.5 or "5.0" for an INT, 1 for a BOOL), numeric strings with anything
 * around or in them (" 5", "5x", "0x10", "inf", "nan"), control characters and invalid UTF-8 in
 * strings, lengths (in characters) and ranges. Outputs are written only on success. */
antar_err_t antar_req_fields_lenient(antar_req_t *req, const antar_field_t *fields, size_t n);

/* ---- application/x-www-form-urlencoded: the toolkit's one strict decoder -----------------
 * Behind every form body the server parses (antar_req_fields then checks the fields) and the
 * OAuth endpoints that read their raw body (they answer in RFC 6749's format, not the
 * envelope). */

/* Limits beyond the body's size; a zero member means none. */
typedef struct {
    size_t max_pairs; /* name=value pairs at most */
    size_t max_value; /* bytes of a decoded value at most */
    bool refuse_nul;  /* a NUL byte in a value is refused here (bodies read by hand) rather than
                         left to antar_req_fields */
} antar_form_limits_t;

/* Decode one form component s[0..len) ('+' is a space, %XX two hex digits) into out, which has
 * room for len + 1 bytes and is NUL-terminated. Returns the decoded length, or -1 for a
 * malformed %-escape and, with refuse_nul, for a NUL byte (raw or %00); out is then garbage. */
long antar_form_unescape(const char *s, size_t len, char *out, bool refuse_nul);
/* Decode a form body into a new JSON object of strings (*out, caller decrefs; lim NULL = no
 * limits). Empty pairs ("a=1&&b=2") are skipped and a name without '=' has the value "".
 * Refused, with a message and, when one field is to blame, its name in field (both always
 * NUL-terminated), *out untouched: a malformed escape or a name that is empty, over 128 bytes
 * or not clean UTF-8 text (BAD_REQUEST); a name given twice (BAD_REQUEST naming it); more pairs
 * than lim->max_pairs (TOO_LARGE); a value over lim->max_value, with a NUL under
 * lim->refuse_nul, or not valid UTF-8 (INVALID_FIELD naming it). Values are wiped from the
 * decoder's buffers before they are freed. */
antar_err_t antar_form_decode(const char *buf, size_t len, const antar_form_limits_t *lim,
                              json_t **out, char *msg, size_t msglen, char *field, size_t fieldlen);

/* ---- field definitions every service shares --------------------------------------------
 * One definition per kind of value, so that a customer's phone and a driver's phone cannot
 * drift apart again. Entries are designated initializers; count a table with
 * ANTAR_NFIELDS(table), never by hand. */

/* Ids are positive and below 2^53, so they stay exact as JSON numbers in any client. */
#define ANTAR_ID_MAX 9007199254740992.0
#define ANTAR_PRICE_MAX 1000000000.0 /* IDR */
#define ANTAR_NFIELDS(table) (sizeof(table) / sizeof((table)[0]))
/* "motorcycle", "car", NULL: the vehicle types of drivers, orders and fares. */
extern const char *const antar_vehicle_types[];

#define ANTAR_F_(nm, ty, req, lo, hi, out_, pres)                                                  \
    {                                                                                              \
        .name = (nm), .type = (ty), .required = (req), .min = (lo), .max = (hi), .out = (out_),    \
        .present = (pres)                                                                          \
    }
/* An id field: integer in 1..ANTAR_ID_MAX. */
#define ANTAR_F_ID(nm, req, out_) ANTAR_F_(nm, ANTAR_FIELD_INT, req, 1, ANTAR_ID_MAX, out_, NULL)
#define ANTAR_F_NAME(req, out_) ANTAR_F_("name", ANTAR_FIELD_STRING, req, 1, 100, out_, NULL)
#define ANTAR_F_EMAIL(req, out_) ANTAR_F_("email", ANTAR_FIELD_STRING, req, 3, 254, out_, NULL)
/* E.164: up to 15 digits after an optional '+' (antar_valid_phone checks the digits). */
#define ANTAR_F_PHONE(req, out_) ANTAR_F_("phone", ANTAR_FIELD_STRING, req, 8, 16, out_, NULL)
/* A new password: 8..128 characters. */
#define ANTAR_F_NEW_PASSWORD(out_)                                                                 \
    ANTAR_F_("password", ANTAR_FIELD_STRING, true, 8, 128, out_, NULL)
#define ANTAR_F_PLATE(req, out_)                                                                   \
    ANTAR_F_("plate_number", ANTAR_FIELD_STRING, req, 1, 16, out_, NULL)
#define ANTAR_F_VEHICLE(req, out_)                                                                 \
    {                                                                                              \
        .name = "vehicle_type", .type = ANTAR_FIELD_ENUM, .required = (req),                       \
        .choices = antar_vehicle_types, .out = (out_)                                              \
    }
#define ANTAR_F_LAT(nm, req, out_, pres) ANTAR_F_(nm, ANTAR_FIELD_NUMBER, req, -90, 90, out_, pres)
#define ANTAR_F_LNG(nm, req, out_, pres)                                                           \
    ANTAR_F_(nm, ANTAR_FIELD_NUMBER, req, -180, 180, out_, pres)
#define ANTAR_F_PRICE(req, out_, pres)                                                             \
    ANTAR_F_("price", ANTAR_FIELD_INT, req, 0, ANTAR_PRICE_MAX, out_, pres)
#define ANTAR_F_ADDRESS(nm, req, out_)                                                             \
    ANTAR_F_(nm, ANTAR_FIELD_STRING, req, (req) ? 1 : 0, 255, out_, NULL)

/* Formats shared by sign-up and profile updates. */
bool antar_valid_email(const char *s);
/* Lower-case the ASCII letters of email in place, the one form emails are stored, looked up and
 * compared in (addresses differing only in case reach the same mailbox in practice). Other bytes
 * are left as they are; NULL is a no-op. */
void antar_email_normalize(char *email);
/* Indonesian-style phone: optional '+', 8 to 15 digits. */
bool antar_valid_phone(const char *s);

/* ---- paging ---------------------------------------------------------------------------- */

/* Room for a cursor from antar_cursor_encode, NUL included, and most values one may carry. */
#define ANTAR_CURSOR_MAX 128
#define ANTAR_CURSOR_VALS 4

/* The paging arguments of a list route: ?limit, an integer from 1 to max (def when absent),
 * and ?cursor, one this service gave out with antar_cursor_encode under the same tag and with
 * n values. On success *limit is set and vals[0..n) hold the cursor's values (all 0 without a
 * cursor). Otherwise the 422 invalid_field naming "limit" or "cursor" is already sent, the
 * outputs are untouched and ANTAR_E_INVALID_FIELD is returned: the handler just returns. */
antar_err_t antar_req_page(antar_req_t *req, int def, int max, const char *tag, long long *vals,
                           size_t n, int *limit);
/* An opaque cursor: base64url of "<tag>:<v0>:…:<vn-1>" (n ≤ ANTAR_CURSOR_VALS non-negative
 * values; tag a short fixed string that names the list) into out. */
void antar_cursor_encode(const char *tag, const long long *vals, size_t n,
                         char out[ANTAR_CURSOR_MAX]);
/* Reply 200 with the list result {"items": items, "next_cursor": next_cursor or null}. Steals
 * items (NULL → []). */
void antar_http_reply_page(antar_req_t *req, json_t *items, const char *next_cursor);

/* ---- responses ------------------------------------------------------------------------- */

/* The envelope {"status", "result", "error"} — built here and nowhere else. Steals result
 * (NULL → null). err == ANTAR_OK means success; otherwise error = {code, message, field}. */
json_t *antar_envelope(int status, json_t *result, antar_err_t err, const char *field,
                       const char *message);
/* Reply with the envelope; steals result. */
void antar_http_reply(antar_req_t *req, int status, json_t *result);
/* Reply with an error envelope: status from the error table; field may be NULL; fmt NULL means
 * the error's default message. */
void antar_http_fail(antar_req_t *req, antar_err_t err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The one reply for a domain call: status and result (stolen) when err is ANTAR_OK, else the
 * error envelope of err (antar_http_fail) with o's field and message. o may be NULL, and is used
 * only when o->err == err, so that what was recorded for one failure never dresses another. */
void antar_http_reply_outcome(antar_req_t *req, antar_err_t err, int status, json_t *result,
                              const antar_outcome_t *o);
/* Reply with a JSON document that is not an envelope (OAuth endpoints only); steals doc. */
void antar_http_reply_json(antar_req_t *req, int status, json_t *doc);
/* Reply with bytes (HTML, static files); copies body. */
void antar_http_reply_raw(antar_req_t *req, int status, const char *content_type, const void *body,
                          size_t len);
/* Add a response header before the reply (copied). */
void antar_http_add_header(antar_req_t *req, const char *name, const char *value);
/* Redirect (302/303) to location. */
void antar_http_redirect(antar_req_t *req, int status, const char *location);

/* ---- the process: one call from each service's main ------------------------------------- */

/* A maintenance command of a service binary ("antar-driver --seed-drivers 20000"): an operator's
 * job run as its own process, never a route. It runs instead of the server, with the config
 * loaded, log lines on stderr (stdout is the command's output), libsodium initialised and, when
 * the service uses the database, the migrations applied. Redis, the HTTP client and the auth
 * module are not initialised. */
typedef struct {
    const char *flag; /* "--seed-drivers" */
    const char *args; /* the arguments it takes, for the usage line ("N"); "" when none */
    const char *help; /* what it does, one or more lines for --help */
    /* argc/argv: the arguments after the flag. Returns the exit status (0 ok, 2 bad input, 1
     * anything else), with a message on stderr when not 0. */
    int (*run)(int argc, char **argv);
} antar_command_t;

typedef struct {
    const char *name; /* "user", "driver", "core" */
    bool uses_db;     /* run migrations from cfg->sql_dir at start; health-check MariaDB */
    bool uses_redis;  /* health-check Redis */
    /* Add the service's routes. Must have no side effects: it also runs for --routes. */
    void (*routes)(antar_server_t *s);
    /* Start the service: load state, start background workers. Runs after the toolkit is
     * initialised and before the server accepts requests. 0 or -1. May be NULL. */
    int (*init)(antar_server_t *s, const antar_config_t *cfg);
    /* Stop background workers (before the server and the libraries are torn down). */
    void (*shutdown)(void);
    /* Maintenance commands, ncommands of them (may be NULL / 0). */
    const antar_command_t *commands;
    size_t ncommands;
} antar_service_t;

/* Load config; with "--routes" print the route table (built-in + svc->routes) and exit 0
 * without touching any server; with "--help" print the usage and the commands; with a command's
 * flag first, run that command (antar_command_t) and return its status. Otherwise init
 * logs/db/redis/httpc/auth, migrate (retrying while MariaDB starts, up to 30 s), build the server,
 * add routes and health checks, call svc->init, serve until SIGINT/SIGTERM, then shut down cleanly.
 * Returns the process exit code. */
int antar_service_main(int argc, char **argv, const antar_service_t *svc);

#endif
