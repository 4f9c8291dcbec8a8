/* core-service's OAuth 2 authorization server: POST /oauth/token (RFC 6749), /oauth/revoke
 * (RFC 7009), /oauth/introspect (RFC 7662), the metadata (RFC 8414) and the JWKS, and GET /csrf.
 * The protocol endpoints answer in their RFCs' format, not the envelope, so that standard
 * OAuth client libraries work; GET /csrf uses the envelope like every other route. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/util.h"
#include "core.h"
#include "oauth.h"

static const antar_config_t *ocfg;
static bool password_grant = true;

static oauth_client_t clients[] = {
    {.id = "user-app", .role = ANTAR_AUTH_USER, .scope = "user"},
    {.id = "driver-app", .role = ANTAR_AUTH_DRIVER, .scope = "driver"},
    {.id = "user-service", .confidential = true, .role = ANTAR_AUTH_SERVICE, .scope = "internal"},
    {.id = "driver-service", .confidential = true, .role = ANTAR_AUTH_SERVICE, .scope = "internal"},
    {.id = "core-service", .confidential = true, .role = ANTAR_AUTH_SERVICE, .scope = "internal"},
    /* Operations (the simulator's audit): reads the audit routes, and nothing that needs
     * "internal". */
    {.id = "ops", .confidential = true, .role = ANTAR_AUTH_SERVICE, .scope = "ops"},
    /* The browser console (web/, docs/console.md): one public client per view, so that each
     * token carries exactly one role and scope, as every other client's does. */
    {.id = "console-user", .role = ANTAR_AUTH_USER, .scope = "user", .browser = true},
    {.id = "console-driver", .role = ANTAR_AUTH_DRIVER, .scope = "driver", .browser = true},
    {.id = "console-ops",
     .role = ANTAR_AUTH_SERVICE,
     .scope = "ops",
     .browser = true,
     .operator_client = true},
};
#define NCLIENTS (sizeof clients / sizeof clients[0])

const oauth_client_t *oauth_client_find(const char *id)
{
    for (size_t i = 0; id && i < NCLIENTS; i++)
        if (!strcmp(clients[i].id, id))
            return &clients[i];
    return NULL;
}

static const char *role_name(unsigned role)
{
    return role == ANTAR_AUTH_USER ? "user" : role == ANTAR_AUTH_DRIVER ? "driver" : "service";
}

/* ---- RFC 6749 responses --------------------------------------------------------------- */

static void no_store(antar_req_t *req)
{
    antar_http_add_header(req, "Cache-Control", "no-store");
    antar_http_add_header(req, "Pragma", "no-cache");
}

static void oauth_error(antar_req_t *req, int status, const char *error, const char *desc)
{
    no_store(req);
    if (status == 401)
        antar_http_add_header(req, "WWW-Authenticate", "Basic realm=\"antar\"");
    json_t *doc = json_pack("{s:s}", "error", error);
    if (desc)
        json_object_set_new(doc, "error_description", json_string(desc));
    antar_http_reply_json(req, status, doc);
}

/* ---- request parameters --------------------------------------------------------------- */

/* Parameters of a RAW OAuth request as a JSON object of strings. RFC 6749 §3.2: a parameter
 * sent twice is an error; so is an empty body type other than form or JSON. Returns NULL
 * after replying invalid_request. */
static json_t *oauth_params(antar_req_t *req)
{
    size_t len = 0;
    const char *body = antar_req_raw_body(req, &len);
    json_t *out = oauth_params_parse(antar_req_content_type(req), body, len);
    if (!out)
        oauth_error(req, 400, "invalid_request",
                    "the body must be a form (or JSON object) of "
                    "single-valued string parameters");
    return out;
}

static const char *param(json_t *params, const char *name)
{
    const char *v = json_string_value(json_object_get(params, name));
    return v && *v ? v : NULL;
}

/* ---- client authentication ------------------------------------------------------------ */

