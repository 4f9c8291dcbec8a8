/* dispatch.h — what fares.c, presence.c and dispatch.c share inside core-service: the run-time
 * settings of fares/presence/dispatch, the lenient body readers of the internal routes, the
 * presence handlers (listed in core_dispatch_routes) and the worker's wake-up. */
#ifndef CORE_DISPATCH_H
#define CORE_DISPATCH_H

#include <stdbool.h>

#include "antar/http.h"

typedef struct {
    long offer_ttl_s;    /* ANTAR_OFFER_TTL_S (15): how long a driver may answer an offer */
    long dispatch_max_s; /* ANTAR_DISPATCH_MAX_S (120): give up on an order after this */
    long max_candidates; /* ANTAR_DISPATCH_MAX_CANDIDATES (5): offers before giving up */
    long radius_m;       /* ANTAR_DISPATCH_RADIUS_M (5000): search radius around pickup */
    long presence_ttl_s; /* ANTAR_PRESENCE_TTL_S (60): a position older than this is stale */
    long quote_ttl_s;    /* ANTAR_QUOTE_TTL_S (300): how long a fare quote is honoured */
} core_settings_t;

/* The settings, read from the environment once (thread-safe). Never NULL. */
const core_settings_t *core_settings(void);

/* Internal routes are called by other services that may add fields over time, so their bodies
 * are read leniently: unknown fields are ignored, known ones are type- and range-checked.
 * Each reader returns false after replying 422 (missing_field / invalid_field naming the field);
 * the handler then returns. A JSON number or a string holding one is accepted for numbers. */
bool core_body_number(antar_req_t *req, const char *name, bool required, double min, double max,
                      double *out, bool *present);
bool core_body_int(antar_req_t *req, const char *name, bool required, long long min, long long max,
                   long long *out, bool *present);
/* String of at most maxlen bytes, no control characters; borrowed until the reply. */
bool core_body_string(antar_req_t *req, const char *name, bool required, size_t maxlen,
                      const char **out);
bool core_body_bool(antar_req_t *req, const char *name, bool required, bool *out, bool *present);

/* presence.c: PUT /internal/drivers/{id}/presence and /availability. */
void core_presence_put(antar_req_t *req);
void core_availability_put(antar_req_t *req);

/* dispatch.c: wake the worker now (a new order or a rejected offer is due). */
void core_dispatch_wake(void);

#endif
