/* tests/unit/test_password.c — lib/password.c: Argon2id hash/verify, dummy verify, and the
 * bound on concurrent hashes. Runs with the minimum limits so the suite stays fast; the
 * INTERACTIVE defaults are checked once on the encoded parameters. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antar/password.h"

/* Cheap limits for every test but the one on defaults: the limits are read once per process,
 * and Criterion runs each test in its own process. */
static void cheap(void)
{
    setenv("ANTAR_ARGON2_OPSLIMIT", "1", 1);
    setenv("ANTAR_ARGON2_MEMLIMIT", "8192", 1);
}

Test(password, hash_then_verify, .init = cheap)
{
    char h[ANTAR_PASSWORD_HASH_MAX];
    cr_assert_eq(antar_password_hash("correct horse", h), ANTAR_OK);
    cr_assert(strncmp(h, "$argon2id$", 10) == 0, "hash is %s", h);
    cr_assert(antar_password_verify(h, "correct horse"));
    cr_assert_not(antar_password_verify(h, "correct horsf"));
    cr_assert_not(antar_password_verify(h, ""));
}

Test(password, same_password_gives_different_hashes, .init = cheap)
{
    char a[ANTAR_PASSWORD_HASH_MAX], b[ANTAR_PASSWORD_HASH_MAX];
    cr_assert_eq(antar_password_hash("secret123", a), ANTAR_OK);
    cr_assert_eq(antar_password_hash("secret123", b), ANTAR_OK);
    cr_assert_str_neq(a, b);
    cr_assert(antar_password_verify(a, "secret123"));
    cr_assert(antar_password_verify(b, "secret123"));
}

Test(password, garbage_hash_never_matches, .init = cheap)
{
    cr_assert_not(antar_password_verify(NULL, "x"));
    cr_assert_not(antar_password_verify("", "x"));
    cr_assert_not(antar_password_verify("plaintext", "plaintext"));
    cr_assert_not(antar_password_verify("$argon2id$v=19$m=8,t=1,p=1$junk", "x"));
    char h[ANTAR_PASSWORD_HASH_MAX];
    cr_assert_eq(antar_password_hash("x", h), ANTAR_OK);
    cr_assert_not(antar_password_verify(h, NULL));
}

Test(password, utf8_and_long_passwords, .init = cheap)
{
    char h[ANTAR_PASSWORD_HASH_MAX];
    char longpw[129];
    memset(longpw, 'a', 128);
    longpw[128] = '\0';
    cr_assert_eq(antar_password_hash(longpw, h), ANTAR_OK);
    cr_assert(antar_password_verify(h, longpw));
    longpw[127] = 'b';
    cr_assert_not(antar_password_verify(h, longpw));
    cr_assert_eq(antar_password_hash("kata sandi rahasia é ü 日本", h), ANTAR_OK);
    cr_assert(antar_password_verify(h, "kata sandi rahasia é ü 日本"));
}

Test(password, dummy_verify_does_not_crash, .init = cheap)
{
    antar_password_dummy_verify("whatever");
    antar_password_dummy_verify("");
    antar_password_dummy_verify(NULL);
}

Test(password, check_matches_like_verify, .init = cheap)
{
    char h[ANTAR_PASSWORD_HASH_MAX];
    cr_assert_eq(antar_password_hash("correct horse", h), ANTAR_OK);
    cr_assert(antar_password_check(h, "correct horse"));
    cr_assert_not(antar_password_check(h, "correct horsf"));
    cr_assert_not(antar_password_check(h, NULL));
}

Test(password, check_without_an_account_is_false, .init = cheap)
{
    cr_assert_not(antar_password_check(NULL, "anything"));
    cr_assert_not(antar_password_check(NULL, ""));
    cr_assert_not(antar_password_check(NULL, NULL));
    cr_assert_not(antar_password_check("", "x"));
    cr_assert_not(antar_password_check("plaintext", "plaintext"));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "No account" (NULL) and an unusable stored value must cost a real Argon2id run, like a wrong
 * password: a fast answer would tell which accounts exist. With the INTERACTIVE limits one run
 * takes tens of milliseconds, a skipped one microseconds, so a quarter is a safe margin on a
 * busy machine. */
Test(password, check_without_an_account_takes_a_verify)
{
    unsetenv("ANTAR_ARGON2_OPSLIMIT");
    unsetenv("ANTAR_ARGON2_MEMLIMIT");
    char h[ANTAR_PASSWORD_HASH_MAX];
    cr_assert_eq(antar_password_hash("timing", h), ANTAR_OK);
    double t0 = now_s();
    cr_assert_not(antar_password_check(h, "wrong"));
    double wrong = now_s() - t0;
    t0 = now_s();
    cr_assert_not(antar_password_check(NULL, "wrong"));
    double none = now_s() - t0;
    t0 = now_s();
    cr_assert_not(antar_password_check("$2y$10$not-argon2", "wrong"));
    double garbage = now_s() - t0;
    cr_assert_geq(none, wrong / 4, "no account: %.4f s, wrong password: %.4f s", none, wrong);
    cr_assert_geq(garbage, wrong / 4, "bad hash: %.4f s, wrong password: %.4f s", garbage, wrong);
}

Test(password, defaults_are_interactive)
{
    unsetenv("ANTAR_ARGON2_OPSLIMIT");
    unsetenv("ANTAR_ARGON2_MEMLIMIT");
    char h[ANTAR_PASSWORD_HASH_MAX];
    cr_assert_eq(antar_password_hash("defaults!", h), ANTAR_OK);
    /* INTERACTIVE = 64 MiB (65536 KiB), 2 passes. */
    cr_assert(strstr(h, "m=65536,t=2,p=1") != NULL, "hash is %s", h);
    cr_assert(antar_password_verify(h, "defaults!"));
}

static void bad_env(void)
{
    setenv("ANTAR_ARGON2_OPSLIMIT", "-3", 1);
    setenv("ANTAR_ARGON2_MEMLIMIT", "lots", 1);
}

Test(password, invalid_env_falls_back_to_defaults, .init = bad_env)
{
    char h[ANTAR_PASSWORD_HASH_MAX];
    cr_assert_eq(antar_password_hash("fallback", h), ANTAR_OK);
    cr_assert(strstr(h, "m=65536,t=2,p=1") != NULL, "hash is %s", h);
}

/* Many threads at once must all finish correctly through the semaphore (no deadlock, no lost
 * slot): with one slot they run strictly one after another. */
static void *hash_worker(void *arg)
{
    (void)arg;
    char h[ANTAR_PASSWORD_HASH_MAX];
    if (antar_password_hash("concurrent", h) != ANTAR_OK)
        return (void *)1;
    if (!antar_password_verify(h, "concurrent") || antar_password_verify(h, "other"))
        return (void *)1;
    antar_password_dummy_verify("concurrent");
    return NULL;
}

static void one_slot(void)
{
    cheap();
    setenv("ANTAR_ARGON2_MAX_CONCURRENT", "1", 1);
}

Test(password, concurrent_hashes_all_complete, .init = one_slot)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hash_worker, NULL), 0);
    for (int i = 0; i < 8; i++) {
        void *rv = (void *)1;
        pthread_join(t[i], &rv);
        cr_assert_null(rv, "worker %d failed", i);
    }
}
