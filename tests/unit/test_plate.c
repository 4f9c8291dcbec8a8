/* Unit tests of driver-service's plate normaliser (driver_plate_normalize, services/driver/
 * drivers.c). Unit tests link only lib/, so drivers.c is included directly, with positions.c and
 * store.c for the functions it calls elsewhere (never called here: no database is needed). */
#include <criterion/criterion.h>

#include "../../services/driver/drivers.c"
#include "../../services/driver/positions.c"
#include "../../services/driver/store.c"

/* s must normalise to want. */
static void accepts(const char *s, const char *want)
{
    char out[DRIVER_PLATE_MAX];
    memset(out, 'x', sizeof out);
    cr_assert(driver_plate_normalize(s, out), "\"%s\" should be a plate", s);
    cr_assert_str_eq(out, want, "\"%s\" → \"%s\", want \"%s\"", s, out, want);
}

/* s must be refused, leaving out as it was. */
static void rejects(const char *s)
{
    char out[DRIVER_PLATE_MAX] = "untouched";
    cr_assert_not(driver_plate_normalize(s, out), "\"%s\" should not be a plate (got \"%s\")", s,
                  out);
    cr_assert_str_eq(out, "untouched", "\"%s\": out written on refusal", s);
}

Test(plate, canonical_forms_stay_as_they_are)
{
    accepts("B 1234 XYZ", "B 1234 XYZ");
    accepts("AB 1234 XYZ", "AB 1234 XYZ"); /* the longest: 11 characters */
    accepts("B 1 X", "B 1 X");
    accepts("D 12 AB", "D 12 AB");
    accepts("AB 123 C", "AB 123 C");
}

Test(plate, suffix_is_optional)
{
    accepts("B 1234", "B 1234");
    accepts("RI 1", "RI 1");
    accepts("ab1234", "AB 1234");
}

Test(plate, spacing_is_normalised)
{
    accepts("B1234XYZ", "B 1234 XYZ");
    accepts("B1234 XYZ", "B 1234 XYZ");
    accepts("B 1234XYZ", "B 1234 XYZ");
    accepts("  B   1234   XYZ  ", "B 1234 XYZ");
    accepts(" AB1C ", "AB 1 C");
    accepts("B 1234 ", "B 1234");
}

Test(plate, lower_and_mixed_case_become_upper)
{
    accepts("b1234xyz", "B 1234 XYZ");
    accepts("b 1234 xyz", "B 1234 XYZ");
    accepts("aB 99 xYz", "AB 99 XYZ");
}

Test(plate, empty_and_blank_are_refused)
{
    rejects("");
    rejects(" ");
    rejects("     ");
}

Test(plate, every_group_has_its_length)
{
    rejects("1234 XYZ");     /* no region prefix */
    rejects("B XYZ");        /* no number */
    rejects("B");            /* prefix only */
    rejects("BXYZ");         /* letters only */
    rejects("1234");         /* digits only */
    rejects("ABC 1234 XYZ"); /* prefix of 3 letters */
    rejects("ABC1234");
    rejects("B 12345 XYZ"); /* number of 5 digits */
    rejects("B 12345");
    rejects("B 1234 WXYZ"); /* suffix of 4 letters */
    rejects("B1234WXYZ");
}

Test(plate, groups_come_in_order_once)
{
    rejects("B 1234 XYZ 5"); /* digits after the suffix */
    rejects("B 12 34");      /* a split number */
    rejects("B 1234 XY Z");  /* a split suffix */
    rejects("A B 1234");     /* a split prefix */
    rejects("1234 B");
    rejects("B 1234 X1");
}

Test(plate, only_ascii_letters_digits_and_spaces)
{
    rejects("B-1234-XYZ");
    rejects("B.1234.XYZ");
    rejects("B\t1234\tXYZ"); /* only the space separates groups */
    rejects("B 1234 XYZ\n");
    rejects("B 1234 XY_");
    rejects("\xc3\x89 1234 XYZ"); /* É */
    rejects("B 1234 \xc3\x89");
    rejects("B 1234 XYZ\x7f");
    rejects("B １２３４"); /* full-width digits */
}
