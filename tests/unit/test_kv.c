/* test_kv.c — lib/kv.c against a real Redis (ANTAR_TEST_REDIS_PORT, exported by `make test`). */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antar/config.h"
#include "antar/kv.h"
#include "antar/log.h"

static antar_config_t cfg;
static bool ready;

static void setup(void)
{
    const char *port = getenv("ANTAR_TEST_REDIS_PORT");
    if (!port || !*port)
        return;
    setenv("ANTAR_REDIS_PORT", port, 1);
    if (getenv("ANTAR_TEST_REDIS_HOST"))
        setenv("ANTAR_REDIS_HOST", getenv("ANTAR_TEST_REDIS_HOST"), 1);
    antar_log_init("test");
    antar_config_load(&cfg, "core");
    ready = antar_kv_init(&cfg) == 0;
}

static void teardown(void)
{
    if (ready)
        antar_kv_thread_end();
}

#define NEED_KV()                                                                                  \
    do {                                                                                           \
        if (!ready)                                                                                \
            cr_skip_test("no test Redis (ANTAR_TEST_REDIS_PORT unset; run via make test)");        \
    } while (0)

TestSuite(kv, .init = setup, .fini = teardown);

Test(kv, ping)
{
    NEED_KV();
    cr_assert(antar_kv_ping() == ANTAR_OK);
}

Test(kv, command_round_trip)
{
    NEED_KV();
    /* A value with spaces, a NUL byte and quotes goes through as one argument. */
    const char val[] = "a b\0c'\"; FLUSHALL";
    const char *argv[] = {"SET", "antar:test:kv", val, "PX", "10000"};
    size_t lens[] = {3, strlen("antar:test:kv"), sizeof(val) - 1, 2, 5};
    redisReply *r = antar_kv_commandv(5, argv, lens);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SET");
    freeReplyObject(r);

    r = antar_kv_command("GET %s", "antar:test:kv");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    cr_assert(r->len == sizeof(val) - 1 && memcmp(r->str, val, r->len) == 0, "value verbatim");
    freeReplyObject(r);

    r = antar_kv_command("INCR %s", "antar:test:counter");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    long long first = r->integer;
    freeReplyObject(r);
    r = antar_kv_command("INCR %s", "antar:test:counter");
    cr_assert(r && r->integer == first + 1);
    freeReplyObject(r);

    /* An error reply comes back as a reply, not NULL. */
    r = antar_kv_command("INCR %s", "antar:test:kv");
    cr_assert(r && r->type == REDIS_REPLY_ERROR, "error reply");
    freeReplyObject(r);
    r = antar_kv_command("DEL antar:test:kv antar:test:counter");
    freeReplyObject(r);
}

Test(kv, geo_commands)
{
    NEED_KV();
    redisReply *r = antar_kv_command("GEOADD antar:test:geo %f %f %s", 106.8272, -6.1754, "7");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    r = antar_kv_command("GEOSEARCH antar:test:geo FROMLONLAT %f %f BYRADIUS 1000 m ASC", 106.828,
                         -6.176);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    cr_assert(strcmp(r->element[0]->str, "7") == 0);
    freeReplyObject(r);
    freeReplyObject(antar_kv_command("DEL antar:test:geo"));
}

static void *kill_client(void *arg)
{
    long long id = *(long long *)arg;
    /* This thread has its own context, so it can kill the test thread's connection. */
    redisReply *r = antar_kv_command("CLIENT KILL ID %lld", id);
    if (r)
        freeReplyObject(r);
    antar_kv_thread_end();
    return NULL;
}

Test(kv, reconnects_after_connection_loss)
{
    NEED_KV();
    redisReply *r = antar_kv_command("CLIENT ID");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    long long id = r->integer;
    freeReplyObject(r);
    pthread_t t;
    pthread_create(&t, NULL, kill_client, &id);
    pthread_join(t, NULL);
    /* The next command hits the dead socket, reconnects and retries once. */
    r = antar_kv_command("CLIENT ID");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "retried on a new connection");
    cr_assert(r->integer != id);
    freeReplyObject(r);
}

Test(kv, unreachable_gives_null_and_kv_error)
{
    NEED_KV();
    antar_kv_thread_end();
    cfg.redis_port = 1; /* nothing listens there */
    cfg.redis_timeout_ms = 200;
    cr_assert(antar_kv_command("PING") == NULL);
    cr_assert(antar_kv_ping() == ANTAR_E_KV);
}

/* Sentinel: the address list's parser, and a list whose Sentinels are all down fails fast with
 * NULL instead of hanging or crashing (the failover seconds are an upstream outage). */
Test(kv_sentinel, parse_hostport)
{
    char host[16] = "unchanged";
    int port = -1;
    cr_assert_eq(antar_kv_parse_hostport("127.0.0.1:26380", 15, host, sizeof host, &port), 0);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 26380);
    /* Only len bytes count: the rest of a comma-separated list is not part of the port. */
    cr_assert_eq(antar_kv_parse_hostport("h:1,x:2", 3, host, sizeof host, &port), 0);
    cr_assert_str_eq(host, "h");
    cr_assert_eq(port, 1);
    const char *bad[] = {"nohost",  ":6379", "h:",       "h:0",
                         "h:65536", "h:12a", "h:123456", "averyveryverylonghostname:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(host, "unchanged");
        port = -1;
        cr_assert_eq(antar_kv_parse_hostport(bad[i], strlen(bad[i]), host, sizeof host, &port), -1,
                     "accepted %s", bad[i]);
        cr_assert_str_eq(host, "unchanged", "host changed on %s", bad[i]);
        cr_assert_eq(port, -1, "port changed on %s", bad[i]);
    }
}

Test(kv_sentinel, no_sentinel_answers)
{
    /* Port 1 on loopback: nothing listens, the connect is refused at once. */
    setenv("ANTAR_REDIS_SENTINELS", "127.0.0.1:1,127.0.0.1:1", 1);
    setenv("ANTAR_REDIS_MASTER_NAME", "antar", 1);
    antar_log_init("test");
    static antar_config_t scfg;
    antar_config_load(&scfg, "core");
    cr_assert_eq(antar_kv_init(&scfg), 0);
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    cr_assert_null(antar_kv_connect(tv));
    cr_assert_null(antar_kv_command("PING"));
    cr_assert_eq(antar_kv_ping(), ANTAR_E_KV);
    antar_kv_thread_end();
    unsetenv("ANTAR_REDIS_SENTINELS");
}

Test(kv_sentinel, malformed_sentinel_list_refused_at_init)
{
    static antar_config_t scfg;
    antar_config_load(&scfg, "core");
    const char *bad[] = {"127.0.0.1", "127.0.0.1:26380,", "127.0.0.1:26380,nohost:x", ":1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("ANTAR_REDIS_SENTINELS", bad[i], 1);
        cr_assert_eq(antar_kv_init(&scfg), -1, "accepted '%s'", bad[i]);
    }
    setenv("ANTAR_REDIS_SENTINELS", "127.0.0.1:26380,localhost:26390", 1);
    cr_assert_eq(antar_kv_init(&scfg), 0);
    unsetenv("ANTAR_REDIS_SENTINELS");
}

Test(kv_sentinel, sentinel_list_too_long)
{
    char big[700];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    setenv("ANTAR_REDIS_SENTINELS", big, 1);
    static antar_config_t scfg;
    antar_config_load(&scfg, "core");
    cr_assert_eq(antar_kv_init(&scfg), -1);
    unsetenv("ANTAR_REDIS_SENTINELS");
}
