/* antar/events.h — the push channel (docs/communication.md, "Push: GET /events").
 *
 * Any service publishes an event with one XADD to one Redis Stream, "antar:events", trimmed
 * with MAXLEN ~ (ANTAR_EVENTS_MAXLEN, 100000). Each entry has a type (offer, offer_withdrawn,
 * order_status, driver_position), an audience and its data as compact JSON; its Redis id is the
 * SSE `id:`. The audience is a space-separated list of subjects: "user:17", "driver:5", or
 * "order:42" (whoever follows order 42: its customer while a driver is on the way or on the
 * trip). An ops stream receives everything: the city-wide view.
 *
 * One service serves GET /events (user-service: docs/communication.md says why). Each stream is
 * a suspended MHD connection, never a held thread: one hub thread per process reads the Redis
 * Stream (XREAD BLOCK), appends what a stream may see to its buffer and resumes its connection;
 * MHD's pool thread then writes the bytes and the stream suspends again when its buffer is
 * empty. A reconnect with Last-Event-ID is replayed by the hub (XRANGE) before it goes live, in
 * stream order, so nothing is lost or repeated between the two.
 */
#ifndef ANTAR_EVENTS_H
#define ANTAR_EVENTS_H

#include <stddef.h>

#include <jansson.h>

#include "antar/error.h"
#include "antar/http.h"

/* The Redis Stream every event goes to. */
#define ANTAR_EVENTS_KEY "antar:events"
/* Room for an audience string: a few subjects. */
#define ANTAR_EVENTS_AUD_MAX 96

/* ---- publishing (any service) ------------------------------------------------------------ */

/* Publish one event: type (a static name), aud (subjects, see above), data (borrowed, an
 * object). One round trip. ANTAR_OK, ANTAR_E_KV when Redis cannot be reached or refused it, or
 * ANTAR_E_NOMEM. An event that could not be published is logged and lost: events tell a client
 * to look, the API stays the truth. */
antar_err_t antar_events_publish(const char *type, const char *aud, const json_t *data);

typedef struct {
    const char *type;
    char aud[ANTAR_EVENTS_AUD_MAX];
    json_t *data; /* borrowed */
} antar_event_t;

/* Publish n events in one pipelined round trip (the driver positions of a flush). Returns how
 * many Redis stored; the others are lost as for antar_events_publish. */
size_t antar_events_publish_many(const antar_event_t *events, size_t n);

/* ---- serving GET /events (one service) --------------------------------------------------- */

/* Start the hub thread for server s (its draining state ends every stream) and register the
 * stop hook that ends them before the server stops. Settings (environment):
 *   ANTAR_EVENTS_HEARTBEAT_MS   10000  a comment line at least this often on every stream
 *   ANTAR_EVENTS_MAX_PER_PRINCIPAL 3   open streams per subject, across instances (429 beyond)
 *   ANTAR_EVENTS_MAXLEN         100000 the stream's approximate length (XADD MAXLEN ~)
 * 0, or -1 when the thread cannot start. */
int antar_events_start(antar_server_t *s);
/* End every stream and join the hub (after the server stopped). */
void antar_events_stop(void);

/* The whole of a GET /events handler after authentication: checks Accept (406), the
 * Last-Event-ID header or last_event_id query argument (422), the principal (an ops-scoped
 * service token or a user/driver: else 403) and its stream limit (429), then answers 200
 * text/event-stream and hands the connection to the hub. orders (n of them, borrowed) are the
 * orders whose "order:<id>" events this stream receives from the start (a customer's orders
 * with a driver on the way or on the trip); the hub keeps the set current from the customer's
 * own order_status events. */
void antar_events_serve(antar_req_t *req, const long long *orders, size_t n);

/* Compare two stream ids "ms-seq": <0, 0, >0. A malformed id sorts first. */
int antar_events_id_cmp(const char *a, const char *b);
/* true when s is a stream id "ms-seq" (decimal, at most 20 digits each). */
bool antar_events_id_ok(const char *s);

#endif
