/* driver-service: drivers, vehicles, offers, trips and earnings.
 *
 * routes.c speaks HTTP and calls the domain modules below (drivers.c, offers.c, trips.c),
 * which hold the rules and the calls to other services and keep their rows through store.c,
 * the only file with SQL. Domain functions return an antar_err_t; on error the antar_outcome_t
 * *why (antar/error.h), when the function takes one, names the offending field and says what
 * went wrong, for routes.c's antar_http_reply_outcome. Every json_t ** output
 * is a new reference owned by the caller, and is set only on success unless said otherwise.
 */
#ifndef ANTAR_DRIVER_H
#define ANTAR_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "antar/error.h"
#include "antar/http.h"
#include "antar/httpc.h"

/* Longest normalised plate: "AB 1234 XYZ" plus NUL. */
#define DRIVER_PLATE_MAX 16

/* ---- routes.c -------------------------------------------------------------------------- */
extern const antar_route_t driver_routes[];
extern const size_t driver_routes_len;

/* ---- drivers.c ------------------------------------------------------------------------- */
typedef struct {
    const char *name, *email, *phone, *password, *vehicle_type, *plate_number;
} driver_signup_t;

typedef struct {
    const char *name, *email, *phone, *plate_number; /* NULL = unchanged */
} driver_patch_t;

/* "b1234xyz" / "B 1234  xyz" → "B 1234 XYZ": 1–2 letters, 1–4 digits, 0–3 letters, spaces
 * optional. false (out untouched) when s is not a plate. */
bool driver_plate_normalize(const char *s, char out[DRIVER_PLATE_MAX]);
/* Sign up a driver and their vehicle. DUPLICATE with *field = "email"/"phone"/"plate_number";
 * INVALID_FIELD with *field for a bad email, phone or plate. */
antar_err_t driver_signup(const driver_signup_t *in, json_t **out, antar_outcome_t *why);
/* The driver's own record {id, name, email, phone, vehicle_type, plate_number, rating, status,
 * created_at}. NOT_FOUND. */
antar_err_t driver_get(long long id, json_t **out);
/* Change own fields; errors as driver_signup. Nothing changes on error. */
antar_err_t driver_update(long long id, const driver_patch_t *p, json_t **out,
                          antar_outcome_t *why);
/* Go online/offline: tells core (sync) first, then records it. CONFLICT when going offline
 * during a trip; UNAVAILABLE/TIMEOUT/UPSTREAM when core cannot take it (nothing changed). */
antar_err_t driver_set_status(long long id, const char *status, json_t **out);
/* Record the position (positions.c: in memory, to core within a flush interval, to the row in
 * batches) → {lat, lng, updated_at}. UNAVAILABLE/TIMEOUT only on a driver's synchronous ping
 * (the first one this process sees, or the first after going online) when core cannot take it. */
antar_err_t driver_set_location(long long id, double lat, double lng, json_t **out);
/* Tell core again in full who the driver is (status and vehicle type from the row) and where
 * (lat, lng): for a driver core has no state for. Errors are logged, not returned: the next
 * ping that core reports unknown tries again. */
void driver_presence_resync(long long id, double lat, double lng);
/* {total, currency, trips, today} (today = the current day in Jakarta, UTC+7). */
antar_err_t driver_earnings(long long id, json_t **out);
/* Where this idle driver should wait for the next order, as core's demand forecast sees it
 * (core's GET /internal/drivers/{id}/waiting-hint, docs/ai.md). CONFLICT when core does not see
 * the driver online with a position; UNAVAILABLE/TIMEOUT when core cannot answer. */
antar_err_t driver_waiting_hint(long long id, json_t **out);
/* Credential check for core: username is an email or a phone. UNAUTHORIZED when unknown or
 * wrong (both cost one Argon2id verification). */
antar_err_t driver_verify_credentials(const char *username, const char *password, json_t **out);
/* {id, name, vehicle_type, plate_number, rating}: no contact data. NOT_FOUND. */
antar_err_t driver_public(long long id, json_t **out);
/* Record the rating a customer gave for order_id (once per order; event_id from the outbox,
 * may be NULL) and recompute the average → {id, rating}. NOT_FOUND for an unknown driver,
 * CONFLICT when that driver did not complete that order. */
