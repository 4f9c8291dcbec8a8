/* sim.h — antar-sim, the city: a seeded, open-loop simulator of Jakarta's drivers and customers
 * that drives a running Antar stack through the edge with the public API only, then audits the
 * services' state through their ops-only audit routes.
 *
 * Two clocks. The services run in real time (offer deadlines, timeouts), so everything a person
 * does — react to an offer, wait for a driver, tap "cancel" — takes real seconds. The city itself
 * (traffic by hour and zone, demand by hour, driving) runs on a simulated clock that advances
 * `speed` simulated seconds per real second, so that an hour of traffic passes in a minute.
 *
 * Open loop: every request has an intended send time taken from the schedule (a driver's next
 * ping, the next Poisson arrival); it is sent then whatever earlier answers did, and its latency
 * is measured from that intended time, so a slow stack cannot hide its slowness by slowing the
 * load (no coordinated omission).
 *
 * Files: city.c (geography, traffic, demand), net.c (HTTP/1.1 on epoll, latency recording),
 * agents.c (drivers and customers), report.c (tables, JSON, event history, process figures),
 * audit.c (cross-service invariants), main.c (options, accounts, the run). */
#ifndef ANTAR_SIM_H
#define ANTAR_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>
#include <netinet/in.h>
#include <jansson.h>

/* ---- random numbers: xoshiro256** seeded by splitmix64, one stream per agent -------------- */

typedef struct {
    uint64_t s[4];
} rng_t;

