/* CSRF tokens: base64url(exp || nonce || HMAC-SHA512-256(key, "antar-csrf" || sub || exp ||
 * nonce)). Stateless, so every service checks them with the shared key and no lookup; bound to
 * the subject, so a token taken from one account is useless for another. */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/util.h"

#define CSRF_NONCE 16
#define CSRF_RAW (8 + CSRF_NONCE + crypto_auth_BYTES)

static unsigned char csrf_key[crypto_auth_KEYBYTES];
static int csrf_ready;

int antar_csrf_init(const char *key_hex)
{
    size_t n = 0;
    if (!key_hex || strlen(key_hex) != 2 * crypto_auth_KEYBYTES)
        return -1;
    if (sodium_init() < 0)
        return -1;
    if (sodium_hex2bin(csrf_key, sizeof csrf_key, key_hex, strlen(key_hex), NULL, &n, NULL) != 0 ||
        n != sizeof csrf_key)
        return -1;
    csrf_ready = 1;
    return 0;
}

/* The MAC covers a domain label and the subject's length, so that no (sub, exp) pair can be
 * shifted into another by moving bytes between the fields. */
static void csrf_mac(const char *sub, const unsigned char *exp_nonce, unsigned char *mac)
{
    crypto_auth_hmacsha512256_state st;
    unsigned char len[2] = {(unsigned char)(strlen(sub) >> 8), (unsigned char)strlen(sub)};
    crypto_auth_hmacsha512256_init(&st, csrf_key, sizeof csrf_key);
    crypto_auth_hmacsha512256_update(&st, (const unsigned char *)"antar-csrf-v1", 13);
    crypto_auth_hmacsha512256_update(&st, len, sizeof len);
    crypto_auth_hmacsha512256_update(&st, (const unsigned char *)sub, strlen(sub));
    crypto_auth_hmacsha512256_update(&st, exp_nonce, 8 + CSRF_NONCE);
    crypto_auth_hmacsha512256_final(&st, mac);
}

int antar_csrf_issue(const char *sub, long ttl_s, char *out, size_t outlen, long long *exp)
{
    unsigned char raw[CSRF_RAW];
    if (!csrf_ready || !sub || !*sub || strlen(sub) > 255 || ttl_s <= 0 ||
        outlen < sodium_base64_ENCODED_LEN(CSRF_RAW, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return -1;
    long long e = (long long)time(NULL) + ttl_s;
    for (int i = 0; i < 8; i++)
        raw[i] = (unsigned char)((uint64_t)e >> (56 - 8 * i));
    randombytes_buf(raw + 8, CSRF_NONCE);
    csrf_mac(sub, raw, raw + 8 + CSRF_NONCE);
    sodium_bin2base64(out, outlen, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (exp)
        *exp = e;
    return 0;
}

antar_err_t antar_csrf_verify(const char *sub, const char *token)
{
    unsigned char raw[CSRF_RAW], mac[crypto_auth_BYTES];
    size_t n = 0;
    if (!csrf_ready || !sub || !*sub || strlen(sub) > 255 || !token || strlen(token) > 128)
        return ANTAR_E_CSRF_INVALID;
    if (antar_b64url_decode(token, strlen(token), raw, sizeof raw, &n) != 0 || n != sizeof raw)
        return ANTAR_E_CSRF_INVALID;
    csrf_mac(sub, raw, mac);
    int ok = sodium_memcmp(mac, raw + 8 + CSRF_NONCE, sizeof mac) == 0;
    uint64_t e = 0;
    for (int i = 0; i < 8; i++)
        e = (e << 8) | raw[i];
    if (!ok || (long long)e <= (long long)time(NULL))
        return ANTAR_E_CSRF_INVALID;
    return ANTAR_OK;
}
