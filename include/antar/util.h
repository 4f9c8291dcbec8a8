/* antar/util.h — small shared helpers: clocks, time formatting, JSON text. */
#ifndef ANTAR_UTIL_H
#define ANTAR_UTIL_H

#include <stddef.h>
#include <jansson.h>

/* Wall clock, ms since the epoch. */
long long antar_now_ms(void);
/* Monotonic clock, ms. */
long long antar_mono_ms(void);
/* RFC 3339 UTC with ms: "2026-11-21T08:30:00.123Z". out must hold 32 bytes. */
void antar_time_rfc3339(long long ms, char out[32]);
/* Decode one UTF-8 sequence starting at p (end exclusive), accepting only the shortest form, no
 * surrogates and nothing above U+10FFFF (what jansson accepts). Returns the sequence's length in
 * bytes and sets *cp, or returns 0 when the bytes are not such a sequence. */
size_t antar_utf8_decode(const unsigned char *p, const unsigned char *end, unsigned *cp);
/* Parse RFC 3339 (Z or ±hh:mm, optional fraction) to ms. -1 when invalid. */
long long antar_time_parse(const char *s);

/* json_dumps(doc, flags) with reals written as short as they can be without changing their
 * value: the smallest precision from 15 to 17 digits at which every real in doc reads back as
 * the same double (%g drops trailing zeros, so a short decimal stays short), so -6.1754 is written
 * "-6.1754" and not jansson's default "-6.1753999999999998". One precision serves the whole
 * document (jansson takes one per dump): when one real needs 17 digits, the others are written at
 * 17 too, still exactly. flags must not carry a JSON_REAL_PRECISION of its own. Returns a malloc'd
 * string the caller frees, or NULL (out of memory, or what json_dumps refuses). */
char *antar_json_dumps(const json_t *doc, size_t flags);
/* The fewest significant digits from 15 to 17 with which "%.*g" of v reads back as v (17 for
 * NaN and infinities, which JSON cannot carry anyway). */
int antar_real_digits(double v);

/* The rule that keeps service calls free of cycles (docs/reliability.md, "Call graph: why no
 * cycle"). Every pool that can wait on another has a rank: public listeners and background
 * workers are unranked (0, they may call any peer); each service's internal listener has the
 * fixed rank antar_internal_rank gives it. A thread of rank r > 0 may wait only on an internal
 * listener of rank < r, so every chain of waits strictly descends and cannot come back to a pool
 * it started from. The leaves (user, core: rank 1) call nobody from their internal listeners;
 * driver's internal listener (rank 2) may call theirs (POST /internal/offers reads the order
 * from user-service). The HTTP server marks each request's thread with its listener's rank;
 * antar_httpc_call refuses what the rule forbids. Thread-local, so it costs nothing to read. */
void antar_thread_set_call_rank(int rank);
int antar_thread_call_rank(void);
/* The rank of a service's internal listener ("user", "driver", "core"; 1 for anything else). */
int antar_internal_rank(const char *service);

#endif