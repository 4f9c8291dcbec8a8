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

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

char *oauth_form_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= n || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
                (lo = hexval((unsigned char)s[i + 2])) < 0 || (hi == 0 && lo == 0))
                goto bad;
            *o++ = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '\0') {
            goto bad; /* a raw NUL would cut the value short where the client did not */
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

json_t *oauth_form_parse(const char *body, size_t len)
{
    json_t *out = json_object();
    for (size_t i = 0; out && i < len;) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(body + i, '=', j - i);
            size_t kl = eq ? (size_t)(eq - (body + i)) : j - i;
            char *k = oauth_form_decode(body + i, kl);
            char *v = eq ? oauth_form_decode(eq + 1, (size_t)(body + j - eq - 1)) : strdup("");
            /* jansson refuses invalid UTF-8: such a pair is an error, never silently dropped. */
            int ok = k && v && strlen(v) <= PARAM_MAX && json_object_size(out) < 24 &&
                     !json_object_get(out, k) && json_object_set_new(out, k, json_string(v)) == 0;
            if (v)
                sodium_memzero(v, strlen(v));
            free(k);
            free(v);
            if (!ok) {
                json_decref(out);
                return NULL;
            }
        }
        i = j + 1;
    }
    return out;
}

json_t *oauth_form_params(antar_req_t *req)
{
    size_t len = 0;
    const char *body = antar_req_raw_body(req, &len);
    return oauth_form_parse(body, len);
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
    out = oauth_form_parse(body, len);
    if (!out || json_object_size(out) > PARAMS_MAX)
        goto bad;
    return out;
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
    char *di = oauth_form_decode((char *)raw, (size_t)(colon - (char *)raw));
    char *ds = oauth_form_decode(colon + 1, n - (size_t)(colon + 1 - (char *)raw));
    if (di && ds && strlen(di) < idlen && strlen(ds) < seclen) {
        snprintf(id, idlen, "%s", di);
        snprintf(sec, seclen, "%s", ds);
    }
    if (ds)
        sodium_memzero(ds, strlen(ds));
    free(di);
    free(ds);
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
