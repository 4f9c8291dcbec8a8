/* Access-token verification (lib/auth_jwt.c) with keys generated here: every forgery and every
 * claim that is wrong is refused. Tokens are built by hand so that headers can lie. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/kv.h"
#include "antar/trace.h"

static unsigned char pk[32], sk[64], pk2[32], sk2[64];
static char x_b64[64];
static antar_config_t cfg;

static void b64(const void *in, size_t n, char *out, size_t outlen)
{
    sodium_bin2base64(out, outlen, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void setup(void)
{
    char doc[256];
    cr_assert_geq(sodium_init(), 0);
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    b64(pk, 32, x_b64, sizeof x_b64);
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.issuer, sizeof cfg.issuer, "http://issuer.test");
    snprintf(cfg.audience, sizeof cfg.audience, "antar");
    snprintf(cfg.core_url, sizeof cfg.core_url, "http://127.0.0.1:1");
    snprintf(cfg.csrf_key_hex, sizeof cfg.csrf_key_hex, "%064d", 7);
    cr_assert_eq(antar_auth_init(&cfg), 0);
    snprintf(doc, sizeof doc,
             "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"k1\"}]}",
             x_b64);
    cr_assert_eq(antar_auth_set_local_jwks(doc), 0);
}

TestSuite(auth_jwt, .init = setup);

enum { SIGN_ED, SIGN_ED_OTHER, SIGN_NONE, SIGN_HS256_PUB };

/* header and claims are JSON texts; returns a static buffer. */
static const char *make(const char *header, const char *claims, int mode)
{
    static char out[4096];
    char h[1024], c[2048], sig[256] = "";
    b64(header, strlen(header), h, sizeof h);
    b64(claims, strlen(claims), c, sizeof c);
    char input[3200];
    snprintf(input, sizeof input, "%s.%s", h, c);
    unsigned char s[64];
    if (mode == SIGN_ED || mode == SIGN_ED_OTHER) {
        crypto_sign_detached(s, NULL, (unsigned char *)input, strlen(input),
                             mode == SIGN_ED ? sk : sk2);
        b64(s, 64, sig, sizeof sig);
    } else if (mode == SIGN_HS256_PUB) {
        /* The classic confusion attack: HMAC keyed with the public key's text. */
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (unsigned char *)x_b64, strlen(x_b64));
        crypto_auth_hmacsha256_update(&st, (unsigned char *)input, strlen(input));
        crypto_auth_hmacsha256_final(&st, s);
        b64(s, 32, sig, sizeof sig);
    }
    snprintf(out, sizeof out, "%s.%s", input, sig);
    return out;
}

static const char *HDR = "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}";

static const char *claims(const char *iss, const char *aud, const char *sub, const char *role,
                          long long iat, long long exp)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"%s\",\"role\":\"%s\",\"iat\":%lld,"
             "\"exp\":%lld,\"jti\":\"j-1\",\"client_id\":\"user-app\",\"scope\":\"user\"}",
             iss, aud, sub, role, iat, exp);
    return buf;
}

static long long now(void)
{
    return (long long)time(NULL);
}

static antar_err_t check(const char *tok)
{
    antar_principal_t p;
    return antar_auth_verify_at(tok, now(), &p);
}

Test(auth_jwt, valid_token_gives_the_principal)
{
    antar_principal_t p;
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 600);
    cr_assert_eq(antar_auth_verify_at(make(HDR, c, SIGN_ED), now(), &p), ANTAR_OK);
    cr_assert_str_eq(p.sub, "user:17");
    cr_assert_eq(p.id, 17);
    cr_assert_eq(p.role, ANTAR_AUTH_USER);
    cr_assert_str_eq(p.client_id, "user-app");
    cr_assert_str_eq(p.scope, "user");
    cr_assert_str_eq(p.jti, "j-1");
}

