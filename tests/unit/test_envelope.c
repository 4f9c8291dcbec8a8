/* The envelope's exact shape, the error table, and the reply functions' bookkeeping. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/http_internal.h"

static void assert_dump(json_t *v, const char *want)
{
    char *s = json_dumps(v, JSON_COMPACT);
    cr_assert_str_eq(s, want);
    free(s);
    json_decref(v);
}

Test(envelope, success_shape)
{
    json_t *r = json_pack("{s:i,s:s}", "id", 17, "name", "Sari");
    assert_dump(antar_envelope(200, r, ANTAR_OK, NULL, NULL),
                "{\"status\":200,\"result\":{\"id\":17,\"name\":\"Sari\"},\"error\":null}");
    assert_dump(antar_envelope(204, NULL, ANTAR_OK, NULL, NULL),
                "{\"status\":204,\"result\":null,\"error\":null}");
}

Test(envelope, error_shape)
{
    assert_dump(antar_envelope(422, NULL, ANTAR_E_INVALID_FIELD, "pickup_lat",
                               "pickup_lat must be between -90 and 90"),
                "{\"status\":422,\"result\":null,\"error\":{\"code\":\"invalid_field\","
                "\"message\":\"pickup_lat must be between -90 and 90\",\"field\":\"pickup_lat\"}}");
    /* default message, no field; a result passed with an error is dropped */
    assert_dump(antar_envelope(404, json_object(), ANTAR_E_NOT_FOUND, NULL, NULL),
                "{\"status\":404,\"result\":null,\"error\":{\"code\":\"not_found\","
                "\"message\":\"no such resource\",\"field\":null}}");
}

Test(envelope, error_table)
{
    cr_assert_eq(antar_err_status(ANTAR_E_TOO_LARGE), 413);
    cr_assert_str_eq(antar_err_code(ANTAR_E_UNSUPPORTED_MEDIA_TYPE), "unsupported_media_type");
    cr_assert_eq(antar_err_status(ANTAR_E_CSRF_INVALID), 403);
    cr_assert_eq(antar_err_status((antar_err_t)9999), 500);
    cr_assert_eq(antar_err_status((antar_err_t)-1), 500);
    cr_assert_str_eq(antar_err_code((antar_err_t)9999), "internal_error");
    cr_assert_not_null(antar_err_message(ANTAR_E__COUNT));
}

Test(envelope, fail_records_reply_and_first_wins)
{
    antar_req_t *r = antar_req_new_detached(NULL, "GET", "/x?y=1", NULL, false);
    cr_assert_str_eq(antar_req_path(r), "/x");
    antar_http_fail(r, ANTAR_E_UNAUTHORIZED, NULL, "need a %s", "token");
    cr_assert_eq(r->status, 401);
    cr_assert(r->envelope);
    cr_assert_str_eq(r->resp_type, "application/json; charset=utf-8");
    cr_assert_str_eq(r->resp_body,
                     "{\"status\":401,\"result\":null,\"error\":{\"code\":"
                     "\"unauthorized\",\"message\":\"need a token\",\"field\":null}}");
    cr_assert_eq(r->nhdrs, 1);
    cr_assert_str_eq(r->hdr_name[0], "WWW-Authenticate");
    cr_assert_str_eq(r->hdr_value[0], "Bearer");
    antar_http_reply(r, 200, json_object()); /* ignored: first reply wins */
    cr_assert_eq(r->status, 401);
    antar_req_free(r);
}

Test(envelope, header_injection_refused)
{
    antar_req_t *r = antar_req_new_detached(NULL, "GET", "/x", NULL, false);
    antar_http_add_header(r, "X-A", "ok\r\nSet-Cookie: x");
    cr_assert_eq(r->nhdrs, 0);
    antar_http_redirect(r, 303, "/next");
    cr_assert_eq(r->status, 303);
    cr_assert_str_eq(r->hdr_value[0], "/next");
    antar_req_free(r);
}

Test(envelope, request_memory)
{
    antar_req_t *r = antar_req_new_detached(NULL, "GET", "/x", NULL, false);
    char *s = antar_req_strdup(r, "hello");
    cr_assert_str_eq(s, "hello");
    json_t *k = antar_req_keep(r, json_string("kept"));
    cr_assert_str_eq(json_string_value(k), "kept");
    cr_assert(json_is_object(antar_req_body(r)));
    antar_req_free(r); /* ASan checks nothing leaks */
}
