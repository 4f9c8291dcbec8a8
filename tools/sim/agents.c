/* agents.c — the people of the city: drivers and customers as small state machines driven by
 * timers (main.c) and by the answers of the API (net.c callbacks). Every action is one public
 * API call through the edge, as the apps make it.
 *
 * Drivers go online, wander toward busy zones, ping their position every ping_s seconds, poll
 * GET /offers while free (or, with --push, hold a GET /events stream and take the offer event),
 * decide on an offer with a
 * behaviour model of their own (distance to the pickup, fare per kilometre, hour, their own
 * pickiness), drive to the pickup and the drop-off along the street grid at the speed of the
 * zone and hour, and take breaks. Customers arrive as a Poisson process whose rate follows the
 * hour, ask for an estimate, order with an Idempotency-Key and retry on 5xx and timeouts like a
 * mobile app, poll their order, cancel when their patience runs out, rate completed trips. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define RETRY_MAX 4
/* How long after an unanswered accept an idle driver keeps looking for the trip it may have. */
#define RECHECK_MS 120000.0

static const double retry_backoff_ms[RETRY_MAX] = {250, 500, 1000, 2000};

static double hour_of(const sim_t *s, double t)
{
    return fmod(s->o.start_hour + t / 1000.0 * s->o.speed / 3600.0, 24.0);
}

static void url(const sim_t *s, char *out, size_t n, const char *fmt, long long id)
{
    char path[128];
    snprintf(path, sizeof path, fmt, id);
    snprintf(out, n, "%s%s", s->o.edge, path);
}

static bool transient(int status)
{
    return status == 0 || status == 429 || status >= 500;
}

void event_write(sim_t *s, json_t *ev)
{
    if (s->events && ev) {
        json_dumpf(ev, s->events, JSON_COMPACT | JSON_REAL_PRECISION(10));
        fputc('\n', s->events);
    }
    json_decref(ev);
}

/* ---- drivers ------------------------------------------------------------------------------ */

static pt_t drv_pos(const sim_t *s, const driver_t *d)
{
    double now = sim_now(s);
    if (d->leg_t1 <= d->leg_t0 || now >= d->leg_t1)
        return now >= d->leg_t1 ? d->leg_to : d->pos;
    return city_along(d->pos, d->leg_to, (now - d->leg_t0) / (d->leg_t1 - d->leg_t0));
}

/* Start driving from where the driver is to `to`; returns the real duration in ms and
 * schedules the driver's action timer at the arrival. */
static double drv_leg(sim_t *s, driver_t *d, pt_t to)
{
    double now = sim_now(s);
    pt_t from = drv_pos(s, d);
    pt_t mid = {(from.lat + to.lat) / 2, (from.lng + to.lng) / 2};
    double kmh =
        city_speed_kmh(mid, (int)hour_of(s, now), d->car) * rng_lognormal(&d->rng, 1.0, 0.12);
    double sim_s = city_grid_m(from, to) / (kmh / 3.6);
    double real_ms = sim_s / s->o.speed * 1000.0;
    /* While the city winds down after the run, every drive is short, so trips end. */
    if (real_ms < 300 || s->winding)
        real_ms = 300;
    d->pos = from;
    d->leg_to = to;
    d->leg_t0 = now;
    d->leg_t1 = now + real_ms;
    timer_add(s, d->leg_t1, T_DRV_ACT, (int)(d - s->drv), ++d->gen_act);
    return real_ms;
}

/* A short hop around the block. */
static void drv_hop(sim_t *s, driver_t *d)
{
    pt_t p = drv_pos(s, d), to;
    to.lat = p.lat + (rng_unit(&d->rng) - 0.5) * 0.02;
    to.lng = p.lng + (rng_unit(&d->rng) - 0.5) * 0.02;
    to = city_along(to, to, 0);
    if (to.lat < CITY_LAT_MIN || to.lat > CITY_LAT_MAX || to.lng < CITY_LNG_MIN ||
        to.lng > CITY_LNG_MAX)
        to = city_point_in_zone(&d->rng, d->home_zone);
    drv_leg(s, d, to);
}

/* A free driver heads somewhere: usually toward a zone where orders come from at this hour. */
static void drv_roam(sim_t *s, driver_t *d)
{
    int h = (int)hour_of(s, sim_now(s));
    pt_t to, dummy;
    double x = rng_unit(&d->rng);
    if (x < 0.5) {
        city_trip(&d->rng, h, &to, &dummy); /* where pickups are likely */
    } else if (x < 0.8) {
        to = city_point_in_zone(&d->rng, d->home_zone);
    } else {
        drv_hop(s, d);
        return;
    }
    drv_leg(s, d, to);
}

static void on_hint(sim_t *s, http_req_t *r, int status, json_t *body);
static void drv_send(sim_t *s, driver_t *d, const char *method, const char *path_fmt, long long id,
                     const char *body, endpoint_t ep, double intended, int attempt,
                     http_done_fn done);

/* A free driver who follows hints asks where to wait and stops while the answer comes; the
 * others roam. */
static void drv_wander(sim_t *s, driver_t *d)
{
    if (!d->follows_hints || s->stopping) {
        drv_roam(s, d);
        return;
    }
    if (d->hint_busy)
        return;
    pt_t here = drv_pos(s, d);
    d->pos = here;
    d->leg_to = here;
    d->leg_t0 = d->leg_t1 = sim_now(s);
    d->hint_busy = true;
    drv_send(s, d, "GET", "/drivers/me/waiting-hint", 0, NULL, EP_HINT, sim_now(s), 0, on_hint);
}

/* A city minute's worth of cell: the hinted spot is somewhere in the cell's middle, not its
 * exact centre, so that the drivers sent there do not meet at one corner. */
#define HINT_SPREAD_DEG 0.03
/* Told that here is the best place, a driver parks this many city minutes before asking
 * again. */
#define HINT_PARK_CITY_MIN 10.0

