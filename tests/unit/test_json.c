/* antar_json_dumps: reals as short as they can be without changing their value. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "antar/util.h"

static void assert_dumps(json_t *v, const char *want)
{
    char *s = antar_json_dumps(v, JSON_COMPACT);
    cr_assert(s && strcmp(s, want) == 0, "got %s, want %s", s ? s : "(null)", want);
    free(s);
    json_decref(v);
}

Test(json, coordinates_come_back_as_sent)
{
    assert_dumps(json_pack("{s:f, s:f}", "lat", -6.1754, "lng", 106.8272),
                 "{\"lat\":-6.1754,\"lng\":106.8272}");
    assert_dumps(json_pack("[f, f, f]", 0.1, -0.0001234, 1e-7), "[0.1,-0.0001234,1e-7]");
    /* Integers and reals that are whole numbers keep jansson's forms. */
    assert_dumps(json_pack("{s:i, s:f}", "n", 17, "x", 2.0), "{\"n\":17,\"x\":2.0}");
}

Test(json, values_needing_17_digits_stay_exact)
{
    double v = 0.1 + 0.2; /* 0.30000000000000004 */
    json_t *one = json_pack("[f]", v);
    char *s = antar_json_dumps(one, JSON_COMPACT);
    cr_assert_str_eq(s, "[0.30000000000000004]");
    free(s);
    json_decref(one);
    /* Every real of the document reads back as itself, whatever precision was picked. */
    json_t *doc = json_pack("[f, f, f]", v, -6.1754, 1.0 / 3.0);
    s = antar_json_dumps(doc, JSON_COMPACT);
    json_t *back = json_loads(s, 0, NULL);
    cr_assert(back);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(json_real_value(json_array_get(back, i)),
                     json_real_value(json_array_get(doc, i)), "element %zu of %s", i, s);
    free(s);
    json_decref(back);
    json_decref(doc);
}

Test(json, real_digits)
{
    cr_assert_eq(antar_real_digits(-6.1754), 15);
    cr_assert_eq(antar_real_digits(0.1 + 0.2), 17);
    cr_assert_eq(antar_real_digits(INFINITY), 17);
    cr_assert_eq(antar_real_digits(NAN), 17);
}

Test(json, documents_without_reals_are_unchanged)
{
    json_t *doc = json_pack("{s:s, s:[i, b, n]}", "a", "x", "b", 1, 1);
    char *want = json_dumps(doc, JSON_COMPACT), *got = antar_json_dumps(doc, JSON_COMPACT);
    cr_assert_str_eq(got, want);
    free(want);
    free(got);
    json_decref(doc);
    cr_assert_null(antar_json_dumps(NULL, JSON_COMPACT));
}
