/* fuzz_common.h — shared by the libFuzzer harnesses: the field table every harness validates
 * against, and the checks on a recorded error reply. A broken invariant calls abort() so that
 * libFuzzer saves the input as a crash (the sanitizers catch memory and UB errors by
 * themselves). Test code only: never linked into a service. */
#ifndef ANTAR_FUZZ_COMMON_H
#define ANTAR_FUZZ_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/http_internal.h"

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const fuzz_vehicles[] = {"motorcycle", "car", NULL};

/* Outputs of the field table, with sentinels that a failed validation must leave alone. */
typedef struct {
    const char *name, *vehicle, *note;
    long long count, big;
    double lat, x;
    bool flag, flag_present, note_present;
} fuzz_out_t;

#define FUZZ_NFIELDS 8

static inline void fuzz_fields_init(antar_field_t *f, fuzz_out_t *o, unsigned required_mask)
{
    static const char sentinel[] = "untouched";
    o->name = o->vehicle = o->note = sentinel;
    o->count = o->big = -777;
    o->lat = o->x = -777.5;
    o->flag = o->flag_present = o->note_present = false;
    const antar_field_t t[FUZZ_NFIELDS] = {
        {"name", ANTAR_FIELD_STRING, false, 1, 10, NULL, &o->name, NULL},
        {"note", ANTAR_FIELD_STRING, false, 0, 0, NULL, &o->note, &o->note_present},
        {"count", ANTAR_FIELD_INT, false, 1, 100, NULL, &o->count, NULL},
        {"big", ANTAR_FIELD_INT, false, 0, 0, NULL, &o->big, NULL},
        {"lat", ANTAR_FIELD_NUMBER, false, -90, 90, NULL, &o->lat, NULL},
        {"x", ANTAR_FIELD_NUMBER, false, 0, 0, NULL, &o->x, NULL},
        {"flag", ANTAR_FIELD_BOOL, false, 0, 0, NULL, &o->flag, &o->flag_present},
        {"vehicle", ANTAR_FIELD_ENUM, false, 0, 0, fuzz_vehicles, &o->vehicle, NULL},
    };
    memcpy(f, t, sizeof(t));
    for (unsigned i = 0; i < FUZZ_NFIELDS; i++)
        f[i].required = (required_mask >> i) & 1u;
}

static inline bool fuzz_known_code(const char *code)
{
    for (int e = 0; e < ANTAR_E__COUNT; e++)
        if (strcmp(code, antar_err_code((antar_err_t)e)) == 0)
            return true;
    return false;
}

/* The recorded reply of req is a well-formed error envelope for err with the given status;
 * returns error.field (borrowed from *doc, which the caller decrefs) or NULL. */
static inline const char *fuzz_check_error_reply(antar_req_t *req, antar_err_t err, json_t **doc)
{
    FUZZ_CHECK(req->replied, "error %d without a reply", err);
    FUZZ_CHECK(req->status == antar_err_status(err), "status %d for %s", req->status,
               antar_err_code(err));
    FUZZ_CHECK(req->status >= 400 && req->status < 600, "status %d", req->status);
    FUZZ_CHECK(req->envelope, "error reply is not an envelope");
    json_error_t jerr;
    *doc = json_loadb(req->resp_body, req->resp_len, JSON_REJECT_DUPLICATES, &jerr);
    FUZZ_CHECK(*doc && json_is_object(*doc), "reply is not a JSON object: %s", jerr.text);
    FUZZ_CHECK(json_object_size(*doc) == 3, "envelope has %zu keys", json_object_size(*doc));
    json_t *st = json_object_get(*doc, "status"), *res = json_object_get(*doc, "result"),
           *e = json_object_get(*doc, "error");
    FUZZ_CHECK(json_is_integer(st) && json_integer_value(st) == req->status, "envelope status");
    FUZZ_CHECK(json_is_null(res), "error envelope with a result");
    FUZZ_CHECK(json_is_object(e) && json_object_size(e) == 3, "error object");
    json_t *code = json_object_get(e, "code"), *msg = json_object_get(e, "message"),
           *field = json_object_get(e, "field");
    FUZZ_CHECK(json_is_string(code) && fuzz_known_code(json_string_value(code)), "error.code");
    FUZZ_CHECK(strcmp(json_string_value(code), antar_err_code(err)) == 0, "code %s for %s",
               json_string_value(code), antar_err_code(err));
    FUZZ_CHECK(json_is_string(msg) && json_string_length(msg) > 0, "error.message");
    FUZZ_CHECK(json_is_null(field) || json_is_string(field), "error.field");
    if (json_is_string(field)) {
        /* A named field must be printable text: it is echoed to clients and logs. */
        FUZZ_CHECK(antar_text_ok(json_string_value(field), json_string_length(field), false),
                   "error.field is not clean text");
        return json_string_value(field);
    }
    return NULL;
}

