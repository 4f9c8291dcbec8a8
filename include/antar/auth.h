/* antar/auth.h — access-token checks in every service, CSRF tokens, and this service's own
 * service token.
 *
 * Tokens are JWTs signed by core with EdDSA (Ed25519). Every service verifies them locally
 * against core's JWKS (fetched from cfg->core_url/.well-known/jwks.json, cached, refetched on
 * an unknown kid at most once every 5 s), with the algorithm pinned to EdDSA (alg none, HMAC
 * and anything else refused), iss == cfg->issuer, aud containing cfg->audience, exp in the
 * future, and the jti not revoked (Redis key "revoked:jti:<jti>"). Verified claims are cached
 * per token until exp. Redis's "not revoked" answer is reused only while a watcher connection
 * with Redis client-side-caching invalidations (CLIENT TRACKING BCAST on "revoked:jti:") has
 * seen nothing at all change under that prefix (and for at most 5 s); any change, or the loss of
 * that connection, sends the next check to Redis again, so a revocation acknowledged by Redis is
 * seen by the next request (lib/auth_jwt.c explains why). ANTAR_REVOCATION_WATCH=0 turns the
 * reuse off: then every request asks Redis.
 */
#ifndef ANTAR_AUTH_H
#define ANTAR_AUTH_H

#include <stddef.h>

#include "antar/config.h"
#include "antar/error.h"
#include "antar/http.h"

/* Once, before threads start; cfg borrowed. Installs the service-token provider into the HTTP
 * client. 0 or -1 (e.g. ANTAR_CSRF_KEY missing or not 64 hex chars). */
int antar_auth_init(const antar_config_t *cfg);
void antar_auth_cleanup(void);

/* Verify a compact JWT (signature, alg pinned to EdDSA, typ at+jwt, iss, aud, exp, role/sub
 * consistency, jti not revoked); fill out on success. ANTAR_E_INVALID_TOKEN on any failure;
 * ANTAR_E_KV when Redis cannot say whether the token is revoked (fail closed). */
antar_err_t antar_auth_verify(const char *token, antar_principal_t *out);

/* The server's auth hook: Bearer token → principal; role in route->auth (else FORBIDDEN);
 * route->scope present (else FORBIDDEN); for POST/PUT/PATCH/DELETE with a user or driver token
 * and no ANTAR_ROUTE_NO_CSRF, a valid CSRF token for the principal's sub in X-CSRF-Token or the
 * csrf_token body field (else CSRF_INVALID). */
antar_err_t antar_auth_hook(antar_req_t *req, const antar_route_t *route);

/* Install the CSRF HMAC key from 64 hex chars (antar_auth_init does this from
 * cfg->csrf_key_hex; unit tests call it directly). 0, or -1 when hex is not 64 hex chars. */
int antar_csrf_init(const char *key_hex);
/* A CSRF token for sub, valid for ttl_s seconds: base64url(exp || nonce || HMAC). out must hold
 * 128 bytes. 0 or -1. */
int antar_csrf_issue(const char *sub, long ttl_s, char *out, size_t outlen, long long *exp);
/* ANTAR_OK when token was issued for sub and has not expired (constant-time compare). */
antar_err_t antar_csrf_verify(const char *sub, const char *token);

/* Verify signature and claims of a compact JWT at time now (unix seconds) against the
 * installed key set, without the revocation check and without the cache (unit tests,
 * introspection). ANTAR_E_INVALID_TOKEN on any failure; out written only on success. */
antar_err_t antar_auth_verify_at(const char *token, long long now, antar_principal_t *out);

/* Core (the issuer) installs its own public JWKS (a JSON document {"keys": [...]}, copied)
 * instead of fetching it over HTTP; call again after a key rotation. Also used by unit tests.
 * 0, or -1 when the document does not parse. */
int antar_auth_set_local_jwks(const char *jwks_json);

/* Core replaces the HTTP token fetch with a local minter (it is the issuer). */
typedef int (*antar_token_minter_fn)(char *buf, size_t len);
void antar_auth_set_local_minter(antar_token_minter_fn fn);
/* This service's bearer token (client_credentials against core, cached and renewed a minute
 * before exp). 0 and buf filled, or -1. Thread-safe. */
int antar_auth_service_token(char *buf, size_t len);
/* Forget the cached service token (a callee answered 401 invalid_token, e.g. after core lost
 * its key): the next antar_auth_service_token fetches a new one. Thread-safe. */
void antar_auth_service_token_reset(void);

#endif
