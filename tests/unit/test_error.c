/* lib/error.c: the table's lookups, the Indonesian messages and Accept-Language negotiation.
 * (The envelope built from them: test_envelope.c; through the edge: test_platform.py.) */
#include <criterion/criterion.h>
#include <string.h>

#include "antar/error.h"

Test(error, every_error_has_an_indonesian_message_of_its_own)
{
    for (int e = 0; e < ANTAR_E__COUNT; e++) {
        const char *en = antar_err_message((antar_err_t)e);
        const char *id = antar_err_message_lang((antar_err_t)e, ANTAR_LANG_ID);
        cr_assert_not_null(id, "error %d (%s) has no message", e, antar_err_code((antar_err_t)e));
        cr_assert_gt(strlen(id), 1, "error %s: empty Indonesian message",
                     antar_err_code((antar_err_t)e));
        /* "ok" and the media types are the same words in both languages; nothing else is. */
        if (e != ANTAR_E_OK && e != ANTAR_E_UNSUPPORTED_MEDIA_TYPE)
            cr_assert_str_neq(id, en, "error %s: the Indonesian message is the English one",
                              antar_err_code((antar_err_t)e));
    }
    cr_assert_str_eq(antar_err_message_lang(ANTAR_E_CSRF_INVALID, ANTAR_LANG_ID),
                     "diperlukan token CSRF yang valid");
    cr_assert_str_eq(antar_err_message_lang(ANTAR_E_CSRF_INVALID, ANTAR_LANG_EN),
                     "a valid CSRF token is required");
}

Test(error, out_of_range_values_answer_like_internal)
{
    cr_assert_eq(antar_err_status((antar_err_t)-1), 500);
    cr_assert_str_eq(antar_err_code(ANTAR_E__COUNT), "internal_error");
    cr_assert_str_eq(antar_err_message_lang(ANTAR_E__COUNT, ANTAR_LANG_ID), "internal error");
    cr_assert_str_eq(antar_err_message_lang(ANTAR_E_NOT_FOUND, (antar_lang_t)7),
                     "no such resource");
}

Test(error, accept_language_picks_indonesian_only_when_it_is_preferred)
{
    static const struct {
        const char *header;
        antar_lang_t want;
    } cases[] = {
        {NULL, ANTAR_LANG_EN},
        {"", ANTAR_LANG_EN},
        {"id", ANTAR_LANG_ID},
        {"ID", ANTAR_LANG_ID},
        {"id-ID", ANTAR_LANG_ID},
        {"in", ANTAR_LANG_ID},
        {"id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7", ANTAR_LANG_ID},
        {"en", ANTAR_LANG_EN},
        {"en-US,en;q=0.9,id;q=0.8", ANTAR_LANG_EN},
        {"en;q=0.5, id;q=0.8", ANTAR_LANG_ID},
        {"id, en", ANTAR_LANG_ID}, /* a tie goes to the one listed first */
        {"en, id", ANTAR_LANG_EN},
        {"*", ANTAR_LANG_EN},
        {"*;q=0.5, id", ANTAR_LANG_ID},
        {"id;q=0", ANTAR_LANG_EN},
        {"fr, id;q=0.1", ANTAR_LANG_ID},
        {"fr, de", ANTAR_LANG_EN},
        {"ida, idx-ID", ANTAR_LANG_EN}, /* other languages that merely start with "id" */
        {"id;q=2", ANTAR_LANG_EN},      /* an invalid q-value drops the element */
        {"id;q=abc", ANTAR_LANG_EN},
        {",,, ;q=1, id", ANTAR_LANG_ID},
        {"en;q=0.333, id;q=0.334", ANTAR_LANG_ID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(antar_lang_from_accept(cases[i].header), cases[i].want,
                     "Accept-Language \"%s\": got %d, want %d",
                     cases[i].header ? cases[i].header : "(none)",
                     antar_lang_from_accept(cases[i].header), cases[i].want);
}

Test(error, accept_language_reads_no_further_than_its_bound)
{
    /* 2000 bytes of "en," then "id": past the 1024-byte bound, so it is English. */
    static char big[2100];
    for (size_t i = 0; i + 3 < 2000; i += 3)
        memcpy(big + i, "en,", 3);
    memcpy(big + 1998, "id", 3);
    cr_assert_eq(antar_lang_from_accept(big), ANTAR_LANG_EN);
}