antar_err_t driver_rate(long long id, long long order_id, int rating, const char *event_id,
                        json_t **out);

/* ---- positions.c ---------------------------------------------------------------------- */
typedef struct {
    long long driver_id;
    double lat, lng;
    long long at_ms; /* when the ping came */
} driver_position_t;

/* Start / stop the flush thread (stop sends and writes what is still buffered). 0 or -1. */
int positions_start(void);
void positions_stop(void);

/* ---- reconcile.c ----------------------------------------------------------------------- */
/* Ask user-service to assign order_id to driver_id for offer_id (Idempotency-Key
 * "assign-<offer_id>"): yes → the trip is created (plus "accepted" to core) and ANTAR_OK; no
 * (409/404) → the offer is lost, CONFLICT; no answer → TIMEOUT/UNAVAILABLE, the claim stands and
 * its pending confirmation makes the reconciler ask again. */
antar_err_t confirm_assign(long long driver_id, long long offer_id, long long order_id);
/* Add the driver's public profile to a message for user-service as "driver" (for the
 * order_status event it publishes); the message goes without it when the row cannot be read. */
void with_profile(json_t *body, long long driver_id);
/* The same for a pickup ("pickup-<order_id>"): yes → the trip is picked_up; no → CONFLICT and
 * the pending confirmation goes; no answer → the error, the confirmation stays. */
antar_err_t confirm_pickup(long long driver_id, long long order_id);
/* How long after a change its pending confirmation becomes the reconciler's (ms): longer than
 * the request's own call with its retries. */
long confirm_grace_ms(void);
/* The reconciler thread: pending confirmations every ANTAR_RECONCILE_MS (default 2000), and a
 * sweep of active trips idle for ANTAR_RECONCILE_SWEEP_S (default 120) against their orders. */
int reconcile_start(void);
void reconcile_stop(void);
/* A location ping: keep it as the driver's latest position; queued for core and the table.
 * Synchronous to core (driver_call's errors) only for the first ping of a driver in this
 * process or the first after position_went_online; otherwise ANTAR_OK without any I/O. */
antar_err_t position_set(long long id, double lat, double lng, long long now_ms);
/* The latest position this process holds for the driver; false when none. */
bool position_latest(long long id, double *lat, double *lng);
/* The driver just went online: their next ping goes to core synchronously. */
void position_went_online(long long id);
/* The driver is on order_id's trip from now (0: no longer): their pings become driver_position
 * events for that order's customer. Also learnt from the trips table every
 * ANTAR_POSITION_TRIPS_MS (1000), which is what other instances' changes reach this one by. */
void position_trip(long long id, long long order_id);

/* ---- offers.c -------------------------------------------------------------------------- */
typedef struct {
    long long order_id, driver_id, price;
    const char *vehicle_type; /* NULL: the driver's own */
    double pickup_lat, pickup_lng, dropoff_lat, dropoff_lng;
    bool has_pickup, has_dropoff, has_price;
    const char *customer_first_name; /* from the order, via core; may be NULL */
    const char *pickup_address, *dropoff_address, *currency; /* may be NULL */
    long long expires_ms;                                    /* 0: now + ANTAR_OFFER_TTL_S */
    /* Where core saw the driver when it made the offer, and its predicted way to the pickup
     * (city seconds; 0: not given): kept for the order's pickup_eta_s and for training. */
    double driver_lat, driver_lng;
    bool has_driver_pos, has_pickup_eta; /* 0 s is an ETA too: the driver is at the pickup */
    long long pickup_eta_s;
} offer_new_t;

/* Create an offer for core's dispatch (the order is read from user-service for the customer's
 * first name). *created is false when the same (order, driver) offer already existed: then
 * *out is that offer. CONFLICT when the driver is offline, on a trip, holds a live offer, drives
 * another vehicle type, or the order is cancelled or no longer searching — *why then says which
 * (field and message);
 * NOT_FOUND for an unknown driver. */
