/* dispatch.c — finding a driver for an order: the rules behind the internal dispatch routes
 * (routes.c speaks HTTP for them) and the worker.
 *
 * user-service hands an order over (POST /internal/dispatch, from its outbox); the state lives
 * in Redis (dispatch_store.c), never in this process, so a restart or a second core instance
 * loses nothing. One worker thread looks at the orders that are due: it expires the current
 * offer at its deadline (driver-service arbitrates against an acceptance), offers the order to
 * the next nearest free driver, and gives up after ANTAR_DISPATCH_MAX_CANDIDATES offers or
 * ANTAR_DISPATCH_MAX_S seconds by telling user-service to expire the order (outbox). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ai.h"
#include "antar/db.h"
#include "antar/httpc.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/outbox.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "core.h"
#include "dispatch.h"
#include "dispatch_store.h"
#include "fare_model.h"

#define POLL_MS 200
#define RETRY_MS 2000
#define PURGE_EVERY_MS 5000
#define CLAIM_BATCH 16
/* Candidates answered 409 (busy at driver-service) tried in one go before yielding. */
#define PICKS_PER_ROUND 8

/* ---- settings ------------------------------------------------------------------------------ */

static core_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void settings_load(void)
{
    settings.offer_ttl_s = antar_config_long("ANTAR_OFFER_TTL_S", 15, 1, 3600);
    settings.dispatch_max_s = antar_config_long("ANTAR_DISPATCH_MAX_S", 120, 1, 86400);
    settings.max_candidates = antar_config_long("ANTAR_DISPATCH_MAX_CANDIDATES", 5, 1, 1000);
    settings.radius_m = antar_config_long("ANTAR_DISPATCH_RADIUS_M", 5000, 1, 100000);
    settings.presence_ttl_s = antar_config_long("ANTAR_PRESENCE_TTL_S", 60, 1, 86400);
    settings.quote_ttl_s = antar_config_long("ANTAR_QUOTE_TTL_S", 300, 1, 86400);
}

const core_settings_t *core_settings(void)
{
    pthread_once(&settings_once, settings_load);
    return &settings;
}

/* A claim outlives the longest unit of work (a few sync calls with their timeouts), so that
 * only a crashed worker's orders come back to the queue. */
static long long lease_ms(void)
{
    return 30000 + core_settings()->offer_ttl_s * 1000;
}

/* ---- the order's messages (routes.c speaks HTTP for them) -------------------------------- */

/* {order_id, status: state} into *out. */
static antar_err_t state_out(long long order_id, const char *state, json_t **out)
{
    json_t *res = json_pack("{sI ss}", "order_id", (json_int_t)order_id, "status", state);
    if (!res)
        return ANTAR_E_NOMEM;
    *out = res;
    return ANTAR_OK;
}

antar_err_t core_dispatch_create(const core_order_t *o, json_t **out)
{
    /* Only validated fields are kept: they are what the offers will carry. */
    json_t *payload =
        json_pack("{sI sI ss sf sf sf sf sI ss}", "order_id", (json_int_t)o->order_id, "user_id",
                  (json_int_t)o->user_id, "vehicle_type", o->vehicle_type, "pickup_lat",
                  o->pickup_lat, "pickup_lng", o->pickup_lng, "dropoff_lat", o->dropoff_lat,
                  "dropoff_lng", o->dropoff_lng, "price", (json_int_t)o->price, "currency", "IDR");
    if (!payload)
        return ANTAR_E_NOMEM;
    if (o->pickup_address)
        json_object_set_new(payload, "pickup_address", json_string(o->pickup_address));
    if (o->dropoff_address)
        json_object_set_new(payload, "dropoff_address", json_string(o->dropoff_address));
    if (o->customer_first_name)
        json_object_set_new(payload, "customer_first_name", json_string(o->customer_first_name));
    /* The order's trace travels with its dispatch state, so the worker's calls for this order
     * (offers, expiry) stay in the trace of the request that placed it. */
    const antar_trace_t *tr = antar_trace_current();
    if (tr) {
        char tp[56];
        snprintf(tp, sizeof tp, "00-%s-%s-%s", tr->trace_id, tr->span_id, tr->flags);
        json_object_set_new(payload, "traceparent", json_string(tp));
    }
    bool created = false;
    long long now = antar_now_ms();
    antar_err_t err = core_store_dispatch_create(o->order_id, payload, now, &created);
    json_decref(payload);
    if (err != ANTAR_OK)
        return err;
    if (created) {
        char cell[48];
        core_fare_cell(o->pickup_lat, o->pickup_lng, cell, sizeof cell);
        /* An order is demand for the surge; losing one count is harmless. */
        (void)core_store_demand_add(cell, o->user_id, now);
        core_ai_order_placed(o->pickup_lat, o->pickup_lng, now);
        antar_metrics_count("antar_dispatch_total", "outcome", "started");
        antar_log_json("info", "dispatch_started",
                       json_pack("{sI ss}", "order_id", (json_int_t)o->order_id, "vehicle_type",
                                 o->vehicle_type));
        core_dispatch_wake();
    }
    json_t *res = json_pack("{sI ss sb}", "order_id", (json_int_t)o->order_id, "status",
                            "dispatching", "created", created);
    if (!res)
        return ANTAR_E_NOMEM;
    *out = res;
    return ANTAR_OK;
}

