/* antar_req_fields: every type, every rejection, the field named, outputs untouched on error. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../../lib/http_internal.h"

static const char *const vehicles[] = {"motorcycle", "car", NULL};

static const char *name;
static long long count;
static double lat;
static bool flag, flag_present;
static const char *vehicle;

static antar_field_t fields[] = {
    {"name", ANTAR_FIELD_STRING, true, 1, 10, NULL, &name, NULL},
    {"count", ANTAR_FIELD_INT, false, 1, 100, NULL, &count, NULL},
    {"lat", ANTAR_FIELD_NUMBER, false, -90, 90, NULL, &lat, NULL},
    {"flag", ANTAR_FIELD_BOOL, false, 0, 0, NULL, &flag, &flag_present},
    {"vehicle", ANTAR_FIELD_ENUM, false, 0, 0, vehicles, &vehicle, NULL},
};
#define NF (sizeof(fields) / sizeof(*fields))

static antar_req_t *req;

static void reset(void)
{
    name = vehicle = NULL;
    count = -1;
    lat = -1000;
    flag = false;
    flag_present = false;
}

/* Builds a request from a JSON text or a form text and runs the checks (the lenient ones when
 * lenient). */
static antar_err_t run_checks(const char *ct, const char *body, bool lenient)
{
    char msg[256], field[130];
    json_t *o = NULL;
    bool form = false;
    antar_err_t e =
        antar_body_parse(ct, body, strlen(body), &o, &form, msg, sizeof(msg), field, sizeof(field));
    cr_assert_eq(e, ANTAR_OK, "body did not parse: %s", msg);
    antar_req_free(req);
    req = antar_req_new_detached(NULL, "POST", "/t", o, form);
    reset();
    return lenient ? antar_req_fields_lenient(req, fields, NF) : antar_req_fields(req, fields, NF);
}

static antar_err_t run(const char *ct, const char *body)
{
    return run_checks(ct, body, false);
}

static antar_err_t json_(const char *body)
{
    return run("application/json", body);
}

static antar_err_t form_(const char *body)
{
    return run("application/x-www-form-urlencoded", body);
}

/* The reply is a 4xx envelope naming the field. */
static void assert_rejected(antar_err_t got, antar_err_t want, const char *field)
{
    cr_assert_eq(got, want, "error %d, want %d (%s)", got, want, req->resp_body);
    cr_assert_eq(req->status, antar_err_status(want));
    json_t *env = json_loads(req->resp_body, 0, NULL);
    cr_assert_not_null(env);
    json_t *err = json_object_get(env, "error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")), antar_err_code(want));
    if (field)
        cr_assert_str_eq(json_string_value(json_object_get(err, "field")), field, "%s",
                         req->resp_body);
    json_decref(env);
    /* outputs untouched */
    cr_assert_null(name);
    cr_assert_eq(count, -1);
}

static void fini(void)
{
    antar_req_free(req);
    req = NULL;
}

TestSuite(fields, .fini = fini);

Test(fields, json_all_types_ok)
{
    cr_assert_eq(json_("{\"name\":\"Sari\",\"count\":5,\"lat\":-6.2,\"flag\":true,"
                       "\"vehicle\":\"car\",\"csrf_token\":\"x\"}"),
                 ANTAR_OK, "%s", req->resp_body ? req->resp_body : "");
    cr_assert_str_eq(name, "Sari");
    cr_assert_eq(count, 5);
    cr_assert_float_eq(lat, -6.2, 1e-9);
    cr_assert(flag && flag_present);
    cr_assert_str_eq(vehicle, "car");
    cr_assert_not(req->replied);
}

Test(fields, form_all_types_ok)
{
    cr_assert_eq(form_("name=Sari&count=5&lat=-6.2&flag=false&vehicle=motorcycle"), ANTAR_OK);
    cr_assert_str_eq(name, "Sari");
    cr_assert_eq(count, 5);
    cr_assert_float_eq(lat, -6.2, 1e-9);
    cr_assert_not(flag);
    cr_assert(flag_present);
    cr_assert_str_eq(vehicle, "motorcycle");
}

Test(fields, optional_absent_untouched)
{
    cr_assert_eq(json_("{\"name\":\"\xc3\xa9\xc3\xa9\"}"), ANTAR_OK);
    cr_assert_eq(count, -1);
    cr_assert_not(flag_present);
    cr_assert_str_eq(name, "\xc3\xa9\xc3\xa9");
    /* integer JSON for a NUMBER field is fine */
    cr_assert_eq(json_("{\"name\":\"a\",\"lat\":45}"), ANTAR_OK);
    cr_assert_float_eq(lat, 45.0, 1e-9);
}