static void on_hint(sim_t *s, http_req_t *r, int status, json_t *body)
{
    driver_t *d = &s->drv[r->agent];
    d->hint_busy = false;
    if (d->st != D_IDLE) /* an offer came while the question was out */
        return;
    json_t *res = json_object_get(body, "result"), *cell = json_object_get(res, "cell");
    const char *src = json_string_value(json_object_get(res, "source"));
    if (status != 200 || !src || strcmp(src, "off") == 0 || !json_is_object(cell)) {
        s->c.hints_none++;
        drv_roam(s, d);
        return;
    }
    if (json_number_value(json_object_get(cell, "distance_m")) < 1) {
        s->c.hints_stay++;
        double now = sim_now(s);
        timer_add(s, now + HINT_PARK_CITY_MIN * 60 / s->o.speed * 1000, T_DRV_ACT,
                  (int)(d - s->drv), ++d->gen_act);
        return;
    }
    s->c.hints_followed++;
    pt_t to = {json_number_value(json_object_get(cell, "lat")) +
                   (rng_unit(&d->rng) - 0.5) * HINT_SPREAD_DEG,
               json_number_value(json_object_get(cell, "lng")) +
                   (rng_unit(&d->rng) - 0.5) * HINT_SPREAD_DEG};
    to = city_along(to, to, 0);
    if (to.lat < CITY_LAT_MIN || to.lat > CITY_LAT_MAX || to.lng < CITY_LNG_MIN ||
        to.lng > CITY_LNG_MAX) {
        drv_roam(s, d);
        return;
    }
    drv_leg(s, d, to);
}

static bool online(driver_state_t st)
{
    return st >= D_IDLE && st <= D_COMPLETING;
}

static void drv_send(sim_t *s, driver_t *d, const char *method, const char *path_fmt, long long id,
                     const char *body, endpoint_t ep, double intended, int attempt,
                     http_done_fn done)
{
    char u[256];
    url(s, u, sizeof u, path_fmt, id);
    http_spec_t spec = {
        .method = method, .url = u, .bearer = d->access, .csrf = d->csrf, .body = body};
    if (!net_send(s, &spec, ep, intended, (int)(d - s->drv), id, attempt, done))
        fprintf(stderr, "antar-sim: could not start %s\n", endpoint_name(ep));
}

static void drv_start_timers(sim_t *s, driver_t *d)
{
    double now = sim_now(s);
    int i = (int)(d - s->drv);
    timer_add(s, now + rng_unit(&d->rng) * s->o.ping_s * 1000, T_DRV_PING, i, ++d->gen_ping);
    timer_add(s, now + rng_unit(&d->rng) * s->o.poll_s * 1000, T_DRV_POLL, i, ++d->gen_poll);
}

static void drv_to_pickup(sim_t *s, driver_t *d);
static void drv_stream_start(sim_t *s, driver_t *d);

static void on_resume(sim_t *s, http_req_t *r, int status, json_t *body)
{
    driver_t *d = &s->drv[r->agent];
    json_t *items = json_object_get(json_object_get(body, "result"), "items"), *it;
    size_t i;
    if (d->st != D_RESUMING)
        return;
    d->st = D_IDLE;
    if (status == 200 && json_is_array(items))
        json_array_foreach(items, i, it)
        {
            const char *st = json_string_value(json_object_get(it, "status"));
            if (!st || (strcmp(st, "accepted") != 0 && strcmp(st, "picked_up") != 0))
                continue;
            d->order_id = (long long)json_integer_value(json_object_get(it, "order_id"));
            d->recheck_until = 0;
            d->pickup.lat = json_number_value(json_object_get(it, "pickup_lat"));
            d->pickup.lng = json_number_value(json_object_get(it, "pickup_lng"));
            d->dropoff.lat = json_number_value(json_object_get(it, "dropoff_lat"));
            d->dropoff.lng = json_number_value(json_object_get(it, "dropoff_lng"));
            s->c.resumed_trips++;
            if (strcmp(st, "accepted") == 0) {
                drv_to_pickup(s, d);
            } else {
                d->st = D_ON_TRIP;
                d->accept_ms = d->pickup_ms = sim_now(s);
                drv_leg(s, d, d->dropoff);
            }
            return;
        }
    drv_wander(s, d);
}

static void on_status(sim_t *s, http_req_t *r, int status, json_t *body)
{
    (void)body;
    driver_t *d = &s->drv[r->agent];
    double now = sim_now(s);
    if (d->st == D_GOING_ONLINE) {
        if (status == 200) {
            /* The app opens where it left off: a trip from before (an earlier run, a crash)
             * is taken up again rather than left hanging. */
            d->st = D_RESUMING;
            drv_start_timers(s, d);
            drv_stream_start(s, d);
            drv_send(s, d, "GET", "/trips?limit=3", 0, NULL, EP_TRIPS, now, 0, on_resume);
        } else {
            d->st = D_OFFLINE;
            timer_add(s, now + 5000, T_DRV_ACT, r->agent, ++d->gen_act);
        }
    } else if (d->st == D_GOING_OFFLINE) {
        if (status == 200) {
            d->st = D_OFFLINE;
            d->gen_ping++;
            d->gen_poll++;
            d->gen_stream++;
            net_stream_close(s, (int)(d - s->drv));
            /* A break of 20–120 simulated minutes. */
            double brk = (20 + rng_unit(&d->rng) * 100) * 60 / s->o.speed * 1000;
            timer_add(s, now + brk, T_DRV_ACT, r->agent, ++d->gen_act);
        } else {
            d->st = D_IDLE; /* still online (a trip, or the service said no): carry on */
            drv_wander(s, d);
        }
    }
}

static void go_status(sim_t *s, driver_t *d, bool on)
{
    d->st = on ? D_GOING_ONLINE : D_GOING_OFFLINE;
    drv_send(s, d, "PUT", "/drivers/me/status", 0,
             on ? "{\"status\":\"online\"}" : "{\"status\":\"offline\"}", EP_STATUS, sim_now(s), 0,
             on_status);
}

