/* Access-token verification in every service, the JWKS cache, and the server's auth hook.
 *
 * The algorithm is pinned: only EdDSA signatures with an Ed25519 key from core's JWKS are
 * accepted, whatever the token's header says, so alg=none, HMAC-with-the-public-key and
 * algorithm-confusion tokens fail before any signature check. Rhonabwy never fetches keys named
 * by the token (jku/x5u/jwk headers are ignored: R_FLAG_IGNORE_REMOTE and an explicit key).
 * A verified token's principal is cached under a BLAKE2b hash of the token until its exp,
 * because a Rhonabwy verify costs about 210 µs.
 *
 * Revocation ("revoked:jti:<jti>" in Redis) is asked of Redis on a token's first use, and its
 * "not revoked" answer is then reused only while Redis itself guarantees nothing changed: a
 * watcher thread holds one connection with client-side-caching invalidations (CLIENT TRACKING
 * BCAST on the prefix "revoked:jti:", redirected to itself and subscribed to
 * __redis__:invalidate). Any byte from Redis on it — a revocation, an expiry, a FLUSHALL — and
 * any loss of that connection bumps a generation counter, which voids every reused answer.
 * A reused answer also needs the watcher's socket to have nothing unread at that instant (one
 * poll(), no wait): Redis queues the invalidation before it answers the revoking SET (BCAST
 * messages are queued in beforeSleep, at the head of the pending writes), so any request that
 * begins after a revocation was acknowledged sees either the unread message or the bumped
 * counter, and asks Redis again. There is therefore no window beyond Redis's own ordering; as a
 * belt-and-braces bound an answer is reused for at most REVOKED_REUSE_MS. Without the watcher
 * (Redis unreachable, tracking refused, ANTAR_REVOCATION_WATCH=0) every request asks Redis.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <rhonabwy.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/httpc.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/metrics.h"
#include "antar/util.h"

#define TOKEN_MAX 4096
#define JWKS_REFETCH_MS 5000
#define CACHE_SLOTS 4096
#define EXP_LEEWAY_S 5
#define ACCESS_MAX_LIFE_S 900
#define REVOKED_PREFIX "revoked:jti:"
#define REVOKED_REUSE_MS 5000 /* longest reuse of one "not revoked" answer */
#define WATCH_RETRY_MS 1000

static const antar_config_t *auth_cfg;
static int degraded_reads = 1; /* ANTAR_AUTH_DEGRADED_READS */
static char auth_issuer[256];
static char auth_audience[64];

static pthread_rwlock_t jwks_lock = PTHREAD_RWLOCK_INITIALIZER;
static jwks_t *jwks;   /* public keys only; guarded by jwks_lock */
static int jwks_local; /* core: installed directly, never fetched */
static long long jwks_fetched_ms = -JWKS_REFETCH_MS;
static pthread_mutex_t fetch_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    unsigned char hash[crypto_generichash_BYTES];
    antar_principal_t p; /* p.exp == 0: empty slot */
    /* The last "not revoked" answer from Redis: valid while rev_gen is the watcher's current
     * generation (0 = none) and before rev_until_ms (monotonic). */
    uint_fast64_t rev_gen;
    long long rev_until_ms;
} cache_slot_t;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_slot_t *cache;

/* ---- key set ------------------------------------------------------------------------- */

/* Keep only public Ed25519 keys with a kid: a private part or another key type in the JWKS
 * is never used for verification. */
static jwks_t *jwks_from_json(const char *doc)
{
    json_error_t jerr;
    json_t *root = json_loads(doc, 0, &jerr), *keys, *k;
    jwks_t *out = NULL;
    size_t i;
    if (!root || !json_is_array(keys = json_object_get(root, "keys")))
        goto fail;
    if (r_jwks_init(&out) != RHN_OK)
        goto fail;
    json_array_foreach(keys, i, k)
    {
        const char *kty = json_string_value(json_object_get(k, "kty"));
        const char *crv = json_string_value(json_object_get(k, "crv"));
        const char *x = json_string_value(json_object_get(k, "x"));
        const char *kid = json_string_value(json_object_get(k, "kid"));
        if (!kty || !crv || !x || !kid || strcmp(kty, "OKP") || strcmp(crv, "Ed25519"))
            continue;
        json_t *pub = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed25519", "x", x,
                                "kid", kid, "alg", "EdDSA");
        jwk_t *jwk = NULL;
        if (pub && r_jwk_init(&jwk) == RHN_OK && r_jwk_import_from_json_t(jwk, pub) == RHN_OK)
            r_jwks_append_jwk(out, jwk);
        r_jwk_free(jwk);
        json_decref(pub);
    }
    json_decref(root);
    return out;
