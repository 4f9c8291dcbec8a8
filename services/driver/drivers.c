/* driver-service: the driver's own record, presence, earnings, credentials and ratings. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/password.h"
#include "antar/util.h"
#include "driver.h"

antar_err_t driver_call(antar_svc_t target, const char *method, const char *path, json_t *body,
                        json_t **result)
{
    return driver_call_keyed(target, method, path, body, NULL, result);
}

antar_err_t driver_call_keyed(antar_svc_t target, const char *method, const char *path,
                              json_t *body, const char *key, json_t **result)
{
    antar_httpc_res_t res;
    char hdr[96];
    const char *hdrs[] = {hdr, NULL};
    if (key)
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
    antar_err_t call = antar_httpc_call(target, method, path, body, key ? hdrs : NULL, &res);
    antar_err_t err = antar_httpc_outcome(call, &res, NULL);
    if (err == ANTAR_OK && result) {
        json_t *r = antar_httpc_result(&res);
        *result = r ? json_incref(r) : json_object();
    } else if (call == ANTAR_OK && antar_err_status(err) >= 500) {
        /* The peer answered that it failed: for the driver that is no answer yet, like a
         * timeout (the change is kept and confirmed later). */
        err = ANTAR_E_UNAVAILABLE;
    } else if (antar_err_status(err) == 409) {
        err = ANTAR_E_CONFLICT;
    } else if (antar_err_status(err) < 500 && err != ANTAR_OK && err != ANTAR_E_NOT_FOUND) {
        /* Any other refusal means we sent something the other side does not accept: a bug
         * between services, reported as such rather than blamed on the client. */
        antar_logf("warn", "%s %s %s answered %ld", antar_httpc_target_name(target), method, path,
                   res.status);
        err = ANTAR_E_UPSTREAM;
    }
    antar_httpc_res_clean(&res);
    return err;
}

bool driver_plate_normalize(const char *s, char out[DRIVER_PLATE_MAX])
{
    char pre[3] = {0}, num[5] = {0}, suf[4] = {0};
    size_t np = 0, nn = 0, ns = 0;
    const char *p = s;
    while (*p == ' ')
        p++;
    while (isascii((unsigned char)*p) && isalpha((unsigned char)*p)) {
        if (np == 2)
            return false;
        pre[np++] = (char)toupper((unsigned char)*p++);
    }
    while (*p == ' ')
        p++;
    while (isascii((unsigned char)*p) && isdigit((unsigned char)*p)) {
        if (nn == 4)
            return false;
        num[nn++] = *p++;
    }
    while (*p == ' ')
        p++;
    while (isascii((unsigned char)*p) && isalpha((unsigned char)*p)) {
        if (ns == 3)
            return false;
        suf[ns++] = (char)toupper((unsigned char)*p++);
    }
    while (*p == ' ')
        p++;
    if (*p != '\0' || np == 0 || nn == 0)
        return false;
    if (ns)
        snprintf(out, DRIVER_PLATE_MAX, "%s %s %s", pre, num, suf);
    else
        snprintf(out, DRIVER_PLATE_MAX, "%s %s", pre, num);
    return true;
}

/* A name of spaces only passes the length check but names nobody. */
static bool blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* Emails are kept normalized (antar_email_normalize): that is how they compare. */
static void lower_copy(const char *s, char *out, size_t len)
{
    snprintf(out, len, "%s", s);
    antar_email_normalize(out);
}

static json_t *driver_own_json(json_t *row)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "id",
                     json_object_get(row, "id"), "name", json_object_get(row, "name"), "email",
                     json_object_get(row, "email"), "phone", json_object_get(row, "phone"),
                     "vehicle_type", json_object_get(row, "vehicle_type"), "plate_number",
                     json_object_get(row, "plate_number"), "rating", json_object_get(row, "rating"),
                     "status", json_object_get(row, "status"), "created_at",
                     json_object_get(row, "created_at"));
}

