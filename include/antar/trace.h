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

#include <jansson.h>

#include "antar/error.h"

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

/* ---- spans: what the trace record keeps (docs/console.md, "The waterfall") ---------------- */

/* One finished span. Strings are borrowed for the duration of the sink call. */
typedef struct {
    const char *kind;    /* "call" (a service calling a peer, recorded by the caller) or
                          * "request" (a client's request through the edge that made calls) */
    const char *from;    /* "user-service", or "client" */
    const char *to;      /* "core-service" */
    const char *method;  /* "POST" */
    const char *path;    /* the path called (no query) */
    const char *route;   /* the route pattern served ("request" only), or NULL */
    long status;         /* HTTP status, 0 when no answer came */
    const char *outcome; /* "ok", "timeout", "unreachable", "error", "no_token" */
    long long start_ms;  /* wall clock, ms since the epoch */
    long long duration_us;
    const char *trace_id;
    const char *span_id;        /* this span */
    const char *parent_span_id; /* the span that made it, "" for a root */
} antar_span_t;

/* Where finished spans go (the service installs the Redis record, lib/trace_record.c). The
 * sink runs on the thread that finished the span and must not call a peer. NULL: none. */
typedef void (*antar_span_sink_fn)(const antar_span_t *s);
void antar_trace_set_sink(antar_span_sink_fn fn);
/* Hand s to the sink (if any) and count it for this thread. */
void antar_trace_emit(const antar_span_t *s);
/* Count a call this thread's current trace will make later from another thread (an outbox
 * message): the client's request that queued it is then recorded as its root too. */
void antar_trace_note_async(void);
/* How many spans this thread emitted (or noted) since the previous call; resets the count. */
unsigned antar_trace_emitted_take(void);

/* ---- the trace record in Redis (lib/trace_record.c; links antar_kv) ---------------------- */

/* The record: a hash of spans per trace id (and steps per order, "o:<id>") and the sorted set
 * of each field's age, which keeps the hash to its newest ANTAR_TRACE_RECORD_MAX fields. */
#define ANTAR_TRACE_RECORD_KEY "antar:calls"
#define ANTAR_TRACE_RECORD_AGE_KEY "antar:calls:age"
/* Most traces one read returns (an order's steps name at most this many). */
#define ANTAR_TRACE_READ_TRACES 32

/* Install the Redis sink for service (its name, "user") and start its writer thread: the sink
 * only queues a span (at most 4096 waiting); the writer appends each to its trace's field in one
 * small script per span, pipelined, which also drops the oldest fields beyond
 * ANTAR_TRACE_RECORD_MAX (10000). So no request waits for Redis. ANTAR_TRACE_RECORD=0 leaves the
 * record off. A span that finds the queue full or that Redis does not take is lost (counted in
 * antar_trace_spans_lost_total): the record is for looking, never the truth. */
void antar_trace_record_start(const char *service);
/* Remove the sink, write what is queued, and stop the writer (at the end of the process). */
void antar_trace_record_stop(void);
/* Wait until the queue is written, at most timeout_ms (tests). */
void antar_trace_record_flush(long timeout_ms);
/* Note that order_id reached status in the calling thread's current trace (its timeline).
 * ANTAR_OK; ANTAR_OK doing nothing when the record is off or there is no trace; ANTAR_E_NOMEM. */
antar_err_t antar_trace_record_step(long long order_id, const char *status);
/* Read the record: with order_id > 0, its steps (objects {order_id, status, at, trace_id},
 * oldest first) and every span of their traces; else the spans of trace_id (steps is then
 * empty). Spans in start order. Two round trips at most, no scan. *steps and *spans are new
 * references on ANTAR_OK; ANTAR_E_KV when Redis cannot answer; ANTAR_E_NOMEM. */
antar_err_t antar_trace_record_read(long long order_id, const char *trace_id, json_t **steps,
                                    json_t **spans);

#endif
