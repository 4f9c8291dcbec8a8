/* user-service accounts: sign-up, profile, credential check. No HTTP, no SQL. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "antar/password.h"
#include "user.h"

/* Emails are stored normalized (antar_email_normalize), which makes the unique key the
 * duplicate check. out holds 255 bytes (email ≤ 254). */
static void email_lower(const char *in, char out[255])
{
    snprintf(out, 255, "%s", in);
    antar_email_normalize(out);
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* Every NOT_FOUND of this file is about the caller's own account. */
static antar_err_t no_such_account(antar_err_t err, antar_outcome_t *why)
{
    return err == ANTAR_E_NOT_FOUND ? antar_outcome_fail(why, err, NULL, "no such account") : err;
}

/* Which of email/phone is taken by another account: the insert or update only says "duplicate",
 * and the client needs to know which field to change. */
static antar_err_t which_taken(const char *email, const char *phone, long long self,
                               antar_outcome_t *why)
{
    bool taken = false;
    antar_err_t err;
    if (email) {
        if ((err = store_user_taken(true, email, self, &taken)) != ANTAR_OK)
            return err;
        if (taken) {
            return antar_outcome_fail(why, ANTAR_E_DUPLICATE, "email",
                                      "an account with this email already exists");
        }
    }
    if (phone) {
        if ((err = store_user_taken(false, phone, self, &taken)) != ANTAR_OK)
            return err;
        if (taken) {
            return antar_outcome_fail(why, ANTAR_E_DUPLICATE, "phone",
                                      "an account with this phone already exists");
        }
    }
    return ANTAR_OK;
}

antar_err_t users_signup(const char *name, const char *email, const char *phone,
                         const char *password, json_t **out, antar_outcome_t *why)
{
    char mail[255], hash[ANTAR_PASSWORD_HASH_MAX];
    long long id = 0;
    antar_err_t err;

    if (blank(name)) {
        return antar_outcome_fail(why, ANTAR_E_INVALID_FIELD, "name", "name must not be blank");
    }
    email_lower(email, mail);
    /* Check before hashing, so that a duplicate costs no Argon2id slot. */
    if ((err = which_taken(mail, phone, 0, why)) != ANTAR_OK)
        return err;
    if ((err = antar_password_hash(password, hash)) != ANTAR_OK)
        return err;
    err = store_user_insert(name, mail, phone, hash, &id);
    if (err == ANTAR_E_DUPLICATE) {
        /* A concurrent sign-up won the race: name the field it took. */
        antar_err_t again = which_taken(mail, phone, 0, why);
        if (again != ANTAR_E_DUPLICATE)
            antar_outcome_fail(why, ANTAR_E_DUPLICATE, "email",
                               "an account with this email or phone already exists");
        return ANTAR_E_DUPLICATE;
    }
    if (err != ANTAR_OK)
        return err;
    return no_such_account(store_user_get(id, out), why);
}

antar_err_t users_get(long long id, json_t **out, antar_outcome_t *why)
{
    return no_such_account(store_user_get(id, out), why);
}

antar_err_t users_update(long long id, const char *name, const char *email, const char *phone,
                         json_t **out, antar_outcome_t *why)
{
    char mail[255];
    antar_err_t err;
    json_t *me = NULL;

    if (name && blank(name)) {
        return antar_outcome_fail(why, ANTAR_E_INVALID_FIELD, "name", "name must not be blank");
    }
    if (email)
        email_lower(email, mail);
    /* A token can outlive its account: answer 404 rather than update nothing. */
    if ((err = store_user_get(id, &me)) != ANTAR_OK)
        return no_such_account(err, why);
    json_decref(me);
    if ((err = which_taken(email ? mail : NULL, phone, id, why)) != ANTAR_OK)
        return err;
    err = store_user_update(id, name, email ? mail : NULL, phone);
    if (err == ANTAR_E_DUPLICATE) {
        if (which_taken(email ? mail : NULL, phone, id, why) != ANTAR_E_DUPLICATE)
            antar_outcome_fail(why, ANTAR_E_DUPLICATE, email ? "email" : "phone",
                               "this value belongs to another account");
        return ANTAR_E_DUPLICATE;
    }
    if (err != ANTAR_OK)
        return no_such_account(err, why);
    return no_such_account(store_user_get(id, out), why);
}

antar_err_t users_verify_credentials(const char *username, const char *password, json_t **out)
{
    char mail[255];
    json_t *row = NULL;
    bool by_email = strchr(username, '@') != NULL;
    antar_err_t err;

    if (by_email)
        email_lower(username, mail);
    err = store_user_find_login(by_email, by_email ? mail : username, &row);
    if (err != ANTAR_OK && err != ANTAR_E_NOT_FOUND)
        return err;
    /* No account: the same Argon2id work as a wrong password, so timing reveals nothing. */
    const char *hash =
        err == ANTAR_OK ? json_string_value(json_object_get(row, "password_hash")) : NULL;
    if (!antar_password_check(hash, password)) {
        json_decref(row);
        /* No hashing slot in time: not an answer about the password (the route says 503). */
        return antar_password_busy() ? ANTAR_E_UNAVAILABLE : ANTAR_E_UNAUTHORIZED;
    }
    long long id = json_integer_value(json_object_get(row, "id"));
    char sub[40];
    snprintf(sub, sizeof sub, "user:%lld", id);
    *out = json_pack("{s:I, s:s, s:O}", "id", (json_int_t)id, "sub", sub, "name",
                     json_object_get(row, "name"));
    json_decref(row);
    return *out ? ANTAR_OK : ANTAR_E_NOMEM;
}
