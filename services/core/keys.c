/* core's signing keys: Ed25519, created on first start and kept in <state_dir>/keys.
 *
 * Layout (documented in docs/security.md; the integration tests read current.jwk to forge
 * tokens):
 *   keys/current.jwk   the signing key as a private JWK {kty OKP, crv Ed25519, x, d, kid, alg,
 *                      created}, mode 0600
 *   keys/next.jwk      during a rotation only: the next signing key, already in the JWKS
 *   keys/previous.jwk  {"keys": [...]}: public JWKs of retired keys, each with "retired"
 *                      (unix seconds), kept while tokens they signed may be alive
 * The kid is the RFC 7638 thumbprint. Rotation needs no command: when current.jwk is older
 * than ANTAR_KEY_MAX_AGE_S (30 days by default) a next key is made and published; 10 s later
 * it replaces current.jwk, and the old one becomes previous.jwk.
 * The previous public key stays in the JWKS for the access-token lifetime plus a minute after
 * the rotation, so tokens signed just before it stay valid until they expire.
 */
#include <errno.h>
#include <stdbool.h>
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
#include "antar/config.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/util.h"
#include "oauth.h"

/* Longer than the services' 5 s JWKS refetch interval (lib/auth_jwt.c). */
#define KEY_PUBLISH_LEAD_S 10
/* A retired key verifies until every token it signed has expired, plus a margin. */
#define KEY_RETIRED_KEEP_S (OAUTH_ACCESS_TTL_S + 60)

static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static char keys_dir[512];
static long long keys_max_age;
static json_t *cur_priv;  /* private JWK of the current key */
static json_t *next_priv; /* published, not yet signing (rotation in progress), or NULL */
static json_t *prev_pub;  /* {"keys": [public JWK + "retired"]}: retired keys, or NULL */
static jwk_t *cur_jwk;    /* Rhonabwy form of cur_priv */

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

/* Write atomically: a temporary file created 0600 (named after this process, so that two core
 * instances sharing the directory never write the same one), then rename, so a crash never
 * leaves a half-written key. exclusive: link instead of rename, so that the file is only
 * created when it does not exist; returns 1 when another instance made it first. */
