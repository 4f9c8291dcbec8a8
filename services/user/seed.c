/* user-service: the simulator's customers (antar-user --seed-customers N, antar/seed.h).
 *
 * Customer n: "Sim User 000042", sim-user-000042@sim.antar.id, phone 0898 + n on 8 digits. */
#include <stdio.h>

#include "antar/http.h"
#include "antar/seed.h"
#include "user.h"

#define SEED_PREFIX "sim-user-"

typedef struct {
    char name[32], email[ANTAR_SEED_EMAIL_MAX], phone[24];
} seed_fields_t;

static antar_err_t seed_insert(const long *nums, size_t n, const char *hash)
{
    static seed_fields_t fields[STORE_USERS_BATCH];
    static store_user_new_t rows[STORE_USERS_BATCH];
    if (n > STORE_USERS_BATCH)
        return ANTAR_E_BAD_REQUEST;
    for (size_t i = 0; i < n; i++) {
        seed_fields_t *f = &fields[i];
        snprintf(f->name, sizeof f->name, "Sim User %06ld", nums[i]);
        antar_seed_email(SEED_PREFIX, nums[i], f->email);
        snprintf(f->phone, sizeof f->phone, "0898%08ld", nums[i]);
        /* Sign-up's own checks: a seeded customer is one the service could have signed up. */
        if (!antar_valid_email(f->email) || !antar_valid_phone(f->phone)) {
            fprintf(stderr, "--seed-customers: the fields of customer %ld are not valid\n",
                    nums[i]);
            return ANTAR_E_INVALID_FIELD;
        }
        rows[i] = (store_user_new_t){f->name, f->email, f->phone};
    }
    return store_users_insert_many(rows, n, hash);
}

int users_seed_command(int argc, char **argv)
{
    static const antar_seed_t seed = {
        .flag = "--seed-customers",
        .kind = "user",
        .email_prefix = SEED_PREFIX,
        .batch = STORE_USERS_BATCH,
        .list = store_users_email_like,
        .insert = seed_insert,
    };
    return antar_seed_main(&seed, argc, argv);
}
