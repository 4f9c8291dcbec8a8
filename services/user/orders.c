/* user-service orders: placement (fare from core, then the order and its dispatch message in
 * one transaction), the user's history, cancel, rating, and the transitions other services
 * drive. No HTTP serving and no SQL here: SQL is in store.c, outgoing calls go through
 * antar/httpc.h and antar/outbox.h. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "antar/config.h"
#include "antar/events.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/outbox.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "user.h"

/* Every NOT_FOUND of this file is about the order asked for. */
static antar_err_t no_such_order(antar_err_t err, antar_outcome_t *why)
{
    if (err == ANTAR_E_NOT_FOUND && (!why || why->err != ANTAR_E_NOT_FOUND))
        antar_outcome_fail(why, err, NULL, "no such order");
    return err;
}

static const char *row_str(const json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    return s ? s : "";
}

static long long row_int(const json_t *row, const char *key)
{
    return (long long)json_integer_value(json_object_get(row, key));
}

/* ---- driver profiles (sync from driver-service, cached briefly per thread) --------------- */

#define DRIVER_CACHE_SLOTS 64
#define DRIVER_CACHE_TTL_MS 10000

/* Per thread so that no lock is needed: each MHD worker keeps its own small direct-mapped
 * cache. A profile changes rarely (name, plate, rating), so ten seconds of staleness is fine.
 * A pthread key (not _Thread_local) so that a worker's cache is freed when the thread ends. */
typedef struct {
    long long id;
    long long until_ms;
    json_t *profile;
} driver_cache_slot_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p)
{
    driver_cache_slot_t *slots = p;
    for (size_t i = 0; i < DRIVER_CACHE_SLOTS; i++)
        json_decref(slots[i].profile);
    free(slots);
}

static void cache_key_init(void)
{
    (void)pthread_key_create(&cache_key, cache_free);
}

/* This thread's cache, or NULL (out of memory: then nothing is cached). */
static driver_cache_slot_t *cache_slots(void)
{
    pthread_once(&cache_once, cache_key_init);
    driver_cache_slot_t *slots = pthread_getspecific(cache_key);
    if (!slots) {
        slots = calloc(DRIVER_CACHE_SLOTS, sizeof *slots);
        if (slots && pthread_setspecific(cache_key, slots) != 0) {
            free(slots);
            slots = NULL;
        }
    }
    return slots;
}

/* The last profile driver-service gave for each driver, process-wide, kept for a degraded answer
 * when driver-service is away (the per-thread cache above is the fast path; this one is only
 * written on a fetch, at most once per driver per thread every DRIVER_CACHE_TTL_MS, and read
 * when a fetch fails, so its lock is cold). Direct-mapped: a collision just loses an entry. */
#define LAST_KNOWN_SLOTS 1024
#define LAST_KNOWN_MAX_AGE_MS (30LL * 60 * 1000)

static pthread_mutex_t last_known_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    long long id;
    long long at_ms;
    json_t *profile; /* only touched under last_known_mu */
} last_known[LAST_KNOWN_SLOTS];

static void last_known_put(long long driver_id, const json_t *profile, long long now)
{
    json_t *copy = json_deep_copy(profile);
    if (!copy)
        return;
    pthread_mutex_lock(&last_known_mu);
    size_t k = (size_t)driver_id % LAST_KNOWN_SLOTS;
    json_t *old = last_known[k].profile;
    last_known[k].id = driver_id;
    last_known[k].at_ms = now;
    last_known[k].profile = copy;
    pthread_mutex_unlock(&last_known_mu);
    json_decref(old);
}

/* A degraded driver object: the last known profile marked "stale", or {id, degraded}. */
static json_t *driver_degraded(long long driver_id)
{
    json_t *out = NULL;
    long long now = antar_mono_ms();
    pthread_mutex_lock(&last_known_mu);
    size_t k = (size_t)driver_id % LAST_KNOWN_SLOTS;
    if (last_known[k].profile && last_known[k].id == driver_id &&
        now - last_known[k].at_ms < LAST_KNOWN_MAX_AGE_MS)
        out = json_deep_copy(last_known[k].profile);
    pthread_mutex_unlock(&last_known_mu);
    if (out) {
        json_object_set_new(out, "stale", json_true());
        return out;
    }
    return json_pack("{s:I,s:b}", "id", (json_int_t)driver_id, "degraded", 1);
}

/* The driver's public profile as a new object. When driver-service cannot answer (down, its
 * circuit open, an error), the order is still served (a read never fails because of it) with
 * the last known profile marked "stale", or {id, degraded: true}; *down then stays set for the
 * rest of the request so that a list does not wait for one timeout per order. */
