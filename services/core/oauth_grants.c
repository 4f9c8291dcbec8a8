/* oauth_grants.c — the authorization server's rules, no HTTP: the clients and how they
 * authenticate, which client may use which grant, the grants themselves (password with the
 * login throttle, authorization code with PKCE, refresh-token rotation, client credentials),
 * minting access tokens, revocation and introspection. Storage is oauth_store.c's; the
 * endpoints that speak RFC 6749 on the wire are oauth_routes.c's. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "antar/util.h"
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

const char *oauth_role_name(unsigned role)
{
    return role == ANTAR_AUTH_USER ? "user" : role == ANTAR_AUTH_DRIVER ? "driver" : "service";
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

const oauth_client_t *oauth_client_check(const char *id, const char *secret, bool basic)
{
    const oauth_client_t *c = oauth_client_find(id);
    if (!c)
        return NULL;
    /* A confidential client proves its secret; a public one has none to send. */
    if (c->confidential ? !secret_matches(c, secret) : (basic || *secret))
        return NULL;
    return c;
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

int oauth_mint_own_service_token(char *buf, size_t len)
{
    char *t = oauth_mint_access("service:core-service", "service", "core-service", "internal", NULL,
                                NULL);
    int rc = t && strlen(t) < len ? 0 : -1;
    if (rc == 0)
        snprintf(buf, len, "%s", t);
    free(t);
    return rc;
}

static void refuse(oauth_answer_t *a, int status, const char *error, const char *description)
{
    json_decref(a->doc);
    *a = (oauth_answer_t){.status = status, .error = error, .description = description};
}

/* An access token (and, for the apps, a refresh token in family/after parent): RFC 6749
 * §5.1's document in a. */
static void issue_tokens(oauth_answer_t *a, const oauth_grant_t *g, bool with_refresh,
                         const char *family, long long parent_id)
{
    char jti[64], refresh[64];
    long long exp = 0;
    char *at = oauth_mint_access(g->sub, g->role, g->client_id, g->scope, jti, &exp);
    if (!at) {
        refuse(a, 500, "server_error", "could not sign the token");
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
            refuse(a, 503, "temporarily_unavailable", "the token store is unavailable");
            return;
        }
        json_object_set_new(doc, "refresh_token", json_string(refresh));
        sodium_memzero(refresh, sizeof refresh);
    }
    *a = (oauth_answer_t){.status = 200, .doc = doc};
}

void oauth_grant_init(oauth_grant_t *g, const oauth_client_t *c, const char *sub)
{
    memset(g, 0, sizeof *g);
    snprintf(g->client_id, sizeof g->client_id, "%s", c->id);
    snprintf(g->sub, sizeof g->sub, "%s", sub);
    snprintf(g->role, sizeof g->role, "%s", oauth_role_name(c->role));
    snprintf(g->scope, sizeof g->scope, "%s", c->scope);
}

/* A fresh grant of client c to sub (a new refresh-token family for the apps; services get an
 * access token only). */
static void issue_new_grant(oauth_answer_t *a, const oauth_client_t *c, const char *sub)
{
    oauth_grant_t g;
    oauth_grant_init(&g, c, sub);
    /* The operator's ops token is short-lived and not renewable: sign in again. */
    issue_tokens(a, &g, !c->confidential && !c->operator_client, NULL, 0);
}

/* The requested scope, if any, must be the client's scope: each client has exactly one. */
static bool scope_ok(const oauth_client_t *c, const char *scope)
{
    return !scope || !strcmp(scope, c->scope);
}