antar_err_t offer_create(const offer_new_t *in, json_t **out, bool *created, antar_outcome_t *why);
/* {items, next_cursor: null}: the driver's pending, unexpired offers. */
antar_err_t offer_list_pending(long long driver_id, json_t **out);
/* Accept: the offer arbitrates the deadline, user-service the order. → trip. NOT_FOUND for an
 * offer of another driver; CONFLICT when no longer pending, expired, or the order went to
 * someone else; UNAVAILABLE/TIMEOUT when user-service did not answer: the claim stands (the
 * deadline no longer applies to it), the driver may accept again, and the reconciler asks
 * user-service until it answers (confirm_assign). */
antar_err_t offer_accept(long long driver_id, long long offer_id, json_t **out);
/* Reject a pending offer → offer. NOT_FOUND, CONFLICT. */
antar_err_t offer_reject(long long driver_id, long long offer_id, json_t **out);
/* core's deadline: pending → expired → offer. CONFLICT when it had been accepted, and then *out
 * is the offer too. NOT_FOUND. */
antar_err_t offer_expire(long long offer_id, json_t **out);
/* user-service says the order was cancelled: withdraw its offers, cancel its accepted trip.
 * Idempotent → {order_id, offers_withdrawn, trip_cancelled}. */
antar_err_t offer_order_cancelled(long long order_id, const char *event_id, json_t **out);

/* ---- trips.c --------------------------------------------------------------------------- */
/* accepted → picked_up, after user-service agreed (it arbitrates pickup against the customer's
 * cancel). NOT_FOUND (not this driver's), CONFLICT; TIMEOUT/UNAVAILABLE when user-service did
 * not answer: nothing changed here, the reconciler asks again (confirm_pickup). */
antar_err_t trip_pickup(long long driver_id, long long order_id, json_t **out);
/* picked_up → completed with the earning, here first: after pickup nobody else may change the
 * trip, so user-service (and core) hear it through the outbox. Waits up to a second for that
 * delivery, so the customer usually sees it at once. */
antar_err_t trip_complete(long long driver_id, long long order_id, json_t **out);
/* {items, next_cursor}: newest first; cursor 0 = from the newest. */
antar_err_t trip_list(long long driver_id, long long cursor, int limit, json_t **out);
/* The trip of order_id as the API's trip object; NOT_FOUND when it is not driver_id's. */
antar_err_t trip_get(long long driver_id, long long order_id, json_t **out);
/* The trip row (store shape) → the API's trip object (new reference). */
json_t *trip_to_json(json_t *row);
/* 80 % of price, rounded down. */
long long trip_earning(long long price);

/* ---- audit.c -------------------------------------------------------------------------- */
/* What the ops client's audit routes list. */
typedef enum { AUDIT_TRIPS, AUDIT_OFFERS, AUDIT_DRIVERS } audit_kind_t;
/* Rows of kind with id > after_id, ascending, at most limit (fields: api/driver.yaml, the
 * Audit* schemas). *next_after is the id to continue after, or 0 when there are no more. */
antar_err_t audit_page(audit_kind_t kind, long long after_id, int limit, json_t **items,
                       long long *next_after);

/* ---- sync calls (drivers.c) ------------------------------------------------------------ */
/* Call another service and turn the outcome into an error: 2xx → ANTAR_OK with *result (new
 * reference, may be NULL when result not wanted); 409 → CONFLICT; 404 → NOT_FOUND; other 4xx →
 * UPSTREAM; 5xx → UNAVAILABLE; timeout → TIMEOUT; unreachable → UNAVAILABLE. */
antar_err_t driver_call(antar_svc_t target, const char *method, const char *path, json_t *body,
                        json_t **result);
/* The same with "Idempotency-Key: key" (NULL: none): the callee may then be asked again. */
antar_err_t driver_call_keyed(antar_svc_t target, const char *method, const char *path,
                              json_t *body, const char *key, json_t **result);

/* ---- seed.c --------------------------------------------------------------------------- */
/* antar-driver --seed-drivers N (main.c registers it; the help text is there). */
int driver_seed_command(int argc, char **argv);

