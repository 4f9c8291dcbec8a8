/* http_fields.c — declarative validation of request bodies (antar_req_fields) and the shared
 * email/phone formats.
 *
 * Conventions beyond http.h: min == max == 0 means "no bound" for STRING lengths and for
 * INT/NUMBER ranges (INT is then still limited to ±2^53 so the value survives a round trip
 * through JSON doubles in clients). A JSON null is a wrong type, not an absent field: a client
 * that sends null gets told so instead of having it silently ignored. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

#define INT_LIMIT 9007199254740992.0 /* 2^53 */
#define INT_LIMIT_LL 9007199254740992LL

typedef union {
    const char *s;
    long long i;
    double d;
    bool b;
} field_val_t;

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* Strict decimal integer: optional '-', digits only, nothing else. */
static bool parse_int(const char *s, long long *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Strict JSON-style number: -?digits[.digits][(e|E)[+-]digits]. strtod alone would also take
 * hex floats, "inf", "nan" and leading spaces, none of which a client means as a number. */
static bool parse_number(const char *s, double *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p)
        return false;
    errno = 0;
    double v = strtod(s, NULL);
    if (errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool bounded(const antar_field_t *f)
{
    return !(f->min == 0 && f->max == 0);
}

/* Validates one present value; on failure sends the envelope and returns the error. text: the
 * body is a form, so scalars come as strings; lenient: a JSON string is also taken for a scalar
 * (antar_req_fields_lenient), parsed the same way. */
static antar_err_t check_one(antar_req_t *req, const antar_field_t *f, json_t *v, bool form,
                             bool lenient, field_val_t *out)
{
    const char *n = f->name;
    bool text = form || (lenient && json_is_string(v));
    switch (f->type) {
    case ANTAR_FIELD_STRING:
    case ANTAR_FIELD_ENUM: {
        if (!json_is_string(v))
            goto wrong_type;
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (!antar_text_ok(s, len, false)) {
            antar_http_fail(req, ANTAR_E_INVALID_FIELD, n,
                            "%s must be valid UTF-8 text without control characters", n);
            return ANTAR_E_INVALID_FIELD;
        }
        if (f->type == ANTAR_FIELD_ENUM) {
            for (const char *const *c = f->choices; c && *c; c++)
                if (strcmp(*c, s) == 0) {
                    out->s = s;
                    return ANTAR_OK;
                }
            char list[256] = "";
            size_t used = 0;
            for (const char *const *c = f->choices; c && *c && used < sizeof(list); c++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
                                         *c);
            antar_http_fail(req, ANTAR_E_INVALID_FIELD, n, "%s must be one of: %s", n, list);
            return ANTAR_E_INVALID_FIELD;
        }
        size_t chars = utf8_chars(s, len);
        if (bounded(f) && ((double)chars < f->min || (double)chars > f->max)) {
            antar_http_fail(req, ANTAR_E_INVALID_FIELD, n,
                            "%s must be between %.0f and %.0f characters long", n, f->min, f->max);
            return ANTAR_E_INVALID_FIELD;
        }
        out->s = s;
        return ANTAR_OK;
    }
    case ANTAR_FIELD_INT: {
        long long i;
        if (text) {
            if (!json_is_string(v) || !parse_int(json_string_value(v), &i) ||
                json_string_length(v) != strlen(json_string_value(v)))
                goto wrong_type;
        } else {
            if (!json_is_integer(v))
                goto wrong_type;
            i = json_integer_value(v);
        }
        double lo = bounded(f) ? f->min : -INT_LIMIT, hi = bounded(f) ? f->max : INT_LIMIT;
        /* The default limit is compared as an integer: 2^53 + 1 rounds to 2^53 as a double and
         * would slip through a floating-point compare. */
        bool out_of_range = bounded(f) ? ((double)i < lo || (double)i > hi)
                                       : (i < -INT_LIMIT_LL || i > INT_LIMIT_LL);
        if (out_of_range) {
            antar_http_fail(req, ANTAR_E_INVALID_FIELD, n, "%s must be between %.0f and %.0f", n,
                            lo, hi);
            return ANTAR_E_INVALID_FIELD;
        }
        out->i = i;
        return ANTAR_OK;
    }
    case ANTAR_FIELD_NUMBER: {
        double d;
        if (text) {
            if (!json_is_string(v) || !parse_number(json_string_value(v), &d) ||
                json_string_length(v) != strlen(json_string_value(v)))
                goto wrong_type;
        } else {
            if (!json_is_number(v))
                goto wrong_type;
            d = json_number_value(v);
        }
        if (!isfinite(d) || (bounded(f) && (d < f->min || d > f->max))) {
            antar_http_fail(req, ANTAR_E_INVALID_FIELD, n, "%s must be between %g and %g", n,
                            f->min, f->max);
            return ANTAR_E_INVALID_FIELD;
        }
        out->d = d;
        return ANTAR_OK;
    }
    case ANTAR_FIELD_BOOL:
        if (text) {
            const char *s = json_string_value(v);
            if (s && strcmp(s, "true") == 0 && json_string_length(v) == 4)
                out->b = true;
            else if (s && strcmp(s, "false") == 0 && json_string_length(v) == 5)
                out->b = false;
            else
                goto wrong_type;
        } else {
            if (!json_is_boolean(v))
                goto wrong_type;
            out->b = json_is_true(v);
        }
        return ANTAR_OK;
    }
wrong_type:;
    static const char *const what[] = {"a string", "an integer", "a number", "true or false",
                                       "a string"};
    antar_http_fail(req, ANTAR_E_INVALID_FIELD, n, "%s must be %s", n,
                    (unsigned)f->type < 5 ? what[f->type] : "valid");
    return ANTAR_E_INVALID_FIELD;
}

static antar_err_t fields_check(antar_req_t *req, const antar_field_t *fields, size_t n,
                                bool lenient)
{
    json_t *body = antar_req_body(req);
    bool form = antar_req_is_form(req);
    antar_err_t err = ANTAR_OK;

    /* Unknown fields first: a typo in an optional field name must not pass silently. A peer
     * service's extra fields are another matter (see http.h). */
    const char *key;
    json_t *v;
    if (!lenient)
        json_object_foreach(body, key, v)
        {
            bool known = strcmp(key, "csrf_token") == 0;
            for (size_t i = 0; i < n && !known; i++)
                known = strcmp(fields[i].name, key) == 0;
            if (!known) {
                /* The key came from the client: only echo it when it is printable text. */
                bool printable = antar_text_ok(key, strlen(key), false) && strlen(key) <= 64;
                antar_http_fail(req, ANTAR_E_UNKNOWN_FIELD, printable ? key : NULL,
                                "%s is not a field of this endpoint", printable ? key : "a field");
                return ANTAR_E_UNKNOWN_FIELD;
            }
        }

    /* Validate everything into a scratch array, then write outputs, so that a failure leaves
     * the caller's variables untouched. */
    field_val_t *vals = calloc(n ? n : 1, sizeof(*vals));
    bool *given = calloc(n ? n : 1, sizeof(*given));
    if (!vals || !given) {
        err = ANTAR_E_NOMEM;
        antar_http_fail(req, err, NULL, NULL);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        v = json_object_get(body, fields[i].name);
        if (lenient && json_is_null(v))
            v = NULL;
        if (!v) {
            if (fields[i].required) {
                err = ANTAR_E_MISSING_FIELD;
                antar_http_fail(req, err, fields[i].name, "%s is required", fields[i].name);
                goto done;
            }
            continue;
        }
        err = check_one(req, &fields[i], v, form, lenient, &vals[i]);
        if (err != ANTAR_OK)
            goto done;
        given[i] = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (fields[i].present)
            *fields[i].present = given[i];
        if (!given[i] || !fields[i].out)
            continue;
        switch (fields[i].type) {
        case ANTAR_FIELD_STRING:
        case ANTAR_FIELD_ENUM:
            *(const char **)fields[i].out = vals[i].s;
            break;
        case ANTAR_FIELD_INT:
            *(long long *)fields[i].out = vals[i].i;
            break;
        case ANTAR_FIELD_NUMBER:
            *(double *)fields[i].out = vals[i].d;
            break;
        case ANTAR_FIELD_BOOL:
            *(bool *)fields[i].out = vals[i].b;
            break;
        }
    }
done:
    free(vals);
    free(given);
    return err;
}

antar_err_t antar_req_fields(antar_req_t *req, const antar_field_t *fields, size_t n)
{
    return fields_check(req, fields, n, false);
}

antar_err_t antar_req_fields_lenient(antar_req_t *req, const antar_field_t *fields, size_t n)
{
    return fields_check(req, fields, n, true);
}

void antar_email_normalize(char *email)
{
    /* Byte by byte and ASCII only: tolower() under a non-C locale could rewrite bytes of a
     * UTF-8 sequence. */
    for (char *p = email; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

bool antar_valid_email(const char *s)
{
    if (!s)
        return false;
    size_t len = strlen(s);
    const char *at = strchr(s, '@');
    if (len < 3 || len > 254 || !at || strchr(at + 1, '@'))
        return false;
    size_t local = (size_t)(at - s);
    if (local < 1 || local > 64)
        return false;
    for (const char *p = s; p < at; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._%+-", *p))
            return false;
    if (s[0] == '.' || at[-1] == '.' || strstr(s, ".."))
        return false;
    /* Domain: dot-separated labels of letters, digits and inner hyphens; at least two labels,
     * the last at least two letters. */
    const char *d = at + 1;
    int labels = 0;
    const char *last = NULL;
    while (*d) {
        const char *dot = strchr(d, '.');
        size_t l = dot ? (size_t)(dot - d) : strlen(d);
        if (l == 0 || l > 63 || d[0] == '-' || d[l - 1] == '-')
            return false;
        for (size_t i = 0; i < l; i++)
            if (!isalnum((unsigned char)d[i]) && d[i] != '-')
                return false;
        labels++;
        last = d;
        if (!dot)
            break;
        d = dot + 1;
        if (!*d)
            return false; /* trailing dot */
    }
    if (labels < 2 || strlen(last) < 2)
        return false;
    for (const char *p = last; *p; p++)
        if (!isalpha((unsigned char)*p))
            return false;
    return true;
}

const char *const antar_vehicle_types[] = {"motorcycle", "car", NULL};

bool antar_valid_phone(const char *s)
{
    if (!s)
        return false;
    if (*s == '+')
        s++;
    size_t n = strlen(s);
    if (n < 8 || n > 15)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}
