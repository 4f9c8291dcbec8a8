/* driver-service: trips — the state machine accepted → picked_up → completed and the driver's
 * earning on completion. Up to pickup the customer may still cancel, so user-service's order
 * arbitrates and is asked first (a lost answer is confirmed later, reconcile.c); after pickup
 * the trip is the driver's alone: completion is written here and told through the outbox. */
#include <stdio.h>
#include <string.h>

#include "antar/metrics.h"
#include "antar/outbox.h"
#include "driver.h"

long long trip_earning(long long price)
{
    /* floor(price × 4/5) without ever forming price × 80, so no price can overflow it. */
    return price > 0 ? price / 5 * 4 + price % 5 * 4 / 5 : 0;
}

json_t *trip_to_json(json_t *row)
{
    json_t *name = json_object_get(row, "customer_first_name");
    json_t *earning = json_object_get(row, "earning");
    return json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:{s:O}, s:O, "
        "s:O, s:O, s:O}",
        "order_id", json_object_get(row, "order_id"), "status", json_object_get(row, "status"),
        "pickup_lat", json_object_get(row, "pickup_lat"), "pickup_lng",
        json_object_get(row, "pickup_lng"), "pickup_address",
        json_object_get(row, "pickup_address"), "dropoff_lat", json_object_get(row, "dropoff_lat"),
        "dropoff_lng", json_object_get(row, "dropoff_lng"), "dropoff_address",
        json_object_get(row, "dropoff_address"), "price", json_object_get(row, "price"), "earning",
        earning ? earning : json_null(), "currency", json_object_get(row, "currency"), "customer",
        "first_name", name ? name : json_null(), "accepted_at", json_object_get(row, "accepted_at"),
        "picked_up_at", json_object_get(row, "picked_up_at"), "completed_at",
        json_object_get(row, "completed_at"), "cancelled_at", json_object_get(row, "cancelled_at"));
}

/* The trip row of order_id when it is driver_id's; NOT_FOUND otherwise. */
static antar_err_t own_trip(long long driver_id, long long order_id, json_t **row)
{
    return driver_row_owned(store_trip_get(order_id, row), row, driver_id);
}

antar_err_t trip_get(long long driver_id, long long order_id, json_t **out)
{
    json_t *row = NULL;
    antar_err_t err = own_trip(driver_id, order_id, &row);
    if (err != ANTAR_OK)
        return err;
    *out = trip_to_json(row);
    json_decref(row);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}

antar_err_t trip_pickup(long long driver_id, long long order_id, json_t **out)
{
    json_t *row = NULL;
    antar_err_t err = own_trip(driver_id, order_id, &row);
    if (err != ANTAR_OK)
        return err;
    const char *status = json_string_value(json_object_get(row, "status"));
    if (!status || strcmp(status, "accepted") != 0) {
        err = ANTAR_E_CONFLICT;
        goto done;
    }
    /* Written before asking, so that an answer lost with this process is still asked for. */
    err =
        store_confirm_add(order_id, "pickup", driver_id,
                          json_integer_value(json_object_get(row, "offer_id")), confirm_grace_ms());
    if (err != ANTAR_OK)
        goto done;
    err = confirm_pickup(driver_id, order_id);
    if (err == ANTAR_OK)
        err = trip_get(driver_id, order_id, out);
done:
    json_decref(row);
    return err;
}

antar_err_t trip_complete(long long driver_id, long long order_id, json_t **out)
{
    json_t *row = NULL, *body = NULL, *user_body = NULL;
    char path[96], user_path[96];
    antar_err_t err = own_trip(driver_id, order_id, &row);
    if (err != ANTAR_OK)
        return err;
    const char *status = json_string_value(json_object_get(row, "status"));
    if (!status || strcmp(status, "picked_up") != 0) {
        err = ANTAR_E_CONFLICT;
        goto done;
    }
    body = json_pack("{s:b, s:I}", "available", 1, "order_id", (json_int_t)order_id);
    user_body = json_pack("{s:I}", "driver_id", (json_int_t)driver_id);
    if (!body || !user_body) {
        err = ANTAR_E_NOMEM;
        goto done;
    }
    with_profile(user_body, driver_id);
    snprintf(path, sizeof path, "/internal/drivers/%lld/availability", driver_id);
    snprintf(user_path, sizeof user_path, "/internal/orders/%lld/complete", order_id);
    err = store_trip_complete(order_id, driver_id,
                              trip_earning(json_integer_value(json_object_get(row, "price"))), body,
                              path, user_body, user_path);
    if (err != ANTAR_OK)
        goto done;
    antar_metrics_count("antar_trips_total", "status", "completed");
    position_trip(driver_id, 0);
    /* Read-your-writes for the customer in the common case; the outbox keeps trying after. */
    antar_outbox_flush(1000);
    err = trip_get(driver_id, order_id, out);
done:
    json_decref(row);
    json_decref(body);
    json_decref(user_body);
    return err;
}

antar_err_t trip_list(long long driver_id, long long cursor, int limit, json_t **out)
{
    json_t *rows = NULL, *items, *row;
    size_t i;
    char next[24];
    /* One row more than asked tells whether there is a next page. */
    antar_err_t err = store_trips_list(driver_id, cursor, limit + 1, &rows);
    if (err != ANTAR_OK)
        return err;
    items = json_array();
    long long last = 0;
    bool more = json_array_size(rows) > (size_t)limit;
    json_array_foreach(rows, i, row)
    {
        if (i == (size_t)limit)
            break;
        json_array_append_new(items, trip_to_json(row));
        last = json_integer_value(json_object_get(row, "id"));
    }
    json_decref(rows);
    snprintf(next, sizeof next, "%lld", last);
    *out = json_pack("{s:o, s:s?}", "items", items, "next_cursor", more ? next : NULL);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}
