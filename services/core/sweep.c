/* sweep.c — core's busy sweep: a driver held busy for an order that is over is freed.
 *
 * A driver becomes busy when driver-service says they accepted, and free again when it says the
 * trip ended (outbox messages, so never lost on the way). But the state lives in Redis, and a
 * master that dies before its replica has a write loses it (replication is asynchronous): a
 * "free" lost that way would keep the driver out of dispatch for good, though driver-service
 * and user-service both know the trip is over. So every busy driver is looked at again a while
 * after they became busy, and then every while: the order's owner, user-service, is asked
 * whether the order is still this driver's and still on. When it is over (completed,
 * cancelled, expired, another driver's, or unknown), the driver is freed with the same guarded
 * write as driver-service's message (only if still busy with that order). Each repair is
 * logged and counted in antar_busy_sweep_repairs_total{kind}.
 */
#include <stdio.h>
#include <string.h>

#include "antar/config.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/ticker.h"
#include "antar/trace.h"
#include "antar/util.h"
#include "core.h"
#include "dispatch_store.h"

/* At most this many drivers per pass: each is one GET to user-service. */
#define SWEEP_BATCH 50

static antar_ticker_t *g_ticker;

/* The order's state as user-service sees it: true when the order is over for this driver;
 * *kind says why. false when it is still theirs, or when user-service could not say (the
 * driver is looked at again a period later). */
static bool order_over(long long driver_id, long long order_id, const char **kind)
{
    char path[96];
    snprintf(path, sizeof path, "/internal/orders/%lld", order_id);
    antar_httpc_res_t res;
    bool over = false;
    antar_err_t err = antar_httpc_outcome(
        antar_httpc_call(ANTAR_SVC_USER, "GET", path, NULL, NULL, &res), &res, NULL);
    json_t *o = antar_httpc_result(&res);
    const char *st = json_string_value(json_object_get(o, "status"));
    json_t *drv = json_object_get(o, "driver_id");
    if (err == ANTAR_E_NOT_FOUND) {
        over = true, *kind = "order_unknown";
    } else if (err != ANTAR_OK || !st) {
        /* no answer to act on */
    } else if (strcmp(st, "completed") == 0 || strcmp(st, "cancelled") == 0 ||
               strcmp(st, "expired") == 0) {
        over = true, *kind = "order_over";
    } else if (json_is_integer(drv) && json_integer_value(drv) != driver_id) {
        over = true, *kind = "order_other_driver";
    }
    antar_httpc_res_clean(&res);
    return over;
}

static void pass(void *arg)
{
    (void)arg;
    core_busy_t due[SWEEP_BATCH];
    size_t n = 0;
    if (core_store_busy_due(antar_now_ms(), due, SWEEP_BATCH, &n) != ANTAR_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *kind = NULL;
        bool applied = false;
        antar_trace_begin();
        if (!order_over(due[i].driver_id, due[i].order_id, &kind))
            continue;
        if (core_store_availability(due[i].driver_id, true, due[i].order_id, &applied) !=
                ANTAR_OK ||
            !applied)
            continue;
        antar_metrics_count("antar_busy_sweep_repairs_total", "kind", kind);
        antar_log_json("warn", "busy_driver_freed",
                       json_pack("{sI sI ss}", "driver_id", (json_int_t)due[i].driver_id,
                                 "order_id", (json_int_t)due[i].order_id, "kind", kind));
    }
    antar_trace_set_current(NULL);
    /* A full batch: more may be due (after a failover, every busy driver at once), so go on. */
    if (n == SWEEP_BATCH)
        antar_ticker_kick(g_ticker);
}

int core_sweep_start(void)
{
    long check_s = antar_config_long("ANTAR_BUSY_CHECK_S", 60, 1, 86400);
    long period_ms = antar_config_long("ANTAR_BUSY_SWEEP_MS", 2000, 100, 600000);
    core_store_busy_check_set((long long)check_s * 1000);
    g_ticker = antar_ticker_start("busy_sweep", period_ms, pass, NULL);
    return g_ticker ? 0 : -1;
}

void core_sweep_stop(void)
{
    antar_ticker_stop(g_ticker);
    g_ticker = NULL;
}
