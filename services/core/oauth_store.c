/* Storage of the authorization server: refresh tokens in MariaDB (hashes only, with family and
 * rotation chain), one-time authorization codes and login-failure counters in Redis. */
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
#include "oauth.h"

#define REFRESH_TTL_S (30LL * 86400)
#define THROTTLE_WINDOW_S 900

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
    return antar_db_exec(
        "INSERT INTO refresh_tokens (token_hash, family_id, parent_id, client_id, sub, role, "
        "scope, access_jti, access_exp, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "NOW(3) + INTERVAL ? SECOND)",
        ANTAR_DB_ARGS(
            ANTAR_DB_S(hash), ANTAR_DB_S(fam),
            parent_id > 0 ? ANTAR_DB_I(parent_id) : ANTAR_DB_NULLARG, ANTAR_DB_S(g->client_id),
            ANTAR_DB_S(g->sub), ANTAR_DB_S(g->role), ANTAR_DB_S(g->scope), ANTAR_DB_S(access_jti),
            access_jti ? ANTAR_DB_I(access_exp) : ANTAR_DB_NULLARG, ANTAR_DB_I(REFRESH_TTL_S)),
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
    if (antar_db_query("SELECT access_jti, access_exp FROM refresh_tokens WHERE family_id = ? "
                       "AND access_jti IS NOT NULL AND access_exp > ?",
                       ANTAR_DB_ARGS(ANTAR_DB_S(family), ANTAR_DB_I((long long)time(NULL))),
                       &rows) == ANTAR_OK) {
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r)
        {
            const char *jti = json_string_value(json_object_get(r, "access_jti"));
            if (jti)
                oauth_revoke_jti(jti, json_integer_value(json_object_get(r, "access_exp")));
        }
        json_decref(rows);
    }
    return ANTAR_OK;
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

antar_err_t oauth_refresh_use(const char *token, oauth_grant_t *g, char *family, long long *id)
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
    if (used) {
        antar_log_json("warn", "refresh_token_reuse",
                       json_pack("{s:s,s:s}", "client_id", g->client_id, "sub", g->sub));
        family_revoke(family);
        return ANTAR_E_CONFLICT;
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
    if (affected != 1) {
        family_revoke(family);
        return ANTAR_E_CONFLICT;
    }
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

/* The account key is a hash of the normalised username, so that Redis never holds emails or
 * phone numbers and any byte sequence makes a safe key. */
static void acct_key(const char *username, char *out, size_t n)
{
    char low[256], h[65];
    size_t i;
    for (i = 0; username[i] && i < sizeof low - 1; i++)
        low[i] = (char)tolower((unsigned char)username[i]);
    low[i] = '\0';
    oauth_hash_hex(low, h);
    snprintf(out, n, "login:fail:acct:%s", h);
}

static long max_fails(int per_ip)
{
    long n = atol(antar_config_env("ANTAR_LOGIN_MAX_FAILS", "5"));
    if (n <= 0)
        n = 5;
    if (per_ip) {
        long ip = atol(antar_config_env("ANTAR_LOGIN_MAX_FAILS_IP", "0"));
        n = ip > 0 ? ip : n * 10;
    }
    return n;
}

static long over_limit(const char *key, long max)
{
    redisReply *r = antar_kv_command("GET %s", key);
    long wait = 0;
    if (r && r->type == REDIS_REPLY_STRING && atol(r->str) >= max) {
        freeReplyObject(r);
        r = antar_kv_command("TTL %s", key);
        wait = r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (long)r->integer : 1;
    }
    if (r)
        freeReplyObject(r);
    return wait;
}

antar_err_t oauth_throttle_check(const char *username, const char *ip, long *retry_after)
{
    char k[128];
    acct_key(username, k, sizeof k);
    long w1 = over_limit(k, max_fails(0));
    snprintf(k, sizeof k, "login:fail:ip:%.64s", ip ? ip : "-");
    long w2 = over_limit(k, max_fails(1));
    long w = w1 > w2 ? w1 : w2;
    if (w > 0) {
        *retry_after = w;
        return ANTAR_E_TOO_MANY_REQUESTS;
    }
    return ANTAR_OK;
}

static void bump(const char *key)
{
    redisReply *r = antar_kv_command("INCR %s", key);
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        freeReplyObject(r);
        r = antar_kv_command("EXPIRE %s %d", key, THROTTLE_WINDOW_S);
    }
    if (r)
        freeReplyObject(r);
}

void oauth_throttle_fail(const char *username, const char *ip)
{
    char k[128];
    acct_key(username, k, sizeof k);
    bump(k);
    snprintf(k, sizeof k, "login:fail:ip:%.64s", ip ? ip : "-");
    bump(k);
}

void oauth_throttle_success(const char *username)
{
    char k[128];
    acct_key(username, k, sizeof k);
    redisReply *r = antar_kv_command("DEL %s", k);
    if (r)
        freeReplyObject(r);
}
