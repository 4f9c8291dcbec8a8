/* oauth_parse.c — the parsers of what an OAuth client sends: form and JSON parameters, HTTP
 * Basic client credentials, redirect URIs and the login cookie. No I/O, so the fuzzer
 * (tests/fuzz/fuzz_oauth.c) and the unit tests drive them directly. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "oauth.h"

#define PARAM_MAX 4096
#define PARAMS_MAX 16
#define LOGIN_PARAMS_MAX 24

/* RFC 6749's endpoints decode with the toolkit's strict form decoder (lib/http_body.c), with
 * the limits of a parameter set: a NUL is refused at once (nothing downstream checks these
 * values the way antar_req_fields does). */
static const antar_form_limits_t oauth_limits = {
    .max_pairs = PARAMS_MAX, .max_value = PARAM_MAX, .refuse_nul = true};
/* The login page's form carries the authorization request along with the credentials. */
static const antar_form_limits_t login_limits = {
    .max_pairs = LOGIN_PARAMS_MAX, .max_value = PARAM_MAX, .refuse_nul = true};

static json_t *form_parse(const char *body, size_t len, const antar_form_limits_t *lim)
{
    char msg[160], field[64];
    json_t *out = NULL;
    return antar_form_decode(body, len, lim, &out, msg, sizeof msg, field, sizeof field) == ANTAR_OK
               ? out
               : NULL;
}

json_t *oauth_form_params(antar_req_t *req)
{
    size_t len = 0;
    const char *body = antar_req_raw_body(req, &len);
    return form_parse(body, len, &login_limits);
}

json_t *oauth_params_parse(const char *ct, const char *body, size_t len)
{
    json_t *out = json_object();
    if (!out)
        return NULL;
    if (ct && !strncasecmp(ct, "application/json", 16)) {
        /* A key given twice is a parameter sent twice, as in a form (jansson keeps the last). */
        json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        const char *k;
        json_t *v;
        if (!json_is_object(doc) || json_object_size(doc) > PARAMS_MAX) {
            json_decref(doc);
            goto bad;
        }
        json_object_foreach(doc, k, v)
        {
            if (!json_is_string(v) || strlen(json_string_value(v)) > PARAM_MAX) {
                json_decref(doc);
                goto bad;
            }
            json_object_set(out, k, v);
        }
        json_decref(doc);
        return out;
    }
    if (len > 0 && (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33)))
        goto bad;
    json_decref(out);
    return form_parse(body, len, &oauth_limits);
bad:
    json_decref(out);
    return NULL;
}

bool oauth_basic_credentials(const char *b, char *id, size_t idlen, char *sec, size_t seclen)
{
    unsigned char raw[400];
    size_t n = 0;
    if (idlen)
        id[0] = '\0';
    if (seclen)
        sec[0] = '\0';
    while (*b == ' ')
        b++;
    /* Only the alphabet, then padding: libsodium 1.0.18 would read any byte 0x80-0xff as '/'. */
    size_t k = strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    if (strspn(b + k, "=") != strlen(b + k))
        return false;
    if (strlen(b) > 512 || sodium_base642bin(raw, sizeof raw - 1, b, strlen(b), NULL, &n, NULL,
                                             sodium_base64_VARIANT_ORIGINAL) != 0)
        return false;
    raw[n] = '\0';
    char *colon = memchr(raw, ':', n);
    if (!colon || memchr(raw, '\0', n)) {
        sodium_memzero(raw, sizeof raw);
        return false;
    }
    /* Decoding never grows a component: raw's size bounds both. */
    char di[sizeof raw], ds[sizeof raw];
    long il = antar_form_unescape((char *)raw, (size_t)(colon - (char *)raw), di, true);
    long sl = antar_form_unescape(colon + 1, n - (size_t)(colon + 1 - (char *)raw), ds, true);
    if (il >= 0 && sl >= 0 && (size_t)il < idlen && (size_t)sl < seclen) {
        snprintf(id, idlen, "%s", di);
        snprintf(sec, seclen, "%s", ds);
    }
    sodium_memzero(ds, sizeof ds);
    sodium_memzero(raw, sizeof raw);
    if (idlen && *id)
        return true;
    if (seclen)
        sodium_memzero(sec, seclen);
    return false;
}

bool oauth_redirect_uri_ok(const char *uri)
{
    static const char loop[] = "http://127.0.0.1:";
    if (!uri)
        return false;
    if (!strcmp(uri, "antar://callback"))
        return true;
    /* RFC 8252 §7.3: any port on the loopback address, fixed path. */
    if (strncmp(uri, loop, sizeof loop - 1))
        return false;
    const char *p = uri + sizeof loop - 1;
    long port = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p) && digits < 6) {
        port = port * 10 + (*p++ - '0');
        digits++;
    }
    return digits > 0 && digits <= 5 && port >= 1 && port <= 65535 && uri[sizeof loop - 1] != '0' &&
           !strcmp(p, "/callback");
}

bool oauth_redirect_uri_ok_for(const oauth_client_t *c, const char *uri, const char *origins)
{
    if (!c || !uri)
        return false;
    if (!c->browser)
        return oauth_redirect_uri_ok(uri);
    static const char path[] = "/console/";
    size_t ul = strlen(uri), pl = sizeof path - 1;
    if (ul <= pl || strcmp(uri + ul - pl, path))
        return false;
    size_t ol = ul - pl; /* the origin part of uri */
    /* Exact match of the origin against each registered one: no prefix, no pattern. */
    for (const char *o = origins; o && *o;) {
        while (*o == ' ')
            o++;
        size_t n = strcspn(o, " ");
        if (n > 0 && n <= 200 && n == ol && !strncmp(o, uri, n) &&
            (!strncmp(o, "http://", 7) || !strncmp(o, "https://", 8)))
            return true;
        o += n;
    }
    return false;
}

bool oauth_operator_listed(const char *username, const char *operators)
{
    size_t ul = username ? strlen(username) : 0;
    if (ul == 0 || ul > 254 || !strchr(username, '@'))
        return false;
    for (const char *o = operators; o && *o;) {
        while (*o == ',' || *o == ' ')
            o++;
        size_t n = strcspn(o, ", ");
        if (n == ul && !strncasecmp(o, username, n))
            return true;
        o += n;
    }
    return false;
}

void oauth_cookie_nonce(const char *c, char out[33])
{
    out[0] = '\0';
    for (const char *p = c; p && (p = strstr(p, OAUTH_LOGIN_COOKIE "=")); p++) {
        if (p != c && p[-1] != ' ' && p[-1] != ';')
            continue;
        p += sizeof OAUTH_LOGIN_COOKIE;
        size_t n = strspn(p, "0123456789abcdef");
        if (n == 32) {
            memcpy(out, p, 32);
            out[32] = '\0';
        }
        return;
    }
}
