/* presence.c — the driver presence index, fed by driver-service: who is online, where, and
 * whether they are free. Also the lenient body readers shared by core's internal routes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "antar/log.h"
#include "antar/util.h"
#include "dispatch.h"
#include "dispatch_store.h"
#include "fare_model.h"

/* ---- lenient body readers (dispatch.h) ---------------------------------------------------- */

static json_t *body_get(antar_req_t *req, const char *name, bool required, bool *present)
{
    json_t *v = json_object_get(antar_req_body(req), name);
    if (json_is_null(v))
        v = NULL;
    if (present)
        *present = v != NULL;
    if (!v && required)
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, name, "%s is required", name);
    return v;
}

bool core_body_number(antar_req_t *req, const char *name, bool required, double min, double max,
                      double *out, bool *present)
{
    bool here = false;
    json_t *v = body_get(req, name, required, &here);
    if (present)
        *present = here;
    if (!v)
        return !required;
    double d;
    if (json_is_number(v))
        d = json_number_value(v);
    else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        d = strtod(s, &end);
        if (!*s || *end)
            goto bad;
    } else
        goto bad;
    if (!isfinite(d) || d < min || d > max)
        goto bad;
    *out = d;
    return true;
bad:
    antar_http_fail(req, ANTAR_E_INVALID_FIELD, name, "%s must be a number between %g and %g", name,
                    min, max);
    return false;
}

bool core_body_int(antar_req_t *req, const char *name, bool required, long long min, long long max,
                   long long *out, bool *present)
{
    bool here = false;
    json_t *v = body_get(req, name, required, &here);
    if (present)
        *present = here;
    if (!v)
        return !required;
    long long n;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        n = strtoll(s, &end, 10);
        if (!*s || *end)
            goto bad;
    } else
        goto bad;
    if (n < min || n > max)
        goto bad;
    *out = n;
    return true;
bad:
    antar_http_fail(req, ANTAR_E_INVALID_FIELD, name, "%s must be an integer between %lld and %lld",
                    name, min, max);
    return false;
}

bool core_body_string(antar_req_t *req, const char *name, bool required, size_t maxlen,
                      const char **out)
{
    json_t *v = body_get(req, name, required, NULL);
    if (!v)
        return !required;
    if (!json_is_string(v) || json_string_length(v) > maxlen)
        goto bad;
    const char *s = json_string_value(v);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            goto bad;
    if (strlen(s) != json_string_length(v)) /* an embedded NUL */
        goto bad;
    *out = s;
    return true;
bad:
    antar_http_fail(req, ANTAR_E_INVALID_FIELD, name, "%s must be a string of at most %zu bytes",
                    name, maxlen);
    return false;
}

bool core_body_bool(antar_req_t *req, const char *name, bool required, bool *out, bool *present)
{
    bool here = false;
    json_t *v = body_get(req, name, required, &here);
    if (present)
        *present = here;
    if (!v)
        return !required;
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else if (json_is_string(v) && strcmp(json_string_value(v), "true") == 0)
        *out = true;
    else if (json_is_string(v) && strcmp(json_string_value(v), "false") == 0)
        *out = false;
    else {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, name, "%s must be true or false", name);
        return false;
    }
    return true;
}

/* ---- routes -------------------------------------------------------------------------------- */

static bool body_vehicle(antar_req_t *req, bool required, const char **vt)
{
    const char *s = NULL;
    if (!core_body_string(req, "vehicle_type", required, 16, &s))
        return false;
    if (!s)
        return true;
    if (core_vehicle_parse(s) < 0) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "vehicle_type",
                        "vehicle_type must be motorcycle or car");
        return false;
    }
    *vt = s;
    return true;
}

/* PUT /internal/drivers/{id}/presence {status, vehicle_type, lat?, lng?} */
void core_presence_put(antar_req_t *req)
{
    long long id;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    const char *status = NULL, *vt = NULL;
    double lat = 0, lng = 0;
    bool has_lat = false, has_lng = false;
    if (!core_body_string(req, "status", true, 16, &status))
        return;
    bool online = strcmp(status, "online") == 0;
    if (!online && strcmp(status, "offline") != 0) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "status", "status must be online or offline");
        return;
    }
    if (!body_vehicle(req, online, &vt))
        return;
    if (!core_body_number(req, "lat", false, -90, 90, &lat, &has_lat) ||
        !core_body_number(req, "lng", false, -180, 180, &lng, &has_lng))
        return;
    if (has_lat != has_lng) {
        const char *missing = has_lat ? "lng" : "lat";
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, missing, "lat and lng go together");
        return;
    }
    antar_err_t err = online ? core_store_presence_online(id, vt, has_lat, lat, lng, antar_now_ms())
                             : core_store_presence_offline(id);
    if (err != ANTAR_OK) {
        antar_http_fail(req, err, NULL, NULL);
        return;
    }
    json_t *res = json_pack("{sI ss}", "driver_id", (json_int_t)id, "status", status);
    if (vt)
        json_object_set_new(res, "vehicle_type", json_string(vt));
    if (has_lat) {
        json_object_set_new(res, "lat", json_real(lat));
        json_object_set_new(res, "lng", json_real(lng));
    }
    antar_http_reply(req, 200, res);
}

/* PUT /internal/drivers/{id}/availability {available, order_id?} */
void core_availability_put(antar_req_t *req)
{
    long long id, order_id = 0;
    bool available = false, has_order = false;
    if (antar_req_param_id(req, "id", &id) != ANTAR_OK)
        return;
    if (!core_body_bool(req, "available", true, &available, NULL) ||
        !core_body_int(req, "order_id", false, 1, 9007199254740992LL, &order_id, &has_order))
        return;
    if (!available && !has_order) {
        antar_http_fail(req, ANTAR_E_MISSING_FIELD, "order_id",
                        "order_id is required when available is false");
        return;
    }
    bool applied = false;
    antar_err_t err = core_store_availability(id, available, order_id, &applied);
    if (err != ANTAR_OK) {
        antar_http_fail(req, err, NULL, NULL);
        return;
    }
    if (!applied) /* a late message about an older order: the driver has moved on */
        antar_log_json(
            "info", "availability_ignored",
            json_pack("{sI sI}", "driver_id", (json_int_t)id, "order_id", (json_int_t)order_id));
    json_t *res = json_pack("{sI sb sb}", "driver_id", (json_int_t)id, "available", available,
                            "applied", applied);
    if (has_order)
        json_object_set_new(res, "order_id", json_integer(order_id));
    antar_http_reply(req, 200, res);
}
