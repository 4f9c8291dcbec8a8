/* driver-service: offers — created by core's dispatch, accepted or rejected by the driver,
 * expired by core's deadline, withdrawn when the customer cancels.
 *
 * Exactly one driver wins an order: the offer row arbitrates accept against the deadline (one
 * conditional UPDATE), and user-service's order row arbitrates between drivers (assign).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antar/config.h"
#include "antar/events.h"
#include "antar/metrics.h"
#include "antar/outbox.h"
#include "antar/util.h"
#include "antar/log.h"
#include "driver.h"

/* The default lifetime of an offer that came without expires_at: read once. */
static long g_offer_ttl_s;
static pthread_once_t g_offer_ttl_once = PTHREAD_ONCE_INIT;

static void offer_ttl_load(void)
{
    g_offer_ttl_s = antar_config_long("ANTAR_OFFER_TTL_S", 15, 1, 3600);
}

static long offer_ttl_s(void)
{
    pthread_once(&g_offer_ttl_once, offer_ttl_load);
    return g_offer_ttl_s;
}

/* The driver's "offer" event: the offer as GET /offers shows it, expires_at included. */
static void publish_offer(long long driver_id, const json_t *offer)
{
    char aud[ANTAR_EVENTS_AUD_MAX];
    snprintf(aud, sizeof aud, "driver:%lld", driver_id);
    (void)antar_events_publish("offer", aud, offer);
}

/* "offer_withdrawn": the offer is no longer the driver's to accept (reason "expired" or
 * "cancelled"). */
static void publish_withdrawn(long long driver_id, long long offer_id, long long order_id,
                              const char *reason)
{
    char aud[ANTAR_EVENTS_AUD_MAX], at[32];
    snprintf(aud, sizeof aud, "driver:%lld", driver_id);
    antar_time_rfc3339(antar_now_ms(), at);
    json_t *d = json_pack("{s:I, s:I, s:s, s:s}", "offer_id", (json_int_t)offer_id, "order_id",
                          (json_int_t)order_id, "reason", reason, "at", at);
    if (d)
        (void)antar_events_publish("offer_withdrawn", aud, d);
    json_decref(d);
}

static json_t *offer_to_json(json_t *row)
{
    json_t *name = json_object_get(row, "customer_first_name");
    return json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:{s:O}, "
        "s:O, s:O}",
        "id", json_object_get(row, "id"), "order_id", json_object_get(row, "order_id"), "status",
        json_object_get(row, "status"), "pickup_lat", json_object_get(row, "pickup_lat"),
        "pickup_lng", json_object_get(row, "pickup_lng"), "pickup_address",
        json_object_get(row, "pickup_address"), "dropoff_lat", json_object_get(row, "dropoff_lat"),
        "dropoff_lng", json_object_get(row, "dropoff_lng"), "dropoff_address",
        json_object_get(row, "dropoff_address"), "vehicle_type",
        json_object_get(row, "vehicle_type"), "price", json_object_get(row, "price"), "currency",
        json_object_get(row, "currency"), "customer", "first_name", name ? name : json_null(),
        "expires_at", json_object_get(row, "expires_at"), "created_at",
        json_object_get(row, "created_at"));
}