fail:
    json_decref(root);
    r_jwks_free(out);
    return NULL;
}

static void jwks_install(jwks_t *fresh)
{
    pthread_rwlock_wrlock(&jwks_lock);
    jwks_t *old = jwks;
    jwks = fresh;
    pthread_rwlock_unlock(&jwks_lock);
    r_jwks_free(old);
}

int antar_auth_set_local_jwks(const char *jwks_json)
{
    jwks_t *fresh = jwks_json ? jwks_from_json(jwks_json) : NULL;
    if (!fresh)
        return -1;
    jwks_local = 1;
    jwks_install(fresh);
    return 0;
}

/* Fetch core's JWKS, at most once every JWKS_REFETCH_MS, so that a flood of tokens with
 * made-up kids cannot turn into a flood of requests to core. */
static void jwks_refresh(void)
{
    if (jwks_local || !auth_cfg)
        return;
    pthread_mutex_lock(&fetch_lock);
    long long now = antar_mono_ms();
    if (now - jwks_fetched_ms < JWKS_REFETCH_MS) {
        pthread_mutex_unlock(&fetch_lock);
        return;
    }
    jwks_fetched_ms = now;
    antar_httpc_res_t res;
    antar_err_t err = antar_httpc_peer_request(ANTAR_SVC_CORE, "GET", "/.well-known/jwks.json",
                                               NULL, NULL, NULL, &res);
    if (err == ANTAR_OK && res.status == 200 && res.body) {
        char *doc = json_dumps(res.body, JSON_COMPACT);
        jwks_t *fresh = doc ? jwks_from_json(doc) : NULL;
        free(doc);
        if (fresh)
            jwks_install(fresh);
    } else {
        antar_log_json(
            "warn", "jwks_fetch_failed",
            json_pack("{s:s,s:I}", "error", antar_err_code(err), "status", (json_int_t)res.status));
    }
    antar_httpc_res_clean(&res);
    pthread_mutex_unlock(&fetch_lock);
}

static jwk_t *jwks_find(const char *kid)
{
    jwk_t *k = NULL;
    pthread_rwlock_rdlock(&jwks_lock);
    if (jwks)
        k = r_jwks_get_by_kid(jwks, kid);
    pthread_rwlock_unlock(&jwks_lock);
    return k;
}

/* ---- verification -------------------------------------------------------------------- */

static int safe_id(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.' &&
            s[i] != ':')
            return 0;
    return 1;
}

static int aud_ok(json_t *aud)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), auth_audience) == 0;
    if (json_is_array(aud)) {
        size_t i;
        json_t *a;
        json_array_foreach(aud, i, a) if (json_is_string(a) &&
                                          !strcmp(json_string_value(a), auth_audience)) return 1;
    }
    return 0;
}

/* sub must agree with role: "user:<id>" for role user, "driver:<id>" for driver,
 * "service:<name>" for service. */
