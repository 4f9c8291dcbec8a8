/* dispatch_store.c — core-service's Redis state (see dispatch_store.h for the keys).
 *
 * Everything that reads and then writes more than one key is a Lua script run with EVAL, so
 * that concurrent requests, the worker and other core instances never see half a change.
 * Scripts are sent in full each time: they are small, and EVAL keeps working across a Redis
 * restart without a script-cache reload. */
#include "dispatch_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/config.h"
#include "antar/kv.h"
#include "antar/log.h"
#include "antar/util.h"

/* dispatch:<id>:done makes a late redelivery of the order's dispatch, cancel or accept a no-op
 * and tells a cancel which driver to free. Redeliveries come within the outbox's retries
 * (minutes) and a cancel before pickup within the pickup wait, so an hour is ample; a day kept
 * 864,000 of them at 10 orders/s, growing Redis with time rather than with the city (make soak
 * flagged it). */
#define TOMBSTONE_TTL_S "3600"
#define DEMAND_WINDOW_MIN 10
/* A demand counter outlives the window by a minute. */
#define DEMAND_TTL_S "660"
#define GEO_MAX_LAT 85.05112878
#define GEO_MAX_LAT_S "85.05112878"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    char b[32];
} num_t;

static num_t num_ll(long long v)
{
    num_t n;
    snprintf(n.b, sizeof n.b, "%lld", v);
    return n;
}

static num_t num_deg(double v)
{
    num_t n;
    snprintf(n.b, sizeof n.b, "%.7f", v);
    return n;
}

/* A reply usable as a result: NULL (unreachable) and error replies become ANTAR_E_KV, logged
 * with the operation's name (never with values: they may carry ids only, but keep it uniform). */
static antar_err_t reply_ok(redisReply *r, const char *op)
{
    if (!r) {
        antar_log_json("error", "redis_unreachable", json_pack("{ss}", "op", op));
        return ANTAR_E_KV;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        antar_log_json("error", "redis_error", json_pack("{ss ss}", "op", op, "error", r->str));
        return ANTAR_E_KV;
    }
    return ANTAR_OK;
}

/* reply_ok for a reply whose content is not needed; frees it. */
static antar_err_t reply_done(redisReply *r, const char *op)
{
    antar_err_t err = reply_ok(r, op);
    if (r)
        freeReplyObject(r);
    return err;
}

/* cmd ("EVAL" or "EVALSHA") of script (its text or SHA1) with nkeys keys followed by the
 * arguments; args[] holds keys then ARGV. Small calls use the stack; a long argument list (the
 * position batches) is allocated. NULL when out of memory. */
static redisReply *eval_cmd(const char *cmd, const char *script, int nkeys, const char *const *args,
                            int nargs)
{
    const char *argv_small[24];
    size_t lens_small[24];
    const char **argv = argv_small;
    size_t *lens = lens_small;
    char nk[8];
    if (nargs < 0)
        return NULL;
    if (nargs + 3 > 24) {
        argv = malloc((size_t)(nargs + 3) * sizeof *argv);
        lens = malloc((size_t)(nargs + 3) * sizeof *lens);
        if (!argv || !lens) {
            free(argv);
            free(lens);
            return NULL;
        }
    }
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = cmd;
    argv[1] = script;
    argv[2] = nk;
    for (int i = 0; i < nargs; i++)
        argv[3 + i] = args[i];
    for (int i = 0; i < nargs + 3; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = antar_kv_commandv(nargs + 3, argv, lens);
    if (argv != argv_small) {
        free(argv);
        free(lens);
    }
    return r;
}

static redisReply *eval(const char *script, int nkeys, const char *const *args, int nargs)
{
    return eval_cmd("EVAL", script, nkeys, args, nargs);
}

#define EVAL(script, nkeys, ...)                                                                   \
    eval(script, nkeys, (const char *const[]){__VA_ARGS__},                                        \
         (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)))

static long long reply_int(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

typedef struct {
    char b[64];
} rkey_t;

static rkey_t key_driver(long long id, const char *suffix)
{
    rkey_t k;
    snprintf(k.b, sizeof k.b, "driver:%lld%s", id, suffix);
    return k;
}

static rkey_t key_dispatch(long long id, const char *suffix)
{
    rkey_t k;
    snprintf(k.b, sizeof k.b, "dispatch:%lld%s", id, suffix);
    return k;
}

static rkey_t key_geo(const char *vt)
{
    rkey_t k;
    snprintf(k.b, sizeof k.b, "geo:drivers:%s", vt);
    return k;
}

static bool geo_lat_ok(double lat)
{
    return lat >= -GEO_MAX_LAT && lat <= GEO_MAX_LAT;
}

/* ---- presence ---------------------------------------------------------------------------- */

static const char lua_online[] =
    "local st = redis.call('HGET', KEYS[1], 'status')\n"
    "if st ~= 'busy' then st = 'available' end\n"
    "redis.call('HSET', KEYS[1], 'status', st, 'vehicle_type', ARGV[2])\n"
    "redis.call('ZREM', KEYS[3], ARGV[1])\n"
    "if ARGV[3] == '1' then\n"
    "  redis.call('GEOADD', KEYS[2], ARGV[4], ARGV[5], ARGV[1])\n"
    "  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])\n"
    "elseif ARGV[3] == '2' then\n"
    "  redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "  redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "end\n"
    "return 1\n";

antar_err_t core_store_presence_online(long long driver_id, const char *vt, bool has_pos,
                                       double lat, double lng, long long now_ms)
{
    const char *other = strcmp(vt, "car") == 0 ? "motorcycle" : "car";
    /* A position Redis cannot index (beyond ±85.05°) is no usable position: the driver leaves
     * the index rather than keep an old one. */
    const char *pos = !has_pos ? "0" : geo_lat_ok(lat) ? "1" : "2";
    num_t id = num_ll(driver_id), n_lng = num_deg(lng), n_lat = num_deg(lat), now = num_ll(now_ms);
    rkey_t k1 = key_driver(driver_id, ""), k2 = key_geo(vt), k3 = key_geo(other);
    redisReply *r = EVAL(lua_online, 4, k1.b, k2.b, k3.b, "drivers:seen", id.b, vt, pos, n_lng.b,
                         n_lat.b, now.b);
    return reply_done(r, "presence_online");
}

static const char lua_offline[] = "redis.call('ZREM', KEYS[2], ARGV[1])\n"
                                  "redis.call('ZREM', KEYS[3], ARGV[1])\n"
                                  "redis.call('ZREM', KEYS[4], ARGV[1])\n"
                                  "if redis.call('HGET', KEYS[1], 'status') ~= 'busy' then\n"
                                  "  redis.call('HSET', KEYS[1], 'status', 'offline')\n"
                                  "end\n"
                                  "return 1\n";

antar_err_t core_store_presence_offline(long long driver_id)
{
    num_t id = num_ll(driver_id);
    rkey_t k1 = key_driver(driver_id, "");
    redisReply *r = EVAL(lua_offline, 4, k1.b, "geo:drivers:motorcycle", "geo:drivers:car",
                         "drivers:seen", id.b);
    return reply_done(r, "presence_offline");
}

/* ---- busy drivers ------------------------------------------------------------------------
 * Every driver core holds busy is in drivers:busy, scored with when the sweep (sweep.c) should
 * next ask whether their order is still on: a write that frees a driver can be lost (a Redis
 * master that dies before its replica has it), and nothing else would ever free them. */

static _Atomic long long g_busy_check_ms = 60000;

void core_store_busy_check_set(long long ms)
{
    g_busy_check_ms = ms;
}

static num_t busy_next_check(void)
{
    return num_ll(antar_now_ms() + g_busy_check_ms);
}

static const char lua_busy_due[] =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local h = redis.call('HMGET', 'driver:' .. id, 'status', 'order_id')\n"
    "  if h[1] == 'busy' and h[2] then\n"
    "    redis.call('ZADD', KEYS[1], ARGV[2], id)\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = h[2]\n"
    "  else\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  end\n"
    "end\n"
    "return out\n";

antar_err_t core_store_busy_due(long long now_ms, core_busy_t *out, size_t max, size_t *n)
{
    num_t now = num_ll(now_ms), next = busy_next_check(), lim = num_ll((long long)max);
    redisReply *r = EVAL(lua_busy_due, 1, "drivers:busy", now.b, next.b, lim.b);
    antar_err_t err = reply_ok(r, "busy_due");
    if (err == ANTAR_OK) {
        size_t k = 0;
        if (r->type == REDIS_REPLY_ARRAY)
            for (size_t i = 0; i + 1 < r->elements && k < max; i += 2) {
                out[k] = (core_busy_t){.driver_id = reply_int(r->element[i]),
                                       .order_id = reply_int(r->element[i + 1])};
                if (out[k].driver_id > 0 && out[k].order_id > 0)
                    k++;
            }
        *n = k;
    }
    if (r)
        freeReplyObject(r);
    return err;
}

static const char lua_availability[] =
    "if ARGV[1] == '1' then\n"
    "  local cur = redis.call('HGET', KEYS[1], 'order_id')\n"
    "  if ARGV[2] ~= '0' and cur and cur ~= ARGV[2] then return 0 end\n"
    "  if redis.call('HGET', KEYS[1], 'status') ~= 'offline' then\n"
    "    redis.call('HSET', KEYS[1], 'status', 'available')\n"
    "  end\n"
    "  redis.call('HDEL', KEYS[1], 'order_id')\n"
    "  redis.call('ZREM', KEYS[2], ARGV[4])\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 'status', 'busy', 'order_id', ARGV[2])\n"
    "  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])\n"
    "end\n"
    "return 1\n";

antar_err_t core_store_availability(long long driver_id, bool available, long long order_id,
                                    bool *applied)
{
    num_t oid = num_ll(order_id), next = busy_next_check(), did = num_ll(driver_id);
    rkey_t k1 = key_driver(driver_id, "");
    redisReply *r = EVAL(lua_availability, 2, k1.b, "drivers:busy", available ? "1" : "0", oid.b,
                         next.b, did.b);
    antar_err_t err = reply_ok(r, "availability");
    if (err == ANTAR_OK)
        *applied = reply_int(r) == 1;
    if (r)
        freeReplyObject(r);
    return err;
}

static const char lua_purge[] =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 1000)\n"
    "for _, id in ipairs(ids) do\n"
    "  redis.call('ZREM', KEYS[2], id)\n"
    "  redis.call('ZREM', KEYS[3], id)\n"
    "  redis.call('ZREM', KEYS[1], id)\n"
    "end\n"
    "return #ids\n";

