/* http_page.c — the house paging arguments of list routes (?limit, ?cursor) and the opaque
 * cursors behind them.
 *
 * A cursor is base64url (no padding) of "<tag>:<v0>:<v1>…": the tag names the list it belongs
 * to, so that a cursor of one list is refused by another instead of paging it from a wrong
 * place. Cursors are not signed: they only say where to continue, and every value a client
 * could forge is one it could also reach by paging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "antar/util.h"
#include "http_internal.h"

#define RAW_MAX 160

void antar_cursor_encode(const char *tag, const long long *vals, size_t n,
                         char out[ANTAR_CURSOR_MAX])
{
    char raw[RAW_MAX];
    size_t len = (size_t)snprintf(raw, sizeof raw, "%s", tag);
    for (size_t i = 0; i < n && i < ANTAR_CURSOR_VALS && len < sizeof raw; i++)
        len += (size_t)snprintf(raw + len, sizeof raw - len, ":%lld", vals[i]);
    if (len >= sizeof raw)
        len = sizeof raw - 1;
    sodium_bin2base64(out, ANTAR_CURSOR_MAX, (const unsigned char *)raw, len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Exactly n non-negative decimal values after "<tag>:", nothing else. */
bool antar_cursor_decode(const char *s, const char *tag, long long *vals, size_t n)
{
    unsigned char raw[RAW_MAX];
    size_t len = 0, slen = strlen(s), tl = strlen(tag);
    if (n > ANTAR_CURSOR_VALS || slen == 0 || slen >= ANTAR_CURSOR_MAX ||
        antar_b64url_decode(s, slen, raw, sizeof raw - 1, &len) != 0)
        return false;
    raw[len] = '\0';
    if (len <= tl || memcmp(raw, tag, tl) != 0)
        return false;
    const char *p = (const char *)raw + tl;
    for (size_t i = 0; i < n; i++) {
        if (*p != ':' || p[1] < '0' || p[1] > '9')
            return false;
        char *end = NULL;
        long long v = strtoll(p + 1, &end, 10);
        /* strtoll saturates on overflow; 2^62 is far beyond any id or Redis cursor we hand out. */
        if (v < 0 || v > (1LL << 62) || (end - (p + 1) > 1 && p[1] == '0'))
            return false;
        vals[i] = v;
        p = end;
    }
    /* The end of the decoded bytes, not a NUL among them: "<tag>:5\0junk" is not a cursor. */
    return p == (const char *)raw + len;
}

bool antar_page_limit_parse(const char *s, int def, int max, int *out)
{
    if (!s) {
        *out = def;
        return true;
    }
    char *end = NULL;
    long long lim = strtoll(s, &end, 10);
    if (!*s || *s < '0' || *s > '9' || !end || *end || lim < 1 || lim > max)
        return false;
    *out = (int)lim;
    return true;
}

antar_err_t antar_req_page(antar_req_t *req, int def, int max, const char *tag, long long *vals,
                           size_t n, int *limit)
{
    const char *c = antar_req_query(req, "cursor");
    long long tmp[ANTAR_CURSOR_VALS] = {0};
    int lim = def;
    if (!antar_page_limit_parse(antar_req_query(req, "limit"), def, max, &lim)) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "limit",
                        "limit must be an integer from 1 to %d", max);
        return ANTAR_E_INVALID_FIELD;
    }
    if (n > ANTAR_CURSOR_VALS || (c && !antar_cursor_decode(c, tag, tmp, n))) {
        antar_http_fail(req, ANTAR_E_INVALID_FIELD, "cursor", "%s",
                        "cursor is not one this service gave out");
        return ANTAR_E_INVALID_FIELD;
    }
    for (size_t i = 0; i < n; i++)
        vals[i] = tmp[i];
    *limit = lim;
    return ANTAR_OK;
}

void antar_http_reply_page(antar_req_t *req, json_t *items, const char *next_cursor)
{
    antar_http_reply(req, 200,
                     json_pack("{s:o, s:s?}", "items", items ? items : json_array(), "next_cursor",
                               next_cursor));
}
