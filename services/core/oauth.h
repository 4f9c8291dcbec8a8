/* core-service's authorization server, split by layer like the services (STYLE.md), the
 * interfaces between its files:
 *   oauth_routes.c    HTTP: the token, revoke, introspect, metadata, JWKS and CSRF endpoints
 *                     (RFC 6749's error format on the protocol endpoints, the envelope on /csrf)
 *   oauth_authorize.c HTTP: the login page of the authorization-code flow
 *   oauth_parse.c     what clients send: parameters (the toolkit's form decoder), Basic
 *                     credentials, redirect URIs, the login cookie; no I/O
 *   oauth_grants.c    the rules: clients, grants (password, code with PKCE, refresh rotation,
 *                     client credentials), minting, revocation, introspection; no HTTP, no SQL
 *   oauth_store.c     refresh tokens in MariaDB (prepared statements), authorization codes and
 *                     login throttling in Redis
 *   keys.c            signing keys, JWT signing, the JWKS
 *   oauth_issue.c     the operator's --issue-refresh-tokens command */
#ifndef CORE_OAUTH_H
#define CORE_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "antar/config.h"
#include "antar/error.h"
#include "antar/http.h"

#define OAUTH_ACCESS_TTL_S 900
#define OAUTH_CODE_TTL_S 60

/* ---- clients (oauth_grants.c) ----------------------------------------------------------- */
typedef struct {
    const char *id;    /* "user-app" */
    bool confidential; /* has a secret: a service */
    unsigned role;     /* ANTAR_AUTH_USER / DRIVER / SERVICE */
    const char *scope; /* "user", "driver", "internal" */
    /* A browser client of the console (web/, served by the edge at /console/): public, sign-in
     * only through the authorization-code flow with PKCE (no password grant), redirect URI
     * <origin>/console/ for an origin of ANTAR_CONSOLE_ORIGINS. */
    bool browser;
    /* The console's operator client: signs in with a customer account whose email is listed in
     * ANTAR_OPERATORS, and gets an ops-scoped token (role service, sub "service:operator:<id>")
     * without a refresh token. */
    bool operator_client;
    unsigned char secret_hash[32]; /* BLAKE2b-256 of the secret; confidential only */
    bool has_secret;
} oauth_client_t;

/* The client by id, or NULL. Static storage. */
const oauth_client_t *oauth_client_find(const char *id);
/* The client id authenticates as: a confidential client with its secret (compared in constant
 * time), a public one with no secret at all and not through HTTP Basic (basic). NULL when it
 * does not. */
const oauth_client_t *oauth_client_check(const char *id, const char *secret, bool basic);
/* "user", "driver" or "service" for an ANTAR_AUTH_* role. */
const char *oauth_role_name(unsigned role);
/* oauth_parse.c: is uri one of the registered redirect URIs of the apps (exact antar://callback, or
 * http://127.0.0.1:<port>/callback)? */
bool oauth_redirect_uri_ok(const char *uri);
/* Is uri a redirect URI registered for client c: the apps' (oauth_redirect_uri_ok), or for a
 * browser client exactly "<origin>/console/" with origin one of the space-separated origins
 * (each at most 200 bytes, "http[s]://host[:port]"). */
bool oauth_redirect_uri_ok_for(const oauth_client_t *c, const char *uri, const char *origins);
/* Is username (case-insensitively) one of the comma-separated emails of ANTAR_OPERATORS? */
bool oauth_operator_listed(const char *username, const char *operators);
/* Verify credentials with the service that owns the client's accounts. On ANTAR_OK, sub (64
 * bytes) holds "user:17"/"driver:5". ANTAR_E_UNAUTHORIZED for wrong credentials;
 * UNAVAILABLE/TIMEOUT/UPSTREAM when the service cannot answer. */
antar_err_t oauth_check_password(const oauth_client_t *c, const char *username,
                                 const char *password, char *sub);

/* ---- keys.c ----------------------------------------------------------------------------- */
/* Load or create the signing keys in dir (created 0700, key files 0600); rotate the current
 * key when it is older than max_age_s. Installs the public JWKS into lib/auth. 0 or -1. */
int core_keys_init(const char *dir, long long max_age_s);
/* `antar-core --retire-keys` (emergency rotation, with core stopped): put every signing key of
 * <state_dir>/keys on the revocation list in Redis (so every service refuses their tokens at
 * once, cached or not), then delete the key files; core makes a new key when it starts.
 * Prints "retired <kid>" per key. 0 on success; 1 when Redis refused (no file deleted). */