antar_err_t core_store_purge_stale(long long cutoff_ms, long long *purged)
{
    num_t cut = num_ll(cutoff_ms);
    redisReply *r =
        EVAL(lua_purge, 3, "drivers:seen", "geo:drivers:motorcycle", "geo:drivers:car", cut.b);
    antar_err_t err = reply_ok(r, "purge_stale");
    if (err == ANTAR_OK)
        *purged = reply_int(r);
    if (r)
        freeReplyObject(r);
    return err;
}

/* Lua prelude shared by the scripts that look for drivers: each_free(geo, seen, vt, lng, lat,
 * radius, cutoff, fn) walks the drivers of vt within radius metres of the point, nearest first
 * (at most 64), that are available and were seen at or after cutoff, and calls fn(id, lock key)
 * for each until fn returns something other than nil/false, which it returns. */
#define LUA_EACH_FREE                                                                              \
    "local function each_free(geo, seen_key, vt, lng, lat, radius, cutoff, fn)\n"                  \
    "  local ids = redis.call('GEOSEARCH', geo, 'FROMLONLAT', lng, lat,\n"                         \
    "                         'BYRADIUS', radius, 'm', 'ASC', 'COUNT', 64)\n"                      \
    "  for _, id in ipairs(ids) do\n"                                                              \
    "    local seen = redis.call('ZSCORE', seen_key, id)\n"                                        \
    "    if seen and tonumber(seen) >= tonumber(cutoff) then\n"                                    \
    "      local st = redis.call('HMGET', 'driver:' .. id, 'status', 'vehicle_type')\n"            \
    "      if st[1] == 'available' and st[2] == vt then\n"                                         \
    "        local r = fn(id, 'driver:' .. id .. ':offer')\n"                                      \
    "        if r then return r end\n"                                                             \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return nil\n"                                                                               \
    "end\n"

/* The first free driver not yet tried for the order gets locked (SET NX PX: a driver holds at
 * most one live offer) and marked tried. */
static const char lua_pick[] = LUA_EACH_FREE
    "local id = each_free(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],\n"
    "  function(id, lock)\n"
    "    if redis.call('SISMEMBER', KEYS[3], id) == 1 then return nil end\n"
    "    if not redis.call('SET', lock, ARGV[6], 'NX', 'PX', ARGV[7]) then return nil end\n"
    "    redis.call('SADD', KEYS[3], id)\n"
    "    redis.call('EXPIRE', KEYS[3], ARGV[8])\n"
    "    return id\n"
    "  end)\n"
    "return id or false\n";

/* ---- demand ------------------------------------------------------------------------------ */

/* Demand is the number of distinct customers per cell and window, not of requests: one
 * HyperLogLog per cell and minute (PFADD of the customer id; PFCOUNT over the window's keys is
 * the union), so one customer asking 150 times counts once. And the keys one customer can make
 * are bounded: a set per customer and minute holds the cells they were counted in, and past
 * ANTAR_DEMAND_CELLS_PER_MIN cells a further cell is not counted (no new key). The same snippet
 * runs inside lua_fare_inputs: KEYS[a] the cell's HLL, KEYS[b] the customer's cell set,
 * ARGV[m] the customer id, ARGV[t] the TTL, ARGV[c] the cap. */
#define LUA_DEMAND_ADD(a, b, m, t, c)                                                              \
    "local function demand_add()\n"                                                                \
    "  local fresh = redis.call('SADD', KEYS[" b "], KEYS[" a "])\n"                               \
    "  if fresh == 1 then\n"                                                                       \
    "    redis.call('EXPIRE', KEYS[" b "], 120)\n"                                                 \
    "    if redis.call('SCARD', KEYS[" b "]) > tonumber(ARGV[" c "]) then\n"                       \
    "      redis.call('SREM', KEYS[" b "], KEYS[" a "])\n"                                         \
    "      return 0\n"                                                                             \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  redis.call('PFADD', KEYS[" a "], ARGV[" m "])\n"                                            \
    "  redis.call('EXPIRE', KEYS[" a "], ARGV[" t "])\n"                                           \
    "  return 1\n"                                                                                 \
    "end\n"

static const char lua_demand_add[] =
    LUA_DEMAND_ADD("1", "2", "1", "2", "3") "return demand_add()\n";

/* ANTAR_DEMAND_CELLS_PER_MIN as the script's argument, read once. */
static char g_demand_cap[24];
static pthread_once_t g_demand_cap_once = PTHREAD_ONCE_INIT;

static void demand_cap_load(void)
{
    snprintf(g_demand_cap, sizeof g_demand_cap, "%ld",
             antar_config_long("ANTAR_DEMAND_CELLS_PER_MIN", 5, 1, 10000));
}

static const char *demand_cap(void)
{
    pthread_once(&g_demand_cap_once, demand_cap_load);
    return g_demand_cap;
}

static void demand_keys(const char *cell, long long minute, long long user_id, char *hll, size_t hn,
                        char *mine, size_t mn)
{
    snprintf(hll, hn, "demand:hll:%s:%lld", cell, minute);
    snprintf(mine, mn, "demand:acct:%lld:%lld", user_id, minute);
}

antar_err_t core_store_demand_add(const char *cell, long long user_id, long long now_ms)
{
    char key[96], mine[96], uid[24];
    demand_keys(cell, now_ms / 60000, user_id, key, sizeof key, mine, sizeof mine);
    snprintf(uid, sizeof uid, "%lld", user_id);
    redisReply *r = EVAL(lua_demand_add, 2, key, mine, uid, DEMAND_TTL_S, demand_cap());
    return reply_done(r, "demand_add");
}

