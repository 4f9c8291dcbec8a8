/* antar/kv.h — Redis through hiredis: one context per thread, timeouts from the config,
 * reconnect and retry once after an I/O error. */
#ifndef ANTAR_KV_H
#define ANTAR_KV_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "antar/config.h"
#include "antar/error.h"

/* Once, before threads start; cfg borrowed. 0 or -1. */
int antar_kv_init(const antar_config_t *cfg);
/* Run a command on this thread's context (redisCommand format). Returns the reply (caller
 * frees with freeReplyObject), or NULL when Redis cannot be reached. An error reply
 * (REDIS_REPLY_ERROR) is returned as a reply. A READONLY reply (the server became a replica in
 * a failover) drops the connection and sends the command once more on a new one. */
redisReply *antar_kv_command(const char *fmt, ...);
redisReply *antar_kv_commandv(int argc, const char **argv, const size_t *argvlen);
/* A new connection to the Redis master, authenticated (antar_kv_auth), with tv as connect and
 * I/O timeout; the caller owns it (redisFree). Without Sentinel, ANTAR_REDIS_HOST/PORT. With
 * Sentinel (ANTAR_REDIS_SENTINELS="host:port,…", ANTAR_REDIS_MASTER_NAME, default "antar"):
 * the address the first answering Sentinel gives, and only if ROLE says it is the master.
 * NULL when no master can be reached (logged). antar_kv_init must have run. */
redisContext *antar_kv_connect(struct timeval tv);
/* Parses "host:port" (len bytes of s, no NUL needed) into host (host_size bytes) and port
 * (1..65535). 0, or -1 with host and port unchanged. */
int antar_kv_parse_hostport(const char *s, size_t len, char *host, size_t host_size, int *port);
/* AUTH on a fresh connection c with cfg's ACL user and password (nothing when the password is
 * empty). 0 on success, -1 when Redis refused or could not be asked (c is left open). */
int antar_kv_auth(redisContext *c, const antar_config_t *cfg);
/* A /metrics source (antar_metrics_add_source): Redis's used_memory, maxmemory and key count
 * as gauges (antar_redis_used_memory_bytes, antar_redis_maxmemory_bytes, antar_redis_keys,
 * antar_redis_up). Returns a malloc'd text the caller frees; NULL on out of memory. */
char *antar_kv_metrics(void);
/* One command of a pipeline (antar_kv_pipeline): argc arguments with their lengths. */
typedef struct {
    int argc;
    const char **argv;
    const size_t *argvlen;
} antar_kv_cmd_t;

/* Send n commands in one write and read their n replies: one round trip. Not retried (a
 * command may have run before an I/O error). Returns how many got a reply that is not an error
 * reply, or -1 when Redis cannot be reached or the connection broke (the context is dropped and
 * reopened by the next call). */
int antar_kv_pipeline(const antar_kv_cmd_t *cmds, size_t n);
/* PING (health). */
antar_err_t antar_kv_ping(void);
/* After a write that must survive a failover (Sentinel mode only; ANTAR_OK at once otherwise):
 * WAIT until a replica has this thread's writes, at most timeout_ms. ANTAR_E_KV when a
 * connected replica did not confirm in time or the connection broke — the caller answers 503
 * and its sender retries the (idempotent) write, on the new master if there was a failover.
 * With no replica connected nothing can be promoted over the master's copy: ANTAR_OK.
 * Replication is asynchronous; without this, a write the old master acknowledged can vanish
 * when a replica that never got it is promoted. */
antar_err_t antar_kv_replicated(long timeout_ms);
/* Close this thread's context (end of a worker thread). */
void antar_kv_thread_end(void);

#endif
