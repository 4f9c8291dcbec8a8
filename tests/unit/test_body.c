/* Body parsing: JSON and form give the same object; strict form decoding; 400/415 paths. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../lib/http_internal.h"

static char msg[256], field[130];

static antar_err_t parse(const char *ct, const char *body, json_t **out, bool *form)
{
    return antar_body_parse(ct, body, strlen(body), out, form, msg, sizeof(msg), field,
                            sizeof(field));
}

Test(body, json_and_form_same_object)
{
    json_t *a = NULL, *b = NULL;
    bool fa, fb;
    cr_assert_eq(parse("application/json", "{\"name\":\"Sari Dewi\",\"lat\":\"-6.2\"}", &a, &fa),
                 ANTAR_OK);
    cr_assert_eq(parse("application/x-www-form-urlencoded", "name=Sari+Dewi&lat=-6.2", &b, &fb),
                 ANTAR_OK);
    cr_assert_not(fa);
    cr_assert(fb);
    cr_assert(json_equal(a, b), "json and form differ");
    json_decref(a);
    json_decref(b);
}

Test(body, json_charset_param_ok)
{
    json_t *a = NULL;
    bool f;
    cr_assert_eq(parse("application/json; charset=UTF-8", "{}", &a, &f), ANTAR_OK);
    json_decref(a);
    cr_assert_eq(parse("Application/JSON;charset=\"utf-8\"", "{}", &a, &f), ANTAR_OK);
    json_decref(a);
    cr_assert_eq(parse("application/json; charset=latin1", "{}", &a, &f),
                 ANTAR_E_UNSUPPORTED_MEDIA_TYPE);
}

Test(body, form_decoding)
{
    json_t *o = NULL;
    cr_assert_eq(antar_form_decode("a=1+2&b=%41%62%2B&c=&d&e=%C3%A9", 31, NULL, &o, msg,
                                   sizeof(msg), field, sizeof(field)),
                 ANTAR_OK, "%s", msg);
    cr_assert_str_eq(json_string_value(json_object_get(o, "a")), "1 2");
    cr_assert_str_eq(json_string_value(json_object_get(o, "b")), "Ab+");
    cr_assert_str_eq(json_string_value(json_object_get(o, "c")), "");
    cr_assert_str_eq(json_string_value(json_object_get(o, "d")), "");
    cr_assert_str_eq(json_string_value(json_object_get(o, "e")), "\xc3\xa9");
    json_decref(o);
}

Test(body, form_rejections)
{
    const char *bad[] = {"a=%4", "a=%zz", "a=%", "=x", "a=1&a=2", "%00=1", "a%=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        json_t *o = NULL;
        antar_err_t e = antar_form_decode(bad[i], strlen(bad[i]), NULL, &o, msg, sizeof(msg), field,
                                          sizeof(field));
        cr_assert_eq(e, ANTAR_E_BAD_REQUEST, "%s: got %d", bad[i], e);
        cr_assert_null(o);
    }
    json_t *o = NULL;
    cr_assert_eq(antar_form_decode("a=1&a=2", 7, NULL, &o, msg, sizeof(msg), field, sizeof(field)),
                 ANTAR_E_BAD_REQUEST);
    cr_assert_str_eq(field, "a");
    /* invalid UTF-8 in a value: 422 naming the field */
    cr_assert_eq(antar_form_decode("name=%FF", 8, NULL, &o, msg, sizeof(msg), field, sizeof(field)),
                 ANTAR_E_INVALID_FIELD);
    cr_assert_str_eq(field, "name");
}

Test(body, malformed_and_non_object_json)
{
    json_t *o = NULL;
    bool f;
    cr_assert_eq(parse("application/json", "{\"a\":", &o, &f), ANTAR_E_MALFORMED_JSON);
    cr_assert_eq(parse("application/json", "{\"a\":1,\"a\":2}", &o, &f), ANTAR_E_MALFORMED_JSON);
    cr_assert_eq(parse("application/json", "{\"a\":\"\xff\"}", &o, &f), ANTAR_E_MALFORMED_JSON);
    cr_assert_eq(parse("application/json", "{\"a\":\"\\u0000\"}", &o, &f), ANTAR_E_MALFORMED_JSON);
    cr_assert_eq(parse("application/json", "[1,2]", &o, &f), ANTAR_E_BAD_REQUEST);
    cr_assert_eq(parse("application/json", "\"x\"", &o, &f), ANTAR_E_BAD_REQUEST);
    cr_assert_eq(parse("application/json", "null", &o, &f), ANTAR_E_BAD_REQUEST);
    cr_assert_null(o);
}

Test(body, unsupported_media_type)
{
    json_t *o = NULL;
    bool f;
    cr_assert_eq(parse("text/plain", "a=1", &o, &f), ANTAR_E_UNSUPPORTED_MEDIA_TYPE);
    cr_assert_eq(parse(NULL, "a=1", &o, &f), ANTAR_E_UNSUPPORTED_MEDIA_TYPE);
    cr_assert_eq(parse("multipart/form-data; boundary=x", "a", &o, &f),
                 ANTAR_E_UNSUPPORTED_MEDIA_TYPE);
    cr_assert_eq(parse("application/jsonx", "{}", &o, &f), ANTAR_E_UNSUPPORTED_MEDIA_TYPE);
}

Test(body, empty_body_is_empty_object)
{
    json_t *o = NULL;
    bool f;
    cr_assert_eq(parse("text/plain", "", &o, &f), ANTAR_OK);
    cr_assert(json_is_object(o) && json_object_size(o) == 0);
    json_decref(o);
    cr_assert_eq(parse(NULL, "", &o, &f), ANTAR_OK);
    json_decref(o);
}

Test(body, text_checks)
{
    cr_assert(antar_text_ok("Sari \xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x97", 16, false));
    cr_assert_not(antar_text_ok("a\x01", 2, false));
    cr_assert_not(antar_text_ok("a\x7f", 2, false));
    cr_assert_not(antar_text_ok("a\nb", 3, false));
    cr_assert(antar_text_ok("a\nb", 3, true));
    cr_assert_not(antar_text_ok("\xc2\x85", 2, false));     /* C1 control NEL */
    cr_assert_not(antar_text_ok("\xc0\xaf", 2, false));     /* overlong */
    cr_assert_not(antar_text_ok("\xed\xa0\x80", 3, false)); /* surrogate */
    cr_assert_not(antar_text_ok("\xe2\x82", 2, false));     /* truncated */
    cr_assert_not(antar_text_ok("\xff", 1, false));
    cr_assert_not(antar_text_ok("a\0b", 3, false));
}
