/* db_history.c — antar-train's history from what the services record in MariaDB (docs/ai.md,
 * "Training from the database"), written as the same events.jsonl lines the simulator writes,
 * so that one reader, one cleaning and one split serve both sources.
 *
 * driver-service's database (the default: ANTAR_DB_* as for the service):
 *   trips (completed) joined with the offer they came from → "trip" events: the way to the
 *     pickup (where core saw the driver when it made the offer → pickup, accepted_at →
 *     picked_up_at) and the trip (pickup → drop-off, picked_up_at → completed_at);
 *   offers → "offer" events: driver position at offer time, order, price, outcome (accepted,
 *     lost, rejected, expired) and response time (responded_at, or the deadline for a lapse);
 *   each order's first offer → an "order" event (when it was dispatched, where).
 * user-service's database, when that is the one named: orders → "order" events (every order
 *   placed, offered or not) and their completed trips' pickup → drop-off legs.
 * Times become city seconds through the clock (ANTAR_AI_CLOCK_FILE's mapping, else the wall
 * clock in Jakarta, UTC+7, as core does), durations city seconds by its speed. With a clock only
 * rows since its t0 are read: a simulated day's clock says nothing of the rows of another. */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/config.h"
#include "antar/db.h"
#include "train.h"

typedef struct {
    double t0_wall_ms, start_hour, speed;
    int weekday;
} clk_t;

static double city_s(const clk_t *c, double wall_ms)
{
    return c->start_hour * 3600.0 + (wall_ms - c->t0_wall_ms) / 1000.0 * c->speed;
}

