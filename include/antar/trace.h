/* antar/trace.h — W3C trace context (traceparent) for requests and outgoing calls.
 *
 * The server sets the thread's current trace for each request: the incoming traceparent's
 * trace-id with a new span-id (its parent-id kept), or a fresh trace when the header is absent
 * or invalid. The HTTP client sends "00-<trace_id>-<new span id>-<flags>" on every call.
 * Background workers call antar_trace_begin for each unit of work.
 */
#ifndef ANTAR_TRACE_H
#define ANTAR_TRACE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char trace_id[33];  /* 32 lowercase hex */
    char span_id[17];   /* 16 lowercase hex: this service's span */
    char parent_id[17]; /* the caller's span, "" when this trace started here */
    char flags[3];      /* "01" */
} antar_trace_t;

/* Parse a traceparent header into t (new span id, parent = the header's span). Returns false
 * and starts a fresh trace in t when header is NULL or invalid. */
bool antar_trace_from_header(antar_trace_t *t, const char *header);
/* A fresh trace. */
void antar_trace_new(antar_trace_t *t);
/* The traceparent to send on an outgoing call from t, with a new child span id written to
 * child_span (17 bytes). out must hold 56 bytes. */
void antar_trace_child_header(const antar_trace_t *t, char out[56], char child_span[17]);
/* The calling thread's current trace (NULL when none). */
const antar_trace_t *antar_trace_current(void);
/* Set (copy) or clear (NULL) the thread's current trace. */
void antar_trace_set_current(const antar_trace_t *t);
/* Start a fresh trace as the thread's current one (background work). */
void antar_trace_begin(void);
/* 16 random bytes as 32 hex chars + NUL into out (ids, request ids). */
void antar_random_hex(char *out, size_t nbytes);

#endif