antar_err_t core_dispatch_rejected(long long order_id, long long driver_id, long long offer_id,
                                   json_t **out)
{
    antar_err_t err = core_store_dispatch_rejected(order_id, driver_id, offer_id, antar_now_ms());
    if (err != ANTAR_OK)
        return err;
    core_ai_offer_outcome(driver_id, false);
    core_dispatch_wake();
    return state_out(order_id, "rejected", out);
}

antar_err_t core_dispatch_accepted(long long order_id, long long driver_id, json_t **out)
{
    antar_err_t err = core_store_dispatch_accepted(order_id, driver_id);
    if (err == ANTAR_OK)
        err = antar_kv_replicated(KV_REPLICATED_MS);
    if (err != ANTAR_OK)
        return err;
    core_ai_offer_outcome(driver_id, true);
    antar_metrics_count("antar_dispatch_total", "outcome", "accepted");
    return state_out(order_id, "accepted", out);
}

antar_err_t core_dispatch_cancel(long long order_id, json_t **out)
{
    antar_err_t err = core_store_dispatch_cancel(order_id);
    if (err != ANTAR_OK)
        return err;
    antar_metrics_count("antar_dispatch_total", "outcome", "cancelled");
    return state_out(order_id, "cancelled", out);
}

/* ---- the worker ---------------------------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop, woken;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

void core_dispatch_wake(void)
{
    pthread_mutex_lock(&W.mu);
    W.woken = true;
    if (W.running)
        pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

typedef enum { OUTCOME_DONE, OUTCOME_ACCEPTED, OUTCOME_BUSY, OUTCOME_RETRY } call_outcome_t;

static void log_order(const char *level, const char *event, long long order_id, long long driver,
                      long long offer)
{
    json_t *f = json_pack("{sI}", "order_id", (json_int_t)order_id);
    if (driver)
        json_object_set_new(f, "driver_id", json_integer(driver));
    if (offer)
        json_object_set_new(f, "offer_id", json_integer(offer));
    antar_log_json(level, event, f);
}

/* Ask driver-service to expire the offer at its deadline. It arbitrates: an offer accepted just
 * before comes back as a 409 carrying the offer with status accepted. */
static call_outcome_t offer_expire(long long offer_id)
{
    char path[96];
    snprintf(path, sizeof path, "/internal/offers/%lld/expire", offer_id);
    json_t *body = json_object();
    antar_httpc_res_t res;
    antar_err_t err = antar_httpc_outcome(
        antar_httpc_call(ANTAR_SVC_DRIVER, "POST", path, body, NULL, &res), &res, NULL);
    json_decref(body);
    call_outcome_t out = OUTCOME_RETRY;
    const char *st = json_string_value(json_object_get(antar_httpc_result(&res), "status"));
    if (antar_err_status(err) == 409 && st && strcmp(st, "accepted") == 0)
        out = OUTCOME_ACCEPTED;
    else if (antar_err_status(err) < 500)
        out = OUTCOME_DONE; /* expired now, or already rejected/lost/withdrawn/unknown */
    antar_httpc_res_clean(&res);
    return out;
}

/* Offer the order to driver_id. OUTCOME_DONE with *offer_id on success; OUTCOME_BUSY when
 * driver-service refuses this driver (409: offline, busy, a live offer elsewhere); RETRY when
 * it could not be asked. */
