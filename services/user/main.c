/* user-service: customers, orders and ratings. */
#include "antar/events.h"
#include "antar/http.h"
#include "antar/outbox.h"
#include "user.h"

static void user_service_routes(antar_server_t *s)
{
    antar_server_add_routes(s, user_routes, user_routes_len);
}

static int user_service_init(antar_server_t *s, const antar_config_t *cfg)
{
    (void)cfg;
    /* Dispatch, cancel and rating messages are delivered by the outbox thread. */
    if (antar_outbox_start() != 0)
        return -1;
    /* GET /events is served here (docs/communication.md, "Push"): the hub thread. */
    return antar_events_start(s);
}

static void user_service_shutdown(void)
{
    antar_events_stop();
    antar_outbox_stop();
}

static const antar_command_t user_commands[] = {
    {
        .flag = "--seed-customers",
        .args = "N",
        .help = "  Make sure the simulator's customers 1..N exist (sim-user-<n, 6 "
                "digits>@sim.antar.id,\n"
                "  phone 0898<n, 8 digits>), inserting only the missing ones in batched\n"
                "  transactions, and print all N on stdout: user<TAB>id<TAB>-<TAB>email. The\n"
                "  password is $ANTAR_SEED_PASSWORD (8-128 bytes; never on the command line): ONE\n"
                "  Argon2id hash of it is stored for every customer inserted, since hashing each\n"
                "  would take about 0.1 s apiece (half an hour for 20,000). Needs the service's\n"
                "  database settings (scripts/stack.sh exec user --seed-customers N). N: 1 to\n"
                "  999999.",
        .run = users_seed_command,
    },
};

int main(int argc, char **argv)
{
    static const antar_service_t svc = {
        .name = "user",
        .uses_db = true,
        /* Redis only degrades this service (docs/reliability.md, "Degraded modes"): reads go
         * on, writes fail closed at the auth hook, so it must not take the service out of the
         * edge's rotation. */
        .uses_redis = false,
        .routes = user_service_routes,
        .init = user_service_init,
        .shutdown = user_service_shutdown,
        .commands = user_commands,
        .ncommands = sizeof user_commands / sizeof user_commands[0],
    };
    return antar_service_main(argc, argv, &svc);
}
