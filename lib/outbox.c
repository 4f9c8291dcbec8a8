/* outbox.c — transactional outbox (sender side) and inbox (receiver side).
 *
 * Messages are rows of the outbox table written in the caller's transaction. One delivery
 * thread per process sends them; several processes (instances of a service) may share the
 * table, so a message is claimed before it is sent: in a short transaction the thread locks
 * due rows (FOR UPDATE SKIP LOCKED) and pushes their next_at forward by a lease, commits, and
 * only then makes the HTTP calls, so no row lock is held across the network. A process that
 * dies mid-delivery leaves leased rows that become due again when the lease ends: delivery is
 * at least once, and receivers dedupe on the Idempotency-Key (antar_inbox_claim).
 *
 * Order per key: every message carries an ordering key naming what it is about ("order:42",
 * "driver:7"). Messages with the same target and key are delivered in id order: one waiting
 * for a retry (or leased by another process) is not due, so it holds back the later ones for
 * its key until it is done. Messages about different things do not wait for each other, so one
 * order whose message keeps failing cannot stall every other order's messages to that service.
 */
#include "antar/outbox.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antar/config.h"
#include "antar/db.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/trace.h"
#include "antar/util.h"

#include "db_internal.h"

#define BATCH_MAX 16 /* messages claimed per round */
#define KEY_MAX 64   /* ordering key length, as in the table */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define IDLE_WAIT_MS 1000
#define PURGE_EVERY_MS (10 * 60 * 1000)

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv;
static pthread_t g_thread;
static bool g_running;
static bool g_stop;
static bool g_kicked;
/* Rounds begun and finished, for antar_outbox_flush; g_done_cv is broadcast after each round. */
static unsigned long long g_rounds_begun;
static unsigned long long g_rounds_done;
static pthread_cond_t g_done_cv; /* made once, never destroyed: a flush may still wake on it */
static bool g_done_cv_made;

static const char *svc_key(antar_svc_t t)
{
    return antar_httpc_target_name(t);
}

