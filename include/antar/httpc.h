/* antar/httpc.h — the service-to-service HTTP client on libcurl.
 *
 * One easy handle per thread, reused (keep-alive). Every call has the configured connect and
 * total timeouts, sends JSON, passes the thread's trace context as traceparent, carries this
 * service's own bearer token (client_credentials, from the token provider), is logged as a
 * "call" event and counted in metrics. Calls never go through the edge.
 */
#ifndef ANTAR_HTTPC_H
#define ANTAR_HTTPC_H

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
 * when the target cannot be reached; ANTAR_E_UNAUTHORIZED when no service token is available.
 * res is always initialised; release with antar_httpc_res_clean.
 * Refused (ANTAR_E_INTERNAL, an error log line, antar_calls_refused_total{target}) on a thread of
 * an internal listener whose rank does not exceed the target's (antar_thread_call_rank, util.h):
 * the rule that keeps the graph of blocking calls free of cycles. */
antar_err_t antar_httpc_call(antar_svc_t target, const char *method, const char *path, json_t *body,
                             const char *const *headers, antar_httpc_res_t *res);
/* A raw request to a full URL without the service token (token fetch, JWKS). content_type and
 * body may be NULL. authorization is a whole header value ("Basic …") or NULL. */
antar_err_t antar_httpc_request(const char *method, const char *url, const char *content_type,
                                const char *body, const char *authorization,
                                antar_httpc_res_t *res);
/* The envelope's "result" of a response (borrowed), or NULL. */
json_t *antar_httpc_result(const antar_httpc_res_t *res);
void antar_httpc_res_clean(antar_httpc_res_t *res);
/* Free this thread's handle (end of a worker thread). */
void antar_httpc_thread_end(void);

#endif