static int principal_from_claims(json_t *c, antar_principal_t *p)
{
    const char *sub = json_string_value(json_object_get(c, "sub"));
    const char *role = json_string_value(json_object_get(c, "role"));
    const char *cid = json_string_value(json_object_get(c, "client_id"));
    const char *scope = json_string_value(json_object_get(c, "scope"));
    const char *jti = json_string_value(json_object_get(c, "jti"));
    json_t *exp = json_object_get(c, "exp");
    if (!safe_id(sub, sizeof p->sub - 1) || !role || !safe_id(cid, sizeof p->client_id - 1) ||
        !scope || strlen(scope) >= sizeof p->scope || !safe_id(jti, sizeof p->jti - 1) ||
        !json_is_integer(exp))
        return -1;
    memset(p, 0, sizeof *p);
    const char *prefix;
    if (!strcmp(role, "user")) {
        p->role = ANTAR_AUTH_USER;
        prefix = "user:";
    } else if (!strcmp(role, "driver")) {
        p->role = ANTAR_AUTH_DRIVER;
        prefix = "driver:";
    } else if (!strcmp(role, "service")) {
        p->role = ANTAR_AUTH_SERVICE;
        prefix = "service:";
    } else {
        return -1;
    }
    size_t pl = strlen(prefix);
    if (strncmp(sub, prefix, pl) || !sub[pl])
        return -1;
    if (p->role != ANTAR_AUTH_SERVICE) {
        char *end = NULL;
        long long id = strtoll(sub + pl, &end, 10);
        if (*end || id <= 0 || sub[pl] == '0' || id > 9007199254740992LL)
            return -1;
        p->id = id;
    }
    snprintf(p->sub, sizeof p->sub, "%s", sub);
    snprintf(p->client_id, sizeof p->client_id, "%s", cid);
    snprintf(p->scope, sizeof p->scope, "%s", scope);
    snprintf(p->jti, sizeof p->jti, "%s", jti);
    p->exp = json_integer_value(exp);
    return 0;
}

static antar_err_t verify_with_refetch(const char *token, long long now, antar_principal_t *out,
                                       int may_fetch)
{
    jwt_t *jwt = NULL;
    jwk_t *key = NULL;
    json_t *claims = NULL;
    antar_err_t err = ANTAR_E_INVALID_TOKEN;
    size_t n = token ? strlen(token) : 0, dots = 0;
    if (n < 5 || n > TOKEN_MAX)
        return ANTAR_E_INVALID_TOKEN;
    for (size_t i = 0; i < n; i++) {
        if (token[i] == '.')
            dots++;
        else if (!isalnum((unsigned char)token[i]) && token[i] != '-' && token[i] != '_')
            return ANTAR_E_INVALID_TOKEN;
    }
    if (dots != 2)
        return ANTAR_E_INVALID_TOKEN;
    /* An Ed25519 signature is 64 bytes: 86 characters, the last of which has 4 unused bits that
     * must be zero. Rhonabwy ignores them, which gave every token 16 spellings. */
    const char *sig = strrchr(token, '.') + 1;
    if (strlen(sig) != 86 || !strchr("AQgw", sig[85]))
        return ANTAR_E_INVALID_TOKEN;
    if (r_jwt_init(&jwt) != RHN_OK)
        return ANTAR_E_NOMEM;
    if (r_jwt_parse(jwt, token, R_FLAG_IGNORE_REMOTE) != RHN_OK)
        goto out;
    /* The pin: the header's alg must be EdDSA before anything else is looked at. */
    if (r_jwt_get_type(jwt) != R_JWT_TYPE_SIGN || r_jwt_get_sign_alg(jwt) != R_JWA_ALG_EDDSA)
        goto out;
    const char *typ = r_jwt_get_header_str_value(jwt, "typ");
    if (!typ || (strcasecmp(typ, "at+jwt") && strcasecmp(typ, "application/at+jwt")))
        goto out;
    /* A new reference each call: taken once, released once (two calls leaked one per token). */
    json_t *crit = r_jwt_get_header_json_t_value(jwt, "crit");
    if (crit) {
        json_decref(crit);
        goto out;
    }
    const char *kid = r_jwt_get_header_str_value(jwt, "kid");
    if (!safe_id(kid, sizeof((antar_principal_t *)0)->kid - 1))
        goto out;
    key = jwks_find(kid);
    if (!key && may_fetch) {
        jwks_refresh();
        key = jwks_find(kid);
    }
    if (!key)
        goto out;
    unsigned int bits = 0;
    if (!(r_jwk_key_type(key, &bits, R_FLAG_IGNORE_REMOTE) & R_KEY_TYPE_EDDSA))
        goto out;
    if (r_jwt_verify_signature(jwt, key, R_FLAG_IGNORE_REMOTE) != RHN_OK)
        goto out;
    claims = r_jwt_get_full_claims_json_t(jwt);
    if (!json_is_object(claims))
        goto out;
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    json_t *exp = json_object_get(claims, "exp"), *iat = json_object_get(claims, "iat");
    json_t *nbf = json_object_get(claims, "nbf");
    if (!iss || strcmp(iss, auth_issuer) || !aud_ok(json_object_get(claims, "aud")))
        goto out;
    if (!json_is_integer(exp) || !json_is_integer(iat) ||
        json_integer_value(exp) + EXP_LEEWAY_S <= now || json_integer_value(iat) > now + 60 ||
        json_integer_value(exp) - json_integer_value(iat) > ACCESS_MAX_LIFE_S)
        goto out;
    if (nbf && (!json_is_integer(nbf) || json_integer_value(nbf) > now + EXP_LEEWAY_S))
        goto out;
    antar_principal_t p;
    if (principal_from_claims(claims, &p) != 0)
        goto out;
    snprintf(p.kid, sizeof p.kid, "%s", kid);
    *out = p;
    err = ANTAR_OK;
out:
    json_decref(claims);
    r_jwk_free(key);
    r_jwt_free(jwt);
    return err;
}