static void on_ping(sim_t *s, http_req_t *r, int status, json_t *body)
{
    (void)s;
    (void)r;
    (void)status;
    (void)body;
}

static void drv_ping(sim_t *s, driver_t *d, double at)
{
    pt_t p = drv_pos(s, d);
    char b[96];
    snprintf(b, sizeof b, "{\"lat\":%.5f,\"lng\":%.5f}", p.lat, p.lng);
    drv_send(s, d, "PUT", "/drivers/me/location", 0, b, EP_PING, at, 0, on_ping);
    s->c.pings++;
    if (s->events && s->o.ping_sample > 0 && rng_unit(&d->rng) < s->o.ping_sample)
        event_write(s, json_pack("{ss sf sI sf sf si}", "ev", "ping", "t", sim_wall_ms(s, at),
                                 "driver", (json_int_t)d->id, "lat", p.lat, "lng", p.lng, "state",
                                 (int)d->st));
}

static void offer_event(sim_t *s, driver_t *d, const char *outcome)
{
    double now = sim_now(s);
    json_t *ev =
        json_pack("{ss sf sI sI sI sf sf sf si si ss sf sb}", "ev", "offer", "t",
                  sim_wall_ms(s, now), "driver", (json_int_t)d->id, "offer",
                  (json_int_t)d->offer_id, "order", (json_int_t)d->order_id, "pickup_m",
                  d->offer_pickup_m, "trip_m", city_grid_m(d->pickup, d->dropoff), "price",
                  d->offer_price, "hour", (int)hour_of(s, now), "weekday", s->o.start_weekday,
                  "outcome", outcome, "response_ms", now - d->offer_seen_ms, "car", d->car);
    /* What the services could know too: where the driver was, where the trip goes, and when
     * the offer was seen on the city's clock (antar-train's features). */
    if (ev) {
        json_object_set_new(ev, "seen_city_s", json_real(sim_city_s(s, d->offer_seen_ms)));
        json_object_set_new(ev, "driver_at", json_pack("[ff]", d->pos.lat, d->pos.lng));
        json_object_set_new(ev, "pickup", json_pack("[ff]", d->pickup.lat, d->pickup.lng));
        json_object_set_new(ev, "dropoff", json_pack("[ff]", d->dropoff.lat, d->dropoff.lng));
    }
    event_write(s, ev);
}

/* The driver's choice: a logistic model of their own. Far pickups and poor fares per kilometre
 * put them off, a choosy driver more so; at night they are less keen, at rush hour keener. */
static bool drv_decide(sim_t *s, driver_t *d)
{
    double trip_km = city_grid_m(d->pickup, d->dropoff) / 1000.0;
    if (trip_km < 0.3)
        trip_km = 0.3;
    double per_km = d->offer_price / trip_km / (d->car ? 4000.0 : 2500.0);
    int h = (int)hour_of(s, sim_now(s));
    double logit =
        2.4 - 0.45 * d->offer_pickup_m / 1000.0 - 2.2 * d->pickiness + 1.0 * (per_km - 1.0);
    if (h >= 22 || h < 5)
        logit -= 0.4;
    else if ((h >= 7 && h <= 9) || (h >= 17 && h <= 19))
        logit += 0.2;
    return rng_unit(&d->rng) < 1.0 / (1.0 + exp(-logit));
}

static void on_trips_check(sim_t *s, http_req_t *r, int status, json_t *body);

/* After an ambiguous answer (a retry met 409), the app reloads the driver's trips to learn
 * where things stand, as a real app does after an error. */
static void drv_reload(sim_t *s, driver_t *d)
{
    drv_send(s, d, "GET", "/trips?limit=5", 0, NULL, EP_TRIPS, sim_now(s), 0, on_trips_check);
}

static void drv_to_pickup(sim_t *s, driver_t *d)
{
    d->st = D_TO_PICKUP;
    d->accept_ms = sim_now(s);
    d->accept_pos = drv_pos(s, d);
    drv_leg(s, d, d->pickup);
}

static void drv_idle(sim_t *s, driver_t *d)
{
    d->st = D_IDLE;
    d->order_id = 0;
    d->offer_id = 0;
    drv_wander(s, d);
}

static void on_accept(sim_t *s, http_req_t *r, int status, json_t *body)
{
    (void)body;
    driver_t *d = &s->drv[r->agent];
    if (d->st != D_ANSWERING)
        return;
    if (status == 200) {
        s->c.accepted_offers++;
        offer_event(s, d, "accepted");
        drv_to_pickup(s, d);
    } else if (transient(status) && r->attempt + 1 < RETRY_MAX) {
        s->c.retries++;
        double at = sim_now(s) + retry_backoff_ms[r->attempt];
        drv_send(s, d, "POST", "/offers/%lld/accept", d->offer_id, NULL, EP_ACCEPT, at,
                 r->attempt + 1, on_accept);
    } else if (r->attempt > 0) {
        if (transient(status))
            d->recheck_until = sim_now(s) + RECHECK_MS;
        drv_reload(s, d);
    } else {
        s->c.lost_offers++;
        offer_event(s, d, "lost");
        drv_idle(s, d);
    }
}

static void on_reject(sim_t *s, http_req_t *r, int status, json_t *body)
{
    (void)status;
    (void)body;
    driver_t *d = &s->drv[r->agent];
    if (d->st == D_ANSWERING)
        drv_idle(s, d);
}

/* An offer the driver sees (from a poll or the stream): look at it, unless it is one seen
 * before or not pending. true when the driver took it up (deciding, or it lapsed). */