static bool secret_matches(const oauth_client_t *c, const char *secret)
{
    unsigned char h[32];
    if (!c->has_secret || !secret)
        return false;
    crypto_generichash(h, sizeof h, (const unsigned char *)secret, strlen(secret), NULL, 0);
    /* Hashes of equal length compared in constant time: no timing signal about the secret. */
    return sodium_memcmp(h, c->secret_hash, sizeof h) == 0;
}

/* client_secret_basic or client_secret_post for confidential clients, client_id alone for the
 * public apps. NULL after replying invalid_client / invalid_request. */
static const oauth_client_t *client_authenticate(antar_req_t *req, json_t *params)
{
    const char *auth = antar_req_header(req, "Authorization");
    const char *pid = param(params, "client_id"), *psec = param(params, "client_secret");
    char id[128] = "", sec[256] = "";
    bool basic = false;
    const oauth_client_t *c;
    if (auth && !strncasecmp(auth, "Basic ", 6)) {
        if (!oauth_basic_credentials(auth + 6, id, sizeof id, sec, sizeof sec))
            goto invalid;
        if (psec || (pid && strcmp(pid, id))) {
            oauth_error(req, 400, "invalid_request", "use one client authentication method");
            return NULL;
        }
        basic = true;
    } else if (pid) {
        snprintf(id, sizeof id, "%.127s", pid);
        if (psec)
            snprintf(sec, sizeof sec, "%.255s", psec);
    } else {
        oauth_error(req, 401, "invalid_client", "client authentication is required");
        return NULL;
    }
    c = oauth_client_find(id);
    if (!c)
        goto invalid;
    if (c->confidential ? !secret_matches(c, sec) : (basic || *sec))
        goto invalid;
    sodium_memzero(sec, sizeof sec);
    return c;
invalid:
    sodium_memzero(sec, sizeof sec);
    oauth_error(req, 401, "invalid_client", "client authentication failed");
    return NULL;
}

/* ---- tokens ---------------------------------------------------------------------------- */

char *oauth_mint_access(const char *sub, const char *role, const char *client_id, const char *scope,
                        char *jti_out, long long *exp_out)
{
    unsigned char raw[16];
    char jti[32];
    long long now = (long long)time(NULL);
    core_keys_maybe_rotate();
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(jti, sizeof jti, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "iss", ocfg->issuer, "sub",
                               sub, "aud", ocfg->audience, "exp",
                               (json_int_t)(now + OAUTH_ACCESS_TTL_S), "iat", (json_int_t)now,
                               "jti", jti, "client_id", client_id, "scope", scope, "role", role);
    char *tok = claims ? core_keys_sign(claims) : NULL;
    json_decref(claims);
    if (tok && jti_out)
        snprintf(jti_out, 64, "%s", jti);
    if (exp_out)
        *exp_out = now + OAUTH_ACCESS_TTL_S;
    return tok;
}

static int mint_own_service_token(char *buf, size_t len)
{
    char *t = oauth_mint_access("service:core-service", "service", "core-service", "internal", NULL,
                                NULL);
    int rc = t && strlen(t) < len ? 0 : -1;
    if (rc == 0)
        snprintf(buf, len, "%s", t);
    free(t);
    return rc;
}

/* Issue an access token (and, for the apps, a refresh token in family/after parent) and reply
 * RFC 6749 §5.1. */