static json_t *driver_profile(long long driver_id, bool *down)
{
    driver_cache_slot_t *cache = cache_slots();
    driver_cache_slot_t *slot = cache ? &cache[driver_id % DRIVER_CACHE_SLOTS] : NULL;
    long long now = antar_mono_ms();
    if (slot && slot->profile && slot->id == driver_id && slot->until_ms > now)
        return json_deep_copy(slot->profile);
    if (*down)
        return driver_degraded(driver_id);

    char path[64];
    snprintf(path, sizeof path, "/internal/drivers/%lld", driver_id);
    antar_httpc_res_t res;
    antar_err_t err = antar_httpc_outcome(
        antar_httpc_call(ANTAR_SVC_DRIVER, "GET", path, NULL, NULL, &res), &res, NULL);
    json_t *result = err == ANTAR_OK ? antar_httpc_result(&res) : NULL;
    json_t *profile = NULL;
    if (json_is_object(result)) {
        /* Copy only the public fields, whatever else driver-service sends. */
        profile = json_pack("{s:I}", "id", (json_int_t)driver_id);
        static const char *const keep[] = {"name", "vehicle_type", "plate_number", "rating"};
        for (size_t i = 0; profile && i < sizeof keep / sizeof keep[0]; i++) {
            json_t *v = json_object_get(result, keep[i]);
            json_object_set(profile, keep[i], v ? v : json_null());
        }
    } else if (antar_err_status(err) >= 500) {
        /* Not a refusal (a 404 is about this driver only): driver-service is away. */
        *down = true;
    }
    antar_httpc_res_clean(&res);
    if (!profile)
        return driver_degraded(driver_id);
    last_known_put(driver_id, profile, now);
    if (slot) {
        json_decref(slot->profile);
        slot->id = driver_id;
        slot->until_ms = now + DRIVER_CACHE_TTL_MS;
        slot->profile = json_deep_copy(profile);
    }
    return profile;
}

/* ---- order_status events (antar/events.h) ----------------------------------------------- */

/* The driver of an order_status event: the public fields of hint (what driver-service sent
 * with its message), else the last profile this process fetched, else {id}. Never calls a peer:
 * the transitions run on the internal listener. */
static json_t *driver_for_event(long long driver_id, const json_t *hint)
{
    static const char *const keep[] = {"name", "vehicle_type", "plate_number", "rating"};
    json_t *src = NULL;
    if (json_is_object(hint)) {
        src = json_incref((json_t *)hint);
    } else {
        pthread_mutex_lock(&last_known_mu);
        size_t k = (size_t)driver_id % LAST_KNOWN_SLOTS;
        if (last_known[k].profile && last_known[k].id == driver_id)
            src = json_deep_copy(last_known[k].profile);
        pthread_mutex_unlock(&last_known_mu);
    }
    json_t *d = json_pack("{s:I}", "id", (json_int_t)driver_id);
    for (size_t i = 0; d && src && i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(src, keep[i]);
        if (v)
            json_object_set(d, keep[i], v);
    }
    json_decref(src);
    return d;
}

/* Tell the customer, and the driver once there is one, that order_id is now status. After the
 * change is committed; a failure is logged by the events module and the API stays the truth. */
static void publish_status(long long order_id, const char *status, long long user_id,
                           long long driver_id, const json_t *driver_hint)
{
    char at[32], aud[ANTAR_EVENTS_AUD_MAX];
    antar_time_rfc3339(antar_now_ms(), at);
    json_t *driver = driver_id > 0 ? driver_for_event(driver_id, driver_hint) : json_null();
    json_t *d = json_pack("{s:I, s:s, s:o, s:s}", "order_id", (json_int_t)order_id, "status",
                          status, "driver", driver ? driver : json_null(), "at", at);
    if (driver_id > 0)
        snprintf(aud, sizeof aud, "user:%lld driver:%lld", user_id, driver_id);
    else
        snprintf(aud, sizeof aud, "user:%lld", user_id);
    if (d)
        (void)antar_events_publish("order_status", aud, d);
    json_decref(d);
    /* The order's timeline in the trace record: which trace moved it (docs/console.md). */
    (void)antar_trace_record_step(order_id, status);
}

/* publish_status for an order as order_internal returns it (user_id, driver_id, status). */
static void publish_internal(const json_t *o, const json_t *driver_hint)
{
    const char *status = json_string_value(json_object_get(o, "status"));
    if (status)
        publish_status(json_integer_value(json_object_get(o, "id")), status,
                       json_integer_value(json_object_get(o, "user_id")),
                       json_integer_value(json_object_get(o, "driver_id")), driver_hint);
}

