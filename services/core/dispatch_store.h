/* dispatch_store.h — core-service's Redis state: the driver presence index, demand counters,
 * and the per-order dispatch state. Redis access only: no HTTP, no fare rules.
 *
 * Keys (docs/contract.md "Dispatch"):
 *   geo:drivers:<vehicle_type>  GEO set of positioned drivers
 *   drivers:seen                zset driver_id → last position update (ms)
 *   driver:<id>                 hash {status available|busy|offline, vehicle_type, order_id}
 *   driver:<id>:offer           live offer lock, value order_id, PX = offer TTL
 *   demand:<cell>:<minute>      estimates + orders per grid cell and minute (TTL 11 min)
 *   dispatch:<order_id>         hash {payload, attempts, started_ms, offer_id, offer_driver,
 *                               offer_deadline_ms, rejected_offer}
 *   dispatch:<order_id>:tried   set of drivers already offered this order
 *   dispatch:<order_id>:claim   a worker's lease on the order while it works on it
 *   dispatch:<order_id>:done    tombstone "accepted:<driver>", "expired" or "cancelled" (1 day)
 *   dispatch:due                zset order_id → when the worker should look at it next (ms)
 *   drivers:busy                zset driver_id → when the busy sweep should next check that the
 *                               driver's order is still on (ms); every busy driver is in it
 * Multi-key changes run as Lua scripts so that they are atomic. Every function returns
 * ANTAR_E_KV when Redis cannot be reached or answers an error, and writes outputs only on
 * ANTAR_OK.
 */
#ifndef CORE_DISPATCH_STORE_H
#define CORE_DISPATCH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "antar/error.h"

/* ---- presence ---------------------------------------------------------------------------- */

/* A driver is online: state hash (status stays busy if busy, else available), and when has_pos
 * its position in geo:drivers:<vt> and drivers:seen = now_ms. Removes it from the other
 * vehicle type's index. */
antar_err_t core_store_presence_online(long long driver_id, const char *vt, bool has_pos,
                                       double lat, double lng, long long now_ms);
/* A driver is offline: out of every index; status offline unless busy with an order. */
antar_err_t core_store_presence_offline(long long driver_id);
/* available: status available (unless offline) and order_id cleared — ignored (*applied =
 * false) when the driver is busy with another order than order_id (0 = any). Not available:
 * busy with order_id. */
antar_err_t core_store_availability(long long driver_id, bool available, long long order_id,
                                    bool *applied);
/* A driver core holds busy, and the order it holds them for. */
typedef struct {
    long long driver_id, order_id;
} core_busy_t;
/* How long after a driver becomes busy (and between two checks) the sweep asks about their
 * order (ANTAR_BUSY_CHECK_S; 60 s until set). */
void core_store_busy_check_set(long long ms);
/* Up to max busy drivers due a check (drivers:busy score ≤ now_ms) into out[], *n of them; each
 * one's next check moves a period on, so that several core instances do not check the same
 * driver at once. Drivers no longer busy leave the set. */
antar_err_t core_store_busy_due(long long now_ms, core_busy_t *out, size_t max, size_t *n);
/* One driver's latest position in a batch. */
typedef struct {
    long long driver_id;
    double lat, lng;
} core_position_t;
/* Apply n positions in one round trip (see lua_positions): a driver known to be online (available
 * or busy; the status is left as it is) moves in geo:drivers:<vt> and drivers:seen = now_ms; an
 * offline driver is not indexed (*ignored); a driver with no state is put in unknown[] (room for
 * n ids; *n_unknown of them) and not indexed. KV when Redis fails (nothing to undo: each move is
 * whole). */
antar_err_t core_store_positions(const core_position_t *p, size_t n, long long now_ms,
                                 long long *applied, long long *ignored, long long *unknown,
                                 size_t *n_unknown);
/* Drop positions last seen before cutoff_ms from the geo indexes; *purged = how many. */
antar_err_t core_store_purge_stale(long long cutoff_ms, long long *purged);

/* ---- demand ------------------------------------------------------------------------------ */

/* Count customer user_id as demand in cell for the minute of now_ms (a HyperLogLog: a customer
 * counts once however often they ask; past ANTAR_DEMAND_CELLS_PER_MIN cells in one minute a
 * customer is not counted in more). */
