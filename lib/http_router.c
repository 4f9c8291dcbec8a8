/* http_router.c — method + path pattern matching with {name} segments. */
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

/* Next segment of a path or pattern that starts at *p (just after a '/'); sets len. Returns
 * the start, and advances *p past the segment and its trailing '/' if any. */
static const char *next_seg(const char **p, size_t *len, bool *more)
{
    const char *s = *p;
    const char *slash = strchr(s, '/');
    *len = slash ? (size_t)(slash - s) : strlen(s);
    *more = slash != NULL;
    *p = slash ? slash + 1 : s + *len;
    return s;
}

static bool is_param(const char *seg, size_t len)
{
    return len >= 3 && seg[0] == '{' && seg[len - 1] == '}';
}

bool antar_router_pattern_ok(const char *pattern)
{
    if (!pattern || pattern[0] != '/')
        return false;
    const char *p = pattern + 1;
    bool more = true;
    size_t nparams = 0;
    while (more) {
        size_t len;
        const char *seg = next_seg(&p, &len, &more);
        const char *open = memchr(seg, '{', len), *close = memchr(seg, '}', len);
        if ((open || close) && !is_param(seg, len))
            return false;
        if (is_param(seg, len)) {
            if (memchr(seg + 1, '{', len - 2) || memchr(seg + 1, '}', len - 2))
                return false;
            if (++nparams > ANTAR_MAX_PARAMS)
                return false;
        }
        /* An empty segment is only allowed for the root pattern "/". */
        if (len == 0 && !(pattern[1] == '\0'))
            return false;
    }
    return true;
}

/* Does path match pattern? Fills the params of m on success and counts literal segments. */
static bool match_one(const char *pattern, const char *path, antar_match_t *m, int *literals)
{
    const char *pp = pattern + 1, *sp = path + 1;
    bool pmore = true, smore = true;
    size_t np = 0;
    *literals = 0;
    if (pattern[0] != '/' || path[0] != '/')
        return false;
    while (pmore && smore) {
        size_t plen, slen;
        const char *pseg = next_seg(&pp, &plen, &pmore);
        const char *sseg = next_seg(&sp, &slen, &smore);
        if (is_param(pseg, plen)) {
            if (slen == 0 || np >= ANTAR_MAX_PARAMS)
                return false;
            m->name[np] = pseg + 1;
            m->name_len[np] = plen - 2;
            m->value[np] = sseg;
            m->value_len[np] = slen;
            np++;
        } else {
            if (plen != slen || memcmp(pseg, sseg, plen) != 0)
                return false;
            (*literals)++;
        }
    }
    if (pmore != smore)
        return false;
    m->nparams = np;
    return true;
}

void antar_router_match(const antar_route_t *const *routes, size_t n, const char *method,
                        const char *path, antar_match_t *m)
{
    memset(m, 0, sizeof(*m));
    m->kind = ANTAR_MATCH_NOT_FOUND;
    if (!path || path[0] != '/')
        return;
    int best = -1;
    antar_match_t tmp;
    size_t allow_len = 0;
    for (size_t i = 0; i < n; i++) {
        int lit;
        memset(&tmp, 0, sizeof(tmp));
        if (!match_one(routes[i]->pattern, path, &tmp, &lit))
            continue;
        if (strcmp(routes[i]->method, method) == 0) {
            if (lit > best) {
                best = lit;
                tmp.kind = ANTAR_MATCH_OK;
                tmp.route = routes[i];
                /* keep the allow list gathered so far */
                memcpy(tmp.allow, m->allow, sizeof(tmp.allow));
                *m = tmp;
            }
        } else if (best < 0) {
            m->kind = ANTAR_MATCH_BAD_METHOD;
        }
        /* Collect every method the path accepts, once each, for the Allow header. */
        const char *meth = routes[i]->method;
        size_t ml = strlen(meth);
        bool dup = false;
        for (const char *q = m->allow; (q = strstr(q, meth)) != NULL; q += ml)
            if ((q == m->allow || q[-1] == ' ') && (q[ml] == ',' || q[ml] == '\0'))
                dup = true;
        if (!dup && allow_len + ml + 3 < sizeof(m->allow)) {
            if (allow_len)
                allow_len +=
                    (size_t)snprintf(m->allow + allow_len, sizeof(m->allow) - allow_len, ", ");
            allow_len +=
                (size_t)snprintf(m->allow + allow_len, sizeof(m->allow) - allow_len, "%s", meth);
        }
    }
}
