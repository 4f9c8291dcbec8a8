/* user-service: customers, orders and ratings. The interfaces between its layers:
 *   routes.c  HTTP only: parse and validate fields, authorize, call the domain, reply.
 *   users.c   account rules (sign-up, profile, credential check).
 *   orders.c  order rules (placement with fares and dispatch, transitions, ratings).
 *   store.c   SQL only.
 * Domain functions return an antar_err_t; when it is not ANTAR_OK they may fill the
 * antar_outcome_t *why (antar/error.h; NULL is allowed) with the field and what went wrong, and
 * the route layer sends both with antar_http_reply_outcome. A NOT_FOUND says "no such account"
 * (users.c) or "no such order" (orders.c). Every json_t ** output is a new reference owned by
 * the caller, set only on ANTAR_OK.
 */
#ifndef ANTAR_USER_H
#define ANTAR_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "antar/db.h"
#include "antar/error.h"
#include "antar/http.h"

/* ---- routes.c ------------------------------------------------------------------------- */
extern const antar_route_t user_routes[];
extern const size_t user_routes_len;

/* ---- console.c: the browser console's static files (GET /console/{file}) ------------------ */
void console_file(antar_req_t *req);

/* ---- users.c -------------------------------------------------------------------------- */

/* Sign up: email is lower-cased here. DUPLICATE with why->field "email" or "phone". */
antar_err_t users_signup(const char *name, const char *email, const char *phone,
                         const char *password, json_t **out, antar_outcome_t *why);
/* The account {id, name, email, phone, created_at}. NOT_FOUND when none. */
antar_err_t users_get(long long id, json_t **out, antar_outcome_t *why);
/* Partial update (NULL = unchanged; at least one given). DUPLICATE naming the field. */
antar_err_t users_update(long long id, const char *name, const char *email, const char *phone,
                         json_t **out, antar_outcome_t *why);
/* username = email or phone. {id, sub, name}, or UNAUTHORIZED after the same Argon2id work for
 * an unknown account as for a wrong password. */
antar_err_t users_verify_credentials(const char *username, const char *password, json_t **out);

/* ---- orders.c ------------------------------------------------------------------------- */

typedef struct {
    double pickup_lat, pickup_lng, dropoff_lat, dropoff_lng;
    const char *pickup_address, *dropoff_address;
    const char *vehicle_type;
    const char *quote_id;        /* NULL when not given */
    const char *idempotency_key; /* NULL when not given */
} order_input_t;

/* Place an order: fare from core (sync), then one transaction with the order and the dispatch
 * message. *replayed is true when idempotency_key named an order created before (then *out is
 * that order). CONFLICT for a second active order or a reused key with another body;
 * UNAVAILABLE/TIMEOUT/UPSTREAM when core cannot give a fare. */
antar_err_t orders_create(long long user_id, const order_input_t *in, json_t **out, bool *replayed,
                          antar_outcome_t *why);
/* The user's orders with id < before_id (0 = from the newest), newest first, at most limit.
 * *next_before is the id to continue from, or 0 when there are no more. */
antar_err_t orders_list(long long user_id, long long before_id, int limit, json_t **items,
                        long long *next_before);
/* One of the user's orders with its driver's public profile. NOT_FOUND for another's. */
antar_err_t orders_get_for_user(long long user_id, long long id, json_t **out,
                                antar_outcome_t *why);
antar_err_t orders_cancel(long long user_id, long long id, const char *reason, json_t **out,
                          antar_outcome_t *why);
/* Rate a completed order once: {order_id, rating, comment, created_at}. */
antar_err_t orders_rate(long long user_id, long long id, int rating, const char *comment,
                        json_t **out, antar_outcome_t *why);

/* Internal (service callers). The order with customer {id, first_name} and driver {id}|null. */
antar_err_t orders_get_internal(long long id, json_t **out, antar_outcome_t *why);
/* The ops view of order id (the console's timeline and waterfall): {order (as
 * orders_get_internal), steps, spans} from the trace record (antar/trace.h). NOT_FOUND, KV when
 * Redis cannot answer. */
antar_err_t orders_ops(long long id, json_t **out, antar_outcome_t *why);
/* offer_id 0 = not given. pickup_eta_s: core's predicted way to the pickup for this offer (-1 =
 * not given: the order shows null). driver: the driver's public profile as driver-service sent
 * it with the message (borrowed, may be NULL), for the order_status event the change
 * publishes. */
antar_err_t orders_assign(long long id, long long driver_id, long long offer_id,
                          long long pickup_eta_s, const json_t *driver, json_t **out,
                          antar_outcome_t *why);
