/* antar/outbox.h — nothing lost between services.
 *
 * A state change and the message that tells another service about it are written in the same
 * database transaction: the caller begins a transaction, changes its rows, calls
 * antar_outbox_add, commits, then antar_outbox_kick. A delivery thread sends pending messages
 * in id order per target and ordering key (what the message is about: "order:42", "driver:7";
 * messages about different things never wait for each other), with the row's event id in the
 * "Idempotency-Key" header, retrying
 * with exponential backoff (0.5 s doubling to 30 s) until the receiver answers 2xx. A 4xx
 * other than 408/409/429 marks the message dead (logged, kept for inspection); a 409 counts as
 * delivered (the receiver had already moved on) — except a 409 whose error code is
 * "state_pending" (ANTAR_E_NOT_YET): the receiver is not yet in the state the message needs
 * (another message is on its way), so it is retried like a 503.
 * Receivers make themselves idempotent with antar_inbox_claim inside their own transaction.
 */
#ifndef ANTAR_OUTBOX_H
#define ANTAR_OUTBOX_H

#include <jansson.h>

#include "antar/error.h"
#include "antar/httpc.h"

/* Queue a call inside the caller's open transaction. key (1–64 characters) orders it after
 * the earlier messages with the same target and key. body is borrowed (serialised now). */
antar_err_t antar_outbox_add(antar_svc_t target, const char *key, const char *method,
                             const char *path, json_t *body);
/* Start / wake / stop the delivery thread. start returns 0 or -1. */
int antar_outbox_start(void);
void antar_outbox_kick(void);
void antar_outbox_stop(void);
/* Wake the delivery thread and wait (at most timeout_ms) until a delivery round that began
 * after this call has finished: what the caller committed before has then been tried once.
 * For read-your-writes after an asynchronous change; the outcome is not reported (a failed
 * delivery is retried by the thread as usual). Never call it inside a transaction. */
void antar_outbox_flush(long timeout_ms);

/* Inside the receiver's open transaction: ANTAR_OK the first time event_id is seen,
 * ANTAR_E_DUPLICATE after (the handler then answers 200 without applying it again). */
antar_err_t antar_inbox_claim(const char *event_id);

#endif
