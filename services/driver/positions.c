/* positions.c — the location ping's fast path.
 *
 * A ping used to read the driver row, call core synchronously and commit an UPDATE: three round
 * trips on the most frequent request of the platform. Now a ping only records the latest
 * position of the driver in this process's table (one mutex, a few hundred nanoseconds), and a
 * background thread sends what changed to core every flush_ms (POST /internal/drivers/positions,
 * one Redis round trip for the whole batch in core) and writes it to the drivers table every
 * db_flush_ms (multi-row UPDATEs). Only the latest position per driver is kept: a driver who
 * pinged twice between two flushes is sent once.
 *
 * Core, not this table, knows who is online: it indexes a position only for a driver it holds
 * online (a busy one stays busy) and answers the ids it has no state for. Those are the drivers
 * Redis lost (a restart) or that nobody has told core about yet; they are re-sent in full from
 * their row (driver_presence_resync), on this thread — the slow path, once per driver.
 *
 * A driver's first ping seen by this process, and the first one after they went online here,
 * goes to core synchronously instead (the same route, one item): then a driver who just came
 * online is in the index when the ping is answered, and a core that cannot be reached still
 * answers 503 to that ping as before. Every later ping is answered from memory.
 *
 * Push (antar/events.h): a driver on a trip also has their ping queued for a driver_position
 * event to the order's customer. The same thread publishes the queue every flush_ms, all of it
 * in one pipelined round trip to Redis, so the ping itself still does no I/O. Who is on a trip is
 * read from the trips table every trips_ms (one indexed query for all of them, whichever
 * instance took the accept) and set at once by this process's own accepts and completions. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antar/db.h"
#include "antar/events.h"
#include "antar/httpc.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "driver.h"

#define FLAG_CORE 1u       /* queued for core */
#define FLAG_DB 2u         /* queued for the drivers table */
#define FLAG_SYNC 4u       /* the next ping goes to core synchronously */
#define FLAG_EV 8u         /* queued for a driver_position event */
#define CORE_BATCH_MAX 500 /* positions per call to core (~25 KB of JSON, under the body limit) */
#define RESYNC_MAX 200     /* unknown drivers re-sent in full per batch; the rest on a later one */

typedef struct {
    long long id; /* 0: empty slot */
    double lat, lng;
    long long at_ms;
    unsigned flags;
    long long order_id; /* the trip the driver is on, valid while trip_gen == g_trip_gen */
    unsigned trip_gen;
} slot_t;

typedef struct {
    long long *ids;
    size_t n, cap;
} queue_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static slot_t *g_slots;
static size_t g_cap, g_used;
static queue_t g_core_q, g_db_q, g_ev_q;
static unsigned g_trip_gen = 1;
static long g_trips_ms = 1000;
static pthread_t g_thread;
static bool g_running, g_stop;
static long g_flush_ms = 100, g_db_flush_ms = 5000;

static size_t slot_index(long long id, size_t cap)
{
    /* Fibonacci hashing: ids are consecutive, the multiply spreads them over the table. */
    return (size_t)(((uint64_t)id * 11400714819323198485ull) >> 20) & (cap - 1);
}

/* The slot of id, or NULL when id has none. Called with g_mu held. */
static slot_t *slot_find(long long id)
{
    if (!g_cap)
        return NULL;
    for (size_t i = slot_index(id, g_cap);; i = (i + 1) & (g_cap - 1)) {
        if (g_slots[i].id == id)
            return &g_slots[i];
        if (g_slots[i].id == 0)
            return NULL;
    }
}