int core_keys_retire_command(int argc, char **argv);
void core_keys_shutdown(void);
/* Rotate now if the current key is older than the limit (cheap when it is not). */
void core_keys_maybe_rotate(void);
/* Sign claims (borrowed) as an at+jwt with the current key; kid set here. Returns a malloc'd
 * compact JWT (caller frees), or NULL. */
char *core_keys_sign(json_t *claims);
/* The public JWKS document {"keys": [...]} (new reference). */
json_t *core_keys_jwks(void);

/* ---- oauth_grants.c: tokens and grants ------------------------------------------------- */

/* Read the settings (ANTAR_PASSWORD_GRANT) and register the clients' secrets
 * (ANTAR_SERVICE_SECRETS, cfg's own) and their oauth_clients records. cfg borrowed for good. */
void oauth_grants_init(const antar_config_t *cfg);
/* ANTAR_OPERATORS and ANTAR_CONSOLE_ORIGINS as read by oauth_grants_init ("" before it). */
const char *oauth_operators(void);
const char *oauth_console_origins(void);
/* Whether the password grant is offered (ANTAR_PASSWORD_GRANT, default on). */
bool oauth_password_grant_enabled(void);
/* Mint an access token. sub/role/client_id/scope borrowed. jti_out (64 bytes) and exp_out may
 * be NULL. Returns malloc'd JWT or NULL. */
char *oauth_mint_access(const char *sub, const char *role, const char *client_id, const char *scope,
                        char *jti_out, long long *exp_out);
/* core-service's own service token into buf (lib/auth's local minter). 0 or -1. */
int oauth_mint_own_service_token(char *buf, size_t len);

/* The parameters of a token request (borrowed; NULL when absent or empty). */
typedef struct {
    const char *grant_type, *scope, *username, *password, *code, *redirect_uri, *code_verifier,
        *refresh_token;
} oauth_params_t;

/* What a grant answers, in RFC 6749's terms: the token response (status 200, doc) or an error
 * (status, error code, description) with, when retry_after_s > 0, a Retry-After. Its own type
 * rather than antar_outcome_t: the protocol's error codes (invalid_grant, invalid_client …)
 * are RFC 6749's, not the error table's, and these endpoints never answer in the envelope. */
typedef struct {
    int status;
    const char *error;       /* NULL on success */
    const char *description; /* static string */
    long retry_after_s;
    json_t *doc; /* the token response on success; owned by the answer until replied */
} oauth_answer_t;

/* The token endpoint's rules for client c (authenticated) and p (p->grant_type not NULL): which
 * grant the client may use, then the grant. ip is the caller's address, for the login
 * throttle. a is always set; a->doc is the caller's to release or send. */
void oauth_token(const oauth_client_t *c, const oauth_params_t *p, const char *ip,
                 oauth_answer_t *a);
/* RFC 7009: revoke tok if it is one of c's (an access token's jti goes on the revocation list,
 * a refresh token's family is revoked). ANTAR_OK also for an unknown or invalid token; an
 * error when the revocation could not be stored. */
antar_err_t oauth_revoke(const oauth_client_t *c, const char *tok);
/* RFC 7662: the introspection document of tok ({"active": false} when it is not active). New
 * reference. */
json_t *oauth_introspect(const char *tok);

/* ---- oauth_store.c ---------------------------------------------------------------------- */
/* 43-char base64url of 32 random bytes. out must hold 64 bytes. */
void oauth_random_token(char *out);
/* Lowercase hex BLAKE2b-256 of s. out must hold 65 bytes. */
void oauth_hash_hex(const char *s, char *out);

typedef struct {
    char client_id[64];
    char sub[64];
    char role[16];
    char scope[256];
    long long exp;
} oauth_grant_t;

/* The grant client c gives to sub ("user:17"), as every new grant (password, code) makes it:
 * the client's id, role and scope. */
void oauth_grant_init(oauth_grant_t *g, const oauth_client_t *c, const char *sub);

/* Store a new refresh token (hash only) for a new family (family NULL) or as the successor of
 * parent_id in family. access_jti/access_exp remember the access token issued with it, so that
 * revoking the family can also revoke that access token (NULL/0: none was). */
antar_err_t oauth_refresh_store(const char *token, const oauth_grant_t *g, const char *family,
                                long long parent_id, const char *access_jti, long long access_exp);
