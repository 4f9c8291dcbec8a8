/* The authorization endpoint: a minimal login page for the authorization-code flow with PKCE
 * (RFC 6749 §4.1, RFC 7636, RFC 8252 for native apps).
 *
 * Rules that matter for security:
 * - client_id and redirect_uri are checked before anything else; when either is wrong the user
 *   sees a 400 page and is never redirected (an open redirector would leak codes).
 * - Only S256 challenges are accepted (plain would let an intercepted code be redeemed).
 * - The login form resists login CSRF: a random nonce in a SameSite=Strict, HttpOnly cookie and
 *   a form token that is an HMAC over that nonce (the CSRF token scheme of lib/auth); a form
 *   posted from another site has neither.
 * - Every reflected value is HTML-escaped; the page forbids framing and scripts.
 * - Codes are random 256-bit values, kept in Redis only as hashes, bound to client,
 *   redirect_uri and challenge, valid 60 s, and deleted on first use (GETDEL).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <sodium.h>

#include "antar/auth.h"
#include "antar/config.h"
#include "antar/log.h"
#include "oauth.h"

#define FORM_TTL_S 900

typedef struct {
    const char *client_id, *redirect_uri, *response_type, *code_challenge, *method, *state, *scope;
    const oauth_client_t *client;
    /* A parameter sent more than once (RFC 6749 §3.1: "MUST NOT be included more than once"):
     * the client and redirect URI ones are answered with a page, the others by redirect. */
    bool repeated_client, repeated_other;
} authz_t;

static void html_put(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void page_headers(antar_req_t *req)
{
    antar_http_add_header(req, "Cache-Control", "no-store");
    antar_http_add_header(req, "X-Frame-Options", "DENY");
    antar_http_add_header(req, "X-Content-Type-Options", "nosniff");
    antar_http_add_header(req, "Referrer-Policy", "no-referrer");
    antar_http_add_header(req, "Content-Security-Policy",
                          "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
}

static void page_send(antar_req_t *req, int status, char *html, size_t len)
{
    page_headers(req);
    antar_http_reply_raw(req, status, "text/html; charset=utf-8", html, len);
    free(html);
}

static void error_page(antar_req_t *req, int status, const char *msg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        antar_http_reply_raw(req, 500, "text/plain", "error", 5);
        return;
    }
    fputs("<!doctype html><html><head><meta charset=\"utf-8\"><title>Antar sign-in</title>"
          "</head><body><h1>Cannot sign in</h1><p>",
          f);
    html_put(f, msg);
    fputs("</p></body></html>", f);
    fclose(f);
    page_send(req, status, buf, len);
}

static void escape_append(FILE *f, const char *name, const char *value, int *first)
{
    char *e = curl_easy_escape(NULL, value, 0);
    fprintf(f, "%c%s=%s", *first ? '?' : '&', name, e ? e : "");
    *first = 0;
    curl_free(e);
}

/* Back to the (registered) redirect URI with error or code, the unchanged state and iss
 * (RFC 9207, mix-up defence). */
static void redirect_back(antar_req_t *req, const authz_t *a, const char *code, const char *error)
{
    char *buf = NULL;
    size_t len = 0;
    int first = 1;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        error_page(req, 500, "internal error");
        return;
    }
    fputs(a->redirect_uri, f);
    if (code)
        escape_append(f, "code", code, &first);
    if (error)
        escape_append(f, "error", error, &first);
    if (a->state)
        escape_append(f, "state", a->state, &first);
    escape_append(f, "iss", antar_config()->issuer, &first);
    fclose(f);
    antar_http_add_header(req, "Cache-Control", "no-store");
    antar_http_redirect(req, code ? 303 : 302, buf);
    free(buf);
}

