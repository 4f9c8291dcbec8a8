/* This service's own access token: client_credentials against core, cached and renewed a
 * minute before it expires. Core, the issuer, mints its token locally instead. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/httpc.h"
#include "antar/log.h"

#define RENEW_BEFORE_S 60
#define FAIL_BACKOFF_S 2

static pthread_mutex_t tok_lock = PTHREAD_MUTEX_INITIALIZER;
static char tok[4096];
static long long tok_exp;      /* unix seconds; 0 = none */
static long long tok_retry_at; /* after a failed fetch, do not hammer core */
static antar_token_minter_fn minter;

void antar_auth_set_local_minter(antar_token_minter_fn fn)
{
    pthread_mutex_lock(&tok_lock);
    minter = fn;
    tok_exp = 0;
    pthread_mutex_unlock(&tok_lock);
}

/* RFC 6749 §2.3.1: client_secret_basic form-urlencodes id and secret before base64. */
static int basic_header(const antar_config_t *cfg, char *out, size_t outlen)
{
    char *id = curl_easy_escape(NULL, cfg->client_id, 0);
    char *sec = curl_easy_escape(NULL, cfg->client_secret, 0);
    char pair[512];
    int rc = -1;
    if (!id || !sec)
        goto done;
    int n = snprintf(pair, sizeof pair, "%s:%s", id, sec);
    if (n < 0 || (size_t)n >= sizeof pair)
        goto done;
    size_t need = sodium_base64_ENCODED_LEN((size_t)n, sodium_base64_VARIANT_ORIGINAL);
    if (outlen < need + 6)
        goto done;
    memcpy(out, "Basic ", 6);
    sodium_bin2base64(out + 6, outlen - 6, (const unsigned char *)pair, (size_t)n,
                      sodium_base64_VARIANT_ORIGINAL);
    rc = 0;
done:
    sodium_memzero(pair, sizeof pair);
    curl_free(id);
    curl_free(sec);
    return rc;
}

static int fetch_remote(long long now)
{
    const antar_config_t *cfg = antar_config();
    char auth[512];
    antar_httpc_res_t res;
    int rc = -1;
    if (basic_header(cfg, auth, sizeof auth) != 0)
        return -1;
    antar_err_t err = antar_httpc_peer_request(
        ANTAR_SVC_CORE, "POST", "/oauth/token", "application/x-www-form-urlencoded",
        "grant_type=client_credentials&scope=internal", auth, &res);
    sodium_memzero(auth, sizeof auth);
    if (err == ANTAR_OK && res.status == 200 && res.body) {
        const char *at = json_string_value(json_object_get(res.body, "access_token"));
        json_int_t ttl = json_integer_value(json_object_get(res.body, "expires_in"));
        if (at && strlen(at) < sizeof tok && ttl > 0) {
            snprintf(tok, sizeof tok, "%s", at);
            tok_exp = now + ttl;
            rc = 0;
        }
    }
    if (rc != 0)
        antar_log_json(
            "warn", "service_token_failed",
            json_pack("{s:s,s:I}", "error", antar_err_code(err), "status", (json_int_t)res.status));
    antar_httpc_res_clean(&res);
    return rc;
}

int antar_auth_service_token(char *buf, size_t len)
{
    long long now = (long long)time(NULL);
    int rc = 0;
    pthread_mutex_lock(&tok_lock);
    if (tok_exp - RENEW_BEFORE_S <= now) {
        if (minter) {
            /* Core's minter returns a token valid for the full access lifetime. */
            rc = minter(tok, sizeof tok);
            tok_exp = rc == 0 ? now + 900 - 30 : 0;
        } else if (now < tok_retry_at) {
            rc = tok_exp > now ? 0 : -1;
        } else if (fetch_remote(now) != 0) {
            tok_retry_at = now + FAIL_BACKOFF_S;
            /* A still-valid old token beats none while core is briefly away. */
            rc = tok_exp > now ? 0 : -1;
        }
    }
    if (rc == 0 && strlen(tok) < len)
        snprintf(buf, len, "%s", tok);
    else
        rc = -1;
    pthread_mutex_unlock(&tok_lock);
    return rc;
}

void antar_auth_service_token_reset(void)
{
    pthread_mutex_lock(&tok_lock);
    tok_exp = 0;
    tok_retry_at = 0;
    pthread_mutex_unlock(&tok_lock);
}