/* The slot of id, made when missing (*created then). NULL when out of memory. g_mu held. */
static slot_t *slot_get(long long id, bool *created)
{
    slot_t *s = slot_find(id);
    *created = false;
    if (s)
        return s;
    if ((g_used + 1) * 2 > g_cap) {
        size_t cap = g_cap ? g_cap * 2 : 1024;
        slot_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return NULL;
        for (size_t i = 0; i < g_cap; i++) {
            if (!g_slots[i].id)
                continue;
            size_t j = slot_index(g_slots[i].id, cap);
            while (slots[j].id)
                j = (j + 1) & (cap - 1);
            slots[j] = g_slots[i];
        }
        free(g_slots);
        g_slots = slots;
        g_cap = cap;
    }
    size_t i = slot_index(id, g_cap);
    while (g_slots[i].id)
        i = (i + 1) & (g_cap - 1);
    g_slots[i] = (slot_t){.id = id};
    g_used++;
    *created = true;
    return &g_slots[i];
}

static bool queue_push(queue_t *q, long long id)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        long long *ids = realloc(q->ids, cap * sizeof *ids);
        if (!ids)
            return false;
        q->ids = ids;
        q->cap = cap;
    }
    q->ids[q->n++] = id;
    return true;
}

static queue_t *queue_of(unsigned flag)
{
    return flag == FLAG_CORE ? &g_core_q : flag == FLAG_DB ? &g_db_q : &g_ev_q;
}

/* Queue slot s for core or the table (flag FLAG_CORE / FLAG_DB) unless it is already. g_mu
 * held. false when out of memory (the flag stays clear: a later ping queues it again). */
static bool slot_queue(slot_t *s, unsigned flag)
{
    if (s->flags & flag)
        return true;
    if (!queue_push(queue_of(flag), s->id))
        return false;
    s->flags |= flag;
    return true;
}

/* Take the queue of flag: the current positions of its drivers into *out (malloc'd, *n of
 * them; the caller frees), flags cleared. */
static void queue_take(unsigned flag, driver_position_t **out, size_t *n)
{
    queue_t *q = queue_of(flag);
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&g_mu);
    if (q->n) {
        driver_position_t *p = malloc(q->n * sizeof *p);
        if (p) {
            for (size_t i = 0; i < q->n; i++) {
                slot_t *s = slot_find(q->ids[i]);
                s->flags &= ~flag;
                p[(*n)++] = (driver_position_t){s->id, s->lat, s->lng, s->at_ms};
            }
            *out = p;
            q->n = 0;
        }
    }
    pthread_mutex_unlock(&g_mu);
}

/* Put back what could not be delivered (unless a newer ping queued the driver meanwhile). */
static void queue_return(unsigned flag, const driver_position_t *p, size_t n)
{
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < n; i++) {
        slot_t *s = slot_find(p[i].driver_id);
        if (s)
            slot_queue(s, flag);
    }
    pthread_mutex_unlock(&g_mu);
}

/* Send n positions to core; the drivers core does not know are re-sent in full (slow path).
 * ANTAR_OK, or driver_call's error (nothing applied). */
static antar_err_t core_send(const driver_position_t *p, size_t n)
{
    json_t *list = json_array(), *body = json_pack("{so}", "positions", list), *res = NULL;
    antar_err_t err = ANTAR_E_NOMEM;
    if (!list || !body)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_pack("{sI sf sf}", "driver_id", (json_int_t)p[i].driver_id, "lat",
                                 p[i].lat, "lng", p[i].lng);
        if (!item || json_array_append_new(list, item) != 0)
            goto out;
    }
    err = driver_call(ANTAR_SVC_CORE, "POST", "/internal/drivers/positions", body, &res);
    if (err != ANTAR_OK)
        goto out;
    size_t i, resynced = 0;
    json_t *id;
    json_array_foreach(json_object_get(res, "unknown"), i, id)
    {
        long long did = json_integer_value(id);
        if (resynced++ == RESYNC_MAX)
            break; /* still unknown: their next ping reports them again */
        for (size_t k = 0; k < n; k++) {
            if (p[k].driver_id == did) {
                driver_presence_resync(did, p[k].lat, p[k].lng);
                break;
            }
        }
    }
out:
    if (!body)
        json_decref(list);
    json_decref(body);
    json_decref(res);
    return err;
}

