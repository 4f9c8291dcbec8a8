/* The toolkit's strict form decoder (lib/http_body.c: antar_form_unescape, antar_form_decode)
 * with and without limits, and the content types antar_body_parse takes. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../lib/http_internal.h"

static char msg[256], field[130];

/* Decode body under lim; the error, *out set only on success. */
static antar_err_t decode(const char *body, size_t len, const antar_form_limits_t *lim,
                          json_t **out)
{
    *out = NULL;
    return antar_form_decode(body, len, lim, out, msg, sizeof msg, field, sizeof field);
}

/* body must be refused with want, naming want_field ("" for none). */
static void refused(const char *body, size_t len, const antar_form_limits_t *lim, antar_err_t want,
                    const char *want_field)
{
    json_t *o = NULL;
    antar_err_t e = decode(body, len, lim, &o);
    cr_assert_eq(e, want, "\"%.*s\": error %d, want %d (%s)", (int)len, body, e, want, msg);
    cr_assert_null(o, "no object on error");
    cr_assert_str_eq(field, want_field, "\"%.*s\": field \"%s\", want \"%s\"", (int)len, body,
                     field, want_field);
    cr_assert(msg[0], "a message is always given");
}

static const antar_form_limits_t strict = {.max_pairs = 3, .max_value = 8, .refuse_nul = true};

Test(form, unescape_component)
{
    char out[32];
    cr_assert_eq(antar_form_unescape("a+b%2Bc%41", 10, out, true), 6);
    cr_assert_str_eq(out, "a b+cA");
    cr_assert_eq(antar_form_unescape("%4", 2, out, false), -1, "truncated escape");
    cr_assert_eq(antar_form_unescape("%g1", 3, out, false), -1, "not hex");
    cr_assert_eq(antar_form_unescape("a%00", 4, out, true), -1, "%%00 refused");
    cr_assert_eq(antar_form_unescape("a\0b", 3, out, true), -1, "raw NUL refused");
    cr_assert_eq(antar_form_unescape("a%00", 4, out, false), 2, "%%00 kept without refuse_nul");
}

Test(form, duplicates_are_refused_naming_the_field)
{
    refused("a=1&b=2&a=3", 11, NULL, ANTAR_E_BAD_REQUEST, "a");
    /* The same name spelled two ways is still the same name. */
    refused("grant_type=x&grant%5Ftype=y", 27, NULL, ANTAR_E_BAD_REQUEST, "grant_type");
}

Test(form, bad_percent_encoding_is_refused)
{
    refused("a=%zz", 5, NULL, ANTAR_E_BAD_REQUEST, "");
    refused("a=%4", 4, NULL, ANTAR_E_BAD_REQUEST, "");
    refused("%=1", 3, NULL, ANTAR_E_BAD_REQUEST, "");
    refused("a=%C3%28", 8, NULL, ANTAR_E_INVALID_FIELD, "a"); /* invalid UTF-8 */
}

Test(form, bad_names_are_refused)
{
    refused("=x", 2, NULL, ANTAR_E_BAD_REQUEST, "");
    refused("a%01=x", 6, NULL, ANTAR_E_BAD_REQUEST, "");
    char longname[140];
    memset(longname, 'k', 129);
    memcpy(longname + 129, "=v", 3);
    refused(longname, 131, NULL, ANTAR_E_BAD_REQUEST, "");
}

Test(form, limits_over_long_values_and_too_many_pairs)
{
    json_t *o;
    cr_assert_eq(decode("a=12345678&b=&c", 15, &strict, &o), ANTAR_OK, "%s", msg);
    cr_assert_eq(json_object_size(o), 3);
    json_decref(o);
    refused("a=123456789", 11, &strict, ANTAR_E_INVALID_FIELD, "a");
    refused("a=1&b=2&c=3&d=4", 15, &strict, ANTAR_E_TOO_LARGE, "");
    /* Empty pairs do not count. */
    cr_assert_eq(decode("a=1&&&b=2&&c=3&", 15, &strict, &o), ANTAR_OK, "%s", msg);
    json_decref(o);
}

Test(form, nul_bytes_under_refuse_nul)
{
    refused("a=x%00y", 7, &strict, ANTAR_E_INVALID_FIELD, "a");
    const char raw[] = "a=x\0y";
    refused(raw, sizeof raw - 1, &strict, ANTAR_E_INVALID_FIELD, "a");
    /* Without the limit the NUL stays, for antar_req_fields to refuse naming the field. */
    json_t *o;
    cr_assert_eq(decode("a=x%00y", 7, NULL, &o), ANTAR_OK);
    cr_assert_eq(json_string_length(json_object_get(o, "a")), 3);
    json_decref(o);
}

Test(form, wrong_content_type_is_415)
{
    json_t *o = NULL;
    bool is_form = false;
    cr_assert_eq(antar_body_parse("text/plain", "a=1", 3, &o, &is_form, msg, sizeof msg, field,
                                  sizeof field),
                 ANTAR_E_UNSUPPORTED_MEDIA_TYPE);
    cr_assert_null(o);
    cr_assert_eq(antar_body_parse("application/x-www-form-urlencoded; charset=latin1", "a=1", 3, &o,
                                  &is_form, msg, sizeof msg, field, sizeof field),
                 ANTAR_E_UNSUPPORTED_MEDIA_TYPE);
    cr_assert_eq(antar_body_parse("application/x-www-form-urlencoded", "a=1&a=2", 7, &o, &is_form,
                                  msg, sizeof msg, field, sizeof field),
                 ANTAR_E_BAD_REQUEST, "the server's forms go through the same decoder");
    cr_assert_str_eq(field, "a");
}