static bool offer_seen(sim_t *s, driver_t *d, json_t *it)
{
    long long id = (long long)json_integer_value(json_object_get(it, "id"));
    const char *st = json_string_value(json_object_get(it, "status"));
    if (id <= 0 || id == d->last_offer_id || (st && strcmp(st, "pending") != 0))
        return false;
    d->last_offer_id = id;
    d->offer_id = id;
    d->order_id = (long long)json_integer_value(json_object_get(it, "order_id"));
    d->pickup.lat = json_number_value(json_object_get(it, "pickup_lat"));
    d->pickup.lng = json_number_value(json_object_get(it, "pickup_lng"));
    d->dropoff.lat = json_number_value(json_object_get(it, "dropoff_lat"));
    d->dropoff.lng = json_number_value(json_object_get(it, "dropoff_lng"));
    d->offer_price = json_number_value(json_object_get(it, "price"));
    pt_t here = drv_pos(s, d);
    d->offer_pickup_m = city_grid_m(here, d->pickup);
    d->offer_seen_ms = sim_now(s);
    /* The driver stops where they are while they look at the offer. */
    d->pos = here;
    d->leg_to = here;
    d->leg_t0 = d->leg_t1 = d->offer_seen_ms;
    if (rng_unit(&d->rng) < 0.04) { /* the phone was in a pocket: the offer lapses */
        s->c.missed_offers++;
        offer_event(s, d, "missed");
        drv_wander(s, d);
        return true;
    }
    d->st = D_DECIDING;
    double think = rng_lognormal(&d->rng, 2000, 0.5);
    timer_add(s, d->offer_seen_ms + think, T_DRV_ACT, (int)(d - s->drv), ++d->gen_act);
    return true;
}

static void on_offers(sim_t *s, http_req_t *r, int status, json_t *body)
{
    driver_t *d = &s->drv[r->agent];
    json_t *items = json_object_get(json_object_get(body, "result"), "items"), *it;
    size_t i;
    if (status != 200 || d->st != D_IDLE || !json_is_array(items))
        return;
    json_array_foreach(items, i, it)
    {
        if (offer_seen(s, d, it))
            return;
    }
}

/* ---- --push: the driver's stream ------------------------------------------------------------ */

void agents_event(sim_t *s, int agent, const char *type, const char *id, json_t *data)
{
    driver_t *d = &s->drv[agent];
    if (id[0])
        snprintf(d->last_event_id, sizeof d->last_event_id, "%s", id);
    /* Only a free driver looks at an offer; a busy one lets it lapse, as with polling. */
    if (strcmp(type, "offer") == 0 && json_is_object(data) && d->st == D_IDLE) {
        s->c.pushed_offers++;
        offer_seen(s, d, data);
    }
}

void agents_stream_ended(sim_t *s, int agent)
{
    driver_t *d = &s->drv[agent];
    if (!s->o.push || !online(d->st))
        return;
    /* The app reconnects after EventSource's retry (3 s), with its Last-Event-ID. */
    s->c.stream_drops++;
    timer_add(s, sim_now(s) + 3000, T_DRV_STREAM, agent, ++d->gen_stream);
}

static void drv_stream_start(sim_t *s, driver_t *d)
{
    if (s->o.push && !d->sse && d->access)
        net_stream_open(s, (int)(d - s->drv), d->access, d->last_event_id);
}

static void on_pickup(sim_t *s, http_req_t *r, int status, json_t *body);
static void on_complete(sim_t *s, http_req_t *r, int status, json_t *body);

static void trip_event(sim_t *s, driver_t *d)
{
    double now = sim_now(s);
    double pickup_real = d->pickup_ms - d->accept_ms, trip_real = now - d->pickup_ms;
    json_t *ev = json_pack(
        "{ss sf sI sI ss s[ff] s[ff] si si sf sf sf sf sf sf}", "ev", "trip", "t",
        sim_wall_ms(s, now), "order", (json_int_t)d->order_id, "driver", (json_int_t)d->id,
        "vehicle_type", d->car ? "car" : "motorcycle", "pickup", d->pickup.lat, d->pickup.lng,
        "dropoff", d->dropoff.lat, d->dropoff.lng, "hour", (int)hour_of(s, d->pickup_ms), "weekday",
        s->o.start_weekday, "grid_m", city_grid_m(d->pickup, d->dropoff), "haversine_m",
        city_haversine_m(d->pickup, d->dropoff), "pickup_real_ms", pickup_real, "trip_real_ms",
        trip_real, "pickup_sim_s", pickup_real / 1000 * s->o.speed, "trip_sim_s",
        trip_real / 1000 * s->o.speed);
    if (ev) {
        json_object_set_new(ev, "from", json_pack("[ff]", d->accept_pos.lat, d->accept_pos.lng));
        json_object_set_new(ev, "accept_city_s", json_real(sim_city_s(s, d->accept_ms)));
        json_object_set_new(ev, "pickup_city_s", json_real(sim_city_s(s, d->pickup_ms)));
        /* A leg that reached its end after the wind-down began was cut short or driven in the
         * wind-down's token 300 ms: its duration says nothing about the streets, and saying so
         * keeps it out of the ETA's training and evaluation. */
        if (s->wind_ms > 0 && d->pickup_ms >= s->wind_ms)
            json_object_set_new(ev, "pickup_cut", json_true());
        if (s->wind_ms > 0 && now >= s->wind_ms)
            json_object_set_new(ev, "trip_cut", json_true());
    }
    event_write(s, ev);
}

static void on_pickup(sim_t *s, http_req_t *r, int status, json_t *body)
{
    (void)body;
    driver_t *d = &s->drv[r->agent];
    if (d->st != D_PICKING_UP)
        return;
    if (status == 200) {
        d->st = D_ON_TRIP;
        d->pickup_ms = sim_now(s);
        drv_leg(s, d, d->dropoff);
    } else if (transient(status) && r->attempt + 1 < RETRY_MAX) {
        s->c.retries++;
        drv_send(s, d, "POST", "/trips/%lld/pickup", d->order_id, NULL, EP_PICKUP,
                 sim_now(s) + retry_backoff_ms[r->attempt], r->attempt + 1, on_pickup);
    } else if (r->attempt > 0) {
        drv_reload(s, d);
    } else {
        s->c.pickup_refused++; /* the customer cancelled while the driver came */
        drv_idle(s, d);
    }
}