/* ---- store.c (SQL only) ---------------------------------------------------------------- */
/* Rows are new jansson objects keyed by column; the caller decrefs them. */
antar_err_t store_driver_insert(const char *name, const char *email, const char *phone,
                                const char *hash, const char *vehicle_type, const char *plate,
                                long long *id);
/* Which unique field already holds one of these values: "email", "phone", "plate_number", or
 * NULL (except_id: the driver that may keep its own values, 0 for none). */
const char *store_driver_which_duplicate(const char *email, const char *phone, const char *plate,
                                         long long except_id);
/* One driver of a bulk insert (the simulator's pool). Strings borrowed, already valid. */
typedef struct {
    const char *name, *email, *phone, *vehicle_type, *plate;
} store_driver_new_t;
/* Most rows store_drivers_insert_many takes at once. */
#define STORE_DRIVERS_BATCH 500
/* Insert n (1..STORE_DRIVERS_BATCH) drivers with their vehicles, all with the password hash
 * hash, in one transaction of multi-row INSERTs. DUPLICATE when any email, phone or plate is
 * taken; nothing is inserted on any error. */
antar_err_t store_drivers_insert_many(const store_driver_new_t *rows, size_t n, const char *hash);
/* Rows {id, email, vehicle_type} of the drivers whose email matches the LIKE pattern, by id. */
antar_err_t store_drivers_email_like(const char *pattern, json_t **rows);
antar_err_t store_driver_get(long long id, json_t **row);
/* Row with id, name, password_hash, vehicle_type; NOT_FOUND. */
antar_err_t store_driver_by_login(const char *username, json_t **row);
antar_err_t store_driver_update(long long id, const driver_patch_t *p);
antar_err_t store_driver_set_status(long long id, const char *status);
/* Write n buffered positions (lat, lng, location_updated_at) in multi-row UPDATEs, one
 * transaction; unknown ids are skipped. */
antar_err_t store_drivers_set_locations(const driver_position_t *p, size_t n);
/* {id, order_id, driver_id} of order_id's offers in status. */
antar_err_t store_offers_of_order(long long order_id, const char *status, json_t **rows);
/* {driver_id, order_id} of every trip in progress (accepted or picked_up). */
antar_err_t store_trips_active(json_t **rows);
/* Trips in progress (accepted or picked_up) of the driver. */
antar_err_t store_driver_active_trips(long long id, long long *n);
/* {total, trips, today} since day_start ("YYYY-MM-DD HH:MM:SS" UTC). */
antar_err_t store_driver_earnings(long long id, const char *day_start, json_t **row);
/* Insert the rating and recompute the average in one transaction. DUPLICATE when the order was
 * rated before (or event_id seen). */
antar_err_t store_driver_rate(long long id, long long order_id, int rating, const char *event_id);
/* COUNT of completed trips of order_id by driver id. */
antar_err_t store_trip_completed_by(long long driver_id, long long order_id, bool *yes);

/* In one transaction with the driver row locked: refuse (CONFLICT, *why set) when offline,
 * busy, holding a live offer or the order is cancelled; else insert. */
antar_err_t store_offer_create(const offer_new_t *in, const char *customer_first_name,
                               const char *expires_at, long long *id, antar_outcome_t *why);
antar_err_t store_offer_get(long long id, json_t **row);
antar_err_t store_offer_find(long long order_id, long long driver_id, json_t **row);
antar_err_t store_offers_pending(long long driver_id, json_t **rows);
/* The offer hint (Redis key drv:offer_hint:<driver_id>): set before an offer row is written, to
 * expire a second after the offer does, so that a driver's poll can answer "no offers" without
 * MariaDB while the key is absent. ANTAR_E_KV when Redis cannot be reached. */
antar_err_t store_offer_hint_set(long long driver_id, long long expires_ms);
/* *maybe = whether driver_id may have a pending offer (the hint exists). */
antar_err_t store_offer_hint_get(long long driver_id, bool *maybe);
/* The conditional UPDATE of "Who wins an order": affected = 1 wins; with it, in the same
 * transaction, a pending "assign" confirmation for the reconciler, due grace_ms from now. */
antar_err_t store_offer_claim(long long id, long long driver_id, long long order_id, long grace_ms,
                              bool *won);