static void issue_tokens(antar_req_t *req, const oauth_grant_t *g, bool with_refresh,
                         const char *family, long long parent_id)
{
    char jti[64], refresh[64];
    long long exp = 0;
    char *at = oauth_mint_access(g->sub, g->role, g->client_id, g->scope, jti, &exp);
    if (!at) {
        oauth_error(req, 500, "server_error", "could not sign the token");
        return;
    }
    json_t *doc = json_pack("{s:s,s:s,s:i,s:s}", "access_token", at, "token_type", "Bearer",
                            "expires_in", OAUTH_ACCESS_TTL_S, "scope", g->scope);
    free(at);
    if (with_refresh) {
        oauth_random_token(refresh);
        antar_err_t err = oauth_refresh_store(refresh, g, family, parent_id, jti, exp);
        if (err != ANTAR_OK) {
            json_decref(doc);
            oauth_error(req, 503, "temporarily_unavailable", "the token store is unavailable");
            return;
        }
        json_object_set_new(doc, "refresh_token", json_string(refresh));
        sodium_memzero(refresh, sizeof refresh);
    }
    no_store(req);
    antar_http_reply_json(req, 200, doc);
}

void oauth_grant_init(oauth_grant_t *g, const oauth_client_t *c, const char *sub)
{
    memset(g, 0, sizeof *g);
    snprintf(g->client_id, sizeof g->client_id, "%s", c->id);
    snprintf(g->sub, sizeof g->sub, "%s", sub);
    snprintf(g->role, sizeof g->role, "%s", role_name(c->role));
    snprintf(g->scope, sizeof g->scope, "%s", c->scope);
}

/* A fresh grant of client c to sub (a new refresh-token family for the apps; services get an
 * access token only) and the token response. */
static void issue_new_grant(antar_req_t *req, const oauth_client_t *c, const char *sub)
{
    oauth_grant_t g;
    oauth_grant_init(&g, c, sub);
    /* The operator's ops token is short-lived and not renewable: sign in again. */
    issue_tokens(req, &g, !c->confidential && !c->operator_client, NULL, 0);
}

/* The requested scope, if any, must be the client's scope: each client has exactly one. */
static bool scope_ok(const oauth_client_t *c, json_t *params)
{
    const char *s = param(params, "scope");
    return !s || !strcmp(s, c->scope);
}

antar_err_t oauth_check_password(const oauth_client_t *c, const char *username,
                                 const char *password, char *sub)
{
    /* An operator is a customer account listed in ANTAR_OPERATORS: user-service checks the
     * password, the list decides (before any hashing: no list, no operator). */
    bool op = c->operator_client;
    if (op && !oauth_operator_listed(username, antar_config_env("ANTAR_OPERATORS", "")))
        return ANTAR_E_UNAUTHORIZED;
    antar_svc_t svc = op || c->role == ANTAR_AUTH_USER ? ANTAR_SVC_USER : ANTAR_SVC_DRIVER;
    const char *prefix = op ? "user:" : c->role == ANTAR_AUTH_USER ? "user:" : "driver:";
    json_t *body = json_pack("{s:s,s:s}", "username", username, "password", password);
    antar_httpc_res_t res;
    /* No service token to call with is core failing (UNAVAILABLE), never the user's wrong
     * password: it must not count as a failed login. */
    antar_err_t err = antar_httpc_outcome(
        antar_httpc_call(svc, "POST", "/internal/credentials/verify", body, NULL, &res), &res,
        NULL);
    json_decref(body);
    if (err == ANTAR_OK) {
        json_t *r = antar_httpc_result(&res);
        json_int_t id = json_integer_value(json_object_get(r, "id"));
        const char *rsub = json_string_value(json_object_get(r, "sub"));
        char want[64];
        snprintf(want, sizeof want, "%s%lld", prefix, (long long)id);
        if (id > 0 && (!rsub || !strcmp(rsub, want))) {
            if (op)
                snprintf(sub, 64, "service:operator:%lld", (long long)id);
            else
                snprintf(sub, 64, "%s", want);
        } else {
            err = ANTAR_E_UPSTREAM;
        }
    } else if (err == ANTAR_E_INVALID_CREDENTIALS || antar_err_status(err) == 422 ||
               err == ANTAR_E_NOT_FOUND) {
        /* Only the contract's answer for wrong credentials counts as a wrong password (a 401
         * about core's own service token is the account service failing, not the user), and a
         * username that is not an email or phone at all is refused as a field error. */
        err = ANTAR_E_UNAUTHORIZED;
    } else if (antar_err_status(err) < 500) {
        err = ANTAR_E_UPSTREAM;
    }
    antar_httpc_res_clean(&res);
    return err;
}

