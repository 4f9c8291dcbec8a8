/* audit.c — the cross-service invariants, read through the services' ops-only audit routes
 * (GET /internal/audit/... on each service's own port, with a token of the `ops` client):
 *
 *   every acknowledged order exists exactly once (and its Idempotency-Key made one order);
 *   an assigned order has one driver, and that driver's trip holds it once, at the same price
 *   and in the same state; no order is searching without a live dispatch; no two offers of one
 *   order were accepted; no driver has two active trips, is busy in core without an active order
 *   of theirs, or has an active trip while core offers them as available; ratings are counted
 *   once; earnings equal the completed trips.
 *
 * State moves between services through outboxes, so right after a run a message may still be
 * on its way: the audit reads everything again until it is clean or `settle` seconds pass, and
 * reports what is still wrong then. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

typedef struct {
    long long order_id, user_id;
    char key[80];
    double placed_wall_ms;
} acked_t;

/* ---- reading ----------------------------------------------------------------------------------
 */

static int read_secret(const char *run_dir, const char *name, char *out, size_t n)
{
    char path[700], line[512];
    size_t len = strlen(name);
    snprintf(path, sizeof path, "%s/secrets.env", run_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, name, len) == 0 && line[len] == '=') {
            line[strcspn(line, "\r\n")] = '\0';
            if (strlen(line + len + 1) < n) {
                memcpy(out, line + len + 1, strlen(line + len + 1) + 1);
                rc = 0;
            }
        }
    }
    fclose(f);
    return rc;
}

static char *ops_token(const sim_opts_t *o, char *err, size_t errn)
{
    char secret[256], form[512], u[256];
    json_t *body = NULL;
    if (read_secret(o->run_dir, "CLIENT_SECRET_OPS", secret, sizeof secret) != 0) {
        snprintf(err, errn, "no CLIENT_SECRET_OPS in %.200s/secrets.env", o->run_dir);
        return NULL;
    }
    snprintf(form, sizeof form, "grant_type=client_credentials&client_id=ops&client_secret=%s",
             secret);
    snprintf(u, sizeof u, "%s/oauth/token", o->svc_url[2]);
    int st = net_fetch("POST", u, NULL, form, 10000, &body);
    const char *tok = json_string_value(json_object_get(body, "access_token"));
    char *out = st == 200 && tok ? strdup(tok) : NULL;
    if (!out)
        snprintf(err, errn, "the ops token request answered %d", st);
    json_decref(body);
    return out;
}

/* Every item of a paged audit route, or NULL (err filled). */
static json_t *read_all(const char *base, const char *path, const char *tok, char *err, size_t errn)
{
    json_t *all = json_array();
    char cursor[256] = "";
    for (int page = 0; page < 100000; page++) {
        char u[700];
        snprintf(u, sizeof u, "%s%s?limit=1000%s%s", base, path, cursor[0] ? "&cursor=" : "",
                 cursor);
        json_t *body = NULL;
        int st = net_fetch("GET", u, tok, NULL, 30000, &body);
        json_t *res = json_object_get(body, "result");
        json_t *items = json_object_get(res, "items");
        if (st != 200 || !json_is_array(items)) {
            snprintf(err, errn, "GET %s answered %d", path, st);
            json_decref(body);
            json_decref(all);
            return NULL;
        }
        json_array_extend(all, items);
        const char *next = json_string_value(json_object_get(res, "next_cursor"));
        bool more = next && *next && strlen(next) < sizeof cursor;
        if (more)
            snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(body);
        if (!more)
            break;
    }
    return all;
}

/* Index an array of objects by the integer field `key` ("17" → item). Borrowed items. */
static json_t *index_by(json_t *arr, const char *key)
{
    json_t *idx = json_object(), *it;
    size_t i;
    json_array_foreach(arr, i, it)
    {
        char k[32];
        snprintf(k, sizeof k, "%lld", (long long)json_integer_value(json_object_get(it, key)));
        json_object_set(idx, k, it);
    }
    return idx;
}

static json_t *by_id(json_t *idx, long long id)
{
    char k[32];
    snprintf(k, sizeof k, "%lld", id);
    return json_object_get(idx, k);
}

static long long jint(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* "2026-12-02T21:30:12.345Z" → ms since the epoch; 0 when absent or malformed. */
static double rfc3339_ms(json_t *v)
{
    const char *s = json_string_value(v);
    struct tm tm = {0};
    int ms = 0;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    const char *dot = strchr(s, '.');
    if (dot)
        ms = atoi(dot + 1);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) * 1000.0 + ms;
}

