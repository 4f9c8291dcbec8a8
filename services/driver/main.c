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
    if (reconcile_start() != 0)
        return -1;
    return positions_start();
}

static void driver_service_shutdown(void)
{
    positions_stop();
    reconcile_stop();
    antar_outbox_stop();
}

static const antar_command_t driver_commands[] = {
    {
        .flag = "--seed-drivers",
        .args = "N",
        .help = "  Make sure the simulator's drivers 1..N exist (sim-driver-<n, 6 "
                "digits>@sim.antar.id,\n"
                "  phone 0899<n, 8 digits>, a unique plate, a car for every fourth, a motorcycle\n"
                "  otherwise), inserting only the missing ones in batched transactions, and print\n"
                "  all N on stdout: driver<TAB>id<TAB>vehicle_type<TAB>email. The password is\n"
                "  $ANTAR_SEED_PASSWORD (8-128 bytes; never on the command line): ONE Argon2id\n"
                "  hash of it is stored for every driver inserted, since hashing each would take\n"
                "  about 0.1 s apiece (half an hour for 20,000). Needs the service's database\n"
                "  settings (scripts/stack.sh exec driver --seed-drivers N). N: 1 to 999999.",
        .run = driver_seed_command,
    },
};

int main(int argc, char **argv)
{
    static const antar_service_t svc = {
        .name = "driver",
        .uses_db = true,
        .uses_redis = true,
        .routes = driver_service_routes,
        .init = driver_service_init,
        .shutdown = driver_service_shutdown,
        .commands = driver_commands,
        .ncommands = sizeof driver_commands / sizeof driver_commands[0],
    };
    return antar_service_main(argc, argv, &svc);
}
