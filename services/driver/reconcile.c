/* driver-service: confirmations and the reconciler — a timeout is not an answer.
 *
 * Accept and pickup need user-service's yes (it arbitrates them against other drivers and the
 * customer's cancel). When that call gets no definite answer, the change is not undone and not
 * guessed: a row in pending_confirms (written before the call, in the claim's own transaction
 * for an accept) stays until user-service says yes or no. The reconciler thread asks again,
 * with the same Idempotency-Key, for every row due, with a growing pause; user-service's
 * assign and pickup are idempotent for the same driver, so asking twice is harmless.
 *
 * The same thread also sweeps active trips that have not moved for a while and compares each
 * with its order, repairing this side toward user-service's (the order's owner): a trip whose
 * order was cancelled, expired or given to someone else is cancelled; a trip behind its order's
 * pickup is moved on. Every repair is counted in antar_reconcile_repairs_total{kind}.
 */
#include <stdio.h>
#include <string.h>

#include "antar/db.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/outbox.h"
#include "antar/ticker.h"
#include "antar/util.h"
#include "driver.h"

#define CONFIRMS_PER_PASS 50
#define SWEEP_PER_PASS 50
#define RETRY_FIRST_MS 1000L
#define CLAIM_LEASE_MS 15000L
#define RETRY_MAX_MS 60000L

static antar_ticker_t *g_ticker;
static long g_sweep_s, g_grace_ms;

long confirm_grace_ms(void)
{
    /* Before the thread starts (tests of the domain calls) the default applies. */
    return g_grace_ms > 0 ? g_grace_ms : 8000;
}

static void repaired(const char *kind)
{
    antar_metrics_count("antar_reconcile_repairs_total", "kind", kind);
    antar_log_json("warn", "reconcile_repair", json_pack("{s:s}", "kind", kind));
}

void with_profile(json_t *body, long long driver_id)
{
    json_t *profile = NULL;
    if (driver_public(driver_id, &profile) == ANTAR_OK)
        json_object_set_new(body, "driver", profile);
}

antar_err_t confirm_assign(long long driver_id, long long offer_id, long long order_id)
{
    char path[96], key[48];
    bool moved = false;
    json_t *body = json_pack("{s:I, s:I}", "driver_id", (json_int_t)driver_id, "offer_id",
                             (json_int_t)offer_id);
    if (!body)
        return ANTAR_E_NOMEM;
    with_profile(body, driver_id);
    /* The pickup ETA core predicted when it made the offer: the order shows it from now on. */
    json_t *offer = NULL;
    if (store_offer_get(offer_id, &offer) == ANTAR_OK &&
        json_is_integer(json_object_get(offer, "pickup_eta_s")))
        json_object_set(body, "pickup_eta_s", json_object_get(offer, "pickup_eta_s"));
    json_decref(offer);
    snprintf(path, sizeof path, "/internal/orders/%lld/assign", order_id);
    snprintf(key, sizeof key, "assign-%lld", offer_id);
    antar_err_t err = driver_call_keyed(ANTAR_SVC_USER, "POST", path, body, key, NULL);
    if (err == ANTAR_E_CONFLICT || err == ANTAR_E_NOT_FOUND) {
        /* The order went to another driver or was cancelled: this offer lost. */
        if (store_offer_lose(offer_id, order_id, &moved) == ANTAR_OK && moved)
            antar_metrics_count("antar_offers_total", "outcome", "lost");
        err = ANTAR_E_CONFLICT;
        goto done;
    }
    if (err != ANTAR_OK) {
        antar_metrics_count("antar_confirms_total", "outcome", "no_answer");
        goto done;
    }
    snprintf(path, sizeof path, "/internal/dispatch/%lld/accepted", order_id);
    err = store_trip_create(offer_id, body, path);
    if (err == ANTAR_E_DUPLICATE) {
        err = ANTAR_E_CONFLICT; /* a concurrent accept of the same offer made the trip */
        goto done;
    }
    if (err != ANTAR_OK)
        goto done;
    antar_outbox_kick();
    antar_metrics_count("antar_offers_total", "outcome", "accepted");
    position_trip(driver_id, order_id);
done:
    json_decref(body);
    return err;
}

antar_err_t confirm_pickup(long long driver_id, long long order_id)
{
    char path[96], key[48];
    bool changed = false;
    json_t *body = json_pack("{s:I}", "driver_id", (json_int_t)driver_id);
    if (!body)
        return ANTAR_E_NOMEM;
    with_profile(body, driver_id);
    snprintf(path, sizeof path, "/internal/orders/%lld/pickup", order_id);
    snprintf(key, sizeof key, "pickup-%lld", order_id);
    antar_err_t err = driver_call_keyed(ANTAR_SVC_USER, "POST", path, body, key, NULL);
    json_decref(body);
    if (err == ANTAR_E_CONFLICT || err == ANTAR_E_NOT_FOUND) {
        /* Cancelled first: the cancellation reaches this trip through the outbox. */
        (void)store_confirm_done(order_id, "pickup");
        return ANTAR_E_CONFLICT;
    }
    if (err != ANTAR_OK) {
        antar_metrics_count("antar_confirms_total", "outcome", "no_answer");
        return err;
    }
    err = store_trip_pickup(order_id, driver_id, &changed);
    if (err == ANTAR_OK && !changed)
        err = ANTAR_E_CONFLICT; /* cancelled while we asked, or a concurrent pickup */
    return err;
}

static long retry_ms(long long attempts)
{
    return antar_backoff_ms(RETRY_FIRST_MS, RETRY_MAX_MS, attempts);
}

