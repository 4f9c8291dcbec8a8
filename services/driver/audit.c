/* audit.c — the read-only lists of the ops client's audit: trips, offers and drivers with their
 * totals, each in ascending id order, one keyset page at a time. */
#include "driver.h"

antar_err_t audit_page(audit_kind_t kind, long long after_id, int limit, json_t **items,
                       long long *next_after)
{
    json_t *rows = NULL;
    antar_err_t err;
    /* One extra row says whether there is a next page. */
    switch (kind) {
    case AUDIT_TRIPS:
        err = store_trips_audit(after_id, limit + 1, &rows);
        break;
    case AUDIT_OFFERS:
        err = store_offers_audit(after_id, limit + 1, &rows);
        break;
    case AUDIT_DRIVERS:
        err = store_drivers_audit(after_id, limit + 1, &rows);
        break;
    default:
        return ANTAR_E_INTERNAL;
    }
    if (err != ANTAR_OK)
        return err;
    *next_after = 0;
    if (json_array_size(rows) > (size_t)limit) {
        json_array_remove(rows, (size_t)limit);
        json_t *id = json_object_get(json_array_get(rows, (size_t)limit - 1), "id");
        *next_after = json_integer_value(id);
    }
    *items = rows;
    return ANTAR_OK;
}
