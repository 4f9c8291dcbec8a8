/* ticker.h — a background thread that runs one function every period.
 *
 * The services' periodic workers (driver-service's reconciler, core's busy sweep) share one
 * shape: sleep on a monotonic clock, wake early when told to, run a pass, and release the
 * thread's MariaDB, Redis and HTTP connections when stopped. This is that shape, once.
 */
#ifndef ANTAR_TICKER_H
#define ANTAR_TICKER_H

typedef struct antar_ticker antar_ticker_t;

/* Starts a thread that calls fn(arg) every period_ms (1..3,600,000), the first time one period
 * after the start. name is for the logs (kept, not copied: a literal). NULL when the thread
 * cannot be made (logged). */
antar_ticker_t *antar_ticker_start(const char *name, long period_ms, void (*fn)(void *arg),
                                   void *arg);
/* Runs the next pass now instead of at the end of the period (a pass already running is not
 * interrupted; the next one follows it). Safe from any thread; NULL is ignored. */
void antar_ticker_kick(antar_ticker_t *t);
/* Stops the thread after the pass it may be running, joins it and frees t. NULL is ignored. */
void antar_ticker_stop(antar_ticker_t *t);

#endif