/* Most tokens oauth_refresh_store_many takes at once. */
#define OAUTH_REFRESH_BATCH 1000
/* Store n (≤ OAUTH_REFRESH_BATCH) new refresh-token families in one transaction, each exactly
 * as oauth_refresh_store with no family, parent or access token: tokens[i] for grants[i].
 * Nothing is stored on error. */
antar_err_t oauth_refresh_store_many(const char (*tokens)[64], const oauth_grant_t *grants,
                                     size_t n);
/* Use a refresh token once: on ANTAR_OK, g, family (33 bytes) and id are filled and the token
 * is marked used. A token already used revokes its whole family (and returns
 * ANTAR_E_CONFLICT, or ANTAR_E_KV when the family's access tokens could not all be put on the
 * revocation list); unknown, expired, revoked, or issued to another client than client_id →
 * ANTAR_E_NOT_FOUND, and the token is left as it was. */
antar_err_t oauth_refresh_use(const char *token, const char *client_id, oauth_grant_t *g,
                              char *family, long long *id);
/* Revoke the family of a refresh token; when client_id is not NULL only if the token belongs
 * to it. ANTAR_OK also when the token is unknown (RFC 7009). */
antar_err_t oauth_refresh_revoke(const char *token, const char *client_id);
/* Look a refresh token up for introspection. ANTAR_E_NOT_FOUND when not active. */
antar_err_t oauth_refresh_lookup(const char *token, oauth_grant_t *g);
/* Put an access token's jti on the Redis revocation list until exp. */
antar_err_t oauth_revoke_jti(const char *jti, long long exp);

/* Insert or update the oauth_clients row of a client (a record for operators: clients[] in
 * oauth_grants.c authenticates). secret_hash_hex / redirect_uris NULL store NULL. */
antar_err_t oauth_client_save(const char *id, bool confidential, const char *role,
                              const char *scope, const char *secret_hash_hex,
                              const char *redirect_uris);

/* One-time authorization codes in Redis (GETDEL). */
antar_err_t oauth_code_store(const char *code, json_t *data);
/* On ANTAR_OK *data is a new object; ANTAR_E_NOT_FOUND when unknown, used or expired. */
antar_err_t oauth_code_take(const char *code, json_t **data);

/* Login throttling: ANTAR_OK when username and ip may try now, else ANTAR_E_TOO_MANY_REQUESTS
 * with *retry_after set. */
antar_err_t oauth_throttle_check(const char *username, const char *ip, long *retry_after);
void oauth_throttle_fail(const char *username, const char *ip);
void oauth_throttle_success(const char *username, const char *ip);

/* ---- oauth_parse.c: what clients send ------------------------------------------------ */
/* The cookie that carries the login form's nonce. */
#define OAUTH_LOGIN_COOKIE "antar_login"

/* The login form of a request's raw body (antar_form_decode: at most 24 pairs, values up to
 * 4096 bytes, no NUL) as a JSON object of strings; NULL when refused. New reference. */
json_t *oauth_form_params(antar_req_t *req);
/* The parameters of a RAW OAuth request by its content type (ct may be NULL) as a JSON object
 * of strings. RFC 6749 §3.2: a parameter sent twice is an error; so is a non-empty body of a
 * type other than form or JSON, more than 16 parameters or a value over 4096 bytes (a form
 * through antar_form_decode). NULL for any of those. New reference. */
json_t *oauth_params_parse(const char *ct, const char *body, size_t len);
/* Client id and secret from the value of an "Authorization: Basic" header after "Basic "
 * (RFC 6749 §2.3.1: each form-encoded, joined by ':', base64). false when malformed, when a part
 * does not fit (idlen/seclen include the NUL) or the id is empty; id and sec are "" then. */
bool oauth_basic_credentials(const char *value, char *id, size_t idlen, char *sec, size_t seclen);
/* The login nonce from a Cookie header value (may be NULL): 32 hex chars, or "" when absent. */
void oauth_cookie_nonce(const char *cookie, char out[33]);

/* ---- oauth_issue.c ---------------------------------------------------------------------- */
/* antar-core --issue-refresh-tokens (main.c registers it; the help text is there). */
int oauth_issue_command(int argc, char **argv);

/* ---- oauth_authorize.c ------------------------------------------------------------------ */
void oauth_authorize_get(antar_req_t *req);
void oauth_authorize_post(antar_req_t *req);

#endif
