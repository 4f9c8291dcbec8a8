/* driver-service: the simulator's drivers (antar-driver --seed-drivers N, antar/seed.h).
 *
 * Driver n: "Sim Driver 000042", sim-driver-000042@sim.antar.id, phone 0899 + n on 8 digits,
 * plate "SM <n mod 10000, 4 digits> S<two letters from n / 10000>" (unique for every n up to
 * ANTAR_SEED_MAX), a car for every fourth driver and a motorcycle for the others. */
#include <stdio.h>

#include "antar/http.h"
#include "antar/seed.h"
#include "driver.h"

#define SEED_PREFIX "sim-driver-"

typedef struct {
    char name[32], email[ANTAR_SEED_EMAIL_MAX], phone[24], plate[DRIVER_PLATE_MAX];
} seed_fields_t;

/* The fields of driver n, checked with the rules sign-up applies, so that a seeded driver is
 * one the service could have signed up. false when one does not pass (a bug here). */
static bool seed_fields(long n, seed_fields_t *f, store_driver_new_t *row)
{
    char plate[DRIVER_PLATE_MAX];
    snprintf(f->name, sizeof f->name, "Sim Driver %06ld", n);
    antar_seed_email(SEED_PREFIX, n, f->email);
    snprintf(f->phone, sizeof f->phone, "0899%08ld", n);
    snprintf(plate, sizeof plate, "SM %04ld S%c%c", n % 10000, 'A' + (int)(n / 10000 / 26 % 26),
             'A' + (int)(n / 10000 % 26));
    if (!antar_valid_email(f->email) || !antar_valid_phone(f->phone) ||
        !driver_plate_normalize(plate, f->plate))
        return false;
    *row = (store_driver_new_t){f->name, f->email, f->phone, n % 4 == 0 ? "car" : "motorcycle",
                                f->plate};
    return true;
}

static antar_err_t seed_insert(const long *nums, size_t n, const char *hash)
{
    static seed_fields_t fields[STORE_DRIVERS_BATCH];
    static store_driver_new_t rows[STORE_DRIVERS_BATCH];
    if (n > STORE_DRIVERS_BATCH)
        return ANTAR_E_BAD_REQUEST;
    for (size_t i = 0; i < n; i++)
        if (!seed_fields(nums[i], &fields[i], &rows[i])) {
            fprintf(stderr, "--seed-drivers: the fields of driver %ld are not valid\n", nums[i]);
            return ANTAR_E_INVALID_FIELD;
        }
    return store_drivers_insert_many(rows, n, hash);
}

int driver_seed_command(int argc, char **argv)
{
    static const antar_seed_t seed = {
        .flag = "--seed-drivers",
        .kind = "driver",
        .email_prefix = SEED_PREFIX,
        .batch = STORE_DRIVERS_BATCH,
        .list = store_drivers_email_like,
        .insert = seed_insert,
    };
    return antar_seed_main(&seed, argc, argv);
}