static int write_json_file_ex(const char *name, json_t *doc, bool exclusive)
{
    char path[600], tmp[640];
    snprintf(path, sizeof path, "%s/%s", keys_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
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
    if (rc == 0 && exclusive) {
        if (link(tmp, path) != 0)
            rc = errno == EEXIST ? 1 : -1;
        unlink(tmp);
        return rc;
    }
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int write_json_file(const char *name, json_t *doc)
{
    return write_json_file_ex(name, doc, false);
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

static long long created_of(json_t *k)
{
    return json_integer_value(json_object_get(k, "created"));
}

static int valid_private(json_t *k)
{
    return json_is_string(json_object_get(k, "d")) && json_is_string(json_object_get(k, "kid")) &&
           json_is_string(json_object_get(k, "x"));
}

static const char *kid_of(json_t *k)
{
    return json_string_value(json_object_get(k, "kid"));
}

static bool same_key(json_t *a, json_t *b)
{
    if (!a || !b)
        return a == b;
    const char *x = kid_of(a), *y = kid_of(b);
    return x && y && strcmp(x, y) == 0;
}

/* Several core instances may share the key directory: what one of them rotated, the others
 * adopt from the files (at most once a second, from the rotation check and the JWKS), so
 * every instance signs with the same key and publishes the same set. */
static long long synced_ms;

static int sync_locked(bool force)
{
    long long now = antar_mono_ms();
    if (!force && now - synced_ms < 1000)
        return 0;
    synced_ms = now;
    json_t *cur = read_json_file("current.jwk"), *next = read_json_file("next.jwk"),
           *prev = read_json_file("previous.jwk");
    bool changed = false;
    if (cur && valid_private(cur) && !same_key(cur, cur_priv)) {
        json_decref(cur_priv);
        cur_priv = json_incref(cur);
        changed = true;
    }
    if (!(next && !valid_private(next)) && !same_key(next, next_priv)) {
        json_decref(next_priv);
        next_priv = json_incref(next);
        changed = true;
    }
    if (prev && !json_equal(prev, prev_pub)) {
        json_decref(prev_pub);
        prev_pub = json_incref(prev);
        changed = true;
    }
    json_decref(cur);
    json_decref(next);
    json_decref(prev);
    if (changed)
        antar_log_json("info", "signing_keys_adopted",
                       json_pack("{s:s?}", "kid", kid_of(cur_priv)));
    return changed && cur_priv ? install_locked() : 0;
}

/* First start: the first key signs at once (nobody holds a token yet). Another instance
 * starting at the same moment may make it first: then its key is the one. */
static int create_first_locked(void)
{
    json_t *fresh = key_generate();
    int w = fresh ? write_json_file_ex("current.jwk", fresh, true) : -1;
    if (w == 1) {
        json_decref(fresh);
        cur_priv = read_json_file("current.jwk");
        if (!cur_priv || !valid_private(cur_priv))
            return -1;
        return install_locked();
    }
    if (w != 0) {
        json_decref(fresh);
        return -1;
    }
    cur_priv = fresh;
    antar_log_json("info", "signing_key_created",
                   json_pack("{s:O}", "kid", json_object_get(cur_priv, "kid")));
    return install_locked();
}

/* Rotation, step 1: make the next key and publish it in the JWKS without signing with it.
 * A service refetches the JWKS at most once every 5 s on an unknown kid; publishing the key
 * KEY_PUBLISH_LEAD_S before it signs anything means that any fetch a service made in those
 * seconds already had it, so no fresh token is ever refused for its kid. */
static int prepare_next_locked(void)
{
    json_t *fresh = key_generate();
    int w = fresh ? write_json_file_ex("next.jwk", fresh, true) : -1;
    if (w != 0) {
        json_decref(fresh);
        /* Another instance published its next key first: that one is the next key. */
        return w == 1 ? sync_locked(true) : -1;
    }
    next_priv = fresh;
    antar_log_json("info", "signing_key_published",
                   json_pack("{s:O}", "kid", json_object_get(next_priv, "kid")));
    return install_locked();
}

/* Rotation, step 2: the next key signs from now on; the current one is retired but stays in
 * the JWKS until the tokens it signed have expired. rename() makes the switch atomic. */
static int promote_next_locked(void)
{
    char from[600], to[600];
    long long now = (long long)time(NULL);
    json_t *pub = json_pack("{s:[]}", "keys"), *list = json_object_get(pub, "keys"), *k;
    size_t i;
    /* Keep every retired key whose tokens may still be alive, not only the last one: two
     * rotations within one token lifetime must not cut off the older tokens. */
    json_array_foreach(json_object_get(prev_pub, "keys"), i, k)
    {
        if (now < json_integer_value(json_object_get(k, "retired")) + KEY_RETIRED_KEEP_S)
            json_array_append(list, k);
    }
    json_t *cur = public_of(cur_priv);
    json_object_set_new(cur, "retired", json_integer((json_int_t)now));
    json_array_append_new(list, cur);
    if (write_json_file("previous.jwk", pub) != 0) {
        json_decref(pub);
        return -1;
    }
    snprintf(from, sizeof from, "%s/next.jwk", keys_dir);
    snprintf(to, sizeof to, "%s/current.jwk", keys_dir);
    if (rename(from, to) != 0) {
        json_decref(pub);
        /* Another instance promoted it a moment ago: take the files as they are now. */
        return errno == ENOENT ? sync_locked(true) : -1;
    }
    json_decref(prev_pub);
    prev_pub = pub;
    json_decref(cur_priv);
    cur_priv = next_priv;
    next_priv = NULL;
    antar_log_json("info", "signing_key_rotated",
                   json_pack("{s:O}", "kid", json_object_get(cur_priv, "kid")));
    return install_locked();
}

static int rotate_step_locked(void)
{
    if (sync_locked(false) != 0)
        return -1;
    long long now = (long long)time(NULL);
    if (next_priv)
        return now >= created_of(next_priv) + KEY_PUBLISH_LEAD_S ? promote_next_locked() : 0;
    if (now - created_of(cur_priv) > keys_max_age)
        return prepare_next_locked();
    return 0;
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
    next_priv = read_json_file("next.jwk");
    prev_pub = read_json_file("previous.jwk");
    if ((cur_priv && !valid_private(cur_priv)) || (next_priv && !valid_private(next_priv))) {
        antar_logf("error", "keys/current.jwk or keys/next.jwk is not a private Ed25519 JWK");
        goto out;
    }
    if (!cur_priv) {
        json_decref(next_priv);
        next_priv = NULL;
        rc = create_first_locked();
    } else {
        rc = install_locked();
        if (rc == 0 && rotate_step_locked() != 0)
            antar_logf("error", "signing key rotation failed; keeping the current key");
    }
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
    json_decref(next_priv);
    json_decref(prev_pub);
    cur_priv = next_priv = prev_pub = NULL;
    pthread_mutex_unlock(&keys_lock);
}

void core_keys_maybe_rotate(void)
{
    pthread_mutex_lock(&keys_lock);
    if (cur_priv && rotate_step_locked() != 0)
        antar_logf("error", "signing key rotation failed; keeping the current key");
    pthread_mutex_unlock(&keys_lock);
}

/* The caller holds keys_lock; the JWKS is rebuilt from the in-memory keys. */
static json_t *jwks_locked(void)
{
    json_t *keys = json_array();
    if (cur_priv)
        json_array_append_new(keys, public_of(cur_priv));
    if (next_priv)
        json_array_append_new(keys, public_of(next_priv));
    json_t *k;
    size_t i;
    json_array_foreach(json_object_get(prev_pub, "keys"), i, k)
    {
        if ((long long)time(NULL) <
            json_integer_value(json_object_get(k, "retired")) + KEY_RETIRED_KEEP_S) {
            json_t *p = json_deep_copy(k);
            json_object_del(p, "retired");
            json_array_append_new(keys, p);
        }
    }
    return json_pack("{s:o}", "keys", keys);
}

json_t *core_keys_jwks(void)
{
    pthread_mutex_lock(&keys_lock);
    if (cur_priv)
        (void)sync_locked(false);
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

/* ---- emergency retirement ---------------------------------------------------------------- */

static int retire_kid(const char *kid)
{
    if (!kid || !*kid)
        return 0;
    /* Under the revocation prefix that every service watches: each drops its kept answers at
     * once and refuses any token signed with this key, cached or not, for as long as such a
     * token could live. */
    redisReply *r =
        antar_kv_command("SET revoked:jti:kid:%s 1 EX %d", kid, OAUTH_ACCESS_TTL_S + 120);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    if (ok)
        printf("retired %s\n", kid);
    else
        fprintf(stderr, "core --retire-keys: Redis refused the retirement of %s\n", kid);
    return ok ? 0 : -1;
}

int core_keys_retire_command(int argc, char **argv)
{
    (void)argv;
    static antar_config_t cfg;
    if (argc != 0) {
        fprintf(stderr, "core --retire-keys takes no arguments\n");
        return 2;
    }
    antar_config_load(&cfg, "core");
    if (antar_kv_init(&cfg) != 0) {
        fprintf(stderr, "core --retire-keys: Redis client init failed\n");
        return 1;
    }
    if (strlen(cfg.state_dir) + sizeof "/keys" > sizeof keys_dir) {
        fprintf(stderr, "core --retire-keys: ANTAR_STATE_DIR is too long\n");
        return 1;
    }
    memcpy(keys_dir, cfg.state_dir, strlen(cfg.state_dir));
    memcpy(keys_dir + strlen(cfg.state_dir), "/keys", sizeof "/keys");
    int rc = 0;
    static const char *const files[] = {"current.jwk", "next.jwk"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        json_t *k = read_json_file(files[i]);
        if (k && retire_kid(json_string_value(json_object_get(k, "kid"))) != 0)
            rc = 1;
        json_decref(k);
    }
    json_t *prev = read_json_file("previous.jwk");
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(prev, "keys"), i, k)
    {
        if (retire_kid(json_string_value(json_object_get(k, "kid"))) != 0)
            rc = 1;
    }
    json_decref(prev);
    /* Only once every kid is on the list are the keys deleted: core makes a new one at start. */
    if (rc == 0) {
        char path[600];
        for (size_t j = 0; j < 3; j++) {
            static const char *const all[] = {"current.jwk", "next.jwk", "previous.jwk"};
            snprintf(path, sizeof path, "%s/%s", keys_dir, all[j]);
            if (unlink(path) != 0 && errno != ENOENT)
                rc = 1;
        }
    }
    antar_kv_thread_end();
    return rc;
}
