/* Router: literal and {param} segments, precedence, 404, 405 with Allow. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../lib/http_internal.h"

static void h(antar_req_t *r)
{
    (void)r;
}

static const antar_route_t routes[] = {
    {"GET", "/orders", h, 0, NULL, 0},
    {"POST", "/orders", h, 0, NULL, 0},
    {"GET", "/orders/{id}", h, 0, NULL, 0},
    {"GET", "/orders/active", h, 0, NULL, 0},
    {"POST", "/orders/{id}/cancel", h, 0, NULL, 0},
    {"PUT", "/drivers/me/status", h, 0, NULL, 0},
    {"POST", "/offers/{offer_id}/accept/{x}", h, 0, NULL, 0},
};
#define NR (sizeof(routes) / sizeof(*routes))

static const antar_route_t *const *table(void)
{
    static const antar_route_t *ptrs[NR];
    for (size_t i = 0; i < NR; i++)
        ptrs[i] = &routes[i];
    return ptrs;
}

static antar_match_t m;

Test(router, literal_match)
{
    antar_router_match(table(), NR, "GET", "/orders", &m);
    cr_assert_eq(m.kind, ANTAR_MATCH_OK);
    cr_assert_eq(m.route, &routes[0]);
    cr_assert_eq(m.nparams, 0);
    antar_router_match(table(), NR, "POST", "/orders", &m);
    cr_assert_eq(m.route, &routes[1]);
}

Test(router, param_match)
{
    antar_router_match(table(), NR, "POST", "/orders/42/cancel", &m);
    cr_assert_eq(m.kind, ANTAR_MATCH_OK);
    cr_assert_eq(m.route, &routes[4]);
    cr_assert_eq(m.nparams, 1);
    cr_assert_eq(m.name_len[0], 2);
    cr_assert(strncmp(m.name[0], "id", 2) == 0);
    cr_assert_eq(m.value_len[0], 2);
    cr_assert(strncmp(m.value[0], "42", 2) == 0);

    antar_router_match(table(), NR, "POST", "/offers/7/accept/yes", &m);
    cr_assert_eq(m.kind, ANTAR_MATCH_OK);
    cr_assert_eq(m.nparams, 2);
    cr_assert(strncmp(m.name[0], "offer_id", m.name_len[0]) == 0);
    cr_assert(strncmp(m.value[1], "yes", m.value_len[1]) == 0);
}

Test(router, literal_beats_param)
{
    antar_router_match(table(), NR, "GET", "/orders/active", &m);
    cr_assert_eq(m.route, &routes[3]);
    antar_router_match(table(), NR, "GET", "/orders/17", &m);
    cr_assert_eq(m.route, &routes[2]);
}

Test(router, not_found)
{
    const char *paths[] = {
        "/nope",  "/orders/", "/orders//cancel",  "/orders/1/cancel/x", "/Orders", "/drivers/me",
        "orders", "",         "/orders/1/cancel/"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
        antar_router_match(table(), NR, "GET", paths[i], &m);
        cr_assert_eq(m.kind, ANTAR_MATCH_NOT_FOUND, "path %s: kind %d", paths[i], m.kind);
    }
    antar_router_match(table(), NR, "POST", "/orders//cancel", &m);
    cr_assert_eq(m.kind, ANTAR_MATCH_NOT_FOUND);
}

Test(router, method_not_allowed_with_allow)
{
    antar_router_match(table(), NR, "DELETE", "/orders", &m);
    cr_assert_eq(m.kind, ANTAR_MATCH_BAD_METHOD);
    cr_assert_str_eq(m.allow, "GET, POST");
    antar_router_match(table(), NR, "GET", "/drivers/me/status", &m);
    cr_assert_eq(m.kind, ANTAR_MATCH_BAD_METHOD);
    cr_assert_str_eq(m.allow, "PUT");
    antar_router_match(table(), NR, "GET", "/orders/5/cancel", &m);
    cr_assert_str_eq(m.allow, "POST");
}

Test(router, pattern_validation)
{
    cr_assert(antar_router_pattern_ok("/"));
    cr_assert(antar_router_pattern_ok("/a/{id}/b"));
    cr_assert_not(antar_router_pattern_ok("a/b"));
    cr_assert_not(antar_router_pattern_ok("/a/{}"));
    cr_assert_not(antar_router_pattern_ok("/a/x{id}"));
    cr_assert_not(antar_router_pattern_ok("/a//b"));
    cr_assert_not(antar_router_pattern_ok("/a/"));
    cr_assert_not(antar_router_pattern_ok(NULL));
}