/* Script cache for the hot path: EVALSHA with the SHA1 Redis gave back from SCRIPT LOAD, so
 * Redis neither receives nor hashes the body on every request. state: 0 not loaded, 1 one
 * thread is loading it (the others EVAL meanwhile), 2 sha is set for good. A NOSCRIPT answer
 * (Redis restarted or SCRIPT FLUSH) falls back to EVAL, which puts the script back into
 * Redis's cache, so the next EVALSHA works again. */
typedef struct {
    const char *src;
    atomic_int state;
    char sha[41];
} lua_cached_t;

static void cached_load(lua_cached_t *s)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&s->state, &expect, 1))
        return;
    redisReply *r = antar_kv_command("SCRIPT LOAD %s", s->src);
    if (r && r->type == REDIS_REPLY_STRING && r->len == 40) {
        memcpy(s->sha, r->str, 40);
        s->sha[40] = '\0';
        atomic_store(&s->state, 2);
    } else
        atomic_store(&s->state, 0); /* try again on a later call */
    if (r)
        freeReplyObject(r);
}

/* eval() through the script cache; same arguments and reply. */
static redisReply *eval_cached(lua_cached_t *s, int nkeys, const char *const *args, int nargs)
{
    if (atomic_load(&s->state) != 2)
        cached_load(s);
    if (atomic_load(&s->state) != 2)
        return eval(s->src, nkeys, args, nargs);
    redisReply *r = eval_cmd("EVALSHA", s->sha, nkeys, args, nargs);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        r = eval(s->src, nkeys, args, nargs);
    }
    return r;
}

/* Everything an estimate needs from Redis in one round trip (it was four: the demand INCR,
 * the MGET of the window, the supply count, then the quote): KEYS[1..10] the demand counters
 * of the window, this minute first; KEYS[11] the type's geo index; KEYS[12] drivers:seen.
 * ARGV: count this request ('1'/'0'), counter TTL, vehicle type, lng, lat, radius, cutoff,
 * whether the point is indexable ('1'/'0'). Returns {demand, supply}. Counting and reading in
 * one script also means the demand read always includes this request's own count. */
static lua_cached_t lua_fare_inputs = {
    .src = LUA_EACH_FREE LUA_DEMAND_ADD(
        "1", "13", "9", "2",
        "10") "local near\n"
              "if ARGV[1] == '1' then demand_add() end\n"
              "local demand = redis.call('PFCOUNT', unpack(KEYS, 1, 10))\n"
              "local supply = 0\n"
              "if ARGV[8] == '1' then\n"
              "  each_free(KEYS[11], KEYS[12], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7],\n"
              "    function(id, lock)\n"
              "      if redis.call('EXISTS', lock) == 0 then\n"
              "        supply = supply + 1\n"
              "        if not near then near = id end\n"
              "      end\n"
              "      return nil\n"
              "    end)\n"
              "end\n"
              "if near then\n"
              "  local p = redis.call('GEOPOS', KEYS[11], near)[1]\n"
              "  if p then return {demand, supply, p[1], p[2]} end\n"
              "end\n"
              "return {demand, supply}\n",
};

antar_err_t core_store_fare_inputs(const char *cell, long long user_id, long long now_ms,
                                   bool count_demand, const char *vt, double lat, double lng,
                                   long radius_m, long long cutoff_ms, long long *demand,
                                   long long *supply, double *near_lat, double *near_lng)
{
    _Static_assert(DEMAND_WINDOW_MIN == 10, "lua_fare_inputs reads KEYS[1..10]");
    rkey_t keys[DEMAND_WINDOW_MIN], mine;
    char uid[24];
    long long minute = now_ms / 60000;
    for (int i = DEMAND_WINDOW_MIN - 1; i >= 0; i--) /* mine ends as this minute's */
        demand_keys(cell, minute - i, user_id, keys[i].b, sizeof keys[i].b, mine.b, sizeof mine.b);
    snprintf(uid, sizeof uid, "%lld", user_id);
    num_t n_lng = num_deg(lng), n_lat = num_deg(lat), rad = num_ll(radius_m),
          cut = num_ll(cutoff_ms);
    rkey_t geo = key_geo(vt);
    /* A point beyond what Redis can index (±85.05°) has no driver around it: no GEOSEARCH. */
    const char *args[] = {keys[0].b,
                          keys[1].b,
                          keys[2].b,
                          keys[3].b,
                          keys[4].b,
                          keys[5].b,
                          keys[6].b,
                          keys[7].b,
                          keys[8].b,
                          keys[9].b,
                          geo.b,
                          "drivers:seen",
                          mine.b,
                          count_demand ? "1" : "0",
                          DEMAND_TTL_S,
                          vt,
                          n_lng.b,
                          n_lat.b,
                          rad.b,
                          cut.b,
                          geo_lat_ok(lat) ? "1" : "0",
                          uid,
                          demand_cap()};
    redisReply *r = eval_cached(&lua_fare_inputs, 13, args, (int)(sizeof args / sizeof args[0]));
    antar_err_t err = reply_ok(r, "fare_inputs");
    if (err == ANTAR_OK &&
        (r->type != REDIS_REPLY_ARRAY || (r->elements != 2 && r->elements != 4))) {
        antar_log_json(
            "error", "redis_error",
            json_pack("{ss ss}", "op", "fare_inputs", "error", "unexpected reply shape"));
        err = ANTAR_E_KV;
    }
    if (err == ANTAR_OK) {
        *demand = reply_int(r->element[0]);
        *supply = reply_int(r->element[1]);
        *near_lat = *near_lng = NAN;
        if (r->elements == 4 && r->element[2]->type == REDIS_REPLY_STRING &&
            r->element[3]->type == REDIS_REPLY_STRING) {
            *near_lng = strtod(r->element[2]->str, NULL);
            *near_lat = strtod(r->element[3]->str, NULL);
        }
    }
    if (r)
        freeReplyObject(r);
    return err;
}

/* ---- position batches ------------------------------------------------------------------- */

/* The location pings of many drivers in one round trip. ARGV[1] is now (ms), then one
 * (id, lng, lat) triple per driver. A driver is moved only when core knows them as online
 * (available or busy, the status left as it is); an offline driver is left out of the index;
 * a driver with no state here (Redis lost it, or never told) is returned as unknown, for
 * driver-service to tell us again in full. A latitude Redis cannot index takes the driver out
 * of the index, as presence does. Returns {applied, ignored, {unknown ids}}. */
static lua_cached_t lua_positions = {
    .src = "local applied, ignored, unknown = 0, 0, {}\n"
           "for i = 2, #ARGV, 3 do\n"
           "  local id = ARGV[i]\n"
           "  local h = redis.call('HMGET', 'driver:' .. id, 'status', 'vehicle_type')\n"
           "  local vt = h[2]\n"
           "  if h[1] == 'offline' then\n"
           "    ignored = ignored + 1\n"
           "  elseif not h[1] or (vt ~= 'motorcycle' and vt ~= 'car') then\n"
           "    unknown[#unknown + 1] = id\n"
           "  else\n"
           "    local lat = tonumber(ARGV[i + 2])\n"
           "    if lat >= -" GEO_MAX_LAT_S " and lat <= " GEO_MAX_LAT_S " then\n"
           "      redis.call('GEOADD', 'geo:drivers:' .. vt, ARGV[i + 1], ARGV[i + 2], id)\n"
           "      redis.call('ZADD', 'drivers:seen', ARGV[1], id)\n"
           "    else\n"
           "      redis.call('ZREM', 'geo:drivers:' .. vt, id)\n"
           "      redis.call('ZREM', 'drivers:seen', id)\n"
           "    end\n"
           "    applied = applied + 1\n"
           "  end\n"
           "end\n"
           "return {applied, ignored, unknown}\n",
};