/* ---- order views ------------------------------------------------------------------------ */

/* Strip the bookkeeping columns from a store row and set "driver". Steals row; returns it.
 * fetch_driver: full public profile from driver-service, else {id} only. */
static json_t *order_view(json_t *row, bool fetch_driver, bool *down)
{
    long long driver_id = row_int(row, "driver_id");
    json_object_del(row, "user_id");
    json_object_del(row, "driver_id");
    json_object_del(row, "request_hash");
    json_t *driver = json_null();
    if (driver_id > 0) {
        driver = fetch_driver ? driver_profile(driver_id, down)
                              : json_pack("{s:I}", "id", (json_int_t)driver_id);
        if (!driver)
            driver = json_null();
    }
    json_object_set_new(row, "driver", driver);
    return row;
}

/* The order as a client sees it, read fresh (after a commit). */
static antar_err_t order_read(long long id, long long user_id, json_t **out)
{
    json_t *row = NULL;
    antar_err_t err = store_order_get(id, user_id, &row);
    if (err != ANTAR_OK)
        return err;
    bool down = false;
    *out = order_view(row, true, &down);
    return ANTAR_OK;
}

/* The order for another service, plus the customer's first name and the owner/driver ids.
 * "driver" stays null here and the assigned driver is "driver_id": driver-service is the
 * caller, and calling it back for the profile from inside its own request could tie up both
 * thread pools (the profile schema has no id-only form). */
static antar_err_t order_internal(json_t *row, json_t **out)
{
    long long user_id = row_int(row, "user_id");
    long long driver_id = row_int(row, "driver_id");
    json_t *user = NULL;
    char first[101] = "";
    if (store_user_get(user_id, &user) == ANTAR_OK) {
        /* First name = the first word: the driver needs a name to call out, nothing more. */
        snprintf(first, sizeof first, "%s", row_str(user, "name"));
        first[strcspn(first, " \t")] = '\0';
        json_decref(user);
    }
    bool down = false;
    json_t *o = order_view(row, false, &down);
    json_object_set_new(o, "driver", json_null());
    json_object_set_new(o, "customer",
                        json_pack("{s:I, s:s}", "id", (json_int_t)user_id, "first_name", first));
    json_object_set_new(o, "user_id", json_integer(user_id));
    json_object_set_new(o, "driver_id", driver_id > 0 ? json_integer(driver_id) : json_null());
    *out = o;
    return ANTAR_OK;
}

static antar_err_t order_read_internal(long long id, json_t **out)
{
    json_t *row = NULL;
    antar_err_t err = store_order_get(id, 0, &row);
    if (err != ANTAR_OK)
        return err;
    return order_internal(row, out);
}

/* ---- placement -------------------------------------------------------------------------- */

/* A digest of what the client asked for, stored with an Idempotency-Key so that a replay with
 * a different body is told apart from a retry. hex holds 65 bytes. */
static void request_hash(const order_input_t *in, char hex[65])
{
    char buf[1024];
    unsigned char digest[32];
    int n = snprintf(buf, sizeof buf, "%.7f|%.7f|%.7f|%.7f|%s|%s|%s|%s", in->pickup_lat,
                     in->pickup_lng, in->dropoff_lat, in->dropoff_lng, in->vehicle_type,
                     in->quote_id ? in->quote_id : "", in->pickup_address, in->dropoff_address);
    crypto_generichash(digest, sizeof digest, (const unsigned char *)buf,
                       n < 0                    ? 0
                       : (size_t)n < sizeof buf ? (size_t)n
                                                : sizeof buf - 1,
                       NULL, 0);
    sodium_bin2hex(hex, 65, digest, sizeof digest);
}

/* The stored order for a key that was seen before: the same order when the request is the
 * same, else a conflict (a key names one request, never two). Steals row. */
static antar_err_t replay(json_t *row, const char *hash, json_t **out, bool *replayed,
                          antar_outcome_t *why)
{
    if (strcmp(row_str(row, "request_hash"), hash) != 0) {
        json_decref(row);
        return antar_outcome_fail(
            why, ANTAR_E_CONFLICT, "Idempotency-Key",
            "this Idempotency-Key was already used for a different order request");
    }
    bool down = false;
    *out = order_view(row, true, &down);
    *replayed = true;
    return ANTAR_OK;
}

typedef struct {
    long long distance_m, duration_s, price;
    char currency[8];
    double surge;
} fare_t;

/* Ask core for the fare (sync). Transport failures become 503/504; a field core rejects
 * (an unknown quote_id, say) is passed on as the same 422. */