Test(fields, missing)
{
    assert_rejected(json_("{}"), ANTAR_E_MISSING_FIELD, "name");
    assert_rejected(form_(""), ANTAR_E_MISSING_FIELD, "name");
}

Test(fields, unknown)
{
    assert_rejected(json_("{\"name\":\"a\",\"nmae\":\"b\"}"), ANTAR_E_UNKNOWN_FIELD, "nmae");
    assert_rejected(form_("name=a&admin=true"), ANTAR_E_UNKNOWN_FIELD, "admin");
}

Test(fields, wrong_type_json)
{
    assert_rejected(json_("{\"name\":5}"), ANTAR_E_INVALID_FIELD, "name");
    assert_rejected(json_("{\"name\":\"a\",\"count\":\"5\"}"), ANTAR_E_INVALID_FIELD, "count");
    assert_rejected(json_("{\"name\":\"a\",\"count\":5.5}"), ANTAR_E_INVALID_FIELD, "count");
    assert_rejected(json_("{\"name\":\"a\",\"lat\":\"1\"}"), ANTAR_E_INVALID_FIELD, "lat");
    assert_rejected(json_("{\"name\":\"a\",\"flag\":1}"), ANTAR_E_INVALID_FIELD, "flag");
    assert_rejected(json_("{\"name\":\"a\",\"flag\":\"true\"}"), ANTAR_E_INVALID_FIELD, "flag");
    assert_rejected(json_("{\"name\":\"a\",\"vehicle\":1}"), ANTAR_E_INVALID_FIELD, "vehicle");
    assert_rejected(json_("{\"name\":null}"), ANTAR_E_INVALID_FIELD, "name");
    assert_rejected(json_("{\"name\":{}}"), ANTAR_E_INVALID_FIELD, "name");
}

Test(fields, out_of_range)
{
    assert_rejected(json_("{\"name\":\"\"}"), ANTAR_E_INVALID_FIELD, "name");
    assert_rejected(json_("{\"name\":\"12345678901\"}"), ANTAR_E_INVALID_FIELD, "name");
    assert_rejected(json_("{\"name\":\"a\",\"count\":0}"), ANTAR_E_INVALID_FIELD, "count");
    assert_rejected(json_("{\"name\":\"a\",\"count\":101}"), ANTAR_E_INVALID_FIELD, "count");
    assert_rejected(json_("{\"name\":\"a\",\"lat\":90.0001}"), ANTAR_E_INVALID_FIELD, "lat");
    assert_rejected(form_("name=a&lat=-91"), ANTAR_E_INVALID_FIELD, "lat");
    assert_rejected(form_("name=a&count=1000"), ANTAR_E_INVALID_FIELD, "count");
    assert_rejected(json_("{\"name\":\"a\",\"vehicle\":\"bus\"}"), ANTAR_E_INVALID_FIELD,
                    "vehicle");
}

Test(fields, form_numbers_strict)
{
    const char *bad_int[] = {"name=a&count=5x",   "name=a&count=+5",  "name=a&count=%205",
                             "name=a&count=5%20", "name=a&count=",    "name=a&count=0x10",
                             "name=a&count=5.0",  "name=a&count=5%00"};
    for (size_t i = 0; i < sizeof(bad_int) / sizeof(*bad_int); i++)
        assert_rejected(form_(bad_int[i]), ANTAR_E_INVALID_FIELD, "count");
    const char *bad_num[] = {"name=a&lat=1.5abc", "name=a&lat=nan",   "name=a&lat=inf",
                             "name=a&lat=0x1p3",  "name=a&lat=1e999", "name=a&lat=.5",
                             "name=a&lat=1.",     "name=a&lat=",      "name=a&lat=+1"};
    for (size_t i = 0; i < sizeof(bad_num) / sizeof(*bad_num); i++)
        assert_rejected(form_(bad_num[i]), ANTAR_E_INVALID_FIELD, "lat");
    assert_rejected(form_("name=a&flag=1"), ANTAR_E_INVALID_FIELD, "flag");
    assert_rejected(form_("name=a&flag=TRUE"), ANTAR_E_INVALID_FIELD, "flag");
    cr_assert_eq(form_("name=a&lat=1.5e1"), ANTAR_OK);
    cr_assert_float_eq(lat, 15.0, 1e-9);
}

