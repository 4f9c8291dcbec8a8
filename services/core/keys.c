/* core's signing keys: Ed25519, created on first start and kept in <state_dir>/keys.
 *
 * Layout (documented in docs/security.md; the integration tests read current.jwk to forge
 * tokens):
 *   keys/current.jwk   the signing key as a private JWK {kty OKP, crv Ed25519, x, d, kid, alg,
 *                      created}, mode 0600
 *   keys/previous.jwk  the public JWK of the key it replaced, with "retired" (unix seconds)
 * The kid is the RFC 7638 thumbprint. Rotation needs no command: when current.jwk is older
 * than ANTAR_KEY_MAX_AGE_S (30 days by default) it becomes previous.jwk and a new key is made.
 * The previous public key stays in the JWKS for the access-token lifetime plus a minute after
 * the rotation, so tokens signed just before it stay valid until they expire.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <rhonabwy.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/log.h"
#include "oauth.h"

static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static char keys_dir[512];
static long long keys_max_age;
static json_t *cur_priv; /* private JWK of the current key */
static json_t *prev_pub; /* public JWK of the previous key, or NULL */
static jwk_t *cur_jwk;   /* Rhonabwy form of cur_priv */

static void b64url(const unsigned char *in, size_t n, char *out, size_t outlen)
{
    sodium_bin2base64(out, outlen, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static json_t *public_of(json_t *priv)
{
    return json_pack("{s:s,s:s,s:O,s:O,s:s,s:s}", "kty", "OKP", "crv", "Ed25519", "x",
                     json_object_get(priv, "x"), "kid", json_object_get(priv, "kid"), "alg",
                     "EdDSA", "use", "sig");
}

static json_t *key_generate(void)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char th[crypto_hash_sha256_BYTES];
    char x[64], d[64], kid[64], canon[128];
    crypto_sign_keypair(pk, sk);
    b64url(pk, sizeof pk, x, sizeof x);
    b64url(sk, 32, d, sizeof d); /* the seed is the JWK "d" of an Ed25519 key */
    /* RFC 7638 thumbprint: the required members in lexical order, no spaces. */
    snprintf(canon, sizeof canon, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x);
    crypto_hash_sha256(th, (const unsigned char *)canon, strlen(canon));
    b64url(th, sizeof th, kid, sizeof kid);
    json_t *k = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "kty", "OKP", "crv", "Ed25519", "x", x,
                          "d", d, "kid", kid, "alg", "EdDSA", "created", (json_int_t)time(NULL));
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(d, sizeof d);
    return k;
}

/* Write atomically: a temporary file created 0600, then rename, so a crash never leaves a
 * half-written key. */