static void throttled(antar_req_t *req, long wait)
{
    char v[32];
    snprintf(v, sizeof v, "%ld", wait);
    antar_http_add_header(req, "Retry-After", v);
    oauth_error(req, 429, "invalid_grant",
                "too many failed login attempts; retry after the Retry-After delay");
}

static void grant_password(antar_req_t *req, const oauth_client_t *c, json_t *params)
{
    const char *user = param(params, "username"), *pass = param(params, "password");
    char sub[64];
    long wait = 0;
    if (!password_grant) {
        oauth_error(req, 400, "unsupported_grant_type",
                    "the password grant is disabled; use authorization_code with PKCE");
        return;
    }
    if (!user || !pass) {
        oauth_error(req, 400, "invalid_request",
                    user ? "password is required" : "username is required");
        return;
    }
    if (strlen(user) > 254 || strlen(pass) > 1024) {
        oauth_error(req, 400, "invalid_request", "username or password is too long");
        return;
    }
    if (!scope_ok(c, params)) {
        oauth_error(req, 400, "invalid_scope", "the requested scope is not allowed");
        return;
    }
    const char *ip = antar_req_client_ip(req);
    antar_err_t terr = oauth_throttle_check(user, ip, &wait);
    if (terr == ANTAR_E_KV) {
        /* Without its counters the throttle cannot hold: refuse rather than let guesses
         * through uncounted. */
        antar_http_add_header(req, "Retry-After", "5");
        oauth_error(req, 503, "temporarily_unavailable", "sign-in is unavailable right now");
        return;
    }
    if (terr != ANTAR_OK) {
        throttled(req, wait);
        return;
    }
    antar_err_t err = oauth_check_password(c, user, pass, sub);
    if (err == ANTAR_E_UNAUTHORIZED) {
        oauth_throttle_fail(user, ip);
        oauth_error(req, 400, "invalid_grant", "invalid username or password");
        return;
    }
    if (err != ANTAR_OK) {
        /* Busy hashing (the account service's bounded line is full) or down: come back soon. */
        antar_http_add_header(req, "Retry-After", "1");
        oauth_error(req, 503, "temporarily_unavailable", "the account service is unavailable");
        return;
    }
    oauth_throttle_success(user, ip);
    issue_new_grant(req, c, sub);
}

static bool verifier_ok(const char *v)
{
    size_t n = strlen(v);
    if (n < 43 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && !strchr("-._~", v[i]))
            return false;
    return true;
}

