/* core-service's OAuth request parsers (services/core/oauth_parse.c, included directly: the unit
 * tests link the toolkit, not the services). The NUL, UTF-8 and duplicate-key refusals were
 * acceptances found by tests/fuzz/fuzz_oauth in the hand-written decoder the toolkit's
 * antar_form_decode has replaced; they stay pinned here for the OAuth endpoints. */
#include <criterion/criterion.h>

#include "../../services/core/oauth_parse.c"

/* The form parameters of a token request: the toolkit's decoder (tests/unit/test_form.c) with
 * the OAuth limits. */
static json_t *form(const char *s, size_t n)
{
    return oauth_params_parse("application/x-www-form-urlencoded", s, n);
}

Test(oauth_parse, form_gives_every_pair)
{
    const char b[] = "grant_type=password&username=a%40b.c&password=p+w%2B&&x";
    json_t *p = form(b, sizeof b - 1);
    cr_assert_not_null(p);
    cr_assert_str_eq(json_string_value(json_object_get(p, "username")), "a@b.c");
    cr_assert_str_eq(json_string_value(json_object_get(p, "password")), "p w+");
    cr_assert_str_eq(json_string_value(json_object_get(p, "x")), "");
    cr_assert_eq(json_object_size(p), 4);
    json_decref(p);
}

/* A raw NUL cut the value short: "client_id=user-app\0junk" was read as client_id=user-app. */
Test(oauth_parse, form_with_a_nul_byte_is_refused)
{
    const char b[] = "client_id=user-app\0junk&x=1";
    cr_assert_null(form(b, sizeof b - 1));
    const char k[] = "client_id\0x=user-app";
    cr_assert_null(form(k, sizeof k - 1));
    cr_assert_null(form("a=%00", 5));
}

/* Invalid UTF-8 made jansson refuse the pair, which was then silently left out. */
Test(oauth_parse, form_with_invalid_utf8_is_refused)
{
    cr_assert_null(form("username=%FF&grant_type=password", 32));
    cr_assert_null(form("%C0%80=x", 8));
    json_t *p = form("username=%C3%A9", 15);
    cr_assert_not_null(p);
    cr_assert_str_eq(json_string_value(json_object_get(p, "username")), "\xc3\xa9");
    json_decref(p);
}

Test(oauth_parse, form_repeats_and_bad_escapes_are_refused)
{
    cr_assert_null(form("a=1&a=2", 7));
    cr_assert_null(form("a=%4", 4));
    cr_assert_null(form("a=%zz", 5));
}

/* jansson keeps the last of two equal keys: {"grant_type":"x","grant_type":"password"} was a
 * password grant, although a parameter sent twice is an error (RFC 6749 §3.2). */
Test(oauth_parse, json_with_a_key_twice_is_refused)
{
    const char *j = "{\"grant_type\":\"x\",\"grant_type\":\"password\"}";
    cr_assert_null(oauth_params_parse("application/json", j, strlen(j)));
    const char *ok = "{\"grant_type\":\"password\",\"client_id\":\"user-app\"}";
    json_t *p = oauth_params_parse("application/json", ok, strlen(ok));
    cr_assert_not_null(p);
    json_decref(p);
}

Test(oauth_parse, params_limits_and_types)
{
    char big[1024] = "{";
    for (int i = 0; i < 17; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"k%d\":\"v\"", i ? "," : "", i);
    strcat(big, "}");
    cr_assert_null(oauth_params_parse("application/json", big, strlen(big)), "17 parameters");
    cr_assert_null(oauth_params_parse("text/plain", "a=1", 3));
    cr_assert_null(oauth_params_parse(NULL, "a=1", 3));
    char many[256] = "";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sk%d=v", i ? "&" : "", i);
    cr_assert_null(form(many, strlen(many)), "17 form parameters");
    many[strlen(many) - strlen("&k16=v")] = '\0';
    json_t *sixteen = form(many, strlen(many));
    cr_assert_not_null(sixteen, "16 form parameters");
    json_decref(sixteen);
    static char longv[4200];
    memcpy(longv, "token=", 6);
    memset(longv + 6, 'a', 4097);
    cr_assert_null(form(longv, 6 + 4097), "a 4097-byte value");
    json_t *fits = form(longv, 6 + 4096);
    cr_assert_not_null(fits, "a 4096-byte value");
    json_decref(fits);
    json_t *p = oauth_params_parse(NULL, "", 0);
    cr_assert_not_null(p);
    json_decref(p);
}

/* libsodium 1.0.18 reads any byte 0x80-0xff as a base64 digit (found by tests/fuzz/fuzz_csrf):
 * "b3BzOnNlY3JldA==" had other spellings. */
