/* fuzz_oauth.c — libFuzzer harness for the OAuth request parsers of core-service
 * (services/core/oauth_parse.c): form and JSON parameters of /oauth/token, /oauth/revoke,
 * /oauth/introspect and the login form, HTTP Basic client credentials, redirect URIs and the
 * login cookie.
 *
 * Input layout: byte 0 picks the Content-Type, the rest is used whole as the body, and cut at a
 * NUL as a header value (Authorization: Basic …, Cookie), a redirect URI and a Basic id:secret
 * pair for the round trip.
 *
 * Checked beyond "no crash, no leak, no UB":
 *  - a login form decoded (the toolkit's antar_form_decode with the login page's limits) is
 *    exactly what an independent decoder reads: every non-empty '&'-separated pair is there, key
 *    and value byte for byte ('+' → space, %XX), none dropped, none cut at a NUL; a bad escape,
 *    %00, a NUL byte, invalid UTF-8, an empty, over-long or control-character name, a repeated
 *    key, a value over 4096 bytes or more than 24 pairs is refused;
 *  - the parameters of a request are an object of at most 16 strings of at most 4096 bytes, with
 *    no key given twice (whatever the body type), and a type other than form/JSON is refused;
 *  - Basic credentials: accepted ones are the form-decoded halves of the base64 around the first
 *    ':'; round trip: encoding an id and secret gives them back;
 *  - a redirect URI accepted is antar://callback or http://127.0.0.1:<1..65535>/callback exactly;
 *  - the login nonce is "" or 32 lowercase hex chars following "antar_login=" in the header. */
#include <ctype.h>
#include <stdint.h>
#include <sodium.h>

#include "fuzz_common.h"
#include "oauth.h"

static const char *const content_types[] = {
    "application/x-www-form-urlencoded",
    "application/json",
    NULL,
    "text/plain",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "application/jsonx",
};
#define NTYPES (sizeof(content_types) / sizeof(*content_types))

static int hexv(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The reference component decoder: NULL for a bad escape or a NUL (escaped or not). */
static char *ref_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; out && i < n; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= n || (hi = hexv((unsigned char)s[i + 1])) < 0 ||
                (lo = hexv((unsigned char)s[i + 2])) < 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    if (out && memchr(out, '\0', o)) {
        free(out);
        return NULL;
    }
    if (out)
        out[o] = '\0';
    *outlen = o;
    return out;
}

/* A name the toolkit's decoder takes: 1 to 128 bytes of UTF-8 (jansson's check) with no C0,
 * DEL or C1 control character. */
static bool ref_name_ok(const char *k, size_t n)
{
    json_t *js = n > 0 && n <= 128 ? json_stringn(k, n) : NULL;
    bool ok = js != NULL;
    json_decref(js);
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 0x20 || c == 0x7f ||
            (c == 0xc2 && i + 1 < n && (unsigned char)k[i + 1] >= 0x80 &&
             (unsigned char)k[i + 1] <= 0x9f))
            ok = false;
    }
    return ok;
}

/* What the login form's decoding (antar_form_decode with 24 pairs, 4096-byte values, no NUL)
 * must give for body: a new object, or NULL when it must refuse. */
static json_t *ref_form(const char *body, size_t len)
{
    json_t *out = json_object();
    for (size_t i = 0; out && i < len;) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(body + i, '=', j - i);
            size_t kl = eq ? (size_t)(eq - (body + i)) : j - i, klen = 0, vlen = 0;
            char *k = ref_decode(body + i, kl, &klen);
            char *v = eq ? ref_decode(eq + 1, (size_t)(body + j - eq - 1), &vlen) : strdup("");
            json_t *js = v ? json_stringn(v, vlen) : NULL;
            bool ok = k && v && js && ref_name_ok(k, klen) && vlen <= 4096 &&
                      json_object_size(out) < 24 && !json_object_get(out, k) &&
                      json_object_set(out, k, js) == 0;
            json_decref(js);
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

static void check_form(const char *body, size_t len)
{
    static const antar_form_limits_t login = {
        .max_pairs = 24, .max_value = 4096, .refuse_nul = true};
    char msg[160], field[64];
    json_t *got = NULL, *want = ref_form(body, len);
    if (antar_form_decode(body, len, &login, &got, msg, sizeof msg, field, sizeof field) !=
        ANTAR_OK)
        got = NULL;
    FUZZ_CHECK(!got == !want, "form parser %s what the reference %s", got ? "took" : "refused",
               want ? "takes" : "refuses");
    if (got)
        FUZZ_CHECK(json_equal(got, want), "form parsed differently from the reference");
    json_decref(got);
    json_decref(want);
}

static void check_params(const char *ct, const char *body, size_t len)
{
    json_t *p = oauth_params_parse(ct, body, len);
    if (!p)
        return;
    FUZZ_CHECK(json_is_object(p) && json_object_size(p) <= 16, "%zu parameters",
               json_object_size(p));
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v)
    {
        FUZZ_CHECK(json_is_string(v), "parameter %s is not a string", k);
        FUZZ_CHECK(json_string_length(v) <= 4096 &&
                       strlen(json_string_value(v)) == json_string_length(v),
                   "parameter %s: %zu bytes", k, json_string_length(v));
    }
    bool json = ct && !strncasecmp(ct, "application/json", 16);
    bool form = ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33);
    FUZZ_CHECK(json || form || len == 0, "content type '%s' accepted", ct ? ct : "(none)");
    if (json) {
        json_t *strict = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        FUZZ_CHECK(strict, "a JSON body with a key given twice was accepted");
        json_decref(strict);
    }
    json_decref(p);
}

