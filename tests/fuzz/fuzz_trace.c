/* fuzz_trace.c — libFuzzer harness for the W3C traceparent header every request may carry
 * (antar_trace_from_header, lib/trace.c).
 *
 * Input: the header value, cut at a NUL (MHD hands over C strings).
 *
 * Checked beyond "no crash, no leak, no UB":
 *  - accepted: the header is exactly "00-<32 hex>-<16 hex>-<2 hex>" in lowercase with non-zero
 *    ids, the trace keeps its trace-id and flags, its parent is the header's span, and its own
 *    span is new (16 hex);
 *  - refused: a fresh trace (32 + 16 lowercase hex, no parent);
 *  - round trip: the child header made from the trace parses back to the same trace-id and
 *    flags, with the child span as parent. */
#include <ctype.h>
#include <stdint.h>

#include "antar/trace.h"
#include "fuzz_common.h"

static bool lower_hex(const char *s, size_t n, bool zero_ok)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
        nonzero = nonzero || s[i] != '0';
    }
    return zero_ok || nonzero;
}

static void check_fresh_fields(const antar_trace_t *t)
{
    FUZZ_CHECK(strlen(t->trace_id) == 32 && lower_hex(t->trace_id, 32, false), "trace_id");
    FUZZ_CHECK(strlen(t->span_id) == 16 && lower_hex(t->span_id, 16, false), "span_id");
    FUZZ_CHECK(strlen(t->flags) == 2 && lower_hex(t->flags, 2, true), "flags");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *h = malloc(size + 1);
    if (!h)
        return 0;
    memcpy(h, data, size);
    h[size] = '\0';
    antar_trace_t t;
    memset(&t, 'Z', sizeof t);
    bool ok = antar_trace_from_header(&t, h);
    check_fresh_fields(&t);
    if (ok) {
        FUZZ_CHECK(strlen(h) == 55 && !strncmp(h, "00-", 3) && h[35] == '-' && h[52] == '-' &&
                       lower_hex(h + 3, 32, false) && lower_hex(h + 36, 16, false) &&
                       lower_hex(h + 53, 2, true),
                   "accepted '%s'", h);
        FUZZ_CHECK(!memcmp(t.trace_id, h + 3, 32) && !memcmp(t.parent_id, h + 36, 16) &&
                       t.parent_id[16] == '\0' && !memcmp(t.flags, h + 53, 2),
                   "trace does not carry the header's ids");
    } else {
        FUZZ_CHECK(t.parent_id[0] == '\0', "a refused header left a parent");
    }
    char child[56], span[17];
    antar_trace_child_header(&t, child, span);
    antar_trace_t back;
    FUZZ_CHECK(antar_trace_from_header(&back, child), "own child header '%s' refused", child);
    FUZZ_CHECK(!strcmp(back.trace_id, t.trace_id) && !strcmp(back.parent_id, span) &&
                   !strcmp(back.flags, t.flags),
               "child header round trip");
    free(h);
    return 0;
}