antar_err_t oauth_check_password(const oauth_client_t *c, const char *username,
                                 const char *password, char *sub)
{
    /* An operator is a customer account listed in ANTAR_OPERATORS: user-service checks the
     * password, the list decides (before any hashing: no list, no operator). */
    bool op = c->operator_client;
    if (op && !oauth_operator_listed(username, oauth_operators()))
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

/* ---- the grants ------------------------------------------------------------------------ */

static void grant_password(oauth_answer_t *a, const oauth_client_t *c, const oauth_params_t *p,
                           const char *ip)
{
    const char *user = p->username, *pass = p->password;
    char sub[64];
    long wait = 0;
    if (!password_grant) {
        refuse(a, 400, "unsupported_grant_type",
               "the password grant is disabled; use authorization_code with PKCE");
        return;
    }
    if (!user || !pass) {
        refuse(a, 400, "invalid_request", user ? "password is required" : "username is required");
        return;
    }
    if (strlen(user) > 254 || strlen(pass) > 1024) {
        refuse(a, 400, "invalid_request", "username or password is too long");
        return;
    }
    if (!scope_ok(c, p->scope)) {
        refuse(a, 400, "invalid_scope", "the requested scope is not allowed");
        return;
    }
    antar_err_t terr = oauth_throttle_check(user, ip, &wait);
    if (terr == ANTAR_E_KV) {
        /* Without its counters the throttle cannot hold: refuse rather than let guesses
         * through uncounted. */
        refuse(a, 503, "temporarily_unavailable", "sign-in is unavailable right now");
        a->retry_after_s = 5;
        return;
    }
    if (terr != ANTAR_OK) {
        refuse(a, 429, "invalid_grant",
               "too many failed login attempts; retry after the Retry-After delay");
        a->retry_after_s = wait;
        return;
    }
    antar_err_t err = oauth_check_password(c, user, pass, sub);
    if (err == ANTAR_E_UNAUTHORIZED) {
        oauth_throttle_fail(user, ip);
        refuse(a, 400, "invalid_grant", "invalid username or password");
        return;
    }
    if (err != ANTAR_OK) {
        /* Busy hashing (the account service's bounded line is full) or down: come back soon. */
        refuse(a, 503, "temporarily_unavailable", "the account service is unavailable");
        a->retry_after_s = 1;
        return;
    }
    oauth_throttle_success(user, ip);
    issue_new_grant(a, c, sub);
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

static void grant_code(oauth_answer_t *a, const oauth_client_t *c, const oauth_params_t *p)
{
    const char *code = p->code, *uri = p->redirect_uri, *verifier = p->code_verifier;
    json_t *data = NULL;
    if (!code || !uri || !verifier) {
        refuse(a, 400, "invalid_request",
               !code  ? "code is required"
               : !uri ? "redirect_uri is required"
                      : "code_verifier is required");
        return;
    }
    if (strlen(code) > 128 || !verifier_ok(verifier)) {
        refuse(a, 400, "invalid_grant", "the code or code_verifier is malformed");
        return;
    }
    antar_err_t err = oauth_code_take(code, &data);
    if (err == ANTAR_E_KV) {
        refuse(a, 503, "temporarily_unavailable", "the code store is unavailable");
        return;
    }
    if (err != ANTAR_OK) {
        refuse(a, 400, "invalid_grant", "the code is invalid, expired or already used");
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
    if (!want || !dcid || !duri || !sub || strcmp(dcid, c->id) || strcmp(duri, uri))
        refuse(a, 400, "invalid_grant", "the code was issued to another client or redirect_uri");
    else if (strlen(want) != strlen(challenge) || sodium_memcmp(want, challenge, strlen(want)))
        refuse(a, 400, "invalid_grant", "PKCE verification failed");
    else
        issue_new_grant(a, c, sub);
    json_decref(data);
}

/* Rotation: the token is used once and its successor joins the same family; a token used a
 * second time revokes the family (oauth_refresh_use). */
static void grant_refresh(oauth_answer_t *a, const oauth_client_t *c, const oauth_params_t *p)
{
    const char *rt = p->refresh_token;
    oauth_grant_t g;
    char family[33];
    long long id = 0;
    if (!rt) {
        refuse(a, 400, "invalid_request", "refresh_token is required");
        return;
    }
    if (strlen(rt) > 128 || !scope_ok(c, p->scope)) {
        refuse(a, 400, strlen(rt) > 128 ? "invalid_grant" : "invalid_scope",
               "the refresh token or scope is invalid");
        return;
    }
    antar_err_t err = oauth_refresh_use(rt, c->id, &g, family, &id);
    if (err == ANTAR_E_CONFLICT) {
        refuse(a, 400, "invalid_grant",
               "refresh token reused; every token of this grant is now revoked");
        return;
    }
    if (err == ANTAR_E_NOT_FOUND || (err == ANTAR_OK && strcmp(g.client_id, c->id))) {
        refuse(a, 400, "invalid_grant", "the refresh token is invalid, expired or revoked");
        return;
    }
    if (err != ANTAR_OK) {
        refuse(a, 503, "temporarily_unavailable", "the token store is unavailable");
        return;
    }
    issue_tokens(a, &g, true, family, id);
}

static void grant_client_credentials(oauth_answer_t *a, const oauth_client_t *c,
                                     const oauth_params_t *p)
{
    if (!scope_ok(c, p->scope)) {
        refuse(a, 400, "invalid_scope", "the requested scope is not allowed");
        return;
    }
    char sub[80];
    snprintf(sub, sizeof sub, "service:%s", c->id);
    issue_new_grant(a, c, sub);
}

void oauth_token(const oauth_client_t *c, const oauth_params_t *p, const char *ip,
                 oauth_answer_t *a)
{
    const char *gt = p->grant_type;
    bool app = !c->confidential;
    *a = (oauth_answer_t){0};
    if (!strcmp(gt, "password") || !strcmp(gt, "authorization_code") ||
        !strcmp(gt, "refresh_token")) {
        if (!app)
            refuse(a, 400, "unauthorized_client", "this client may not use this grant");
        else if (c->browser && strcmp(gt, "authorization_code") && strcmp(gt, "refresh_token"))
            /* The console signs in through the browser only (RFC 9700 §2.4). */
            refuse(a, 400, "unauthorized_client", "this client may not use this grant");
        else if (!strcmp(gt, "password"))
            grant_password(a, c, p, ip);
        else if (!strcmp(gt, "authorization_code"))
            grant_code(a, c, p);
        else
            grant_refresh(a, c, p);
    } else if (!strcmp(gt, "client_credentials")) {
        if (app)
            refuse(a, 400, "unauthorized_client", "this client may not use this grant");
        else
            grant_client_credentials(a, c, p);
    } else {
        refuse(a, 400, "unsupported_grant_type", "grant_type is not supported");
    }
}

bool oauth_password_grant_enabled(void)
{
    return password_grant;
}

/* ---- revocation and introspection ---------------------------------------------------- */

static bool looks_like_jwt(const char *t)
{
    const char *d = strchr(t, '.');
    return d && strchr(d + 1, '.');
}

antar_err_t oauth_revoke(const oauth_client_t *c, const char *tok)
{
    /* RFC 7009 §2.2: an invalid or unknown token is not an error; a client may revoke only
     * tokens issued to it. */
    if (strlen(tok) > 4096)
        return ANTAR_OK;
    antar_principal_t p;
    if (!looks_like_jwt(tok))
        return oauth_refresh_revoke(tok, c->id);
    if (antar_auth_verify_at(tok, (long long)time(NULL), &p) == ANTAR_OK &&
        !strcmp(p.client_id, c->id))
        return oauth_revoke_jti(p.jti, p.exp);
    return ANTAR_OK;
}

json_t *oauth_introspect(const char *tok)
{
    antar_principal_t p;
    oauth_grant_t g;
    json_t *doc;
    if (strlen(tok) <= 4096 && looks_like_jwt(tok) && antar_auth_verify(tok, &p) == ANTAR_OK) {
        doc = json_pack("{s:b,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s}", "active", 1, "scope", p.scope,
                        "client_id", p.client_id, "sub", p.sub, "exp", (json_int_t)p.exp, "iss",
                        ocfg->issuer, "aud", ocfg->audience, "jti", p.jti, "token_type", "Bearer");
        json_object_set_new(doc, "role", json_string(oauth_role_name(p.role)));
    } else if (strlen(tok) <= 128 && !looks_like_jwt(tok) &&
               oauth_refresh_lookup(tok, &g) == ANTAR_OK) {
        doc = json_pack("{s:b,s:s,s:s,s:s,s:I,s:s,s:s}", "active", 1, "scope", g.scope, "client_id",
                        g.client_id, "sub", g.sub, "exp", (json_int_t)g.exp, "token_type",
                        "refresh_token", "role", g.role);
    } else {
        doc = json_pack("{s:b}", "active", 0);
    }
    return doc;
}

/* ---- start ----------------------------------------------------------------------------- */

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
        if (oauth_client_save(c->id, c->confidential, oauth_role_name(c->role), c->scope,
                              c->has_secret ? hex : NULL, uris[0] ? uris : NULL) != ANTAR_OK)
            antar_logf("warn", "client %s could not be recorded in oauth_clients", c->id);
    }
}

/* Read once at start (no environment lookups on a request's path). */
static char g_operators[4096], g_console_origins[2048];

const char *oauth_operators(void)
{
    return g_operators;
}

const char *oauth_console_origins(void)
{
    return g_console_origins;
}

void oauth_grants_init(const antar_config_t *cfg)
{
    ocfg = cfg;
    password_grant = strcmp(antar_config_env("ANTAR_PASSWORD_GRANT", "1"), "0") != 0;
    if ((size_t)snprintf(g_operators, sizeof g_operators, "%s",
                         antar_config_env("ANTAR_OPERATORS", "")) >= sizeof g_operators)
        antar_logf("error",
                   "ANTAR_OPERATORS is longer than %zu bytes: the operators past that "
                   "are not recognised",
                   sizeof g_operators - 1);
    snprintf(g_console_origins, sizeof g_console_origins, "%s",
             antar_config_env("ANTAR_CONSOLE_ORIGINS", ""));
    clients_register();
}
