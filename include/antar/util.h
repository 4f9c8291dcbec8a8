/* antar/util.h — small shared helpers: clocks, time formatting, JSON text. */
#ifndef ANTAR_UTIL_H
#define ANTAR_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
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
/* Strict base64url without padding (RFC 4648 §5), for tokens clients send back: len bytes of s
 * into out (at most max bytes), *outlen set. Every byte must be of the alphabet and the unused
 * low bits of the last character zero, so each value has exactly one spelling (libsodium 1.0.18
 * alone decodes any byte 0x80–0xff as '_'). 0, or -1 for anything else. */
int antar_b64url_decode(const char *s, size_t len, unsigned char *out, size_t max, size_t *outlen);
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

/* Exponential backoff: first_ms doubled once per earlier attempt, capped at max_ms. */
long antar_backoff_ms(long first_ms, long max_ms, long long attempts_before);

/* The rule that keeps service calls free of cycles (docs/reliability.md, "Call graph: why no
 * cycle"): a thread of an internal listener never waits on a peer. Public listeners and
 * background workers (outbox, dispatch, flusher, reconciler) may call any peer's internal
 * listener; internal listeners answer from their own database and Redis only. So every chain of
 * waits is at most one hop long — public or background thread → internal pool — and can never
 * come back to a pool it started from. The HTTP server marks each request's thread;
 * antar_httpc_call refuses a call from a marked thread. Thread-local, so it costs nothing. */
void antar_thread_set_internal(bool internal);
bool antar_thread_is_internal(void);

/* A whole regular file (no symlink followed), NUL-terminated, at most max bytes; *len its size.
 * NULL when it cannot be opened, is not a regular file, is larger, or on a read error. */
char *antar_read_file(const char *path, long max, size_t *len);

/* A condition variable whose timed waits count on CLOCK_MONOTONIC (a wall-clock step neither
 * stretches nor cuts a worker's sleep). */
void antar_cond_init_monotonic(pthread_cond_t *cv);
/* The absolute time ms milliseconds from now on clock (CLOCK_MONOTONIC for a condition variable
 * made by antar_cond_init_monotonic, CLOCK_REALTIME for a default one): a timed wait's
 * deadline. */
struct timespec antar_deadline_after(clockid_t clock, long long ms);

/* One network of a list of trusted addresses (ANTAR_TRUSTED_PROXIES): family AF_INET or
 * AF_INET6, the address in network order, the prefix length. */
typedef struct {
    int family;
    unsigned char addr[16];
    int prefix;
} antar_cidr_t;
/* Parses a comma-separated list of CIDRs ("127.0.0.0/8,::1/128,10.0.0.0/8"; a bare address is
 * /32 or /128; spaces around items allowed) into out (room for max). 0 and *n, or -1 when the
 * list is empty, longer than max, or an item is not an address with a prefix in range (host
 * bits set are refused too: "10.0.0.1/8" is a typo more often than a wish). */
int antar_cidr_list_parse(const char *s, antar_cidr_t *out, size_t max, size_t *n);
/* Whether sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as IPv4) is in one of
 * the n networks. */
struct sockaddr;
bool antar_cidr_match(const antar_cidr_t *list, size_t n, const struct sockaddr *sa);

#endif