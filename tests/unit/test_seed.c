/* lib/seed.c — the simulator's account pool: the argument and password checks, inserting only
 * the missing accounts in batches, the output, and a refusing database. The store is a table in
 * memory here; the services' SQL behind it is tested by the integration tests (test_seed.py). */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "antar/password.h"
#include "antar/seed.h"

static json_t *table;  /* rows {id, email, vehicle_type} */
static int inserts;    /* insert calls */
static size_t largest; /* most accounts one insert call got */
static int fail_after; /* insert calls that succeed before one fails; -1 = never */
static char last_hash[ANTAR_PASSWORD_HASH_MAX];

static antar_err_t list(const char *pattern, json_t **rows)
{
    cr_assert_str_eq(pattern, "sim-driver-%@sim.antar.id");
    *rows = json_deep_copy(table);
    return ANTAR_OK;
}

static antar_err_t insert(const long *nums, size_t n, const char *hash)
{
    if (fail_after == 0)
        return ANTAR_E_DUPLICATE;
    if (fail_after > 0)
        fail_after--;
    inserts++;
    largest = n > largest ? n : largest;
    snprintf(last_hash, sizeof last_hash, "%s", hash);
    for (size_t i = 0; i < n; i++) {
        char email[ANTAR_SEED_EMAIL_MAX];
        antar_seed_email("sim-driver-", nums[i], email);
        json_array_append_new(
            table, json_pack("{s:I,s:s,s:s}", "id", (json_int_t)(1000 + json_array_size(table)),
                             "email", email, "vehicle_type", nums[i] % 2 ? "motorcycle" : "car"));
    }
    return ANTAR_OK;
}

static const antar_seed_t pool = {"--seed-drivers", "driver", "sim-driver-", 4, list, insert};

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    setenv("ANTAR_ARGON2_OPSLIMIT", "1", 1);
    setenv("ANTAR_ARGON2_MEMLIMIT", "8192", 1);
    setenv("ANTAR_SEED_PASSWORD", "rahasia-sim-2025", 1);
    table = json_array();
    fail_after = -1;
}

static void teardown(void)
{
    json_decref(table);
}

TestSuite(seed, .init = setup, .fini = teardown);

/* Runs the command with stdout and stderr captured; returns stdout (caller frees), stderr into
 * err (caller frees), the exit status in *rc. */
static char *run(int argc, char **argv, int *rc, char **err)
{
    fflush(stdout);
    fflush(stderr);
    FILE *o = tmpfile(), *e = tmpfile();
    cr_assert(o && e);
    int so = dup(1), se = dup(2);
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    *rc = antar_seed_main(&pool, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    char *bufs[2];
    FILE *fs[2] = {o, e};
    for (int i = 0; i < 2; i++) {
        fseek(fs[i], 0, SEEK_END);
        long n = ftell(fs[i]);
        rewind(fs[i]);
        bufs[i] = calloc(1, (size_t)n + 1);
        cr_assert_eq(fread(bufs[i], 1, (size_t)n, fs[i]), (size_t)n);
        fclose(fs[i]);
    }
    *err = bufs[1];
    return bufs[0];
}

Test(seed, email_is_prefix_number_and_domain)
{
    char e[ANTAR_SEED_EMAIL_MAX];
    antar_seed_email("sim-driver-", 42, e);
    cr_assert_str_eq(e, "sim-driver-000042@sim.antar.id");
    antar_seed_email("sim-customer-", ANTAR_SEED_MAX, e);
    cr_assert_str_eq(e, "sim-customer-999999@sim.antar.id");
}

Test(seed, inserts_in_batches_and_prints_every_account)
{
    char *argv[] = {"10"};
    int rc;
    char *err, *out = run(1, argv, &rc, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(inserts, 3, "10 accounts in batches of 4 are 3 inserts, not %d", inserts);
    cr_assert_eq(largest, 4);
    cr_assert(strstr(out, "driver\t1000\tmotorcycle\tsim-driver-000001@sim.antar.id\n"), "%s", out);
    cr_assert(strstr(out, "driver\t1001\tcar\tsim-driver-000002@sim.antar.id\n"), "%s", out);
    int lines = 0;
    for (const char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    cr_assert_eq(lines, 10);
    cr_assert(strstr(err, "10 accounts, 10 created now"), "%s", err);
    /* One hash for all, of the environment's password. */
    cr_assert(antar_password_verify(last_hash, "rahasia-sim-2025"));
    free(out);
    free(err);
}

Test(seed, a_second_run_creates_only_the_missing_ones)
{
    char *three[] = {"3"}, *five[] = {"5"};
    int rc;
    char *err, *out = run(1, three, &rc, &err);
    cr_assert_eq(rc, 0);
    free(out);
    free(err);
    /* An account outside the pool's numbering that matches the pattern is ignored. */
    json_array_append_new(table,
                          json_pack("{s:i,s:s}", "id", 7, "email", "sim-driver-x@sim.antar.id"));
    inserts = 0;
    out = run(1, five, &rc, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(inserts, 1);
    cr_assert(strstr(err, "5 accounts, 2 created now"), "%s", err);
    cr_assert(strstr(out, "sim-driver-000005@sim.antar.id"), "%s", out);
    cr_assert_null(strstr(out, "sim-driver-x@"), "%s", out);
    free(out);
    free(err);
}

Test(seed, bad_arguments_and_passwords_are_refused_before_any_insert)
{
    static char *cases[][2] = {
        {"0", NULL}, {"-3", NULL}, {"12x", NULL}, {"1000000", NULL}, {"", NULL}};
    int rc;
    char *err, *out;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        out = run(1, cases[i], &rc, &err);
        cr_assert_eq(rc, 2, "argument \"%s\"", cases[i][0]);
        cr_assert(strstr(err, "takes one argument"), "%s", err);
        free(out);
        free(err);
    }
    char *two[] = {"3", "4"};
    out = run(2, two, &rc, &err);
    cr_assert_eq(rc, 2);
    free(out);
    free(err);
    char *ok[] = {"3"};
    setenv("ANTAR_SEED_PASSWORD", "short", 1);
    out = run(1, ok, &rc, &err);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(err, "8 to 128 bytes"), "%s", err);
    free(out);
    free(err);
    unsetenv("ANTAR_SEED_PASSWORD");
    out = run(1, ok, &rc, &err);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(err, "ANTAR_SEED_PASSWORD is not set"), "%s", err);
    cr_assert_null(strstr(err, "rahasia"), "a password in a message: %s", err);
    free(out);
    free(err);
    cr_assert_eq(inserts, 0);
}

Test(seed, a_refusing_database_says_how_far_it_got)
{
    fail_after = 1; /* the first batch goes in, the second is refused */
    char *argv[] = {"10"};
    int rc;
    char *err, *out = run(1, argv, &rc, &err);
    cr_assert_eq(rc, 1);
    cr_assert(strstr(err, "duplicate"), "%s", err);
    cr_assert(strstr(err, "4 accounts were created before that"), "%s", err);
    cr_assert_str_eq(out, "", "no partial list on stdout");
    free(out);
    free(err);
}
