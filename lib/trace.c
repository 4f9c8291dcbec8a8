/* trace.c — W3C trace context (https://www.w3.org/TR/trace-context/) and random ids. */
#include "antar/trace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

static _Thread_local antar_trace_t tl_trace;
static _Thread_local bool tl_has_trace;

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static unsigned g_rng_fork_gen; /* bumped in a forked child */

static void fork_child(void)
{
    __atomic_add_fetch(&g_rng_fork_gen, 1, __ATOMIC_RELAXED);
}

static void sodium_start(void)
{
    /* randombytes_buf works without it, but sodium_init picks the best RNG once, safely. */
    if (sodium_init() < 0)
        fprintf(stderr, "trace: sodium_init failed\n");
    /* A forked child must not replay its parent's stream. */
    pthread_atfork(NULL, NULL, fork_child);
}

/* Random bytes for ids, without a getrandom() system call per id (three per request, a few
 * percent of a trivial request's time): each thread keeps a ChaCha20 key seeded from the
 * kernel's generator and draws blocks of keystream, replacing the key with the first 32 bytes
 * of every block ("fast key erasure", as arc4random does), so the output stays unpredictable
 * and earlier output cannot be recomputed from the state. */
typedef struct {
    unsigned char key[crypto_stream_chacha20_KEYBYTES];
    unsigned char buf[480];
    size_t avail; /* unread bytes at the end of buf */
    unsigned fork_gen;
    bool seeded;
} rng_t;

static _Thread_local rng_t tl_rng;

static void rng_refill(rng_t *g)
{
    static const unsigned char nonce[crypto_stream_chacha20_NONCEBYTES]; /* key is never reused */
    unsigned fg = __atomic_load_n(&g_rng_fork_gen, __ATOMIC_RELAXED);
    if (!g->seeded || g->fork_gen != fg) {
        randombytes_buf(g->key, sizeof(g->key));
        g->fork_gen = fg;
        g->seeded = true;
    }
    unsigned char block[sizeof(g->key) + sizeof(g->buf)];
    crypto_stream_chacha20(block, sizeof(block), nonce, g->key);
    memcpy(g->key, block, sizeof(g->key));
    memcpy(g->buf, block + sizeof(g->key), sizeof(g->buf));
    sodium_memzero(block, sizeof(block));
    g->avail = sizeof(g->buf);
}

static void rng_bytes(unsigned char *out, size_t n)
{
    rng_t *g = &tl_rng;
    if (g->seeded && g->fork_gen != __atomic_load_n(&g_rng_fork_gen, __ATOMIC_RELAXED))
        g->avail = 0; /* forked: drop what the parent may also hold */
    while (n > 0) {
        if (g->avail == 0)
            rng_refill(g);
        size_t take = n < g->avail ? n : g->avail;
        unsigned char *src = g->buf + sizeof(g->buf) - g->avail;
        memcpy(out, src, take);
        sodium_memzero(src, take); /* handed out once only */
        out += take;
        n -= take;
        g->avail -= take;
    }
}

void antar_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[64];
    pthread_once(&sodium_once, sodium_start);
    if (nbytes > sizeof(buf))
        nbytes = sizeof(buf);
    rng_bytes(buf, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[buf[i] >> 4];
        out[2 * i + 1] = hex[buf[i] & 15];
    }
    out[2 * nbytes] = '\0';
    sodium_memzero(buf, nbytes);
}

/* A span or trace id of all zeros is invalid per the spec; regenerate in that (2^-64) case. */
static void random_id(char *out, size_t nbytes)
{
    do {
        antar_random_hex(out, nbytes);
    } while (strspn(out, "0") == 2 * nbytes);
}

void antar_trace_new(antar_trace_t *t)
{
    random_id(t->trace_id, 16);
    random_id(t->span_id, 8);
    t->parent_id[0] = '\0';
    memcpy(t->flags, "01", 3);
}

/* n lowercase hex digits, not all zero. */
static bool hex_id(const char *s, size_t n, bool allow_zero)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        if (c != '0')
            nonzero = true;
    }
    return nonzero || allow_zero;
}

bool antar_trace_from_header(antar_trace_t *t, const char *h)
{
    /* version(2) '-' trace-id(32) '-' parent-id(16) '-' flags(2) = 55. Version 00 must be
     * exactly that long; we accept no other version, which the spec allows us to treat as a
     * restart of the trace. */
    if (!h || strlen(h) != 55 || h[0] != '0' || h[1] != '0' || h[2] != '-' || h[35] != '-' ||
        h[52] != '-' || !hex_id(h + 3, 32, false) || !hex_id(h + 36, 16, false) ||
        !hex_id(h + 53, 2, true)) {
        antar_trace_new(t);
        return false;
    }
    memcpy(t->trace_id, h + 3, 32);
    t->trace_id[32] = '\0';
    memcpy(t->parent_id, h + 36, 16);
    t->parent_id[16] = '\0';
    memcpy(t->flags, h + 53, 2);
    t->flags[2] = '\0';
    random_id(t->span_id, 8);
    return true;
}

void antar_trace_child_header(const antar_trace_t *t, char out[56], char child_span[17])
{
    random_id(child_span, 8);
    snprintf(out, 56, "00-%.32s-%.16s-%.2s", t->trace_id, child_span, t->flags);
}

const antar_trace_t *antar_trace_current(void)
{
    return tl_has_trace ? &tl_trace : NULL;
}

void antar_trace_set_current(const antar_trace_t *t)
{
    if (t) {
        tl_trace = *t;
        tl_has_trace = true;
    } else {
        tl_has_trace = false;
    }
}

void antar_trace_begin(void)
{
    antar_trace_t t;
    antar_trace_new(&t);
    antar_trace_set_current(&t);
}

/* ---- spans ---------------------------------------------------------------------------------- */

static _Atomic(antar_span_sink_fn) g_sink;
static _Thread_local unsigned tl_emitted;

void antar_trace_set_sink(antar_span_sink_fn fn)
{
    atomic_store(&g_sink, fn);
}

void antar_trace_emit(const antar_span_t *s)
{
    antar_span_sink_fn fn = atomic_load(&g_sink);
    if (!fn || !s || !s->trace_id || !s->trace_id[0])
        return;
    tl_emitted++;
    fn(s);
}

void antar_trace_note_async(void)
{
    tl_emitted++;
}

unsigned antar_trace_emitted_take(void)
{
    unsigned n = tl_emitted;
    tl_emitted = 0;
    return n;
}
