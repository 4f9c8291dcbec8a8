/* http_envelope.c — the response envelope of DESIGN.md and the reply functions.
 *
 * antar_envelope is the only code that builds {"status","result","error"}; every reply path
 * goes through it so the shape cannot differ between endpoints. Replies are recorded in the
 * request and queued on the connection by the server once the handler has returned. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/log.h"
#include "antar/util.h"
#include "http_internal.h"

json_t *antar_envelope(int status, json_t *result, antar_err_t err, const char *field,
                       const char *message)
{
    json_t *env = json_object();
    if (!env) {
        json_decref(result);
        return NULL;
    }
    /* jansson keeps insertion order, which gives the documented key order. */
    json_object_set_new(env, "status", json_integer(status));
    if (err == ANTAR_OK) {
        json_object_set_new(env, "result", result ? result : json_null());
        json_object_set_new(env, "error", json_null());
    } else {
        json_decref(result);
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(antar_err_code(err)));
        json_t *m = json_string(message ? message : antar_err_message(err));
        /* A message built from client input might not be valid UTF-8; fall back rather than
         * lose the error. */
        json_object_set_new(e, "message", m ? m : json_string(antar_err_message(err)));
        json_t *f = field ? json_string(field) : NULL;
        json_object_set_new(e, "field", f ? f : json_null());
        json_object_set_new(env, "result", json_null());
        json_object_set_new(env, "error", e);
    }
    return env;
}

void antar_req_set_response(antar_req_t *req, int status, const char *content_type, char *body,
                            size_t len, bool envelope)
{
    if (req->replied) {
        /* A second reply is a handler bug; the first one already stands. */
        antar_logf("error", "second reply ignored on %s %s (status %d)", req->method,
                   req->route ? req->route->pattern : "-", status);
        free(body);
        return;
    }
    req->replied = true;
    req->status = status;
    req->resp_body = body;
    req->resp_len = len;
    req->envelope = envelope;
    snprintf(req->resp_type, sizeof(req->resp_type), "%s", content_type);
}

/* Serialises doc (stolen) as the response. */
static void reply_doc(antar_req_t *req, int status, json_t *doc, bool envelope)
{
    char *text = doc ? antar_json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        /* Out of memory: a fixed body still tells the client what happened. */
        static const char oom[] = "{\"status\":500,\"result\":null,\"error\":{\"code\":"
                                  "\"internal_error\",\"message\":\"out of memory\","
                                  "\"field\":null}}";
        text = strdup(oom);
        status = 500;
        if (!text)
            return;
    }
    antar_req_set_response(req, status, "application/json; charset=utf-8", text, strlen(text),
                           envelope);
}

void antar_http_reply(antar_req_t *req, int status, json_t *result)
{
    reply_doc(req, status, antar_envelope(status, result, ANTAR_OK, NULL, NULL), true);
}

/* The Indonesian message for err: the table's default, with field named. The English detail a
 * handler wrote (ranges, allowed values, which state) is free text and is not translated; the
 * field and the code still say what went wrong, and the English message has the rest. */
static void indonesian_message(char *out, size_t n, antar_err_t err, const char *field)
{
    if (!field) {
        snprintf(out, n, "%s", antar_err_message_lang(err, ANTAR_LANG_ID));
        return;
    }
    switch (err) {
    case ANTAR_E_MISSING_FIELD:
        snprintf(out, n, "%s wajib diisi", field);
        break;
    case ANTAR_E_INVALID_FIELD:
        snprintf(out, n, "nilai %s tidak valid", field);
        break;
    case ANTAR_E_UNKNOWN_FIELD:
        snprintf(out, n, "%s bukan field dari endpoint ini", field);
        break;
    case ANTAR_E_DUPLICATE:
        snprintf(out, n, "%s sudah terdaftar", field);
        break;
    default:
        snprintf(out, n, "%s (%s)", antar_err_message_lang(err, ANTAR_LANG_ID), field);
    }
}