antar_err_t antar_auth_verify_at(const char *token, long long now, antar_principal_t *out)
{
    return verify_with_refetch(token, now, out, 1);
}

/* ---- revocation ---------------------------------------------------------------------- */

/* Generation of the watcher's view: bumped before the watcher reads anything from Redis and
 * whenever its connection comes or goes. Starts at 1; 0 marks "no answer kept". */
static atomic_uint_fast64_t rev_gen = 1;
static atomic_int rev_fd = -1; /* the watcher's socket while tracking is live, else -1 */
static atomic_bool rev_stop;
static pthread_t rev_thread;
static bool rev_thread_up;

static void rev_sleep_ms(int ms)
{
    for (int t = 0; t < ms && !atomic_load(&rev_stop); t += 100)
        usleep(100 * 1000);
}

/* One command on the watcher's connection; 0 when the reply has the expected type. */
static int rev_cmd(redisContext *c, int want_type, long long *integer, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    int ok = r && r->type == want_type;
    if (ok && integer)
        *integer = r->integer;
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

static redisContext *rev_connect(void)
{
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    redisContext *c = redisConnectWithTimeout(auth_cfg->redis_host, auth_cfg->redis_port, tv);
    long long id = 0;
    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK || antar_kv_auth(c, auth_cfg) != 0 ||
        rev_cmd(c, REDIS_REPLY_INTEGER, &id, "CLIENT ID") != 0 ||
        rev_cmd(c, REDIS_REPLY_STATUS, NULL, "CLIENT TRACKING on REDIRECT %lld BCAST PREFIX %s", id,
                REVOKED_PREFIX) != 0 ||
        rev_cmd(c, REDIS_REPLY_ARRAY, NULL, "SUBSCRIBE __redis__:invalidate") != 0) {
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

static void *rev_watch(void *arg)
{
    (void)arg;
    int logged = 0;
    while (!atomic_load(&rev_stop)) {
        redisContext *c = rev_connect();
        if (!c) {
            if (!logged++)
                antar_logf("warn", "revocation watcher cannot track Redis; every request asks");
            rev_sleep_ms(WATCH_RETRY_MS);
            continue;
        }
        logged = 0;
        /* Live from here: publish the socket, then start a new generation. */
        atomic_store(&rev_fd, c->fd);
        atomic_fetch_add(&rev_gen, 1);
        for (;;) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            int n = poll(&pfd, 1, 100);
            if (atomic_load(&rev_stop))
                break;
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0)
                continue;
            /* Something came (or the connection broke): forget every kept answer before the
             * bytes leave the socket, so there is no instant where neither shows. */
            atomic_fetch_add(&rev_gen, 1);
            if (n < 0 || (pfd.revents & (POLLERR | POLLNVAL)))
                break;
            char buf[4096];
            ssize_t got = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
                break;
        }
        atomic_store(&rev_fd, -1);
        atomic_fetch_add(&rev_gen, 1);
        redisFree(c);
    }
    return NULL;
}