static call_outcome_t offer_create(const core_dispatch_t *d, long long driver_id,
                                   long long expires_ms, long long *offer_id)
{
    static const char *const keys[] = {"order_id",    "vehicle_type",       "pickup_lat",
                                       "pickup_lng",  "pickup_address",     "dropoff_lat",
                                       "dropoff_lng", "dropoff_address",    "price",
                                       "currency",    "customer_first_name"};
    json_t *body = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(d->payload, keys[i]);
        if (v)
            json_object_set(body, keys[i], v);
    }
    char ts[32];
    antar_time_rfc3339(expires_ms, ts);
    json_object_set_new(body, "driver_id", json_integer(driver_id));
    json_object_set_new(body, "expires_at", json_string(ts));
    core_ai_offer_fields(body, d->payload, driver_id, antar_now_ms());
    antar_httpc_res_t res;
    antar_err_t err = antar_httpc_outcome(
        antar_httpc_call(ANTAR_SVC_DRIVER, "POST", "/internal/offers", body, NULL, &res), &res,
        NULL);
    json_decref(body);
    call_outcome_t out = OUTCOME_RETRY;
    json_t *id = json_object_get(antar_httpc_result(&res), "id");
    if (err == ANTAR_OK && json_is_integer(id)) {
        *offer_id = json_integer_value(id);
        out = OUTCOME_DONE;
    } else if (err != ANTAR_OK && antar_err_status(err) < 500) {
        /* 409 is the expected refusal; any other refusal is about this driver too (unknown to
         * driver-service, say): move on rather than retry forever. */
        if (antar_err_status(err) != 409)
            log_order("warn", "offer_refused", d->order_id, driver_id, 0);
        out = OUTCOME_BUSY;
    }
    antar_httpc_res_clean(&res);
    return out;
}

/* Give up: user-service expires the order (outbox, in core's own database transaction), then
 * the dispatch state goes. If the transaction fails the order is looked at again shortly. */
static void order_expire(const core_dispatch_t *d)
{
    char path[96], key[32];
    snprintf(path, sizeof path, "/internal/orders/%lld/expire", d->order_id);
    snprintf(key, sizeof key, "order:%lld", d->order_id);
    json_t *body = json_object();
    antar_err_t err = antar_db_begin();
    if (err == ANTAR_OK)
        err = antar_outbox_add(ANTAR_SVC_USER, key, "POST", path, body);
    if (err == ANTAR_OK)
        err = antar_db_commit();
    json_decref(body);
    if (err != ANTAR_OK) {
        antar_db_rollback();
        log_order("error", "dispatch_expire_failed", d->order_id, 0, 0);
        (void)core_store_dispatch_reschedule(d->order_id, antar_now_ms() + RETRY_MS);
        return;
    }
    antar_outbox_kick();
    (void)core_store_dispatch_expired(d->order_id);
    antar_metrics_count("antar_dispatch_total", "outcome", "expired");
    antar_log_json("info", "dispatch_expired",
                   json_pack("{sI sI}", "order_id", (json_int_t)d->order_id, "offers",
                             (json_int_t)d->attempts));
}

static bool limits_reached(const core_dispatch_t *d, long long now)
{
    const core_settings_t *s = core_settings();
    return d->attempts >= s->max_candidates || now - d->started_ms >= s->dispatch_max_s * 1000;
}

/* How many free drivers around the pickup the models compare. */
#define AI_CANDIDATES 8

/* The next driver to offer the order to, locked and marked tried; 0 when none is free.
 * Today's rule takes the nearest. With the ETA and acceptance models (ai.c) the nearest
 * AI_CANDIDATES are ranked by the expected time until a driver has accepted and reached the
 * pickup — a close driver who usually declines can cost more than one a little further who says
 * yes — and the best one still free is taken. */
