/* Storage of the authorization server: refresh tokens in MariaDB (hashes only, with family and
 * rotation chain), one-time authorization codes and login-failure counters in Redis. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ctype.h>
#include <sodium.h>

#include "antar/config.h"
#include "antar/db.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/util.h"
#include "oauth.h"

#define REFRESH_TTL_S (30LL * 86400)

/* Settings of the token store and the login throttle, read once. */
static struct {
    long family_max_s; /* absolute lifetime of a refresh-token family, from its first token */
    long free_fails, max_delay_s, account_soft, account_gap_ms, ip_soft, ip_gap_ms;
} S;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void settings_load(void)
{
    S.family_max_s = antar_config_long("ANTAR_REFRESH_FAMILY_MAX_S", 90L * 86400, 1, 3650L * 86400);
    S.free_fails = antar_config_long("ANTAR_LOGIN_FREE_FAILS", 3, 1, 1000);
    S.max_delay_s = antar_config_long("ANTAR_LOGIN_MAX_DELAY_S", 900, 1, 86400);
    S.account_soft = antar_config_long("ANTAR_LOGIN_ACCOUNT_SOFT", 20, 1, 1000000);
    S.account_gap_ms = antar_config_long("ANTAR_LOGIN_ACCOUNT_GAP_MS", 2000, 1, 3600000);
    S.ip_soft = antar_config_long("ANTAR_LOGIN_IP_SOFT", 50, 1, 1000000);
    S.ip_gap_ms = antar_config_long("ANTAR_LOGIN_IP_GAP_MS", 250, 1, 3600000);
}

static long long family_max_s(void)
{
    pthread_once(&settings_once, settings_load);
    return S.family_max_s;
}

void oauth_random_token(char *out)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, 64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void oauth_hash_hex(const char *s, char *out)
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)s, strlen(s), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* ---- refresh tokens ------------------------------------------------------------------- */

antar_err_t oauth_refresh_store(const char *token, const oauth_grant_t *g, const char *family,
                                long long parent_id, const char *access_jti, long long access_exp)
{
    char hash[65], fam[33];
    oauth_hash_hex(token, hash);
    if (family) {
        snprintf(fam, sizeof fam, "%s", family);
    } else {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(fam, sizeof fam, raw, sizeof raw);
    }
    /* A rotated token inherits its family's end; a new family ends family_max_s() from now. No
     * token of the family outlives that end (expires_at is capped by it). */
    long long fam_end = (long long)time(NULL) + family_max_s();
    if (parent_id > 0) {
        json_t *row = NULL;
        if (antar_db_query_one("SELECT UNIX_TIMESTAMP(family_expires_at) AS e FROM refresh_tokens "
                               "WHERE id = ? AND family_expires_at IS NOT NULL",
                               ANTAR_DB_ARGS(ANTAR_DB_I(parent_id)), &row) == ANTAR_OK) {
            json_t *e = json_object_get(row, "e");
            fam_end = json_is_real(e) ? (long long)json_real_value(e) : json_integer_value(e);
            json_decref(row);
        }
    }
    return antar_db_exec(
        "INSERT INTO refresh_tokens (token_hash, family_id, parent_id, client_id, sub, role, "
        "scope, access_jti, access_exp, family_expires_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, "
        "?, ?, ?, FROM_UNIXTIME(?), LEAST(NOW(3) + INTERVAL ? SECOND, FROM_UNIXTIME(?)))",
        ANTAR_DB_ARGS(ANTAR_DB_S(hash), ANTAR_DB_S(fam),
                      parent_id > 0 ? ANTAR_DB_I(parent_id) : ANTAR_DB_NULLARG,
                      ANTAR_DB_S(g->client_id), ANTAR_DB_S(g->sub), ANTAR_DB_S(g->role),
                      ANTAR_DB_S(g->scope), ANTAR_DB_S(access_jti),
                      access_jti ? ANTAR_DB_I(access_exp) : ANTAR_DB_NULLARG, ANTAR_DB_I(fam_end),
                      ANTAR_DB_I(REFRESH_TTL_S), ANTAR_DB_I(fam_end)),
        NULL, NULL);
}

