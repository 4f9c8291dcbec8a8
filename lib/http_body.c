/* http_body.c — turning a request body into the JSON object handlers see.
 *
 * JSON and form bodies must mean the same thing (DESIGN.md), so both end up as one json_t
 * object; form values stay strings and antar_req_fields parses them strictly. The form decoder
 * is our own rather than MHD's post processor because the post processor silently accepts
 * repeated keys and malformed escapes, and we want both to be a clear 400. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "antar/util.h"
#include "http_internal.h"

bool antar_text_ok(const char *s, size_t len, bool allow_newlines)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned cp;
        size_t n = antar_utf8_decode(p, end, &cp);
        if (n == 0)
            return false;
        /* C0 controls (bar newlines where allowed), DEL and the C1 controls. */
        if ((cp < 0x20 && !(allow_newlines && (cp == '\n' || cp == '\r' || cp == '\t'))) ||
            (cp >= 0x7f && cp <= 0x9f))
            return false;
        p += n;
    }
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long antar_form_unescape(const char *s, size_t len, char *out, bool refuse_nul)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[j++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = s[i];
        }
        /* A NUL would cut the value short where the client did not. */
        if (refuse_nul && out[j - 1] == '\0')
            return -1;
    }
    out[j] = '\0';
    return (long)j;
}

antar_err_t antar_form_decode(const char *buf, size_t len, const antar_form_limits_t *lim,
                              json_t **out, char *msg, size_t msglen, char *field, size_t fieldlen)
{
    static const antar_form_limits_t none = {0};
    antar_err_t err = ANTAR_OK;
    json_t *obj = json_object();
    char *key = malloc(len + 1), *val = malloc(len + 1);
    msg[0] = field[0] = '\0';
    if (!lim)
        lim = &none;
    if (!obj || !key || !val) {
        err = ANTAR_E_NOMEM;
        goto fail;
    }
    size_t pos = 0;
    while (pos < len) {
        const char *pair = buf + pos;
        const char *amp = memchr(pair, '&', len - pos);
        size_t plen = amp ? (size_t)(amp - pair) : len - pos;
        pos += plen + 1;
        if (plen == 0)
            continue; /* "a=1&&b=2" or a trailing '&': nothing to decode */
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq ? (size_t)(eq - pair) : plen;
        long kl = antar_form_unescape(pair, klen, key, false);
        long vl = eq ? antar_form_unescape(eq + 1, plen - klen - 1, val, false) : 0;
        if (kl < 0 || vl < 0) {
            err = ANTAR_E_BAD_REQUEST;
            snprintf(msg, msglen, "the form body has a malformed %%-escape");
            goto fail;
        }
        key[kl] = '\0';
        if (kl == 0 || !antar_text_ok(key, (size_t)kl, false) || kl > 128) {
            err = ANTAR_E_BAD_REQUEST;
            snprintf(msg, msglen, "the form body has an empty or invalid field name");
            goto fail;
        }
        if (json_object_get(obj, key)) {
            err = ANTAR_E_BAD_REQUEST;
            snprintf(field, fieldlen, "%s", key);
            snprintf(msg, msglen, "%s is given more than once", key);
            goto fail;
        }
        if (lim->max_pairs && json_object_size(obj) >= lim->max_pairs) {
            err = ANTAR_E_TOO_LARGE;
            snprintf(msg, msglen, "the form body has more than %zu fields", lim->max_pairs);
            goto fail;
        }
        if (lim->max_value && (size_t)vl > lim->max_value) {
            err = ANTAR_E_INVALID_FIELD;
            snprintf(field, fieldlen, "%s", key);
            snprintf(msg, msglen, "%s is longer than %zu bytes", key, lim->max_value);
            goto fail;
        }
        if (lim->refuse_nul && memchr(val, '\0', (size_t)vl)) {
            err = ANTAR_E_INVALID_FIELD;
            snprintf(field, fieldlen, "%s", key);
            snprintf(msg, msglen, "%s has a NUL byte", key);
            goto fail;
        }
        /* json_stringn refuses invalid UTF-8; other control characters (NUL too, unless
         * refused above) are kept here and rejected by antar_req_fields, which names the
         * field. */
        json_t *v = json_stringn(val, (size_t)vl);
        if (!v) {
            err = ANTAR_E_INVALID_FIELD;
            snprintf(field, fieldlen, "%s", key);
            snprintf(msg, msglen, "%s is not valid UTF-8", key);
            goto fail;
        }
        json_object_set_new(obj, key, v);
    }
    /* Values may be secrets (passwords, client secrets): leave no copy in freed memory. */
    explicit_bzero(val, len + 1);
    free(key);
    free(val);
    *out = obj;
    return ANTAR_OK;
fail:
    if (!msg[0])
        snprintf(msg, msglen, "%s", antar_err_message(err));
    if (val)
        explicit_bzero(val, len + 1);
    free(key);
    free(val);
    json_decref(obj);
    return err;
}

/* Compares the media type of a Content-Type value (before any ';', trimmed, any case). */
static bool media_is(const char *ct, const char *type)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen(type);
    if (strncasecmp(ct, type, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* A charset parameter, when present, must be UTF-8: we never transcode. */
static bool charset_ok(const char *ct)
{
    const char *p = strcasestr(ct, "charset=");
    if (!p)
        return true;
    p += 8;
    if (*p == '"')
        p++;
    return strncasecmp(p, "utf-8", 5) == 0 &&
           (p[5] == '\0' || p[5] == '"' || p[5] == ';' || p[5] == ' ');
}

antar_err_t antar_body_parse(const char *content_type, const char *buf, size_t len, json_t **out,
                             bool *is_form, char *msg, size_t msglen, char *field, size_t fieldlen)
{
    msg[0] = field[0] = '\0';
    *out = NULL;
    *is_form = false;
    if (len == 0) {
        /* An empty write is an empty object: the handler's field checks report what is missing,
         * which is more useful to a client than a 415 about a body it did not send. */
        if (content_type && media_is(content_type, "application/x-www-form-urlencoded"))
            *is_form = true;
        *out = json_object();
        return *out ? ANTAR_OK : ANTAR_E_NOMEM;
    }
    if (!content_type || !charset_ok(content_type)) {
        snprintf(msg, msglen, "%s", antar_err_message(ANTAR_E_UNSUPPORTED_MEDIA_TYPE));
        return ANTAR_E_UNSUPPORTED_MEDIA_TYPE;
    }
    if (media_is(content_type, "application/json")) {
        json_error_t jerr;
        json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (!v) {
            snprintf(msg, msglen, "the body is not valid JSON: %s (at byte %d)", jerr.text,
                     jerr.position);
            return ANTAR_E_MALFORMED_JSON;
        }
        if (!json_is_object(v)) {
            json_decref(v);
            snprintf(msg, msglen, "the body must be a JSON object");
            return ANTAR_E_BAD_REQUEST;
        }
        *out = v;
        return ANTAR_OK;
    }
    if (media_is(content_type, "application/x-www-form-urlencoded")) {
        *is_form = true;
        return antar_form_decode(buf, len, NULL, out, msg, msglen, field, fieldlen);
    }
    snprintf(msg, msglen, "%s", antar_err_message(ANTAR_E_UNSUPPORTED_MEDIA_TYPE));
    return ANTAR_E_UNSUPPORTED_MEDIA_TYPE;
}