static int write_json_file(const char *name, json_t *doc)
{
    char path[600], tmp[620];
    snprintf(path, sizeof path, "%s/%s", keys_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char *s = json_dumps(doc, JSON_COMPACT);
    if (!s)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = -1;
    if (fd >= 0) {
        size_t n = strlen(s);
        if (write(fd, s, n) == (ssize_t)n && fsync(fd) == 0)
            rc = 0;
        close(fd);
    }
    sodium_memzero(s, strlen(s));
    free(s);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static json_t *read_json_file(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", keys_dir, name);
    return json_load_file(path, 0, NULL);
}

static json_t *jwks_locked(void);

static int install_locked(void)
{
    jwk_t *j = NULL;
    if (r_jwk_init(&j) != RHN_OK || r_jwk_import_from_json_t(j, cur_priv) != RHN_OK) {
        r_jwk_free(j);
        return -1;
    }
    r_jwk_free(cur_jwk);
    cur_jwk = j;
    json_t *doc = jwks_locked();
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    int rc = s ? antar_auth_set_local_jwks(s) : -1;
    free(s);
    return rc;
}

static int rotate_locked(void)
{
    json_t *fresh = key_generate();
    if (!fresh)
        return -1;
    if (cur_priv) {
        json_t *pub = public_of(cur_priv);
        json_object_set_new(pub, "retired", json_integer((json_int_t)time(NULL)));
        if (write_json_file("previous.jwk", pub) != 0) {
            json_decref(pub);
            json_decref(fresh);
            return -1;
        }
        json_decref(prev_pub);
        prev_pub = pub;
    }
    if (write_json_file("current.jwk", fresh) != 0) {
        json_decref(fresh);
        return -1;
    }
    json_decref(cur_priv);
    cur_priv = fresh;
    antar_log_json("info", "signing_key_created",
                   json_pack("{s:O}", "kid", json_object_get(cur_priv, "kid")));
    return install_locked();
}

static int too_old(void)
{
    long long created = json_integer_value(json_object_get(cur_priv, "created"));
    return (long long)time(NULL) - created > keys_max_age;
}

int core_keys_init(const char *dir, long long max_age_s)
{
    int rc = -1;
    pthread_mutex_lock(&keys_lock);
    snprintf(keys_dir, sizeof keys_dir, "%s", dir);
    keys_max_age = max_age_s > 0 ? max_age_s : 30LL * 86400;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        antar_logf("error", "cannot create key directory %s", dir);
        goto out;
    }
    chmod(dir, 0700);
    cur_priv = read_json_file("current.jwk");
    prev_pub = read_json_file("previous.jwk");
    if (cur_priv && (!json_is_string(json_object_get(cur_priv, "d")) ||
                     !json_is_string(json_object_get(cur_priv, "kid")))) {
        antar_logf("error", "keys/current.jwk is not a private Ed25519 JWK");
        goto out;
    }
    if (!cur_priv || too_old())
        rc = rotate_locked();
    else
        rc = install_locked();
out:
    pthread_mutex_unlock(&keys_lock);
    return rc;
}

void core_keys_shutdown(void)
{
    pthread_mutex_lock(&keys_lock);
    r_jwk_free(cur_jwk);
    cur_jwk = NULL;
    json_decref(cur_priv);
    json_decref(prev_pub);
    cur_priv = prev_pub = NULL;
    pthread_mutex_unlock(&keys_lock);
}

void core_keys_maybe_rotate(void)
{
    pthread_mutex_lock(&keys_lock);
    if (cur_priv && too_old() && rotate_locked() != 0)
        antar_logf("error", "signing key rotation failed; keeping the current key");
    pthread_mutex_unlock(&keys_lock);
}

/* The caller holds keys_lock; the JWKS is rebuilt from the in-memory keys. */
static json_t *jwks_locked(void)
{
    json_t *keys = json_array();
    if (cur_priv)
        json_array_append_new(keys, public_of(cur_priv));
    if (prev_pub) {
        long long retired = json_integer_value(json_object_get(prev_pub, "retired"));
        if ((long long)time(NULL) < retired + OAUTH_ACCESS_TTL_S + 60) {
            json_t *p = json_deep_copy(prev_pub);
            json_object_del(p, "retired");
            json_array_append_new(keys, p);
        }
    }
    return json_pack("{s:o}", "keys", keys);
}

json_t *core_keys_jwks(void)
{
    pthread_mutex_lock(&keys_lock);
    json_t *doc = jwks_locked();
    pthread_mutex_unlock(&keys_lock);
    return doc;
}

char *core_keys_sign(json_t *claims)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    pthread_mutex_lock(&keys_lock);
    if (!cur_jwk || r_jwt_init(&jwt) != RHN_OK)
        goto out;
    if (r_jwt_set_sign_alg(jwt, R_JWA_ALG_EDDSA) != RHN_OK ||
        r_jwt_set_header_str_value(jwt, "typ", "at+jwt") != RHN_OK ||
        r_jwt_set_header_str_value(jwt, "kid",
                                   json_string_value(json_object_get(cur_priv, "kid"))) != RHN_OK ||
        r_jwt_set_full_claims_json_t(jwt, claims) != RHN_OK)
        goto out;
    char *s = r_jwt_serialize_signed(jwt, cur_jwk, 0);
    out = s ? strdup(s) : NULL;
    r_free(s);
out:
    pthread_mutex_unlock(&keys_lock);
    r_jwt_free(jwt);
    return out;
}
