/* CSRF tokens (lib/auth_csrf.c): issued for a subject, verified for that subject only, until
 * they expire, and any tampering is refused. */
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "antar/auth.h"

static const char *KEY1 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *KEY2 = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void setup(void)
{
    cr_assert_eq(antar_csrf_init(KEY1), 0);
}

TestSuite(auth_csrf, .init = setup);

Test(auth_csrf, issued_token_verifies_for_its_subject)
{
    char tok[128];
    long long exp = 0;
    cr_assert_eq(antar_csrf_issue("user:17", 60, tok, sizeof tok, &exp), 0);
    cr_assert_gt(exp, 0);
    cr_assert_eq(antar_csrf_verify("user:17", tok), ANTAR_OK, "token %s", tok);
}

Test(auth_csrf, another_subject_is_refused)
{
    char tok[128];
    cr_assert_eq(antar_csrf_issue("user:17", 60, tok, sizeof tok, NULL), 0);
    cr_assert_eq(antar_csrf_verify("user:18", tok), ANTAR_E_CSRF_INVALID);
    cr_assert_eq(antar_csrf_verify("driver:17", tok), ANTAR_E_CSRF_INVALID);
    cr_assert_eq(antar_csrf_verify("user:1", tok), ANTAR_E_CSRF_INVALID);
}

Test(auth_csrf, expired_token_is_refused)
{
    char tok[128];
    cr_assert_eq(antar_csrf_issue("user:17", 1, tok, sizeof tok, NULL), 0);
    sleep(2);
    cr_assert_eq(antar_csrf_verify("user:17", tok), ANTAR_E_CSRF_INVALID);
}

Test(auth_csrf, tampering_is_refused)
{
    char tok[128], bad[128];
    cr_assert_eq(antar_csrf_issue("user:17", 60, tok, sizeof tok, NULL), 0);
    size_t n = strlen(tok);
    /* Flip one character at a time in the expiry, the nonce and the MAC. */
    size_t at[] = {0, 5, 12, 30, n - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        memcpy(bad, tok, n + 1);
        bad[at[i]] = bad[at[i]] == 'A' ? 'B' : 'A';
        cr_assert_eq(antar_csrf_verify("user:17", bad), ANTAR_E_CSRF_INVALID, "flip at %zu", at[i]);
    }
    memcpy(bad, tok, n + 1);
    bad[n - 2] = '\0';
    cr_assert_eq(antar_csrf_verify("user:17", bad), ANTAR_E_CSRF_INVALID);
    snprintf(bad, sizeof bad, "%sAA", tok);
    cr_assert_eq(antar_csrf_verify("user:17", bad), ANTAR_E_CSRF_INVALID);
}

Test(auth_csrf, garbage_is_refused)
{
    cr_assert_eq(antar_csrf_verify("user:17", ""), ANTAR_E_CSRF_INVALID);
    cr_assert_eq(antar_csrf_verify("user:17", NULL), ANTAR_E_CSRF_INVALID);
    cr_assert_eq(antar_csrf_verify("user:17", "not a token!"), ANTAR_E_CSRF_INVALID);
    cr_assert_eq(antar_csrf_verify("", "abc"), ANTAR_E_CSRF_INVALID);
}

Test(auth_csrf, other_key_is_refused)
{
    char tok[128];
    cr_assert_eq(antar_csrf_issue("user:17", 60, tok, sizeof tok, NULL), 0);
    cr_assert_eq(antar_csrf_init(KEY2), 0);
    cr_assert_eq(antar_csrf_verify("user:17", tok), ANTAR_E_CSRF_INVALID);
}

Test(auth_csrf, bad_keys_are_refused)
{
    cr_assert_eq(antar_csrf_init(""), -1);
    cr_assert_eq(antar_csrf_init("abcd"), -1);
    cr_assert_eq(
        antar_csrf_init("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"), -1);
}

Test(auth_csrf, small_buffer_is_refused)
{
    char tok[16];
    cr_assert_eq(antar_csrf_issue("user:17", 60, tok, sizeof tok, NULL), -1);
}

/* Found by tests/fuzz/fuzz_csrf: libsodium 1.0.18 decodes any byte 0x80-0xff as '_', so every
 * '_' of a genuine token could be respelt and the token still verified. */
Test(auth_csrf, a_token_has_one_spelling)
{
    char tok[128], bad[128];
    int respelt = 0;
    for (int tries = 0; tries < 200 && respelt < 3; tries++) {
        cr_assert_eq(antar_csrf_issue("user:17", 60, tok, sizeof tok, NULL), 0);
        for (size_t i = 0; tok[i]; i++) {
            if (tok[i] != '_')
                continue;
            memcpy(bad, tok, strlen(tok) + 1);
            bad[i] = (char)0x9c;
            cr_assert_eq(antar_csrf_verify("user:17", bad), ANTAR_E_CSRF_INVALID, "0x9c at %zu", i);
            bad[i] = (char)0xff;
            cr_assert_eq(antar_csrf_verify("user:17", bad), ANTAR_E_CSRF_INVALID, "0xff at %zu", i);
            respelt++;
        }
    }
    cr_assert_gt(respelt, 0, "no token with a '_' in 200 tries");
}