static antar_err_t fetch_quote(long long user_id, const order_input_t *in, fare_t *fare,
                               antar_outcome_t *why)
{
    json_t *body =
        json_pack("{s:I, s:f, s:f, s:f, s:f, s:s}", "user_id", (json_int_t)user_id, "pickup_lat",
                  in->pickup_lat, "pickup_lng", in->pickup_lng, "dropoff_lat", in->dropoff_lat,
                  "dropoff_lng", in->dropoff_lng, "vehicle_type", in->vehicle_type);
    if (!body)
        return ANTAR_E_NOMEM;
    if (in->quote_id)
        json_object_set_new(body, "quote_id", json_string(in->quote_id));
    antar_httpc_res_t res;
    antar_err_t call =
        antar_httpc_call(ANTAR_SVC_CORE, "POST", "/internal/fares/quote", body, NULL, &res);
    json_decref(body);
    antar_outcome_t peer = {0};
    antar_err_t err = antar_httpc_outcome(call, &res, &peer);
    if (call == ANTAR_E_TIMEOUT || call == ANTAR_E_UNAVAILABLE) {
        antar_outcome_fail(why, err, NULL, "core-service could not give a fare: %s",
                           call == ANTAR_E_TIMEOUT ? "it timed out" : "it is unreachable");
        goto out;
    }
    if (call != ANTAR_OK) {
        err =
            antar_outcome_fail(why, ANTAR_E_UNAVAILABLE, NULL, "core-service could not be called");
        goto out;
    }
    if (err == ANTAR_OK) {
        json_t *r = antar_httpc_result(&res);
        json_t *price = json_object_get(r, "price");
        if (!json_is_integer(price) || json_integer_value(price) < 0) {
            err = antar_outcome_fail(why, ANTAR_E_UPSTREAM, NULL,
                                     "core-service answered a fare without a valid price");
            goto out;
        }
        fare->price = (long long)json_integer_value(price);
        fare->distance_m = row_int(r, "distance_m");
        fare->duration_s = row_int(r, "duration_s");
        json_t *surge = json_object_get(r, "surge_multiplier");
        fare->surge = json_is_number(surge) ? json_number_value(surge) : 1.0;
        snprintf(fare->currency, sizeof fare->currency, "%s",
                 json_is_string(json_object_get(r, "currency")) ? row_str(r, "currency") : "IDR");
        goto out;
    }
    if (antar_err_status(err) == 422) {
        /* The field names are the same on both sides (quote_id, pickup_lat …); any other name
         * core might give is not one the client sent. */
        static const char *const known[] = {"quote_id",    "pickup_lat",  "pickup_lng",
                                            "dropoff_lat", "dropoff_lng", "vehicle_type"};
        const char *f = NULL;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strcmp(peer.field, known[i]) == 0)
                f = known[i];
        err = antar_outcome_fail(why, ANTAR_E_INVALID_FIELD, f, "%s",
                                 peer.message[0] ? peer.message : "the fare request was refused");
    } else if (err == ANTAR_E_UNAVAILABLE) {
        antar_outcome_fail(why, err, NULL, "core-service is unavailable");
    } else {
        err = antar_outcome_fail(why, ANTAR_E_UPSTREAM, NULL, "core-service failed to give a fare");
    }
out:
    antar_httpc_res_clean(&res);
    return err;
}

/* The dispatch message: the fields of docs/contract.md, nothing else (receivers reject
 * unknown fields). */
static json_t *dispatch_payload(long long id, long long user_id, const order_input_t *in,
                                const fare_t *fare)
{
    json_t *p = json_pack(
        "{s:I, s:I, s:s, s:f, s:f, s:s, s:f, s:f, s:s, s:I, s:s}", "order_id", (json_int_t)id,
        "user_id", (json_int_t)user_id, "vehicle_type", in->vehicle_type, "pickup_lat",
        in->pickup_lat, "pickup_lng", in->pickup_lng, "pickup_address", in->pickup_address,
        "dropoff_lat", in->dropoff_lat, "dropoff_lng", in->dropoff_lng, "dropoff_address",
        in->dropoff_address, "price", (json_int_t)fare->price, "currency", fare->currency);
    /* The name the driver calls out travels with the order, so that driver-service never has
     * to ask for it while it answers core (an internal route calls nobody). */
    json_t *user = NULL;
    if (p && store_user_get(user_id, &user) == ANTAR_OK) {
        char first[101];
        snprintf(first, sizeof first, "%s", row_str(user, "name"));
        first[strcspn(first, " \t")] = '\0';
        if (first[0])
            json_object_set_new(p, "customer_first_name", json_string(first));
        json_decref(user);
    }
    return p;
}