antar_err_t core_store_positions(const core_position_t *p, size_t n, long long now_ms,
                                 long long *applied, long long *ignored, long long *unknown,
                                 size_t *n_unknown)
{
    num_t now = num_ll(now_ms);
    num_t *nums = calloc(n * 3, sizeof *nums);
    const char **args = calloc(1 + n * 3, sizeof *args);
    antar_err_t err = ANTAR_E_NOMEM;
    redisReply *r = NULL;
    if (!nums || !args)
        goto out;
    args[0] = now.b;
    for (size_t i = 0; i < n; i++) {
        nums[3 * i] = num_ll(p[i].driver_id);
        nums[3 * i + 1] = num_deg(p[i].lng);
        nums[3 * i + 2] = num_deg(p[i].lat);
        for (size_t k = 0; k < 3; k++)
            args[1 + 3 * i + k] = nums[3 * i + k].b;
    }
    r = eval_cached(&lua_positions, 0, args, (int)(1 + n * 3));
    err = reply_ok(r, "positions");
    if (err == ANTAR_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
                            r->element[2]->type != REDIS_REPLY_ARRAY)) {
        antar_log_json("error", "redis_error",
                       json_pack("{ss ss}", "op", "positions", "error", "unexpected reply shape"));
        err = ANTAR_E_KV;
    }
    if (err == ANTAR_OK) {
        const redisReply *u = r->element[2];
        *applied = reply_int(r->element[0]);
        *ignored = reply_int(r->element[1]);
        *n_unknown = 0;
        for (size_t i = 0; i < u->elements && i < n; i++)
            unknown[(*n_unknown)++] = reply_int(u->element[i]);
    }
out:
    if (r)
        freeReplyObject(r);
    free(nums);
    free(args);
    return err;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

void core_dispatch_clean(core_dispatch_t *d)
{
    json_decref(d->payload);
    memset(d, 0, sizeof *d);
}

static const char lua_create[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then\n"
    "  return 0\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'payload', ARGV[1], 'attempts', 0, 'started_ms', ARGV[2])\n"
    "redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])\n"
    "return 1\n";

antar_err_t core_store_dispatch_create(long long order_id, json_t *payload, long long now_ms,
                                       bool *created)
{
    char *text = json_dumps(payload, JSON_COMPACT);
    if (!text)
        return ANTAR_E_NOMEM;
    num_t oid = num_ll(order_id), now = num_ll(now_ms);
    rkey_t k1 = key_dispatch(order_id, ""), k2 = key_dispatch(order_id, ":done");
    redisReply *r = EVAL(lua_create, 3, k1.b, k2.b, "dispatch:due", text, now.b, oid.b);
    free(text);
    antar_err_t err = reply_ok(r, "dispatch_create");
    if (err == ANTAR_OK)
        *created = reply_int(r) == 1;
    if (r)
        freeReplyObject(r);
    return err;
}

static const char lua_claim[] =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  if redis.call('SET', 'dispatch:' .. id .. ':claim', '1', 'NX', 'PX', ARGV[4]) then\n"
    "    redis.call('ZADD', KEYS[1], ARGV[2], id)\n"
    "    out[#out + 1] = id\n"
    "  end\n"
    "end\n"
    "return out\n";

antar_err_t core_store_dispatch_claim(long long now_ms, long long lease_ms, long long *ids,
                                      size_t max, size_t *n)
{
    /* At most max due orders are looked at (every one found is leased, so no more may be
     * taken than will be worked on); those leased by another worker are skipped. */
    num_t now = num_ll(now_ms), until = num_ll(now_ms + lease_ms), lim = num_ll((long long)max),
          lease = num_ll(lease_ms);
    redisReply *r = EVAL(lua_claim, 1, "dispatch:due", now.b, until.b, lim.b, lease.b);
    antar_err_t err = reply_ok(r, "dispatch_claim");
    if (err == ANTAR_OK) {
        size_t k = 0;
        if (r->type == REDIS_REPLY_ARRAY)
            for (size_t i = 0; i < r->elements && k < max; i++) {
                long long id = reply_int(r->element[i]);
                if (id > 0)
                    ids[k++] = id;
            }
        *n = k;
    }
    if (r)
        freeReplyObject(r);
    return err;
}

antar_err_t core_store_dispatch_release(long long order_id)
{
    rkey_t k = key_dispatch(order_id, ":claim");
    redisReply *r = antar_kv_command("DEL %s", k.b);
    return reply_done(r, "dispatch_release");
}

antar_err_t core_store_dispatch_load(long long order_id, core_dispatch_t *d)
{
    core_dispatch_t t = {.order_id = order_id};
    rkey_t k = key_dispatch(order_id, "");
    redisReply *r = antar_kv_command("HGETALL %s", k.b);
    antar_err_t err = reply_ok(r, "dispatch_load");
    if (err != ANTAR_OK)
        goto out;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const redisReply *f = r->element[i], *v = r->element[i + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(f->str, "payload") == 0) {
                json_decref(t.payload);
                t.payload = json_loadb(v->str, v->len, 0, NULL);
            } else if (strcmp(f->str, "attempts") == 0)
                t.attempts = strtoll(v->str, NULL, 10);
            else if (strcmp(f->str, "started_ms") == 0)
                t.started_ms = strtoll(v->str, NULL, 10);
            else if (strcmp(f->str, "offer_id") == 0)
                t.offer_id = strtoll(v->str, NULL, 10);
            else if (strcmp(f->str, "offer_driver") == 0)
                t.offer_driver = strtoll(v->str, NULL, 10);
            else if (strcmp(f->str, "offer_deadline_ms") == 0)
                t.offer_deadline_ms = strtoll(v->str, NULL, 10);
        }
    }
    if (!json_is_object(t.payload)) {
        /* No hash (finished or cancelled) — or one without a payload, which nothing writes. */
        json_decref(t.payload);
        err = ANTAR_E_NOT_FOUND;
        goto out;
    }
    *d = t;
out:
    if (r)
        freeReplyObject(r);
    return err;
}

antar_err_t core_store_dispatch_pick(long long order_id, const char *vt, double lat, double lng,
                                     long radius_m, long long cutoff_ms, long long lock_ms,
                                     long long *driver_id)
{
    if (!geo_lat_ok(lat)) {
        *driver_id = 0;
        return ANTAR_OK;
    }
    num_t n_lng = num_deg(lng), n_lat = num_deg(lat), rad = num_ll(radius_m),
          cut = num_ll(cutoff_ms), oid = num_ll(order_id), lock = num_ll(lock_ms);
    rkey_t geo = key_geo(vt), tried = key_dispatch(order_id, ":tried");
    /* The tried set outlives the longest dispatch so that nobody is asked twice. */
    redisReply *r = EVAL(lua_pick, 3, geo.b, "drivers:seen", tried.b, vt, n_lng.b, n_lat.b, rad.b,
                         cut.b, oid.b, lock.b, "86400");
    antar_err_t err = reply_ok(r, "dispatch_pick");
    if (err == ANTAR_OK)
        *driver_id = r->type == REDIS_REPLY_NIL ? 0 : reply_int(r);
    if (r)
        freeReplyObject(r);
    return err;
}

