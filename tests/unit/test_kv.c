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