antar_err_t core_store_demand_add(const char *cell, long long user_id, long long now_ms);
/* The surge inputs of a fare, atomically and in one round trip: when count_demand, first count
 * this customer in cell (as core_store_demand_add); *demand = distinct customers (estimates and
 * orders) in cell over the
 * 10 minutes up to now_ms; *supply = available, fresh (seen ≥ cutoff_ms), unlocked drivers of vt
 * within radius_m of the point; *near_lat, *near_lng the nearest of them (NAN when none). */
antar_err_t core_store_fare_inputs(const char *cell, long long user_id, long long now_ms,
                                   bool count_demand, const char *vt, double lat, double lng,
                                   long radius_m, long long cutoff_ms, long long *demand,
                                   long long *supply, double *near_lat, double *near_lng);

/* ---- dispatch ------------------------------------------------------------------------------ */

typedef struct {
    long long order_id;
    json_t *payload; /* owned: the order as delivered (vehicle_type, pickup_*, price, …) */
    long long attempts;
    long long started_ms;
    long long offer_id; /* current live offer, 0 when none */
    long long offer_driver;
    long long offer_deadline_ms;
} core_dispatch_t;

void core_dispatch_clean(core_dispatch_t *d);

/* Start dispatching order_id (payload borrowed) due at now_ms. *created = false when the order
 * is already being dispatched or was finished (a redelivery): nothing changes then. */
antar_err_t core_store_dispatch_create(long long order_id, json_t *payload, long long now_ms,
                                       bool *created);
/* Claim up to max due orders (score ≤ now_ms) for lease_ms: each is leased to this caller only
 * (dispatch:<id>:claim SET NX) and its due time pushed to now + lease, so a crash mid-work
 * makes it due again instead of losing it. ids[] gets the claimed order ids. */
antar_err_t core_store_dispatch_claim(long long now_ms, long long lease_ms, long long *ids,
                                      size_t max, size_t *n);
/* End the lease of order_id (the due time set meanwhile stays). */
antar_err_t core_store_dispatch_release(long long order_id);
/* Load the state; ANTAR_E_NOT_FOUND when the order is no longer dispatched. */
antar_err_t core_store_dispatch_load(long long order_id, core_dispatch_t *d);
/* Next candidate for the order: the nearest available, fresh, untried, unlocked driver of vt
 * within radius_m of the pickup; it is marked tried and locked for lock_ms (SET NX). *driver_id
 * = 0 when there is none. */
antar_err_t core_store_dispatch_pick(long long order_id, const char *vt, double lat, double lng,
                                     long radius_m, long long cutoff_ms, long long lock_ms,
                                     long long *driver_id);
/* Undo a pick whose offer was not created: release the driver's lock (when it is this
 * order's) and, when forget, remove it from the tried set so that it may be asked again. */
antar_err_t core_store_dispatch_unpick(long long order_id, long long driver_id, bool forget);
/* Record the live offer and make the order due at deadline_ms. *outcome: 1 recorded; 0 the
 * order is no longer dispatched; 2 the offer was already rejected (nothing recorded). */
antar_err_t core_store_dispatch_offered(long long order_id, long long driver_id, long long offer_id,
                                        long long deadline_ms, int *outcome);
/* The current offer ended without acceptance: clear it, release the driver's lock. */
antar_err_t core_store_dispatch_offer_done(long long order_id, long long driver_id);
/* Make the order due at due_ms if it is still dispatched (ZADD LT: an earlier due time set
 * meanwhile — a rejection — wins). */
antar_err_t core_store_dispatch_reschedule(long long order_id, long long due_ms);
/* The driver rejected offer_id: release its lock, clear the offer (or remember the rejection
 * when the offer is not recorded yet), make the order due now_ms. */
antar_err_t core_store_dispatch_rejected(long long order_id, long long driver_id,
                                         long long offer_id, long long now_ms);
/* The driver accepted: dispatch done (tombstone accepted:<driver>), driver busy with the order
 * — unless the order was cancelled meanwhile. */
antar_err_t core_store_dispatch_accepted(long long order_id, long long driver_id);
/* Stop dispatching (tombstone cancelled); free the driver holding its offer lock or busy with
 * it. */
antar_err_t core_store_dispatch_cancel(long long order_id);
/* The worker gave up (tombstone expired): clear the state. */
antar_err_t core_store_dispatch_expired(long long order_id);

