/* fuzz_jwt.c — libFuzzer harness for access-token verification (lib/auth_jwt.c): the
 * Authorization: Bearer header of every protected route.
 *
 * The fuzzer cannot forge an Ed25519 signature, so to reach the header and claims checks it
 * writes the header and claims JSON and the harness signs them. Input layout: byte 0 = mode
 * (0: the rest is a raw token; 1: signed with the JWKS key; 2: signed with a key not in the
 * JWKS), byte 1 = which token byte to change afterwards, the rest = "<header JSON>\n<claims
 * JSON>". Time is fixed (NOW), so that a crash file replays the same way.
 *
 * Checked beyond "no crash, no leak, no UB", for every accepted token, by an independent
 * reading of it:
 *  - it has three base64url segments and the signature verifies under the JWKS key (libsodium);
 *  - the header is an object with alg exactly "EdDSA" (the pin), typ at+jwt, kid "k1", no crit;
 *  - the claims are an object with iss and aud ours, integer exp/iat with exp + 5 > NOW,
 *    iat <= NOW + 60, exp - iat <= 900, nbf (if any) an integer <= NOW + 5, sub matching role;
 *  - the principal is those claims (sub, id, client_id, scope, jti, exp, role);
 *  - the same token with any single byte changed is refused;
 *  - a token signed with a key outside the JWKS is never accepted. */
#include <stdint.h>
#include <strings.h>
#include <sodium.h>

#include "antar/auth.h"
#include "fuzz_common.h"

#define NOW 1750000000LL
#define ISSUER "http://issuer.test"
#define AUDIENCE "antar"

static unsigned char pk[32], sk[64], pk2[32], sk2[64];