static antar_err_t pick_driver(const core_dispatch_t *d, const char *vt, double plat, double plng,
                               long long now, long long *driver)
{
    const core_settings_t *s = core_settings();
    long long cutoff = now - s->presence_ttl_s * 1000, lock = s->offer_ttl_s * 1000;
    if (core_ai_ready(CORE_AI_ETA) && core_ai_ready(CORE_AI_ACC)) {
        double t0 = core_ai_now_s();
        core_candidate_t c[AI_CANDIDATES];
        size_t n = 0;
        antar_err_t err =
            core_store_dispatch_candidates(d->order_id, vt, plat, plng, s->radius_m, cutoff,
                                           core_ai_clock(now).epoch, c, AI_CANDIDATES, &n);
        if (err != ANTAR_OK)
            return err;
        /* The candidates' read stands in for the rule's nearest-driver search: measured apart
         * from the models' own time. */
        double t1 = core_ai_now_s();
        core_ai_latency("dispatch_redis", t1 - t0);
        if (n == 0) {
            *driver = 0;
            return ANTAR_OK;
        }
        double sc[AI_CANDIDATES], eta[AI_CANDIDATES], p[AI_CANDIDATES];
        json_t *pl = d->payload;
        bool ranked =
            core_ai_rank(c, n, plat, plng, json_number_value(json_object_get(pl, "dropoff_lat")),
                         json_number_value(json_object_get(pl, "dropoff_lng")),
                         (double)json_integer_value(json_object_get(pl, "price")),
                         strcmp(vt, "car") == 0, now, sc, eta, p);
        core_ai_latency("dispatch", core_ai_now_s() - t1);
        if (ranked) {
            size_t order[AI_CANDIDATES];
            /* Insertion sort by score; ties keep the nearest first. */
            for (size_t i = 0; i < n; i++) {
                size_t j = i;
                order[i] = i;
                while (j > 0 && sc[order[j - 1]] > sc[i]) {
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = i;
            }
            for (size_t k = 0; k < n; k++) {
                size_t i = order[k];
                bool taken = false;
                err = core_store_dispatch_pick_one(d->order_id, c[i].driver_id, vt, cutoff, lock,
                                                   &taken);
                if (err != ANTAR_OK)
                    return err;
                if (taken) {
                    *driver = c[i].driver_id;
                    antar_log_json("info", "ai_dispatch_pick",
                                   json_pack("{sI sI si si sf sf sf}", "order_id",
                                             (json_int_t)d->order_id, "driver_id",
                                             (json_int_t)c[i].driver_id, "rank_by_model", (int)k,
                                             "rank_by_distance", (int)i, "pickup_eta_s", eta[i],
                                             "p_accept", p[i], "score_s", sc[i]));
                    return ANTAR_OK;
                }
            }
        }
    }
    return core_store_dispatch_pick(d->order_id, vt, plat, plng, s->radius_m, cutoff, lock, driver);
}

/* One look at a claimed order. */
static void order_step(long long order_id)
{
    const core_settings_t *s = core_settings();
    core_dispatch_t d = {0};
    antar_err_t err = core_store_dispatch_load(order_id, &d);
    if (err == ANTAR_E_NOT_FOUND) { /* finished meanwhile: drop the stray due entry */
        (void)core_store_dispatch_reschedule(order_id, 0);
        return;
    }
    if (err != ANTAR_OK)
        return; /* Redis trouble: the lease brings it back */
    const char *tp = json_string_value(json_object_get(d.payload, "traceparent"));
    if (tp) {
        antar_trace_t t;
        if (antar_trace_from_header(&t, tp))
            antar_trace_set_current(&t);
    }
    long long now = antar_now_ms();

    if (d.offer_id) {
        if (now < d.offer_deadline_ms) {
            (void)core_store_dispatch_reschedule(order_id, d.offer_deadline_ms);
            goto out;
        }
        call_outcome_t o = offer_expire(d.offer_id);
        if (o == OUTCOME_ACCEPTED) {
            /* The acceptance beat the deadline; its own message from driver-service will say
             * the same, and both are idempotent. */
            (void)core_store_dispatch_accepted(order_id, d.offer_driver);
            log_order("info", "dispatch_accepted", order_id, d.offer_driver, d.offer_id);
            goto out;
        }
        if (o == OUTCOME_RETRY) {
            (void)core_store_dispatch_reschedule(order_id, now + RETRY_MS);
            goto out;
        }
        log_order("info", "offer_expired", order_id, d.offer_driver, d.offer_id);
        core_ai_offer_outcome(d.offer_driver, false);
        (void)core_store_dispatch_offer_done(order_id, d.offer_driver);
        d.offer_id = 0;
    }

    const char *vt = json_string_value(json_object_get(d.payload, "vehicle_type"));
    double plat = json_number_value(json_object_get(d.payload, "pickup_lat"));
    double plng = json_number_value(json_object_get(d.payload, "pickup_lng"));
    if (!vt || core_vehicle_parse(vt) < 0) { /* nothing writes such a payload; do not spin */
        order_expire(&d);
        goto out;
    }
    for (int round = 0; round < PICKS_PER_ROUND; round++) {
        now = antar_now_ms();
        if (limits_reached(&d, now)) {
            order_expire(&d);
            goto out;
        }
        long long driver = 0, offer_id = 0;
        long long expires = now + s->offer_ttl_s * 1000;
        err = pick_driver(&d, vt, plat, plng, now, &driver);
        if (err != ANTAR_OK)
            goto out;
        if (!driver) {
            /* Nobody free nearby: look again soon, and at the latest when time runs out. */
            long long due = now + RETRY_MS, end = d.started_ms + s->dispatch_max_s * 1000;
            (void)core_store_dispatch_reschedule(order_id, due < end ? due : end);
            goto out;
        }
        call_outcome_t o = offer_create(&d, driver, expires, &offer_id);
        if (o == OUTCOME_BUSY) {
            (void)core_store_dispatch_unpick(order_id, driver, false);
            continue;
        }
        if (o == OUTCOME_RETRY) {
            (void)core_store_dispatch_unpick(order_id, driver, true);
            (void)core_store_dispatch_reschedule(order_id, now + RETRY_MS);
            goto out;
        }
        int recorded = 0;
        err = core_store_dispatch_offered(order_id, driver, offer_id, expires, &recorded);
        if (err != ANTAR_OK || recorded == 0) {
            /* Cancelled or accepted meanwhile (or Redis failed): the offer must not stay live
             * for an order nobody dispatches. */
            (void)offer_expire(offer_id);
            (void)core_store_dispatch_unpick(order_id, driver, false);
            goto out;
        }
        antar_metrics_count("antar_offers_total", "outcome", "sent");
        log_order("info", "offer_sent", order_id, driver, offer_id);
        d.attempts++;
        if (recorded == 1)
            goto out;
        /* recorded == 2: the driver rejected before we wrote it down; next one right away. */
    }
    (void)core_store_dispatch_reschedule(order_id, antar_now_ms() + POLL_MS);
out:
    core_dispatch_clean(&d);
}

static void *worker_main(void *arg)
{
    (void)arg;
    long long last_purge = 0;
    bool stop = false;
    while (!stop) {
        long long now = antar_now_ms();
        size_t n = 0;
        if (now - last_purge >= PURGE_EVERY_MS) {
            long long purged = 0;
            antar_trace_begin();
            if (core_store_purge_stale(now - core_settings()->presence_ttl_s * 1000, &purged) ==
                    ANTAR_OK &&
                purged > 0)
                antar_log_json("info", "drivers_purged",
                               json_pack("{sI}", "count", (json_int_t)purged));
            last_purge = now;
        }
        long long ids[CLAIM_BATCH];
        antar_err_t err = core_store_dispatch_claim(now, lease_ms(), ids, CLAIM_BATCH, &n);
        for (size_t i = 0; err == ANTAR_OK && i < n; i++) {
            antar_trace_begin();
            order_step(ids[i]);
            (void)core_store_dispatch_release(ids[i]);
        }
        antar_trace_set_current(NULL);

        pthread_mutex_lock(&W.mu);
        if (!W.stop && !W.woken && n < CLAIM_BATCH) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            /* Back off when Redis is down so that the log is not flooded. */
            long wait_ms = err == ANTAR_OK ? POLL_MS : 5 * POLL_MS;
            ts.tv_nsec += wait_ms * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            while (!W.stop && !W.woken && pthread_cond_timedwait(&W.cv, &W.mu, &ts) != ETIMEDOUT)
                ;
        }
        W.woken = false;
        stop = W.stop;
        pthread_mutex_unlock(&W.mu);
    }
    antar_db_thread_end();
    antar_kv_thread_end();
    antar_httpc_thread_end();
    return NULL;
}