/* ---- the models' inputs (ai.c, docs/ai.md) ------------------------------------------------
 * ai:drv:<epoch>:<id>            hash {n offers answered or lapsed, a accepted} (7 days); the
 *                                epoch names the clock (ai.h): a simulated day starts afresh
 * ai:dem:<epoch>:<cell>:<bucket> orders per forecast cell and 5 city minutes; :all: the city */

typedef struct {
    long long driver_id;
    double lat, lng;
    double offers, accepts; /* the driver's record (ai:drv) */
} core_candidate_t;

/* Up to max free drivers for the order (as core_store_dispatch_pick would consider them,
 * nearest first), without locking any. */
antar_err_t core_store_dispatch_candidates(long long order_id, const char *vt, double lat,
                                           double lng, long radius_m, long long cutoff_ms,
                                           long long epoch, core_candidate_t *out, size_t max,
                                           size_t *n);
/* Take the chosen candidate as core_store_dispatch_pick takes the nearest: *taken false when it
 * is no longer free (then try the next). */
antar_err_t core_store_dispatch_pick_one(long long order_id, long long driver_id, const char *vt,
                                         long long cutoff_ms, long long lock_ms, bool *taken);
/* An offer to driver_id ended: accepted, or rejected / lapsed. */
antar_err_t core_store_ai_offer_outcome(long long epoch, long long driver_id, bool accepted);
/* One order in forecast cell (ilat, ilng) in 5-minute city bucket; epoch names the clock. */
antar_err_t core_store_ai_demand_add(long long epoch, long ilat, long ilng, long long bucket,
                                     long ttl_s);
/* Where the driver of type vt is in the presence index → *lat, *lng; NOT_FOUND when not there. */
antar_err_t core_store_driver_position(const char *vt, long long driver_id, double *lat,
                                       double *lng);
/* Orders in the cell over the last 3 and 12 buckets (this one included), the city's over 3. */
antar_err_t core_store_ai_demand_counts(long long epoch, long ilat, long ilng, long long bucket,
                                        double *last15, double *last60, double *city15);

/* ---- audit (the ops client) ------------------------------------------------------------------
 * Read-only pages of the driver:<id> and dispatch:<order_id> hashes, walked with SCAN (never
 * KEYS), so a page costs Redis about limit keys of work. Order is SCAN's (by id within each SCAN
 * batch, not overall). A key that exists for the whole walk is listed at least once; one added
 * or removed meanwhile may be listed twice or not at all (SCAN's own guarantee). */

/* Where a walk continues: the SCAN cursor of the batch to (re)read, the COUNT it was read with
 * (0 = the page's limit), and the last id already listed from that batch (0 = none). The
 * zero value starts a walk. */
typedef struct {
    long long scan;
    long long count;
    long long after;
} core_scan_pos_t;

/* Up to limit drivers core knows, from *from: items {driver_id, status, vehicle_type|null,
 * order_id|null, seen_at|null, offer_order_id|null} (times RFC 3339 UTC with ms; seen_at from
 * drivers:seen; offer_order_id the value of the live driver:<id>:offer lock). *more says whether
 * the walk goes on, from *next. *items is a new array owned by the caller. */
antar_err_t core_store_presence_audit(const core_scan_pos_t *from, int limit, json_t **items,
                                      core_scan_pos_t *next, bool *more);
/* As core_store_presence_audit for the live dispatches: items {order_id, attempts, started_at,
 * offer_driver_id|null, offer_deadline_at|null, due_at|null} (due_at from dispatch:due). */
antar_err_t core_store_dispatch_audit(const core_scan_pos_t *from, int limit, json_t **items,
                                      core_scan_pos_t *next, bool *more);

/* ---- the city for the console ------------------------------------------------------------ */

/* Every online driver within a box_km square around (lat, lng), at most max_drivers per
 * vehicle type ({driver_id, vehicle_type, lat, lng, state: available|offered|busy, order_id}),
 * and the open dispatches, at most max_orders ({order_id, attempts, offer_driver_id, pickup_*,
 * dropoff_*, vehicle_type, price}). One round trip. New references on ANTAR_OK. */
antar_err_t core_store_city(double lat, double lng, double box_km, int max_drivers, int max_orders,
                            json_t **drivers, json_t **orders);
/* demand[i] = distinct customers in cells[i] over the surge window (as the fares count them).
 * One round trip. */
antar_err_t core_store_city_demand(const char *const *cells, size_t n, long long now_ms,
                                   long long *demand);

#endif