/* One question for both ways a token is revoked: its own jti, or its signing key retired in an
 * emergency (core --retire-keys writes REVOKED_PREFIX "kid:<kid>"). Both keys live under the
 * watched prefix, so the write of either ends every kept "not revoked" answer at once, cached
 * principals included. */
static antar_err_t revoked_check(const char *jti, const char *kid)
{
    redisReply *r = antar_kv_command("EXISTS " REVOKED_PREFIX "%s " REVOKED_PREFIX "kid:%s", jti,
                                     kid && *kid ? kid : "-");
    if (!r)
        return ANTAR_E_KV;
    antar_err_t err = ANTAR_OK;
    if (r->type != REDIS_REPLY_INTEGER)
        err = ANTAR_E_KV;
    else if (r->integer != 0)
        err = ANTAR_E_INVALID_TOKEN;
    freeReplyObject(r);
    return err;
}

/* May the kept answer of generation kept_gen still be used? */
static int rev_reusable(uint_fast64_t kept_gen)
{
    uint_fast64_t g = atomic_load(&rev_gen);
    int fd = atomic_load(&rev_fd);
    if (kept_gen == 0 || kept_gen != g || fd < 0)
        return 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) != 0)
        return 0; /* unread news (or an error): ask Redis */
    /* Re-read: if the watcher moved on meanwhile (even closed that fd), do not trust it. */
    return atomic_load(&rev_gen) == g;
}

/* ---- degraded reads while Redis is away ---------------------------------------------------
 * Revocation lives in Redis. When Redis cannot answer, a write fails closed (503
 * redis_unavailable), but a read (GET/HEAD/OPTIONS) with a token whose signature and claims
 * verify is served: access tokens live at most ACCESS_MAX_LIFE_S (15 min), a revocation cannot
 * even be recorded while Redis is away (core's logout/revoke writes to Redis and fails too), and
 * every jti this process has seen revoked is remembered locally and still refused. What remains
 * is a token revoked before the outage and never presented here since: it can read its own
 * owner's data for the rest of its short life, which is the price of keeping reads up. Each
 * such acceptance is counted (antar_auth_degraded_total) and ANTAR_AUTH_DEGRADED_READS=0 turns
 * it off (every request then fails closed as before).
 * After a revocation check that failed slowly (REDIS_SLOW_MS or more: Redis hangs) Redis counts
 * as down, and only one request per REDIS_PROBE_MS asks it again (the others answer at once as
 * if it had failed): a hung Redis would otherwise cost every request its timeout. A check that
 * fails fast (connection refused: Redis is being restarted) costs nothing, so every request
 * keeps asking and the first one after Redis is back succeeds; a blackout would keep refusing
 * writes after a restarted Redis is back. The first check that succeeds ends it. */
#define REDIS_PROBE_MS 100
#define REDIS_SLOW_MS 100
#define SEEN_REVOKED 1024

/* 0 while Redis answers; else the monotonic ms before which nobody probes it. */
static _Atomic long long redis_down_until;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char jti[64];
    long long exp;
} seen_revoked[SEEN_REVOKED];
static size_t seen_next;

static void seen_revoked_add(const antar_principal_t *p)
{
    pthread_mutex_lock(&seen_lock);
    for (size_t i = 0; i < SEEN_REVOKED; i++)
        if (!strcmp(seen_revoked[i].jti, p->jti)) {
            pthread_mutex_unlock(&seen_lock);
            return;
        }
    snprintf(seen_revoked[seen_next].jti, sizeof seen_revoked[0].jti, "%s", p->jti);
    seen_revoked[seen_next].exp = p->exp;
    seen_next = (seen_next + 1) % SEEN_REVOKED;
    pthread_mutex_unlock(&seen_lock);
}

static int seen_revoked_has(const char *jti)
{
    int hit = 0;
    pthread_mutex_lock(&seen_lock);
    for (size_t i = 0; i < SEEN_REVOKED && !hit; i++)
        hit = seen_revoked[i].jti[0] && !strcmp(seen_revoked[i].jti, jti);
    pthread_mutex_unlock(&seen_lock);
    return hit;
}

