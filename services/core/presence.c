/* presence.c — the driver presence index, fed by driver-service through routes.c: who is
 * online, where, and whether they are free. The state itself is in Redis (dispatch_store.c). */
#include <stdlib.h>

#include "antar/kv.h"
#include "antar/log.h"
#include "antar/util.h"
#include "core.h"
#include "dispatch.h"
#include "dispatch_store.h"

antar_err_t core_presence_set(long long driver_id, bool online, const char *vt, bool has_pos,
                              double lat, double lng, json_t **out)
{
    antar_err_t err =
        online ? core_store_presence_online(driver_id, vt, has_pos, lat, lng, antar_now_ms())
               : core_store_presence_offline(driver_id);
    if (err != ANTAR_OK)
        return err;
    json_t *res = json_pack("{sI ss}", "driver_id", (json_int_t)driver_id, "status",
                            online ? "online" : "offline");
    if (!res)
        return ANTAR_E_NOMEM;
    if (vt)
        json_object_set_new(res, "vehicle_type", json_string(vt));
    if (has_pos) {
        json_object_set_new(res, "lat", json_real(lat));
        json_object_set_new(res, "lng", json_real(lng));
    }
    *out = res;
    return ANTAR_OK;
}

antar_err_t core_availability_set(long long driver_id, bool available, long long order_id,
                                  json_t **out)
{
    bool applied = false;
    antar_err_t err = core_store_availability(driver_id, available, order_id, &applied);
    /* A driver freed (or taken) on a master that dies before its replica has it would stay
     * busy (or free) for good: the sender retries until the write is replicated. */
    if (err == ANTAR_OK)
        err = antar_kv_replicated(KV_REPLICATED_MS);
    if (err != ANTAR_OK)
        return err;
    if (!applied) /* a late message about an older order: the driver has moved on */
        antar_log_json("info", "availability_ignored",
                       json_pack("{sI sI}", "driver_id", (json_int_t)driver_id, "order_id",
                                 (json_int_t)order_id));
    json_t *res = json_pack("{sI sb sb}", "driver_id", (json_int_t)driver_id, "available",
                            available, "applied", applied);
    if (!res)
        return ANTAR_E_NOMEM;
    if (order_id)
        json_object_set_new(res, "order_id", json_integer(order_id));
    *out = res;
    return ANTAR_OK;
}

antar_err_t core_presence_positions(const core_position_t *p, size_t n, json_t **out)
{
    long long applied = 0, ignored = 0;
    size_t n_unknown = 0;
    long long *unknown = calloc(n ? n : 1, sizeof *unknown);
    if (!unknown)
        return ANTAR_E_NOMEM;
    antar_err_t err =
        core_store_positions(p, n, antar_now_ms(), &applied, &ignored, unknown, &n_unknown);
    json_t *res = NULL, *ids = NULL;
    if (err != ANTAR_OK)
        goto out;
    err = ANTAR_E_NOMEM;
    if (!(ids = json_array()))
        goto out;
    for (size_t i = 0; i < n_unknown; i++)
        if (json_array_append_new(ids, json_integer(unknown[i])) != 0)
            goto out;
    res = json_pack("{sI sI sO}", "applied", (json_int_t)applied, "ignored", (json_int_t)ignored,
                    "unknown", ids);
    if (!res)
        goto out;
    *out = res;
    err = ANTAR_OK;
out:
    json_decref(ids);
    free(unknown);
    return err;
}