/* The order and its dispatch message, atomically. */
static antar_err_t insert_with_dispatch(long long user_id, const order_input_t *in,
                                        const fare_t *fare, const char *hash, long long *id)
{
    json_t *payload = NULL;
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    err = store_order_insert(user_id, in, fare->distance_m, fare->duration_s, fare->price,
                             fare->currency, fare->surge, in->idempotency_key ? hash : NULL, id);
    if (err != ANTAR_OK)
        goto fail;
    payload = dispatch_payload(*id, user_id, in, fare);
    if (!payload) {
        err = ANTAR_E_NOMEM;
        goto fail;
    }
    char key[32];
    snprintf(key, sizeof key, "order:%lld", *id);
    if ((err = antar_outbox_add(ANTAR_SVC_CORE, key, "POST", "/internal/dispatch", payload)) !=
        ANTAR_OK)
        goto fail;
    json_decref(payload);
    if ((err = antar_db_commit()) != ANTAR_OK)
        goto fail_nopayload;
    antar_outbox_kick();
    return ANTAR_OK;
fail:
    json_decref(payload);
fail_nopayload:
    antar_db_rollback();
    return err;
}

/* What already exists for this request: the order of the same Idempotency-Key (a replay, or a
 * conflict when the body differs), or another active order (409). NOT_FOUND when neither.
 * The active check comes first and the key lookup after it, so that an order committed by a
 * concurrent request with the same key between the two reads is still found as a replay. */
static antar_err_t existing(long long user_id, const order_input_t *in, const char *hash,
                            json_t **out, bool *replayed, antar_outcome_t *why)
{
    json_t *row = NULL;
    long long active_id = 0;
    antar_err_t err = store_order_active(user_id, &row);
    if (err == ANTAR_OK) {
        active_id = row_int(row, "id");
        json_decref(row);
    } else if (err != ANTAR_E_NOT_FOUND) {
        return err;
    }
    if (in->idempotency_key) {
        err = store_order_by_key(user_id, in->idempotency_key, &row);
        if (err == ANTAR_OK)
            return replay(row, hash, out, replayed, why);
        if (err != ANTAR_E_NOT_FOUND)
            return err;
    }
    if (active_id > 0) {
        return antar_outcome_fail(why, ANTAR_E_CONFLICT, NULL,
                                  "you already have an active order (id %lld)", active_id);
    }
    return ANTAR_E_NOT_FOUND;
}

antar_err_t orders_create(long long user_id, const order_input_t *in, json_t **out, bool *replayed,
                          antar_outcome_t *why)
{
    char hash[65];
    antar_err_t err;
    fare_t fare = {0};

    *replayed = false;
    request_hash(in, hash);
    /* A retry of a request already done answers at once, without asking core again. */
    err = existing(user_id, in, hash, out, replayed, why);
    if (err != ANTAR_E_NOT_FOUND)
        return err;
    if ((err = fetch_quote(user_id, in, &fare, why)) != ANTAR_OK)
        return err;

    /* Two requests at the same moment both get here; the unique keys (user_id,
     * idempotency_key) and active_user_id let exactly one insert win, and the loser reads
     * what won. A deadlock between the two keys (DB_BUSY) is simply tried again. */
    for (int attempt = 0; attempt < 3; attempt++) {
        long long id = 0;
        err = insert_with_dispatch(user_id, in, &fare, hash, &id);
        if (err == ANTAR_OK) {
            publish_status(id, "searching", user_id, 0, NULL);
            return order_read(id, 0, out);
        }
        if (err != ANTAR_E_DUPLICATE && err != ANTAR_E_DB_BUSY)
            return err;
        err = existing(user_id, in, hash, out, replayed, why);
        if (err != ANTAR_E_NOT_FOUND)
            return err;
    }
    return antar_outcome_fail(why, ANTAR_E_CONFLICT, NULL,
                              "the order could not be placed, try again");
}

/* ---- the user's reads and actions -------------------------------------------------------- */

antar_err_t orders_list(long long user_id, long long before_id, int limit, json_t **items,
                        long long *next_before)
{
    json_t *rows = NULL;
    /* One extra row says whether there is a next page. */
    antar_err_t err = store_order_list(user_id, before_id, limit + 1, &rows);
    if (err != ANTAR_OK)
        return err;
    *next_before = 0;
    if (json_array_size(rows) > (size_t)limit) {
        json_array_remove(rows, (size_t)limit);
        *next_before = row_int(json_array_get(rows, (size_t)limit - 1), "id");
    }
    bool down = false;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) order_view(row, true, &down);
    *items = rows;
    return ANTAR_OK;
}

