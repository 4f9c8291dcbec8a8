/* driver-service's position table (services/driver/positions.c): the latest position per driver,
 * each driver queued at most once for core and once for the table, the table growing without
 * losing anyone. Only the table is exercised: nothing here talks to core or MariaDB. */
#include <criterion/criterion.h>

#include "../../services/driver/drivers.c"
#include "../../services/driver/positions.c"
#include "../../services/driver/store.c"

/* Record a ping the way position_set does, without its synchronous first call to core. */
static void ping(long long id, double lat, double lng, long long at)
{
    bool created;
    pthread_mutex_lock(&g_mu);
    slot_t *s = slot_get(id, &created);
    cr_assert(s);
    s->lat = lat;
    s->lng = lng;
    s->at_ms = at;
    cr_assert(slot_queue(s, FLAG_CORE) && slot_queue(s, FLAG_DB));
    pthread_mutex_unlock(&g_mu);
}

static void reset(void)
{
    table_free();
}

Test(positions, latest_wins_and_each_driver_is_sent_once, .fini = reset)
{
    ping(7, -6.1, 106.1, 1);
    ping(8, -6.2, 106.2, 2);
    ping(7, -6.3, 106.3, 3);
    driver_position_t *p = NULL;
    size_t n = 0;
    queue_take(FLAG_CORE, &p, &n);
    cr_assert_eq(n, 2, "n = %zu", n);
    cr_assert(p[0].driver_id == 7 && p[0].lat == -6.3 && p[0].lng == 106.3 && p[0].at_ms == 3);
    cr_assert(p[1].driver_id == 8 && p[1].lat == -6.2);
    free(p);
    /* Taken once: the core queue is empty now, the table's is still full. */
    queue_take(FLAG_CORE, &p, &n);
    cr_assert_eq(n, 0);
    queue_take(FLAG_DB, &p, &n);
    cr_assert_eq(n, 2);
    /* What could not be delivered comes back, once. */
    queue_return(FLAG_DB, p, n);
    queue_return(FLAG_DB, p, n);
    free(p);
    queue_take(FLAG_DB, &p, &n);
    cr_assert_eq(n, 2);
    free(p);
    double lat = 0, lng = 0;
    cr_assert(position_latest(7, &lat, &lng) && lat == -6.3 && lng == 106.3);
    cr_assert_not(position_latest(9, &lat, &lng));
}

Test(positions, growing_keeps_everyone, .fini = reset)
{
    for (long long id = 1; id <= 5000; id++)
        ping(id, (double)id / 1000, -(double)id / 1000, id);
    cr_assert_eq(g_used, 5000);
    cr_assert_geq(g_cap, 10000);
    for (long long id = 1; id <= 5000; id++) {
        double lat = 0, lng = 0;
        cr_assert(position_latest(id, &lat, &lng), "driver %lld lost", id);
        cr_assert(lat == (double)id / 1000 && lng == -(double)id / 1000, "driver %lld", id);
    }
    driver_position_t *p = NULL;
    size_t n = 0;
    queue_take(FLAG_CORE, &p, &n);
    cr_assert_eq(n, 5000);
    free(p);
}

Test(positions, going_online_makes_the_next_ping_synchronous, .fini = reset)
{
    ping(3, 1, 2, 1);
    position_went_online(3);
    pthread_mutex_lock(&g_mu);
    cr_assert(slot_find(3)->flags & FLAG_SYNC);
    pthread_mutex_unlock(&g_mu);
    position_went_online(4); /* never pinged here: nothing to mark, the first ping is sync anyway */
    cr_assert_not(position_latest(4, &(double){0}, &(double){0}));
}