static void on_complete(sim_t *s, http_req_t *r, int status, json_t *body)
{
    (void)body;
    driver_t *d = &s->drv[r->agent];
    if (d->st != D_COMPLETING)
        return;
    if (status == 200) {
        trip_event(s, d);
        drv_idle(s, d);
    } else if (transient(status) && r->attempt + 1 < RETRY_MAX) {
        s->c.retries++;
        drv_send(s, d, "POST", "/trips/%lld/complete", d->order_id, NULL, EP_COMPLETE,
                 sim_now(s) + retry_backoff_ms[r->attempt], r->attempt + 1, on_complete);
    } else {
        drv_reload(s, d);
    }
}

static void on_trips_check(sim_t *s, http_req_t *r, int status, json_t *body)
{
    driver_t *d = &s->drv[r->agent];
    json_t *items = json_object_get(json_object_get(body, "result"), "items"), *it;
    size_t i;
    const char *st = NULL;
    if (status == 200 && json_is_array(items))
        json_array_foreach(items, i, it) if (json_integer_value(json_object_get(it, "order_id")) ==
                                             d->order_id) st =
            json_string_value(json_object_get(it, "status"));
    if (!st || strcmp(st, "cancelled") == 0 || strcmp(st, "completed") == 0) {
        if (d->st == D_ANSWERING) {
            s->c.lost_offers++;
            offer_event(s, d, "lost");
        }
        if (st && strcmp(st, "completed") == 0 && d->st == D_COMPLETING)
            trip_event(s, d);
        drv_idle(s, d);
    } else if (strcmp(st, "accepted") == 0) {
        if (d->st == D_ANSWERING) {
            s->c.accepted_offers++;
            offer_event(s, d, "accepted");
            drv_to_pickup(s, d);
        } else if (d->st == D_PICKING_UP) { /* the pickup did not land: go again */
            drv_send(s, d, "POST", "/trips/%lld/pickup", d->order_id, NULL, EP_PICKUP,
                     sim_now(s) + 1000, 1, on_pickup);
        }
    } else if (strcmp(st, "picked_up") == 0) {
        if (d->st == D_PICKING_UP) {
            d->st = D_ON_TRIP;
            d->pickup_ms = sim_now(s);
            drv_leg(s, d, d->dropoff);
        } else if (d->st == D_COMPLETING) {
            drv_send(s, d, "POST", "/trips/%lld/complete", d->order_id, NULL, EP_COMPLETE,
                     sim_now(s) + 1000, 1, on_complete);
        }
    }
}

static void drv_act(sim_t *s, driver_t *d)
{
    double now = sim_now(s);
    switch (d->st) {
    case D_OFFLINE:
        if (!s->stopping)
            go_status(s, d, true);
        break;
    case D_IDLE:
        /* The leg ended. A break now and then (not while the city is winding down). */
        if (!s->stopping && rng_unit(&d->rng) < s->o.offline_per_h * (d->leg_t1 - d->leg_t0) /
                                                    1000.0 * s->o.speed / 3600.0) {
            go_status(s, d, false);
            break;
        }
        drv_wander(s, d);
        break;
    case D_DECIDING:
        d->st = D_ANSWERING;
        if (drv_decide(s, d)) {
            drv_send(s, d, "POST", "/offers/%lld/accept", d->offer_id, NULL, EP_ACCEPT, now, 0,
                     on_accept);
        } else {
            s->c.rejected_offers++;
            offer_event(s, d, "rejected");
            drv_send(s, d, "POST", "/offers/%lld/reject", d->offer_id, NULL, EP_REJECT, now, 0,
                     on_reject);
        }
        break;
    case D_TO_PICKUP:
        d->st = D_PICKING_UP;
        d->pos = d->leg_to;
        drv_send(s, d, "POST", "/trips/%lld/pickup", d->order_id, NULL, EP_PICKUP, now, 0,
                 on_pickup);
        break;
    case D_ON_TRIP:
        d->st = D_COMPLETING;
        d->pos = d->leg_to;
        drv_send(s, d, "POST", "/trips/%lld/complete", d->order_id, NULL, EP_COMPLETE, now, 0,
                 on_complete);
        break;
    default:
        break;
    }
}

/* ---- customers ----------------------------------------------------------------------------- */

static void cust_send(sim_t *s, cust_t *c, const char *method, const char *path_fmt, long long id,
                      const char *body, const char *idem, endpoint_t ep, double intended,
                      int attempt, http_done_fn done)
{
    char u[256];
    url(s, u, sizeof u, path_fmt, id);
    http_spec_t spec = {.method = method,
                        .url = u,
                        .bearer = c->access,
                        .csrf = c->csrf,
                        .body = body,
                        .idem = idem};
    if (!net_send(s, &spec, ep, intended, (int)(c - s->cust), id, attempt, done))
        fprintf(stderr, "antar-sim: could not start %s\n", endpoint_name(ep));
}

static void cust_idle(sim_t *s, cust_t *c)
{
    c->st = C_IDLE;
    c->order_id = 0;
    c->gen_poll++;
    c->gen_act++;
    s->idle_cust[s->n_idle_cust++] = (int)(c - s->cust);
}