/* Move an offer from one status to another (conditional); *changed when it did. */
antar_err_t store_offer_move(long long id, const char *from, const char *to, bool *changed);
/* user-service refused the assign: accepted → lost, and the pending confirmation goes. */
antar_err_t store_offer_lose(long long id, long long order_id, bool *changed);
/* Pending confirmations (kind "assign" or "pickup"), one per (order, kind): add (due after
 * delay_ms; an existing row keeps the sooner time), done (delete), later (attempts + 1, due
 * after delay_ms), the due ones (oldest first) and how many there are. */
antar_err_t store_confirm_add(long long order_id, const char *kind, long long driver_id,
                              long long offer_id, long delay_ms);
antar_err_t store_confirm_done(long long order_id, const char *kind);
antar_err_t store_confirm_later(long long order_id, const char *kind, long delay_ms);
/* Several instances run the reconciler: a row is worked on by the one that moves it first
 * (next_at pushed by lease_ms; checked_at set now). *won false: another instance has it. */
antar_err_t store_confirm_claim(long long order_id, const char *kind, long lease_ms, bool *won);
antar_err_t store_trip_claim_check(long long order_id, int idle_s, bool *won);
antar_err_t store_confirms_due(int limit, json_t **rows);
antar_err_t store_confirms_count(long long *n);
/* Active trips that have not moved for idle_s and were not checked in the last idle_s. */
antar_err_t store_trips_unchecked(int idle_s, int limit, json_t **rows);
/* The order is gone (cancelled, expired, another driver's): an active trip → cancelled, with
 * the outbox availability to core, one transaction. *changed false when it was not active. */
antar_err_t store_trip_repair_cancel(long long order_id, long long driver_id, json_t *outbox_body,
                                     const char *outbox_path, bool *changed);
/* Accepted offer → trip row + outbox "accepted" to core, and its pending "assign" confirmation
 * gone, one transaction. CONFLICT when the offer is no longer accepted (withdrawn by a
 * cancellation meanwhile); DUPLICATE when the trip exists already. */
antar_err_t store_trip_create(long long offer_id, json_t *outbox_body, const char *outbox_path);
/* Pending → rejected + outbox "rejected" to core, one transaction. *changed false = not
 * pending. */
antar_err_t store_offer_reject(long long id, long long driver_id, json_t *outbox_body,
                               const char *outbox_path, bool *changed);
/* Cancellation: withdraw offers, cancel the accepted trip, remember the order. DUPLICATE when
 * event_id was seen. */
antar_err_t store_order_cancel(long long order_id, const char *event_id, long long *withdrawn,
                               long long *trips_cancelled);
antar_err_t store_trip_get(long long order_id, json_t **row);
/* accepted → picked_up, and the pending "pickup" confirmation gone, one transaction. */
antar_err_t store_trip_pickup(long long order_id, long long driver_id, bool *changed);
/* picked_up → completed + earnings row + outbox availability to core + outbox "complete" to
 * user-service, one transaction. CONFLICT when the trip was not picked_up. */
antar_err_t store_trip_complete(long long order_id, long long driver_id, long long earning,
                                json_t *outbox_body, const char *outbox_path, json_t *user_body,
                                const char *user_path);
/* Trips with id < cursor (0 = all), newest first, limit rows; includes earning. */
antar_err_t store_trips_list(long long driver_id, long long cursor, int limit, json_t **rows);
/* Audit rows (audit_page's items) with id > after_id, ascending, limit rows. */
antar_err_t store_trips_audit(long long after_id, int limit, json_t **rows);
antar_err_t store_offers_audit(long long after_id, int limit, json_t **rows);
/* Drivers with their totals, in one statement per page. */
antar_err_t store_drivers_audit(long long after_id, int limit, json_t **rows);

/* Ownership check after a store read: passes a lookup error through; when the row (an offer or a
 * trip) is not driver_id's, frees it, sets *row to NULL and returns ANTAR_E_NOT_FOUND, so that
 * another driver's rows cannot even be probed. */
antar_err_t driver_row_owned(antar_err_t err, json_t **row, long long driver_id);

#endif