static double num(json_t *row, const char *k)
{
    json_t *v = json_object_get(row, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static bool table_exists(const char *name)
{
    json_t *row = NULL;
    antar_err_t err = antar_db_query_one(
        "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() "
        "AND table_name = ?",
        ANTAR_DB_ARGS(ANTAR_DB_S(name)), &row);
    bool yes = err == ANTAR_OK && json_integer_value(json_object_get(row, "n")) > 0;
    json_decref(row);
    return yes;
}

static int emit(FILE *f, json_t *ev, long *n)
{
    if (!ev)
        return -1;
    int rc = json_dumpf(ev, f, JSON_COMPACT) == 0 && fputc('\n', f) != EOF ? 0 : -1;
    json_decref(ev);
    (*n)++;
    return rc;
}

static int driver_db(FILE *f, const clk_t *c, long *counts)
{
    json_t *rows = NULL, *r;
    size_t i;
    double since_s = c->t0_wall_ms / 1000.0;
    /* The ways to pickups and the trips. */
    if (antar_db_query(
            "SELECT o.vehicle_type, o.driver_lat, o.driver_lng, t.pickup_lat, t.pickup_lng, "
            "t.dropoff_lat, t.dropoff_lng, UNIX_TIMESTAMP(t.accepted_at) * 1000 AS acc_ms, "
            "UNIX_TIMESTAMP(t.picked_up_at) * 1000 AS pick_ms, "
            "UNIX_TIMESTAMP(t.completed_at) * 1000 AS done_ms "
            "FROM trips t JOIN offers o ON o.id = t.offer_id "
            "WHERE t.status = 'completed' AND t.accepted_at >= FROM_UNIXTIME(?) ORDER BY t.id",
            ANTAR_DB_ARGS(ANTAR_DB_D(since_s)), &rows) != ANTAR_OK)
        return -1;
    json_array_foreach(rows, i, r)
    {
        double acc = num(r, "acc_ms"), pick = num(r, "pick_ms"), done = num(r, "done_ms");
        json_t *ev = json_pack(
            "{ss ss s[ff] s[ff] sf sf sf sf}", "ev", "trip", "vehicle_type",
            json_string_value(json_object_get(r, "vehicle_type")), "pickup", num(r, "pickup_lat"),
            num(r, "pickup_lng"), "dropoff", num(r, "dropoff_lat"), num(r, "dropoff_lng"),
            "accept_city_s", city_s(c, acc), "pickup_city_s", city_s(c, pick), "pickup_sim_s",
            (pick - acc) / 1000.0 * c->speed, "trip_sim_s", (done - pick) / 1000.0 * c->speed);
        /* Offers made before core sent the driver's position have no way to the pickup. */
        if (ev && isfinite(num(r, "driver_lat")))
            json_object_set_new(ev, "from",
                                json_pack("[ff]", num(r, "driver_lat"), num(r, "driver_lng")));
        if (emit(f, ev, &counts[0]) != 0) {
            json_decref(rows);
            return -1;
        }
    }
    json_decref(rows);
    /* Offers with an outcome, in the order they were made (a driver's record is "so far"). */
    if (antar_db_query(
            "SELECT id, order_id, driver_id, status, vehicle_type, driver_lat, driver_lng, "
            "pickup_lat, pickup_lng, dropoff_lat, dropoff_lng, price, "
            "UNIX_TIMESTAMP(created_at) * 1000 AS at_ms, "
            "UNIX_TIMESTAMP(responded_at) * 1000 AS resp_ms, "
            "UNIX_TIMESTAMP(expires_at) * 1000 AS exp_ms FROM offers "
            "WHERE created_at >= FROM_UNIXTIME(?) AND status IN "
            "('accepted','lost','rejected','expired') ORDER BY created_at, id",
            ANTAR_DB_ARGS(ANTAR_DB_D(since_s)), &rows) != ANTAR_OK)
        return -1;
    json_array_foreach(rows, i, r)
    {
        const char *st = json_string_value(json_object_get(r, "status"));
        double at = num(r, "at_ms"), resp = num(r, "resp_ms");
        double end = isfinite(resp) ? resp : num(r, "exp_ms");
        if (!st || !isfinite(num(r, "driver_lat")) || !isfinite(end))
            continue;
        json_t *ev = json_pack(
            "{ss sI sI s[ff] s[ff] s[ff] sf sf sb ss sf}", "ev", "offer", "driver",
            (json_int_t)num(r, "driver_id"), "order", (json_int_t)num(r, "order_id"), "driver_at",
            num(r, "driver_lat"), num(r, "driver_lng"), "pickup", num(r, "pickup_lat"),
            num(r, "pickup_lng"), "dropoff", num(r, "dropoff_lat"), num(r, "dropoff_lng"), "price",
            num(r, "price"), "seen_city_s", city_s(c, at), "car",
            strcmp(json_string_value(json_object_get(r, "vehicle_type")), "car") == 0, "outcome",
            st, "response_ms", end - at);
        if (emit(f, ev, &counts[1]) != 0) {
            json_decref(rows);
            return -1;
        }
    }
    json_decref(rows);
    return 0;
}

/* Orders: user-service's table when this is its database, else each order's first offer. */
static int orders_of(FILE *f, const clk_t *c, bool user_db, long *counts)
{
    json_t *rows = NULL, *r;
    size_t i;
    double since_s = c->t0_wall_ms / 1000.0;
    antar_err_t err =
        user_db ? antar_db_query("SELECT pickup_lat, pickup_lng, "
                                 "UNIX_TIMESTAMP(created_at) * 1000 AS at_ms FROM orders "
                                 "WHERE created_at >= FROM_UNIXTIME(?) ORDER BY id",
                                 ANTAR_DB_ARGS(ANTAR_DB_D(since_s)), &rows)
                : antar_db_query("SELECT MIN(pickup_lat) AS pickup_lat, "
                                 "MIN(pickup_lng) AS pickup_lng, "
                                 "MIN(UNIX_TIMESTAMP(created_at) * 1000) AS at_ms FROM offers "
                                 "WHERE created_at >= FROM_UNIXTIME(?) GROUP BY order_id "
                                 "ORDER BY at_ms",
                                 ANTAR_DB_ARGS(ANTAR_DB_D(since_s)), &rows);
    if (err != ANTAR_OK)
        return -1;
    json_array_foreach(rows, i, r)
    {
        json_t *ev = json_pack("{ss s[ff] sf}", "ev", "order", "pickup", num(r, "pickup_lat"),
                               num(r, "pickup_lng"), "placed_city_s", city_s(c, num(r, "at_ms")));
        if (emit(f, ev, &counts[2]) != 0) {
            json_decref(rows);
            return -1;
        }
    }
    json_decref(rows);
    if (!user_db)
        return 0;
    /* user-service's completed orders: the trip leg only (it never knew where the driver was). */
    if (table_exists("trips"))
        return 0; /* the driver-service side already gave them */
    if (antar_db_query("SELECT vehicle_type, pickup_lat, pickup_lng, dropoff_lat, dropoff_lng, "
                       "UNIX_TIMESTAMP(picked_up_at) * 1000 AS pick_ms, "
                       "UNIX_TIMESTAMP(completed_at) * 1000 AS done_ms FROM orders "
                       "WHERE status = 'completed' AND created_at >= FROM_UNIXTIME(?) "
                       "ORDER BY id",
                       ANTAR_DB_ARGS(ANTAR_DB_D(since_s)), &rows) != ANTAR_OK)
        return -1;
    json_array_foreach(rows, i, r)
    {
        double pick = num(r, "pick_ms"), done = num(r, "done_ms");
        json_t *ev = json_pack("{ss ss s[ff] s[ff] sf sf}", "ev", "trip", "vehicle_type",
                               json_string_value(json_object_get(r, "vehicle_type")), "pickup",
                               num(r, "pickup_lat"), num(r, "pickup_lng"), "dropoff",
                               num(r, "dropoff_lat"), num(r, "dropoff_lng"), "pickup_city_s",
                               city_s(c, pick), "trip_sim_s", (done - pick) / 1000.0 * c->speed);
        if (emit(f, ev, &counts[0]) != 0) {
            json_decref(rows);
            return -1;
        }
    }
    json_decref(rows);
    return 0;
}

int ai_db_history(const char *clock_path, const char *out_path, json_t **summary)
{
    clk_t c = {.t0_wall_ms = 0, .start_hour = 7, .speed = 1, .weekday = 3};
    if (clock_path && clock_path[0]) {
        json_t *j = json_load_file(clock_path, 0, NULL);
        double sp = json_number_value(json_object_get(j, "speed"));
        if (!j || !(sp > 0 && sp <= 10000)) {
            fprintf(stderr, "antar-train: %s is not a usable city clock\n", clock_path);
            json_decref(j);
            return -1;
        }
        c = (clk_t){json_number_value(json_object_get(j, "t0_wall_ms")),
                    json_number_value(json_object_get(j, "start_hour")), sp,
                    (int)json_integer_value(json_object_get(j, "weekday"))};
        json_decref(j);
    }
    antar_config_t cfg;
    if (antar_config_load(&cfg, "driver") != 0 || antar_db_init(&cfg) != 0) {
        fprintf(stderr, "antar-train: cannot connect to the database %s (ANTAR_DB_*)\n",
                cfg.db_name);
        return -1;
    }
    FILE *f = fopen(out_path, "w");
    long counts[3] = {0, 0, 0};
    int rc = f ? 0 : -1;
    bool drv = table_exists("offers") && table_exists("trips"), usr = table_exists("orders");
    if (rc == 0 && !drv && !usr) {
        fprintf(stderr,
                "antar-train: database %s has neither driver-service's offers and trips nor "
                "user-service's orders\n",
                cfg.db_name);
        rc = -1;
    }
    if (rc == 0) {
        json_t *cl = json_pack("{ss sf sf si sf}", "ev", "clock", "t0_wall_ms", c.t0_wall_ms,
                               "start_hour", c.start_hour, "weekday", c.weekday, "speed", c.speed);
        long one = 0;
        rc = emit(f, cl, &one);
    }
    if (rc == 0 && drv)
        rc = driver_db(f, &c, counts);
    if (rc == 0)
        rc = orders_of(f, &c, usr, counts);
    if (f && fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "antar-train: reading the history from %s failed\n", cfg.db_name);
    else if (summary)
        *summary =
            json_pack("{ss sI sI sI}", "database", cfg.db_name, "trips", (json_int_t)counts[0],
                      "offers", (json_int_t)counts[1], "orders", (json_int_t)counts[2]);
    antar_db_cleanup();
    return rc;
}