antar_err_t driver_get(long long id, json_t **out)
{
    json_t *row = NULL;
    antar_err_t err = store_driver_get(id, &row);
    if (err != ANTAR_OK)
        return err;
    *out = driver_own_json(row);
    json_decref(row);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

/* Refusals of one field, for the 4xx naming it. */
static antar_err_t invalid(antar_outcome_t *why, const char *field)
{
    return antar_outcome_fail(why, ANTAR_E_INVALID_FIELD, field, "%s is not valid", field);
}

static antar_err_t taken(antar_outcome_t *why, const char *field)
{
    return antar_outcome_fail(why, ANTAR_E_DUPLICATE, field, "%s is already registered", field);
}

antar_err_t driver_signup(const driver_signup_t *in, json_t **out, antar_outcome_t *why)
{
    char email[256], plate[DRIVER_PLATE_MAX], hash[ANTAR_PASSWORD_HASH_MAX];
    long long id = 0;
    if (blank(in->name)) {
        return invalid(why, "name");
    }
    if (!antar_valid_email(in->email)) {
        return invalid(why, "email");
    }
    if (!antar_valid_phone(in->phone)) {
        return invalid(why, "phone");
    }
    if (!driver_plate_normalize(in->plate_number, plate)) {
        return invalid(why, "plate_number");
    }
    lower_copy(in->email, email, sizeof email);
    /* A cheap check first, so that an obvious duplicate does not cost an Argon2id hash. */
    const char *dup = store_driver_which_duplicate(email, in->phone, plate, 0);
    if (dup) {
        return taken(why, dup);
    }
    antar_err_t err = antar_password_hash(in->password, hash);
    if (err != ANTAR_OK)
        return err;
    err = store_driver_insert(in->name, email, in->phone, hash, in->vehicle_type, plate, &id);
    sodium_memzero(hash, sizeof hash);
    if (err == ANTAR_E_DUPLICATE) {
        /* A sign-up racing ours took the value between the check and the insert. */
        dup = store_driver_which_duplicate(email, in->phone, plate, 0);
        return taken(why, dup ? dup : "email");
    }
    if (err != ANTAR_OK)
        return err;
    return driver_get(id, out);
}

antar_err_t driver_update(long long id, const driver_patch_t *p, json_t **out, antar_outcome_t *why)
{
    char email[256], plate[DRIVER_PLATE_MAX];
    driver_patch_t q = *p;
    if (p->name && blank(p->name)) {
        return invalid(why, "name");
    }
    if (p->email) {
        if (!antar_valid_email(p->email)) {
            return invalid(why, "email");
        }
        lower_copy(p->email, email, sizeof email);
        q.email = email;
    }
    if (p->phone && !antar_valid_phone(p->phone)) {
        return invalid(why, "phone");
    }
    if (p->plate_number) {
        if (!driver_plate_normalize(p->plate_number, plate)) {
            return invalid(why, "plate_number");
        }
        q.plate_number = plate;
    }
    antar_err_t err = store_driver_update(id, &q);
    if (err == ANTAR_E_DUPLICATE) {
        const char *dup = store_driver_which_duplicate(q.email, q.phone, q.plate_number, id);
        return taken(why, dup ? dup : "email");
    }
    if (err != ANTAR_OK)
        return err;
    return driver_get(id, out);
}

/* Tells core where and how the driver is; lat/lng are left out when NULL. */
static antar_err_t presence_sync(long long id, const char *status, json_t *row, json_t *lat,
                                 json_t *lng)
{
    char path[96];
    snprintf(path, sizeof path, "/internal/drivers/%lld/presence", id);
    json_t *body = json_pack("{s:s, s:O}", "status", status, "vehicle_type",
                             json_object_get(row, "vehicle_type"));
    if (!body)
        return ANTAR_E_NOMEM;
    if (json_is_number(lat) && json_is_number(lng)) {
        json_object_set(body, "lat", lat);
        json_object_set(body, "lng", lng);
    }
    antar_err_t err = driver_call(ANTAR_SVC_CORE, "PUT", path, body, NULL);
    json_decref(body);
    return err;
}

antar_err_t driver_set_status(long long id, const char *status, json_t **out)
{
    json_t *row = NULL;
    long long busy = 0;
    antar_err_t err = store_driver_get(id, &row);
    if (err != ANTAR_OK)
        return err;
    if (strcmp(status, "offline") == 0) {
        err = store_driver_active_trips(id, &busy);
        if (err != ANTAR_OK)
            goto done;
        if (busy > 0) {
            err = ANTAR_E_CONFLICT;
            goto done;
        }
    }
    /* Core first: when it cannot take the change, nothing changed here either. The position
     * is the latest this process holds (the row's is written in batches, seconds behind). */
    json_t *lat = json_object_get(row, "lat"), *lng = json_object_get(row, "lng"), *mlat = NULL,
           *mlng = NULL;
    double plat, plng;
    if (position_latest(id, &plat, &plng)) {
        lat = mlat = json_real(plat);
        lng = mlng = json_real(plng);
    }
    err = presence_sync(id, status, row, lat, lng);
    json_decref(mlat);
    json_decref(mlng);
    if (err != ANTAR_OK)
        goto done;
    if (strcmp(status, "online") == 0)
        position_went_online(id);
    err = store_driver_set_status(id, status);
    if (err != ANTAR_OK)
        goto done;
    err = driver_get(id, out);
done:
    json_decref(row);
    return err;
}

antar_err_t driver_set_location(long long id, double lat, double lng, json_t **out)
{
    char now[32];
    long long now_ms = antar_now_ms();
    antar_err_t err = position_set(id, lat, lng, now_ms);
    if (err != ANTAR_OK)
        return err;
    antar_time_rfc3339(now_ms, now);
    *out = json_pack("{s:f, s:f, s:s}", "lat", lat, "lng", lng, "updated_at", now);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

void driver_presence_resync(long long id, double lat, double lng)
{
    json_t *row = NULL, *jlat = json_real(lat), *jlng = json_real(lng);
    antar_err_t err = store_driver_get(id, &row);
    if (err == ANTAR_OK) {
        const char *status = json_string_value(json_object_get(row, "status"));
        err = presence_sync(id, status ? status : "offline", row, jlat, jlng);
    }
    if (err != ANTAR_OK)
        antar_log_json(
            "warn", "presence_resync_failed",
            json_pack("{sI ss}", "driver_id", (json_int_t)id, "error", antar_err_code(err)));
    json_decref(row);
    json_decref(jlat);
    json_decref(jlng);
}

antar_err_t driver_earnings(long long id, json_t **out)
{
    /* "Today" is the driver's day in Jakarta (UTC+7), expressed as a UTC DATETIME. */
    const long long day = 86400000LL, wib = 7 * 3600000LL;
    long long local = antar_now_ms() + wib;
    time_t start = (time_t)((local - local % day - wib) / 1000);
    struct tm tm;
    char day_start[32];
    json_t *row = NULL;
    gmtime_r(&start, &tm);
    strftime(day_start, sizeof day_start, "%Y-%m-%d %H:%M:%S", &tm);
    antar_err_t err = store_driver_earnings(id, day_start, &row);
    if (err != ANTAR_OK)
        return err;
    *out =
        json_pack("{s:O, s:s, s:O, s:O}", "total", json_object_get(row, "total"), "currency", "IDR",
                  "trips", json_object_get(row, "trips"), "today", json_object_get(row, "today"));
    json_decref(row);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

antar_err_t driver_verify_credentials(const char *username, const char *password, json_t **out)
{
    char login[256];
    json_t *row = NULL;
    char sub[48];
    if (strchr(username, '@'))
        lower_copy(username, login, sizeof login);
    else
        snprintf(login, sizeof login, "%s", username);
    antar_err_t err = store_driver_by_login(login, &row);
    if (err != ANTAR_OK && err != ANTAR_E_NOT_FOUND)
        return err;
    /* No account: the same Argon2id work as a wrong password, so timing reveals nothing. */
    const char *hash =
        err == ANTAR_OK ? json_string_value(json_object_get(row, "password_hash")) : NULL;
    if (!antar_password_check(hash, password)) {
        json_decref(row);
        /* No hashing slot in time: not an answer about the password (the route says 503). */
        return antar_password_busy() ? ANTAR_E_UNAVAILABLE : ANTAR_E_UNAUTHORIZED;
    }
    long long id = json_integer_value(json_object_get(row, "id"));
    snprintf(sub, sizeof sub, "driver:%lld", id);
    *out = json_pack("{s:I, s:s, s:O, s:O}", "id", (json_int_t)id, "sub", sub, "name",
                     json_object_get(row, "name"), "vehicle_type",
                     json_object_get(row, "vehicle_type"));
    json_decref(row);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

antar_err_t driver_public(long long id, json_t **out)
{
    json_t *row = NULL;
    antar_err_t err = store_driver_get(id, &row);
    if (err != ANTAR_OK)
        return err;
    *out =
        json_pack("{s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(row, "id"), "name",
                  json_object_get(row, "name"), "vehicle_type",
                  json_object_get(row, "vehicle_type"), "plate_number",
                  json_object_get(row, "plate_number"), "rating", json_object_get(row, "rating"));
    json_decref(row);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

antar_err_t driver_rate(long long id, long long order_id, int rating, const char *event_id,
                        json_t **out)
{
    json_t *row = NULL;
    bool completed = false;
    antar_err_t err = store_driver_get(id, &row);
    if (err != ANTAR_OK)
        return err;
    json_decref(row);
    err = store_trip_completed_by(id, order_id, &completed);
    if (err != ANTAR_OK)
        return err;
    if (!completed) {
        /* This driver's trip still on its way to completed: the rating is early, not wrong
         * (the outbox tries again); no such trip at all is a refusal. */
        err = store_trip_get(order_id, &row);
        if (err == ANTAR_E_NOT_FOUND)
            return ANTAR_E_CONFLICT;
        if (err != ANTAR_OK)
            return err;
        const char *st = json_string_value(json_object_get(row, "status"));
        bool mine = json_integer_value(json_object_get(row, "driver_id")) == id;
        bool coming = st && (strcmp(st, "accepted") == 0 || strcmp(st, "picked_up") == 0);
        json_decref(row);
        return mine && coming ? ANTAR_E_NOT_YET : ANTAR_E_CONFLICT;
    }
    err = store_driver_rate(id, order_id, rating, event_id);
    /* Seen before (same event or same order): already counted once, which is the point. */
    if (err != ANTAR_OK && err != ANTAR_E_DUPLICATE)
        return err;
    err = store_driver_get(id, &row);
    if (err != ANTAR_OK)
        return err;
    *out = json_pack("{s:O, s:O}", "id", json_object_get(row, "id"), "rating",
                     json_object_get(row, "rating"));
    json_decref(row);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

antar_err_t driver_row_owned(antar_err_t err, json_t **row, long long driver_id)
{
    if (err != ANTAR_OK)
        return err;
    if (json_integer_value(json_object_get(*row, "driver_id")) != driver_id) {
        json_decref(*row);
        *row = NULL;
        return ANTAR_E_NOT_FOUND;
    }
    return ANTAR_OK;
}

antar_err_t driver_waiting_hint(long long id, json_t **out)
{
    char path[96];
    snprintf(path, sizeof path, "/internal/drivers/%lld/waiting-hint", id);
    return driver_call(ANTAR_SVC_CORE, "GET", path, NULL, out);
}