/* Runs the field table over body (borrowed) and checks every promise of antar_req_fields. */
static inline void fuzz_run_fields(json_t *body, bool is_form, unsigned required_mask)
{
    antar_field_t f[FUZZ_NFIELDS];
    fuzz_out_t o;
    fuzz_fields_init(f, &o, required_mask);
    json_incref(body);
    antar_req_t *req = antar_req_new_detached(NULL, "POST", "/fuzz", body, is_form);
    if (!req)
        return;
    antar_err_t e = antar_req_fields(req, f, FUZZ_NFIELDS);
    if (e == ANTAR_OK) {
        FUZZ_CHECK(!req->replied, "success but a reply was sent");
        if (o.name != NULL && strcmp(o.name, "untouched") != 0) {
            size_t n = strlen(o.name);
            FUZZ_CHECK(antar_text_ok(o.name, n, false), "name is not clean text");
            FUZZ_CHECK(n >= 1 && n <= 40, "name of %zu bytes passed a 1..10 char bound", n);
        }
        if (o.note_present)
            FUZZ_CHECK(antar_text_ok(o.note, strlen(o.note), false), "note is not clean text");
        if (o.count != -777)
            FUZZ_CHECK(o.count >= 1 && o.count <= 100, "count %lld", o.count);
        if (o.big != -777)
            FUZZ_CHECK(o.big >= -9007199254740992LL && o.big <= 9007199254740992LL, "big %lld",
                       o.big);
        if (o.lat != -777.5)
            FUZZ_CHECK(isfinite(o.lat) && o.lat >= -90 && o.lat <= 90, "lat %g", o.lat);
        if (o.x != -777.5)
            FUZZ_CHECK(isfinite(o.x), "x %g", o.x);
        if (strcmp(o.vehicle, "untouched") != 0)
            FUZZ_CHECK(strcmp(o.vehicle, "car") == 0 || strcmp(o.vehicle, "motorcycle") == 0,
                       "vehicle %s", o.vehicle);
        for (unsigned i = 0; i < FUZZ_NFIELDS; i++)
            if (f[i].required)
                FUZZ_CHECK(json_object_get(body, f[i].name), "required %s absent", f[i].name);
    } else {
        FUZZ_CHECK(e == ANTAR_E_INVALID_FIELD || e == ANTAR_E_MISSING_FIELD ||
                       e == ANTAR_E_UNKNOWN_FIELD || e == ANTAR_E_NOMEM,
                   "unexpected error %s", antar_err_code(e));
        json_t *doc = NULL;
        const char *field = fuzz_check_error_reply(req, e, &doc);
        if (e == ANTAR_E_INVALID_FIELD || e == ANTAR_E_MISSING_FIELD) {
            bool listed = false;
            for (unsigned i = 0; field && i < FUZZ_NFIELDS; i++)
                listed = listed || strcmp(field, f[i].name) == 0;
            FUZZ_CHECK(listed, "%s does not name a listed field", antar_err_code(e));
        }
        if (e == ANTAR_E_UNKNOWN_FIELD && field)
            FUZZ_CHECK(json_object_get(body, field), "unknown_field names %s, not in the body",
                       field);
        /* Outputs are written only on success. */
        FUZZ_CHECK(strcmp(o.name, "untouched") == 0 && strcmp(o.note, "untouched") == 0 &&
                       strcmp(o.vehicle, "untouched") == 0 && o.count == -777 && o.big == -777 &&
                       o.lat == -777.5 && o.x == -777.5 && !o.flag && !o.flag_present &&
                       !o.note_present,
                   "an output was written on failure");
        json_decref(doc);
    }
    antar_req_free(req);
}

#endif
