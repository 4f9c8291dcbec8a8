/* The outcome of a domain call (lib/error.c antar_outcome_fail, lib/http_envelope.c
 * antar_http_reply_outcome) and what a peer's answer means (lib/httpc.c antar_httpc_outcome),
 * against a tiny HTTP server on 127.0.0.1 (test_support.h). Needs no database. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "../../lib/http_internal.h"
#include "antar/config.h"
#include "antar/httpc.h"
#include "antar/log.h"
#include "test_support.h"

/* ---- the outcome and its reply ---------------------------------------------------------- */

Test(outcome, fail_records_and_returns_the_error)
{
    antar_outcome_t o = {0};
    cr_assert_eq(antar_outcome_fail(&o, ANTAR_E_CONFLICT, "driver_id", "the order is %s", "taken"),
                 ANTAR_E_CONFLICT);
    cr_assert_eq(o.err, ANTAR_E_CONFLICT);
    cr_assert_str_eq(o.field, "driver_id");
    cr_assert_str_eq(o.message, "the order is taken");
    cr_assert_eq(antar_outcome_fail(&o, ANTAR_E_NOT_FOUND, NULL, NULL), ANTAR_E_NOT_FOUND);
    cr_assert_str_eq(o.field, "", "a later failure clears the field");
    cr_assert_str_eq(o.message, "", "and the message (the default)");
    cr_assert_eq(antar_outcome_fail(NULL, ANTAR_E_DB, "x", "y"), ANTAR_E_DB,
                 "NULL records nothing");
    char longer[400];
    memset(longer, 'm', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    antar_outcome_fail(&o, ANTAR_E_INVALID_FIELD, longer, "%s", longer);
    cr_assert_eq(strlen(o.field), ANTAR_OUTCOME_FIELD_MAX - 1, "cut to fit");
    cr_assert_eq(strlen(o.message), ANTAR_OUTCOME_MESSAGE_MAX - 1, "cut to fit");
}

Test(outcome, codes_map_back_to_errors)
{
    cr_assert_eq(antar_err_from_code("invalid_field"), ANTAR_E_INVALID_FIELD);
    cr_assert_eq(antar_err_from_code("state_pending"), ANTAR_E_NOT_YET);
    cr_assert_eq(antar_err_from_code("internal_error"), ANTAR_E_INTERNAL, "the first of two");
    cr_assert_eq(antar_err_from_code("no_such_code"), ANTAR_E__COUNT);
    cr_assert_eq(antar_err_from_code(NULL), ANTAR_E__COUNT);
}

/* The envelope a reply left in r. */
static void assert_body(antar_req_t *r, int status, const char *want)
{
    cr_assert_eq(r->status, status, "status %d, want %d", r->status, status);
    cr_assert_str_eq(r->resp_body, want);
    antar_req_free(r);
}

Test(outcome, reply_success_steals_the_result)
{
    antar_req_t *r = antar_req_new_detached(NULL, "POST", "/x", NULL, false);
    antar_outcome_t o = {0};
    antar_http_reply_outcome(r, ANTAR_OK, 201, json_pack("{s:i}", "id", 7), &o);
    assert_body(r, 201, "{\"status\":201,\"result\":{\"id\":7},\"error\":null}");
}

Test(outcome, reply_error_with_field_and_message)
{
    antar_req_t *r = antar_req_new_detached(NULL, "POST", "/x", NULL, false);
    antar_outcome_t o = {0};
    json_t *partial = json_object(); /* a result passed with an error is released */
    antar_err_t err = antar_outcome_fail(&o, ANTAR_E_DUPLICATE, "email",
                                         "an account with this email already exists");
    antar_http_reply_outcome(r, err, 201, partial, &o);
    assert_body(r, 409,
                "{\"status\":409,\"result\":null,\"error\":{\"code\":\"duplicate\",\"message\":"
                "\"an account with this email already exists\",\"field\":\"email\"}}");
}

Test(outcome, reply_error_without_outcome_uses_the_default)
{
    antar_req_t *r = antar_req_new_detached(NULL, "GET", "/x", NULL, false);
    antar_http_reply_outcome(r, ANTAR_E_NOT_FOUND, 200, NULL, NULL);
    assert_body(r, 404,
                "{\"status\":404,\"result\":null,\"error\":{\"code\":\"not_found\",\"message\":"
                "\"no such resource\",\"field\":null}}");
    /* Recorded for another error: not used for this one. */
    r = antar_req_new_detached(NULL, "GET", "/x", NULL, false);
    antar_outcome_t o = {0};
    antar_outcome_fail(&o, ANTAR_E_CONFLICT, "status", "stale");
    antar_http_reply_outcome(r, ANTAR_E_DB, 200, NULL, &o);
    assert_body(r, 503,
                "{\"status\":503,\"result\":null,\"error\":{\"code\":\"database_unavailable\","
                "\"message\":\"the database is unavailable\",\"field\":null}}");
    /* A field without a message: the default message, the field named. */
    r = antar_req_new_detached(NULL, "GET", "/x", NULL, false);
    antar_outcome_fail(&o, ANTAR_E_INVALID_FIELD, "plate_number", NULL);
    antar_http_reply_outcome(r, ANTAR_E_INVALID_FIELD, 200, NULL, &o);
    assert_body(r, 422,
                "{\"status\":422,\"result\":null,\"error\":{\"code\":\"invalid_field\","
                "\"message\":\"a field has an invalid value\",\"field\":\"plate_number\"}}");
}

/* ---- a peer's answer -------------------------------------------------------------------- */

static void route(int fd, const test_req_t *r)
{
    if (!strcmp(r->path, "/ok"))
        test_srv_reply(fd, 200, "application/json",
                       "{\"status\":200,\"result\":{\"id\":1},\"error\":null}");
    else if (!strcmp(r->path, "/ok-not-json"))
        test_srv_reply(fd, 200, "text/plain", "fine");
    else if (!strcmp(r->path, "/field"))
        test_srv_reply(fd, 422, "application/json",
                       "{\"status\":422,\"result\":null,\"error\":{\"code\":\"invalid_field\","
                       "\"message\":\"quote_id is unknown\",\"field\":\"quote_id\"}}");
    else if (!strcmp(r->path, "/dup"))
        test_srv_reply(fd, 409, "application/json",
                       "{\"status\":409,\"result\":null,\"error\":{\"code\":\"duplicate\","
                       "\"message\":\"taken\",\"field\":\"email\"}}");
    else if (!strcmp(r->path, "/liar"))
        /* A code the table gives another status: the status wins. */
        test_srv_reply(fd, 409, "application/json",
                       "{\"status\":409,\"result\":null,\"error\":{\"code\":\"not_found\","
                       "\"message\":\"gone\",\"field\":null}}");
    else if (!strcmp(r->path, "/creds"))
        test_srv_reply(fd, 401, "application/json",
                       "{\"status\":401,\"result\":null,\"error\":{\"code\":"
                       "\"invalid_credentials\",\"message\":\"no\",\"field\":null}}");
    else if (!strcmp(r->path, "/empty404"))
        test_srv_reply(fd, 404, "application/json", "");
    else if (!strcmp(r->path, "/teapot"))
        test_srv_reply(fd, 418, "text/plain", "short and stout");
    else if (!strcmp(r->path, "/broken422"))
        test_srv_reply(fd, 422, "application/json", "{\"status\":422,\"error\":{\"code\":");
    else if (!strcmp(r->path, "/down"))
        test_srv_reply(fd, 503, "application/json",
                       "{\"status\":503,\"result\":null,\"error\":{\"code\":"
                       "\"database_unavailable\",\"message\":\"the database is unavailable\","
                       "\"field\":null}}");
    else if (!strcmp(r->path, "/gateway"))
        test_srv_reply(fd, 504, "application/json", "");
    else if (!strcmp(r->path, "/crash"))
        test_srv_reply(fd, 500, "application/json",
                       "{\"status\":500,\"result\":null,\"error\":{\"code\":\"internal_error\","
                       "\"message\":\"internal error\",\"field\":\"secret\"}}");
    else if (!strcmp(r->path, "/slow")) {
        sleep(2);
        test_srv_reply(fd, 200, "application/json", "{}");
    } else
        test_srv_reply(fd, 404, "application/json", "{}");
}

static antar_config_t cfg;

static int no_token(char *buf, size_t len)
{
    (void)buf;
    (void)len;
    return -1;
}

static void setup(void)
{
    test_httpc_start(&cfg, route, 0);
}

static void teardown(void)
{
    antar_httpc_thread_end();
}

TestSuite(peer, .init = setup, .fini = teardown);

/* POST (never retried) path on target; the outcome's error, o filled. */
static antar_err_t ask(antar_svc_t target, const char *path, antar_outcome_t *o)
{
    antar_httpc_res_t res;
    json_t *body = json_object();
    antar_err_t call = antar_httpc_call(target, "POST", path, body, NULL, &res);
    json_decref(body);
    *o = (antar_outcome_t){.err = ANTAR_OK};
    antar_err_t err = antar_httpc_outcome(call, &res, o);
    antar_httpc_res_clean(&res);
    return err;
}

static void assert_outcome(const char *path, antar_err_t want, const char *field, const char *msg)
{
    antar_outcome_t o;
    antar_err_t err = ask(ANTAR_SVC_CORE, path, &o);
    cr_assert_eq(err, want, "%s: error %s, want %s", path, antar_err_code(err),
                 antar_err_code(want));
    cr_assert_eq(o.err, want, "%s: the outcome records it", path);
    cr_assert_str_eq(o.field, field, "%s: field", path);
    cr_assert_str_eq(o.message, msg, "%s: message", path);
}

Test(peer, success_leaves_the_outcome_alone)
{
    antar_outcome_t o;
    cr_assert_eq(ask(ANTAR_SVC_CORE, "/ok", &o), ANTAR_OK);
    cr_assert_eq(o.err, ANTAR_OK);
    /* A 2xx that is not JSON is still an answer: the caller finds no result. */
    cr_assert_eq(ask(ANTAR_SVC_CORE, "/ok-not-json", &o), ANTAR_OK);
}

Test(peer, refusals_with_an_envelope_keep_code_field_and_message)
{
    assert_outcome("/field", ANTAR_E_INVALID_FIELD, "quote_id", "quote_id is unknown");
    assert_outcome("/dup", ANTAR_E_DUPLICATE, "email", "taken");
    assert_outcome("/creds", ANTAR_E_INVALID_CREDENTIALS, "", "no");
    assert_outcome("/liar", ANTAR_E_CONFLICT, "", "gone");
}

Test(peer, refusals_without_an_envelope_go_by_status)
{
    assert_outcome("/empty404", ANTAR_E_NOT_FOUND, "", "");
    assert_outcome("/teapot", ANTAR_E_BAD_REQUEST, "", "");
    /* Malformed JSON from the peer: the status alone. */
    assert_outcome("/broken422", ANTAR_E_INVALID_FIELD, "", "");
    cr_assert_lt(antar_err_status(ANTAR_E_BAD_REQUEST), 500, "refusals are the 4xx errors");
}

Test(peer, failures_never_take_the_peers_code)
{
    assert_outcome("/down", ANTAR_E_UNAVAILABLE, "", "");
    assert_outcome("/gateway", ANTAR_E_TIMEOUT, "", "");
    assert_outcome("/crash", ANTAR_E_UPSTREAM, "", "");
}

Test(peer, transport_failures)
{
    antar_outcome_t o;
    cr_assert_eq(ask(ANTAR_SVC_CORE, "/slow", &o), ANTAR_E_TIMEOUT);
    cr_assert_eq(o.err, ANTAR_E_TIMEOUT);
    cr_assert_eq(ask(ANTAR_SVC_USER, "/ok", &o), ANTAR_E_UNAVAILABLE, "connection refused");
    cr_assert_eq(o.err, ANTAR_E_UNAVAILABLE);
    antar_httpc_set_token_provider(no_token);
    cr_assert_eq(ask(ANTAR_SVC_CORE, "/ok", &o), ANTAR_E_UNAVAILABLE,
                 "no service token of our own: the peer cannot be asked");
}