antar_err_t oauth_refresh_store_many(const char (*tokens)[64], const oauth_grant_t *grants,
                                     size_t n)
{
    if (n > OAUTH_REFRESH_BATCH)
        return ANTAR_E_BAD_REQUEST;
    /* One prepared INSERT per token, but one commit per batch: the commit (a log flush) is
     * what costs, not the statement. */
    antar_err_t err = antar_db_begin();
    for (size_t i = 0; err == ANTAR_OK && i < n; i++)
        err = oauth_refresh_store(tokens[i], &grants[i], NULL, 0, NULL, 0);
    if (err == ANTAR_OK)
        err = antar_db_commit();
    if (err != ANTAR_OK)
        antar_db_rollback();
    return err;
}

/* Revoke every token of a family and put the access tokens issued with them on the Redis
 * revocation list, so a stolen-and-replayed refresh token also ends the thief's session. */
static antar_err_t family_revoke(const char *family)
{
    json_t *rows = NULL;
    antar_err_t err = antar_db_exec(
        "UPDATE refresh_tokens SET revoked_at = NOW(3) WHERE family_id = ? AND revoked_at IS NULL",
        ANTAR_DB_ARGS(ANTAR_DB_S(family)), NULL, NULL);
    if (err != ANTAR_OK)
        return err;
    err =
        antar_db_query("SELECT access_jti, access_exp FROM refresh_tokens WHERE family_id = ? "
                       "AND access_jti IS NOT NULL AND access_exp > ?",
                       ANTAR_DB_ARGS(ANTAR_DB_S(family), ANTAR_DB_I((long long)time(NULL))), &rows);
    if (err != ANTAR_OK)
        return err;
    size_t i;
    json_t *r;
    /* A revocation Redis did not take leaves a stolen access token valid: the caller must not
     * report success (it answers 503 and the client retries). */
    json_array_foreach(rows, i, r)
    {
        const char *jti = json_string_value(json_object_get(r, "access_jti"));
        if (jti &&
            oauth_revoke_jti(jti, json_integer_value(json_object_get(r, "access_exp"))) != ANTAR_OK)
            err = ANTAR_E_KV;
    }
    json_decref(rows);
    if (err != ANTAR_OK)
        antar_log_json("error", "family_revoke_incomplete",
                       json_pack("{s:s}", "reason", "revocation list unavailable"));
    return err;
}

static void grant_from_row(json_t *row, oauth_grant_t *g)
{
    memset(g, 0, sizeof *g);
    snprintf(g->client_id, sizeof g->client_id, "%s",
             json_string_value(json_object_get(row, "client_id")));
    snprintf(g->sub, sizeof g->sub, "%s", json_string_value(json_object_get(row, "sub")));
    snprintf(g->role, sizeof g->role, "%s", json_string_value(json_object_get(row, "role")));
    snprintf(g->scope, sizeof g->scope, "%s", json_string_value(json_object_get(row, "scope")));
    g->exp = json_integer_value(json_object_get(row, "exp"));
}

antar_err_t oauth_refresh_use(const char *token, const char *client_id, oauth_grant_t *g,
                              char *family, long long *id)
{
    char hash[65];
    json_t *row = NULL;
    unsigned long long affected = 0;
    oauth_hash_hex(token, hash);
    antar_err_t err = antar_db_query_one(
        "SELECT id, family_id, client_id, sub, role, scope, UNIX_TIMESTAMP(expires_at) AS exp, "
        "used_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked, "
        "expires_at <= NOW(3) AS expired FROM refresh_tokens WHERE token_hash = ?",
        ANTAR_DB_ARGS(ANTAR_DB_S(hash)), &row);
    if (err != ANTAR_OK)
        return err;
    const char *fam = json_string_value(json_object_get(row, "family_id"));
    snprintf(family, 33, "%s", fam ? fam : "");
    *id = json_integer_value(json_object_get(row, "id"));
    grant_from_row(row, g);
    int used = json_integer_value(json_object_get(row, "used")) != 0;
    int revoked = json_integer_value(json_object_get(row, "revoked")) != 0;
    int expired = json_integer_value(json_object_get(row, "expired")) != 0;
    json_decref(row);
    /* Presented by a client it was not issued to: refused, and neither consumed nor taken as a
     * reuse — another client must not be able to spend (or kill) the owner's session. */
    if (client_id && strcmp(g->client_id, client_id))
        return ANTAR_E_NOT_FOUND;
    if (used) {
        antar_log_json("warn", "refresh_token_reuse",
                       json_pack("{s:s,s:s}", "client_id", g->client_id, "sub", g->sub));
        return family_revoke(family) == ANTAR_OK ? ANTAR_E_CONFLICT : ANTAR_E_KV;
    }
    if (revoked || expired)
        return ANTAR_E_NOT_FOUND;
    /* The conditional update is the arbiter: of two concurrent uses exactly one wins, and the
     * loser is treated as a reuse. */
    err = antar_db_exec("UPDATE refresh_tokens SET used_at = NOW(3) WHERE id = ? AND used_at IS "
                        "NULL AND revoked_at IS NULL",
                        ANTAR_DB_ARGS(ANTAR_DB_I(*id)), &affected, NULL);
    if (err != ANTAR_OK)
        return err;
    if (affected != 1)
        return family_revoke(family) == ANTAR_OK ? ANTAR_E_CONFLICT : ANTAR_E_KV;
    return ANTAR_OK;
}