Test(auth_jwt, expired_is_refused)
{
    const char *c =
        claims("http://issuer.test", "antar", "user:17", "user", now() - 900, now() - 60);
    cr_assert_eq(check(make(HDR, c, SIGN_ED)), ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, lifetime_over_15_minutes_is_refused)
{
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 3600);
    cr_assert_eq(check(make(HDR, c, SIGN_ED)), ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, wrong_audience_and_issuer_are_refused)
{
    const char *c = claims("http://issuer.test", "other", "user:17", "user", now(), now() + 600);
    cr_assert_eq(check(make(HDR, c, SIGN_ED)), ANTAR_E_INVALID_TOKEN);
    c = claims("http://evil.test", "antar", "user:17", "user", now(), now() + 600);
    cr_assert_eq(check(make(HDR, c, SIGN_ED)), ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, alg_none_is_refused)
{
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 600);
    cr_assert_eq(check(make("{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}", c, SIGN_NONE)),
                 ANTAR_E_INVALID_TOKEN);
    cr_assert_eq(check(make("{\"alg\":\"none\",\"typ\":\"at+jwt\"}", c, SIGN_NONE)),
                 ANTAR_E_INVALID_TOKEN);
    /* alg none header with a valid EdDSA signature appended: still refused. */
    cr_assert_eq(check(make("{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}", c, SIGN_ED)),
                 ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, hmac_with_the_public_key_is_refused)
{
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 600);
    cr_assert_eq(
        check(make("{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}", c, SIGN_HS256_PUB)),
        ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, other_algorithms_are_refused)
{
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 600);
    cr_assert_eq(check(make("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}", c, SIGN_ED)),
                 ANTAR_E_INVALID_TOKEN);
    cr_assert_eq(check(make("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}", c, SIGN_ED)),
                 ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, forged_signature_is_refused)
{
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 600);
    cr_assert_eq(check(make(HDR, c, SIGN_ED_OTHER)), ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, tampered_claims_are_refused)
{
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 600);
    char tok[4096], other[4096];
    snprintf(tok, sizeof tok, "%s", make(HDR, c, SIGN_ED));
    /* Same signature, claims of another user. */
    c = claims("http://issuer.test", "antar", "user:18", "user", now(), now() + 600);
    snprintf(other, sizeof other, "%s", make(HDR, c, SIGN_ED));
    char *sig_tok = strrchr(tok, '.'), *sig_other = strrchr(other, '.');
    strcpy(sig_other, sig_tok);
    cr_assert_eq(check(other), ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, unknown_kid_and_missing_typ_are_refused)
{
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 600);
    cr_assert_eq(check(make("{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"nope\"}", c, SIGN_ED)),
                 ANTAR_E_INVALID_TOKEN);
    cr_assert_eq(check(make("{\"alg\":\"EdDSA\",\"kid\":\"k1\"}", c, SIGN_ED)),
                 ANTAR_E_INVALID_TOKEN);
    cr_assert_eq(check(make("{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\"}", c, SIGN_ED)),
                 ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, role_must_match_subject)
{
    const char *c = claims("http://issuer.test", "antar", "driver:5", "user", now(), now() + 600);
    cr_assert_eq(check(make(HDR, c, SIGN_ED)), ANTAR_E_INVALID_TOKEN);
    c = claims("http://issuer.test", "antar", "user:5", "admin", now(), now() + 600);
    cr_assert_eq(check(make(HDR, c, SIGN_ED)), ANTAR_E_INVALID_TOKEN);
    c = claims("http://issuer.test", "antar", "service:user-service", "service", now(),
               now() + 600);
    cr_assert_eq(check(make(HDR, c, SIGN_ED)), ANTAR_OK);
}

/* Found by tests/fuzz/fuzz_jwt: a "crit" header was refused but its JSON leaked, before any
 * signature check, so that any client could leak memory with each request (LSan, in the
 * sanitizer phase of make test, fails on it). */
Test(auth_jwt, crit_header_is_refused_without_a_leak)
{
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 600);
    const char *h = "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"k1\",\"crit\":[\"exp\"]}";
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(check(make(h, c, SIGN_ED)), ANTAR_E_INVALID_TOKEN);
        cr_assert_eq(check(make(h, c, SIGN_NONE)), ANTAR_E_INVALID_TOKEN);
    }
    cr_assert_eq(check(make(HDR, c, SIGN_ED)), ANTAR_OK);
}

