/* antar/httpc.h — the service-to-service HTTP client on libcurl.
 *
 * One easy handle per thread, reused (keep-alive). Every call has the configured connect and
 * total timeouts, sends JSON, passes the thread's trace context as traceparent, carries this
 * service's own bearer token (client_credentials, from the token provider), is logged as a
 * "call" event and counted in metrics. Calls never go through the edge.
 */
#ifndef ANTAR_HTTPC_H
#define ANTAR_HTTPC_H

#include <stdbool.h>

#include <jansson.h>

#include "antar/config.h"
#include "antar/error.h"

typedef enum { ANTAR_SVC_USER, ANTAR_SVC_DRIVER, ANTAR_SVC_CORE } antar_svc_t;

typedef struct {
    long status;  /* HTTP status received */
    json_t *body; /* parsed JSON body (the envelope), or NULL */
} antar_httpc_res_t;

/* Supplies this service's bearer token into buf; returns 0, or -1 when none can be had. */
typedef int (*antar_token_provider_fn)(char *buf, size_t len);

/* Once, before threads start (curl_global_init); cfg borrowed. 0 or -1. */
int antar_httpc_init(const antar_config_t *cfg);
void antar_httpc_set_token_provider(antar_token_provider_fn fn);
/* Called when a peer answers 401 to a service call: forget the cached token. The call is then
 * retried once with a fresh token. */
void antar_httpc_set_token_reset(void (*fn)(void));
/* "user-service", "driver-service", "core-service". */
const char *antar_httpc_target_name(antar_svc_t target);

/* Call target's path with an optional JSON body (borrowed) and extra header lines
 * ("Idempotency-Key: …", NULL-terminated array, may be NULL). Returns ANTAR_OK when any HTTP
 * response came back (check res->status); ANTAR_E_TIMEOUT on timeout; ANTAR_E_UNAVAILABLE
 * when the target cannot be reached or its circuit is open (failing fast, nothing sent);
 * ANTAR_E_UNAUTHORIZED when no service token is available.
 * Through the target's circuit breaker; retried with jittered backoff only when that is safe
 * (GET, an Idempotency-Key header, or a refused connection), within ANTAR_HTTPC_RETRY_BUDGET_MS.
 * ANTAR_E_UNAVAILABLE always means "not applied": nothing reached the target (or only refusals
 * after no ambiguous attempt); a timeout or a broken answer (ANTAR_E_TIMEOUT, ANTAR_E_UPSTREAM)
 * may have been applied, also when a later retry was refused.
 * On a failure the target is noted for the current request (antar_err_note_upstream).
 * res is always initialised; release with antar_httpc_res_clean.
 * Refused before anything is sent (ANTAR_E_INTERNAL, an error log line,
 * antar_calls_refused_total{target}) on a thread of an internal listener
 * (antar_thread_is_internal, util.h): the rule that keeps blocking calls free of cycles. */
antar_err_t antar_httpc_call(antar_svc_t target, const char *method, const char *path, json_t *body,
                             const char *const *headers, antar_httpc_res_t *res);
/* Re-read ANTAR_PEERS_FILE (the instances of each peer; SIGHUP). Instances that stay keep
 * their circuit breaker. 0, or -1 when the file cannot be read or is malformed (the peers
 * stay as they were; the error is logged). A no-op returning 0 without a peers file. */
int antar_httpc_reload_peers(void);
/* antar_httpc_request to path on one instance of target (round-robin, skipping ejected ones,
 * a refused connection tried on the next), without the service token: the token fetch and the
 * JWKS. */
antar_err_t antar_httpc_peer_request(antar_svc_t target, const char *method, const char *path,
                                     const char *content_type, const char *body,
                                     const char *authorization, antar_httpc_res_t *res);
/* A raw request to a full URL without the service token (token fetch, JWKS). content_type and
 * body may be NULL. authorization is a whole header value ("Basic …") or NULL. */
antar_err_t antar_httpc_request(const char *method, const char *url, const char *content_type,
                                const char *body, const char *authorization,
                                antar_httpc_res_t *res);
/* What a peer's answer to antar_httpc_call means, as one error of the table: the one place
 * where a peer's HTTP status and error envelope are read.
 *  - call_err, the call's own failure, as it is (TIMEOUT, UNAVAILABLE, UPSTREAM …), except
 *    UNAUTHORIZED (no service token of our own to call with), which is UNAVAILABLE.
 *  - 2xx: ANTAR_OK (the result is the caller's to check; antar_httpc_result).
 *  - 4xx, a refusal: the peer's error.code when the table gives it that status, else the first
 *    error of the table with that status (BAD_REQUEST for an unknown 4xx). Refusals are exactly
 *    the errors whose antar_err_status is below 500.
 *  - 503 UNAVAILABLE, 504 TIMEOUT, any other status UPSTREAM (the peer failed: never its own
 *    5xx code, which speaks of the peer's dependencies, not ours).
 * o (may be NULL) receives the error, with the peer's error.field and error.message for a
 * refusal whose envelope has them ("" otherwise); it is untouched on ANTAR_OK. A refusal is about
 * what this service sent the peer: callers decide which ones they pass on to their own client. */
antar_err_t antar_httpc_outcome(antar_err_t call_err, const antar_httpc_res_t *res,
                                antar_outcome_t *o);
/* The envelope's "result" of a response (borrowed), or NULL. */
json_t *antar_httpc_result(const antar_httpc_res_t *res);
void antar_httpc_res_clean(antar_httpc_res_t *res);
/* ---- circuit breakers (one per instance of each upstream, shared by all threads) ---------
 * A peer's state is closed while any instance is closed, open when every one is open. */
typedef enum {
    ANTAR_CIRCUIT_CLOSED = 0,
    ANTAR_CIRCUIT_OPEN = 1,
    ANTAR_CIRCUIT_HALF_OPEN = 2
} antar_circuit_t;
antar_circuit_t antar_httpc_circuit_state(antar_svc_t target);
/* How long a caller with its own retry schedule (the outbox) should wait before calling target:
 * 0 when a call would be let through (closed, or half-open with no probe out). */
long antar_httpc_circuit_wait_ms(antar_svc_t target);
/* Turn this thread's in-call retries off (false) or on (true, the default): for callers that
 * retry on their own schedule. */
void antar_httpc_thread_retries(bool on);
/* antar_circuit_state{upstream} and antar_circuit_transitions_total{upstream,to} in Prometheus
 * text (caller frees), registered with antar_metrics_add_source by antar_httpc_init. */
char *antar_httpc_circuit_metrics(void);

/* Free this thread's handle (end of a worker thread). */
void antar_httpc_thread_end(void);

#endif