antar_err_t oauth_refresh_revoke(const char *token, const char *client_id)
{
    char hash[65];
    json_t *row = NULL;
    oauth_hash_hex(token, hash);
    antar_err_t err =
        antar_db_query_one("SELECT family_id, client_id FROM refresh_tokens WHERE token_hash = ?",
                           ANTAR_DB_ARGS(ANTAR_DB_S(hash)), &row);
    if (err == ANTAR_E_NOT_FOUND)
        return ANTAR_OK;
    if (err != ANTAR_OK)
        return err;
    const char *owner = json_string_value(json_object_get(row, "client_id"));
    char fam[33];
    snprintf(fam, sizeof fam, "%s", json_string_value(json_object_get(row, "family_id")));
    int mine = !client_id || (owner && !strcmp(owner, client_id));
    json_decref(row);
    return mine ? family_revoke(fam) : ANTAR_OK;
}

antar_err_t oauth_refresh_lookup(const char *token, oauth_grant_t *g)
{
    char hash[65];
    json_t *row = NULL;
    oauth_hash_hex(token, hash);
    antar_err_t err = antar_db_query_one(
        "SELECT client_id, sub, role, scope, UNIX_TIMESTAMP(expires_at) AS exp FROM "
        "refresh_tokens WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL AND "
        "expires_at > NOW(3)",
        ANTAR_DB_ARGS(ANTAR_DB_S(hash)), &row);
    if (err != ANTAR_OK)
        return err;
    grant_from_row(row, g);
    /* UNIX_TIMESTAMP of a DATETIME(3) is a decimal; the store returns it as a real. */
    json_t *e = json_object_get(row, "exp");
    if (json_is_real(e))
        g->exp = (long long)json_real_value(e);
    json_decref(row);
    return ANTAR_OK;
}

antar_err_t oauth_revoke_jti(const char *jti, long long exp)
{
    long long ttl = exp - (long long)time(NULL) + 5;
    if (ttl <= 0)
        return ANTAR_OK;
    redisReply *r = antar_kv_command("SET revoked:jti:%s 1 EX %lld", jti, ttl);
    if (!r)
        return ANTAR_E_KV;
    antar_err_t err = r->type == REDIS_REPLY_ERROR ? ANTAR_E_KV : ANTAR_OK;
    freeReplyObject(r);
    return err;
}

/* ---- clients -------------------------------------------------------------------------- */

antar_err_t oauth_client_save(const char *id, bool confidential, const char *role,
                              const char *scope, const char *secret_hash_hex,
                              const char *redirect_uris)
{
    return antar_db_exec(
        "INSERT INTO oauth_clients (client_id, client_type, role, scope, secret_hash, "
        "redirect_uris) VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE client_type = "
        "VALUES(client_type), role = VALUES(role), scope = VALUES(scope), secret_hash = "
        "VALUES(secret_hash), redirect_uris = VALUES(redirect_uris)",
        ANTAR_DB_ARGS(ANTAR_DB_S(id), ANTAR_DB_S(confidential ? "confidential" : "public"),
                      ANTAR_DB_S(role), ANTAR_DB_S(scope), ANTAR_DB_S(secret_hash_hex),
                      ANTAR_DB_S(redirect_uris)),
        NULL, NULL);
}

/* ---- authorization codes -------------------------------------------------------------- */