/* Seed r from (seed, stream): the same pair always gives the same sequence. */
void rng_seed(rng_t *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(rng_t *r);
/* Uniform in [0, 1). */
double rng_unit(rng_t *r);
/* Exponential with the given mean. */
double rng_exp(rng_t *r, double mean);
/* Standard normal (Box–Muller). */
double rng_normal(rng_t *r);
/* Log-normal with the given median and sigma of the underlying normal. */
double rng_lognormal(rng_t *r, double median, double sigma);

/* ---- the city (city.c) ---------------------------------------------------------------------- */

typedef struct {
    double lat, lng;
} pt_t;

typedef enum { ZONE_CBD, ZONE_COMMERCIAL, ZONE_RESIDENTIAL } zone_kind_t;

typedef struct {
    const char *name;
    pt_t centre;
    double radius_km;
    zone_kind_t kind;
    double home_w, work_w; /* weights as an origin/destination of homes and of workplaces */
} zone_t;

/* Jakarta's extent as the simulator uses it (all positions are clamped inside). */
extern const double CITY_LAT_MIN, CITY_LAT_MAX, CITY_LNG_MIN, CITY_LNG_MAX;
/* Spacing of the street grid in degrees. */
extern const double CITY_GRID_DEG;

int city_zone_count(void);
const zone_t *city_zone(int i);
/* The zone a point lies in (nearest centre within its radius), or -1 for the outskirts. */
int city_zone_at(pt_t p);
/* Ground distance in metres along the street grid (first along one axis, then the other). */
double city_grid_m(pt_t a, pt_t b);
/* Straight-line (haversine) distance in metres. */
double city_haversine_m(pt_t a, pt_t b);
/* Driving speed in km/h at p at simulated hour h (0–23) for "motorcycle" or "car": slower in
 * the centre at rush hour, faster in the outskirts at night. */
double city_speed_kmh(pt_t p, int hour, bool car);
/* Relative order rate at simulated hour h (mean over a day = 1). */
double city_demand_factor(int hour);
/* Draw a pickup and a drop-off for an order placed at hour h: mornings flow from homes into the
 * centre, evenings back out. */
void city_trip(rng_t *r, int hour, pt_t *from, pt_t *to);
/* A point near zone z (Gaussian around its centre), inside the city, snapped to 1e-5°. */
pt_t city_point_in_zone(rng_t *r, int z);
/* A uniformly random point in the city. */
pt_t city_random_point(rng_t *r);
/* Where a leg of fraction f (0–1) along the grid path a→b is (lng first, then lat). */
pt_t city_along(pt_t a, pt_t b, double f);

/* ---- latency histograms and endpoints (report.c) --------------------------------------------- */

#define HIST_BUCKETS 2400

/* Log-linear histogram of microsecond values with about 1% resolution from 1 µs to ~1 h. */
typedef struct {
    uint32_t b[HIST_BUCKETS];
    uint64_t n;
    double max_us, sum_us;
} hist_t;

void hist_add(hist_t *h, double us);
/* The value at quantile q (0–1), in microseconds; 0 when empty. */
double hist_quantile(const hist_t *h, double q);

typedef enum {
    EP_TOKEN,
    EP_CSRF,
    EP_STATUS,
    EP_PING,
    EP_OFFERS,
    EP_ACCEPT,
    EP_REJECT,
    EP_PICKUP,
    EP_COMPLETE,
    EP_ESTIMATE,
    EP_ORDER,
    EP_ORDER_GET,
    EP_CANCEL,
    EP_RATING,
    EP_TRIPS,
    EP_ORDER_LIST,
    EP_HINT,
    EP_COUNT
} endpoint_t;

/* "PUT /drivers/me/location" and so on. */
const char *endpoint_name(endpoint_t e);

typedef struct {
    hist_t lat;
    uint64_t status[600]; /* by HTTP status; [0] transport failures (timeout, refused) */
    uint64_t timeouts;
} ep_stats_t;

/* An answer that counts as an error: transport failures (0), 5xx, and 4xx other than the flow's
 * ordinary outcomes — a lost race for an offer (409), a cancel meeting an accept (409), a pickup
 * of a cancelled order (409), an order or trip already gone (404). */
static inline bool status_is_error(int c)
{
    return c == 0 || c >= 500 || (c >= 400 && c != 409 && c != 404);
}

/* ---- HTTP (net.c) ------------------------------------------------------------------------------
 */

struct sim;
struct http_req;
/* Called once per request with the HTTP status (0 when no answer came: timeout, refused) and
 * the parsed JSON body (NULL when none or not JSON; borrowed: valid during the call). */
typedef void (*http_done_fn)(struct sim *s, struct http_req *r, int status, json_t *body);

struct conn;

typedef struct http_req {
    char *out; /* the request as sent: request line, headers, body */
    size_t out_len, out_cap;
    char *resp; /* the answer as received; the body at body_off, body_len bytes */
    size_t resp_len, resp_cap, body_off, body_len;
    struct sockaddr_in addr;
    char src_ip[32]; /* bind to this local address ("" = any) */
    long timeout_ms;
    double deadline_ms; /* run clock; 0 until the request is handed to the network */
    bool retried;       /* sent again once after its kept-alive connection was found closed */
    struct conn *conn;
    endpoint_t ep;
    double intended_ms; /* on the monotonic clock of the run (ms since start) */
    bool measured;      /* counted in the endpoint tables (false during set-up and drain) */
    int agent;          /* index of the driver or customer */
    long long ctx;      /* an order or offer id the callback needs */
    int attempt;
    http_done_fn done;
    struct http_req *next_free; /* free list, delayed list or waiting line */
} http_req_t;

typedef struct {
    const char *method;
    const char *url;
    const char *bearer; /* access token, or NULL */
    const char *csrf;   /* X-CSRF-Token, or NULL */
    const char *idem;   /* Idempotency-Key, or NULL */
    const char *body;   /* JSON (or form, with form = true), copied; NULL for none */
    bool form;          /* body is application/x-www-form-urlencoded */
    const char *src_ip; /* bind the connection to this local address, or NULL */
    long timeout_ms;    /* whole request; 0 = the run's default */
} http_spec_t;

/* ---- agents (agents.c) --------------------------------------------------------------------- */

typedef enum {
    D_OFFLINE,
    D_GOING_ONLINE,
    D_IDLE,
    D_DECIDING,
    D_ANSWERING,
    D_TO_PICKUP,
    D_PICKING_UP,
    D_ON_TRIP,
    D_COMPLETING,
    D_GOING_OFFLINE,
    D_RESUMING, /* reloading its trips after going online */
    D_DEAD      /* no usable account */
} driver_state_t;

typedef struct {
    long long id;
    bool car;
    char *refresh, *access, *csrf;
    double token_exp_ms; /* run clock */
    rng_t rng;
    driver_state_t st;
    pt_t pos;              /* position at leg_t0 */
    pt_t leg_to;           /* where the current leg ends */
    double leg_t0, leg_t1; /* run-clock ms */
    double pickiness;      /* 0 (takes anything) .. 1 (very choosy) */
    int home_zone;
    /* --follow-hints: this driver asks where to wait whenever it is free (hint_busy while the
     * question is out) */
    bool follows_hints, hint_busy;
    long long offer_id, order_id;
    double offer_seen_ms, accept_ms, pickup_ms;
    pt_t accept_pos; /* where the driver was on accepting: the pickup leg's start */
    double offer_price, offer_pickup_m;
    pt_t pickup, dropoff;
    uint32_t gen_ping, gen_poll, gen_act; /* timer generations: a stale timer is ignored */
    long long last_offer_id;
    /* Until then (run clock), an idle driver's polls look at its trips now and then: an accept
     * that got no answer may still become a trip (driver-service's reconciler confirms it). */
    double recheck_until;
    unsigned polls;
    /* --push: the driver's GET /events stream (net.c), and the last event id it got. */
    struct sse *sse;
    char last_event_id[48];
    uint32_t gen_stream;
} driver_t;

typedef enum { C_IDLE, C_ESTIMATING, C_ORDERING, C_ADOPTING, C_WAITING, C_DEAD } cust_state_t;

typedef struct {
    long long id;
    char *refresh, *access, *csrf;
    double token_exp_ms;
    rng_t rng;
    cust_state_t st;
    pt_t from, to;
    bool car;
    char idem[40];
    char quote[80];
    long long order_id;
    double placed_ms;   /* intended send time of the first POST /orders */
    double patience_ms; /* real ms of searching before cancelling */
    char last_status[16];
    double accepted_seen_ms, pickedup_seen_ms;
    int order_attempt;
    uint32_t gen_poll, gen_act;
} cust_t;

/* ---- the run ------------------------------------------------------------------------------- */

typedef struct {
    /* where */
    char edge[128];
    char svc_url[3][128]; /* user, driver, core internal listeners (audit, ops token) */
    char run_dir[512];
    char pool_path[600];
    char out_dir[600]; /* report.json, events.jsonl, acked.tsv */
    /* how much */
    uint64_t seed;
    int drivers, customers;
    double duration_s, warmup_s, settle_s;
    double speed;        /* simulated seconds per real second */
    double start_hour;   /* simulated clock at t = 0 (hour of day, may be fractional) */
    int start_weekday;   /* 0 = Monday */
    double orders_per_s; /* mean real-time order rate (before the hour profile) */
    bool flat;           /* no hour profile for demand: a constant offered rate */
    double ping_s, poll_s, cust_poll_s;
    double patience_s;    /* median real seconds a customer waits for a driver */
    double offline_per_h; /* probability per simulated hour that an idle driver takes a break */
    double follow_hints;  /* share of drivers who go where GET /drivers/me/waiting-hint says */
    int conns;            /* most connections to the edge at once */
    long timeout_ms;
    double ping_sample; /* fraction of pings written to the event history */
    double slow_ms;     /* a request at least this slow is written to issues.tsv */
    bool audit_only, no_audit, quiet;
    bool push; /* drivers learn of offers from GET /events instead of polling GET /offers */
    int setup_parallel;
} sim_opts_t;

typedef struct {
    uint64_t placed, acked, declined_price, no_customer, order_failed;
    uint64_t completed, cancelled, expired, lost_offers, rejected_offers, accepted_offers;
    uint64_t missed_offers, ratings, pings, dead_accounts, retries;
    uint64_t pickup_refused, token_refreshes, cancelled_wind_down, resumed_trips, adopted_orders;
    uint64_t pushed_offers, stream_opens, stream_drops;
    uint64_t hints_followed, hints_stay, hints_none; /* --follow-hints: where free drivers went */
} flow_counts_t;

typedef struct timer {
    double at;
    uint32_t gen;
    int kind;
    int agent;
} timer_t_;

typedef struct sim {
    sim_opts_t o;
    int epfd;                                /* epoll set of the connections */
    int n_conns;                             /* shared keep-alive connections open */
    struct conn *idle, *all;                 /* free connections; every connection */
    http_req_t *pending_head, *pending_tail; /* requests waiting for a free connection */
    double last_expire_ms;
    http_req_t *free_reqs;
    http_req_t *delayed; /* requests waiting for their send time, soonest first */
    int in_flight;       /* started or waiting */
    bool in_setup;
    double t0_mono_ms;      /* monotonic clock at the start */
    double t0_wall_ms;      /* wall clock (ms since the epoch) at the start */
    double measure_from_ms; /* run clock: end of warm-up */
    double measure_to_ms;   /* run clock: end of the measured window */
    bool measuring, stopping, winding;
    double wind_ms; /* run clock: when the wind-down began cutting drives short (0: not yet) */
    driver_t *drv;
    cust_t *cust;
    int *idle_cust; /* stack of idle customer indexes */
    int n_idle_cust;
    rng_t rng;          /* the order generator's stream */
    uint32_t run_nonce; /* makes Idempotency-Keys unique across runs */
    double next_order_ms;
    timer_t_ *heap;
    int heap_n, heap_cap;
    ep_stats_t ep[EP_COUNT];
    hist_t first_offer, to_accept, pickup_wait, trip_time, order_seen_accept;
    flow_counts_t c;
    FILE *events; /* JSON Lines, or NULL */
    FILE *acked;  /* acked.tsv: order id, user id, idempotency key */
    FILE *issues; /* issues.tsv: every failed or slow request of the run, with wall times */
    char order_url[160], offers_url[160];
} sim_t;

/* run clock: ms since the start, monotonic */
double sim_now(const sim_t *s);
/* the simulated hour of day (0–23) at run-clock ms t */
int sim_hour(const sim_t *s, double t_ms);
/* the simulated clock at run-clock ms t as seconds since midnight of the start day (may pass
 * 86400): what a real system reads off its own clock, written into events.jsonl */
double sim_city_s(const sim_t *s, double t_ms);
double sim_wall_ms(const sim_t *s, double t_ms);

/* net.c */
int net_init(sim_t *s);
void net_clean(sim_t *s);
/* Start a request now; its latency counts from intended_ms. Returns the request (owned by net.c
 * until done has run) or NULL when it could not be started (then done is not called). */
http_req_t *net_send(sim_t *s, const http_spec_t *spec, endpoint_t ep, double intended_ms,
                     int agent, long long ctx, int attempt, http_done_fn done);
/* Run the transfers until nothing is left to do or timeout_ms passes; calls done callbacks. */
void net_poll(sim_t *s, int timeout_ms);
/* A blocking request outside the run (set-up, audit); returns the status and sets *body (owned
 * by the caller) when the answer is JSON. */
int net_fetch(const char *method, const char *url, const char *bearer, const char *form_body,
              long timeout_ms, json_t **body);

/* --push (net.c): open driver agent's GET /events stream with its token, resuming after
 * last_id ("" = from now); each event goes to agents_event, the stream's end (closed, refused,
 * an error) to agents_stream_ended. close ends it without a callback. */
void net_stream_open(sim_t *s, int agent, const char *token, const char *last_id);
void net_stream_close(sim_t *s, int agent);

/* timers (main.c) */
void timer_add(sim_t *s, double at, int kind, int agent, uint32_t gen);

enum {
    T_DRV_PING,
    T_DRV_POLL,
    T_DRV_ACT,
    T_CUST_POLL,
    T_CUST_ACT,
    T_ORDER_ARRIVAL,
    T_TOKEN,
    T_DRV_STREAM
};

/* agents.c */
void agents_start(sim_t *s);
void agents_timer(sim_t *s, const timer_t_ *t);
/* Stop placing orders; drivers finish what they have. */
void agents_stop(sim_t *s);
/* How many flows are still moving (orders not final, drivers mid-trip). */
int agents_busy(const sim_t *s);
void event_write(sim_t *s, json_t *ev); /* steals ev */
/* --push: one event of driver agent's stream (data borrowed), and the stream's end. */
void agents_event(sim_t *s, int agent, const char *type, const char *id, json_t *data);
void agents_stream_ended(sim_t *s, int agent);

/* report.c */
typedef struct {
    char name[32];
    int pid;
    double cpu0_s, cpu1_s;
    long rss_kb, hwm_kb;
} proc_t;

int procs_find(const char *run_dir, proc_t *out, int max);
void procs_sample(proc_t *p, int n, bool end);
json_t *report_json(const sim_t *s, const proc_t *p, int np, double sim_cpu_s, json_t *audit);
void report_print(FILE *f, json_t *rep);

/* audit.c */
/* Read every service's audit routes with an ops token and check the cross-service invariants.
 * acked_path: the run's acked orders (may be NULL or missing). Returns a JSON object
 * {violations: [...], checked: {...}, timings: {...}}; *bad = number of violations. */
json_t *audit_run(const sim_opts_t *o, const char *acked_path, int *bad, hist_t *first_offer,
                  hist_t *to_accept, hist_t *pickup_wait, hist_t *trip_time);

#endif