static void setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    unsigned char seed[32];
    static antar_config_t cfg;
    char x[64], doc[256];
    FUZZ_CHECK(sodium_init() >= 0, "sodium");
    /* Fixed keys: a crash file replays with the same signatures. */
    memset(seed, 1, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    memset(seed, 2, sizeof seed);
    crypto_sign_seed_keypair(pk2, sk2, seed);
    snprintf(cfg.issuer, sizeof cfg.issuer, ISSUER);
    snprintf(cfg.audience, sizeof cfg.audience, AUDIENCE);
    snprintf(cfg.csrf_key_hex, sizeof cfg.csrf_key_hex, "%064d", 7);
    /* No redis_host: no revocation watcher; verify_at does not ask Redis anyway. */
    FUZZ_CHECK(antar_auth_init(&cfg) == 0, "auth init");
    sodium_bin2base64(x, sizeof x, pk, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(doc, sizeof doc,
             "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"k1\"}]}", x);
    FUZZ_CHECK(antar_auth_set_local_jwks(doc) == 0, "jwks");
}

static json_t *segment_json(const char *s, size_t n)
{
    unsigned char *raw = malloc(n + 1);
    size_t len = 0;
    json_t *doc = NULL;
    if (raw && sodium_base642bin(raw, n + 1, s, n, NULL, &len, NULL,
                                 sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0)
        /* Rhonabwy reads the JSON as a C string: bytes after a NUL are not looked at. Only a
         * signature of core's can carry such a segment, so the oracle reads it the same way. */
        doc = json_loadb((const char *)raw, strnlen((const char *)raw, len), 0, NULL);
    free(raw);
    return doc;
}

/* Everything an accepted token must be, read without Rhonabwy. */
static void check_accepted(const char *tok, const antar_principal_t *p)
{
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    FUZZ_CHECK(d1 && d2 && !strchr(d2 + 1, '.'), "not three segments");
    unsigned char sig[64];
    size_t sl = 0;
    FUZZ_CHECK(sodium_base642bin(sig, sizeof sig, d2 + 1, strlen(d2 + 1), NULL, &sl, NULL,
                                 sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
                   sl == 64,
               "signature segment");
    FUZZ_CHECK(
        crypto_sign_verify_detached(sig, (const unsigned char *)tok, (size_t)(d2 - tok), pk) == 0,
        "accepted without a valid signature of the JWKS key");
    json_t *h = segment_json(tok, (size_t)(d1 - tok));
    json_t *c = segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
    FUZZ_CHECK(json_is_object(h), "header is not an object");
    FUZZ_CHECK(json_is_object(c), "claims are not an object");
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *typ = json_string_value(json_object_get(h, "typ"));
    const char *kid = json_string_value(json_object_get(h, "kid"));
    FUZZ_CHECK(alg && strcmp(alg, "EdDSA") == 0, "accepted with alg %s", alg ? alg : "(none)");
    FUZZ_CHECK(typ && (!strcasecmp(typ, "at+jwt") || !strcasecmp(typ, "application/at+jwt")),
               "typ");
    FUZZ_CHECK(kid && strcmp(kid, "k1") == 0, "kid");
    FUZZ_CHECK(!json_object_get(h, "crit"), "crit accepted");

    const char *iss = json_string_value(json_object_get(c, "iss"));
    FUZZ_CHECK(iss && strcmp(iss, ISSUER) == 0, "iss");
    json_t *aud = json_object_get(c, "aud"), *a;
    bool aud_ok = json_is_string(aud) && strcmp(json_string_value(aud), AUDIENCE) == 0;
    size_t i;
    json_array_foreach(aud, i, a) aud_ok =
        aud_ok || (json_is_string(a) && strcmp(json_string_value(a), AUDIENCE) == 0);
    FUZZ_CHECK(aud_ok, "aud");
    json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat"),
           *nbf = json_object_get(c, "nbf");
    FUZZ_CHECK(json_is_integer(exp) && json_is_integer(iat), "exp/iat types");
    long long e = json_integer_value(exp), t = json_integer_value(iat);
    FUZZ_CHECK(e + 5 > NOW && t <= NOW + 60 && e - t <= 900, "exp %lld iat %lld", e, t);
    FUZZ_CHECK(!nbf || (json_is_integer(nbf) && json_integer_value(nbf) <= NOW + 5), "nbf");
    const char *sub = json_string_value(json_object_get(c, "sub"));
    const char *role = json_string_value(json_object_get(c, "role"));
    FUZZ_CHECK(sub && role, "sub/role");
    FUZZ_CHECK(strcmp(p->sub, sub) == 0 && p->exp == e, "principal sub/exp");
    FUZZ_CHECK(strcmp(p->client_id, json_string_value(json_object_get(c, "client_id"))) == 0 &&
                   strcmp(p->scope, json_string_value(json_object_get(c, "scope"))) == 0 &&
                   strcmp(p->jti, json_string_value(json_object_get(c, "jti"))) == 0,
               "principal client_id/scope/jti");
    char want[80];
    if (!strcmp(role, "service")) {
        FUZZ_CHECK(p->role == ANTAR_AUTH_SERVICE && p->id == 0 && !strncmp(sub, "service:", 8) &&
                       sub[8],
                   "service principal");
    } else {
        FUZZ_CHECK((!strcmp(role, "user") && p->role == ANTAR_AUTH_USER) ||
                       (!strcmp(role, "driver") && p->role == ANTAR_AUTH_DRIVER),
                   "role %s", role);
        snprintf(want, sizeof want, "%s:%lld", role, p->id);
        FUZZ_CHECK(p->id >= 1 && p->id <= 9007199254740992LL && strcmp(want, sub) == 0,
                   "sub %s for id %lld", sub, p->id);
    }
    json_decref(h);
    json_decref(c);
}

static char *b64(const char *s, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    if (out)
        sodium_bin2base64(out, cap, (const unsigned char *)s, n,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    setup();
    unsigned mode = data[0] % 3, flip = data[1];
    data += 2;
    size -= 2;
    char *tok = NULL;
    if (mode == 0) {
        tok = malloc(size + 1);
        if (!tok)
            return 0;
        memcpy(tok, data, size);
        tok[size] = '\0';
    } else {
        const uint8_t *nl = memchr(data, '\n', size);
        if (!nl)
            return 0;
        char *h = b64((const char *)data, (size_t)(nl - data));
        char *c = b64((const char *)nl + 1, size - (size_t)(nl - data) - 1);
        size_t hl = h ? strlen(h) : 0, cl = c ? strlen(c) : 0;
        tok = h && c ? malloc(hl + cl + 2 + 90) : NULL;
        if (tok) {
            unsigned char sig[64];
            memcpy(tok, h, hl);
            tok[hl] = '.';
            memcpy(tok + hl + 1, c, cl);
            crypto_sign_detached(sig, NULL, (unsigned char *)tok, hl + 1 + cl,
                                 mode == 1 ? sk : sk2);
            tok[hl + 1 + cl] = '.';
            sodium_bin2base64(tok + hl + cl + 2, 90, sig, 64,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        }
        free(h);
        free(c);
        if (!tok)
            return 0;
    }

    antar_principal_t p;
    memset(&p, 0x5a, sizeof p);
    antar_err_t e = antar_auth_verify_at(tok, NOW, &p);
    if (e == ANTAR_OK) {
        FUZZ_CHECK(mode != 2, "accepted a token signed with a key outside the JWKS");
        check_accepted(tok, &p);
        /* Any single changed byte is refused. */
        size_t tl = strlen(tok), pos = (flip * 7919u + size) % tl;
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
        char was = tok[pos];
        tok[pos] = alphabet[flip % (sizeof alphabet - 1)];
        if (tok[pos] != was)
            FUZZ_CHECK(antar_auth_verify_at(tok, NOW, &p) != ANTAR_OK,
                       "accepted with byte %zu changed from '%c' to '%c'", pos, was, tok[pos]);
        tok[pos] = was;
        /* The last character of the signature carries 2 bits and 4 unused ones: a sibling that
         * differs only there is the one change a lax base64 decoder would not see. */
        const char *at = strchr(alphabet, tok[tl - 1]);
        if (at && at - alphabet < 64) {
            char sibling = alphabet[((at - alphabet) & ~15) | (((at - alphabet) + 1) & 15)];
            char last = tok[tl - 1];
            tok[tl - 1] = sibling;
            FUZZ_CHECK(antar_auth_verify_at(tok, NOW, &p) != ANTAR_OK,
                       "accepted with the signature's last character '%c' respelt '%c'", last,
                       sibling);
        }
    } else {
        FUZZ_CHECK(e == ANTAR_E_INVALID_TOKEN || e == ANTAR_E_NOMEM, "verify gave %d", e);
        unsigned char *b = (unsigned char *)&p;
        for (size_t i = 0; i < sizeof p; i++)
            FUZZ_CHECK(b[i] == 0x5a, "principal written on failure");
    }
    free(tok);
    return 0;
}
