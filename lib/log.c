/* log.c — one JSON object per line on stdout.
 *
 * Each line goes out in a single write() so that lines from concurrent threads never interleave
 * (POSIX keeps a single write to a pipe atomic up to PIPE_BUF; for files opened O_APPEND and
 * terminals the kernel serialises writes too). No lock is needed for that. */
#include "antar/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antar/trace.h"
#include "antar/util.h"

static char g_service[32] = "antar";

void antar_log_init(const char *service)
{
    if (service && *service)
        snprintf(g_service, sizeof(g_service), "%s", service);
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        buf += n;
        len -= (size_t)n;
    }
}

void antar_log_json(const char *level, const char *event, json_t *fields)
{
    char ts[32];
    antar_time_rfc3339(antar_now_ms(), ts);
    json_t *line = json_object();
    if (!line) {
        json_decref(fields);
        return;
    }
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level ? level : "info"));
    json_object_set_new(line, "service", json_string(g_service));
    json_object_set_new(line, "event", json_string(event ? event : "message"));
    const antar_trace_t *t = antar_trace_current();
    if (t) {
        json_object_set_new(line, "trace_id", json_string(t->trace_id));
        json_object_set_new(line, "span_id", json_string(t->span_id));
    }
    if (json_is_object(fields))
        json_object_update(line, fields);
    json_decref(fields);

    /* 9 significant digits: durations read "0.198", not "0.19800000000000001". */
    char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(line);
    if (!text)
        return;
    size_t len = strlen(text);
    /* Append the newline in place so the line is one buffer and one write(). */
    char *out = realloc(text, len + 2);
    if (!out) {
        free(text);
        return;
    }
    out[len] = '\n';
    out[len + 1] = '\0';
    write_all(out, len + 1);
    free(out);
}

void antar_logf(const char *level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A message may come from arbitrary bytes (an errno string, a peer's reply): make it valid
     * UTF-8 for jansson by replacing what it refuses, rather than dropping the whole line. */
    json_t *s = json_string(msg);
    if (!s) {
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        s = json_string(msg);
    }
    json_t *f = json_object();
    json_object_set_new(f, "msg", s ? s : json_string(""));
    antar_log_json(level, "message", f);
}