static antar_err_t revoked_check_guarded(const antar_principal_t *p)
{
    long long now = antar_mono_ms();
    long long until = atomic_load(&redis_down_until);
    /* Down: exactly one caller per REDIS_PROBE_MS wins the right to ask. */
    if (until != 0 && (now < until || !atomic_compare_exchange_strong(&redis_down_until, &until,
                                                                      now + REDIS_PROBE_MS)))
        return ANTAR_E_KV;
    antar_err_t err = revoked_check(p->jti, p->kid);
    if (err == ANTAR_E_KV) {
        long long end = antar_mono_ms();
        atomic_store(&redis_down_until, end - now >= REDIS_SLOW_MS ? end + REDIS_PROBE_MS : 0);
        return err;
    }
    atomic_store(&redis_down_until, 0);
    if (err == ANTAR_E_INVALID_TOKEN)
        seen_revoked_add(p);
    return err;
}

/* unknown_out: when Redis cannot say, the verified principal is written there and ANTAR_E_KV
 * returned (NULL: just fail closed). */
static antar_err_t verify_impl(const char *token, antar_principal_t *out,
                               antar_principal_t *unknown_out)
{
    unsigned char h[crypto_generichash_BYTES];
    long long now = (long long)time(NULL), mono = antar_mono_ms();
    antar_principal_t p;
    int hit = 0;
    uint_fast64_t kept_gen = 0;
    if (!token || strlen(token) > TOKEN_MAX)
        return ANTAR_E_INVALID_TOKEN;
    crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), NULL, 0);
    size_t slot = ((size_t)h[0] | (size_t)h[1] << 8) % CACHE_SLOTS;
    pthread_mutex_lock(&cache_lock);
    if (cache && cache[slot].p.exp > now && !sodium_memcmp(cache[slot].hash, h, sizeof h)) {
        p = cache[slot].p;
        hit = 1;
        if (mono < cache[slot].rev_until_ms)
            kept_gen = cache[slot].rev_gen;
    }
    pthread_mutex_unlock(&cache_lock);
    if (!hit) {
        antar_err_t err = verify_with_refetch(token, now, &p, 1);
        if (err != ANTAR_OK)
            return err;
        pthread_mutex_lock(&cache_lock);
        if (cache) {
            memcpy(cache[slot].hash, h, sizeof h);
            cache[slot].p = p;
            cache[slot].rev_gen = 0;
            cache[slot].rev_until_ms = 0;
        }
        pthread_mutex_unlock(&cache_lock);
    }
    if (p.exp + EXP_LEEWAY_S <= now)
        return ANTAR_E_INVALID_TOKEN;
    if (!rev_reusable(kept_gen)) {
        /* The generation before asking: an invalidation that lands while we ask voids it. */
        uint_fast64_t g = atomic_load(&rev_gen);
        int live = atomic_load(&rev_fd) >= 0;
        antar_err_t err = revoked_check_guarded(&p);
        if (err == ANTAR_E_KV && unknown_out)
            *unknown_out = p;
        if (err != ANTAR_OK)
            return err;
        if (live) {
            pthread_mutex_lock(&cache_lock);
            if (cache && !sodium_memcmp(cache[slot].hash, h, sizeof h)) {
                cache[slot].rev_gen = g;
                cache[slot].rev_until_ms = mono + REVOKED_REUSE_MS;
            }
            pthread_mutex_unlock(&cache_lock);
        }
    }
    *out = p;
    return ANTAR_OK;
}

antar_err_t antar_auth_verify(const char *token, antar_principal_t *out)
{
    return verify_impl(token, out, NULL);
}

/* ---- the hook ------------------------------------------------------------------------ */

static int scope_has(const char *scopes, const char *want)
{
    size_t wl = strlen(want);
    for (const char *s = scopes; *s;) {
        while (*s == ' ')
            s++;
        const char *e = s;
        while (*e && *e != ' ')
            e++;
        if ((size_t)(e - s) == wl && !strncmp(s, want, wl))
            return 1;
        s = e;
    }
    return 0;
}