static void order_event(sim_t *s, cust_t *c, const char *outcome)
{
    json_t *ev = json_pack("{ss sf sI sI ss sf si ss s[ff] s[ff]}", "ev", "order", "t",
                           sim_wall_ms(s, sim_now(s)), "order", (json_int_t)c->order_id, "customer",
                           (json_int_t)c->id, "outcome", outcome, "placed_t",
                           sim_wall_ms(s, c->placed_ms), "hour", (int)hour_of(s, c->placed_ms),
                           "vehicle_type", c->car ? "car" : "motorcycle", "pickup", c->from.lat,
                           c->from.lng, "dropoff", c->to.lat, c->to.lng);
    if (ev)
        json_object_set_new(ev, "placed_city_s", json_real(sim_city_s(s, c->placed_ms)));
    event_write(s, ev);
}

static void on_order(sim_t *s, http_req_t *r, int status, json_t *body);
static void on_adopt(sim_t *s, http_req_t *r, int status, json_t *body);
static void cust_poll_later(sim_t *s, cust_t *c, double ms);

static void order_body(const cust_t *c, char *b, size_t n)
{
    int zf = city_zone_at(c->from), zt = city_zone_at(c->to);
    snprintf(b, n,
             "{\"pickup_lat\":%.5f,\"pickup_lng\":%.5f,\"pickup_address\":\"%s\","
             "\"dropoff_lat\":%.5f,\"dropoff_lng\":%.5f,\"dropoff_address\":\"%s\","
             "\"vehicle_type\":\"%s\"%s%s%s}",
             c->from.lat, c->from.lng, zf >= 0 ? city_zone(zf)->name : "Jakarta", c->to.lat,
             c->to.lng, zt >= 0 ? city_zone(zt)->name : "Jakarta", c->car ? "car" : "motorcycle",
             c->quote[0] ? ",\"quote_id\":\"" : "", c->quote, c->quote[0] ? "\"" : "");
}

static void cust_order(sim_t *s, cust_t *c, double at, int attempt)
{
    char b[512];
    order_body(c, b, sizeof b);
    c->st = C_ORDERING;
    if (attempt == 0) /* the order's clock starts at its first POST /orders, as intended */
        c->placed_ms = at;
    cust_send(s, c, "POST", "/orders", 0, b, c->idem, EP_ORDER, at, attempt, on_order);
}

static void on_estimate(sim_t *s, http_req_t *r, int status, json_t *body)
{
    cust_t *c = &s->cust[r->agent];
    json_t *res = json_object_get(body, "result");
    if (c->st != C_ESTIMATING)
        return;
    if (status == 200) {
        const char *q = json_string_value(json_object_get(res, "quote_id"));
        double surge = json_number_value(json_object_get(res, "surge_multiplier"));
        snprintf(c->quote, sizeof c->quote, "%s", q && strlen(q) < sizeof c->quote ? q : "");
        if (surge >= 1.8 && rng_unit(&c->rng) < 0.3) {
            s->c.declined_price++;
            cust_idle(s, c);
            return;
        }
        /* A moment to look at the price, then order. */
        cust_order(s, c, sim_now(s) + rng_lognormal(&c->rng, 1500, 0.4), 0);
        return;
    }
    if (transient(status) && r->attempt + 1 < RETRY_MAX) {
        s->c.retries++;
        char b[256];
        snprintf(b, sizeof b,
                 "{\"pickup_lat\":%.5f,\"pickup_lng\":%.5f,\"dropoff_lat\":%.5f,"
                 "\"dropoff_lng\":%.5f,\"vehicle_type\":\"%s\"}",
                 c->from.lat, c->from.lng, c->to.lat, c->to.lng, c->car ? "car" : "motorcycle");
        cust_send(s, c, "POST", "/fares/estimate", 0, b, NULL, EP_ESTIMATE,
                  sim_now(s) + retry_backoff_ms[r->attempt], r->attempt + 1, on_estimate);
        return;
    }
    s->c.order_failed++;
    cust_idle(s, c);
}

static void cust_poll_later(sim_t *s, cust_t *c, double ms)
{
    timer_add(s, sim_now(s) + ms, T_CUST_POLL, (int)(c - s->cust), ++c->gen_poll);
}

static void on_order_get(sim_t *s, http_req_t *r, int status, json_t *body);

static void on_adopt(sim_t *s, http_req_t *r, int status, json_t *body)
{
    cust_t *c = &s->cust[r->agent];
    json_t *items = json_object_get(json_object_get(body, "result"), "items"), *it;
    size_t i;
    if (c->st != C_ADOPTING)
        return;
    s->c.order_failed++; /* the new order was not placed */
    if (status == 200 && json_is_array(items))
        json_array_foreach(items, i, it)
        {
            const char *st = json_string_value(json_object_get(it, "status"));
            if (!st || strcmp(st, "completed") == 0 || strcmp(st, "cancelled") == 0 ||
                strcmp(st, "expired") == 0)
                continue;
            /* Follow it to its end: a search or a driver on the way is cancelled at once (the
             * customer has moved on), a ride under way is ridden out. */
            s->c.adopted_orders++;
            c->order_id = (long long)json_integer_value(json_object_get(it, "id"));
            c->st = C_WAITING;
            c->placed_ms = sim_now(s);
            c->patience_ms = 0;
            cust_poll_later(s, c, 10);
            return;
        }
    cust_idle(s, c);
}