static void flush_core(void)
{
    driver_position_t *p = NULL;
    size_t n = 0;
    queue_take(FLAG_CORE, &p, &n);
    for (size_t off = 0; off < n; off += CORE_BATCH_MAX) {
        size_t k = n - off < CORE_BATCH_MAX ? n - off : CORE_BATCH_MAX;
        antar_trace_t t;
        antar_trace_new(&t);
        antar_trace_set_current(&t);
        if (core_send(p + off, k) != ANTAR_OK) {
            /* Core is away: keep the latest positions for the next round. */
            queue_return(FLAG_CORE, p + off, n - off);
            break;
        }
    }
    antar_trace_set_current(NULL);
    free(p);
}

/* The driver_position events of the drivers on a trip who pinged since the last round, in one
 * pipeline. Lost when Redis is away: positions are only ever worth their latest value. */
static void flush_events(void)
{
    antar_event_t *ev = NULL;
    size_t n = 0;
    pthread_mutex_lock(&g_mu);
    if (g_ev_q.n)
        ev = calloc(g_ev_q.n, sizeof *ev);
    for (size_t i = 0; i < g_ev_q.n; i++) {
        slot_t *s = slot_find(g_ev_q.ids[i]);
        s->flags &= ~FLAG_EV;
        if (!ev || s->trip_gen != g_trip_gen || s->order_id <= 0)
            continue;
        char at[32];
        antar_time_rfc3339(s->at_ms, at);
        ev[n].type = "driver_position";
        snprintf(ev[n].aud, sizeof ev[n].aud, "order:%lld", s->order_id);
        ev[n].data =
            json_pack("{s:I, s:I, s:f, s:f, s:s}", "order_id", (json_int_t)s->order_id, "driver_id",
                      (json_int_t)s->id, "lat", s->lat, "lng", s->lng, "at", at);
        if (ev[n].data)
            n++;
    }
    g_ev_q.n = 0;
    pthread_mutex_unlock(&g_mu);
    if (n)
        (void)antar_events_publish_many(ev, n);
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i].data);
    free(ev);
}

/* Who is on a trip, from the table: a new generation, so that a trip that ended anywhere stops
 * its events here too. Only drivers this process holds a slot for matter (others never ping
 * here). */
static void refresh_trips(void)
{
    json_t *rows = NULL, *row;
    size_t i;
    if (store_trips_active(&rows) != ANTAR_OK)
        return; /* keep what we knew until the table answers */
    pthread_mutex_lock(&g_mu);
    g_trip_gen++;
    json_array_foreach(rows, i, row)
    {
        slot_t *s = slot_find(json_integer_value(json_object_get(row, "driver_id")));
        if (s) {
            s->order_id = json_integer_value(json_object_get(row, "order_id"));
            s->trip_gen = g_trip_gen;
        }
    }
    pthread_mutex_unlock(&g_mu);
    json_decref(rows);
}

void position_trip(long long id, long long order_id)
{
    pthread_mutex_lock(&g_mu);
    slot_t *s = slot_find(id);
    if (s) {
        s->order_id = order_id;
        s->trip_gen = g_trip_gen;
    }
    pthread_mutex_unlock(&g_mu);
}

static void flush_db(void)
{
    driver_position_t *p = NULL;
    size_t n = 0;
    queue_take(FLAG_DB, &p, &n);
    if (n && store_drivers_set_locations(p, n) != ANTAR_OK)
        queue_return(FLAG_DB, p, n);
    free(p);
}

