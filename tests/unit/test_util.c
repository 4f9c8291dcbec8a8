/* lib/util.c: clocks, RFC 3339 formatting and parsing, UTF-8 decoding, strict base64url,
 * backoff and the internal-thread mark. (antar_json_dumps: test_json.c.) */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "antar/util.h"

Test(util, time_format_and_parse)
{
    char buf[32];
    antar_time_rfc3339(1795249800123LL, buf);
    cr_assert_str_eq(buf, "2026-11-21T08:30:00.123Z");
    cr_assert_eq(antar_time_parse("2026-11-21T08:30:00.123Z"), 1795249800123LL);
    cr_assert_eq(antar_time_parse("2026-11-21T15:30:00.123+07:00"), 1795249800123LL);
    cr_assert_eq(antar_time_parse("2026-11-21T08:30:00Z"), 1795249800000LL);
    cr_assert_eq(antar_time_parse("2026-11-21 08:30:00Z"), -1);
    cr_assert_eq(antar_time_parse("2026-02-30T08:30:00Z"), -1);
    cr_assert_eq(antar_time_parse("2026-11-21T08:30:00"), -1);
    cr_assert_eq(antar_time_parse("2026-11-21T08:30:00Zx"), -1);
    cr_assert_eq(antar_time_parse(NULL), -1);
    cr_assert(antar_now_ms() > 1700000000000LL);
    cr_assert(antar_mono_ms() >= 0);
}

