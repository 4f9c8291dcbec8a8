/* error.c — the only place where an antar_err_t gets its HTTP status, wire code and message.
 * Everything comes from ANTAR_ERROR_MAP so the three tables cannot drift apart. */
#include "antar/error.h"

#include <stdio.h>
#include <string.h>

#include "antar/trace.h"

static const int err_status[] = {
#define X(name, status, code, msg) status,
    ANTAR_ERROR_MAP(X)
#undef X
};

static const char *const err_code[] = {
#define X(name, status, code, msg) code,
    ANTAR_ERROR_MAP(X)
#undef X
};

static const char *const err_msg[] = {
#define X(name, status, code, msg) msg,
    ANTAR_ERROR_MAP(X)
#undef X
};

/* An out-of-range value is a programming error; answer like INTERNAL rather than read past the
 * tables. The cast to unsigned also catches negative values. */
static int in_range(antar_err_t err)
{
    return (unsigned)err < (unsigned)ANTAR_E__COUNT;
}

int antar_err_status(antar_err_t err)
{
    return in_range(err) ? err_status[err] : 500;
}

const char *antar_err_code(antar_err_t err)
{
    return in_range(err) ? err_code[err] : "internal_error";
}

const char *antar_err_message(antar_err_t err)
{
    return in_range(err) ? err_msg[err] : "internal error";
}

/* ---- the upstream behind a 502/503/504 ---------------------------------------------------- */

static _Thread_local struct {
    char span[17]; /* the request the note belongs to; "" = none */
    const char *upstream;
    const char *reason;
    long retry_after_ms;
} note;

void antar_err_note_upstream(const char *upstream, const char *reason, long retry_after_ms)
{
    const antar_trace_t *t = antar_trace_current();
    if (!upstream || !t) {
        note.span[0] = '\0';
        return;
    }
    snprintf(note.span, sizeof note.span, "%s", t->span_id);
    note.upstream = upstream;
    note.reason = reason ? reason : "error";
    note.retry_after_ms = retry_after_ms;
}

int antar_err_noted_upstream(const char **upstream, const char **reason, long *retry_after_ms)
{
    const antar_trace_t *t = antar_trace_current();
    if (!note.span[0] || !t || strcmp(note.span, t->span_id) != 0)
        return 0;
    *upstream = note.upstream;
    *reason = note.reason;
    *retry_after_ms = note.retry_after_ms;
    return 1;
}
