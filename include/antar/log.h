/* antar/log.h — structured logs: one JSON object per line on stdout.
 *
 * Every line has "ts" (RFC 3339 UTC, ms), "level", "service", "event", and the current trace's
 * "trace_id"/"span_id" when the thread has one. Never pass secrets (passwords, tokens, CSRF
 * tokens, client secrets) in fields.
 * Events written by the toolkit: "request" (method, path, route, status, duration_ms,
 * request_id, trace_id, span_id, parent_span_id) by the server for each request, and "call"
 * (target, method, path, status, outcome, duration_ms, trace_id, span_id) by the HTTP client for
 * each outgoing service call. The demo reads these to show who called whom.
 */
#ifndef ANTAR_LOG_H
#define ANTAR_LOG_H

#include <jansson.h>

void antar_log_init(const char *service);
/* Write log lines to fd instead of stdout: the maintenance commands keep stdout for their
 * output and log on stderr. Call before any thread starts. */
void antar_log_set_fd(int fd);
/* Write one line; steals fields (an object, or NULL). level: "debug", "info", "warn", "error". */
void antar_log_json(const char *level, const char *event, json_t *fields);
/* One field of antar_log_fields. */
typedef enum {
    ANTAR_LOG_STR,  /* s: text (NULL → null); a string that is not valid UTF-8 is left out */
    ANTAR_LOG_INT,  /* i */
    ANTAR_LOG_REAL, /* d, written like antar_log_json writes reals (9 significant digits) */
    ANTAR_LOG_MS,   /* i: microseconds, written as milliseconds with 3 decimals ("0.267") */
    ANTAR_LOG_NULL,
} antar_log_kind_t;

typedef struct {
    const char *key; /* a plain ASCII key, written as given (no escaping) */
    antar_log_kind_t kind;
    const char *s;
    long long i;
    double d;
} antar_log_field_t;

/* The same line as antar_log_json(level, event, {fields in order}) for flat fields, built
 * without jansson: the server writes one per request, so this is on the hot path. The keys
 * must differ from the header's ("ts", "level", "service", "event", "trace_id", "span_id"). */
void antar_log_fields(const char *level, const char *event, const antar_log_field_t *fields,
                      size_t n);
/* Convenience: event "message" with {"msg": formatted}. */
void antar_logf(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
