/* core-service: antar-core --issue-refresh-tokens, an operator's command that gives accounts a
 * refresh token without their password (the simulator's pool: 40,000 password logins through
 * the edge would take more than an hour of Argon2id and trip its rate limits).
 *
 * Each subject gets a new grant exactly as a password login of its first-party app would
 * create it (oauth_grant_init, oauth_random_token, oauth_refresh_store): same client, role,
 * scope, lifetime and hash-only storage, so the token rotates at POST /oauth/token like any
 * other. No access token is minted (the first refresh gives one). Whether the account exists is
 * not checked: the operator runs this with core's own database credentials, and a token for a
 * missing account yields access tokens the account services answer 404 to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "oauth.h"

#define SUB_MAX 64

typedef struct {
    char sub[SUB_MAX];
    const oauth_client_t *client;
} subject_t;

/* "driver:<id>" or "user:<id>", id a decimal 1..2^63-1 without leading zeros (the form the
 * password grant writes, so that sub compares equal to it). */
static bool subject_parse(const char *line, subject_t *out)
{
    const char *id;
    const char *client_id;
    if (strncmp(line, "driver:", 7) == 0) {
        id = line + 7;
        client_id = "driver-app";
    } else if (strncmp(line, "user:", 5) == 0) {
        id = line + 5;
        client_id = "user-app";
    } else {
        return false;
    }
    size_t n = strlen(id);
    if (n == 0 || n > 19 || id[0] == '0' || strspn(id, "0123456789") != n)
        return false;
    if (n == 19 && strcmp(id, "9223372036854775807") > 0)
        return false;
    out->client = oauth_client_find(client_id);
    if (!out->client)
        return false;
    snprintf(out->sub, sizeof out->sub, "%s", line);
    return true;
}

/* All of stdin, checked before anything is issued: a malformed line issues nothing. Returns 0
 * with *subs (caller frees) and *count, 2 for a malformed line, 1 when memory ran out. */
static int read_subjects(FILE *in, subject_t **subs, size_t *count)
{
    char *line = NULL;
    size_t cap = 0, n = 0, len_cap = 0;
    subject_t *v = NULL;
    long lineno = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &len_cap, in)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            subject_t *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                fprintf(stderr, "--issue-refresh-tokens: out of memory\n");
                rc = 1;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if ((size_t)len >= SUB_MAX || strlen(line) != (size_t)len || !subject_parse(line, &v[n])) {
            fprintf(stderr,
                    "--issue-refresh-tokens: line %ld is not \"driver:<id>\" or \"user:<id>\"; "
                    "nothing was issued\n",
                    lineno);
            rc = 2;
            break;
        }
        n++;
    }
    free(line);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *subs = v;
    *count = n;
    return 0;
}

int oauth_issue_command(int argc, char **argv)
{
    static char tokens[OAUTH_REFRESH_BATCH][64];
    static oauth_grant_t grants[OAUTH_REFRESH_BATCH];
    subject_t *subs = NULL;
    size_t n = 0, done = 0;
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "--issue-refresh-tokens takes no arguments: subjects come on stdin\n");
        return 2;
    }
    int rc = read_subjects(stdin, &subs, &n);
    if (rc != 0)
        return rc;
    while (done < n) {
        size_t b = n - done < OAUTH_REFRESH_BATCH ? n - done : OAUTH_REFRESH_BATCH;
        for (size_t i = 0; i < b; i++) {
            oauth_grant_init(&grants[i], subs[done + i].client, subs[done + i].sub);
            oauth_random_token(tokens[i]);
        }
        antar_err_t err = oauth_refresh_store_many((const char(*)[64])tokens, grants, b);
        /* Printed only once stored: every token on stdout works. */
        for (size_t i = 0; err == ANTAR_OK && i < b; i++)
            printf("%s\t%s\n", subs[done + i].sub, tokens[i]);
        sodium_memzero(tokens, sizeof tokens);
        if (err != ANTAR_OK) {
            fprintf(stderr,
                    "--issue-refresh-tokens: the token store refused (%s) after %zu of %zu "
                    "subjects; the tokens printed are valid\n",
                    antar_err_code(err), done, n);
            rc = 1;
            break;
        }
        done += b;
    }
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "--issue-refresh-tokens: could not write the output\n");
        rc = 1;
    }
    if (rc == 0)
        fprintf(stderr, "--issue-refresh-tokens: %zu refresh tokens issued\n", n);
    free(subs);
    return rc;
}
