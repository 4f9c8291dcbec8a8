/* test_ticker.c — lib/ticker.c: the pass runs every period, a kick runs it at once, stop waits
 * for the pass in hand, and bad arguments start nothing. */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <time.h>

#include "antar/ticker.h"
#include "antar/util.h"

static atomic_int g_runs;
static atomic_int g_in_pass;

static void count(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void slow_pass(void *arg)
{
    (void)arg;
    atomic_store(&g_in_pass, 1);
    sleep_ms(150);
    atomic_fetch_add(&g_runs, 1);
    atomic_store(&g_in_pass, 0);
}

Test(ticker, runs_every_period_and_not_before)
{
    atomic_int n = 0;
    antar_ticker_t *t = antar_ticker_start("t", 50, count, &n);
    cr_assert_not_null(t);
    sleep_ms(20);
    cr_expect_eq(atomic_load(&n), 0, "the first pass comes one period after the start");
    sleep_ms(300);
    antar_ticker_stop(t);
    int got = atomic_load(&n);
    cr_expect(got >= 2 && got <= 8, "about one pass per 50 ms over 320 ms, got %d", got);
    sleep_ms(120);
    cr_expect_eq(atomic_load(&n), got, "no pass after stop");
}

Test(ticker, a_kick_runs_the_pass_at_once)
{
    atomic_int n = 0;
    antar_ticker_t *t = antar_ticker_start("t", 3600000L, count, &n);
    cr_assert_not_null(t);
    antar_ticker_kick(t);
    long long t0 = antar_now_ms();
    while (atomic_load(&n) == 0 && antar_now_ms() - t0 < 2000)
        sleep_ms(5);
    cr_expect_eq(atomic_load(&n), 1, "one pass after one kick, long before the hour");
    antar_ticker_stop(t);
}

Test(ticker, stop_waits_for_the_pass_in_hand)
{
    atomic_store(&g_runs, 0);
    antar_ticker_t *t = antar_ticker_start("t", 10, slow_pass, NULL);
    cr_assert_not_null(t);
    long long t0 = antar_now_ms();
    while (!atomic_load(&g_in_pass) && antar_now_ms() - t0 < 2000)
        sleep_ms(2);
    cr_assert(atomic_load(&g_in_pass), "a pass started");
    antar_ticker_stop(t);
    cr_expect_eq(atomic_load(&g_in_pass), 0, "stop returned while a pass was running");
    cr_expect(atomic_load(&g_runs) >= 1);
}

Test(ticker, bad_arguments_start_nothing)
{
    atomic_int n = 0;
    cr_expect_null(antar_ticker_start("t", 0, count, &n));
    cr_expect_null(antar_ticker_start("t", 3600001L, count, &n));
    cr_expect_null(antar_ticker_start("t", 10, NULL, &n));
    antar_ticker_stop(NULL);
    antar_ticker_kick(NULL);
}
