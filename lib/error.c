/* error.c — the only place where an antar_err_t gets its HTTP status, wire code and message.
 * Everything comes from ANTAR_ERROR_MAP so the three tables cannot drift apart. */
#include "antar/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

antar_err_t antar_outcome_fail(antar_outcome_t *o, antar_err_t err, const char *field,
                               const char *fmt, ...)
{
    if (!o)
        return err;
    o->err = err;
    snprintf(o->field, sizeof o->field, "%s", field ? field : "");
    o->message[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(o->message, sizeof o->message, fmt, ap);
        va_end(ap);
    }
    return err;
}

antar_err_t antar_err_from_code(const char *code)
{
    for (int e = 0; code && e < ANTAR_E__COUNT; e++)
        if (!strcmp(err_code[e], code))
            return (antar_err_t)e;
    return ANTAR_E__COUNT;
}

/* ---- Indonesian messages ------------------------------------------------------------------
 * One per error, by enum name; tests/unit/test_error.c checks that none is missing, and
 * scripts/gen_errors.py reads this table into docs/errors.md. */
static const char *const err_msg_id[ANTAR_E__COUNT] = {
    [ANTAR_E_OK] = "ok",
    [ANTAR_E_BAD_REQUEST] = "format permintaan salah",
    [ANTAR_E_MALFORMED_JSON] = "body bukan JSON yang valid",
    [ANTAR_E_UNAUTHORIZED] = "diperlukan bearer token yang valid",
    [ANTAR_E_INVALID_TOKEN] = "access token tidak valid, kedaluwarsa, atau sudah dicabut",
    [ANTAR_E_FORBIDDEN] = "token ini tidak boleh melakukan itu",
    [ANTAR_E_CSRF_INVALID] = "diperlukan token CSRF yang valid",
    [ANTAR_E_NOT_FOUND] = "data tidak ditemukan",
    [ANTAR_E_METHOD_NOT_ALLOWED] = "metode ini tidak diizinkan pada path ini",
    [ANTAR_E_CONFLICT] = "keadaan data saat ini tidak mengizinkan tindakan ini",
    [ANTAR_E_DUPLICATE] = "data dengan nilai itu sudah ada",
    [ANTAR_E_TOO_LARGE] = "body permintaan terlalu besar",
    [ANTAR_E_UNSUPPORTED_MEDIA_TYPE] =
        "gunakan application/json atau application/x-www-form-urlencoded",
    [ANTAR_E_INVALID_FIELD] = "ada field dengan nilai yang tidak valid",
    [ANTAR_E_MISSING_FIELD] = "ada field wajib yang belum diisi",
    [ANTAR_E_UNKNOWN_FIELD] = "body berisi field yang tidak diterima endpoint ini",
    [ANTAR_E_TOO_MANY_REQUESTS] = "terlalu banyak percobaan, coba lagi nanti",
    [ANTAR_E_INTERNAL] = "terjadi kesalahan internal",
    [ANTAR_E_UPSTREAM] = "layanan yang dibutuhkan permintaan ini gagal",
    [ANTAR_E_UNAVAILABLE] = "ada dependensi yang sedang tidak tersedia",
    [ANTAR_E_TIMEOUT] = "layanan yang dibutuhkan permintaan ini tidak menjawab tepat waktu",
    [ANTAR_E_NOMEM] = "memori habis",
    [ANTAR_E_DB] = "database sedang tidak tersedia",
    [ANTAR_E_KV] = "redis sedang tidak tersedia",
    [ANTAR_E_GONE] = "data sudah tidak tersedia",
    [ANTAR_E_PRECONDITION] = "prasyarat tidak terpenuhi",
    [ANTAR_E_INVALID_CREDENTIALS] = "username atau password salah",
    [ANTAR_E_NOT_YET] = "data belum mencapai status yang dibutuhkan; coba lagi nanti",
    [ANTAR_E_NOT_ACCEPTABLE] = "header Accept menolak semua jenis jawaban yang tersedia",
    [ANTAR_E_DB_BUSY] =
        "database mendahulukan perubahan lain; tidak ada yang diterapkan, kirim ulang",
};

const char *antar_err_message_lang(antar_err_t err, antar_lang_t lang)
{
    if (lang == ANTAR_LANG_ID && in_range(err) && err_msg_id[err])
        return err_msg_id[err];
    return antar_err_message(err);
}

/* q-value of one Accept-Language element's parameters (";q=0.8"); 1 when absent, -1 when
 * malformed (the element is then ignored, as RFC 9110 allows for an invalid one). */
static double accept_q(const char *params, size_t len)
{
    double q = 1.0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (params[i] == ';' || params[i] == ' ' || params[i] == '\t'))
            i++;
        if (i + 1 < len && (params[i] == 'q' || params[i] == 'Q') && params[i + 1] == '=') {
            i += 2;
            /* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
            if (i >= len || (params[i] != '0' && params[i] != '1'))
                return -1;
            q = params[i++] - '0';
            if (i < len && params[i] == '.') {
                i++;
                double scale = 0.1;
                for (int d = 0; d < 3 && i < len && params[i] >= '0' && params[i] <= '9'; d++) {
                    q += (params[i++] - '0') * scale;
                    scale /= 10;
                }
            }
            if (q > 1.0)
                return -1;
        }
        while (i < len && params[i] != ';')
            i++;
    }
    return q;
}

/* Whether tag (len bytes) is lang or a subtag of it ("id", "id-ID"), case-insensitively. */
static int tag_is(const char *tag, size_t len, const char *lang)
{
    size_t l = strlen(lang);
    if (len < l || strncasecmp(tag, lang, l) != 0)
        return 0;
    return len == l || tag[l] == '-';
}

antar_lang_t antar_lang_from_accept(const char *v)
{
    if (!v)
        return ANTAR_LANG_EN;
    double best_id = 0, best_en = 0;
    int id_first = 0, seen_any = 0; /* which language reached its best q first */
    /* Bounded: a header longer than this is not a real browser's; the rest is ignored. */
    size_t total = strnlen(v, 1024);
    size_t i = 0;
    while (i < total) {
        while (i < total && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t start = i;
        while (i < total && v[i] != ',')
            i++;
        size_t end = i, tag_end = start;
        while (tag_end < end && v[tag_end] != ';' && v[tag_end] != ' ' && v[tag_end] != '\t')
            tag_end++;
        if (tag_end == start)
            continue;
        double q = accept_q(v + tag_end, end - tag_end);
        if (q <= 0)
            continue;
        const char *tag = v + start;
        size_t tl = tag_end - start;
        if (tag_is(tag, tl, "id") || tag_is(tag, tl, "in")) {
            if (q > best_id) {
                best_id = q;
                if (!seen_any || q > best_en)
                    id_first = 1;
            }
        } else if (tag_is(tag, tl, "en") || (tl == 1 && tag[0] == '*')) {
            if (q > best_en) {
                best_en = q;
                if (!seen_any || q > best_id)
                    id_first = 0;
            }
        } else {
            continue;
        }
        seen_any = 1;
    }
    if (best_id > best_en || (best_id > 0 && best_id == best_en && id_first))
        return ANTAR_LANG_ID;
    return ANTAR_LANG_EN;
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
