/* hint.h — "where to wait" for idle drivers (hint.c, docs/ai.md). */
#ifndef CORE_HINT_H
#define CORE_HINT_H

#include <jansson.h>
#include <stddef.h>

#include "antar/error.h"
#include "dispatch.h"

typedef struct {
    long ilat, ilng;   /* the forecast cell */
    double lat, lng;   /* its centre */
    double distance_m; /* from the driver (0 for the driver's own cell) */
    double expected;   /* orders over the next 15 city minutes */
    long long free_drivers;
    double per_driver; /* expected / free_drivers */
} core_hint_cell_t;

/* The cell to wait in: the highest orders per free driver, or a nearer one within 10% of it.
 * -1 when n is 0. */
int core_hint_pick(const core_hint_cell_t *c, size_t n);

/* GET /internal/drivers/{id}/waiting-hint → {driver_id, source: model|rule|off, cell, here,
 * horizon_s}: cell is where to wait (may be here), here the driver's own cell, both {lat, lng,
 * distance_m, expected_orders, free_drivers, orders_per_free_driver}; null with source "off"
 * (ANTAR_AI=off). CONFLICT (driver_id) when the driver is not online with a position; KV when
 * Redis fails. */
antar_err_t core_hint_waiting(long long driver_id, json_t **out, antar_outcome_t *why);

#endif