antar_err_t oauth_code_store(const char *code, json_t *data)
{
    char hash[65];
    oauth_hash_hex(code, hash);
    char *s = json_dumps(data, JSON_COMPACT);
    if (!s)
        return ANTAR_E_NOMEM;
    redisReply *r = antar_kv_command("SET oauth:code:%s %s EX %d NX", hash, s, OAUTH_CODE_TTL_S);
    free(s);
    if (!r)
        return ANTAR_E_KV;
    antar_err_t err = r->type == REDIS_REPLY_STATUS ? ANTAR_OK : ANTAR_E_KV;
    freeReplyObject(r);
    return err;
}

antar_err_t oauth_code_take(const char *code, json_t **data)
{
    char hash[65];
    oauth_hash_hex(code, hash);
    redisReply *r = antar_kv_command("GETDEL oauth:code:%s", hash);
    if (!r)
        return ANTAR_E_KV;
    antar_err_t err = ANTAR_E_NOT_FOUND;
    if (r->type == REDIS_REPLY_STRING) {
        *data = json_loadb(r->str, r->len, 0, NULL);
        err = json_is_object(*data) ? ANTAR_OK : ANTAR_E_NOT_FOUND;
    } else if (r->type == REDIS_REPLY_ERROR) {
        err = ANTAR_E_KV;
    }
    freeReplyObject(r);
    return err;
}

/* ---- throttling ----------------------------------------------------------------------- */

/* Login throttling (docs/security.md, "Login throttling"). Three counters, none of which can
 * lock an account out for its owner:
 * - per (account, address): the first ANTAR_LOGIN_FREE_FAILS attempts go through at once;
 *   every attempt after that waits 1 s, 2 s, 4 s … up to ANTAR_LOGIN_MAX_DELAY_S before the
 *   next one is allowed. A success clears it. This is what stops guessing one account from one
 *   place, and it never touches the account's owner on another address.
 * - per account (all addresses): past ANTAR_LOGIN_ACCOUNT_SOFT failures in the window, one
 *   attempt per ANTAR_LOGIN_ACCOUNT_GAP_MS on that account: a spray from many addresses is
 *   slowed to a trickle, the owner waits at most that gap.
 * - per address (all accounts): past ANTAR_LOGIN_IP_SOFT failures in the window, one attempt
 *   per ANTAR_LOGIN_IP_GAP_MS from that address: thousands of customers behind one carrier-grade
 *   NAT address are slowed by at most that gap, never locked out.
 * The check and the count are one Lua script: an attempt is counted (reserved) before the
 * password is checked, so concurrent guesses cannot all pass the check before any is counted.
 * Redis unreachable or refusing writes (maxmemory) fails closed: the caller answers 503. */

#define THROTTLE_WINDOW_S 900

static const char lua_throttle_check[] =
    "local now = tonumber(ARGV[1])\n"
    "local wait = 0\n"
    "local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')\n"
    "if nxt > now then wait = nxt - now end\n"
    "local function gate(counter, gatekey, soft, gap)\n"
    "  local n = tonumber(redis.call('GET', counter) or '0')\n"
    "  if n < soft then return 0 end\n"
    "  local t = redis.call('PTTL', gatekey)\n"
    "  if t > 0 then return t end\n"
    "  return -1\n"
    "end\n"
    "local ga = gate(KEYS[2], KEYS[4], tonumber(ARGV[5]), tonumber(ARGV[6]))\n"
    "local gi = gate(KEYS[3], KEYS[5], tonumber(ARGV[7]), tonumber(ARGV[8]))\n"
    "if ga > wait then wait = ga end\n"
    "if gi > wait then wait = gi end\n"
    "if wait > 0 then return wait end\n"
    "if ga < 0 then redis.call('SET', KEYS[4], '1', 'PX', ARGV[6]) end\n"
    "if gi < 0 then redis.call('SET', KEYS[5], '1', 'PX', ARGV[8]) end\n"
    "local n = redis.call('HINCRBY', KEYS[1], 'n', 1)\n"
    "local free = tonumber(ARGV[2])\n"
    "local d = 0\n"
    "if n >= free then\n"
    "  d = 1000 * 2 ^ (n - free)\n"
    "  if d > tonumber(ARGV[3]) then d = tonumber(ARGV[3]) end\n"
    "  redis.call('HSET', KEYS[1], 'next', now + d)\n"
    "end\n"
    /* The count outlives the delay by a whole window: waiting out the delay never resets it. */
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]) + math.ceil(d / 1000))\n"
    "return 0\n";