Test(fields, control_chars_and_utf8)
{
    assert_rejected(json_("{\"name\":\"a\\u0001b\"}"), ANTAR_E_INVALID_FIELD, "name");
    assert_rejected(json_("{\"name\":\"a\\nb\"}"), ANTAR_E_INVALID_FIELD, "name");
    assert_rejected(json_("{\"name\":\"a\\u0085\"}"), ANTAR_E_INVALID_FIELD, "name");
    assert_rejected(form_("name=a%00b"), ANTAR_E_INVALID_FIELD, "name");
    assert_rejected(form_("name=a%7F"), ANTAR_E_INVALID_FIELD, "name");
    assert_rejected(json_("{\"name\":\"ok\",\"vehicle\":\"car\\t\"}"), ANTAR_E_INVALID_FIELD,
                    "vehicle");
}

Test(fields, string_length_counts_characters)
{
    /* ten 2-byte characters fit in max 10 */
    cr_assert_eq(json_("{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                       "\xc3\xa9\xc3\xa9\xc3\xa9\"}"),
                 ANTAR_OK);
}

Test(fields, email_and_phone)
{
    cr_assert(antar_valid_email("sari@example.co.id"));
    cr_assert(antar_valid_email("a.b+c@x.io"));
    cr_assert_not(antar_valid_email("sari@localhost"));
    cr_assert_not(antar_valid_email("@x.io"));
    cr_assert_not(antar_valid_email("a@@x.io"));
    cr_assert_not(antar_valid_email("a..b@x.io"));
    cr_assert_not(antar_valid_email("a@-x.io"));
    cr_assert_not(antar_valid_email("a b@x.io"));
    cr_assert_not(antar_valid_email("a@x.i"));
    cr_assert(antar_valid_phone("+6281234567890"));
    cr_assert(antar_valid_phone("08123456"));
    cr_assert_not(antar_valid_phone("0812345"));
    cr_assert_not(antar_valid_phone("+62 812"));
    cr_assert_not(antar_valid_phone("1234567890123456"));
}

/* Found by tests/fuzz/fuzz_fields: an INT field without bounds is documented as limited to
 * ±2^53, but the limit was compared as a double, and 2^53 + 1 rounds to 2^53, so it passed. */
static antar_err_t run_unbounded_int(const char *ct, const char *body, long long *out)
{
    char msg[256], field[130];
    json_t *o = NULL;
    bool form = false;
    cr_assert_eq(
        antar_body_parse(ct, body, strlen(body), &o, &form, msg, sizeof(msg), field, sizeof(field)),
        ANTAR_OK, "%s", msg);
    antar_req_free(req);
    req = antar_req_new_detached(NULL, "POST", "/t", o, form);
    antar_field_t f[] = {{"big", ANTAR_FIELD_INT, true, 0, 0, NULL, out, NULL}};
    return antar_req_fields(req, f, 1);
}

