/* antar/error.h — the one error enum of the toolkit.
 *
 * Every lib and domain function that can fail returns an antar_err_t (and domain code may say
 * more in an antar_outcome_t, below). Only the route layer turns one into an HTTP status and
 * the envelope (antar_http_reply_outcome, antar_http_fail), through the table below:
 * the single place where an error gets its status, its wire code and its default message.
 * New codes are only ever appended.
 */
#ifndef ANTAR_ERROR_H
#define ANTAR_ERROR_H

/* X(NAME, http_status, "wire_code", "default message") */
#define ANTAR_ERROR_MAP(X)                                                                         \
    X(OK, 200, "ok", "ok")                                                                         \
    X(BAD_REQUEST, 400, "bad_request", "the request is malformed")                                 \
    X(MALFORMED_JSON, 400, "malformed_json", "the body is not valid JSON")                         \
    X(UNAUTHORIZED, 401, "unauthorized", "a valid bearer token is required")                       \
    X(INVALID_TOKEN, 401, "invalid_token", "the access token is invalid, expired or revoked")      \
    X(FORBIDDEN, 403, "forbidden", "this token may not do that")                                   \
    X(CSRF_INVALID, 403, "csrf_token_invalid", "a valid CSRF token is required")                   \
    X(NOT_FOUND, 404, "not_found", "no such resource")                                             \
    X(METHOD_NOT_ALLOWED, 405, "method_not_allowed", "method not allowed on this path")            \
    X(CONFLICT, 409, "conflict", "the resource is in a state that does not allow this")            \
    X(DUPLICATE, 409, "duplicate", "a resource with that value already exists")                    \
    X(TOO_LARGE, 413, "payload_too_large", "the request body is too large")                        \
    X(UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type",                                       \
      "use application/json or application/x-www-form-urlencoded")                                 \
    X(INVALID_FIELD, 422, "invalid_field", "a field has an invalid value")                         \
    X(MISSING_FIELD, 422, "missing_field", "a required field is missing")                          \
    X(UNKNOWN_FIELD, 422, "unknown_field", "the body has a field this endpoint does not take")     \
    X(TOO_MANY_REQUESTS, 429, "too_many_requests", "too many attempts, try again later")           \
    X(INTERNAL, 500, "internal_error", "internal error")                                           \
    X(UPSTREAM, 502, "upstream_error", "a service this request depends on failed")                 \
    X(UNAVAILABLE, 503, "service_unavailable", "a dependency is unavailable")                      \
    X(TIMEOUT, 504, "upstream_timeout", "a service this request depends on timed out")             \
    X(NOMEM, 500, "internal_error", "out of memory")                                               \
    X(DB, 503, "database_unavailable", "the database is unavailable")                              \
    X(KV, 503, "redis_unavailable", "redis is unavailable")                                        \
    X(GONE, 410, "gone", "the resource is no longer available")                                    \
    X(PRECONDITION, 412, "precondition_failed", "a precondition failed")                           \
    X(INVALID_CREDENTIALS, 401, "invalid_credentials", "invalid username or password")             \
    X(NOT_YET, 409, "state_pending",                                                               \
      "the resource has not reached the state this needs yet; retry later")                        \
    X(NOT_ACCEPTABLE, 406, "not_acceptable", "the Accept header rules out every answer this has")  \
    X(DB_BUSY, 503, "database_busy",                                                               \
      "the database gave way to a concurrent change; nothing was applied, send it again")

typedef enum {
#define ANTAR_ERR_ENUM(name, status, code, msg) ANTAR_E_##name,
    ANTAR_ERROR_MAP(ANTAR_ERR_ENUM)
#undef ANTAR_ERR_ENUM
        ANTAR_E__COUNT
} antar_err_t;

#define ANTAR_OK ANTAR_E_OK

/* HTTP status for an error (500 for an out-of-range value). */
int antar_err_status(antar_err_t err);
/* Wire code, e.g. "invalid_field". Static string, never NULL. */
const char *antar_err_code(antar_err_t err);
/* Default human message. Static string, never NULL. */
const char *antar_err_message(antar_err_t err);

/* ---- the outcome of a domain call --------------------------------------------------------
 * Domain code returns an antar_err_t and, when it has more to say than the table's default,
 * fills an antar_outcome_t: the field the error is about and a message for people. The route
 * layer sends it with antar_http_reply_outcome (http.h); antar_httpc_outcome (httpc.h) fills
 * one from a peer's answer. Plain data: no allocation, nothing to release. */
#define ANTAR_OUTCOME_FIELD_MAX 64
#define ANTAR_OUTCOME_MESSAGE_MAX 200
typedef struct {
    antar_err_t err;                         /* ANTAR_OK until a failure is recorded */
    char field[ANTAR_OUTCOME_FIELD_MAX];     /* "" when the error is about no one field */
    char message[ANTAR_OUTCOME_MESSAGE_MAX]; /* "" means the error's default message */
} antar_outcome_t;

/* Record err in o (NULL: nothing is recorded) with field (NULL or "": none) and a printf-style
 * message (fmt NULL: the table's default). Longer texts are cut to fit. Returns err, so that
 * domain code reads `return antar_outcome_fail(o, ANTAR_E_CONFLICT, NULL, "...");`. */
antar_err_t antar_outcome_fail(antar_outcome_t *o, antar_err_t err, const char *field,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The error whose wire code is code ("invalid_field"), or ANTAR_E__COUNT when none is. Codes
 * shared by two errors (internal_error) give the first. */
antar_err_t antar_err_from_code(const char *code);

/* ---- language of error.message -------------------------------------------------------------
 * A client may ask for Indonesian messages with Accept-Language; error.code never changes. */
typedef enum { ANTAR_LANG_EN = 0, ANTAR_LANG_ID } antar_lang_t;

/* The language an Accept-Language value asks for among those the messages exist in: Indonesian
 * when "id" (or "id-…", or the old tag "in") has the highest q-value of the two (a tie goes to
 * the one listed first; "*" counts for English), else English. NULL or garbage: English. */
antar_lang_t antar_lang_from_accept(const char *accept_language);
/* Default message in lang (English for an unknown lang). Static string, never NULL. */
const char *antar_err_message_lang(antar_err_t err, antar_lang_t lang);

/* ---- the upstream behind a 502/503/504 ------------------------------------------------------
 * The service client notes which peer failed (and why) on the calling thread, bound to the
 * thread's current request (its trace span), so that antar_http_fail can name the peer in the
 * envelope's message and send Retry-After while that peer's circuit is open, without every
 * handler passing it along. A note from an earlier request on the same thread is never used. */
/* upstream NULL clears the note. reason: "circuit_open", "unreachable", "timeout", "error". */
void antar_err_note_upstream(const char *upstream, const char *reason, long retry_after_ms);
/* The note for the current request: 1 and upstream/reason filled (static strings), or 0. */
int antar_err_noted_upstream(const char **upstream, const char **reason, long *retry_after_ms);

#endif