static void grant_code(antar_req_t *req, const oauth_client_t *c, json_t *params)
{
    const char *code = param(params, "code"), *uri = param(params, "redirect_uri");
    const char *verifier = param(params, "code_verifier");
    json_t *data = NULL;
    if (!code || !uri || !verifier) {
        oauth_error(req, 400, "invalid_request",
                    !code  ? "code is required"
                    : !uri ? "redirect_uri is required"
                           : "code_verifier is required");
        return;
    }
    if (strlen(code) > 128 || !verifier_ok(verifier)) {
        oauth_error(req, 400, "invalid_grant", "the code or code_verifier is malformed");
        return;
    }
    antar_err_t err = oauth_code_take(code, &data);
    if (err == ANTAR_E_KV) {
        oauth_error(req, 503, "temporarily_unavailable", "the code store is unavailable");
        return;
    }
    if (err != ANTAR_OK) {
        oauth_error(req, 400, "invalid_grant", "the code is invalid, expired or already used");
        return;
    }
    /* The code was deleted by GETDEL above: whatever the outcome below, it is spent. */
    unsigned char h[crypto_hash_sha256_BYTES];
    char challenge[64];
    crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
    sodium_bin2base64(challenge, sizeof challenge, h, sizeof h,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    const char *want = json_string_value(json_object_get(data, "code_challenge"));
    const char *dcid = json_string_value(json_object_get(data, "client_id"));
    const char *duri = json_string_value(json_object_get(data, "redirect_uri"));
    const char *sub = json_string_value(json_object_get(data, "sub"));
    if (!want || !dcid || !duri || !sub || strcmp(dcid, c->id) || strcmp(duri, uri)) {
        oauth_error(req, 400, "invalid_grant",
                    "the code was issued to another client or "
                    "redirect_uri");
        goto out;
    }
    if (strlen(want) != strlen(challenge) || sodium_memcmp(want, challenge, strlen(want))) {
        oauth_error(req, 400, "invalid_grant", "PKCE verification failed");
        goto out;
    }
    issue_new_grant(req, c, sub);
out:
    json_decref(data);
}

static void grant_refresh(antar_req_t *req, const oauth_client_t *c, json_t *params)
{
    const char *rt = param(params, "refresh_token");
    oauth_grant_t g;
    char family[33];
    long long id = 0;
    if (!rt) {
        oauth_error(req, 400, "invalid_request", "refresh_token is required");
        return;
    }
    if (strlen(rt) > 128 || !scope_ok(c, params)) {
        oauth_error(req, 400, strlen(rt) > 128 ? "invalid_grant" : "invalid_scope",
                    "the refresh token or scope is invalid");
        return;
    }
    antar_err_t err = oauth_refresh_use(rt, c->id, &g, family, &id);
    if (err == ANTAR_E_CONFLICT) {
        oauth_error(req, 400, "invalid_grant",
                    "refresh token reused; every token of this grant is now revoked");
        return;
    }
    if (err == ANTAR_E_NOT_FOUND || (err == ANTAR_OK && strcmp(g.client_id, c->id))) {
        oauth_error(req, 400, "invalid_grant", "the refresh token is invalid, expired or revoked");
        return;
    }
    if (err != ANTAR_OK) {
        oauth_error(req, 503, "temporarily_unavailable", "the token store is unavailable");
        return;
    }
    issue_tokens(req, &g, true, family, id);
}

static void grant_client_credentials(antar_req_t *req, const oauth_client_t *c, json_t *params)
{
    if (!scope_ok(c, params)) {
        oauth_error(req, 400, "invalid_scope", "the requested scope is not allowed");
        return;
    }
    char sub[80];
    snprintf(sub, sizeof sub, "service:%s", c->id);
    issue_new_grant(req, c, sub);
}

static void handle_token(antar_req_t *req)
{
    json_t *params = oauth_params(req);
    if (!params)
        return;
    const char *gt = param(params, "grant_type");
    const oauth_client_t *c;
    if (!gt) {
        oauth_error(req, 400, "invalid_request", "grant_type is required");
        goto out;
    }
    if (!(c = client_authenticate(req, params)))
        goto out;
    bool app = !c->confidential;
    if (!strcmp(gt, "password") || !strcmp(gt, "authorization_code") ||
        !strcmp(gt, "refresh_token")) {
        if (!app) {
            oauth_error(req, 400, "unauthorized_client", "this client may not use this grant");
            goto out;
        }
        if (c->browser && strcmp(gt, "authorization_code") && strcmp(gt, "refresh_token"))
            /* The console signs in through the browser only (RFC 9700 §2.4). */
            oauth_error(req, 400, "unauthorized_client", "this client may not use this grant");
        else if (!strcmp(gt, "password"))
            grant_password(req, c, params);
        else if (!strcmp(gt, "authorization_code"))
            grant_code(req, c, params);
        else
            grant_refresh(req, c, params);
    } else if (!strcmp(gt, "client_credentials")) {
        if (app)
            oauth_error(req, 400, "unauthorized_client", "this client may not use this grant");
        else
            grant_client_credentials(req, c, params);
    } else {
        oauth_error(req, 400, "unsupported_grant_type", "grant_type is not supported");
    }
out:
    json_decref(params);
}

/* ---- revocation and introspection ---------------------------------------------------- */

static bool looks_like_jwt(const char *t)
{
    const char *d = strchr(t, '.');
    return d && strchr(d + 1, '.');
}

static void handle_revoke(antar_req_t *req)
{
    json_t *params = oauth_params(req);
    if (!params)
        return;
    const char *tok = param(params, "token");
    const oauth_client_t *c = client_authenticate(req, params);
    if (!c)
        goto out;
    if (!tok) {
        oauth_error(req, 400, "invalid_request", "token is required");
        goto out;
    }
    /* RFC 7009 §2.2: an invalid or unknown token is not an error; a client may revoke only
     * tokens issued to it. */
    if (strlen(tok) <= 4096) {
        antar_principal_t p;
        antar_err_t err = ANTAR_OK;
        if (looks_like_jwt(tok)) {
            if (antar_auth_verify_at(tok, (long long)time(NULL), &p) == ANTAR_OK &&
                !strcmp(p.client_id, c->id))
                err = oauth_revoke_jti(p.jti, p.exp);
        } else {
            err = oauth_refresh_revoke(tok, c->id);
        }
        if (err != ANTAR_OK) {
            oauth_error(req, 503, "temporarily_unavailable", "revocation failed; retry");
            goto out;
        }
    }
    no_store(req);
    antar_http_reply_raw(req, 200, "application/json", "{}", 2);
out:
    json_decref(params);
}

static void handle_introspect(antar_req_t *req)
{
    json_t *params = oauth_params(req);
    if (!params)
        return;
    const char *tok = param(params, "token");
    const oauth_client_t *c = client_authenticate(req, params);
    json_t *doc = NULL;
    if (!c)
        goto out;
    if (!c->confidential) {
        oauth_error(req, 401, "invalid_client", "introspection is for service clients only");
        goto out;
    }
    if (!tok) {
        oauth_error(req, 400, "invalid_request", "token is required");
        goto out;
    }
    antar_principal_t p;
    oauth_grant_t g;
    if (strlen(tok) <= 4096 && looks_like_jwt(tok) && antar_auth_verify(tok, &p) == ANTAR_OK) {
        doc = json_pack("{s:b,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s}", "active", 1, "scope", p.scope,
                        "client_id", p.client_id, "sub", p.sub, "exp", (json_int_t)p.exp, "iss",
                        ocfg->issuer, "aud", ocfg->audience, "jti", p.jti, "token_type", "Bearer");
        json_object_set_new(doc, "role", json_string(role_name(p.role)));
    } else if (strlen(tok) <= 128 && !looks_like_jwt(tok) &&
               oauth_refresh_lookup(tok, &g) == ANTAR_OK) {
        doc = json_pack("{s:b,s:s,s:s,s:s,s:I,s:s,s:s}", "active", 1, "scope", g.scope, "client_id",
                        g.client_id, "sub", g.sub, "exp", (json_int_t)g.exp, "token_type",
                        "refresh_token", "role", g.role);
    } else {
        doc = json_pack("{s:b}", "active", 0);
    }
    no_store(req);
    antar_http_reply_json(req, 200, doc);
out:
    json_decref(params);
}

/* ---- metadata, keys, CSRF ------------------------------------------------------------- */

static void handle_jwks(antar_req_t *req)
{
    antar_http_add_header(req, "Cache-Control", "public, max-age=300");
    antar_http_reply_json(req, 200, core_keys_jwks());
}

static void handle_metadata(antar_req_t *req)
{
    char u[6][320];
    const char *iss = ocfg->issuer;
    snprintf(u[0], sizeof u[0], "%s/oauth/authorize", iss);
    snprintf(u[1], sizeof u[1], "%s/oauth/token", iss);
    snprintf(u[2], sizeof u[2], "%s/.well-known/jwks.json", iss);
    snprintf(u[3], sizeof u[3], "%s/oauth/revoke", iss);
    snprintf(u[4], sizeof u[4], "%s/oauth/introspect", iss);
    json_t *grants =
        json_pack("[s,s,s]", "authorization_code", "refresh_token", "client_credentials");
    if (password_grant)
        json_array_append_new(grants, json_string("password"));
    json_t *doc = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:[s],s:[s],s:o,s:[s],s:[s,s,s],s:[s,s,s],s:[s,s],s:[s,s,s,s],"
        "s:b}",
        "issuer", iss, "authorization_endpoint", u[0], "token_endpoint", u[1], "jwks_uri", u[2],
        "revocation_endpoint", u[3], "introspection_endpoint", u[4], "response_types_supported",
        "code", "response_modes_supported", "query", "grant_types_supported", grants,
        "code_challenge_methods_supported", "S256", "token_endpoint_auth_methods_supported",
        "client_secret_basic", "client_secret_post", "none",
        "revocation_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post",
        "none", "introspection_endpoint_auth_methods_supported", "client_secret_basic",
        "client_secret_post", "scopes_supported", "user", "driver", "internal", "ops",
        "authorization_response_iss_parameter_supported", 1);
    antar_http_add_header(req, "Cache-Control", "public, max-age=300");
    antar_http_reply_json(req, 200, doc);
}

