/* lib/auth_token.c — this service's own token: client_credentials against core (a server inside
 * the test plays core), cached until a minute before it expires, forgotten on reset, a short
 * pause after a failed fetch; core's local minter instead of the fetch. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/auth.h"
#include "antar/config.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "test_support.h"

static int core_fails; /* set by a test: core answers 503 */
static int core_ttl = 600;

static void core(int fd, const test_req_t *r)
{
    if (strcmp(r->path, "/oauth/token") != 0 || strcmp(r->method, "POST") != 0) {
        test_srv_reply(fd, 404, "application/json", "{}");
    } else if (core_fails) {
        test_srv_reply(fd, 503, "application/json",
                       "{\"error\":\"temporarily_unavailable\",\"error_description\":\"x\"}");
    } else {
        char body[160];
        snprintf(body, sizeof body,
                 "{\"access_token\":\"tok-%d\",\"token_type\":\"Bearer\",\"expires_in\":%d}",
                 test_srv_count("/oauth/token"), core_ttl);
        test_srv_reply(fd, 200, "application/json", body);
    }
}

static antar_config_t cfg;

static void setup(void)
{
    antar_log_init("test");
    cr_assert(sodium_init() >= 0);
    test_srv_start(0, core);
    /* The token fetch reads the process-wide configuration (antar_config), which
     * antar_config_load fills from the environment. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", test_srv.port);
    setenv("ANTAR_CORE_URL", url, 1);
    setenv("ANTAR_CLIENT_ID", "user-service", 1);
    /* Characters that form-urlencoding must escape before base64 (RFC 6749 §2.3.1). */
    setenv("ANTAR_CLIENT_SECRET", "s3cr:t&x y", 1);
    cr_assert(antar_config_load(&cfg, "user") == 0);
    cr_assert_str_eq(antar_config()->core_url, url);
    cr_assert(antar_httpc_init(&cfg) == 0);
    antar_auth_set_local_minter(NULL);
    antar_auth_service_token_reset();
}

static void teardown(void)
{
    antar_httpc_thread_end();
}

TestSuite(auth_token, .init = setup, .fini = teardown);

Test(auth_token, fetches_with_client_credentials_and_basic_auth)
{
    char tok[256];
    cr_assert_eq(antar_auth_service_token(tok, sizeof tok), 0);
    cr_assert_str_eq(tok, "tok-1");
    test_req_t r = test_srv_find("/oauth/token");
    cr_assert_str_eq(r.body, "grant_type=client_credentials&scope=internal");
    char auth[256], want[256], pair[] = "user-service:s3cr%3At%26x%20y";
    cr_assert_not_null(test_srv_header(&r, "Authorization", auth, sizeof auth));
    memcpy(want, "Basic ", 6);
    sodium_bin2base64(want + 6, sizeof want - 6, (const unsigned char *)pair, strlen(pair),
                      sodium_base64_VARIANT_ORIGINAL);
    cr_assert_str_eq(auth, want);
    char ctype[128];
    cr_assert_not_null(test_srv_header(&r, "Content-Type", ctype, sizeof ctype));
    cr_assert_str_eq(ctype, "application/x-www-form-urlencoded");
}

Test(auth_token, cached_until_reset)
{
    char a[256], b[256];
    cr_assert_eq(antar_auth_service_token(a, sizeof a), 0);
    cr_assert_eq(antar_auth_service_token(b, sizeof b), 0);
    cr_assert_str_eq(a, b);
    cr_assert_eq(test_srv_count("/oauth/token"), 1, "a cached token was fetched again");
    antar_auth_service_token_reset();
    cr_assert_eq(antar_auth_service_token(b, sizeof b), 0);
    cr_assert_str_eq(b, "tok-2");
    cr_assert_eq(test_srv_count("/oauth/token"), 2);
}

Test(auth_token, a_token_that_expires_within_a_minute_is_renewed_at_once)
{
    core_ttl = 30; /* less than the one-minute renewal margin */
    char a[256];
    cr_assert_eq(antar_auth_service_token(a, sizeof a), 0);
    cr_assert_eq(antar_auth_service_token(a, sizeof a), 0);
    cr_assert_eq(test_srv_count("/oauth/token"), 2);
    cr_assert_str_eq(a, "tok-2");
}

Test(auth_token, core_down_fails_then_pauses_before_asking_again)
{
    core_fails = 1;
    char tok[256];
    cr_assert_eq(antar_auth_service_token(tok, sizeof tok), -1);
    cr_assert_eq(antar_auth_service_token(tok, sizeof tok), -1);
    /* The second call came within the pause: core was not asked twice. */
    cr_assert_eq(test_srv_count("/oauth/token"), 1);
    core_fails = 0;
    antar_auth_service_token_reset(); /* also ends the pause */
    cr_assert_eq(antar_auth_service_token(tok, sizeof tok), 0);
    cr_assert_eq(test_srv_count("/oauth/token"), 2);
}

Test(auth_token, buffer_too_small_is_an_error_not_a_cut_token)
{
    char small[4] = "zzz";
    cr_assert_eq(antar_auth_service_token(small, sizeof small), -1);
    cr_assert_str_eq(small, "zzz");
}

static int minted;
static int mint(char *buf, size_t len)
{
    minted++;
    snprintf(buf, len, "minted-%d", minted);
    return 0;
}

static int mint_fails(char *buf, size_t len)
{
    (void)buf;
    (void)len;
    return -1;
}

Test(auth_token, local_minter_replaces_the_fetch)
{
    antar_auth_set_local_minter(mint);
    char tok[64];
    cr_assert_eq(antar_auth_service_token(tok, sizeof tok), 0);
    cr_assert_str_eq(tok, "minted-1");
    cr_assert_eq(antar_auth_service_token(tok, sizeof tok), 0);
    cr_assert_eq(minted, 1, "a minted token was not cached");
    antar_auth_service_token_reset();
    cr_assert_eq(antar_auth_service_token(tok, sizeof tok), 0);
    cr_assert_str_eq(tok, "minted-2");
    cr_assert_eq(test_srv_count("/oauth/token"), 0, "core's own minter must not call out");
    antar_auth_set_local_minter(mint_fails);
    cr_assert_eq(antar_auth_service_token(tok, sizeof tok), -1);
}
