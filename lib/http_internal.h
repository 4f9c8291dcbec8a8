/* http_internal.h — private to lib/http_*.c and lib/service.c: the request and server
 * structures, and the pieces the unit tests drive without a socket (router, body parser,
 * a request with no connection). Not part of the toolkit's public API. */
#ifndef ANTAR_HTTP_INTERNAL_H
#define ANTAR_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "antar/http.h"
#include "antar/trace.h"
#include "antar/util.h"

#define ANTAR_MAX_PARAMS 8
#define ANTAR_MAX_HEALTH 8
#define ANTAR_MAX_RESP_HEADERS 16

struct MHD_Connection;
struct MHD_Daemon;

/* The body of a streamed response: bytes into buf (at most max); 0 only after suspending the
 * connection (MHD_suspend_connection), or it is called again at once; -1 for the end. */
typedef long (*antar_stream_read_fn)(void *cls, char *buf, size_t max);

typedef struct {
    const char *name;
    antar_health_fn fn;
} antar_health_entry_t;

/* Called once on each server worker thread when it exits (service.c closes the thread's
 * MariaDB, Redis and curl handles there, so that nothing leaks at shutdown). */
typedef void (*antar_thread_end_fn)(void);

/* One of a server's two listeners (docs/reliability.md, "Call graph: why no cycle"): the public
 * one serves everything but /internal/...; the internal one, on its own port and thread pool,
 * serves /internal/..., the ops routes and routes flagged ANTAR_ROUTE_INTERNAL_TOO. */
typedef struct {
    struct antar_server *srv;
    bool internal;
    struct MHD_Daemon *daemon;
    const antar_route_t **routes; /* the subset of srv->routes this listener serves */
    size_t nroutes;
} antar_listener_t;

struct antar_server {
    const antar_config_t *cfg;
    antar_listener_t pub, internal;
    antar_cidr_t proxies[16]; /* cfg->trusted_proxies, parsed */
    size_t nproxies;
    const antar_route_t **routes; /* borrowed route structs, in registration order */
    size_t nroutes, cap_routes;
    antar_health_entry_t health[ANTAR_MAX_HEALTH];
    size_t nhealth;
    antar_auth_hook_fn auth_hook;
    antar_thread_end_fn thread_end;
    char *api_doc; /* the OpenAPI file, read at start; NULL when missing */
    size_t api_len;
    _Atomic int draining;  /* SIGTERM seen: not ready, every reply closes its connection */
    _Atomic long inflight; /* requests begun (headers read) and not yet completed */
    /* Called first thing in antar_server_stop: whoever keeps connections suspended (the event
     * streams) must resume and end them, since MHD may not be stopped with one suspended. */
    void (*stop_hook)(void);
};

/* Per-request allocations from antar_req_strdup, freed after the reply. */
typedef struct antar_alloc {
    struct antar_alloc *next;
    char data[];
} antar_alloc_t;

struct antar_req {
    antar_server_t *srv;
    const antar_listener_t *lst; /* NULL for requests built by unit tests: every route */
    struct MHD_Connection *conn; /* NULL for requests built by unit tests */
    char method[16];
    char *path; /* owned copy, without the query string */
    const antar_route_t *route;
    const char *param_name[ANTAR_MAX_PARAMS];
    const char *param_value[ANTAR_MAX_PARAMS];
    size_t nparams;

    /* body as received: at most cfg->body_limit bytes are ever kept */
    char *raw;
    size_t raw_len, raw_cap;
    size_t content_length; /* declared, 0 when absent */
    size_t discarded;      /* bytes dropped after the limit was passed */
    bool too_large;

    json_t *body; /* parsed object, never NULL once dispatch reaches the handler */
    bool is_form;
    json_t *kept; /* array of values kept alive until the reply */
    antar_alloc_t *allocs;

    antar_principal_t principal;
    bool has_principal;
    char request_id[65];
    antar_trace_t trace;
    char client_ip[64];
    long long start_ns;

    /* the response, built by the reply functions and queued by the server afterwards */
    bool replied;
    int status;
    char *resp_body; /* malloc'd */
    size_t resp_len;
    char resp_type[80];
    bool envelope;
    char *hdr_name[ANTAR_MAX_RESP_HEADERS];
    char *hdr_value[ANTAR_MAX_RESP_HEADERS];
    size_t nhdrs;
    antar_err_t error; /* for the request log line: the error replied with, if any */