/* The offer row of id as API JSON into *out. */
static antar_err_t offer_load(long long id, json_t **out)
{
    json_t *row = NULL;
    antar_err_t err = store_offer_get(id, &row);
    if (err != ANTAR_OK)
        return err;
    *out = offer_to_json(row);
    json_decref(row);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

/* ms since the epoch → "YYYY-MM-DD HH:MM:SS.mmm" (UTC, the sessions' time zone). */
static void sql_time(long long ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char base[24];
    gmtime_r(&s, &tm);
    strftime(base, sizeof base, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03lld", base, ms % 1000);
}

static const char *str_or(json_t *obj, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : def;
}

antar_err_t offer_create(const offer_new_t *in, json_t **out, bool *created, antar_outcome_t *why)
{
    json_t *row = NULL;
    char first[101], expires[32];
    long long id = 0;
    offer_new_t o = *in;
    *created = false;

    /* The same (order, driver) again is a retry of core's call: the same answer. */
    antar_err_t err = store_offer_find(in->order_id, in->driver_id, &row);
    if (err == ANTAR_OK) {
        *out = offer_to_json(row);
        json_decref(row);
        return *out ? ANTAR_OK : ANTAR_E_NOMEM;
    }
    if (err != ANTAR_E_NOT_FOUND)
        return err;

    err = store_driver_get(in->driver_id, &row);
    if (err != ANTAR_OK)
        return err;
    const char *own_type = str_or(row, "vehicle_type", "");
    if (o.vehicle_type && strcmp(o.vehicle_type, own_type) != 0) {
        err = antar_outcome_fail(why, ANTAR_E_CONFLICT, "vehicle_type",
                                 "the driver drives another vehicle type");
        goto done;
    }

    /* Everything the offer carries comes with core's call: an internal route calls nobody
     * (docs/reliability.md, "Call graph"), so the order is not read back from user-service.
     * A cancelled order is refused by store_offer_create (cancelled_orders). */
    snprintf(first, sizeof first, "%s", in->customer_first_name ? in->customer_first_name : "");
    first[strcspn(first, " \t")] = '\0';
    o.vehicle_type = own_type;
    if (!o.currency)
        o.currency = "IDR";
    if (o.expires_ms <= 0) {
        o.expires_ms = antar_now_ms() + offer_ttl_s() * 1000;
    }
    sql_time(o.expires_ms, expires);

    /* The hint first, the row after: a poll that finds no hint can trust that there is no
     * pending offer. If Redis refuses the hint, the offer is still made; the driver's polls
     * then fall back to MariaDB only while Redis errs, so such an offer may go unseen and
     * expire, and dispatch moves on to the next driver. */
    if (store_offer_hint_set(in->driver_id, o.expires_ms) != ANTAR_OK)
        antar_log_json("warn", "offer_hint_failed",
                       json_pack("{sI}", "driver_id", (json_int_t)in->driver_id));
    err = store_offer_create(&o, first[0] ? first : NULL, expires, &id, why);
    if (err == ANTAR_E_DUPLICATE) {
        /* A retry raced this call and inserted the same offer: answer with it. */
        json_decref(row);
        row = NULL;
        err = store_offer_find(in->order_id, in->driver_id, &row);
        if (err == ANTAR_OK) {
            *out = offer_to_json(row);
            err = *out ? ANTAR_OK : ANTAR_E_NOMEM;
        }
        goto done;
    }
    if (err != ANTAR_OK)
        goto done;
    err = offer_load(id, out);
    *created = err == ANTAR_OK;
    if (*created) {
        antar_metrics_count("antar_offers_total", "outcome", "created");
        publish_offer(in->driver_id, *out);
    }
done:
    json_decref(row);
    if (err == ANTAR_E_CONFLICT && why->err != ANTAR_E_CONFLICT)
        /* Core only needs the 409 to move on; the reason is for its logs and for people. */
        antar_outcome_fail(why, err, "driver_id",
                           "the driver is offline, busy or holds a live offer, or the order is "
                           "no longer searching");
    return err;
}

antar_err_t offer_list_pending(long long driver_id, json_t **out)
{
    json_t *rows = NULL, *items = NULL, *row;
    size_t i;
    bool maybe = true;
    antar_err_t err = ANTAR_OK;
    /* Most polls find nothing: without a hint there is no pending offer, and MariaDB is not
     * asked. Without Redis, MariaDB answers. */
    (void)store_offer_hint_get(driver_id, &maybe);
    if (maybe)
        err = store_offers_pending(driver_id, &rows);
    else
        rows = json_array();
    if (err != ANTAR_OK || !rows)
        return err != ANTAR_OK ? err : ANTAR_E_NOMEM;
    items = json_array();
    json_array_foreach(rows, i, row) json_array_append_new(items, offer_to_json(row));
    json_decref(rows);
    *out = json_pack("{s:o, s:n}", "items", items, "next_cursor");
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

/* The offer row of id when it belongs to driver_id; NOT_FOUND otherwise, so that another
 * driver's offers cannot even be probed. */
static antar_err_t own_offer(long long driver_id, long long id, json_t **row)
{
    return driver_row_owned(store_offer_get(id, row), row, driver_id);
}

antar_err_t offer_accept(long long driver_id, long long offer_id, json_t **out)
{
    json_t *row = NULL, *trip = NULL;
    bool won = false;
    antar_err_t err = own_offer(driver_id, offer_id, &row);
    if (err != ANTAR_OK)
        return err;
    long long order_id = json_integer_value(json_object_get(row, "order_id"));
    const char *status = json_string_value(json_object_get(row, "status"));

    if (status && strcmp(status, "pending") == 0) {
        err = store_offer_claim(offer_id, driver_id, order_id, confirm_grace_ms(), &won);
        if (err != ANTAR_OK)
            goto done;
        if (!won) {
            /* Expired, rejected, withdrawn — or accepted by a concurrent request: of two
             * accepts at once exactly one succeeds. */
            err = ANTAR_E_CONFLICT;
            goto done;
        }
    } else if (status && strcmp(status, "accepted") == 0) {
        /* Accepted before. With a trip that is a second accept, a wrong transition; without
         * one, user-service's answer never came and the driver is asking again. */
        err = store_trip_get(order_id, &trip);
        if (err != ANTAR_E_NOT_FOUND) {
            if (err == ANTAR_OK)
                err = ANTAR_E_CONFLICT;
            goto done;
        }
    } else {
        err = ANTAR_E_CONFLICT;
        goto done;
    }
    err = confirm_assign(driver_id, offer_id, order_id);
    if (err == ANTAR_OK)
        err = trip_get(driver_id, order_id, out);
done:
    json_decref(row);
    json_decref(trip);
    return err;
}

antar_err_t offer_reject(long long driver_id, long long offer_id, json_t **out)
{
    json_t *row = NULL, *body = NULL;
    char path[96];
    bool changed = false;
    antar_err_t err = own_offer(driver_id, offer_id, &row);
    if (err != ANTAR_OK)
        return err;
    long long order_id = json_integer_value(json_object_get(row, "order_id"));
    body = json_pack("{s:I, s:I}", "driver_id", (json_int_t)driver_id, "offer_id",
                     (json_int_t)offer_id);
    if (!body) {
        err = ANTAR_E_NOMEM;
        goto done;
    }
    snprintf(path, sizeof path, "/internal/dispatch/%lld/rejected", order_id);
    err = store_offer_reject(offer_id, driver_id, body, path, &changed);
    if (err != ANTAR_OK)
        goto done;
    if (!changed) {
        err = ANTAR_E_CONFLICT;
        goto done;
    }
    antar_outbox_kick();
    antar_metrics_count("antar_offers_total", "outcome", "rejected");
    err = offer_load(offer_id, out);
done:
    json_decref(row);
    json_decref(body);
    return err;
}

antar_err_t offer_expire(long long offer_id, json_t **out)
{
    bool changed = false;
    antar_err_t err = store_offer_move(offer_id, "pending", "expired", &changed);
    if (err != ANTAR_OK)
        return err;
    if (changed)
        antar_metrics_count("antar_offers_total", "outcome", "expired");
    err = offer_load(offer_id, out);
    if (err != ANTAR_OK)
        return err;
    if (changed) {
        json_t *row = NULL;
        if (store_offer_get(offer_id, &row) == ANTAR_OK)
            publish_withdrawn(json_integer_value(json_object_get(row, "driver_id")), offer_id,
                              json_integer_value(json_object_get(*out, "order_id")), "expired");
        json_decref(row);
    }
    const char *status = json_string_value(json_object_get(*out, "status"));
    if (!changed && status && strcmp(status, "accepted") == 0)
        return ANTAR_E_CONFLICT; /* *out stays set: core reads the offer from the 409 */
    return ANTAR_OK;
}

antar_err_t offer_order_cancelled(long long order_id, const char *event_id, json_t **out)
{
    long long withdrawn = 0, cancelled = 0;
    antar_err_t err = store_order_cancel(order_id, event_id, &withdrawn, &cancelled);
    if (err != ANTAR_OK && err != ANTAR_E_DUPLICATE)
        return err;
    json_t *rows = NULL, *row;
    size_t i;
    if (err == ANTAR_OK && withdrawn > 0 &&
        store_offers_of_order(order_id, "withdrawn", &rows) == ANTAR_OK) {
        json_array_foreach(rows, i, row)
        {
            publish_withdrawn(json_integer_value(json_object_get(row, "driver_id")),
                              json_integer_value(json_object_get(row, "id")), order_id,
                              "cancelled");
        }
    }
    json_decref(rows);
    *out = json_pack("{s:I, s:I, s:b}", "order_id", (json_int_t)order_id, "offers_withdrawn",
                     (json_int_t)withdrawn, "trip_cancelled", cancelled > 0);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}