static long csrf_ttl_s = 7200; /* ANTAR_CSRF_TTL_S, read at init */

static void handle_csrf(antar_req_t *req)
{
    const antar_principal_t *p = antar_req_principal(req);
    char tok[128], ts[32];
    long long exp = 0;
    if (!p || antar_csrf_issue(p->sub, csrf_ttl_s, tok, sizeof tok, &exp) != 0) {
        antar_http_fail(req, ANTAR_E_INTERNAL, NULL, NULL);
        return;
    }
    antar_time_rfc3339(exp * 1000, ts);
    antar_http_add_header(req, "Cache-Control", "no-store");
    antar_http_reply(req, 200, json_pack("{s:s,s:s}", "csrf_token", tok, "expires_at", ts));
}

const antar_route_t core_oauth_routes[] = {
    /* Also on the internal listener, where the peers fetch their service tokens (the
     * client_credentials grant calls no peer; a password grant there is refused by the rule
     * that internal threads never call a peer). */
    {"POST", "/oauth/token", handle_token, ANTAR_AUTH_NONE, NULL,
     ANTAR_ROUTE_NO_CSRF | ANTAR_ROUTE_RAW | ANTAR_ROUTE_INTERNAL_TOO},
    {"POST", "/oauth/revoke", handle_revoke, ANTAR_AUTH_NONE, NULL,
     ANTAR_ROUTE_NO_CSRF | ANTAR_ROUTE_RAW},
    {"POST", "/oauth/introspect", handle_introspect, ANTAR_AUTH_NONE, NULL,
     ANTAR_ROUTE_NO_CSRF | ANTAR_ROUTE_RAW},
    {"GET", "/oauth/authorize", oauth_authorize_get, ANTAR_AUTH_NONE, NULL, ANTAR_ROUTE_NO_CSRF},
    {"POST", "/oauth/authorize", oauth_authorize_post, ANTAR_AUTH_NONE, NULL,
     ANTAR_ROUTE_NO_CSRF | ANTAR_ROUTE_RAW},
    /* Peers verify tokens with these keys, from internal handlers too: a local read. */
    {"GET", "/.well-known/jwks.json", handle_jwks, ANTAR_AUTH_NONE, NULL, ANTAR_ROUTE_INTERNAL_TOO},
    {"GET", "/.well-known/oauth-authorization-server", handle_metadata, ANTAR_AUTH_NONE, NULL, 0},
    /* Both apps' tokens get a CSRF token; no single scope covers both, the role check does. */
    {"GET", "/csrf", handle_csrf, ANTAR_AUTH_USER | ANTAR_AUTH_DRIVER, NULL, 0},
};
const size_t core_oauth_routes_len = sizeof core_oauth_routes / sizeof core_oauth_routes[0];

