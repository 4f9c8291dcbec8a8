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
/* Write one line; steals fields (an object, or NULL). level: "debug", "info", "warn", "error". */
void antar_log_json(const char *level, const char *event, json_t *fields);
/* Convenience: event "message" with {"msg": formatted}. */
void antar_logf(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
