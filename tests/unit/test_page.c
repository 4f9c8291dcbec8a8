/* Paging arguments (lib/http_page.c): ?limit and the opaque ?cursor. The cursor cases come from
 * tests/fuzz/fuzz_cursor, which asks that a cursor have exactly one spelling. */
#include <string.h>
#include <criterion/criterion.h>
#include <sodium.h>

#include "../../lib/http_internal.h"

static void b64(const void *raw, size_t n, char *out, size_t outlen)
{
    sodium_bin2base64(out, outlen, raw, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

Test(page, cursor_round_trip)
{
    char c[ANTAR_CURSOR_MAX];
    long long v[3] = {0, 17, 1LL << 62}, back[3] = {-1, -1, -1};
    antar_cursor_encode("cda", v, 3, c);
    cr_assert(antar_cursor_decode(c, "cda", back, 3));
    cr_assert_eq(memcmp(v, back, sizeof v), 0);
    cr_assert_not(antar_cursor_decode(c, "cd", back, 3), "a prefix of the tag");
    cr_assert_not(antar_cursor_decode(c, "cdo", back, 3), "another list");
    cr_assert_not(antar_cursor_decode(c, "cda", back, 2), "fewer values");
    cr_assert_not(antar_cursor_decode(c, "cda", back, 5), "more values than a cursor holds");
}

/* Found by the fuzzer: bytes after a NUL in the decoded text were ignored. */
Test(page, cursor_with_bytes_after_a_nul_is_refused)
{
    char c[ANTAR_CURSOR_MAX];
    long long v = -1;
    b64("uao:5\0junk", 10, c, sizeof c);
    cr_assert_not(antar_cursor_decode(c, "uao", &v, 1));
    b64("uao:5\0", 6, c, sizeof c);
    cr_assert_not(antar_cursor_decode(c, "uao", &v, 1));
    b64("uao:5", 5, c, sizeof c);
    cr_assert(antar_cursor_decode(c, "uao", &v, 1));
    cr_assert_eq(v, 5);
}

/* Found by the fuzzer: libsodium 1.0.18 reads any byte 0x80-0xff as '_'. */
Test(page, cursor_with_non_ascii_bytes_is_refused)
{
    char c[ANTAR_CURSOR_MAX];
    long long v = 5;
    /* Cursors of digits rarely hold a '_'; this tag's does: "eD8_OjU". */
    antar_cursor_encode("x??", &v, 1, c);
    cr_assert_str_eq(c, "eD8_OjU");
    cr_assert(antar_cursor_decode(c, "x??", &v, 1));
    for (int b = 0x80; b <= 0xff; b++) {
        c[3] = (char)b;
        cr_assert_not(antar_cursor_decode(c, "x??", &v, 1), "byte 0x%02x read as '_'", b);
    }
}

Test(page, non_canonical_cursors_are_refused)
{
    char c[ANTAR_CURSOR_MAX];
    long long v = -1;
    const char *bad[] = {"uao:05",  "uao:-5", "uao:+5", "uao: 5",
                         "uao:5:6", "uao:",   "uao",    "uao:99999999999999999999",
                         "uao:5 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        b64(bad[i], strlen(bad[i]), c, sizeof c);
        cr_assert_not(antar_cursor_decode(c, "uao", &v, 1), "%s", bad[i]);
    }
    cr_assert_not(antar_cursor_decode("dWFvOjU=", "uao", &v, 1), "padding");
    cr_assert_not(antar_cursor_decode("", "uao", &v, 1), "empty");
}

Test(page, limit)
{
    int l = -1;
    cr_assert(antar_page_limit_parse(NULL, 20, 50, &l));
    cr_assert_eq(l, 20);
    cr_assert(antar_page_limit_parse("50", 20, 50, &l));
    cr_assert_eq(l, 50);
    const char *bad[] = {"", "0", "51", "-1", "+5", " 5", "5 ", "5x", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        l = -1;
        cr_assert_not(antar_page_limit_parse(bad[i], 20, 50, &l), "'%s'", bad[i]);
        cr_assert_eq(l, -1, "written on failure");
    }
}
