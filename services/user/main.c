/* user-service: customers, orders and ratings. */
#include "antar/http.h"
#include "antar/outbox.h"
#include "user.h"

static void user_service_routes(antar_server_t *s)
{
    antar_server_add_routes(s, user_routes, user_routes_len);
}

static int user_service_init(antar_server_t *s, const antar_config_t *cfg)
{
    (void)s;
    (void)cfg;
    /* Dispatch, cancel and rating messages are delivered by the outbox thread. */
    return antar_outbox_start();
}

static void user_service_shutdown(void)
{
    antar_outbox_stop();
}

int main(int argc, char **argv)
{
    static const antar_service_t svc = {
        .name = "user",
        .uses_db = true,
        .uses_redis = true, /* token revocation list */
        .routes = user_service_routes,
        .init = user_service_init,
        .shutdown = user_service_shutdown,
    };
    return antar_service_main(argc, argv, &svc);
}