static bool b64url_len(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return false;
    return true;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* Checks every authorization parameter. Returns 0 when the request may go on; otherwise the
 * reply (400 page, or an error redirect once the redirect URI is known to be registered) is
 * sent and -1 returned. */
static int authz_check(antar_req_t *req, authz_t *a)
{
    if (a->repeated_client) {
        /* Which client or which redirect URI is meant cannot be known: never redirect. */
        error_page(req, 400, "invalid_request: client_id or redirect_uri is repeated.");
        return -1;
    }
    a->client = oauth_client_find(a->client_id);
    if (!a->client || a->client->confidential) {
        error_page(req, 400, "Unknown client_id.");
        return -1;
    }
    if (!a->redirect_uri || strlen(a->redirect_uri) > 256 ||
        !oauth_redirect_uri_ok_for(a->client, a->redirect_uri, oauth_console_origins())) {
        error_page(req, 400, "The redirect_uri is missing or not registered for this client.");
        return -1;
    }
    if (a->state && strlen(a->state) > 512) {
        error_page(req, 400, "state is too long.");
        return -1;
    }
    /* RFC 6749 §4.1.2.1: a missing or repeated parameter is invalid_request; only a
     * response_type that is present but not "code" is unsupported_response_type. */
    if (!a->response_type || a->repeated_other) {
        redirect_back(req, a, NULL, "invalid_request");
        return -1;
    }
    if (strcmp(a->response_type, "code")) {
        redirect_back(req, a, NULL, "unsupported_response_type");
        return -1;
    }
    if (!b64url_len(a->code_challenge, 43) || !a->method || strcmp(a->method, "S256")) {
        redirect_back(req, a, NULL, "invalid_request");
        return -1;
    }
    if (a->scope && strcmp(a->scope, a->client->scope)) {
        redirect_back(req, a, NULL, "invalid_scope");
        return -1;
    }
    return 0;
}

static void hidden(FILE *f, const char *name, const char *value)
{
    if (!value)
        return;
    fprintf(f, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    html_put(f, value);
    fputs("\">", f);
}

static void login_form(antar_req_t *req, const authz_t *a, const char *nonce, const char *username,
                       const char *message, int status)
{
    char sub[64], form_token[128], cookie[160];
    char *buf = NULL;
    size_t len = 0;
    snprintf(sub, sizeof sub, "login:%s", nonce);
    if (antar_csrf_issue(sub, FORM_TTL_S, form_token, sizeof form_token, NULL) != 0) {
        error_page(req, 500, "internal error");
        return;
    }
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        error_page(req, 500, "internal error");
        return;
    }
    fputs("<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
          "content=\"width=device-width\"><title>Antar sign-in</title><style>body{font-family:"
          "sans-serif;max-width:22em;margin:3em auto}input{display:block;width:100%;margin:.4em "
          "0;padding:.4em}</style></head><body><h1>Sign in to Antar</h1>",
          f);
    fputs(a->client->operator_client           ? "<p>Operator (a listed customer account)</p>"
          : a->client->role == ANTAR_AUTH_USER ? "<p>Customer account</p>"
                                               : "<p>Driver account</p>",
          f);
    if (message) {
        fputs("<p role=\"alert\">", f);
        html_put(f, message);
        fputs("</p>", f);
    }
    fputs("<form method=\"post\" action=\"/oauth/authorize\">", f);
    hidden(f, "response_type", a->response_type);
    hidden(f, "client_id", a->client_id);
    hidden(f, "redirect_uri", a->redirect_uri);
    hidden(f, "code_challenge", a->code_challenge);
    hidden(f, "code_challenge_method", a->method);
    hidden(f, "state", a->state);
    hidden(f, "scope", a->scope);
    hidden(f, "form_token", form_token);
    fputs("<label>Email or phone<input name=\"username\" autocomplete=\"username\" required "
          "maxlength=\"254\" value=\"",
          f);
    html_put(f, username ? username : "");
    fputs("\"></label><label>Password<input name=\"password\" type=\"password\" "
          "autocomplete=\"current-password\" required maxlength=\"128\"></label>"
          "<input type=\"submit\" value=\"Sign in\"></form></body></html>",
          f);
    fclose(f);
    snprintf(cookie, sizeof cookie,
             OAUTH_LOGIN_COOKIE "=%s; Path=/oauth/authorize; HttpOnly; SameSite=Strict; Max-Age=%d",
             nonce, FORM_TTL_S);
    antar_http_add_header(req, "Set-Cookie", cookie);
    page_send(req, status, buf, len);
}

void oauth_authorize_get(antar_req_t *req)
{
    authz_t a = {
        .client_id = nonempty(antar_req_query(req, "client_id")),
        .redirect_uri = nonempty(antar_req_query(req, "redirect_uri")),
        .response_type = nonempty(antar_req_query(req, "response_type")),
        .code_challenge = nonempty(antar_req_query(req, "code_challenge")),
        .method = nonempty(antar_req_query(req, "code_challenge_method")),
        .state = nonempty(antar_req_query(req, "state")),
        .scope = nonempty(antar_req_query(req, "scope")),
        .repeated_client = antar_req_query_count(req, "client_id") > 1 ||
                           antar_req_query_count(req, "redirect_uri") > 1,
        .repeated_other = antar_req_query_count(req, "response_type") > 1 ||
                          antar_req_query_count(req, "code_challenge") > 1 ||
                          antar_req_query_count(req, "code_challenge_method") > 1 ||
                          antar_req_query_count(req, "state") > 1 ||
                          antar_req_query_count(req, "scope") > 1,
    };
    if (authz_check(req, &a) != 0)
        return;
    unsigned char raw[16];
    char nonce[33];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(nonce, sizeof nonce, raw, sizeof raw);
    login_form(req, &a, nonce, NULL, NULL, 200);
}

void oauth_authorize_post(antar_req_t *req)
{
    json_t *p = oauth_form_params(req);
    if (!p) {
        error_page(req, 400, "The form is malformed.");
        return;
    }
#define F(name) nonempty(json_string_value(json_object_get(p, name)))
    authz_t a = {
        .client_id = F("client_id"),
        .redirect_uri = F("redirect_uri"),
        .response_type = F("response_type"),
        .code_challenge = F("code_challenge"),
        .method = F("code_challenge_method"),
        .state = F("state"),
        .scope = F("scope"),
    };
    const char *user = F("username"), *pass = F("password"), *form_token = F("form_token");
#undef F
    char nonce[33], sub[64], code[64];
    long wait = 0;
    json_t *data = NULL;
    if (authz_check(req, &a) != 0)
        goto out;
    oauth_cookie_nonce(antar_req_header(req, "Cookie"), nonce);
    snprintf(sub, sizeof sub, "login:%s", nonce);
    if (!nonce[0] || !form_token || antar_csrf_verify(sub, form_token) != ANTAR_OK) {
        error_page(req, 403,
                   "This sign-in form has expired or was not sent by this site. "
                   "Go back to the app and start again.");
        goto out;
    }
    if (!user || !pass || strlen(user) > 254 || strlen(pass) > 1024) {
        login_form(req, &a, nonce, user && strlen(user) <= 254 ? user : NULL,
                   "Enter your email or phone and your password.", 400);
        goto out;
    }
    const char *ip = antar_req_client_ip(req);
    antar_err_t terr = oauth_throttle_check(user, ip, &wait);
    if (terr == ANTAR_E_KV) {
        antar_http_add_header(req, "Retry-After", "5");
        error_page(req, 503, "Sign-in is unavailable right now. Try again shortly.");
        goto out;
    }
    if (terr != ANTAR_OK) {
        char v[32];
        snprintf(v, sizeof v, "%ld", wait);
        antar_http_add_header(req, "Retry-After", v);
        error_page(req, 429, "Too many failed sign-in attempts. Try again later.");
        goto out;
    }
    antar_err_t err = oauth_check_password(a.client, user, pass, sub);
    if (err == ANTAR_E_UNAUTHORIZED) {
        oauth_throttle_fail(user, ip);
        login_form(req, &a, nonce, user, "Wrong email/phone or password.", 401);
        goto out;
    }
    if (err != ANTAR_OK) {
        error_page(req, 503, "Sign-in is unavailable right now. Try again shortly.");
        goto out;
    }
    oauth_throttle_success(user, ip);
    oauth_random_token(code);
    data = json_pack("{s:s,s:s,s:s,s:s}", "client_id", a.client->id, "redirect_uri", a.redirect_uri,
                     "code_challenge", a.code_challenge, "sub", sub);
    if (!data || oauth_code_store(code, data) != ANTAR_OK) {
        error_page(req, 503, "Sign-in is unavailable right now. Try again shortly.");
        goto out;
    }
    redirect_back(req, &a, code, NULL);
out:
    json_decref(data);
    json_decref(p);
}