static void *worker(void *arg)
{
    (void)arg;
    long long next_db = antar_mono_ms() + g_db_flush_ms;
    long long next_trips = antar_mono_ms();
    pthread_mutex_lock(&g_mu);
    while (!g_stop) {
        struct timespec ts = antar_deadline_after(CLOCK_REALTIME, g_flush_ms);
        pthread_cond_timedwait(&g_cv, &g_mu, &ts);
        if (g_stop)
            break;
        pthread_mutex_unlock(&g_mu);
        flush_core();
        flush_events();
        if (antar_mono_ms() >= next_trips) {
            refresh_trips();
            next_trips = antar_mono_ms() + g_trips_ms;
        }
        if (antar_mono_ms() >= next_db) {
            flush_db();
            next_db = antar_mono_ms() + g_db_flush_ms;
        }
        pthread_mutex_lock(&g_mu);
    }
    pthread_mutex_unlock(&g_mu);
    /* Last round: what is still buffered goes out before the process ends. */
    flush_core();
    flush_events();
    flush_db();
    antar_db_thread_end();
    antar_httpc_thread_end();
    antar_kv_thread_end();
    return NULL;
}

int positions_start(void)
{
    g_flush_ms = antar_config_long("ANTAR_POSITION_FLUSH_MS", 100, 10, 1000);
    g_db_flush_ms = antar_config_long("ANTAR_POSITION_DB_FLUSH_MS", 5000, 100, 600000);
    g_trips_ms = antar_config_long("ANTAR_POSITION_TRIPS_MS", 1000, 100, 60000);
    g_stop = false;
    if (pthread_create(&g_thread, NULL, worker, NULL) != 0) {
        antar_logf("error", "positions: cannot start the flush thread");
        return -1;
    }
    g_running = true;
    return 0;
}

/* Release the table and both queues (the worker is not running). */
static void table_free(void)
{
    free(g_slots);
    free(g_core_q.ids);
    free(g_db_q.ids);
    free(g_ev_q.ids);
    g_slots = NULL;
    g_cap = g_used = 0;
    g_core_q = g_db_q = g_ev_q = (queue_t){0};
}

void positions_stop(void)
{
    if (!g_running)
        return;
    pthread_mutex_lock(&g_mu);
    g_stop = true;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
    pthread_join(g_thread, NULL);
    g_running = false;
    table_free();
}

antar_err_t position_set(long long id, double lat, double lng, long long now_ms)
{
    bool created = false, sync;
    pthread_mutex_lock(&g_mu);
    slot_t *s = slot_get(id, &created);
    if (!s) {
        pthread_mutex_unlock(&g_mu);
        return ANTAR_E_NOMEM;
    }
    s->lat = lat;
    s->lng = lng;
    s->at_ms = now_ms;
    sync = created || (s->flags & FLAG_SYNC);
    bool queued = slot_queue(s, FLAG_DB) && (sync || slot_queue(s, FLAG_CORE));
    /* On a trip: the customer watches this ping (published by the flusher, not here). */
    if (queued && s->order_id > 0 && s->trip_gen == g_trip_gen)
        (void)slot_queue(s, FLAG_EV);
    pthread_mutex_unlock(&g_mu);
    if (!queued)
        return ANTAR_E_NOMEM;
    if (!sync)
        return ANTAR_OK;
    driver_position_t p = {id, lat, lng, now_ms};
    antar_err_t err = core_send(&p, 1);
    pthread_mutex_lock(&g_mu);
    s = slot_find(id); /* slots never go away, but a growing table moves them */
    if (err == ANTAR_OK) {
        s->flags &= ~FLAG_SYNC;
    } else {
        /* Not delivered: the next ping tries synchronously again, and the flusher meanwhile. */
        s->flags |= FLAG_SYNC;
        slot_queue(s, FLAG_CORE);
    }
    pthread_mutex_unlock(&g_mu);
    return err;
}

bool position_latest(long long id, double *lat, double *lng)
{
    pthread_mutex_lock(&g_mu);
    slot_t *s = slot_find(id);
    if (s) {
        *lat = s->lat;
        *lng = s->lng;
    }
    pthread_mutex_unlock(&g_mu);
    return s != NULL;
}

void position_went_online(long long id)
{
    pthread_mutex_lock(&g_mu);
    slot_t *s = slot_find(id);
    if (s)
        s->flags |= FLAG_SYNC;
    pthread_mutex_unlock(&g_mu);
}