static void check_basic(const char *value)
{
    char id[128], sec[256];
    if (!oauth_basic_credentials(value, id, sizeof id, sec, sizeof sec)) {
        FUZZ_CHECK(!id[0] && !sec[0], "credentials left behind on failure");
        return;
    }
    FUZZ_CHECK(id[0] && strlen(id) < sizeof id && strlen(sec) < sizeof sec, "id/secret");
    while (*value == ' ')
        value++;
    unsigned char raw[400];
    size_t n = 0;
    FUZZ_CHECK(sodium_base642bin(raw, sizeof raw - 1, value, strlen(value), NULL, &n, NULL,
                                 sodium_base64_VARIANT_ORIGINAL) == 0,
               "accepted a value that is not base64");
    const unsigned char *colon = memchr(raw, ':', n);
    FUZZ_CHECK(colon, "no colon");
    size_t il = 0, sl = 0;
    char *di = ref_decode((const char *)raw, (size_t)(colon - raw), &il);
    char *ds = ref_decode((const char *)colon + 1, n - (size_t)(colon + 1 - raw), &sl);
    FUZZ_CHECK(di && ds && strcmp(di, id) == 0 && strcmp(ds, sec) == 0 && il == strlen(id) &&
                   sl == strlen(sec),
               "credentials differ from the reference");
    free(di);
    free(ds);
}

static size_t form_encode(const char *s, char *out)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t j = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out[j++] = (char)c;
        } else {
            out[j++] = '%';
            out[j++] = hx[c >> 4];
            out[j++] = hx[c & 15];
        }
    }
    out[j] = '\0';
    return j;
}

static void basic_round_trip(const char *s)
{
    /* id = text before the first ':', secret the rest (both free to hold ':' once encoded). */
    char id[128], sec[256], enc[1200], b[1700];
    const char *colon = strchr(s, ':');
    size_t il = colon ? (size_t)(colon - s) : strlen(s);
    if (il == 0 || il >= sizeof id || (colon && strlen(colon + 1) >= sizeof sec))
        return;
    memcpy(id, s, il);
    id[il] = '\0';
    snprintf(sec, sizeof sec, "%s", colon ? colon + 1 : "");
    size_t n = form_encode(id, enc);
    enc[n++] = ':';
    n += form_encode(sec, enc + n);
    sodium_bin2base64(b, sizeof b, (unsigned char *)enc, n, sodium_base64_VARIANT_ORIGINAL);
    char gid[128], gsec[256];
    bool ok = oauth_basic_credentials(b, gid, sizeof gid, gsec, sizeof gsec);
    if (strlen(b) > 512)
        return; /* over the header limit: refusing it is right */
    FUZZ_CHECK(ok && strcmp(gid, id) == 0 && strcmp(gsec, sec) == 0,
               "Basic round trip of '%s' failed", s);
}

static void check_redirect(const char *u)
{
    if (!oauth_redirect_uri_ok(u))
        return;
    if (!strcmp(u, "antar://callback"))
        return;
    const char *p = u + strlen("http://127.0.0.1:");
    FUZZ_CHECK(!strncmp(u, "http://127.0.0.1:", 17), "redirect '%s'", u);
    size_t d = strspn(p, "0123456789");
    long port = strtol(p, NULL, 10);
    FUZZ_CHECK(d >= 1 && d <= 5 && p[0] != '0' && port >= 1 && port <= 65535 &&
                   !strcmp(p + d, "/callback"),
               "redirect '%s' accepted", u);
}

static void check_cookie(const char *c)
{
    char out[33];
    memset(out, 'Z', sizeof out);
    oauth_cookie_nonce(c, out);
    if (!out[0])
        return;
    FUZZ_CHECK(strlen(out) == 32 && strspn(out, "0123456789abcdef") == 32, "nonce '%.33s'", out);
    char want[48];
    snprintf(want, sizeof want, "antar_login=%s", out);
    bool found = false;
    for (const char *at = c; !found && (at = strstr(at, want)) != NULL; at++)
        found = at == c || at[-1] == ' ' || at[-1] == ';';
    FUZZ_CHECK(found, "nonce not in the header at a cookie's start");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *ct = content_types[data[0] % NTYPES];
    data++;
    size--;
    char *body = malloc(size ? size : 1);
    char *str = malloc(size + 1);
    if (!body || !str) {
        free(body);
        free(str);
        return 0;
    }
    memcpy(body, data, size);
    memcpy(str, data, size);
    str[size] = '\0';

    check_form(body, size);
    check_params(ct, body, size);
    check_basic(str);
    basic_round_trip(str);
    check_redirect(str);
    check_cookie(str);
    FUZZ_CHECK(!oauth_redirect_uri_ok(NULL), "NULL redirect");
    free(body);
    free(str);
    return 0;
}