static const char lua_unpick[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                 "  redis.call('DEL', KEYS[1])\n"
                                 "end\n"
                                 "if ARGV[3] == '1' then redis.call('SREM', KEYS[2], ARGV[2]) end\n"
                                 "return 1\n";

antar_err_t core_store_dispatch_unpick(long long order_id, long long driver_id, bool forget)
{
    num_t oid = num_ll(order_id), did = num_ll(driver_id);
    rkey_t lock = key_driver(driver_id, ":offer"), tried = key_dispatch(order_id, ":tried");
    redisReply *r = EVAL(lua_unpick, 2, lock.b, tried.b, oid.b, did.b, forget ? "1" : "0");
    return reply_done(r, "dispatch_unpick");
}

static const char lua_offered[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "redis.call('HINCRBY', KEYS[1], 'attempts', 1)\n"
    "if redis.call('HGET', KEYS[1], 'rejected_offer') == ARGV[2] then\n"
    "  redis.call('HDEL', KEYS[1], 'rejected_offer')\n"
    "  return 2\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'offer_id', ARGV[2], 'offer_driver', ARGV[1],\n"
    "           'offer_deadline_ms', ARGV[3])\n"
    "redis.call('ZADD', KEYS[2], 'LT', ARGV[3], ARGV[4])\n"
    "return 1\n";

antar_err_t core_store_dispatch_offered(long long order_id, long long driver_id, long long offer_id,
                                        long long deadline_ms, int *outcome)
{
    num_t did = num_ll(driver_id), ofid = num_ll(offer_id), dl = num_ll(deadline_ms),
          oid = num_ll(order_id);
    rkey_t k1 = key_dispatch(order_id, "");
    redisReply *r = EVAL(lua_offered, 2, k1.b, "dispatch:due", did.b, ofid.b, dl.b, oid.b);
    antar_err_t err = reply_ok(r, "dispatch_offered");
    if (err == ANTAR_OK)
        *outcome = (int)reply_int(r);
    if (r)
        freeReplyObject(r);
    return err;
}

static const char lua_offer_done[] =
    "redis.call('HDEL', KEYS[1], 'offer_id', 'offer_driver', 'offer_deadline_ms')\n"
    "if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end\n"
    "return 1\n";

antar_err_t core_store_dispatch_offer_done(long long order_id, long long driver_id)
{
    num_t oid = num_ll(order_id);
    rkey_t k1 = key_dispatch(order_id, ""), k2 = key_driver(driver_id, ":offer");
    redisReply *r = EVAL(lua_offer_done, 2, k1.b, k2.b, oid.b);
    return reply_done(r, "dispatch_offer_done");
}

static const char lua_reschedule[] = "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
                                     "  redis.call('ZREM', KEYS[2], ARGV[2])\n"
                                     "  return 0\n"
                                     "end\n"
                                     "redis.call('ZADD', KEYS[2], 'LT', ARGV[1], ARGV[2])\n"
                                     "return 1\n";

antar_err_t core_store_dispatch_reschedule(long long order_id, long long due_ms)
{
    num_t due = num_ll(due_ms), oid = num_ll(order_id);
    rkey_t k1 = key_dispatch(order_id, "");
    redisReply *r = EVAL(lua_reschedule, 2, k1.b, "dispatch:due", due.b, oid.b);
    return reply_done(r, "dispatch_reschedule");
}

static const char lua_rejected[] =
    "if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "if redis.call('HGET', KEYS[1], 'offer_id') == ARGV[3] then\n"
    "  redis.call('HDEL', KEYS[1], 'offer_id', 'offer_driver', 'offer_deadline_ms')\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 'rejected_offer', ARGV[3])\n"
    "end\n"
    "redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])\n"
    "return 1\n";

antar_err_t core_store_dispatch_rejected(long long order_id, long long driver_id,
                                         long long offer_id, long long now_ms)
{
    num_t oid = num_ll(order_id), did = num_ll(driver_id), ofid = num_ll(offer_id),
          now = num_ll(now_ms);
    rkey_t k1 = key_dispatch(order_id, ""), k2 = key_driver(driver_id, ":offer");
    redisReply *r = EVAL(lua_rejected, 3, k1.b, k2.b, "dispatch:due", oid.b, did.b, ofid.b, now.b);
    return reply_done(r, "dispatch_rejected");
}

/* An acceptance after a cancellation must not leave the driver busy with a dead order; after an
 * expiry it still counts, because user-service only assigns a searching order. */
/* Applied once: the same acceptance arrives twice (driver-service's message and the worker's
 * expiry, which learns it from driver-service), and the second may come after the trip is over
 * and the driver freed — it must not make the driver busy again. */
static const char lua_accepted[] =
    "local done = redis.call('GET', KEYS[3])\n"
    "if done == 'cancelled' then return 0 end\n"
    "if done == 'accepted:' .. ARGV[2] then return 1 end\n"
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "redis.call('SET', KEYS[3], 'accepted:' .. ARGV[2], 'EX', " TOMBSTONE_TTL_S ")\n"
    "redis.call('HSET', KEYS[5], 'status', 'busy', 'order_id', ARGV[1])\n"
    "redis.call('ZADD', KEYS[7], ARGV[3], ARGV[2])\n"
    "if redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end\n"
    "return 1\n";

antar_err_t core_store_dispatch_accepted(long long order_id, long long driver_id)
{
    num_t oid = num_ll(order_id), did = num_ll(driver_id), next = busy_next_check();
    rkey_t k1 = key_dispatch(order_id, ""), k2 = key_dispatch(order_id, ":tried"),
           k3 = key_dispatch(order_id, ":done"), k5 = key_driver(driver_id, ""),
           k6 = key_driver(driver_id, ":offer");
    redisReply *r = EVAL(lua_accepted, 7, k1.b, k2.b, k3.b, "dispatch:due", k5.b, k6.b,
                         "drivers:busy", oid.b, did.b, next.b);
    return reply_done(r, "dispatch_accepted");
}

static const char lua_cancel[] =
    "local drv = redis.call('HGET', KEYS[1], 'offer_driver')\n"
    "if drv then\n"
    "  local lock = 'driver:' .. drv .. ':offer'\n"
    "  if redis.call('GET', lock) == ARGV[1] then redis.call('DEL', lock) end\n"
    "end\n"
    "local done = redis.call('GET', KEYS[3])\n"
    "if done and string.sub(done, 1, 9) == 'accepted:' then\n"
    "  local dk = 'driver:' .. string.sub(done, 10)\n"
    "  if redis.call('HGET', dk, 'order_id') == ARGV[1] then\n"
    "    redis.call('HDEL', dk, 'order_id')\n"
    "    redis.call('ZREM', KEYS[5], string.sub(done, 10))\n"
    "    if redis.call('HGET', dk, 'status') == 'busy' then\n"
    "      redis.call('HSET', dk, 'status', 'available')\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "redis.call('SET', KEYS[3], 'cancelled', 'EX', " TOMBSTONE_TTL_S ")\n"
    "return 1\n";

/* Run one of the scripts that end an order's dispatch (cancel, expired): both take the
 * order's state, tried set, tombstone, the due set and the busy set as keys, and the order id. */
static antar_err_t dispatch_finish(long long order_id, const char *script, const char *what)
{
    num_t oid = num_ll(order_id);
    rkey_t k1 = key_dispatch(order_id, ""), k2 = key_dispatch(order_id, ":tried"),
           k3 = key_dispatch(order_id, ":done");
    redisReply *r = EVAL(script, 5, k1.b, k2.b, k3.b, "dispatch:due", "drivers:busy", oid.b);
    return reply_done(r, what);
}

antar_err_t core_store_dispatch_cancel(long long order_id)
{
    return dispatch_finish(order_id, lua_cancel, "dispatch_cancel");
}

static const char lua_expired[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "local drv = redis.call('HGET', KEYS[1], 'offer_driver')\n"
    "if drv then\n"
    "  local lock = 'driver:' .. drv .. ':offer'\n"
    "  if redis.call('GET', lock) == ARGV[1] then redis.call('DEL', lock) end\n"
    "end\n"
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "redis.call('SET', KEYS[3], 'expired', 'EX', " TOMBSTONE_TTL_S ")\n"
    "return 1\n";

antar_err_t core_store_dispatch_expired(long long order_id)
{
    return dispatch_finish(order_id, lua_expired, "dispatch_expired");
}

/* ---- audit (the ops client) ------------------------------------------------------------------ */

/* SCAN rounds one page may take before it answers with what it has (maybe nothing) and a
 * cursor: a keyspace with few matching keys must not hold a request for long. */
#define AUDIT_SCAN_ROUNDS 64
/* Cursors past this are refused by the paging helper (http.h); Redis's never get near it. */
#define AUDIT_SCAN_MAX (1LL << 62)
/* The largest page, and so the largest COUNT a cursor can carry (routes.c's limit bound). */
#define AUDIT_COUNT_MAX 1000

/* The id of key "<prefix><digits>", or 0 when the key has another shape (driver:5:offer,
 * dispatch:due, dispatch:7:tried). */
static long long key_id(const char *key, size_t len, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (len <= pl || len - pl > 15 || memcmp(key, prefix, pl) != 0 || key[pl] == '0')
        return 0;
    long long v = 0;
    for (size_t i = pl; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return 0;
        v = v * 10 + (key[i] - '0');
    }
    return v;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Up to limit ids of the hashes "<prefix><id>" from *from (see core_scan_pos_t). Within one SCAN
 * batch ids are listed in ascending order, so that a page that ends inside a batch can resume
 * it: the batch is read again with the same cursor and COUNT and the ids up to the last one
 * listed are skipped. */
static antar_err_t scan_ids(const char *prefix, const core_scan_pos_t *from, int limit,
                            long long *ids, size_t *n, core_scan_pos_t *next, bool *more)
{
    /* A cursor's COUNT is one this code wrote (at most a page's limit); a made-up larger one
     * must not make one SCAN call walk the whole keyspace. */
    long long cur = from->scan, after = from->after,
              count = from->count > 0 && from->count <= AUDIT_COUNT_MAX ? from->count : limit;
    char match[32];
    snprintf(match, sizeof match, "%s*", prefix);
    *n = 0;
    for (int round = 0; round < AUDIT_SCAN_ROUNDS; round++) {
        num_t c = num_ll(cur), cn = num_ll(count);
        redisReply *r = antar_kv_command("SCAN %s MATCH %s COUNT %s TYPE hash", c.b, match, cn.b);
        antar_err_t err = reply_ok(r, "audit_scan");
        if (err == ANTAR_OK &&
            (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
             r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY))
            err = ANTAR_E_KV;
        if (err != ANTAR_OK) {
            if (r)
                freeReplyObject(r);
            return err;
        }
        const redisReply *keys = r->element[1];
        long long next_cur = strtoll(r->element[0]->str, NULL, 10);
        long long *batch = malloc((keys->elements + 1) * sizeof *batch);
        if (!batch) {
            freeReplyObject(r);
            return ANTAR_E_NOMEM;
        }
        size_t bn = 0;
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *k = keys->element[i];
            long long id = k->type == REDIS_REPLY_STRING ? key_id(k->str, k->len, prefix) : 0;
            if (id > after)
                batch[bn++] = id;
        }
        freeReplyObject(r);
        qsort(batch, bn, sizeof *batch, cmp_ll);
        size_t room = (size_t)limit - *n;
        if (bn > room) {
            memcpy(ids + *n, batch, room * sizeof *batch);
            *n += room;
            *next = (core_scan_pos_t){.scan = cur, .count = count, .after = ids[*n - 1]};
            *more = true;
            free(batch);
            return ANTAR_OK;
        }
        memcpy(ids + *n, batch, bn * sizeof *batch);
        *n += bn;
        free(batch);
        if (next_cur <= 0 || next_cur > AUDIT_SCAN_MAX) {
            *more = false;
            return ANTAR_OK;
        }
        cur = next_cur;
        after = 0;
        count = limit;
        if (*n == (size_t)limit)
            break;
    }
    *next = (core_scan_pos_t){.scan = cur, .count = 0, .after = 0};
    *more = true;
    return ANTAR_OK;
}

/* ids as one space-separated argument: a page's worth of ids in one script call. */
static char *ids_join(const long long *ids, size_t n)
{
    char *s = malloc(n * 17 + 1);
    if (!s)
        return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, 18, "%s%lld", i ? " " : "", ids[i]);
    return s;
}

/* A script answer's field: its integer, or 0 when nil or not a number. */
static long long field_ll(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    char *end = NULL;
    long long v = strtoll(r->str, &end, 10);
    return end && *end == '\0' ? v : 0;
}

/* A ms timestamp as an RFC 3339 string, or null when the field is missing. */
static json_t *field_time(const redisReply *r)
{
    /* ZSCORE answers a double's text ("1715000000000" or with an exponent for big ones). */
    if (!r || r->type != REDIS_REPLY_STRING)
        return json_null();
    char *end = NULL;
    double v = strtod(r->str, &end);
    if (!end || *end || v <= 0)
        return json_null();
    char ts[32];
    antar_time_rfc3339((long long)v, ts);
    return json_string(ts);
}

static json_t *field_str(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING ? json_stringn(r->str, r->len) : json_null();
}

static json_t *field_id(const redisReply *r)
{
    long long v = field_ll(r);
    return v > 0 ? json_integer(v) : json_null();
}

typedef json_t *(*audit_row_fn)(const redisReply *row);

/* One page: SCAN for ids, then one script call that reads every listed key (ids whose hash is
 * gone by then are left out) and to_json for each row the script answered. */
static antar_err_t audit_page(const char *prefix, const char *script, size_t width,
                              audit_row_fn to_json, const core_scan_pos_t *from, int limit,
                              json_t **items, core_scan_pos_t *next, bool *more)
{
    long long *ids = malloc((size_t)limit * sizeof *ids);
    json_t *out = json_array();
    char *arg = NULL;
    redisReply *r = NULL;
    size_t n = 0;
    core_scan_pos_t nx = {0};
    bool mo = false;
    antar_err_t err = ids && out ? ANTAR_OK : ANTAR_E_NOMEM;
    if (err == ANTAR_OK)
        err = scan_ids(prefix, from, limit, ids, &n, &nx, &mo);
    if (err != ANTAR_OK || n == 0)
        goto done;
    if (!(arg = ids_join(ids, n))) {
        err = ANTAR_E_NOMEM;
        goto done;
    }
    r = EVAL(script, 0, arg);
    if ((err = reply_ok(r, "audit_read")) != ANTAR_OK)
        goto done;
    if (r->type != REDIS_REPLY_ARRAY) {
        err = ANTAR_E_KV;
        goto done;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *row = r->element[i];
        if (row->type == REDIS_REPLY_ARRAY && row->elements == width)
            json_array_append_new(out, to_json(row));
    }
done:
    if (r)
        freeReplyObject(r);
    free(arg);
    free(ids);
    if (err != ANTAR_OK) {
        json_decref(out);
        return err;
    }
    *items = out;
    *next = nx;
    *more = mo;
    return ANTAR_OK;
}

/* {id, status, vehicle_type, order_id, seen ms, offer lock} per driver hash still there. */
static const char lua_presence_audit[] =
    "local out = {}\n"
    "for id in string.gmatch(ARGV[1], '%d+') do\n"
    "  local k = 'driver:' .. id\n"
    "  if redis.call('EXISTS', k) == 1 then\n"
    "    local h = redis.call('HMGET', k, 'status', 'vehicle_type', 'order_id')\n"
    "    out[#out + 1] = {id, h[1] or false, h[2] or false, h[3] or false,\n"
    "      redis.call('ZSCORE', 'drivers:seen', id) or false,\n"
    "      redis.call('GET', k .. ':offer') or false}\n"
    "  end\n"
    "end\n"
    "return out\n";

static json_t *presence_row(const redisReply *row)
{
    redisReply *const *e = row->element;
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "driver_id", (json_int_t)field_ll(e[0]),
                     "status", field_str(e[1]), "vehicle_type", field_str(e[2]), "order_id",
                     field_id(e[3]), "seen_at", field_time(e[4]), "offer_order_id", field_id(e[5]));
}

antar_err_t core_store_presence_audit(const core_scan_pos_t *from, int limit, json_t **items,
                                      core_scan_pos_t *next, bool *more)
{
    return audit_page("driver:", lua_presence_audit, 6, presence_row, from, limit, items, next,
                      more);
}

/* {order_id, attempts, started ms, offer driver, offer deadline ms, due ms} per live dispatch. */
static const char lua_dispatch_audit[] =
    "local out = {}\n"
    "for id in string.gmatch(ARGV[1], '%d+') do\n"
    "  local k = 'dispatch:' .. id\n"
    "  if redis.call('EXISTS', k) == 1 then\n"
    "    local h = redis.call('HMGET', k, 'attempts', 'started_ms', 'offer_driver',\n"
    "                         'offer_deadline_ms')\n"
    "    out[#out + 1] = {id, h[1] or false, h[2] or false, h[3] or false, h[4] or false,\n"
    "      redis.call('ZSCORE', 'dispatch:due', id) or false}\n"
    "  end\n"
    "end\n"
    "return out\n";

static json_t *dispatch_row(const redisReply *row)
{
    redisReply *const *e = row->element;
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:o}", "order_id", (json_int_t)field_ll(e[0]),
                     "attempts", (json_int_t)field_ll(e[1]), "started_at", field_time(e[2]),
                     "offer_driver_id", field_id(e[3]), "offer_deadline_at", field_time(e[4]),
                     "due_at", field_time(e[5]));
}

