/* fuzz_body.c — libFuzzer harness for the body decoders (antar_body_parse: JSON and form into
 * one fields object) followed by antar_req_fields, as a request would see them.
 *
 * Input layout: byte 0 picks the Content-Type (the last choice takes it from the input, up to
 * the first '\n'), byte 1 is the required-field mask for the field table, the rest is the body.
 * The body is copied into a buffer of exactly its length, so reading past it is an ASan error.
 *
 * Checked beyond "no crash, no leak, no UB":
 *  - a failure leaves *out NULL, has a message, a 4xx code, and names only clean-text fields;
 *  - a success is a JSON object; a form object has string values and clean keys of <= 128
 *    bytes, and re-encoding it with %XX escapes decodes to the same object;
 *  - a JSON object survives a dump/load round trip;
 *  - the error envelope built from a failure is well-formed JSON;
 *  - antar_req_fields on the result keeps every promise of http.h (see fuzz_common.h). */
#include <stdint.h>

#include "fuzz_common.h"

static const char *const content_types[] = {
    "application/json",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded; charset=\"UTF-8\"",
    "text/plain",
    NULL,
    "multipart/form-data; boundary=x",
    "APPLICATION/JSON ; charset=latin1",
};
#define NTYPES (sizeof(content_types) / sizeof(*content_types))

/* Percent-encodes every byte that is not unreserved, so the decoder must give it back. */
static size_t form_encode(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[j++] = (char)c;
        } else if (c == ' ') {
            out[j++] = '+';
        } else {
            out[j++] = '%';
            out[j++] = hex[c >> 4];
            out[j++] = hex[c & 15];
        }
    }
    return j;
}

static void check_form_round_trip(json_t *obj)
{
    size_t cap = 1, used = 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) cap += 3 * (strlen(k) + json_string_length(v)) + 2;
    char *buf = malloc(cap);
    if (!buf)
        return;
    json_object_foreach(obj, k, v)
    {
        if (used)
            buf[used++] = '&';
        used += form_encode(k, strlen(k), buf + used);
        buf[used++] = '=';
        used += form_encode(json_string_value(v), json_string_length(v), buf + used);
    }
    char msg[256], field[130];
    json_t *again = NULL;
    antar_err_t e =
        antar_form_decode(buf, used, NULL, &again, msg, sizeof(msg), field, sizeof(field));
    FUZZ_CHECK(e == ANTAR_OK, "re-encoded form does not decode: %s", msg);
    FUZZ_CHECK(json_equal(obj, again), "form round trip differs");
    json_decref(again);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    char ctbuf[256];
    unsigned pick = data[0] % (NTYPES + 1);
    const char *ct = pick < NTYPES ? content_types[pick] : NULL;
    unsigned mask = data[1];
    data += 2;
    size -= 2;
    if (pick == NTYPES) {
        /* The Content-Type from the input itself: the header as a client could send it. */
        const uint8_t *nl = memchr(data, '\n', size < sizeof(ctbuf) - 1 ? size : sizeof(ctbuf) - 1);
        if (!nl)
            return 0;
        size_t n = (size_t)(nl - data);
        memcpy(ctbuf, data, n);
        ctbuf[n] = '\0';
        if (strlen(ctbuf) != n)
            return 0; /* MHD hands headers over as C strings */
        ct = ctbuf;
        data += n + 1;
        size -= n + 1;
    }

    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);

    char msg[256], field[130];
    memset(msg, 'X', sizeof(msg));
    memset(field, 'X', sizeof(field));
    json_t *out = (json_t *)0x1;
    bool is_form = true;
    antar_err_t e =
        antar_body_parse(ct, body, size, &out, &is_form, msg, sizeof(msg), field, sizeof(field));
    FUZZ_CHECK(memchr(msg, '\0', sizeof(msg)) && memchr(field, '\0', sizeof(field)),
               "msg/field not terminated");

    if (e != ANTAR_OK) {
        FUZZ_CHECK(out == NULL, "failure left an object");
        FUZZ_CHECK(e == ANTAR_E_MALFORMED_JSON || e == ANTAR_E_BAD_REQUEST ||
                       e == ANTAR_E_UNSUPPORTED_MEDIA_TYPE || e == ANTAR_E_INVALID_FIELD ||
                       e == ANTAR_E_NOMEM,
                   "unexpected error %d", e);
        FUZZ_CHECK(msg[0] != '\0', "failure without a message");
        if (field[0])
            FUZZ_CHECK(antar_text_ok(field, strlen(field), false), "field is not clean text");
        /* The server replies with exactly this: the envelope must be valid JSON whatever the
         * message holds (it can quote client bytes from the JSON parser). */
        antar_req_t *req = antar_req_new_detached(NULL, "POST", "/fuzz", NULL, false);
        if (req) {
            antar_http_fail(req, e, field[0] ? field : NULL, "%s", msg);
            json_t *doc = NULL;
            const char *named = fuzz_check_error_reply(req, e, &doc);
            if (field[0])
                FUZZ_CHECK(named && strcmp(named, field) == 0, "field lost in the envelope");
            json_decref(doc);
            antar_req_free(req);
        }
        free(body);
        return 0;
    }

    FUZZ_CHECK(out && json_is_object(out), "success without an object");
    if (size == 0)
        FUZZ_CHECK(json_object_size(out) == 0, "empty body gave fields");
    if (is_form) {
        const char *k;
        json_t *v;
        json_object_foreach(out, k, v)
        {
            FUZZ_CHECK(json_is_string(v), "form value of %s is not a string", k);
            FUZZ_CHECK(strlen(k) >= 1 && strlen(k) <= 128, "form key length %zu", strlen(k));
            FUZZ_CHECK(antar_text_ok(k, strlen(k), false), "form key is not clean text");
        }
        check_form_round_trip(out);
    } else if (size > 0) {
        char *text = json_dumps(out, JSON_COMPACT);
        FUZZ_CHECK(text, "a parsed object does not serialise");
        json_error_t jerr;
        json_t *again = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        FUZZ_CHECK(again && json_equal(out, again), "JSON round trip differs: %s", jerr.text);
        json_decref(again);
        free(text);
    }

    fuzz_run_fields(out, is_form, mask);
    json_decref(out);
    free(body);
    return 0;
}
