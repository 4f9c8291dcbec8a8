/* core-service: OAuth 2 authorization server, fares, driver presence and dispatch. */
#include "antar/kv.h"
#include "antar/metrics.h"
#include "antar/http.h"
#include "antar/outbox.h"
#include "ai.h"
#include "core.h"
#include "oauth.h"

static void core_routes(antar_server_t *s)
{
    antar_server_add_routes(s, core_oauth_routes, core_oauth_routes_len);
    antar_server_add_routes(s, core_fares_routes, core_fares_routes_len);
    antar_server_add_routes(s, core_dispatch_routes, core_dispatch_routes_len);
}

static int core_init(antar_server_t *s, const antar_config_t *cfg)
{
    (void)s;
    if (core_oauth_init(cfg) != 0)
        return -1;
    if (antar_outbox_start() != 0)
        return -1;
    /* Redis memory on core's /metrics: at maxmemory (noeviction) writes fail, and the login
     * throttles then answer 503 (they fail closed), so it is worth an alert before. */
    antar_metrics_add_source(antar_kv_metrics);
    /* The models (docs/ai.md); without them, or with ANTAR_AI=off, today's rules serve. */
    if (core_ai_init() != 0)
        return -1;
    if (core_sweep_start() != 0)
        return -1;
    return core_dispatch_start(cfg);
}

static void core_shutdown(void)
{
    core_dispatch_stop();
    core_sweep_stop();
    antar_outbox_stop();
    core_oauth_shutdown();
    core_ai_shutdown();
}

static const antar_command_t core_commands[] = {
    {
        .flag = "--issue-refresh-tokens",
        .args = "",
        .help =
            "  Read subjects from stdin, one a line, \"driver:<id>\" or \"user:<id>\", and give "
            "each\n"
            "  a new refresh-token family exactly as a password login of its app (driver-app,\n"
            "  user-app) would: same scope, role, lifetime and hash-only storage, stored in\n"
            "  batched transactions. Prints <subject><TAB><refresh_token> per line on stdout,\n"
            "  in input order. Does not check that the accounts exist. A malformed line issues\n"
            "  nothing and exits 2, naming the line. Needs core's database settings\n"
            "  (scripts/stack.sh exec core --issue-refresh-tokens).",
        .run = oauth_issue_command,
    },
    {
        .flag = "--retire-keys",
        .args = "",
        .help = "  Emergency key rotation (a leaked signing key), with core stopped: every key in\n"
                "  <state_dir>/keys goes on Redis's revocation list, so every service refuses\n"
                "  the tokens it signed at once, cached or not; then the key files are deleted\n"
                "  and core makes a new key when it starts. Prints \"retired <kid>\" per key.\n"
                "  (scripts/stack.sh stop core; scripts/stack.sh exec core --retire-keys;\n"
                "  scripts/stack.sh start core)",
        .run = core_keys_retire_command,
    },
};

int main(int argc, char **argv)
{
    static const antar_service_t svc = {
        .name = "core",
        .uses_db = true,
        .uses_redis = true,
        .routes = core_routes,
        .init = core_init,
        .shutdown = core_shutdown,
        .commands = core_commands,
        .ncommands = sizeof core_commands / sizeof core_commands[0],
    };
    return antar_service_main(argc, argv, &svc);
}