static void on_order(sim_t *s, http_req_t *r, int status, json_t *body)
{
    cust_t *c = &s->cust[r->agent];
    json_t *res = json_object_get(body, "result");
    if (c->st != C_ORDERING)
        return;
    if (status == 201 || status == 200) {
        c->order_id = (long long)json_integer_value(json_object_get(res, "id"));
        c->st = C_WAITING;
        c->last_status[0] = '\0';
        s->c.acked++;
        if (s->acked)
            fprintf(s->acked, "%lld\t%lld\t%s\t%.0f\n", c->order_id, c->id, c->idem,
                    sim_wall_ms(s, c->placed_ms));
        cust_poll_later(s, c, s->o.cust_poll_s * 1000 * (0.5 + rng_unit(&c->rng)));
        return;
    }
    if (transient(status) && r->attempt + 1 < RETRY_MAX + 1) {
        /* Same Idempotency-Key: the retry can never make a second order. */
        s->c.retries++;
        int a = r->attempt < RETRY_MAX ? r->attempt : RETRY_MAX - 1;
        cust_order(s, c, sim_now(s) + retry_backoff_ms[a], r->attempt + 1);
        return;
    }
    const char *msg = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    if (status == 409 && msg && strstr(msg, "active order")) {
        /* An order of this customer's from before (an earlier run, a crash): the app shows it
         * and the customer deals with it before ordering again. */
        c->st = C_ADOPTING;
        cust_send(s, c, "GET", "/orders?limit=5", 0, NULL, NULL, EP_ORDER_LIST, sim_now(s), 0,
                  on_adopt);
        return;
    }
    if (s->c.order_failed < 5) {
        char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
        fprintf(stderr, "antar-sim: POST /orders answered %d %s\n", status, txt ? txt : "");
        free(txt);
    }
    s->c.order_failed++;
    cust_idle(s, c);
}

static void on_cancel(sim_t *s, http_req_t *r, int status, json_t *body)
{
    (void)body;
    cust_t *c = &s->cust[r->agent];
    if (c->st != C_WAITING || c->order_id != r->ctx)
        return;
    if (status == 200) {
        if (s->winding)
            s->c.cancelled_wind_down++; /* the run ended before a driver came */
        else
            s->c.cancelled++;
        order_event(s, c, "cancelled");
        cust_idle(s, c);
        return;
    }
    /* 409: a driver took it meanwhile, or it expired — the next poll tells. */
    cust_poll_later(s, c, 200);
}

/* A rating's request carries the order id and the stars: ctx = order_id | stars << 48. */
static void rating_send(sim_t *s, cust_t *c, long long order_id, int stars, double at, int attempt);

static void on_rating(sim_t *s, http_req_t *r, int status, json_t *body)
{
    (void)body;
    if (status == 201)
        s->c.ratings++;
    else if (transient(status) && r->attempt + 1 < RETRY_MAX) {
        s->c.retries++;
        rating_send(s, &s->cust[r->agent], r->ctx & ((1LL << 48) - 1), (int)(r->ctx >> 48),
                    sim_now(s) + retry_backoff_ms[r->attempt], r->attempt + 1);
    }
}

static void rating_send(sim_t *s, cust_t *c, long long order_id, int stars, double at, int attempt)
{
    char u[256], b[32];
    url(s, u, sizeof u, "/orders/%lld/rating", order_id);
    snprintf(b, sizeof b, "{\"rating\":%d}", stars);
    http_spec_t spec = {
        .method = "POST", .url = u, .bearer = c->access, .csrf = c->csrf, .body = b};
    net_send(s, &spec, EP_RATING, at, (int)(c - s->cust), order_id | ((long long)stars << 48),
             attempt, on_rating);
}

static void cust_rate(sim_t *s, cust_t *c)
{
    /* Customers rate most trips; a long wait for the driver costs a star. */
    if (rng_unit(&c->rng) >= 0.8)
        return;
    double wait_sim_min = 0;
    if (c->accepted_seen_ms > 0 && c->pickedup_seen_ms > c->accepted_seen_ms)
        wait_sim_min = (c->pickedup_seen_ms - c->accepted_seen_ms) / 1000 * s->o.speed / 60;
    int stars = 5 - (rng_unit(&c->rng) < 0.25 ? 1 : 0) - (wait_sim_min > 15 ? 1 : 0);
    rating_send(s, c, c->order_id, stars, sim_now(s), 0);
}

static void on_order_get(sim_t *s, http_req_t *r, int status, json_t *body)
{
    cust_t *c = &s->cust[r->agent];
    double now = sim_now(s);
    if (c->st != C_WAITING || c->order_id != r->ctx)
        return;
    const char *st = json_string_value(json_object_get(json_object_get(body, "result"), "status"));
    if (status != 200 || !st) {
        cust_poll_later(s, c, s->o.cust_poll_s * 1000);
        return;
    }
    snprintf(c->last_status, sizeof c->last_status, "%s", st);
    if (strcmp(st, "completed") == 0) {
        s->c.completed++;
        order_event(s, c, "completed");
        cust_rate(s, c);
        cust_idle(s, c);
    } else if (strcmp(st, "expired") == 0) {
        s->c.expired++;
        order_event(s, c, "expired");
        cust_idle(s, c);
    } else if (strcmp(st, "cancelled") == 0) {
        order_event(s, c, "cancelled");
        cust_idle(s, c);
    } else if ((strcmp(st, "searching") == 0 ||
                (strcmp(st, "accepted") == 0 && c->patience_ms == 0)) &&
               now - c->placed_ms > c->patience_ms) {
        cust_send(s, c, "POST", "/orders/%lld/cancel", c->order_id,
                  "{\"reason\":\"waited too long\"}", NULL, EP_CANCEL, now, 0, on_cancel);
    } else {
        if (strcmp(st, "searching") != 0 && c->accepted_seen_ms == 0)
            c->accepted_seen_ms = now;
        if (strcmp(st, "picked_up") == 0 && c->pickedup_seen_ms == 0)
            c->pickedup_seen_ms = now;
        cust_poll_later(s, c, s->o.cust_poll_s * 1000);
    }
}

static void cust_poll(sim_t *s, cust_t *c, double at)
{
    if (c->st != C_WAITING)
        return;
    cust_send(s, c, "GET", "/orders/%lld", c->order_id, NULL, NULL, EP_ORDER_GET, at, 0,
              on_order_get);
}

/* One arrival of the Poisson process: draw the order first (so the offered load depends on the
 * seed only), then hand it to an idle customer. */