static void clients_register(void)
{
    /* ANTAR_SERVICE_SECRETS = "user-service:S1,driver-service:S2,core-service:S3,ops:S4". */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", antar_config_env("ANTAR_SERVICE_SECRETS", ""));
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        if (!colon || !colon[1])
            continue;
        *colon = '\0';
        for (size_t i = 0; i < NCLIENTS; i++)
            if (clients[i].confidential && !strcmp(clients[i].id, item)) {
                crypto_generichash(clients[i].secret_hash, 32, (unsigned char *)colon + 1,
                                   strlen(colon + 1), NULL, 0);
                clients[i].has_secret = true;
            }
    }
    sodium_memzero(buf, sizeof buf);
    for (size_t i = 0; i < NCLIENTS; i++) {
        oauth_client_t *c = &clients[i];
        if (c->confidential && !c->has_secret && !strcmp(c->id, ocfg->client_id) &&
            ocfg->client_secret[0]) {
            crypto_generichash(c->secret_hash, 32, (const unsigned char *)ocfg->client_secret,
                               strlen(ocfg->client_secret), NULL, 0);
            c->has_secret = true;
        }
        if (c->confidential && !c->has_secret)
            antar_logf("warn", "client %s has no secret configured: it cannot get tokens", c->id);
        char hex[65] = "";
        if (c->has_secret)
            sodium_bin2hex(hex, sizeof hex, c->secret_hash, 32);
        /* The table is a record for operators; clients[] above is what authenticates, so a
         * failure here is worth a warning, not a refusal to start. */
        char uris[1024] = "";
        if (c->browser) {
            /* "<origin>/console/" for each configured origin. */
            char o[600];
            size_t used = 0;
            snprintf(o, sizeof o, "%s", antar_config_env("ANTAR_CONSOLE_ORIGINS", ""));
            for (char *sv = NULL, *it = strtok_r(o, " ", &sv); it; it = strtok_r(NULL, " ", &sv)) {
                int w =
                    snprintf(uris + used, sizeof uris - used, "%s%s/console/", used ? " " : "", it);
                if (w < 0 || (size_t)w >= sizeof uris - used)
                    break;
                used += (size_t)w;
            }
        } else if (!c->confidential) {
            snprintf(uris, sizeof uris, "%s", "antar://callback http://127.0.0.1:{port}/callback");
        }
        if (oauth_client_save(c->id, c->confidential, role_name(c->role), c->scope,
                              c->has_secret ? hex : NULL, uris[0] ? uris : NULL) != ANTAR_OK)
            antar_logf("warn", "client %s could not be recorded in oauth_clients", c->id);
    }
}

int core_oauth_init(const antar_config_t *cfg)
{
    char dir[600];
    ocfg = cfg;
    password_grant = strcmp(antar_config_env("ANTAR_PASSWORD_GRANT", "1"), "0") != 0;
    csrf_ttl_s = antar_config_long("ANTAR_CSRF_TTL_S", 7200, 60, 30L * 86400);
    snprintf(dir, sizeof dir, "%s/keys", cfg->state_dir);
    long long max_age = antar_config_long("ANTAR_KEY_MAX_AGE_S", 2592000, 1, 10L * 365 * 86400);
    if (core_keys_init(dir, max_age) != 0) {
        antar_logf("error", "cannot load or create the signing keys in %s", dir);
        return -1;
    }
    clients_register();
    antar_auth_set_local_minter(mint_own_service_token);
    antar_log_json("info", "oauth_ready",
                   json_pack("{s:b,s:s}", "password_grant", password_grant, "issuer", cfg->issuer));
    return 0;
}

void core_oauth_shutdown(void)
{
    antar_auth_set_local_minter(NULL);
    core_keys_shutdown();
}