Test(fields, unbounded_int_limit_is_exact)
{
    long long v = -1;
    cr_assert_eq(run_unbounded_int("application/json", "{\"big\":9007199254740992}", &v), ANTAR_OK);
    cr_assert_eq(v, 9007199254740992LL);
    cr_assert_eq(run_unbounded_int("application/json", "{\"big\":-9007199254740992}", &v),
                 ANTAR_OK);
    cr_assert_eq(v, -9007199254740992LL);
    const char *bad[][2] = {
        {"application/json", "{\"big\":9007199254740993}"},
        {"application/json", "{\"big\":-9007199254740993}"},
        {"application/json", "{\"big\":9223372036854775807}"},
        {"application/x-www-form-urlencoded", "big=9007199254740993"},
        {"application/x-www-form-urlencoded", "big=-9223372036854775808"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        v = -1;
        cr_assert_eq(run_unbounded_int(bad[i][0], bad[i][1], &v), ANTAR_E_INVALID_FIELD, "%s",
                     bad[i][1]);
        cr_assert_eq(req->status, 422);
        cr_assert(strstr(req->resp_body, "\"field\":\"big\""), "%s", req->resp_body);
        cr_assert_eq(v, -1, "output written on failure");
    }
}

/* ---- antar_req_fields_lenient: service-to-service bodies ---------------------------------- */

static antar_err_t lenient_(const char *body)
{
    return run_checks("application/json", body, true);
}

Test(fields, lenient_ignores_unknown_fields)
{
    cr_assert_eq(lenient_("{\"name\":\"Sari\",\"added_in_v2\":{\"x\":[1,2]},\"nmae\":5}"), ANTAR_OK,
                 "%s", req->resp_body ? req->resp_body : "");
    cr_assert_str_eq(name, "Sari");
    cr_assert_not(req->replied);
    /* the strict reader still refuses the same body */
    assert_rejected(json_("{\"name\":\"Sari\",\"added_in_v2\":1}"), ANTAR_E_UNKNOWN_FIELD,
                    "added_in_v2");
}

Test(fields, lenient_takes_numeric_strings)
{
    cr_assert_eq(lenient_("{\"name\":\"a\",\"count\":\"42\",\"lat\":\"-6.2\",\"flag\":\"false\"}"),
                 ANTAR_OK, "%s", req->resp_body ? req->resp_body : "");
    cr_assert_eq(count, 42);
    cr_assert_float_eq(lat, -6.2, 1e-9);
    cr_assert(flag_present);
    cr_assert_not(flag);
    cr_assert_eq(lenient_("{\"name\":\"a\",\"lat\":\"1.5e1\",\"flag\":\"true\"}"), ANTAR_OK);
    cr_assert_float_eq(lat, 15.0, 1e-9);
    cr_assert(flag);
    /* JSON numbers and booleans are of course still fine */
    cr_assert_eq(lenient_("{\"name\":\"a\",\"count\":7,\"lat\":45,\"flag\":true}"), ANTAR_OK);
    cr_assert_eq(count, 7);
    cr_assert_float_eq(lat, 45.0, 1e-9);
}

Test(fields, lenient_null_is_absent)
{
    cr_assert_eq(lenient_("{\"name\":\"a\",\"count\":null,\"flag\":null}"), ANTAR_OK);
    cr_assert_eq(count, -1);
    cr_assert_not(flag_present);
    assert_rejected(lenient_("{\"name\":null}"), ANTAR_E_MISSING_FIELD, "name");
    assert_rejected(lenient_("{\"count\":3}"), ANTAR_E_MISSING_FIELD, "name");
}

Test(fields, lenient_still_rejects_the_rest)
{
    /* {body, field named}: numeric strings only when the whole string is the number, and
     * strings themselves are not relaxed (type, length, control characters, choices). */
    static const char *const bad[][2] = {
        {"{\"name\":\"a\",\"count\":\"5x\"}", "count"},
        {"{\"name\":\"a\",\"count\":\" 5\"}", "count"},
        {"{\"name\":\"a\",\"count\":\"5 \"}", "count"},
        {"{\"name\":\"a\",\"count\":\"+5\"}", "count"},
        {"{\"name\":\"a\",\"count\":\"0x10\"}", "count"},
        {"{\"name\":\"a\",\"count\":\"5.0\"}", "count"},
        {"{\"name\":\"a\",\"count\":\"\"}", "count"},
        {"{\"name\":\"a\",\"count\":5.5}", "count"},
        {"{\"name\":\"a\",\"count\":\"101\"}", "count"},
        {"{\"name\":\"a\",\"count\":\"0\"}", "count"},
        {"{\"name\":\"a\",\"count\":true}", "count"},
        {"{\"name\":\"a\",\"count\":[5]}", "count"},
        {"{\"name\":\"a\",\"lat\":\"nan\"}", "lat"},
        {"{\"name\":\"a\",\"lat\":\"inf\"}", "lat"},
        {"{\"name\":\"a\",\"lat\":\"1e999\"}", "lat"},
        {"{\"name\":\"a\",\"lat\":\"0x1p3\"}", "lat"},
        {"{\"name\":\"a\",\"lat\":\".5\"}", "lat"},
        {"{\"name\":\"a\",\"lat\":\"91\"}", "lat"},
        {"{\"name\":\"a\",\"lat\":{}}", "lat"},
        {"{\"name\":\"a\",\"flag\":1}", "flag"},
        {"{\"name\":\"a\",\"flag\":\"yes\"}", "flag"},
        {"{\"name\":5}", "name"},
        {"{\"name\":\"12345678901\"}", "name"},
        {"{\"name\":\"a\\nb\"}", "name"},
        {"{\"name\":\"a\",\"vehicle\":\"bus\"}", "vehicle"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_rejected(lenient_(bad[i][0]), ANTAR_E_INVALID_FIELD, bad[i][1]);
}

Test(fields, lenient_outputs_untouched_on_error)
{
    /* name is valid and listed first, but count fails: nothing is written */
    assert_rejected(lenient_("{\"name\":\"Sari\",\"count\":\"x\"}"), ANTAR_E_INVALID_FIELD,
                    "count");
}

Test(fields, email_normalize)
{
    char e[] = "Sari.Dewi+Ojek@Example.CO.ID";
    antar_email_normalize(e);
    cr_assert_str_eq(e, "sari.dewi+ojek@example.co.id");
    /* non-ASCII bytes are left alone, byte for byte */
    char u[] = "\xc3\x89t\xc3\xa9@X.io";
    antar_email_normalize(u);
    cr_assert_str_eq(u, "\xc3\x89t\xc3\xa9@x.io");
    char empty[] = "";
    antar_email_normalize(empty);
    cr_assert_str_eq(empty, "");
    antar_email_normalize(NULL);
}