/* Found by tests/fuzz/fuzz_jwt: Rhonabwy's base64url ignores the 4 unused bits of the
 * signature's last character, so each token had 16 spellings that all verified. */
Test(auth_jwt, a_token_has_one_spelling)
{
    const char *c = claims("http://issuer.test", "antar", "user:17", "user", now(), now() + 600);
    static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char tok[4096];
    snprintf(tok, sizeof tok, "%s", make(HDR, c, SIGN_ED));
    cr_assert_eq(check(tok), ANTAR_OK);
    size_t n = strlen(tok);
    size_t at = (size_t)(strchr(b64u, tok[n - 1]) - b64u);
    for (size_t low = 1; low < 16; low++) {
        tok[n - 1] = b64u[(at & ~(size_t)15) | low];
        cr_assert_eq(check(tok), ANTAR_E_INVALID_TOKEN, "respelt as %c", tok[n - 1]);
    }
}

Test(auth_jwt, garbage_is_refused)
{
    cr_assert_eq(check(""), ANTAR_E_INVALID_TOKEN);
    cr_assert_eq(check(NULL), ANTAR_E_INVALID_TOKEN);
    cr_assert_eq(check("a.b"), ANTAR_E_INVALID_TOKEN);
    cr_assert_eq(check("a.b.c.d"), ANTAR_E_INVALID_TOKEN);
    cr_assert_eq(check("!!!.???.$$$"), ANTAR_E_INVALID_TOKEN);
    static char big[10000];
    memset(big, 'a', sizeof big - 1);
    big[100] = big[200] = '.';
    cr_assert_eq(check(big), ANTAR_E_INVALID_TOKEN);
}

Test(auth_jwt, private_jwks_members_are_ignored)
{
    cr_assert_eq(antar_auth_set_local_jwks("not json"), -1);
    cr_assert_eq(antar_auth_set_local_jwks("{\"nokeys\":1}"), -1);
}

/* ---- revocation against a real Redis (ANTAR_TEST_REDIS_PORT, exported by `make test`) ---- */

static bool kv_ready;

static void setup_kv(void)
{
    const char *port = getenv("ANTAR_TEST_REDIS_PORT");
    if (!port || !*port)
        return;
    setenv("ANTAR_REDIS_PORT", port, 1);
    if (getenv("ANTAR_TEST_REDIS_HOST"))
        setenv("ANTAR_REDIS_HOST", getenv("ANTAR_TEST_REDIS_HOST"), 1);
    cr_assert_geq(sodium_init(), 0);
    crypto_sign_keypair(pk, sk);
    b64(pk, 32, x_b64, sizeof x_b64);
    antar_config_load(&cfg, "core");
    snprintf(cfg.issuer, sizeof cfg.issuer, "http://issuer.test");
    snprintf(cfg.audience, sizeof cfg.audience, "antar");
    snprintf(cfg.core_url, sizeof cfg.core_url, "http://127.0.0.1:1");
    snprintf(cfg.csrf_key_hex, sizeof cfg.csrf_key_hex, "%064d", 7);
    cr_assert_eq(antar_kv_init(&cfg), 0);
    cr_assert_eq(antar_auth_init(&cfg), 0);
    char doc[256];
    snprintf(doc, sizeof doc,
             "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"k1\"}]}",
             x_b64);
    cr_assert_eq(antar_auth_set_local_jwks(doc), 0);
    kv_ready = true;
}

static void teardown_kv(void)
{
    if (kv_ready) {
        antar_auth_cleanup();
        antar_kv_thread_end();
    }
}