Test(util, time_parse_fractions_offsets_and_calendar)
{
    const long long base = 1795249800000LL; /* 2026-11-21T08:30:00Z */
    static const struct {
        const char *s;
        long long want;
    } ok[] = {
        {"2026-11-21T08:30:00.1Z", base + 100},
        {"2026-11-21T08:30:00.12Z", base + 120},
        {"2026-11-21T08:30:00.123456789Z", base + 123}, /* below ms: cut, not rounded */
        {"2026-11-21t08:30:00z", base},
        {"2026-11-21T03:00:00-05:30", base},
        {"2026-11-21T08:30:00+00:00", base},
        {"2026-11-22T08:29:00+23:59", base},
        {"2024-02-29T00:00:00Z", 1709164800000LL},
        {"2000-02-29T00:00:00Z", 951782400000LL},
        {"1970-01-01T00:00:00Z", 0},
        {"2026-12-31T23:59:60Z", 1798761600000LL}, /* a leap second: the next minute */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_eq(antar_time_parse(ok[i].s), ok[i].want, "%s: got %lld, want %lld", ok[i].s,
                     antar_time_parse(ok[i].s), ok[i].want);
    static const char *const bad[] = {
        "",
        "2026-11-21",
        "2026-11-21T08:30Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2026-11-21T24:00:00Z",
        "2026-11-21T08:60:00Z",
        "2026-11-21T08:30:61Z",
        "2026-11-21T08:30:00.Z",
        "2026-11-21T08:30:00.1234567890Z",
        "2026-11-21T08:30:00+7:00",
        "2026-11-21T08:30:00+07",
        "2026-11-21T08:30:00+24:00",
        "2026-11-21T08:30:00+07:60",
        "26-11-21T08:30:00Z",
        "2026-11-21T08:30:00 Z",
        " 2026-11-21T08:30:00Z",
        "2026/11/21T08:30:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(antar_time_parse(bad[i]), -1, "\"%s\" parsed as %lld", bad[i],
                     antar_time_parse(bad[i]));
}

Test(util, time_format_round_trips)
{
    char buf[32];
    for (long long ms = 0; ms < 4102444800000LL; ms += 86399999LL * 97) {
        antar_time_rfc3339(ms, buf);
        cr_assert_eq(strlen(buf), 24, "%s", buf);
        cr_assert_eq(antar_time_parse(buf), ms, "%s", buf);
    }
}

Test(util, utf8_decode_takes_only_shortest_valid_forms)
{
    unsigned cp = 0;
    const unsigned char a[] = "A", e[] = "\xc3\xa9", euro[] = "\xe2\x82\xac",
                        smile[] = "\xf0\x9f\x98\x80";
    cr_assert_eq(antar_utf8_decode(a, a + 1, &cp), 1);
    cr_assert_eq(cp, 0x41);
    cr_assert_eq(antar_utf8_decode(e, e + 2, &cp), 2);
    cr_assert_eq(cp, 0xe9);
    cr_assert_eq(antar_utf8_decode(euro, euro + 3, &cp), 3);
    cr_assert_eq(cp, 0x20ac);
    cr_assert_eq(antar_utf8_decode(smile, smile + 4, &cp), 4);
    cr_assert_eq(cp, 0x1f600);
    static const char *const bad[] = {
        "\xc0\x80",         /* overlong NUL */
        "\xe0\x80\xaf",     /* overlong '/' */
        "\xed\xa0\x80",     /* a surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\x80",             /* a continuation byte alone */
        "\xc3",             /* cut short */
        "\xc3\x28",         /* not a continuation */
        "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const unsigned char *p = (const unsigned char *)bad[i];
        cr_assert_eq(antar_utf8_decode(p, p + strlen(bad[i]), &cp), 0, "case %zu accepted", i);
    }
    cr_assert_eq(antar_utf8_decode(smile, smile + 3, &cp), 0, "read past end");
    cr_assert_eq(antar_utf8_decode(a, a, &cp), 0);
}

Test(util, b64url_decode_is_strict)
{
    unsigned char out[16];
    size_t n = 0;
    cr_assert_eq(antar_b64url_decode("aGk", 3, out, sizeof out, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(memcmp(out, "hi", 2) == 0);
    cr_assert_eq(antar_b64url_decode("-_8", 3, out, sizeof out, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(out[0] == 0xfb && out[1] == 0xff, "%02x %02x", out[0], out[1]);
    cr_assert_eq(antar_b64url_decode("", 0, out, sizeof out, &n), 0);
    cr_assert_eq(n, 0);
    static const char *const bad[] = {
        "aGk=",                 /* padding */
        "aGl",                  /* unused low bits not zero: a second spelling of "hi" */
        "a+8",                  /* the standard alphabet, not the URL one */
        "a/8",  "aGk\x80", "a", /* no whole byte */
        "aG k",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(antar_b64url_decode(bad[i], strlen(bad[i]), out, sizeof out, &n), -1,
                     "\"%s\" accepted", bad[i]);
    cr_assert_eq(antar_b64url_decode("aGVsbG8", 7, out, 4, &n), -1, "more than max bytes");
}

/* The backoff the outbox and driver-service's reconciler share. */
Test(util, backoff_doubles_from_the_first_and_stops_at_the_cap)
{
    cr_assert_eq(antar_backoff_ms(500, 30000, 0), 500);
    cr_assert_eq(antar_backoff_ms(500, 30000, 1), 1000);
    cr_assert_eq(antar_backoff_ms(500, 30000, 5), 16000);
    cr_assert_eq(antar_backoff_ms(500, 30000, 6), 30000);
    cr_assert_eq(antar_backoff_ms(500, 30000, 1000000), 30000, "no overflow on a long history");
    cr_assert_eq(antar_backoff_ms(1000, 60000, -3), 1000, "a negative count is the first");
}

static void *mark_probe(void *arg)
{
    *(bool *)arg = antar_thread_is_internal();
    return NULL;
}

Test(util, internal_mark_is_per_thread)
{
    cr_assert_not(antar_thread_is_internal());
    antar_thread_set_internal(true);
    cr_assert(antar_thread_is_internal());
    bool other = true;
    pthread_t t;
    pthread_create(&t, NULL, mark_probe, &other);
    pthread_join(t, NULL);
    cr_assert_not(other, "the mark leaked to another thread");
    antar_thread_set_internal(false);
    cr_assert_not(antar_thread_is_internal());
}

Test(util, clocks_move_forward)
{
    long long w = antar_now_ms(), m = antar_mono_ms();
    cr_assert_gt(w, 1700000000000LL);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    cr_assert_geq(antar_mono_ms() - m, 19);
    cr_assert_geq(antar_now_ms(), w);
}

/* ---- trusted networks (ANTAR_TRUSTED_PROXIES) -------------------------------------------- */

static struct sockaddr_storage addr_of(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        cr_assert_fail("not an address: %s", text);
    return ss;
}

static bool trusted(const antar_cidr_t *l, size_t n, const char *text)
{
    struct sockaddr_storage ss = addr_of(text);
    return antar_cidr_match(l, n, (const struct sockaddr *)&ss);
}

Test(cidr, the_default_trusts_loopback_only)
{
    antar_cidr_t l[4];
    size_t n = 0;
    cr_assert_eq(antar_cidr_list_parse("127.0.0.0/8,::1/128", l, 4, &n), 0);
    cr_assert_eq(n, 2);
    cr_expect(trusted(l, n, "127.0.0.1"));
    cr_expect(trusted(l, n, "127.255.1.2"));
    cr_expect(trusted(l, n, "::1"));
    cr_expect(trusted(l, n, "::ffff:127.0.0.1"), "an IPv4-mapped address counts as IPv4");
    cr_expect_not(trusted(l, n, "128.0.0.1"));
    cr_expect_not(trusted(l, n, "10.0.0.1"));
    cr_expect_not(trusted(l, n, "::2"));
}

Test(cidr, prefixes_bare_addresses_and_spaces)
{
    antar_cidr_t l[4];
    size_t n = 0;
    cr_assert_eq(antar_cidr_list_parse(" 10.42.0.0/17 , 192.168.1.7, fd00::/8", l, 4, &n), 0);
    cr_assert_eq(n, 3);
    cr_expect(trusted(l, n, "10.42.127.255"));
    cr_expect_not(trusted(l, n, "10.42.128.0"), "/17 ends at .127.255");
    cr_expect(trusted(l, n, "192.168.1.7"));
    cr_expect_not(trusted(l, n, "192.168.1.8"), "a bare address is /32");
    cr_expect(trusted(l, n, "fd12::3"));
    cr_expect_not(trusted(l, n, "fe80::1"));
    cr_assert_eq(antar_cidr_list_parse("0.0.0.0/0", l, 4, &n), 0);
    cr_expect(trusted(l, n, "203.0.113.9"), "/0 is every IPv4 address");
    cr_expect_not(trusted(l, n, "2001:db8::1"), "but no IPv6 one");
}

Test(cidr, malformed_lists_are_refused)
{
    antar_cidr_t l[2];
    size_t n = 99;
    const char *bad[] = {
        "",          " ",         "10.0.0.0/33",      "::/129",       "10.0.0.1/8",
        "10.0.0.0/", "10.0.0/8",  "10.0.0.0/x",       "10.0.0.0/-1",  "a.b.c.d",
        "10.0.0.0,", ",10.0.0.0", "1.2.3.4,,5.6.7.8", "1.2.3.4/0008", "1.1.1.1,2.2.2.2,3.3.3.3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(antar_cidr_list_parse(bad[i], l, 2, &n), -1, "accepted \"%s\"", bad[i]);
    cr_expect_eq(n, 99, "nothing written on a refusal");
    cr_expect_eq(antar_cidr_list_parse(NULL, l, 2, &n), -1);
}

Test(util, deadline_after_is_now_plus_ms_normalised)
{
    long long ms_values[] = {0, 1, 999, 1000, 1999, 86400000LL};
    for (size_t i = 0; i < sizeof ms_values / sizeof *ms_values; i++) {
        struct timespec before, after;
        clock_gettime(CLOCK_MONOTONIC, &before);
        struct timespec d = antar_deadline_after(CLOCK_MONOTONIC, ms_values[i]);
        clock_gettime(CLOCK_MONOTONIC, &after);
        cr_expect(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L, "tv_nsec %ld", d.tv_nsec);
        long long dn = (long long)d.tv_sec * 1000000000LL + d.tv_nsec;
        long long lo =
            (long long)before.tv_sec * 1000000000LL + before.tv_nsec + ms_values[i] * 1000000LL;
        long long hi =
            (long long)after.tv_sec * 1000000000LL + after.tv_nsec + ms_values[i] * 1000000LL;
        cr_expect(dn >= lo && dn <= hi, "%lld ms: deadline outside [now + ms]", ms_values[i]);
    }
}