static const char lua_throttle_fail[] = "for i = 1, 2 do\n"
                                        "  redis.call('INCR', KEYS[i])\n"
                                        "  redis.call('EXPIRE', KEYS[i], ARGV[1], 'NX')\n"
                                        "end\n"
                                        "return 0\n";

/* The keys of one login attempt. Account and address are hashed, so Redis never holds emails,
 * phone numbers or addresses, and any byte sequence makes a safe key. */
typedef struct {
    char pair[160], acct[100], ip[100], acct_gate[110], ip_gate[110];
} throttle_keys_t;

static void throttle_keys(const char *username, const char *ip, throttle_keys_t *k)
{
    char low[256], ha[65], hi[65];
    size_t i;
    for (i = 0; username[i] && i < sizeof low - 1; i++)
        low[i] = (char)tolower((unsigned char)username[i]);
    low[i] = '\0';
    oauth_hash_hex(low, ha);
    oauth_hash_hex(ip && *ip ? ip : "-", hi);
    ha[32] = hi[32] = '\0';
    snprintf(k->pair, sizeof k->pair, "login:pair:%s:%s", ha, hi);
    snprintf(k->acct, sizeof k->acct, "login:fail:acct:%s", ha);
    snprintf(k->ip, sizeof k->ip, "login:fail:ip:%s", hi);
    snprintf(k->acct_gate, sizeof k->acct_gate, "login:gate:acct:%s", ha);
    snprintf(k->ip_gate, sizeof k->ip_gate, "login:gate:ip:%s", hi);
}

antar_err_t oauth_throttle_check(const char *username, const char *ip, long *retry_after)
{
    throttle_keys_t k;
    throttle_keys(username, ip, &k);
    char now[32], free_n[24], max_ms[24], win[24], asoft[24], agap[24], isoft[24], igap[24];
    snprintf(now, sizeof now, "%lld", antar_now_ms());
    pthread_once(&settings_once, settings_load);
    snprintf(free_n, sizeof free_n, "%ld", S.free_fails);
    snprintf(max_ms, sizeof max_ms, "%ld", S.max_delay_s * 1000);
    snprintf(win, sizeof win, "%d", THROTTLE_WINDOW_S);
    snprintf(asoft, sizeof asoft, "%ld", S.account_soft);
    snprintf(agap, sizeof agap, "%ld", S.account_gap_ms);
    snprintf(isoft, sizeof isoft, "%ld", S.ip_soft);
    snprintf(igap, sizeof igap, "%ld", S.ip_gap_ms);
    const char *argv[] = {"EVAL",      lua_throttle_check,
                          "5",         k.pair,
                          k.acct,      k.ip,
                          k.acct_gate, k.ip_gate,
                          now,         free_n,
                          max_ms,      win,
                          asoft,       agap,
                          isoft,       igap};
    redisReply *r = antar_kv_commandv((int)(sizeof argv / sizeof argv[0]), argv, NULL);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        antar_log_json("error", "login_throttle_unavailable",
                       json_pack("{s:s}", "error", r && r->str ? r->str : "no reply"));
        if (r)
            freeReplyObject(r);
        *retry_after = 5;
        return ANTAR_E_KV;
    }
    long long wait_ms = r->integer;
    freeReplyObject(r);
    if (wait_ms > 0) {
        *retry_after = (long)((wait_ms + 999) / 1000);
        return ANTAR_E_TOO_MANY_REQUESTS;
    }
    return ANTAR_OK;
}

void oauth_throttle_fail(const char *username, const char *ip)
{
    throttle_keys_t k;
    throttle_keys(username, ip, &k);
    char win[24];
    snprintf(win, sizeof win, "%d", THROTTLE_WINDOW_S);
    const char *argv[] = {"EVAL", lua_throttle_fail, "2", k.acct, k.ip, win};
    redisReply *r = antar_kv_commandv((int)(sizeof argv / sizeof argv[0]), argv, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR)
        antar_log_json("error", "login_throttle_count_failed",
                       json_pack("{s:s}", "error", r && r->str ? r->str : "no reply"));
    if (r)
        freeReplyObject(r);
}

void oauth_throttle_success(const char *username, const char *ip)
{
    throttle_keys_t k;
    throttle_keys(username, ip, &k);
    redisReply *r = antar_kv_command("DEL %s", k.pair);
    if (r)
        freeReplyObject(r);
}