antar_err_t orders_pickup(long long id, long long driver_id, const json_t *driver, json_t **out,
                          antar_outcome_t *why);
antar_err_t orders_complete(long long id, long long driver_id, const json_t *driver, json_t **out,
                            antar_outcome_t *why);
/* The orders whose driver_position events the customer's stream follows from its start: the
 * active order when a driver is on the way or on the trip (at most max ids into ids, *n). */
antar_err_t orders_following(long long user_id, long long *ids, size_t max, size_t *n);
/* event_id (the caller's Idempotency-Key) is claimed in the inbox; NULL = none given. */
antar_err_t orders_expire(long long id, const char *event_id, json_t **out, antar_outcome_t *why);

/* Audit (the ops client): every customer's orders with id > after_id, ascending, at most limit:
 * {id, user_id, status, driver_id, offer_id, vehicle_type, price, idempotency_key, rating,
 * created_at, accepted_at, picked_up_at, completed_at, cancelled_at, expired_at}. *next_after
 * is the id to continue after, or 0 when there are no more. */
antar_err_t orders_audit(long long after_id, int limit, json_t **items, long long *next_after);

/* ---- seed.c --------------------------------------------------------------------------- */
/* antar-user --seed-customers N (main.c registers it; the help text is there). */
int users_seed_command(int argc, char **argv);

/* ---- store.c -------------------------------------------------------------------------- */

antar_err_t store_user_insert(const char *name, const char *email, const char *phone,
                              const char *password_hash, long long *id);
/* One customer of a bulk insert (the simulator's pool). Strings borrowed, already valid. */
typedef struct {
    const char *name, *email, *phone;
} store_user_new_t;
/* Most rows store_users_insert_many takes at once. */
#define STORE_USERS_BATCH 500
/* Insert n (1..STORE_USERS_BATCH) customers, all with password_hash, in one transaction (one
 * multi-row INSERT). DUPLICATE when an email or phone is taken; nothing inserted on error. */
antar_err_t store_users_insert_many(const store_user_new_t *rows, size_t n,
                                    const char *password_hash);
/* Rows {id, email} of the customers whose email matches the LIKE pattern, by id. */
antar_err_t store_users_email_like(const char *pattern, json_t **rows);
/* Public columns only (never the hash). */
antar_err_t store_user_get(long long id, json_t **row);
/* {id, name, password_hash} by email (by_email) or phone. NOT_FOUND when none. */
antar_err_t store_user_find_login(bool by_email, const char *value, json_t **row);
/* Whether another account (id != exclude_id) has this email (is_email) or phone. */
antar_err_t store_user_taken(bool is_email, const char *value, long long exclude_id, bool *taken);
/* NULL values keep the column. DUPLICATE when email or phone belongs to another account. */
antar_err_t store_user_update(long long id, const char *name, const char *email, const char *phone);

/* Order rows: the public columns plus user_id, driver_id, request_hash. */
antar_err_t store_order_insert(long long user_id, const order_input_t *in, long long distance_m,
                               long long duration_s, long long price, const char *currency,
                               double surge, const char *request_hash, long long *id);
/* user_id 0 = any owner. NOT_FOUND when none (or another owner's). */
antar_err_t store_order_get(long long id, long long user_id, json_t **row);
antar_err_t store_order_by_key(long long user_id, const char *key, json_t **row);
antar_err_t store_order_active(long long user_id, json_t **row);
antar_err_t store_order_list(long long user_id, long long before_id, int limit, json_t **rows);
/* Conditional transitions; *won = the row moved. */
antar_err_t store_order_cancel(long long id, long long user_id, const char *reason, bool *won);
/* pickup_eta_s: the driver's predicted way to the pickup when the offer was made (city
 * seconds; -1: unknown, stored as NULL). */
antar_err_t store_order_assign(long long id, long long driver_id, long long offer_id,
                               long long pickup_eta_s, bool *won);
antar_err_t store_order_pickup(long long id, long long driver_id, bool *won);
antar_err_t store_order_complete(long long id, long long driver_id, bool *won);
antar_err_t store_order_expire(long long id, bool *won);

antar_err_t store_rating_insert(long long order_id, long long user_id, long long driver_id,
                                int rating, const char *comment);
antar_err_t store_rating_get(long long order_id, json_t **row);
/* Audit rows of every order with id > after_id, ascending, at most limit (columns as
 * orders_audit's items). */
antar_err_t store_order_audit(long long after_id, int limit, json_t **rows);

#endif
