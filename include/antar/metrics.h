/* antar/metrics.h — Prometheus metrics, thread-safe, rendered at GET /metrics.
 *
 * Families: antar_http_requests_total{route,method,status}, antar_http_request_duration_seconds
 * (histogram by route), antar_calls_total{target,outcome}, antar_call_duration_seconds
 * (histogram by target), plus any counters the services register.
 */
#ifndef ANTAR_METRICS_H
#define ANTAR_METRICS_H

void antar_metrics_request(const char *route, const char *method, int status, double seconds);
/* outcome: "ok" (2xx-4xx answered), "error" (5xx), "timeout", "unreachable". */
void antar_metrics_call(const char *target, const char *outcome, double seconds);
/* A named counter with one label value, e.g. ("antar_orders_total", "status", "created"). */
void antar_metrics_count(const char *name, const char *label, const char *value);
/* Register a producer of extra exposition text (families kept elsewhere, e.g. the circuit
 * breakers' gauges); called on every render, outside the metrics lock; returns malloc'd text
 * or NULL. Registering the same function twice is a no-op. At most 8. */
void antar_metrics_add_source(char *(*render)(void));
/* Prometheus text exposition. Caller frees. NULL on out of memory. */
char *antar_metrics_render(void);

#endif