    /* A streamed body instead of resp_body (antar_req_set_stream): MHD calls stream_read on a
     * worker thread whenever the socket can take more, and stream_free once with stream_cls
     * when the response is done with. */
    antar_stream_read_fn stream_read;
    void *stream_cls;
    void (*stream_free)(void *cls);
};

/* ---- router (http_router.c) ---- */

typedef enum { ANTAR_MATCH_OK, ANTAR_MATCH_NOT_FOUND, ANTAR_MATCH_BAD_METHOD } antar_match_kind_t;

typedef struct {
    antar_match_kind_t kind;
    const antar_route_t *route;
    size_t nparams;
    /* name: pointer into the pattern, value: pointer into the path, both with lengths */
    const char *name[ANTAR_MAX_PARAMS];
    size_t name_len[ANTAR_MAX_PARAMS];
    const char *value[ANTAR_MAX_PARAMS];
    size_t value_len[ANTAR_MAX_PARAMS];
    char allow[96]; /* "GET, POST" for BAD_METHOD */
} antar_match_t;

/* Match method + path against routes. A literal segment must match exactly, a {name} segment
 * matches one non-empty segment; among matching routes the one with the most literal segments
 * wins (so /orders/active beats /orders/{id}), then the first registered. */
void antar_router_match(const antar_route_t *const *routes, size_t n, const char *method,
                        const char *path, antar_match_t *m);
/* true when pattern is well-formed: starts with '/', {name} segments whole and named. */
bool antar_router_pattern_ok(const char *pattern);

/* ---- body (http_body.c) ---- */

/* Parse body bytes by content type into a new JSON object (*out, caller decrefs). An empty body
 * gives an empty object whatever the type. On failure returns the error (MALFORMED_JSON,
 * BAD_REQUEST, UNSUPPORTED_MEDIA_TYPE, INVALID_FIELD) with a message and, when one field is to
 * blame, its name in field (both always NUL-terminated). */
antar_err_t antar_body_parse(const char *content_type, const char *buf, size_t len, json_t **out,
                             bool *is_form, char *msg, size_t msglen, char *field, size_t fieldlen);
/* Valid UTF-8 (shortest form, no surrogates) with no control character (C0, DEL, C1). */
bool antar_text_ok(const char *s, size_t len, bool allow_newlines);

/* ---- URL decoding (http_server.c, MHD's unescape callback) ---- */

/* Decode %XX escapes of a path or query argument in place, as MHD does, except that "%00" is
 * kept as its three literal characters (a NUL would cut the string short). Returns the new
 * length, which is also strlen(s): the result never holds a NUL. */
size_t antar_http_unescape(char *s);

/* ---- paging (http_page.c) ---- */

/* ?limit as antar_req_page reads it: NULL → def, else a plain decimal integer in 1..max. */
bool antar_page_limit_parse(const char *s, int def, int max, int *out);
/* A cursor of antar_cursor_encode under tag with exactly n values (n ≤ ANTAR_CURSOR_VALS) into
 * vals; false (vals then unspecified) for anything else. */
bool antar_cursor_decode(const char *s, const char *tag, long long *vals, size_t n);

/* ---- requests without a connection (unit tests) and server glue ---- */

/* A request that is not attached to a socket: body (stolen, NULL → {}) as if parsed from JSON
 * or from a form. Replies are recorded in the struct. Free with antar_req_free. */
antar_req_t *antar_req_new_detached(antar_server_t *srv, const char *method, const char *path,
                                    json_t *body, bool is_form);
void antar_req_free(antar_req_t *req);
/* Records a response (takes body, a malloc'd buffer); the first reply wins, later ones are
 * logged and dropped. */
void antar_req_set_response(antar_req_t *req, int status, const char *content_type, char *body,
                            size_t len, bool envelope);

void antar_server_set_thread_end(antar_server_t *s, antar_thread_end_fn fn);

/* Reply with a streamed body (status, content type): read is called for the bytes until it
 * returns -1; free_fn(cls) runs exactly once, when the response is released (also when it
 * could not be queued). The first reply wins, as for antar_req_set_response. */
void antar_req_set_stream(antar_req_t *req, int status, const char *content_type,
                          antar_stream_read_fn read, void *cls, void (*free_fn)(void *cls));
/* The request's connection (NULL for a detached request): for MHD_suspend_connection and
 * MHD_resume_connection on a streamed reply. */
struct MHD_Connection *antar_req_connection(antar_req_t *req);
void antar_server_set_stop_hook(antar_server_t *s, void (*fn)(void));

/* Whether a route is served on the internal listener / the public one. */
bool antar_route_on_internal(const antar_route_t *r);
bool antar_route_on_public(const antar_route_t *r);

#endif