antar_err_t orders_following(long long user_id, long long *ids, size_t max, size_t *n)
{
    json_t *row = NULL;
    *n = 0;
    antar_err_t err = store_order_active(user_id, &row);
    if (err == ANTAR_E_NOT_FOUND)
        return ANTAR_OK;
    if (err != ANTAR_OK)
        return err;
    const char *status = row_str(row, "status");
    if (max > 0 && (strcmp(status, "accepted") == 0 || strcmp(status, "picked_up") == 0))
        ids[(*n)++] = row_int(row, "id");
    json_decref(row);
    return ANTAR_OK;
}

antar_err_t orders_audit(long long after_id, int limit, json_t **items, long long *next_after)
{
    json_t *rows = NULL;
    /* One extra row says whether there is a next page. */
    antar_err_t err = store_order_audit(after_id, limit + 1, &rows);
    if (err != ANTAR_OK)
        return err;
    *next_after = 0;
    if (json_array_size(rows) > (size_t)limit) {
        json_array_remove(rows, (size_t)limit);
        *next_after = row_int(json_array_get(rows, (size_t)limit - 1), "id");
    }
    *items = rows;
    return ANTAR_OK;
}

antar_err_t orders_get_for_user(long long user_id, long long id, json_t **out, antar_outcome_t *why)
{
    return no_such_order(order_read(id, user_id, out), why);
}

antar_err_t orders_cancel(long long user_id, long long id, const char *reason, json_t **out,
                          antar_outcome_t *why)
{
    char path[96], key[32];
    bool won = false;
    json_t *empty = json_object(), *row = NULL;
    antar_err_t err;

    if (!empty)
        return ANTAR_E_NOMEM;
    if ((err = antar_db_begin()) != ANTAR_OK)
        goto done;
    if ((err = store_order_cancel(id, user_id, reason, &won)) != ANTAR_OK)
        goto fail;
    if (!won) {
        antar_db_rollback();
        err = store_order_get(id, user_id, &row);
        if (err == ANTAR_OK) {
            err = antar_outcome_fail(
                why, ANTAR_E_CONFLICT, NULL,
                "the order is %s: only a searching or accepted order can be cancelled",
                row_str(row, "status"));
            json_decref(row);
        }
        goto done;
    }
    /* Core stops dispatching (and frees an assigned driver); driver-service withdraws offers
     * and cancels an accepted trip. Both in this transaction, so neither is ever lost. */
    snprintf(key, sizeof key, "order:%lld", id);
    snprintf(path, sizeof path, "/internal/dispatch/%lld/cancel", id);
    if ((err = antar_outbox_add(ANTAR_SVC_CORE, key, "POST", path, empty)) != ANTAR_OK)
        goto fail;
    snprintf(path, sizeof path, "/internal/orders/%lld/cancelled", id);
    if ((err = antar_outbox_add(ANTAR_SVC_DRIVER, key, "POST", path, empty)) != ANTAR_OK)
        goto fail;
    if ((err = antar_db_commit()) != ANTAR_OK)
        goto fail;
    antar_outbox_kick();
    err = order_read(id, user_id, out);
    if (err == ANTAR_OK) {
        json_t *driver = json_object_get(*out, "driver");
        publish_status(id, "cancelled", user_id, json_integer_value(json_object_get(driver, "id")),
                       driver);
    }
    goto done;
fail:
    antar_db_rollback();
done:
    json_decref(empty);
    return no_such_order(err, why);
}

antar_err_t orders_rate(long long user_id, long long id, int rating, const char *comment,
                        json_t **out, antar_outcome_t *why)
{
    char path[96];
    json_t *row = NULL, *msg = NULL;
    antar_err_t err = store_order_get(id, user_id, &row);
    if (err != ANTAR_OK)
        return no_such_order(err, why);
    /* completed is final, so this check cannot go stale before the insert below. */
    if (strcmp(row_str(row, "status"), "completed") != 0) {
        err = antar_outcome_fail(why, ANTAR_E_CONFLICT, NULL,
                                 "the order is %s: only a completed order can be rated",
                                 row_str(row, "status"));
        json_decref(row);
        return err;
    }
    long long driver_id = row_int(row, "driver_id");
    json_decref(row);

    if ((err = antar_db_begin()) != ANTAR_OK)
        return err;
    err = store_rating_insert(id, user_id, driver_id, rating, comment);
    if (err == ANTAR_E_DUPLICATE) {
        antar_outcome_fail(why, err, NULL, "this order has already been rated");
        goto fail;
    }
    if (err != ANTAR_OK)
        goto fail;
    msg = json_pack("{s:I, s:i}", "order_id", (json_int_t)id, "rating", rating);
    if (!msg) {
        err = ANTAR_E_NOMEM;
        goto fail;
    }
    char key[32];
    snprintf(key, sizeof key, "order:%lld", id);
    snprintf(path, sizeof path, "/internal/drivers/%lld/ratings", driver_id);
    if ((err = antar_outbox_add(ANTAR_SVC_DRIVER, key, "POST", path, msg)) != ANTAR_OK)
        goto fail;
    if ((err = antar_db_commit()) != ANTAR_OK)
        goto fail;
    json_decref(msg);
    antar_outbox_kick();
    return store_rating_get(id, out);
fail:
    json_decref(msg);
    antar_db_rollback();
    return err;
}

