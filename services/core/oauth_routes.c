/* oauth_routes.c — core-service's OAuth 2 authorization server on the wire: POST /oauth/token
 * (RFC 6749), /oauth/revoke (RFC 7009), /oauth/introspect (RFC 7662), the metadata (RFC 8414)
 * and the JWKS, and GET /csrf. HTTP only: read the parameters (the toolkit's strict form
 * decoder, oauth_parse.c) and the client's credentials, call oauth_grants.c, answer. The
 * protocol endpoints answer in their RFCs' format, not the envelope, so that standard OAuth
 * client libraries work; GET /csrf uses the envelope like every other route. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/log.h"
#include "antar/util.h"
#include "core.h"
#include "oauth.h"

static const antar_config_t *ocfg;

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
    c = oauth_client_check(id, sec, basic);
    if (!c)
        goto invalid;
    sodium_memzero(sec, sizeof sec);
    return c;
invalid:
    sodium_memzero(sec, sizeof sec);
    oauth_error(req, 401, "invalid_client", "client authentication failed");
    return NULL;
}

/* ---- the endpoints --------------------------------------------------------------------- */

/* A grant's answer: the token response, or the RFC 6749 §5.2 error (with Retry-After). */
static void answer(antar_req_t *req, oauth_answer_t *a)
{
    if (a->retry_after_s > 0) {
        char v[32];
        snprintf(v, sizeof v, "%ld", a->retry_after_s);
        antar_http_add_header(req, "Retry-After", v);
    }
    if (a->error) {
        oauth_error(req, a->status, a->error, a->description);
        return;
    }
    no_store(req);
    antar_http_reply_json(req, a->status, a->doc);
    a->doc = NULL;
}

static void handle_token(antar_req_t *req)
{
    json_t *params = oauth_params(req);
    if (!params)
        return;
    const oauth_params_t p = {
        .grant_type = param(params, "grant_type"),
        .scope = param(params, "scope"),
        .username = param(params, "username"),
        .password = param(params, "password"),
        .code = param(params, "code"),
        .redirect_uri = param(params, "redirect_uri"),
        .code_verifier = param(params, "code_verifier"),
        .refresh_token = param(params, "refresh_token"),
    };
    const oauth_client_t *c;
    if (!p.grant_type) {
        oauth_error(req, 400, "invalid_request", "grant_type is required");
    } else if ((c = client_authenticate(req, params))) {
        oauth_answer_t a;
        oauth_token(c, &p, antar_req_client_ip(req), &a);
        answer(req, &a);
    }
    json_decref(params);
}

/* What revocation and introspection start with (RFC 7009 §2.1, RFC 7662 §2.1): the
 * parameters, the authenticated client (a service client only, when services_only) and the
 * token. The parameters (caller releases), or NULL after replying the error. */
static json_t *token_request(antar_req_t *req, bool services_only, const oauth_client_t **c,
                             const char **tok)
{
    json_t *params = oauth_params(req);
    if (!params)
        return NULL;
    *tok = param(params, "token");
    *c = client_authenticate(req, params);
    if (!*c)
        goto refused;
    if (services_only && !(*c)->confidential) {
        oauth_error(req, 401, "invalid_client", "introspection is for service clients only");
        goto refused;
    }
    if (!*tok) {
        oauth_error(req, 400, "invalid_request", "token is required");
        goto refused;
    }
    return params;
refused:
    json_decref(params);
    return NULL;
}

static void handle_revoke(antar_req_t *req)
{
    const oauth_client_t *c;
    const char *tok;
    json_t *params = token_request(req, false, &c, &tok);
    if (!params)
        return;
    if (oauth_revoke(c, tok) != ANTAR_OK) {
        oauth_error(req, 503, "temporarily_unavailable", "revocation failed; retry");
    } else {
        no_store(req);
        antar_http_reply_raw(req, 200, "application/json", "{}", 2);
    }
    json_decref(params);
}

static void handle_introspect(antar_req_t *req)
{
    const oauth_client_t *c;
    const char *tok;
    json_t *params = token_request(req, true, &c, &tok);
    if (!params)
        return;
    no_store(req);
    antar_http_reply_json(req, 200, oauth_introspect(tok));
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
    if (oauth_password_grant_enabled())
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

int core_oauth_init(const antar_config_t *cfg)
{
    char dir[600];
    ocfg = cfg;
    csrf_ttl_s = antar_config_long("ANTAR_CSRF_TTL_S", 7200, 60, 30L * 86400);
    snprintf(dir, sizeof dir, "%s/keys", cfg->state_dir);
    long long max_age = antar_config_long("ANTAR_KEY_MAX_AGE_S", 2592000, 1, 10L * 365 * 86400);
    if (core_keys_init(dir, max_age) != 0) {
        antar_logf("error", "cannot load or create the signing keys in %s", dir);
        return -1;
    }
    oauth_grants_init(cfg);
    antar_auth_set_local_minter(oauth_mint_own_service_token);
    antar_log_json("info", "oauth_ready",
                   json_pack("{s:b,s:s}", "password_grant", oauth_password_grant_enabled(),
                             "issuer", cfg->issuer));
    return 0;
}

void core_oauth_shutdown(void)
{
    antar_auth_set_local_minter(NULL);
    core_keys_shutdown();
}
