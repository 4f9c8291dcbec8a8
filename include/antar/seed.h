/* antar/seed.h — the simulator's account pool: what --seed-drivers and --seed-customers share.
 *
 * Account n (1..ANTAR_SEED_MAX) of a pool is the one whose email is
 * <prefix><n, zero-padded to 6 digits>@sim.antar.id; the services derive the other fields (name,
 * phone, plate …) from n the same way every run, so a run is idempotent: it inserts only the
 * accounts of 1..N that do not exist yet, then prints all N, one line each, tab-separated:
 * <kind> <id> <type or "-"> <email>.
 *
 * Every account a run inserts gets the same password hash: ONE Argon2id hash of
 * $ANTAR_SEED_PASSWORD (hashing 20,000 passwords one by one would take about half an hour).
 * The password comes from the environment, never the command line, which `ps` shows.
 */
#ifndef ANTAR_SEED_H
#define ANTAR_SEED_H

#include <stddef.h>
#include <jansson.h>

#include "antar/error.h"

#define ANTAR_SEED_MAX 999999
/* Longest seeded email, NUL included. */
#define ANTAR_SEED_EMAIL_MAX 64

typedef struct {
    const char *flag;         /* "--seed-drivers", for messages */
    const char *kind;         /* first output column: "driver" */
    const char *email_prefix; /* "sim-driver-" */
    size_t batch;             /* most accounts per insert call */
    /* The existing accounts whose email matches the LIKE pattern: rows {id, email} and
     * optionally "vehicle_type" (printed as the third column; "-" without). New reference. */
    antar_err_t (*list)(const char *pattern, json_t **rows);
    /* Insert accounts nums[0..n) (1 ≤ n ≤ batch) in one transaction, every one with password
     * hash. Nothing inserted on error. */
    antar_err_t (*insert)(const long *nums, size_t n, const char *hash);
} antar_seed_t;

/* The whole command: parse "N" from argv (argc must be 1), hash $ANTAR_SEED_PASSWORD, insert
 * the missing accounts of 1..N in batches, print all N on stdout. Returns the exit status: 0;
 * 2 for a bad argument or password; 1 when the database fails (message on stderr). */
int antar_seed_main(const antar_seed_t *s, int argc, char **argv);

/* The email of account n of the pool with that prefix, into out (ANTAR_SEED_EMAIL_MAX). */
void antar_seed_email(const char *prefix, long n, char out[ANTAR_SEED_EMAIL_MAX]);

#endif