static bool svc_from_key(const char *s, antar_svc_t *out)
{
    static const antar_svc_t all[] = {ANTAR_SVC_USER, ANTAR_SVC_DRIVER, ANTAR_SVC_CORE};
    for (size_t i = 0; i < 3; i++) {
        if (s && strcmp(s, svc_key(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

static bool method_ok(const char *m)
{
    static const char *const ok[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    for (size_t i = 0; m && i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

antar_err_t antar_outbox_add(antar_svc_t target, const char *key, const char *method,
                             const char *path, json_t *body)
{
    if (!method_ok(method) || !path || path[0] != '/' || strlen(path) > 255 || !key || !key[0] ||
        strlen(key) > KEY_MAX) {
        antar_logf("error", "antar_outbox_add: bad key, method or path");
        return ANTAR_E_INTERNAL;
    }
    if (!antar_db_in_tx()) {
        /* Without the caller's transaction the message and the state change could part ways,
         * which is the one thing the outbox exists to prevent. */
        antar_logf("error", "antar_outbox_add called outside a transaction (%s %s)", method, path);
        return ANTAR_E_INTERNAL;
    }
    char event_id[33];
    antar_random_hex(event_id, 16);
    char tp[56] = "";
    const antar_trace_t *cur = antar_trace_current();
    if (cur) {
        char child[17];
        antar_trace_child_header(cur, tp, child);
        antar_trace_note_async();
    }
    char *json = NULL;
    if (body) {
        json = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!json)
            return ANTAR_E_NOMEM;
    }
    antar_err_t err = antar_db_exec(
        "INSERT INTO outbox (event_id, target, okey, method, path, body, traceparent, status,"
        " attempts, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0,"
        " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
        ANTAR_DB_ARGS(ANTAR_DB_S(event_id), ANTAR_DB_S(svc_key(target)), ANTAR_DB_S(key),
                      ANTAR_DB_S(method), ANTAR_DB_S(path), ANTAR_DB_S(json),
                      ANTAR_DB_S(tp[0] ? tp : NULL)),
        NULL, NULL);
    free(json);
    return err;
}

antar_err_t antar_inbox_claim(const char *event_id)
{
    if (!event_id || !event_id[0] || strlen(event_id) > 64)
        return ANTAR_E_BAD_REQUEST;
    return antar_db_exec("INSERT INTO inbox (event_id, received_at) VALUES (?, UTC_TIMESTAMP(3))",
                         ANTAR_DB_ARGS(ANTAR_DB_S(event_id)), NULL, NULL);
}

/* ---- delivery ---------------------------------------------------------------------------- */

/* A message's stream: its target and ordering key, "target key". */
typedef char stream_t[16 + 1 + KEY_MAX + 1];

static void stream_of(json_t *row, stream_t out)
{
    const char *t = json_string_value(json_object_get(row, "target"));
    const char *k = json_string_value(json_object_get(row, "okey"));
    snprintf(out, sizeof(stream_t), "%s %s", t ? t : "", k ? k : "");
}

/* The streams (or whole targets) held back for the rest of a round. */
typedef struct {
    stream_t names[BATCH_MAX];
    size_t n;
} stream_set_t;

static bool sset_has(const stream_set_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return true;
    return false;
}

static void sset_add(stream_set_t *s, const char *name)
{
    if (!sset_has(s, name) && s->n < BATCH_MAX)
        snprintf(s->names[s->n++], sizeof(stream_t), "%s", name);
}

static long lease_ms(void)
{
    const antar_config_t *cfg = antar_config();
    long per = cfg && cfg->timeout_ms > 0 ? cfg->timeout_ms : 3000;
    /* Long enough for a whole batch of calls that each run into the timeout. */
    return per * BATCH_MAX + 30000;
}

/* Claims up to BATCH_MAX due messages, in id order, into *out (array of row objects).
 * Returns ANTAR_OK (possibly with an empty array) or the database error.
 *
 * The scan reads only due messages (ix_outbox_due) that no earlier pending message of their
 * stream holds back (ix_outbox_key): however many messages wait for a retry, the due ones
 * behind them for other streams are found. */
static antar_err_t claim(json_t **out)
{
    json_t *scan = NULL, *claimed = json_array();
    stream_set_t blocked = {0};
    if (!claimed)
        return ANTAR_E_NOMEM;

    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        goto fail;
    err = antar_db_query(
        "SELECT o.id, o.target, o.okey FROM outbox o WHERE o.status = 'pending' AND"
        " o.next_at <= UTC_TIMESTAMP(3) AND NOT EXISTS (SELECT 1 FROM outbox p WHERE"
        " p.status = 'pending' AND p.target = o.target AND p.okey = o.okey AND p.id < o.id AND"
        " p.next_at > UTC_TIMESTAMP(3)) ORDER BY o.id LIMIT ?",
        ANTAR_DB_ARGS(ANTAR_DB_I(BATCH_MAX)), &scan);
    if (err != ANTAR_OK)
        goto fail;
    size_t i;
    json_t *srow;
    json_array_foreach(scan, i, srow)
    {
        long long id = json_integer_value(json_object_get(srow, "id"));
        stream_t name;
        stream_of(srow, name);
        if (sset_has(&blocked, name))
            continue;
        json_t *m = NULL;
        /* The locking read sees the latest committed row: another process's lease or a
         * delivery that finished since our snapshot drops it, and the rest of its stream
         * waits for it. */
        err = antar_db_query_one(
            "SELECT id, event_id, target, okey, method, path, body, traceparent, attempts FROM"
            " outbox WHERE id = ? AND status = 'pending' AND next_at <= UTC_TIMESTAMP(3)"
            " FOR UPDATE SKIP LOCKED",
            ANTAR_DB_ARGS(ANTAR_DB_I(id)), &m);
        if (err == ANTAR_E_NOT_FOUND) {
            err = ANTAR_OK;
            sset_add(&blocked, name);
            continue;
        }
        if (err != ANTAR_OK)
            goto fail;
        err = antar_db_exec("UPDATE outbox SET next_at = TIMESTAMPADD(MICROSECOND, ?,"
                            " UTC_TIMESTAMP(3)) WHERE id = ?",
                            ANTAR_DB_ARGS(ANTAR_DB_I((long long)lease_ms() * 1000), ANTAR_DB_I(id)),
                            NULL, NULL);
        if (err != ANTAR_OK) {
            json_decref(m);
            goto fail;
        }
        json_array_append_new(claimed, m);
    }
    err = antar_db_commit();
    if (err != ANTAR_OK)
        goto fail;
    json_decref(scan);
    *out = claimed;
    return ANTAR_OK;
fail:
    antar_db_rollback();
    json_decref(scan);
    json_decref(claimed);
    return err;
}

static long backoff_ms(long long attempts_before)
{
    return antar_backoff_ms(BACKOFF_FIRST_MS, BACKOFF_MAX_MS, attempts_before);
}

typedef enum { OUT_DELIVERED, OUT_RETRY, OUT_DEAD } outcome_t;

/* True when a 409 says "not yet" (ANTAR_E_NOT_YET) rather than "moved on". */
static bool not_yet(const antar_httpc_res_t *res)
{
    json_t *e = json_object_get(res->body, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    return code && strcmp(code, antar_err_code(ANTAR_E_NOT_YET)) == 0;
}

static outcome_t classify(antar_err_t err, const antar_httpc_res_t *res)
{
    long status = res->status;
    if (err != ANTAR_OK)
        return OUT_RETRY; /* timeout, unreachable, no token, broken response */
    if (status == 409 && not_yet(res)) {
        antar_metrics_count("antar_outbox_not_yet_total", NULL, NULL);
        return OUT_RETRY;
    }
    if ((status >= 200 && status < 300) || status == 409)
        return OUT_DELIVERED;
    /* 401: our service token was refused (rotated keys, receiver not ready), which says
     * nothing about the message itself; keep it rather than lose it. */
    if (status == 408 || status == 429 || status == 401)
        return OUT_RETRY;
    if (status >= 400 && status < 500)
        return OUT_DEAD;
    return OUT_RETRY;
}

/* The target's circuit is open: the message waits until the breaker would let a call through
 * again, without an attempt counted (the receiver was not even asked, so its backoff should not
 * grow and nothing should look like a failing message). When the circuit half-opens, the next
 * delivery may be the probe: a background message is the best probe, no user waits on it. */
static void hold_for_circuit(long long id, const char *target, long wait_ms)
{
    (void)antar_db_exec("UPDATE outbox SET last_error = 'circuit_open',"
                        " next_at = TIMESTAMPADD(MICROSECOND, ?, UTC_TIMESTAMP(3)) WHERE id = ?",
                        ANTAR_DB_ARGS(ANTAR_DB_I((long long)wait_ms * 1000), ANTAR_DB_I(id)), NULL,
                        NULL);
    antar_log_json("info", "outbox_held",
                   json_pack("{s:I,s:s,s:i}", "id", (json_int_t)id, "target", target, "retry_ms",
                             (int)wait_ms));
}

/* Sends one claimed message and records the result. Returns its outcome; *retry_ms is set
 * for a retry, *unreachable when the receiver was not reached (or its circuit is open). */
static outcome_t deliver_one(json_t *m, long *retry_ms, bool *unreachable)
{
    long long id = json_integer_value(json_object_get(m, "id"));
    const char *event_id = json_string_value(json_object_get(m, "event_id"));
    const char *target_s = json_string_value(json_object_get(m, "target"));
    const char *method = json_string_value(json_object_get(m, "method"));
    const char *path = json_string_value(json_object_get(m, "path"));
    const char *body_s = json_string_value(json_object_get(m, "body"));
    const char *tp = json_string_value(json_object_get(m, "traceparent"));
    long long attempts = json_integer_value(json_object_get(m, "attempts"));

    antar_trace_t t;
    /* The delivery continues the trace of the request that queued the message. */
    antar_trace_from_header(&t, tp);
    antar_trace_set_current(&t);

    antar_svc_t target;
    json_t *body = NULL;
    antar_err_t err = ANTAR_OK;
    antar_httpc_res_t res = {0};
    char last_error[256] = "";
    outcome_t oc;

    if (!svc_from_key(target_s, &target) || !method || !path || !event_id) {
        snprintf(last_error, sizeof(last_error), "unknown target or malformed row");
        oc = OUT_DEAD;
        goto record;
    }
    if (body_s) {
        json_error_t jerr;
        body = json_loads(body_s, JSON_DECODE_ANY, &jerr);
        if (!body) {
            snprintf(last_error, sizeof(last_error), "stored body is not JSON");
            oc = OUT_DEAD;
            goto record;
        }
    }
    long held = antar_httpc_circuit_wait_ms(target);
    if (held > 0) {
        hold_for_circuit(id, target_s, held);
        *retry_ms = held;
        *unreachable = true;
        oc = OUT_RETRY;
        goto done;
    }
    char idem[80];
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", event_id);
    const char *hdrs[] = {idem, NULL};
    err = antar_httpc_call(target, method, path, body, hdrs, &res);
    oc = classify(err, &res);
    *unreachable = err != ANTAR_OK;
    if (err != ANTAR_OK)
        snprintf(last_error, sizeof(last_error), "%s", antar_err_code(err));
    else if (oc != OUT_DELIVERED)
        snprintf(last_error, sizeof(last_error), "http %ld", res.status);

record:;
    antar_err_t derr;
    if (oc == OUT_DELIVERED) {
        derr = antar_db_exec("UPDATE outbox SET status = 'delivered', attempts = attempts + 1,"
                             " delivered_at = UTC_TIMESTAMP(3), last_error = NULL WHERE id = ?",
                             ANTAR_DB_ARGS(ANTAR_DB_I(id)), NULL, NULL);
    } else if (oc == OUT_DEAD) {
        derr = antar_db_exec("UPDATE outbox SET status = 'dead', attempts = attempts + 1, "
                             "last_error = ? WHERE id = ?",
                             ANTAR_DB_ARGS(ANTAR_DB_S(last_error), ANTAR_DB_I(id)), NULL, NULL);
        antar_log_json("error", "outbox_dead",
                       json_pack("{s:I,s:s?,s:s?,s:s?,s:s}", "id", (json_int_t)id, "target",
                                 target_s, "method", method, "path", path, "error", last_error));
    } else {
        *retry_ms = backoff_ms(attempts);
        derr =
            antar_db_exec("UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                          " next_at = TIMESTAMPADD(MICROSECOND, ?, UTC_TIMESTAMP(3)) WHERE id = ?",
                          ANTAR_DB_ARGS(ANTAR_DB_S(last_error),
                                        ANTAR_DB_I((long long)*retry_ms * 1000), ANTAR_DB_I(id)),
                          NULL, NULL);
        antar_log_json("warn", "outbox_retry",
                       json_pack("{s:I,s:s?,s:s?,s:s,s:I,s:i}", "id", (json_int_t)id, "target",
                                 target_s, "path", path, "error", last_error, "attempts",
                                 (json_int_t)(attempts + 1), "retry_ms", (int)*retry_ms));
    }
    if (derr != ANTAR_OK) {
        /* The lease runs out and the message is sent again; the receiver dedupes. */
        antar_logf("error", "outbox: could not record the outcome of message %lld", id);
    }
done:
    antar_httpc_res_clean(&res);
    json_decref(body);
    antar_trace_set_current(NULL);
    return oc;
}

/* Claimed messages behind a failed one for the same stream (or target) go back to the queue at
 * once; the failed one's retry time then holds back its stream. */
static void release(long long id)
{
    (void)antar_db_exec("UPDATE outbox SET next_at = UTC_TIMESTAMP(3) WHERE id = ? AND"
                        " status = 'pending'",
                        ANTAR_DB_ARGS(ANTAR_DB_I(id)), NULL, NULL);
}

static bool stopping(void)
{
    pthread_mutex_lock(&g_mu);
    bool stop = g_stop;
    pthread_mutex_unlock(&g_mu);
    return stop;
}

/* One round. Returns how many messages were claimed; *wait_ms is lowered to the soonest retry. */
static size_t round_once(long *wait_ms)
{
    json_t *batch = NULL;
    antar_err_t err = claim(&batch);
    if (err != ANTAR_OK) {
        antar_log_json("warn", "outbox_claim_failed",
                       json_pack("{s:s}", "error", antar_err_code(err)));
        return 0;
    }
    /* After a failure, the rest of that message's stream waits for its retry; after a call
     * that did not reach the receiver at all, the rest of the batch for that whole target goes
     * back to the queue rather than spend a timeout each (the circuit breaker takes over). */
    stream_set_t failed = {0}, down = {0};
    size_t i;
    json_t *m;
    json_array_foreach(batch, i, m)
    {
        const char *t = json_string_value(json_object_get(m, "target"));
        stream_t name;
        stream_of(m, name);
        /* On stop, what is not sent yet goes back to the queue for the next process instead
         * of waiting out its lease. */
        if (sset_has(&failed, name) || (t && sset_has(&down, t)) || stopping()) {
            release(json_integer_value(json_object_get(m, "id")));
            continue;
        }
        long retry = 0;
        bool unreachable = false;
        if (deliver_one(m, &retry, &unreachable) == OUT_RETRY) {
            sset_add(&failed, name);
            if (unreachable && t)
                sset_add(&down, t);
            if (retry < *wait_ms)
                *wait_ms = retry;
        }
    }
    size_t n = json_array_size(batch);
    json_decref(batch);
    return n;
}

static void purge(void)
{
    /* Delivered messages are kept a week for inspection; dead ones until a human looks. */
    (void)antar_db_exec("DELETE FROM outbox WHERE status = 'delivered' AND"
                        " delivered_at < UTC_TIMESTAMP(3) - INTERVAL 7 DAY LIMIT 1000",
                        ANTAR_DB_NOARGS, NULL, NULL);
}

static void *worker(void *arg)
{
    (void)arg;
    /* The outbox has its own retry schedule; retrying inside a call too would only hold up the
     * rest of the batch. */
    antar_httpc_thread_retries(false);
    long long last_purge = 0;
    pthread_mutex_lock(&g_mu);
    while (!g_stop) {
        g_kicked = false;
        unsigned long long round = ++g_rounds_begun;
        pthread_mutex_unlock(&g_mu);

        long wait = IDLE_WAIT_MS;
        size_t n = round_once(&wait);
        long long now = antar_mono_ms();
        if (now - last_purge > PURGE_EVERY_MS) {
            purge();
            last_purge = now;
        }

        pthread_mutex_lock(&g_mu);
        g_rounds_done = round;
        pthread_cond_broadcast(&g_done_cv);
        if (n == BATCH_MAX && wait == IDLE_WAIT_MS)
            continue; /* a full batch went out cleanly: there may be more right away */
        if (g_stop || g_kicked)
            continue;
        struct timespec ts = antar_deadline_after(CLOCK_MONOTONIC, wait);
        while (!g_stop && !g_kicked) {
            if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) != 0)
                break; /* timed out */
        }
    }
    pthread_mutex_unlock(&g_mu);
    antar_db_thread_end();
    antar_httpc_thread_end();
    return NULL;
}

int antar_outbox_start(void)
{
    pthread_mutex_lock(&g_mu);
    if (g_running) {
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cv, &ca);
    if (!g_done_cv_made) {
        pthread_cond_init(&g_done_cv, &ca);
        g_done_cv_made = true;
    }
    pthread_condattr_destroy(&ca);
    g_stop = false;
    g_kicked = false;
    if (pthread_create(&g_thread, NULL, worker, NULL) != 0) {
        pthread_cond_destroy(&g_cv);
        pthread_mutex_unlock(&g_mu);
        return -1;
    }
    g_running = true;
    pthread_mutex_unlock(&g_mu);
    return 0;
}

void antar_outbox_kick(void)
{
    pthread_mutex_lock(&g_mu);
    if (g_running) {
        g_kicked = true;
        pthread_cond_signal(&g_cv);
    }
    pthread_mutex_unlock(&g_mu);
}

void antar_outbox_flush(long timeout_ms)
{
    struct timespec ts = antar_deadline_after(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&g_mu);
    if (!g_running || g_stop) {
        pthread_mutex_unlock(&g_mu);
        return;
    }
    /* The round in progress may have claimed before the caller's commit; the next one to
     * begin cannot have. */
    unsigned long long want = g_rounds_begun + 1;
    g_kicked = true;
    pthread_cond_signal(&g_cv);
    while (g_running && !g_stop && g_rounds_done < want)
        if (pthread_cond_timedwait(&g_done_cv, &g_mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&g_mu);
}

void antar_outbox_stop(void)
{
    pthread_mutex_lock(&g_mu);
    if (!g_running) {
        pthread_mutex_unlock(&g_mu);
        return;
    }
    g_stop = true;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
    /* The thread finishes the message in flight (bounded by the call timeout) and exits. */
    pthread_join(g_thread, NULL);
    pthread_mutex_lock(&g_mu);
    g_running = false;
    pthread_cond_broadcast(&g_done_cv); /* nobody may wait on a stopped thread */
    pthread_cond_destroy(&g_cv);
    pthread_mutex_unlock(&g_mu);
}