/* Every pending confirmation that is due: ask again. */
static void pass_confirms(void)
{
    json_t *rows = NULL, *r;
    size_t i;
    if (store_confirms_due(CONFIRMS_PER_PASS, &rows) != ANTAR_OK)
        return;
    json_array_foreach(rows, i, r)
    {
        long long order_id = json_integer_value(json_object_get(r, "order_id"));
        long long driver_id = json_integer_value(json_object_get(r, "driver_id"));
        long long offer_id = json_integer_value(json_object_get(r, "offer_id"));
        long long attempts = json_integer_value(json_object_get(r, "attempts"));
        const char *kind = json_string_value(json_object_get(r, "kind"));
        bool assign = kind && strcmp(kind, "assign") == 0;
        bool mine = false;
        /* Longer than the call's timeout with its retries: the lease only ends early when this
         * process dies mid-call. */
        if (!kind || store_confirm_claim(order_id, kind, CLAIM_LEASE_MS, &mine) != ANTAR_OK ||
            !mine)
            continue; /* another instance's reconciler has it */
        antar_err_t err = assign ? confirm_assign(driver_id, offer_id, order_id)
                                 : confirm_pickup(driver_id, order_id);
        if (err == ANTAR_OK) {
            repaired(assign ? "assign_confirmed" : "pickup_confirmed");
        } else if (err == ANTAR_E_CONFLICT) {
            antar_metrics_count("antar_reconcile_repairs_total", "kind",
                                assign ? "assign_refused" : "pickup_refused");
            (void)store_confirm_done(order_id, assign ? "assign" : "pickup");
        } else {
            (void)store_confirm_later(order_id, assign ? "assign" : "pickup", retry_ms(attempts));
        }
    }
    json_decref(rows);
}

/* The trip is active but its order says otherwise: cancel it here (core hears the driver is
 * free again). */
static void cancel_trip(long long order_id, long long driver_id, const char *kind)
{
    char path[96];
    bool changed = false;
    json_t *body = json_pack("{s:b, s:I}", "available", 1, "order_id", (json_int_t)order_id);
    if (!body)
        return;
    snprintf(path, sizeof path, "/internal/drivers/%lld/availability", driver_id);
    if (store_trip_repair_cancel(order_id, driver_id, body, path, &changed) == ANTAR_OK &&
        changed) {
        antar_outbox_kick();
        repaired(kind);
    }
    json_decref(body);
}

/* One idle active trip against its order. */
static void check_trip(json_t *trip)
{
    char path[96];
    json_t *order = NULL;
    long long order_id = json_integer_value(json_object_get(trip, "order_id"));
    long long driver_id = json_integer_value(json_object_get(trip, "driver_id"));
    long long offer_id = json_integer_value(json_object_get(trip, "offer_id"));
    const char *tst = json_string_value(json_object_get(trip, "status"));
    snprintf(path, sizeof path, "/internal/orders/%lld", order_id);
    antar_err_t err = driver_call(ANTAR_SVC_USER, "GET", path, NULL, &order);
    if (err == ANTAR_E_NOT_FOUND) {
        cancel_trip(order_id, driver_id, "trip_without_order");
    } else if (err == ANTAR_OK) {
        const char *ost = json_string_value(json_object_get(order, "status"));
        long long odrv = json_integer_value(json_object_get(order, "driver_id"));
        if (!ost || !tst) {
            /* nothing to compare */
        } else if (strcmp(ost, "cancelled") == 0 || strcmp(ost, "expired") == 0) {
            cancel_trip(order_id, driver_id, "trip_order_gone");
        } else if (strcmp(ost, "searching") == 0) {
            /* The assign never landed (not possible while its confirmation existed): ask. */
            if (store_confirm_add(order_id, "assign", driver_id, offer_id, 0) == ANTAR_OK)
                repaired("order_behind_trip");
        } else if (odrv != driver_id) {
            cancel_trip(order_id, driver_id, "trip_other_driver");
        } else if (strcmp(ost, "picked_up") == 0 && strcmp(tst, "accepted") == 0) {
            bool changed = false;
            if (store_trip_pickup(order_id, driver_id, &changed) == ANTAR_OK && changed)
                repaired("trip_behind_order");
        }
    }
    /* checked_at was set by the claim: a trip whose order could not be read is looked at again
     * after the sweep interval, like any other. */
    json_decref(order);
}

static void pass_sweep(void)
{
    json_t *rows = NULL, *r;
    size_t i;
    if (store_trips_unchecked((int)g_sweep_s, SWEEP_PER_PASS, &rows) != ANTAR_OK)
        return;
    json_array_foreach(rows, i, r)
    {
        bool mine = false;
        long long order_id = json_integer_value(json_object_get(r, "order_id"));
        if (store_trip_claim_check(order_id, (int)g_sweep_s, &mine) == ANTAR_OK && mine)
            check_trip(r);
    }
    json_decref(rows);
}

static void pass(void *arg)
{
    (void)arg;
    pass_confirms();
    pass_sweep();
}

int reconcile_start(void)
{
    long period_ms = antar_config_long("ANTAR_RECONCILE_MS", 2000, 100, 600000);
    g_sweep_s = antar_config_long("ANTAR_RECONCILE_SWEEP_S", 120, 1, 86400);
    g_grace_ms = antar_config_long("ANTAR_CONFIRM_GRACE_MS", 8000, 0, 600000);
    g_ticker = antar_ticker_start("reconcile", period_ms, pass, NULL);
    return g_ticker ? 0 : -1;
}

void reconcile_stop(void)
{
    antar_ticker_stop(g_ticker);
    g_ticker = NULL;
}
