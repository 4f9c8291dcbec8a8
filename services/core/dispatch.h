/* dispatch.h — core-service's fares, driver presence and dispatch, the interfaces between their
 * layers (STYLE.md):
 *   routes.c          HTTP only: parse and validate fields, call the domain, reply. The only
 *                     place where an antar_err_t becomes a status and an envelope.
 *   fares.c           fare rules: live surge inputs, quotes and when a quote is honoured.
 *   presence.c        the driver presence index rules.
 *   dispatch.c        the dispatch rules and the worker thread.
 *   dispatch_store.c  Redis only (dispatch_store.h).
 * Domain functions return an antar_err_t; when it is not ANTAR_OK they may fill an
 * antar_outcome_t (antar/error.h) so that the route layer can name the field and say what went
 * wrong (antar_http_reply_outcome). Every json_t ** output is
 * a new reference owned by the caller, set only on ANTAR_OK.
 */
#ifndef CORE_DISPATCH_H
#define CORE_DISPATCH_H

#include <stdbool.h>
#include <jansson.h>

#include "antar/error.h"
#include "dispatch_store.h"

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

/* ---- fares.c -------------------------------------------------------------------------------- */

/* A trip to price. vehicle_type is "motorcycle" or "car" (the route layer checked it). */
typedef struct {
    double pickup_lat, pickup_lng, dropoff_lat, dropoff_lng;
    const char *vehicle_type;
} core_trip_t;

/* A customer's estimate: counts as demand, prices the trip with today's surge and signs it as a
 * quote valid for ANTAR_QUOTE_TTL_S (stored nowhere: fares.c has the token) → the fare with
 * quote_id and expires_at. INVALID_FIELD (dropoff_lat) when pickup and dropoff are the same
 * place; KV when Redis fails. */
antar_err_t core_fares_estimate(long long user_id, const core_trip_t *t, json_t **out,
                                antar_outcome_t *why);
/* user-service's price for an order: the quoted fare when quote_id (may be NULL) is a genuine,
 * unexpired quote of this user for this very trip and vehicle ("quoted": true), else today's
 * fare ("quoted": false, quote_id and expires_at null; a malformed or tampered id included).
 * Errors as core_fares_estimate. */
antar_err_t core_fares_quote(long long user_id, const char *quote_id, const core_trip_t *t,
                             json_t **out, antar_outcome_t *why);

/* ---- presence.c ----------------------------------------------------------------------------- */

/* A driver went online (vt required, position when has_pos) or offline (vt may be NULL)
 * → {driver_id, status, vehicle_type?, lat?, lng?}. KV when Redis fails. */
antar_err_t core_presence_set(long long driver_id, bool online, const char *vt, bool has_pos,
                              double lat, double lng, json_t **out);
/* The latest positions of n drivers (a batch from driver-service's location pings) →
 * {applied, ignored, unknown: [ids]}: see core_store_positions. KV when Redis fails. */
antar_err_t core_presence_positions(const core_position_t *p, size_t n, json_t **out);
/* A driver became available again (order_id given or 0) or busy with order_id → {driver_id,
 * available, applied, order_id?}; applied is false for a late message about an older order. */
antar_err_t core_availability_set(long long driver_id, bool available, long long order_id,
                                  json_t **out);

/* ---- dispatch.c ----------------------------------------------------------------------------- */

/* An order handed over by user-service. Strings are borrowed; currency, addresses may be NULL;
 * vehicle_type is valid and currency, when given, is "IDR" (the route layer checked both). */
typedef struct {
    long long order_id, user_id, price;
    const char *vehicle_type;
    double pickup_lat, pickup_lng, dropoff_lat, dropoff_lng;
    const char *currency, *pickup_address, *dropoff_address;
    const char *customer_first_name; /* what the driver calls out at pickup; may be NULL */
} core_order_t;

/* Start dispatching the order → {order_id, status "dispatching", created}; a redelivery has
 * created false and changes nothing. */
antar_err_t core_dispatch_create(const core_order_t *o, json_t **out);
/* The driver rejected offer_id: the next candidate is looked at now → {order_id, status}. */
antar_err_t core_dispatch_rejected(long long order_id, long long driver_id, long long offer_id,
                                   json_t **out);
/* The driver accepted: dispatch done, driver busy → {order_id, status}. */
antar_err_t core_dispatch_accepted(long long order_id, long long driver_id, json_t **out);
/* The order was cancelled: stop, free the driver → {order_id, status}. */
antar_err_t core_dispatch_cancel(long long order_id, json_t **out);

/* Wake the worker now (a new order or a rejected offer is due). */
void core_dispatch_wake(void);

#endif
