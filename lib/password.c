/* lib/password.c — Argon2id password hashing with a bound on concurrent hashes.
 *
 * One Argon2id hash with the INTERACTIVE limits takes about 100 ms and 64 MiB. Without a bound,
 * a burst of fifty logins would ask for 3 GiB at once and starve every other request of CPU, so
 * every hash and verify first takes a slot of a counting semaphore (ANTAR_ARGON2_MAX_CONCURRENT,
 * default 2); the others wait in line (bounded latency instead of unbounded memory).
 * The line itself is bounded too, by design rather than by luck: at most ANTAR_ARGON2_MAX_QUEUE
 * (default 8) server threads wait, each at most ANTAR_ARGON2_MAX_WAIT_MS (default 1000 ms).
 * A caller that finds the line full, or waits too long, gets "busy" at once (the routes answer
 * 503 with Retry-After), so a burst of logins can never hold every server thread and stall
 * /health or the rest of the API.
 */
#include "antar/password.h"

#include "antar/config.h"
#include "antar/util.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static struct {
    pthread_once_t once;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int free_slots;
    int waiting, max_waiting;
    long max_wait_ms;
    unsigned long long opslimit;
    size_t memlimit;
    bool ready; /* sodium_init succeeded */
} g = {
    .once = PTHREAD_ONCE_INIT,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

static void password_setup(void)
{
    g.ready = sodium_init() >= 0;
    /* Out-of-range values fall back to the default rather than fail the start: a typo must not
     * weaken or disable hashing. */
    g.opslimit = (unsigned long long)antar_config_long(
        "ANTAR_ARGON2_OPSLIMIT", (long)crypto_pwhash_OPSLIMIT_INTERACTIVE,
        (long)crypto_pwhash_OPSLIMIT_MIN, (long)crypto_pwhash_OPSLIMIT_SENSITIVE);
    g.memlimit = (size_t)antar_config_long(
        "ANTAR_ARGON2_MEMLIMIT", (long)crypto_pwhash_MEMLIMIT_INTERACTIVE,
        (long)crypto_pwhash_MEMLIMIT_MIN, (long)crypto_pwhash_MEMLIMIT_SENSITIVE);
    g.free_slots = (int)antar_config_long("ANTAR_ARGON2_MAX_CONCURRENT", 2, 1, 64);
    g.max_waiting = (int)antar_config_long("ANTAR_ARGON2_MAX_QUEUE", 8, 0, 1024);
    g.max_wait_ms = antar_config_long("ANTAR_ARGON2_MAX_WAIT_MS", 1000, 1, 60000);
}

static _Thread_local bool t_busy;

/* Takes a slot, waiting in a bounded line for a bounded time. false (and t_busy set) when the
 * line is full or the wait ran out: the caller must not hash. */
static bool slot_take(void)
{
    pthread_once(&g.once, password_setup);
    t_busy = false;
    pthread_mutex_lock(&g.lock);
    if (g.free_slots <= 0) {
        if (g.waiting >= g.max_waiting) {
            pthread_mutex_unlock(&g.lock);
            t_busy = true;
            return false;
        }
        struct timespec until = antar_deadline_after(CLOCK_REALTIME, g.max_wait_ms);
        g.waiting++;
        int rc = 0;
        while (g.free_slots <= 0 && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&g.cond, &g.lock, &until);
        g.waiting--;
        if (g.free_slots <= 0) {
            pthread_mutex_unlock(&g.lock);
            t_busy = true;
            return false;
        }
    }
    g.free_slots--;
    pthread_mutex_unlock(&g.lock);
    return true;
}

bool antar_password_busy(void)
{
    return t_busy;
}

static void slot_give(void)
{
    pthread_mutex_lock(&g.lock);
    g.free_slots++;
    pthread_cond_signal(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

antar_err_t antar_password_hash(const char *password, char out[ANTAR_PASSWORD_HASH_MAX])
{
    _Static_assert(crypto_pwhash_STRBYTES <= ANTAR_PASSWORD_HASH_MAX, "hash buffer too small");
    if (!password)
        return ANTAR_E_BAD_REQUEST;
    if (!slot_take())
        return ANTAR_E_UNAVAILABLE;
    int rc =
        g.ready ? crypto_pwhash_str(out, password, strlen(password), g.opslimit, g.memlimit) : -1;
    slot_give();
    /* crypto_pwhash_str fails only when it cannot get its memory. */
    return rc == 0 ? ANTAR_OK : ANTAR_E_NOMEM;
}

/* A stored value that is not a bounded Argon2id string cannot match, and libsodium must never
 * read past a truncated one. */
static bool hash_usable(const char *hash)
{
    return hash && strnlen(hash, ANTAR_PASSWORD_HASH_MAX) < ANTAR_PASSWORD_HASH_MAX &&
           strncmp(hash, crypto_pwhash_argon2id_STRPREFIX,
                   strlen(crypto_pwhash_argon2id_STRPREFIX)) == 0;
}

bool antar_password_verify(const char *hash, const char *password)
{
    /* Rejected before spending a slot. */
    if (!password || !hash_usable(hash))
        return false;
    if (!slot_take())
        return false;
    int rc = g.ready ? crypto_pwhash_str_verify(hash, password, strlen(password)) : -1;
    slot_give();
    return rc == 0;
}

void antar_password_dummy_verify(const char *password)
{
    /* Deriving a key with the same limits costs what verifying a stored hash made with them
     * costs, and needs no stored hash (so no first-call spike to make one). */
    static const unsigned char salt[crypto_pwhash_SALTBYTES] = "antar-dummy-salt";
    unsigned char key[32];
    const char *p = password ? password : "";
    if (!slot_take())
        return;
    /* The result is thrown away either way; only the time spent matters. */
    if (g.ready && crypto_pwhash(key, sizeof key, p, strlen(p), salt, g.opslimit, g.memlimit,
                                 crypto_pwhash_ALG_ARGON2ID13) != 0)
        sodium_memzero(key, sizeof key);
    slot_give();
    sodium_memzero(key, sizeof key);
}

bool antar_password_check(const char *hash_or_null, const char *password)
{
    /* An unusable stored hash gets the dummy too: answering it fast would tell that the account
     * exists. */
    if (!hash_usable(hash_or_null)) {
        antar_password_dummy_verify(password);
        return false;
    }
    return antar_password_verify(hash_or_null, password);
}
