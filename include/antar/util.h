/* antar/util.h — small shared helpers: clocks and time formatting. */
#ifndef ANTAR_UTIL_H
#define ANTAR_UTIL_H

#include <stddef.h>

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

#endif
