/* driver-service: drivers, vehicles, offers, trips and earnings. */
#include "antar/http.h"
#include "antar/outbox.h"
#include "driver.h"

static void driver_service_routes(antar_server_t *s)
{
    antar_server_add_routes(s, driver_routes, driver_routes_len);
}

static int driver_service_init(antar_server_t *s, const antar_config_t *cfg)
{
    (void)s;
    (void)cfg;
    /* Messages queued by an earlier run (core was down, say) go out from the start. */
    if (antar_outbox_start() != 0)
        return -1;
    return positions_start();
}

static void driver_service_shutdown(void)
{
    positions_stop();
    antar_outbox_stop();
}

int main(int argc, char **argv)
{
    static const antar_service_t svc = {
        .name = "driver",
        .uses_db = true,
        .uses_redis = true,
        .routes = driver_service_routes,
        .init = driver_service_init,
        .shutdown = driver_service_shutdown,
    };
    return antar_service_main(argc, argv, &svc);
}