TestSuite(auth_revoke, .init = setup_kv, .fini = teardown_kv);

#define NEED_KV()                                                                                  \
    do {                                                                                           \
        if (!kv_ready)                                                                             \
            cr_skip_test("no test Redis (ANTAR_TEST_REDIS_PORT unset; run via make test)");        \
    } while (0)

/* A valid user token with its own jti. */
static const char *token_with_jti(const char *jti)
{
    char c[512];
    snprintf(
        c, sizeof c,
        "{\"iss\":\"http://issuer.test\",\"aud\":\"antar\",\"sub\":\"user:5\",\"role\":\"user\","
        "\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\",\"client_id\":\"user-app\","
        "\"scope\":\"user\"}",
        now(), now() + 600, jti);
    return make(HDR, c, SIGN_ED);
}

static long long exists_calls(void)
{
    redisReply *r = antar_kv_command("INFO commandstats");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    const char *p = strstr(r->str, "cmdstat_exists:calls=");
    long long n = p ? strtoll(p + strlen("cmdstat_exists:calls="), NULL, 10) : 0;
    freeReplyObject(r);
    return n;
}

/* Verifies tok until its "not revoked" answer is being reused (the watcher connects in the
 * background); returns how many times the last 50 checks asked Redis. */
static long long wait_reuse(const char *tok)
{
    antar_principal_t p;
    long long used = 0;
    for (int attempt = 0; attempt < 30; attempt++) {
        cr_assert_eq(antar_auth_verify(tok, &p), ANTAR_OK);
        long long before = exists_calls();
        for (int k = 0; k < 50; k++)
            cr_assert_eq(antar_auth_verify(tok, &p), ANTAR_OK);
        used = exists_calls() - before;
        if (used <= 2)
            break;
        usleep(100 * 1000);
    }
    return used;
}

Test(auth_revoke, a_revoked_token_is_refused_at_once_even_after_reuse)
{
    NEED_KV();
    antar_principal_t p;
    char warm[4096];
    snprintf(warm, sizeof warm, "%s", token_with_jti("warm-up"));
    cr_assert_leq(wait_reuse(warm), 2);
    for (int i = 0; i < 40; i++) {
        char jti[40], tok[4096];
        antar_random_hex(jti, 8);
        snprintf(tok, sizeof tok, "%s", token_with_jti(jti));
        /* Used a few times (the answer may be reused), then revoked the way core does it. */
        for (int k = 0; k < 3; k++)
            cr_assert_eq(antar_auth_verify(tok, &p), ANTAR_OK);
        redisReply *r = antar_kv_command("SET revoked:jti:%s 1 EX 60", jti);
        cr_assert(r && r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
        cr_assert_eq(antar_auth_verify(tok, &p), ANTAR_E_INVALID_TOKEN, "round %d", i);
        /* And un-revoking is seen too (a DEL is a change like any other). */
        r = antar_kv_command("DEL revoked:jti:%s", jti);
        freeReplyObject(r);
        cr_assert_eq(antar_auth_verify(tok, &p), ANTAR_OK);
    }
}

Test(auth_revoke, the_not_revoked_answer_is_reused_while_nothing_changes)
{
    NEED_KV();
    antar_principal_t p;
    char jti[40], tok[4096];
    antar_random_hex(jti, 8);
    snprintf(tok, sizeof tok, "%s", token_with_jti(jti));
    long long used = wait_reuse(tok);
    cr_assert_leq(used, 2, "50 checks of one token asked Redis %lld times", used);
    /* Any change under the prefix, even to another token, voids the reuse: the next check asks. */
    long long before = exists_calls();
    redisReply *r = antar_kv_command("SET revoked:jti:someone-else 1 EX 60");
    freeReplyObject(r);
    cr_assert_eq(antar_auth_verify(tok, &p), ANTAR_OK);
    cr_assert_geq(exists_calls() - before, 1);
}
