/* util.c — clocks, RFC 3339 time formatting/parsing, JSON text with exact short reals. */
#include "antar/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

long long antar_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long antar_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void antar_time_rfc3339(long long ms, char out[32])
{
    /* Floor division so that times before the epoch still get a 0..999 ms part. */
    long long sec = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    /* strftime bounds each field itself; years past 9999 simply do not fit and are cut. */
    char date[24];
    if (strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        date[0] = '\0';
    snprintf(out, 32, "%.19s.%03dZ", date, (int)rem);
}

/* Reads exactly n digits; -1 when any is missing. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

long long antar_time_parse(const char *s)
{
    if (!s)
        return -1;
    const char *p = s;
    int Y = digits(&p, 4);
    if (Y < 0 || expect(&p, '-'))
        return -1;
    int M = digits(&p, 2);
    if (M < 1 || M > 12 || expect(&p, '-'))
        return -1;
    int D = digits(&p, 2);
    if (D < 1 || D > 31)
        return -1;
    if (*p != 'T' && *p != 't')
        return -1;
    p++;
    int h = digits(&p, 2);
    if (h < 0 || h > 23 || expect(&p, ':'))
        return -1;
    int m = digits(&p, 2);
    if (m < 0 || m > 59 || expect(&p, ':'))
        return -1;
    int sec = digits(&p, 2);
    if (sec < 0 || sec > 60) /* 60: a leap second, folded into the next minute by timegm */
        return -1;
    long long frac_ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0, scale = 100;
        while (isdigit((unsigned char)*p)) {
            if (nd < 3) {
                frac_ms += (*p - '0') * scale;
                scale /= 10;
            }
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return -1;
    }
    long long offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh = digits(&p, 2);
        if (oh < 0 || oh > 23 || expect(&p, ':'))
            return -1;
        int om = digits(&p, 2);
        if (om < 0 || om > 59)
            return -1;
        offset_s = sign * (oh * 3600LL + om * 60LL);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap))
        return -1;
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    return ((long long)t - offset_s) * 1000 + frac_ms;
}

size_t antar_utf8_decode(const unsigned char *p, const unsigned char *end, unsigned *cp)
{
    if (p >= end)
        return 0;
    unsigned c = *p, v, need;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        v = c & 0x1f;
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        v = c & 0x0f;
        need = 2;
    } else if (c >= 0xf0 && c <= 0xf4) {
        v = c & 0x07;
        need = 3;
    } else {
        return 0; /* continuation byte first, overlong 0xc0/0xc1, or > U+10FFFF */
    }
    if ((size_t)(end - p) <= need)
        return 0;
    for (unsigned i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if ((need == 2 && v < 0x800) || (need == 3 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return need + 1;
}

int antar_real_digits(double v)
{
    char buf[40];
    if (!isfinite(v))
        return 17;
    /* 15 digits always read back for a decimal of at most 15 digits, which is what clients
     * send; shorter ones are found only when 15 works, because %g drops trailing zeros anyway
     * (%.15g of -6.1754 is "-6.1754"). Most values stop at the first try. */
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return p;
    }
    return 17;
}

/* The largest antar_real_digits over the reals of doc (0 when it has none). */
static int doc_digits(const json_t *doc, int depth)
{
    int best = 0, d;
    const char *key;
    const json_t *v;
    size_t i;
    if (depth > 64) /* deeper than anything we build: keep jansson's exact default */
        return 17;
    switch (json_typeof(doc)) {
    case JSON_REAL:
        return antar_real_digits(json_real_value(doc));
    case JSON_OBJECT:
        json_object_foreach((json_t *)doc, key, v)
        {
            if ((d = doc_digits(v, depth + 1)) > best)
                best = d;
        }
        return best;
    case JSON_ARRAY:
        json_array_foreach(doc, i, v)
        {
            if ((d = doc_digits(v, depth + 1)) > best)
                best = d;
        }
        return best;
    default:
        return 0;
    }
}

char *antar_json_dumps(const json_t *doc, size_t flags)
{
    int digits = doc ? doc_digits(doc, 0) : 0;
    if (digits > 0)
        flags |= JSON_REAL_PRECISION(digits);
    return json_dumps(doc, flags);
}

long antar_backoff_ms(long first_ms, long max_ms, long long attempts_before)
{
    long ms = first_ms;
    for (long long i = 0; i < attempts_before && ms < max_ms; i++)
        ms *= 2;
    return ms > max_ms ? max_ms : ms;
}

static _Thread_local bool t_internal_thread;

void antar_thread_set_internal(bool internal)
{
    t_internal_thread = internal;
}

bool antar_thread_is_internal(void)
{
    return t_internal_thread;
}

int antar_b64url_decode(const char *s, size_t len, unsigned char *out, size_t max, size_t *outlen)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || !strchr(alphabet, s[i]))
            return -1;
    return sodium_base642bin(out, max, s, len, NULL, outlen, NULL,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0
               ? 0
               : -1;
}

char *antar_read_file(const char *path, long max, size_t *len)
{
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > max)
        goto fail;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto fail;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *len = got;
    close(fd);
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

void antar_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

/* ---- trusted networks ---------------------------------------------------------------------- */

static bool prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static int cidr_parse_one(const char *item, size_t len, antar_cidr_t *c)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, item, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    memset(c, 0, sizeof *c);
    if (inet_pton(AF_INET, buf, c->addr) == 1)
        c->family = AF_INET, c->prefix = 32;
    else if (inet_pton(AF_INET6, buf, c->addr) == 1)
        c->family = AF_INET6, c->prefix = 128;
    else
        return -1;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 3)
            return -1;
        int bits = atoi(p);
        if (bits > c->prefix)
            return -1;
        c->prefix = bits;
    }
    /* No host bits beyond the prefix. */
    int nbytes = c->family == AF_INET ? 4 : 16;
    for (int b = c->prefix; b < nbytes * 8; b++)
        if (c->addr[b / 8] & (0x80 >> (b % 8)))
            return -1;
    return 0;
}

int antar_cidr_list_parse(const char *s, antar_cidr_t *out, size_t max, size_t *n)
{
    size_t k = 0;
    if (!s)
        return -1;
    while (*s) {
        while (*s == ' ')
            s++;
        size_t len = strcspn(s, ",");
        size_t trimmed = len;
        while (trimmed > 0 && s[trimmed - 1] == ' ')
            trimmed--;
        if (k == max || cidr_parse_one(s, trimmed, &out[k]) != 0)
            return -1;
        k++;
        s += len;
        if (*s == ',' && !*++s)
            return -1; /* a trailing comma */
    }
    if (k == 0)
        return -1;
    *n = k;
    return 0;
}

bool antar_cidr_match(const antar_cidr_t *list, size_t n, const struct sockaddr *sa)
{
    unsigned char a[16];
    int family;
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(v6)) {
            memcpy(a, (const unsigned char *)v6 + 12, 4);
            family = AF_INET;
        } else {
            memcpy(a, v6, 16);
            family = AF_INET6;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (list[i].family == family && prefix_eq(a, list[i].addr, list[i].prefix))
            return true;
    return false;
}

struct timespec antar_deadline_after(clockid_t clock, long long ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    long long ns = ts.tv_nsec + (ms % 1000) * 1000000LL;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}
