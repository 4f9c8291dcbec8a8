/* fuzz_cursor.c — libFuzzer harness for the paging arguments of list routes: ?limit
 * (antar_page_limit_parse) and ?cursor (antar_cursor_decode / antar_cursor_encode).
 *
 * Input layout: byte 0 picks the list's tag and the number of values (1..4), bytes 1..32 are
 * four values for the round trip, the rest is "<limit>\n<cursor>" as a client sent them.
 *
 * Checked beyond "no crash, no leak, no UB":
 *  - an accepted limit is the decimal integer of its text, in 1..max; absent gives the default;
 *  - an accepted cursor is canonical: encoding its tag and values gives the same text back, so
 *    no two texts page from the same place; its values are in 0..2^62;
 *  - a cursor is refused by every other list's tag and for any other number of values;
 *  - round trip: encode(tag, values) decodes to the same values; with one byte changed it
 *    decodes to nothing or (cursors are not signed) to a different, canonical place. */
#include <stdint.h>

#include "fuzz_common.h"

static const char *const tags[] = {"uao", "dta", "dtp", "cda", "cdo", "x"};
#define NTAGS (sizeof(tags) / sizeof(*tags))

static void check_cursor(const char *c, size_t ti, size_t n)
{
    long long v[ANTAR_CURSOR_VALS];
    if (!antar_cursor_decode(c, tags[ti], v, n))
        return;
    char again[ANTAR_CURSOR_MAX];
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(v[i] >= 0 && v[i] <= (1LL << 62), "value %lld", v[i]);
    antar_cursor_encode(tags[ti], v, n, again);
    FUZZ_CHECK(strcmp(again, c) == 0, "cursor '%s' is not canonical (re-encoded '%s')", c, again);
    long long w[ANTAR_CURSOR_VALS];
    for (size_t t = 0; t < NTAGS; t++)
        FUZZ_CHECK(t == ti || !antar_cursor_decode(c, tags[t], w, n), "'%s' taken by %s and %s", c,
                   tags[ti], tags[t]);
    for (size_t m = 0; m <= ANTAR_CURSOR_VALS + 1; m++)
        FUZZ_CHECK(m == n || !antar_cursor_decode(c, tags[ti], w, m), "'%s' has %zu and %zu values",
                   c, n, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 33)
        return 0;
    size_t ti = (data[0] & 0x0f) % NTAGS, n = 1 + ((data[0] >> 4) & 3);
    long long vals[ANTAR_CURSOR_VALS];
    for (size_t i = 0; i < ANTAR_CURSOR_VALS; i++) {
        uint64_t u = 0;
        for (int b = 0; b < 8; b++)
            u = u << 8 | data[1 + 8 * i + b];
        /* Mostly small values (ids), sometimes the whole range. */
        vals[i] = (long long)((u >> 63) ? u % ((1ULL << 62) + 1) : u % 100000);
    }
    data += 33;
    size -= 33;

    /* Round trip, then every single-byte change of the encoded text. */
    char c[ANTAR_CURSOR_MAX];
    antar_cursor_encode(tags[ti], vals, n, c);
    long long back[ANTAR_CURSOR_VALS];
    FUZZ_CHECK(antar_cursor_decode(c, tags[ti], back, n), "own cursor '%s' refused", c);
    FUZZ_CHECK(memcmp(back, vals, n * sizeof(*vals)) == 0, "round trip changed the values");
    size_t cl = strlen(c);
    if (size > 0 && cl > 0) {
        char f[ANTAR_CURSOR_MAX];
        memcpy(f, c, cl + 1);
        size_t pos = data[0] % cl;
        f[pos] = (char)(data[size - 1] ? data[size - 1] : 'A');
        if (f[pos] != c[pos] && antar_cursor_decode(f, tags[ti], back, n))
            FUZZ_CHECK(memcmp(back, vals, n * sizeof(*vals)) != 0,
                       "changed cursor gives the same place");
        check_cursor(f, ti, n);
    }

    /* The client's own limit and cursor. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *cur = strchr(text, '\n');
    if (cur)
        *cur++ = '\0';
    int lim = -5;
    if (antar_page_limit_parse(text, 500, 1000, &lim)) {
        char *end;
        long long v = strtoll(text, &end, 10);
        FUZZ_CHECK(lim >= 1 && lim <= 1000 && v == lim && *end == '\0' && text[0] >= '0' &&
                       text[0] <= '9',
                   "limit '%s' gave %d", text, lim);
    } else {
        FUZZ_CHECK(lim == -5, "limit written on failure");
    }
    FUZZ_CHECK(antar_page_limit_parse(NULL, 500, 1000, &lim) && lim == 500, "default limit");
    if (cur)
        check_cursor(cur, ti, n);
    free(text);
    return 0;
}
