/* lib/seed.c — the simulator's account pool (antar/seed.h): argument, password, batches,
 * output. The services supply the SQL (their store layer) and the fields derived from n. */
#include "antar/seed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "antar/password.h"

#define SEED_DOMAIN "@sim.antar.id"

void antar_seed_email(const char *prefix, long n, char out[ANTAR_SEED_EMAIL_MAX])
{
    snprintf(out, ANTAR_SEED_EMAIL_MAX, "%s%06ld" SEED_DOMAIN, prefix, n);
}

/* n of a seeded email of this prefix, or 0 when email is not one (another account that merely
 * matches the LIKE pattern, say "sim-driver-x@sim.antar.id"). */
static long seed_number(const char *prefix, const char *email)
{
    size_t lp = strlen(prefix);
    if (!email || strncmp(email, prefix, lp) != 0)
        return 0;
    const char *d = email + lp;
    long n = 0;
    for (int i = 0; i < 6; i++) {
        if (d[i] < '0' || d[i] > '9')
            return 0;
        n = n * 10 + (d[i] - '0');
    }
    return strcmp(d + 6, SEED_DOMAIN) == 0 ? n : 0;
}

static int parse_count(int argc, char **argv, const char *flag, long *n)
{
    char *end = NULL;
    long v = 0;
    if (argc == 1 && argv[0][0] >= '0' && argv[0][0] <= '9') {
        errno = 0;
        v = strtol(argv[0], &end, 10);
        if (errno || *end)
            v = 0;
    }
    if (v < 1 || v > ANTAR_SEED_MAX) {
        fprintf(stderr, "%s takes one argument: how many accounts, 1 to %d\n", flag,
                ANTAR_SEED_MAX);
        return -1;
    }
    *n = v;
    return 0;
}

static int seed_hash(const char *flag, char hash[ANTAR_PASSWORD_HASH_MAX])
{
    const char *pw = getenv("ANTAR_SEED_PASSWORD");
    if (!pw || !*pw) {
        fprintf(stderr,
                "%s: ANTAR_SEED_PASSWORD is not set: put the seeded accounts' password in that "
                "environment variable (never on the command line)\n",
                flag);
        return -1;
    }
    /* Sign-up's rule, so that the seeded accounts can log in like any other. */
    size_t len = strlen(pw);
    if (len < 8 || len > 128) {
        fprintf(stderr, "%s: ANTAR_SEED_PASSWORD must be 8 to 128 bytes long, as at sign-up\n",
                flag);
        return -1;
    }
    if (antar_password_hash(pw, hash) != ANTAR_OK) {
        fprintf(stderr, "%s: could not hash ANTAR_SEED_PASSWORD (out of memory)\n", flag);
        return -1;
    }
    return 0;
}

/* Fill ids[1..n] (and types) from the accounts that exist now. */
static antar_err_t load_existing(const antar_seed_t *s, long n, long long *ids, char *types)
{
    char pattern[ANTAR_SEED_EMAIL_MAX];
    json_t *rows = NULL;
    snprintf(pattern, sizeof pattern, "%s%%" SEED_DOMAIN, s->email_prefix);
    antar_err_t err = s->list(pattern, &rows);
    if (err != ANTAR_OK)
        return err;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        long k = seed_number(s->email_prefix, json_string_value(json_object_get(r, "email")));
        if (k < 1 || k > n)
            continue;
        ids[k] = json_integer_value(json_object_get(r, "id"));
        const char *t = json_string_value(json_object_get(r, "vehicle_type"));
        types[k] = !t ? '-' : strcmp(t, "car") == 0 ? 'c' : 'm';
    }
    json_decref(rows);
    return ANTAR_OK;
}

static const char *type_name(char t)
{
    return t == 'c' ? "car" : t == 'm' ? "motorcycle" : "-";
}

int antar_seed_main(const antar_seed_t *s, int argc, char **argv)
{
    long n = 0;
    char hash[ANTAR_PASSWORD_HASH_MAX];
    if (parse_count(argc, argv, s->flag, &n) != 0 || seed_hash(s->flag, hash) != 0)
        return 2;
    int rc = 1;
    long long *ids = calloc((size_t)n + 1, sizeof *ids);
    char *types = calloc((size_t)n + 1, 1);
    long *batch = calloc(s->batch, sizeof *batch);
    if (!ids || !types || !batch) {
        fprintf(stderr, "%s: out of memory\n", s->flag);
        goto done;
    }
    antar_err_t err = load_existing(s, n, ids, types);
    size_t nb = 0;
    long created = 0;
    for (long k = 1; err == ANTAR_OK && k <= n; k++) {
        if (ids[k] == 0)
            batch[nb++] = k;
        if (nb > 0 && (nb == s->batch || k == n)) {
            err = s->insert(batch, nb, hash);
            created += err == ANTAR_OK ? (long)nb : 0;
            nb = 0;
        }
    }
    /* Read back the ids the database gave the new rows. */
    if (err == ANTAR_OK && created > 0)
        err = load_existing(s, n, ids, types);
    if (err != ANTAR_OK) {
        fprintf(stderr,
                "%s: the database refused (%s)%s; %ld accounts were created before that, and "
                "running the command again creates only the missing ones\n",
                s->flag, antar_err_code(err),
                err == ANTAR_E_DUPLICATE ? ": an account not from this pool holds one of its "
                                           "emails, phones or plates"
                                         : "",
                created);
        goto done;
    }
    for (long k = 1; k <= n; k++) {
        char email[ANTAR_SEED_EMAIL_MAX];
        if (ids[k] == 0) {
            fprintf(stderr, "%s: account %ld is missing after the inserts\n", s->flag, k);
            goto done;
        }
        antar_seed_email(s->email_prefix, k, email);
        printf("%s\t%lld\t%s\t%s\n", s->kind, ids[k], type_name(types[k]), email);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: could not write the output\n", s->flag);
        goto done;
    }
    fprintf(stderr, "%s: %ld accounts, %ld created now\n", s->flag, n, created);
    rc = 0;
done:
    sodium_memzero(hash, sizeof hash);
    free(ids);
    free(types);
    free(batch);
    return rc;
}