static acked_t *read_acked(const char *path, int *n)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    acked_t *a = NULL;
    int cap = 0;
    char line[256];
    *n = 0;
    if (!f)
        return NULL;
    while (fgets(line, sizeof line, f)) {
        acked_t x = {0};
        if (sscanf(line, "%lld\t%lld\t%79s\t%lf", &x.order_id, &x.user_id, x.key,
                   &x.placed_wall_ms) < 3)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            acked_t *na = realloc(a, (size_t)cap * sizeof *a);
            if (!na)
                break;
            a = na;
        }
        a[(*n)++] = x;
    }
    fclose(f);
    return a;
}

/* ---- checking ----------------------------------------------------------------------------------
 */

typedef struct {
    json_t *orders, *trips, *offers, *drivers, *presence, *dispatches;
} snapshot_t;

static void snap_free(snapshot_t *s)
{
    json_decref(s->orders);
    json_decref(s->trips);
    json_decref(s->offers);
    json_decref(s->drivers);
    json_decref(s->presence);
    json_decref(s->dispatches);
    memset(s, 0, sizeof *s);
}

static int snap_read(const sim_opts_t *o, const char *tok, snapshot_t *s, char *err, size_t n)
{
    s->orders = read_all(o->svc_url[0], "/internal/audit/orders", tok, err, n);
    if (s->orders)
        s->trips = read_all(o->svc_url[1], "/internal/audit/trips", tok, err, n);
    if (s->trips)
        s->offers = read_all(o->svc_url[1], "/internal/audit/offers", tok, err, n);
    if (s->offers)
        s->drivers = read_all(o->svc_url[1], "/internal/audit/drivers", tok, err, n);
    if (s->drivers)
        s->presence = read_all(o->svc_url[2], "/internal/audit/presence", tok, err, n);
    if (s->presence)
        s->dispatches = read_all(o->svc_url[2], "/internal/audit/dispatches", tok, err, n);
    return s->dispatches ? 0 : -1;
}