static void order_arrival(sim_t *s, double at)
{
    int h = (int)hour_of(s, at);
    pt_t from, to;
    city_trip(&s->rng, h, &from, &to);
    bool car = rng_unit(&s->rng) < 0.25;
    double patience = rng_lognormal(&s->rng, s->o.patience_s * 1000, 0.4);
    uint64_t k1 = rng_next(&s->rng), k2 = rng_next(&s->rng);
    s->c.placed++;
    if (s->n_idle_cust == 0) {
        s->c.no_customer++;
        return;
    }
    /* Which idle customer: drawn from the customer pool's own order (a stack). */
    cust_t *c = &s->cust[s->idle_cust[--s->n_idle_cust]];
    c->from = from;
    c->to = to;
    c->car = car;
    c->patience_ms = patience;
    c->quote[0] = '\0';
    c->accepted_seen_ms = 0;
    c->pickedup_seen_ms = 0;
    c->placed_ms = at;
    snprintf(c->idem, sizeof c->idem, "sim-%08x-%016llx%08llx", s->run_nonce,
             (unsigned long long)k1, (unsigned long long)(k2 & 0xffffffffULL));
    c->st = C_ESTIMATING;
    char b[256];
    snprintf(b, sizeof b,
             "{\"pickup_lat\":%.5f,\"pickup_lng\":%.5f,\"dropoff_lat\":%.5f,"
             "\"dropoff_lng\":%.5f,\"vehicle_type\":\"%s\"}",
             from.lat, from.lng, to.lat, to.lng, car ? "car" : "motorcycle");
    cust_send(s, c, "POST", "/fares/estimate", 0, b, NULL, EP_ESTIMATE, at, 0, on_estimate);
}

static double next_arrival(sim_t *s, double after)
{
    /* Thinning (Lewis–Shedler): candidates at the peak rate, kept with rate(t)/peak. */
    double peak = s->o.orders_per_s * (s->o.flat ? 1.0 : 2.3);
    double t = after;
    if (peak <= 0)
        return 1e300;
    for (int i = 0; i < 100000; i++) {
        t += rng_exp(&s->rng, 1000.0 / peak);
        double rate =
            s->o.orders_per_s * (s->o.flat ? 1.0 : city_demand_factor((int)hour_of(s, t)));
        if (rng_unit(&s->rng) * peak <= rate)
            return t;
    }
    return t;
}

/* ---- the run's hooks ----------------------------------------------------------------------- */

void agents_start(sim_t *s)
{
    for (int i = 0; i < s->o.drivers; i++) {
        driver_t *d = &s->drv[i];
        if (d->st == D_DEAD)
            continue;
        d->pos = city_point_in_zone(&d->rng, d->home_zone);
        d->leg_to = d->pos;
        /* Drivers come online over the warm-up. */
        timer_add(s, rng_unit(&d->rng) * s->o.warmup_s * 1000 * 0.8, T_DRV_ACT, i, ++d->gen_act);
    }
    s->n_idle_cust = 0;
    for (int i = s->o.customers - 1; i >= 0; i--)
        if (s->cust[i].st != C_DEAD)
            s->idle_cust[s->n_idle_cust++] = i;
    /* Orders start once drivers are out: at the end of the first half of the warm-up. */
    s->next_order_ms = next_arrival(s, s->o.warmup_s * 1000 * 0.5);
    timer_add(s, s->next_order_ms, T_ORDER_ARRIVAL, -1, 0);
}

void agents_stop(sim_t *s)
{
    s->stopping = true;
}

int agents_busy(const sim_t *s)
{
    int n = 0;
    for (int i = 0; i < s->o.customers; i++)
        n += s->cust[i].st != C_IDLE && s->cust[i].st != C_DEAD;
    for (int i = 0; i < s->o.drivers; i++) {
        driver_state_t st = s->drv[i].st;
        n += st == D_ANSWERING || st == D_TO_PICKUP || st == D_PICKING_UP || st == D_ON_TRIP ||
             st == D_COMPLETING || st == D_DECIDING;
    }
    return n;
}

void agents_timer(sim_t *s, const timer_t_ *t)
{
    switch (t->kind) {
    case T_ORDER_ARRIVAL:
        if (s->stopping)
            return;
        order_arrival(s, t->at);
        s->next_order_ms = next_arrival(s, t->at);
        timer_add(s, s->next_order_ms, T_ORDER_ARRIVAL, -1, 0);
        return;
    case T_DRV_PING: {
        driver_t *d = &s->drv[t->agent];
        if (t->gen != d->gen_ping || !online(d->st))
            return;
        drv_ping(s, d, t->at);
        timer_add(s, t->at + s->o.ping_s * 1000, T_DRV_PING, t->agent, d->gen_ping);
        return;
    }
    case T_DRV_POLL: {
        driver_t *d = &s->drv[t->agent];
        if (t->gen != d->gen_poll || !online(d->st))
            return;
        if (d->st == D_IDLE && t->at < d->recheck_until && ++d->polls % 4 == 0) {
            /* What the app shows after "nothing is lost, reload": its trips. */
            d->st = D_RESUMING;
            drv_send(s, d, "GET", "/trips?limit=3", 0, NULL, EP_TRIPS, t->at, 0, on_resume);
        } else if (d->st == D_IDLE && !s->o.push) {
            drv_send(s, d, "GET", "/offers", 0, NULL, EP_OFFERS, t->at, 0, on_offers);
        }
        timer_add(s, t->at + s->o.poll_s * 1000, T_DRV_POLL, t->agent, d->gen_poll);
        return;
    }
    case T_DRV_ACT: {
        driver_t *d = &s->drv[t->agent];
        if (t->gen == d->gen_act)
            drv_act(s, d);
        return;
    }
    case T_DRV_STREAM: {
        driver_t *d = &s->drv[t->agent];
        if (t->gen == d->gen_stream && online(d->st))
            drv_stream_start(s, d);
        return;
    }
    case T_CUST_POLL: {
        cust_t *c = &s->cust[t->agent];
        if (t->gen == c->gen_poll)
            cust_poll(s, c, t->at);
        return;
    }
    default:
        return;
    }
}