antar_err_t antar_auth_hook(antar_req_t *req, const antar_route_t *route)
{
    const char *h = antar_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) {
        antar_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"antar\"");
        return ANTAR_E_UNAUTHORIZED;
    }
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    antar_principal_t p, unknown;
    unknown.exp = 0;
    antar_err_t err = verify_impl(token, &p, &unknown);
    const char *m = antar_req_method(req);
    int writes = strcmp(m, "GET") && strcmp(m, "HEAD") && strcmp(m, "OPTIONS");
    if (err == ANTAR_E_KV && unknown.exp > 0 && seen_revoked_has(unknown.jti)) {
        err = ANTAR_E_INVALID_TOKEN; /* Redis said so before it went away */
    } else if (err == ANTAR_E_KV && !writes && unknown.exp > 0 && degraded_reads) {
        p = unknown;
        err = ANTAR_OK;
        antar_metrics_count("antar_auth_degraded_total", "method", m);
    }
    if (err != ANTAR_OK) {
        if (err == ANTAR_E_INVALID_TOKEN)
            antar_http_add_header(req, "WWW-Authenticate",
                                  "Bearer realm=\"antar\", error=\"invalid_token\"");
        return err;
    }
    if (!(route->auth & p.role))
        return ANTAR_E_FORBIDDEN;
    if (route->scope && !scope_has(p.scope, route->scope))
        return ANTAR_E_FORBIDDEN;
    if (writes && (p.role & (ANTAR_AUTH_USER | ANTAR_AUTH_DRIVER)) &&
        !(route->flags & ANTAR_ROUTE_NO_CSRF)) {
        const char *csrf = antar_req_header(req, "X-CSRF-Token");
        if (!csrf && !(route->flags & ANTAR_ROUTE_RAW)) {
            json_t *body = antar_req_body(req);
            csrf = body ? json_string_value(json_object_get(body, "csrf_token")) : NULL;
        }
        if (!csrf || antar_csrf_verify(p.sub, csrf) != ANTAR_OK)
            return ANTAR_E_CSRF_INVALID;
    }
    *antar_req_principal_mut(req) = p;
    return ANTAR_OK;
}

/* ---- life cycle ---------------------------------------------------------------------- */

int antar_auth_init(const antar_config_t *cfg)
{
    if (sodium_init() < 0)
        return -1;
    auth_cfg = cfg;
    snprintf(auth_issuer, sizeof auth_issuer, "%s", cfg->issuer);
    snprintf(auth_audience, sizeof auth_audience, "%s", cfg->audience);
    if (antar_csrf_init(cfg->csrf_key_hex) != 0) {
        antar_logf("error", "ANTAR_CSRF_KEY must be 64 hex characters");
        return -1;
    }
    pthread_mutex_lock(&cache_lock);
    if (!cache)
        cache = calloc(CACHE_SLOTS, sizeof *cache);
    pthread_mutex_unlock(&cache_lock);
    if (!cache)
        return -1;
    antar_httpc_set_token_provider(antar_auth_service_token);
    antar_httpc_set_token_reset(antar_auth_service_token_reset);
    degraded_reads = strcmp(antar_config_env("ANTAR_AUTH_DEGRADED_READS", "1"), "0") != 0;
    const char *watch = antar_config_env("ANTAR_REVOCATION_WATCH", "1");
    if (!rev_thread_up && cfg->redis_host[0] && cfg->redis_port > 0 && strcmp(watch, "0") != 0) {
        atomic_store(&rev_stop, false);
        rev_thread_up = pthread_create(&rev_thread, NULL, rev_watch, NULL) == 0;
    }
    return 0;
}

void antar_auth_cleanup(void)
{
    if (rev_thread_up) {
        atomic_store(&rev_stop, true);
        pthread_join(rev_thread, NULL);
        rev_thread_up = false;
    }
    jwks_install(NULL);
    jwks_local = 0;
    pthread_mutex_lock(&cache_lock);
    free(cache);
    cache = NULL;
    pthread_mutex_unlock(&cache_lock);
}
