/* lib/service.c: what a service binary does with its arguments before it serves — --routes,
 * --help, a maintenance command, and refusing anything else — without starting a server. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antar/http.h"
#include "test_support.h"

static void noop(antar_req_t *req)
{
    antar_http_reply(req, 200, NULL);
}

static void add_routes(antar_server_t *s)
{
    static const antar_route_t routes[] = {
        {"GET", "/widgets/{id}", noop, ANTAR_AUTH_USER, NULL, 0},
        {"POST", "/internal/widgets", noop, ANTAR_AUTH_SERVICE, NULL, 0},
    };
    antar_server_add_routes(s, routes, 2);
}

static int got_argc;
static char got_arg[64];

static int count_cmd(int argc, char **argv)
{
    got_argc = argc;
    snprintf(got_arg, sizeof got_arg, "%s", argc > 0 ? argv[0] : "");
    return argc == 1 ? 0 : 2;
}

static const antar_command_t commands[] = {
    {"--count-widgets", "N", "Count N widgets (a test command).", count_cmd},
};

static const antar_service_t svc = {
    .name = "widget",
    .uses_db = false,
    .uses_redis = false,
    .routes = add_routes,
    .commands = commands,
    .ncommands = 1,
};

/* Runs antar_service_main with fd (1 = stdout, 2 = stderr) sent to a temporary file; returns
 * what was written there (caller frees) and the exit code in *rc. */
static char *run(int fd, int *rc, int argc, char **argv)
{
    test_capture_t c;
    test_capture_begin(&c, fd);
    *rc = antar_service_main(argc, argv, &svc);
    return test_capture_end(&c);
}

Test(service, routes_lists_the_built_in_and_the_service_routes)
{
    char *argv[] = {"antar-widget", "--routes", NULL};
    int rc;
    char *out = run(1, &rc, 2, argv);
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "GET /widgets/{id}\n"), "%s", out);
    cr_assert(strstr(out, "POST /internal/widgets\n"), "%s", out);
    /* The toolkit's own routes, which every spec documents too. */
    cr_assert(strstr(out, "GET /health\n") && strstr(out, "GET /health/ready\n"), "%s", out);
    cr_assert(strstr(out, "GET /metrics\n") && strstr(out, "GET /openapi.json\n"), "%s", out);
    free(out);
}

Test(service, help_lists_the_commands)
{
    char *argv[] = {"antar-widget", "--help", NULL};
    int rc;
    char *out = run(1, &rc, 2, argv);
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "usage: antar-widget [--routes | --help]"), "%s", out);
    cr_assert(strstr(out, "antar-widget --count-widgets N"), "%s", out);
    cr_assert(strstr(out, "Count N widgets (a test command)."), "%s", out);
    cr_assert(strstr(out, "run widget-service until SIGINT/SIGTERM"), "%s", out);
    free(out);
}

Test(service, an_unknown_argument_is_refused_with_the_usage)
{
    char *argv[] = {"antar-widget", "--frobnicate", NULL};
    int rc;
    char *err = run(2, &rc, 2, argv);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(err, "usage: antar-widget"), "%s", err);
    free(err);
}

Test(service, a_command_runs_instead_of_the_server_with_its_arguments)
{
    char *argv[] = {"antar-widget", "--count-widgets", "20000", NULL};
    int rc;
    char *out = run(1, &rc, 3, argv);
    cr_assert_eq(rc, 0);
    cr_assert_eq(got_argc, 1);
    cr_assert_str_eq(got_arg, "20000");
    cr_assert_str_eq(out, "", "a command's stdout is its own: no log lines there");
    free(out);
    char *bad[] = {"antar-widget", "--count-widgets", NULL};
    free(run(1, &rc, 2, bad));
    cr_assert_eq(rc, 2, "the command's own status comes back");
    cr_assert_eq(got_argc, 0);
}