antar_err_t core_store_dispatch_audit(const core_scan_pos_t *from, int limit, json_t **items,
                                      core_scan_pos_t *next, bool *more)
{
    return audit_page("dispatch:", lua_dispatch_audit, 6, dispatch_row, from, limit, items, next,
                      more);
}

/* ---- the city for the console (GET /ops/city) ---------------------------------------------- */

/* ARGV: 1 lng, 2 lat, 3 box side in km, 4 most drivers per vehicle type, 5 most orders.
 * Returns {drivers, orders}: drivers {id, vehicle_type, lng, lat, status, order_id, offer 0/1}
 * (everyone in the geo index: online, available or busy), orders {id, payload, attempts,
 * offer_driver} (the dispatches still open). */
static const char lua_city[] =
    "local drivers, orders = {}, {}\n"
    "for _, vt in ipairs({'motorcycle', 'car'}) do\n"
    "  local r = redis.call('GEOSEARCH', 'geo:drivers:' .. vt, 'FROMLONLAT', ARGV[1], ARGV[2],\n"
    "    'BYBOX', ARGV[3], ARGV[3], 'km', 'ASC', 'COUNT', ARGV[4], 'WITHCOORD')\n"
    "  for _, e in ipairs(r) do\n"
    "    local h = redis.call('HMGET', 'driver:' .. e[1], 'status', 'order_id')\n"
    "    drivers[#drivers + 1] = {e[1], vt, e[2][1], e[2][2], h[1] or '', h[2] or '',\n"
    "      redis.call('EXISTS', 'driver:' .. e[1] .. ':offer')}\n"
    "  end\n"
    "end\n"
    "for _, id in ipairs(redis.call('ZRANGE', 'dispatch:due', 0, tonumber(ARGV[5]) - 1)) do\n"
    "  local h = redis.call('HMGET', 'dispatch:' .. id, 'payload', 'attempts', 'offer_driver')\n"
    "  if h[1] then orders[#orders + 1] = {id, h[1], h[2] or '0', h[3] or ''} end\n"
    "end\n"
    "return {drivers, orders}\n";