void antar_http_fail(antar_req_t *req, antar_err_t err, const char *field, const char *fmt, ...)
{
    char msg[512];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    int status = antar_err_status(err);
    if (err == ANTAR_OK) {
        /* Failing with OK is a caller bug; do not send a success envelope for it. */
        err = ANTAR_E_INTERNAL;
        status = 500;
    }
    antar_lang_t lang = antar_lang_from_accept(antar_req_header(req, "Accept-Language"));
    if (!req->replied)
        req->error = err;
    if (status == 401)
        antar_http_add_header(req, "WWW-Authenticate", "Bearer");
    const char *up, *why;
    long retry_ms;
    if ((err == ANTAR_E_UNAVAILABLE || err == ANTAR_E_TIMEOUT || err == ANTAR_E_UPSTREAM) &&
        antar_err_noted_upstream(&up, &why, &retry_ms)) {
        /* Name the peer that failed: the client (and whoever reads the log) can tell a broken
         * dependency from this service failing. */
        if (!fmt || lang == ANTAR_LANG_ID) {
            const char *what =
                lang == ANTAR_LANG_ID
                    ? (!strcmp(why, "circuit_open")
                           ? "tidak tersedia (circuit terbuka, tidak dipanggil)"
                       : !strcmp(why, "unreachable") ? "tidak dapat dihubungi"
                       : !strcmp(why, "timeout")     ? "tidak menjawab tepat waktu"
                                                     : "gagal")
                    : (!strcmp(why, "circuit_open")  ? "is unavailable (circuit open, not called)"
                       : !strcmp(why, "unreachable") ? "is unreachable"
                       : !strcmp(why, "timeout")     ? "did not answer in time"
                                                     : "failed");
            snprintf(msg, sizeof(msg), "%s %s", up, what);
            fmt = msg;
        }
        if (retry_ms > 0) {
            char ra[24];
            snprintf(ra, sizeof ra, "%ld", (retry_ms + 999) / 1000);
            antar_http_add_header(req, "Retry-After", ra);
        }
    }
    if (lang == ANTAR_LANG_ID) {
        if (fmt != msg)
            indonesian_message(msg, sizeof msg, err, field);
        fmt = msg;
        antar_http_add_header(req, "Content-Language", "id");
    }
    reply_doc(req, status, antar_envelope(status, NULL, err, field, fmt ? msg : NULL), true);
}

void antar_http_reply_outcome(antar_req_t *req, antar_err_t err, int status, json_t *result,
                              const antar_outcome_t *o)
{
    if (err == ANTAR_OK) {
        antar_http_reply(req, status, result);
        return;
    }
    json_decref(result);
    bool own = o && o->err == err;
    const char *field = own && o->field[0] ? o->field : NULL;
    if (own && o->message[0])
        antar_http_fail(req, err, field, "%s", o->message);
    else
        antar_http_fail(req, err, field, NULL);
}

void antar_http_reply_json(antar_req_t *req, int status, json_t *doc)
{
    reply_doc(req, status, doc, false);
}

void antar_http_reply_raw(antar_req_t *req, int status, const char *content_type, const void *body,
                          size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        antar_http_fail(req, ANTAR_E_NOMEM, NULL, NULL);
        return;
    }
    if (len)
        memcpy(copy, body, len);
    antar_req_set_response(req, status, content_type ? content_type : "application/octet-stream",
                           copy, len, false);
}

void antar_http_add_header(antar_req_t *req, const char *name, const char *value)
{
    if (req->replied || !name || !value || req->nhdrs >= ANTAR_MAX_RESP_HEADERS)
        return;
    /* A header value with CR or LF would split the response: refuse it. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
        antar_logf("error", "refused response header %s with a line break", name);
        return;
    }
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    req->hdr_name[req->nhdrs] = n;
    req->hdr_value[req->nhdrs] = v;
    req->nhdrs++;
}

void antar_http_redirect(antar_req_t *req, int status, const char *location)
{
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
        status = 302;
    antar_http_add_header(req, "Location", location);
    antar_req_set_response(req, status, "text/plain; charset=utf-8", strdup(""), 0, false);
}
