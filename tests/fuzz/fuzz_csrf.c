/* fuzz_csrf.c — libFuzzer harness for CSRF tokens (lib/auth_csrf.c), which arrive in the
 * X-CSRF-Token header or the csrf_token body field of every state-changing request.
 *
 * Input layout: byte 0 = position of the byte to change, byte 1 = its new value, the rest up to
 * the first '\n' is the subject, after it the token a client sent (both cut at a NUL: headers
 * and form values are C strings by then).
 *
 * Checked beyond "no crash, no leak, no UB":
 *  - a token accepted for a subject decodes to exactly exp || nonce || tag, whose tag is the
 *    HMAC-SHA512-256 of the documented message under the key (computed here independently),
 *    and exp is in the future;
 *  - round trip: a token issued for a subject verifies for it; the same token is refused for any
 *    other subject (one byte more, one byte changed); any single changed byte is refused;
 *  - subjects that cannot be issued for (empty, longer than 255) are refused by verify too. */
#include <stdint.h>
#include <time.h>
#include <sodium.h>

#include "antar/auth.h"
#include "fuzz_common.h"

#define KEY_HEX "6b65792d666f722d66757a7a696e672d6f6e6c792d6e6f742d612d7365637265"
static unsigned char key[32];

static void setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    size_t n = 0;
    FUZZ_CHECK(sodium_init() >= 0 && antar_csrf_init(KEY_HEX) == 0, "csrf init");
    sodium_hex2bin(key, sizeof key, KEY_HEX, strlen(KEY_HEX), NULL, &n, NULL);
}

/* The oracle: is token a genuine, unexpired token for sub, by the documented format? */
static bool genuine(const char *sub, const char *token)
{
    unsigned char raw[8 + 16 + 32], mac[32];
    size_t n = 0;
    if (sodium_base642bin(raw, sizeof raw, token, strlen(token), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != sizeof raw)
        return false;
    size_t sl = strlen(sub);
    unsigned char len[2] = {(unsigned char)(sl >> 8), (unsigned char)sl};
    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, key, sizeof key);
    crypto_auth_hmacsha512256_update(&st, (const unsigned char *)"antar-csrf-v1", 13);
    crypto_auth_hmacsha512256_update(&st, len, 2);
    crypto_auth_hmacsha512256_update(&st, (const unsigned char *)sub, sl);
    crypto_auth_hmacsha512256_update(&st, raw, 24);
    crypto_auth_hmacsha512256_final(&st, mac);
    uint64_t e = 0;
    for (int i = 0; i < 8; i++)
        e = e << 8 | raw[i];
    return memcmp(mac, raw + 24, 32) == 0 && (long long)e > (long long)time(NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    setup();
    unsigned pos = data[0], byte = data[1];
    char *text = malloc(size - 1);
    if (!text)
        return 0;
    memcpy(text, data + 2, size - 2);
    text[size - 2] = '\0';
    char *token = strchr(text, '\n');
    if (token)
        *token++ = '\0';
    const char *sub = text;

    /* The client's token against the subject. */
    if (token) {
        antar_err_t e = antar_csrf_verify(sub, token);
        FUZZ_CHECK(e == ANTAR_OK || e == ANTAR_E_CSRF_INVALID, "verify gave %d", e);
        if (e == ANTAR_OK)
            FUZZ_CHECK(genuine(sub, token) && *sub && strlen(sub) <= 255 && strlen(token) <= 128,
                       "accepted a token that is not genuine for '%s'", sub);
    }

    /* Round trip for this subject. */
    char tok[128], other[300];
    long long exp = 0;
    size_t sl = strlen(sub);
    int rc = antar_csrf_issue(sub, 600, tok, sizeof tok, &exp);
    if (sl == 0 || sl > 255) {
        FUZZ_CHECK(rc == -1, "issued for a subject of %zu bytes", sl);
        FUZZ_CHECK(antar_csrf_verify(sub, "AAAA") == ANTAR_E_CSRF_INVALID, "verify bad sub");
        free(text);
        return 0;
    }
    FUZZ_CHECK(rc == 0 && exp > (long long)time(NULL), "issue failed for '%s'", sub);
    FUZZ_CHECK(antar_csrf_verify(sub, tok) == ANTAR_OK, "own token refused for '%s'", sub);
    FUZZ_CHECK(genuine(sub, tok), "issued token does not match the documented format");
    snprintf(other, sizeof other, "%sx", sub);
    FUZZ_CHECK(antar_csrf_verify(other, tok) != ANTAR_OK, "token for '%s' taken by '%s'", sub,
               other);
    snprintf(other, sizeof other, "%s", sub);
    other[pos % sl] = (char)(other[pos % sl] == 'a' ? 'b' : 'a');
    FUZZ_CHECK(antar_csrf_verify(other, tok) != ANTAR_OK, "token for '%s' taken by '%s'", sub,
               other);
    size_t tl = strlen(tok);
    char flipped = (char)(byte ? byte : 1);
    if (flipped != tok[pos % tl]) {
        tok[pos % tl] = flipped;
        FUZZ_CHECK(antar_csrf_verify(sub, tok) != ANTAR_OK,
                   "token with byte %u changed to 0x%02x "
                   "accepted",
                   pos % (unsigned)tl, byte);
    }
    free(text);
    return 0;
}
