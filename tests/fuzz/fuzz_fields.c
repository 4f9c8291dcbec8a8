/* fuzz_fields.c — libFuzzer harness for what a handler does with a parsed request:
 * antar_req_fields on arbitrary JSON values (strings with NUL and control characters too, which
 * a form body can carry), the email/phone formats, the router on hostile paths and
 * antar_req_param_id on hostile path segments.
 *
 * Input layout: byte 0 = required-field mask, byte 1 = which field the value is put under (and
 * whether it is also tried as a form value), the rest is the value as JSON text (NUL allowed);
 * the same rest is also used as a path, an id segment, an email and a phone. */
#include <ctype.h>
#include <stdint.h>

#include "fuzz_common.h"

static void h_dummy(antar_req_t *req)
{
    (void)req;
}

static const antar_route_t routes_tab[] = {
    {"GET", "/orders", h_dummy, 0, NULL, 0},
    {"GET", "/orders/{id}", h_dummy, 0, NULL, 0},
    {"POST", "/orders/{id}/cancel", h_dummy, 0, NULL, 0},
    {"GET", "/orders/active", h_dummy, 0, NULL, 0},
    {"POST", "/trips/{order_id}/pickup", h_dummy, 0, NULL, 0},
    {"GET", "/docs/{file}", h_dummy, 0, NULL, 0},
    {"GET", "/a/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h_dummy, 0, NULL, 0},
};
#define NROUTES (sizeof(routes_tab) / sizeof(*routes_tab))

static void check_router(const char *path)
{
    const antar_route_t *rt[NROUTES];
    for (size_t i = 0; i < NROUTES; i++)
        rt[i] = &routes_tab[i];
    static const char *const methods[] = {"GET", "POST", "PATCH"};
    for (size_t mi = 0; mi < 3; mi++) {
        antar_match_t m;
        antar_router_match(rt, NROUTES, methods[mi], path, &m);
        FUZZ_CHECK(memchr(m.allow, '\0', sizeof(m.allow)), "allow not terminated");
        if (m.kind != ANTAR_MATCH_OK)
            continue;
        FUZZ_CHECK(m.route && strcmp(m.route->method, methods[mi]) == 0, "wrong method matched");
        FUZZ_CHECK(m.nparams <= ANTAR_MAX_PARAMS, "nparams %zu", m.nparams);
        for (size_t i = 0; i < m.nparams; i++) {
            FUZZ_CHECK(m.value_len[i] > 0, "empty parameter");
            FUZZ_CHECK(!memchr(m.value[i], '/', m.value_len[i]), "parameter spans segments");
            FUZZ_CHECK(m.value[i] >= path && m.value[i] + m.value_len[i] <= path + strlen(path),
                       "parameter outside the path");
        }
    }
}

static void check_param_id(const char *seg)
{
    antar_req_t *req = antar_req_new_detached(NULL, "GET", "/orders/x", NULL, false);
    if (!req)
        return;
    req->param_name[0] = "id";
    req->param_value[0] = seg;
    req->nparams = 1;
    long long id = -1;
    antar_err_t e = antar_req_param_id(req, "id", &id);
    if (e == ANTAR_OK) {
        FUZZ_CHECK(!req->replied, "id accepted but a reply was sent");
        FUZZ_CHECK(id >= 1 && id <= 9007199254740992LL, "id %lld out of range", id);
        char back[32];
        snprintf(back, sizeof(back), "%lld", id);
        FUZZ_CHECK(strcmp(back, seg) == 0, "id %lld is not the canonical form of the segment", id);
    } else {
        FUZZ_CHECK(e == ANTAR_E_NOT_FOUND, "param_id error %d", e);
        FUZZ_CHECK(id == -1, "output written on failure");
        json_t *doc = NULL;
        fuzz_check_error_reply(req, e, &doc);
        json_decref(doc);
    }
    antar_req_free(req);
}

static void check_formats(const char *s)
{
    if (antar_valid_phone(s)) {
        const char *p = s + (*s == '+');
        size_t n = strlen(p);
        FUZZ_CHECK(n >= 8 && n <= 15 && strspn(p, "0123456789") == n, "phone accepted: %s", s);
    }
    if (antar_valid_email(s)) {
        size_t n = strlen(s);
        FUZZ_CHECK(n >= 3 && n <= 254 && strchr(s, '@') == strrchr(s, '@'), "email accepted");
        for (const char *p = s; *p; p++)
            FUZZ_CHECK(isalnum((unsigned char)*p) || strchr("._%+-@", *p),
                       "email with byte 0x%02x accepted", (unsigned char)*p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned mask = data[0], which = data[1];
    data += 2;
    size -= 2;

    /* The rest as a C string (what a path, header or decoded form value looks like). */
    char *text = malloc(size + 2);
    if (!text)
        return 0;
    text[0] = '/';
    memcpy(text + 1, data, size);
    text[size + 1] = '\0';
    check_router(text);
    check_param_id(text + 1);
    check_formats(text + 1);

    /* The rest as a JSON value, put under one of the table's fields (or an unknown one). */
    static const char *const names[] = {"name", "note", "count",   "big",        "lat",
                                        "x",    "flag", "vehicle", "csrf_token", "zzz"};
    const char *fname = names[which % 10];
    json_error_t jerr;
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v) {
        json_t *body = json_object();
        json_object_set(body, fname, v);
        fuzz_run_fields(body, false, mask);
        /* A form body has only strings: the same value as a form field, if it is one. */
        if (json_is_string(v))
            fuzz_run_fields(body, true, mask);
        /* And the value as a whole body when it is an object itself. */
        if (json_is_object(v))
            fuzz_run_fields(v, (which & 0x80) != 0, mask);
        json_decref(body);
        json_decref(v);
    }
    /* The raw bytes as a form value, NUL and all. */
    json_t *s = json_stringn((const char *)data, size);
    if (s) {
        json_t *body = json_object();
        json_object_set_new(body, fname, s);
        fuzz_run_fields(body, true, mask);
        json_decref(body);
    }
    free(text);
    return 0;
}