int core_dispatch_start(const antar_config_t *cfg)
{
    (void)cfg;
    const core_settings_t *s = core_settings();
    antar_cond_init_monotonic(&W.cv);
    W.stop = false;
    if (pthread_create(&W.thread, NULL, worker_main, NULL) != 0) {
        antar_logf("error", "cannot start the dispatch worker");
        pthread_cond_destroy(&W.cv);
        return -1;
    }
    pthread_mutex_lock(&W.mu);
    W.running = true;
    pthread_mutex_unlock(&W.mu);
    antar_log_json("info", "dispatch_worker_started",
                   json_pack("{sI sI sI sI sI}", "offer_ttl_s", (json_int_t)s->offer_ttl_s, "max_s",
                             (json_int_t)s->dispatch_max_s, "max_candidates",
                             (json_int_t)s->max_candidates, "radius_m", (json_int_t)s->radius_m,
                             "presence_ttl_s", (json_int_t)s->presence_ttl_s));
    return 0;
}

void core_dispatch_stop(void)
{
    pthread_mutex_lock(&W.mu);
    bool running = W.running;
    W.stop = true;
    W.running = false;
    if (running)
        pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    if (!running)
        return;
    pthread_join(W.thread, NULL);
    pthread_cond_destroy(&W.cv);
}