static void violation(json_t *v, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void violation(json_t *v, const char *kind, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(v, json_pack("{ss ss}", "kind", kind, "detail", msg));
}

static bool active(const char *st)
{
    return strcmp(st, "accepted") == 0 || strcmp(st, "picked_up") == 0;
}

static json_t *check(const snapshot_t *s, const acked_t *acked, int n_acked)
{
    json_t *v = json_array(), *it;
    json_t *orders = index_by(s->orders, "id"), *trips = index_by(s->trips, "order_id");
    json_t *dispatches = index_by(s->dispatches, "order_id");
    json_t *keys = json_object(), *accepted_offers = json_object(), *rated = json_object();
    size_t i;

    /* Every acknowledged order exists, belongs to its customer, once per Idempotency-Key. */
    json_array_foreach(s->orders, i, it)
    {
        const char *k = json_string_value(json_object_get(it, "idempotency_key"));
        if (!k)
            continue;
        char kk[160];
        snprintf(kk, sizeof kk, "%lld:%s", jint(it, "user_id"), k);
        json_t *prev = json_object_get(keys, kk);
        if (prev)
            violation(v, "duplicate_idempotency_key",
                      "orders %lld and %lld share user %lld's key %s", jint(prev, "id"),
                      jint(it, "id"), jint(it, "user_id"), k);
        else
            json_object_set(keys, kk, it);
    }
    for (int a = 0; a < n_acked; a++) {
        json_t *o = by_id(orders, acked[a].order_id);
        if (!o) {
            violation(v, "acked_order_missing",
                      "order %lld (user %lld) was acknowledged but is "
                      "not in user-service",
                      acked[a].order_id, acked[a].user_id);
            continue;
        }
        if (jint(o, "user_id") != acked[a].user_id)
            violation(v, "acked_order_wrong_user",
                      "order %lld belongs to user %lld, acknowledged "
                      "to user %lld",
                      acked[a].order_id, jint(o, "user_id"), acked[a].user_id);
        char kk[160];
        snprintf(kk, sizeof kk, "%lld:%s", acked[a].user_id, acked[a].key);
        json_t *byk = json_object_get(keys, kk);
        if (!byk || jint(byk, "id") != acked[a].order_id)
            violation(v, "acked_key_mismatch",
                      "key %s of user %lld maps to order %lld, "
                      "acknowledged as %lld",
                      acked[a].key, acked[a].user_id, byk ? jint(byk, "id") : 0, acked[a].order_id);
    }

    /* Orders against trips and dispatches. */
    json_array_foreach(s->orders, i, it)
    {
        long long id = jint(it, "id"), drv = jint(it, "driver_id");
        const char *st = jstr(it, "status");
        json_t *t = by_id(trips, id);
        bool assigned = active(st) || strcmp(st, "completed") == 0;
        if (json_integer_value(json_object_get(it, "rating")) > 0) {
            char k[32];
            snprintf(k, sizeof k, "%lld", drv);
            json_object_set_new(rated, k,
                                json_integer(json_integer_value(json_object_get(rated, k)) + 1));
            if (strcmp(st, "completed") != 0)
                violation(v, "rating_on_unfinished_order", "order %lld is %s but rated", id, st);
        }
        if (assigned) {
            if (drv <= 0) {
                violation(v, "assigned_without_driver", "order %lld is %s with no driver", id, st);
                continue;
            }
            if (!t) {
                violation(v, "assigned_without_trip",
                          "order %lld is %s by driver %lld, who has "
                          "no trip for it",
                          id, st, drv);
                continue;
            }
            if (jint(t, "driver_id") != drv)
                violation(v, "two_drivers",
                          "order %lld: user-service says driver %lld, the trip "
                          "is driver %lld's",
                          id, drv, jint(t, "driver_id"));
            if (jint(t, "price") != jint(it, "price"))
                violation(v, "price_disagrees", "order %lld: price %lld, trip price %lld", id,
                          jint(it, "price"), jint(t, "price"));
            if (strcmp(jstr(t, "status"), st) != 0)
                violation(v, "status_disagrees", "order %lld is %s, its trip is %s", id, st,
                          jstr(t, "status"));
        } else if (strcmp(st, "searching") == 0) {
            if (!by_id(dispatches, id))
                violation(v, "searching_without_dispatch",
                          "order %lld is searching and core "
                          "has no live dispatch for it",
                          id);
        } else if (t &&
                   (active(jstr(t, "status")) || strcmp(jstr(t, "status"), "completed") == 0)) {
            violation(v, "trip_of_ended_order", "order %lld is %s but driver %lld's trip is %s", id,
                      st, jint(t, "driver_id"), jstr(t, "status"));
        }
    }
    json_array_foreach(s->trips, i, it)
    {
        if (!by_id(orders, jint(it, "order_id")))
            violation(v, "trip_without_order",
                      "trip %lld of driver %lld is for order %lld, "
                      "unknown to user-service",
                      jint(it, "id"), jint(it, "driver_id"), jint(it, "order_id"));
    }
    json_array_foreach(s->offers, i, it)
    {
        if (strcmp(jstr(it, "status"), "accepted") != 0)
            continue;
        char k[32];
        snprintf(k, sizeof k, "%lld", jint(it, "order_id"));
        json_t *prev = json_object_get(accepted_offers, k);
        if (prev)
            violation(v, "order_two_accepted_offers",
                      "order %lld: offers %lld (driver %lld) and "
                      "%lld (driver %lld) both accepted",
                      jint(it, "order_id"), jint(prev, "id"), jint(prev, "driver_id"),
                      jint(it, "id"), jint(it, "driver_id"));
        else
            json_object_set(accepted_offers, k, it);
    }

    /* Drivers: one active trip at most, ratings once, earnings = completed trips. */
    json_t *presence = index_by(s->presence, "driver_id");
    json_array_foreach(s->drivers, i, it)
    {
        long long id = jint(it, "id");
        char k[32];
        snprintf(k, sizeof k, "%lld", id);
        if (jint(it, "active_trips") > 1)
            violation(v, "driver_two_active_trips", "driver %lld has %lld active trips", id,
                      jint(it, "active_trips"));
        long long rated_n = (long long)json_integer_value(json_object_get(rated, k));
        if (jint(it, "rating_count") != jint(it, "ratings_received") ||
            jint(it, "ratings_received") != rated_n)
            violation(v, "ratings_miscounted",
                      "driver %lld: rating_count %lld, ratings stored "
                      "%lld, rated orders in user-service %lld",
                      id, jint(it, "rating_count"), jint(it, "ratings_received"), rated_n);
        /* One earnings entry per completed trip and none besides, never more than the fare
         * (the driver's share is driver-service's rule; the audit checks it was paid once). */
        if (jint(it, "earnings_count") != jint(it, "completed_trips") ||
            jint(it, "earnings_total") != jint(it, "completed_trips_earnings") ||
            jint(it, "earnings_total") > jint(it, "completed_trips_total"))
            violation(v, "earnings_disagree",
                      "driver %lld: earnings %lld over %lld entries, %lld of it for completed "
                      "trips; %lld completed trips worth %lld",
                      id, jint(it, "earnings_total"), jint(it, "earnings_count"),
                      jint(it, "completed_trips_earnings"), jint(it, "completed_trips"),
                      jint(it, "completed_trips_total"));
        json_t *p = json_object_get(presence, k);
        if (jint(it, "active_trips") > 0 && p && strcmp(jstr(p, "status"), "available") == 0)
            violation(v, "active_trip_but_available",
                      "driver %lld has an active trip and core "
                      "offers them as available",
                      id);
    }
    json_array_foreach(s->presence, i, it)
    {
        if (strcmp(jstr(it, "status"), "busy") != 0)
            continue;
        long long drv = jint(it, "driver_id"), oid = jint(it, "order_id");
        json_t *o = oid > 0 ? by_id(orders, oid) : NULL;
        if (!o || !active(jstr(o, "status")) || jint(o, "driver_id") != drv)
            violation(v, "busy_without_active_order",
                      "driver %lld is busy in core with order "
                      "%lld, which is %s",
                      drv, oid, o ? jstr(o, "status") : "unknown");
    }
    json_decref(orders);
    json_decref(trips);
    json_decref(dispatches);
    json_decref(keys);
    json_decref(accepted_offers);
    json_decref(rated);
    json_decref(presence);
    return v;
}

/* The flow's times of this run's acknowledged orders, from the services' own timestamps. */
static void timings(const snapshot_t *s, const acked_t *acked, int n_acked, hist_t *first_offer,
                    hist_t *to_accept, hist_t *pickup_wait, hist_t *trip_time)
{
    json_t *orders = index_by(s->orders, "id"), *first = json_object(), *it;
    size_t i;
    json_array_foreach(s->offers, i, it)
    {
        char k[32];
        snprintf(k, sizeof k, "%lld", jint(it, "order_id"));
        double t = rfc3339_ms(json_object_get(it, "created_at"));
        json_t *cur = json_object_get(first, k);
        if (t > 0 && (!cur || t < json_real_value(cur)))
            json_object_set_new(first, k, json_real(t));
    }
    for (int a = 0; a < n_acked; a++) {
        json_t *o = by_id(orders, acked[a].order_id);
        double placed = acked[a].placed_wall_ms;
        if (!o || placed <= 0)
            continue;
        char k[32];
        snprintf(k, sizeof k, "%lld", acked[a].order_id);
        double fo = json_real_value(json_object_get(first, k));
        double acc = rfc3339_ms(json_object_get(o, "accepted_at"));
        double pick = rfc3339_ms(json_object_get(o, "picked_up_at"));
        double done = rfc3339_ms(json_object_get(o, "completed_at"));
        if (fo > 0 && first_offer)
            hist_add(first_offer, (fo - placed) * 1000);
        if (acc > 0 && to_accept)
            hist_add(to_accept, (acc - placed) * 1000);
        if (acc > 0 && pick > 0 && pickup_wait)
            hist_add(pickup_wait, (pick - acc) * 1000);
        if (pick > 0 && done > 0 && trip_time)
            hist_add(trip_time, (done - pick) * 1000);
    }
    json_decref(orders);
    json_decref(first);
}

json_t *audit_run(const sim_opts_t *o, const char *acked_path, int *bad, hist_t *first_offer,
                  hist_t *to_accept, hist_t *pickup_wait, hist_t *trip_time)
{
    char err[256] = "";
    int n_acked = 0;
    acked_t *acked = read_acked(acked_path, &n_acked);
    char *tok = ops_token(o, err, sizeof err);
    json_t *out = NULL, *v = NULL;
    snapshot_t s = {0};
    double settle = o->settle_s > 0 ? o->settle_s : 1;
    int rounds = 0;
    *bad = 1;
    if (!tok)
        goto fail;
    for (double waited = 0;; waited += 1.0) {
        snap_free(&s);
        json_decref(v);
        v = NULL;
        if (snap_read(o, tok, &s, err, sizeof err) != 0)
            goto fail;
        v = check(&s, acked, n_acked);
        rounds++;
        if (json_array_size(v) == 0 || waited >= settle)
            break;
        sleep(1); /* an outbox message may still be on its way */
    }
    timings(&s, acked, n_acked, first_offer, to_accept, pickup_wait, trip_time);
    *bad = (int)json_array_size(v);
    out = json_pack(
        "{so s{sI sI sI sI sI sI si} si}", "violations", v, "checked", "orders",
        (json_int_t)json_array_size(s.orders), "trips", (json_int_t)json_array_size(s.trips),
        "offers", (json_int_t)json_array_size(s.offers), "drivers",
        (json_int_t)json_array_size(s.drivers), "presence", (json_int_t)json_array_size(s.presence),
        "dispatches", (json_int_t)json_array_size(s.dispatches), "acked_orders", n_acked, "reads",
        rounds);
    v = NULL;
    goto done;
fail:
    out = json_pack("{s[{ss ss}] ss}", "violations", "kind", "audit_unreadable", "detail", err,
                    "error", err);
    *bad = 1;
done:
    json_decref(v);
    snap_free(&s);
    free(tok);
    free(acked);
    return out;
}