/* ARGV: 1 this minute, then cells. Distinct customers of each cell over the demand window (the
 * ten minutes the fares use). */
_Static_assert(DEMAND_WINDOW_MIN == 10, "lua_city_demand reads minutes 0..9 back");
static const char lua_city_demand[] =
    "local out = {}\n"
    "for i = 2, #ARGV do\n"
    "  local keys = {}\n"
    "  for m = 0, 9 do\n"
    "    keys[#keys + 1] = 'demand:hll:' .. ARGV[i] .. ':' .. (tonumber(ARGV[1]) - m)\n"
    "  end\n"
    "  out[#out + 1] = redis.call('PFCOUNT', unpack(keys))\n"
    "end\n"
    "return out\n";

/* The geo index answers positions to ~1e-14°; a map needs a decimetre. */
static double round6(double v)
{
    return round(v * 1e6) / 1e6;
}

static const char *rstr(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING ? r->str : "";
}

antar_err_t core_store_city(double lat, double lng, double box_km, int max_drivers, int max_orders,
                            json_t **drivers, json_t **orders)
{
    num_t n_lng = num_deg(lng), n_lat = num_deg(lat), md = num_ll(max_drivers),
          mo = num_ll(max_orders);
    char box[32];
    snprintf(box, sizeof box, "%.3f", box_km);
    redisReply *r = EVAL(lua_city, 0, n_lng.b, n_lat.b, box, md.b, mo.b);
    antar_err_t err = reply_ok(r, "city");
    if (err != ANTAR_OK || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (r)
            freeReplyObject(r);
        if (err != ANTAR_OK)
            return err;
        freeReplyObject(r);
        return ANTAR_E_KV;
    }
    json_t *d = json_array(), *o = json_array();
    const redisReply *dr = r->element[0], *orr = r->element[1];
    for (size_t i = 0; d && dr->type == REDIS_REPLY_ARRAY && i < dr->elements; i++) {
        const redisReply *row = dr->element[i];
        if (row->type != REDIS_REPLY_ARRAY || row->elements != 7)
            continue;
        redisReply *const *e = row->element;
        const char *status = rstr(e[4]);
        const char *state = !strcmp(status, "busy")        ? "busy"
                            : field_ll(e[6]) > 0           ? "offered"
                            : !strcmp(status, "available") ? "available"
                                                           : "offline";
        json_array_append_new(d, json_pack("{s:I, s:s, s:f, s:f, s:s, s:o}", "driver_id",
                                           (json_int_t)field_ll(e[0]), "vehicle_type", rstr(e[1]),
                                           "lat", round6(strtod(rstr(e[3]), NULL)), "lng",
                                           round6(strtod(rstr(e[2]), NULL)), "state", state,
                                           "order_id", field_id(e[5])));
    }
    for (size_t i = 0; o && orr->type == REDIS_REPLY_ARRAY && i < orr->elements; i++) {
        const redisReply *row = orr->element[i];
        if (row->type != REDIS_REPLY_ARRAY || row->elements != 4)
            continue;
        redisReply *const *e = row->element;
        json_t *p = json_loads(rstr(e[1]), 0, NULL);
        json_t *item =
            json_pack("{s:I, s:I, s:o}", "order_id", (json_int_t)field_ll(e[0]), "attempts",
                      (json_int_t)field_ll(e[2]), "offer_driver_id", field_id(e[3]));
        /* Only the payload's trip fields: it is what core was told to dispatch. */
        static const char *const keep[] = {"pickup_lat",  "pickup_lng",   "dropoff_lat",
                                           "dropoff_lng", "vehicle_type", "price"};
        for (size_t k = 0; item && p && k < sizeof keep / sizeof keep[0]; k++) {
            json_t *v = json_object_get(p, keep[k]);
            if (v)
                json_object_set(item, keep[k], v);
        }
        json_decref(p);
        if (item && json_object_get(item, "pickup_lat"))
            json_array_append_new(o, item);
        else
            json_decref(item);
    }
    freeReplyObject(r);
    if (!d || !o) {
        json_decref(d);
        json_decref(o);
        return ANTAR_E_NOMEM;
    }
    *drivers = d;
    *orders = o;
    return ANTAR_OK;
}

antar_err_t core_store_city_demand(const char *const *cells, size_t n, long long now_ms,
                                   long long *demand)
{
    if (n == 0)
        return ANTAR_OK;
    const char **args = calloc(n + 1, sizeof *args);
    if (!args)
        return ANTAR_E_NOMEM;
    num_t minute = num_ll(now_ms / 60000);
    args[0] = minute.b;
    for (size_t i = 0; i < n; i++)
        args[i + 1] = cells[i];
    redisReply *r = eval(lua_city_demand, 0, args, (int)n + 1);
    free(args);
    antar_err_t err = reply_ok(r, "city_demand");
    if (err != ANTAR_OK) {
        if (r)
            freeReplyObject(r);
        return err;
    }
    for (size_t i = 0; i < n; i++)
        demand[i] = r->type == REDIS_REPLY_ARRAY && i < r->elements ? reply_int(r->element[i]) : 0;
    freeReplyObject(r);
    return ANTAR_OK;
}

/* ---- the models' inputs (ai.c, docs/ai.md) ------------------------------------------------ */

/* Up to ARGV[6] free drivers for an order, nearest first, with their positions and their
 * offer record: what the dispatch ranking scores. The same tests as lua_pick (available, of
 * the type, fresh, untried, unlocked) but nothing is locked: core_store_dispatch_pick_one
 * takes the chosen one. KEYS: geo index, drivers:seen, the tried set. ARGV: vt, lng, lat,
 * radius, cutoff, max, the records' key prefix. Returns {{id, lng, lat, offers, accepts}, …}. */
static lua_cached_t lua_candidates = {
    .src = "local ids = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[2], ARGV[3],\n"
           "  'BYRADIUS', ARGV[4], 'm', 'ASC', 'COUNT', 64, 'WITHCOORD')\n"
           "local out = {}\n"
           "for _, it in ipairs(ids) do\n"
           "  local id = it[1]\n"
           "  local seen = redis.call('ZSCORE', KEYS[2], id)\n"
           "  if seen and tonumber(seen) >= tonumber(ARGV[5]) then\n"
           "    local st = redis.call('HMGET', 'driver:' .. id, 'status', 'vehicle_type')\n"
           "    if st[1] == 'available' and st[2] == ARGV[1] and\n"
           "       redis.call('SISMEMBER', KEYS[3], id) == 0 and\n"
           "       redis.call('EXISTS', 'driver:' .. id .. ':offer') == 0 then\n"
           "      local r = redis.call('HMGET', ARGV[7] .. id, 'n', 'a')\n"
           "      out[#out + 1] = {id, it[2][1], it[2][2], r[1] or '0', r[2] or '0'}\n"
           "      if #out >= tonumber(ARGV[6]) then break end\n"
           "    end\n"
           "  end\n"
           "end\n"
           "return out\n",
};

