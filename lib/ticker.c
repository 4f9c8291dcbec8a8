/* ticker.c — a background thread that runs one function every period (ticker.h). */
#include "antar/ticker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "antar/db.h"
#include "antar/httpc.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/util.h"

struct antar_ticker {
    const char *name;
    long period_ms;
    void (*fn)(void *);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stop, kicked;
};

static void *ticker_main(void *p)
{
    antar_ticker_t *t = p;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts = antar_deadline_after(CLOCK_MONOTONIC, t->period_ms);
        while (!t->stop && !t->kicked && pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT)
            ;
        t->kicked = false;
        if (t->stop)
            break;
        pthread_mutex_unlock(&t->mu);
        t->fn(t->arg);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    antar_db_thread_end();
    antar_kv_thread_end();
    antar_httpc_thread_end();
    return NULL;
}

antar_ticker_t *antar_ticker_start(const char *name, long period_ms, void (*fn)(void *arg),
                                   void *arg)
{
    if (!fn || period_ms < 1 || period_ms > 3600000L)
        return NULL;
    antar_ticker_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    *t = (antar_ticker_t){.name = name, .period_ms = period_ms, .fn = fn, .arg = arg};
    pthread_mutex_init(&t->mu, NULL);
    antar_cond_init_monotonic(&t->cv);
    if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
        antar_logf("error", "%s: cannot start its thread", name ? name : "ticker");
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    return t;
}

void antar_ticker_kick(antar_ticker_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->kicked = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void antar_ticker_stop(antar_ticker_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