/* ---- transitions driven by driver-service and core --------------------------------------- */

antar_err_t orders_get_internal(long long id, json_t **out, antar_outcome_t *why)
{
    return no_such_order(order_read_internal(id, out), why);
}

/* Seconds from order[a] to order[b] (RFC 3339 times) × speed; -1 when either is unset. */
static double span_s(const json_t *order, const char *a, const char *b, double speed)
{
    const char *x = json_string_value(json_object_get(order, a));
    const char *y = json_string_value(json_object_get(order, b));
    long long ta = x ? antar_time_parse(x) : -1, tb = y ? antar_time_parse(y) : -1;
    return ta < 0 || tb < ta ? -1 : (double)(tb - ta) / 1000.0 * speed;
}

static json_t *leg_json(const json_t *order, const char *predicted, const char *from,
                        const char *to, double speed)
{
    json_t *p = json_object_get(order, predicted);
    double a = span_s(order, from, to, speed);
    return json_pack("{s:O, s:o}", "predicted_s", json_is_integer(p) ? p : json_null(), "actual_s",
                     a >= 0 ? json_real(round(a * 10) / 10) : json_null());
}

/* Predicted against actual for the ops view (docs/ai.md): the way to the pickup (pickup_eta_s
 * against accepted → picked up) and the trip (duration_s against picked up → completed). The
 * predictions are city seconds; a simulated city runs its clock faster than the wall's, so the
 * actual wall time is scaled by the city clock's speed when ANTAR_AI_CLOCK_FILE names one (the
 * simulator's, as core reads it), else taken as it is. */
static const char *g_clock_file;
static pthread_once_t g_clock_once = PTHREAD_ONCE_INIT;

static void clock_file_load(void)
{
    g_clock_file = antar_config_env("ANTAR_AI_CLOCK_FILE", NULL);
}

static json_t *eta_json(const json_t *order)
{
    double speed = 1;
    /* The setting is read once; the file each time (a new simulated day writes a new clock). */
    pthread_once(&g_clock_once, clock_file_load);
    const char *clk = g_clock_file;
    json_t *c = clk ? json_load_file(clk, 0, NULL) : NULL;
    double sp = json_number_value(json_object_get(c, "speed"));
    if (sp > 0 && sp <= 10000)
        speed = sp;
    json_decref(c);
    return json_pack("{s:o, s:o, s:f}", "pickup",
                     leg_json(order, "pickup_eta_s", "accepted_at", "picked_up_at", speed), "trip",
                     leg_json(order, "duration_s", "picked_up_at", "completed_at", speed),
                     "clock_speed", speed);
}