Test(oauth_parse, basic_credentials)
{
    char id[128], sec[256];
    cr_assert(oauth_basic_credentials("b3BzOnNlY3JldA==", id, sizeof id, sec, sizeof sec));
    cr_assert_str_eq(id, "ops");
    cr_assert_str_eq(sec, "secret");
    /* "ops:s%3A" → secret "s:" (form-encoded halves). */
    cr_assert(oauth_basic_credentials("  b3BzOnMlM0E=", id, sizeof id, sec, sizeof sec));
    cr_assert_str_eq(sec, "s:");
    cr_assert_not(oauth_basic_credentials("b3BzOnNlY3JldA=\x9c", id, sizeof id, sec, sizeof sec));
    cr_assert_not(oauth_basic_credentials("b3Bz\xffOnNlY3JldA==", id, sizeof id, sec, sizeof sec));
    cr_assert_str_eq(id, "");
    cr_assert_str_eq(sec, "");
    /* ":secret" — no id: refused, and the secret is not left behind. */
    cr_assert_not(oauth_basic_credentials("OnNlY3JldA==", id, sizeof id, sec, sizeof sec));
    cr_assert_str_eq(sec, "");
}

Test(oauth_parse, redirect_uris)
{
    cr_assert(oauth_redirect_uri_ok("antar://callback"));
    cr_assert(oauth_redirect_uri_ok("http://127.0.0.1:8765/callback"));
    cr_assert_not(oauth_redirect_uri_ok("http://127.0.0.1:08765/callback"));
    cr_assert_not(oauth_redirect_uri_ok("http://127.0.0.1:65536/callback"));
    cr_assert_not(oauth_redirect_uri_ok("http://127.0.0.1:80/callback?x"));
    cr_assert_not(oauth_redirect_uri_ok("http://127.0.0.1.evil:80/callback"));
}

Test(oauth_parse, login_cookie)
{
    char n[33];
    oauth_cookie_nonce("a=b; antar_login=0123456789abcdef0123456789abcdef", n);
    cr_assert_str_eq(n, "0123456789abcdef0123456789abcdef");
    oauth_cookie_nonce("xantar_login=0123456789abcdef0123456789abcdef", n);
    cr_assert_str_eq(n, "");
    oauth_cookie_nonce(NULL, n);
    cr_assert_str_eq(n, "");
}

/* The console's clients (docs/console.md): exactly "<origin>/console/" for a configured origin. */
Test(oauth_parse, console_redirect_uris_are_exact)
{
    const oauth_client_t app = {.id = "user-app"}, web = {.id = "console-user", .browser = true};
    const char *origins = "http://127.0.0.1:8080 https://localhost:8443";
    cr_assert(oauth_redirect_uri_ok_for(&web, "http://127.0.0.1:8080/console/", origins));
    cr_assert(oauth_redirect_uri_ok_for(&web, "https://localhost:8443/console/", origins));
    static const char *const bad[] = {
        "http://127.0.0.1:8080/console",       "http://127.0.0.1:8080/console/x",
        "http://127.0.0.1:808/console/",       "http://127.0.0.1:80800/console/",
        "http://127.0.0.1:8080.evil/console/", "https://127.0.0.1:8080/console/",
        "http://localhost:8443/console/",      "/console/",
        "http://127.0.0.1:8080//console/",     "antar://callback",
        "http://127.0.0.1:8765/callback",      "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(oauth_redirect_uri_ok_for(&web, bad[i], origins), "accepted %s", bad[i]);
    /* No origins configured: no console redirect at all. */
    cr_assert_not(oauth_redirect_uri_ok_for(&web, "http://127.0.0.1:8080/console/", ""));
    cr_assert_not(oauth_redirect_uri_ok_for(&web, "http://127.0.0.1:8080/console/", NULL));
    /* The apps keep their own rule, and never get the console's. */
    cr_assert(oauth_redirect_uri_ok_for(&app, "antar://callback", origins));
    cr_assert_not(oauth_redirect_uri_ok_for(&app, "http://127.0.0.1:8080/console/", origins));
    cr_assert_not(oauth_redirect_uri_ok_for(NULL, "antar://callback", origins));
}

Test(oauth_parse, operator_list_is_exact_and_case_insensitive)
{
    const char *ops = "operator@antar.id, Boss@Antar.id";
    cr_assert(oauth_operator_listed("operator@antar.id", ops));
    cr_assert(oauth_operator_listed("OPERATOR@antar.id", ops));
    cr_assert(oauth_operator_listed("boss@antar.id", ops));
    static const char *const bad[] = {
        "operator@antar.i", "perator@antar.id", "operator@antar.idx", "081234567890", "", "@"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(oauth_operator_listed(bad[i], ops), "listed %s", bad[i]);
    cr_assert_not(oauth_operator_listed("operator@antar.id", ""));
    cr_assert_not(oauth_operator_listed("operator@antar.id", NULL));
    cr_assert_not(oauth_operator_listed(NULL, ops));
}