static double reply_num(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return (double)r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtod(r->str, NULL);
    return 0;
}

antar_err_t core_store_dispatch_candidates(long long order_id, const char *vt, double lat,
                                           double lng, long radius_m, long long cutoff_ms,
                                           long long epoch, core_candidate_t *out, size_t max,
                                           size_t *n)
{
    *n = 0;
    if (!geo_lat_ok(lat))
        return ANTAR_OK;
    num_t n_lng = num_deg(lng), n_lat = num_deg(lat), rad = num_ll(radius_m),
          cut = num_ll(cutoff_ms), mx = num_ll((long long)max);
    rkey_t geo = key_geo(vt), tried = key_dispatch(order_id, ":tried");
    rkey_t prefix;
    snprintf(prefix.b, sizeof prefix.b, "ai:drv:%lld:", epoch);
    const char *args[] = {geo.b,   "drivers:seen", tried.b, vt,   n_lng.b,
                          n_lat.b, rad.b,          cut.b,   mx.b, prefix.b};
    redisReply *r = eval_cached(&lua_candidates, 3, args, (int)(sizeof args / sizeof args[0]));
    antar_err_t err = reply_ok(r, "dispatch_candidates");
    if (err == ANTAR_OK && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements && *n < max; i++) {
            const redisReply *it = r->element[i];
            if (it->type != REDIS_REPLY_ARRAY || it->elements != 5)
                continue;
            out[*n] = (core_candidate_t){
                .driver_id = reply_int(it->element[0]),
                .lng = reply_num(it->element[1]),
                .lat = reply_num(it->element[2]),
                .offers = reply_num(it->element[3]),
                .accepts = reply_num(it->element[4]),
            };
            (*n)++;
        }
    }
    if (r)
        freeReplyObject(r);
    return err;
}

/* Take one chosen candidate: still available, of the type, fresh and untried, then locked and
 * marked tried as lua_pick does. KEYS: the tried set, driver:<id>, driver:<id>:offer,
 * drivers:seen. ARGV: id, vt, cutoff, order_id, lock ms, tried TTL. 1 taken, 0 not. */
static lua_cached_t lua_pick_one = {
    .src = "local st = redis.call('HMGET', KEYS[2], 'status', 'vehicle_type')\n"
           "if st[1] ~= 'available' or st[2] ~= ARGV[2] then return 0 end\n"
           "local seen = redis.call('ZSCORE', KEYS[4], ARGV[1])\n"
           "if not seen or tonumber(seen) < tonumber(ARGV[3]) then return 0 end\n"
           "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end\n"
           "if not redis.call('SET', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[5]) then return 0 end\n"
           "redis.call('SADD', KEYS[1], ARGV[1])\n"
           "redis.call('EXPIRE', KEYS[1], ARGV[6])\n"
           "return 1\n",
};

antar_err_t core_store_dispatch_pick_one(long long order_id, long long driver_id, const char *vt,
                                         long long cutoff_ms, long long lock_ms, bool *taken)
{
    num_t did = num_ll(driver_id), cut = num_ll(cutoff_ms), oid = num_ll(order_id),
          lock = num_ll(lock_ms);
    rkey_t tried = key_dispatch(order_id, ":tried"), drv = key_driver(driver_id, ""),
           lk = key_driver(driver_id, ":offer");
    const char *args[] = {tried.b, drv.b, lk.b,  "drivers:seen", did.b,
                          vt,      cut.b, oid.b, lock.b,         "86400"};
    redisReply *r = eval_cached(&lua_pick_one, 4, args, (int)(sizeof args / sizeof args[0]));
    antar_err_t err = reply_ok(r, "dispatch_pick_one");
    if (err == ANTAR_OK)
        *taken = reply_int(r) == 1;
    if (r)
        freeReplyObject(r);
    return err;
}

antar_err_t core_store_ai_offer_outcome(long long epoch, long long driver_id, bool accepted)
{
    rkey_t k;
    snprintf(k.b, sizeof k.b, "ai:drv:%lld:%lld", epoch, driver_id);
    redisReply *r = EVAL("redis.call('HINCRBY', KEYS[1], 'n', 1)\n"
                         "if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[1], 'a', 1) end\n"
                         "redis.call('EXPIRE', KEYS[1], 604800)\n"
                         "return 1\n",
                         1, k.b, accepted ? "1" : "0");
    return reply_done(r, "ai_offer_outcome");
}

static void ai_dem_key(char *b, size_t n, long long epoch, long ilat, long ilng, bool all,
                       long long bucket)
{
    if (all)
        snprintf(b, n, "ai:dem:%lld:all:%lld", epoch, bucket);
    else
        snprintf(b, n, "ai:dem:%lld:%ld:%ld:%lld", epoch, ilat, ilng, bucket);
}

antar_err_t core_store_ai_demand_add(long long epoch, long ilat, long ilng, long long bucket,
                                     long ttl_s)
{
    rkey_t a, b;
    num_t ttl = num_ll(ttl_s);
    ai_dem_key(a.b, sizeof a.b, epoch, ilat, ilng, false, bucket);
    ai_dem_key(b.b, sizeof b.b, epoch, 0, 0, true, bucket);
    redisReply *r = EVAL("for i = 1, 2 do\n"
                         "  redis.call('INCR', KEYS[i])\n"
                         "  redis.call('EXPIRE', KEYS[i], ARGV[1])\n"
                         "end\n"
                         "return 1\n",
                         2, a.b, b.b, ttl.b);
    return reply_done(r, "ai_demand_add");
}

antar_err_t core_store_ai_demand_counts(long long epoch, long ilat, long ilng, long long bucket,
                                        double *last15, double *last60, double *city15)
{
    /* 12 buckets of the cell (the last hour, this one included) and 3 of the whole city. */
    rkey_t k[15];
    const char *argv[16];
    size_t lens[16];
    argv[0] = "MGET";
    lens[0] = 4;
    for (int i = 0; i < 12; i++)
        ai_dem_key(k[i].b, sizeof k[i].b, epoch, ilat, ilng, false, bucket - i);
    for (int i = 0; i < 3; i++)
        ai_dem_key(k[12 + i].b, sizeof k[12 + i].b, epoch, 0, 0, true, bucket - i);
    for (int i = 0; i < 15; i++) {
        argv[1 + i] = k[i].b;
        lens[1 + i] = strlen(k[i].b);
    }
    redisReply *r = antar_kv_commandv(16, argv, lens);
    antar_err_t err = reply_ok(r, "ai_demand_counts");
    if (err == ANTAR_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != 15))
        err = ANTAR_E_KV;
    if (err == ANTAR_OK) {
        *last15 = *last60 = *city15 = 0;
        for (int i = 0; i < 15; i++) {
            double v = r->element[i]->type == REDIS_REPLY_STRING ? reply_num(r->element[i]) : 0;
            if (i < 3)
                *last15 += v;
            if (i < 12)
                *last60 += v;
            else
                *city15 += v;
        }
    }
    if (r)
        freeReplyObject(r);
    return err;
}

antar_err_t core_store_driver_position(const char *vt, long long driver_id, double *lat,
                                       double *lng)
{
    rkey_t geo = key_geo(vt);
    num_t id = num_ll(driver_id);
    redisReply *r = antar_kv_command("GEOPOS %s %s", geo.b, id.b);
    antar_err_t err = reply_ok(r, "driver_position");
    if (err == ANTAR_OK) {
        const redisReply *p =
            r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0] : NULL;
        if (p && p->type == REDIS_REPLY_ARRAY && p->elements == 2) {
            *lng = reply_num(p->element[0]);
            *lat = reply_num(p->element[1]);
        } else
            err = ANTAR_E_NOT_FOUND;
    }
    if (r)
        freeReplyObject(r);
    return err;
}