antar_err_t orders_ops(long long id, json_t **out, antar_outcome_t *why)
{
    json_t *order = NULL, *steps = NULL, *spans = NULL;
    antar_err_t err = order_read_internal(id, &order);
    if (err != ANTAR_OK)
        return no_such_order(err, why);
    err = antar_trace_record_read(id, NULL, &steps, &spans);
    if (err != ANTAR_OK) {
        json_decref(order);
        return err;
    }
    json_t *eta = eta_json(order);
    *out = json_pack("{s:o, s:o, s:o, s:o}", "order", order, "steps", steps, "spans", spans, "eta",
                     eta ? eta : json_null());
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

/* After a conditional UPDATE that did not win: 200 with the order when the same driver already
 * made this move (a retry), 404 when there is no such order, 409 otherwise. done_states lists
 * the statuses that count as "already done by this driver". */
static antar_err_t after_lost(long long id, long long driver_id, const char *const *done_states,
                              const char *wanted, json_t **out, antar_outcome_t *why)
{
    json_t *row = NULL;
    antar_err_t err = store_order_get(id, 0, &row);
    if (err != ANTAR_OK)
        return err;
    const char *status = row_str(row, "status");
    if (driver_id > 0 && row_int(row, "driver_id") == driver_id)
        for (size_t i = 0; done_states[i]; i++)
            if (strcmp(status, done_states[i]) == 0)
                return order_internal(row, out);
    char msg[96];
    snprintf(msg, sizeof msg, "the order is %s, not %s", status, wanted);
    if (driver_id > 0 && row_int(row, "driver_id") != driver_id && strcmp(status, "searching") != 0)
        snprintf(msg, sizeof msg, "the order is %s for another driver", status);
    json_decref(row);
    return antar_outcome_fail(why, ANTAR_E_CONFLICT, NULL, "%s", msg);
}

/* Whether the order is still in state for driver_id: a later move of that driver is early, not
 * wrong. */
static bool not_yet_for(long long id, long long driver_id, const char *state)
{
    json_t *row = NULL;
    if (store_order_get(id, 0, &row) != ANTAR_OK)
        return false;
    bool yes = strcmp(row_str(row, "status"), state) == 0 && row_int(row, "driver_id") == driver_id;
    json_decref(row);
    return yes;
}

/* order_read_internal after a transition this call won, and its order_status event. */
static antar_err_t won_read(long long id, const json_t *driver_hint, json_t **out)
{
    antar_err_t err = order_read_internal(id, out);
    if (err == ANTAR_OK)
        publish_internal(*out, driver_hint);
    return err;
}

antar_err_t orders_assign(long long id, long long driver_id, long long offer_id,
                          long long pickup_eta_s, const json_t *driver, json_t **out,
                          antar_outcome_t *why)
{
    bool won = false;
    antar_err_t err = store_order_assign(id, driver_id, offer_id, pickup_eta_s, &won);
    if (err != ANTAR_OK)
        return err;
    if (won)
        return won_read(id, driver, out);
    static const char *const done[] = {"accepted", "picked_up", "completed", NULL};
    return no_such_order(after_lost(id, driver_id, done, "searching", out, why), why);
}

antar_err_t orders_pickup(long long id, long long driver_id, const json_t *driver, json_t **out,
                          antar_outcome_t *why)
{
    bool won = false;
    antar_err_t err = store_order_pickup(id, driver_id, &won);
    if (err != ANTAR_OK)
        return err;
    if (won)
        return won_read(id, driver, out);
    static const char *const done[] = {"picked_up", NULL};
    return no_such_order(after_lost(id, driver_id, done, "accepted", out, why), why);
}

antar_err_t orders_complete(long long id, long long driver_id, const json_t *driver, json_t **out,
                            antar_outcome_t *why)
{
    bool won = false;
    antar_err_t err = store_order_complete(id, driver_id, &won);
    if (err != ANTAR_OK)
        return err;
    if (won)
        return won_read(id, driver, out);
    static const char *const done[] = {"completed", NULL};
    err = after_lost(id, driver_id, done, "picked_up", out, why);
    if (err == ANTAR_E_CONFLICT && not_yet_for(id, driver_id, "accepted")) {
        /* The pickup is on its way: the outbox asks again. The message still says where the
         * order stands. */
        why->err = ANTAR_E_NOT_YET;
        return ANTAR_E_NOT_YET;
    }
    return no_such_order(err, why);
}

antar_err_t orders_expire(long long id, const char *event_id, json_t **out, antar_outcome_t *why)
{
    bool won = false;
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    if (event_id) {
        err = antar_inbox_claim(event_id);
        if (err == ANTAR_E_DUPLICATE) {
            /* Delivered before: answer with the order as it is, apply nothing. */
            antar_db_rollback();
            return order_read_internal(id, out);
        }
        if (err != ANTAR_OK)
            goto fail;
    }
    if ((err = store_order_expire(id, &won)) != ANTAR_OK)
        goto fail;
    if (!won) {
        antar_db_rollback();
        json_t *row = NULL;
        if ((err = store_order_get(id, 0, &row)) != ANTAR_OK)
            return no_such_order(err, why);
        /* Expiring twice is a redelivery, not a conflict. */
        if (strcmp(row_str(row, "status"), "expired") == 0)
            return order_internal(row, out);
        err = antar_outcome_fail(why, ANTAR_E_CONFLICT, NULL,
                                 "the order is %s, no longer searching", row_str(row, "status"));
        json_decref(row);
        return err;
    }
    if ((err = antar_db_commit()) != ANTAR_OK)
        goto fail;
    antar_log_json("info", "order_expired", json_pack("{s:I}", "order_id", (json_int_t)id));
    return won_read(id, NULL, out);
fail:
    antar_db_rollback();
    return err;
}
