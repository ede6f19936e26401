/*
 * test_country: the ISO 3166-1 table, numeric codes, the FIPS 10-4 map
 * GDELT needs and the name lookup ACLED needs.
 */
#include "rv/country.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* True when A and B are both NULL or equal strings. */
static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void test_table(void)
{
    const char *prev = NULL;
    int n = 0;

    CHECK(RV_COUNTRY_COUNT == 249);
    for (int i = 0; i < RV_COUNTRY_COUNT; i++) {
        const char *c = rv_country_code_at(i);

        CHECK(c != NULL);
        if (c == NULL)
            continue;
        n++;
        CHECK(strlen(c) == 2);
        CHECK(rv_country_valid(c));
        if (prev != NULL)
            CHECK(strcmp(prev, c) < 0); /* sorted and unique */
        prev = c;
        /* every entry has a name and a numeric code that round-trip */
        CHECK(rv_country_name(c) != NULL);
        CHECK(rv_country_numeric(c) > 0 && rv_country_numeric(c) < 1000);
        CHECK(str_eq(rv_country_from_numeric(rv_country_numeric(c)), c));
        /* the ISO short name is itself a name the lookup accepts */
        CHECK(str_eq(rv_country_from_name(rv_country_name(c)), c));
    }
    CHECK(n == 249);
    CHECK(str_eq(rv_country_code_at(0), "AD"));
    CHECK(str_eq(rv_country_code_at(248), "ZW"));
    CHECK(rv_country_code_at(249) == NULL);
    CHECK(rv_country_code_at(-1) == NULL);
}

static void test_codes(void)
{
    static const char *const known[][2] = {
        {"UA", "Ukraine"},
        {"SY", "Syrian Arab Republic"},
        {"AF", "Afghanistan"},
        {"GB", "United Kingdom"},
        {"US", "United States"},
        {"CD", "Congo, The Democratic Republic of the"},
        {"PS", "Palestine, State of"},
        {"SS", "South Sudan"},
        {"MM", "Myanmar"},
        {"AQ", "Antarctica"},
        {"SX", "Sint Maarten (Dutch part)"},
        {"ZW", "Zimbabwe"},
    };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        CHECK(rv_country_valid(known[i][0]));
        CHECK(str_eq(rv_country_name(known[i][0]), known[i][1]));
    }
    /* not assigned, reserved, wrong case, wrong length */
    static const char *const bad[] = {"XX", "XK", "EU",  "UK", "AN", "sy",  "Sy",
                                      "sY", "S",  "SYR", "",   "S1", " SY", "SY "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(!rv_country_valid(bad[i]));
        CHECK(rv_country_name(bad[i]) == NULL);
        CHECK(rv_country_numeric(bad[i]) == -1);
    }
    CHECK(!rv_country_valid(NULL));
    CHECK(rv_country_name(NULL) == NULL);
    CHECK(rv_country_numeric(NULL) == -1);
}

static void test_numeric(void)
{
    CHECK(str_eq(rv_country_from_numeric(804), "UA"));
    CHECK(str_eq(rv_country_from_numeric(760), "SY"));
    CHECK(str_eq(rv_country_from_numeric(4), "AF"));
    CHECK(str_eq(rv_country_from_numeric(180), "CD"));
    CHECK(str_eq(rv_country_from_numeric(178), "CG"));
    CHECK(str_eq(rv_country_from_numeric(275), "PS"));
    CHECK(str_eq(rv_country_from_numeric(728), "SS"));
    CHECK(str_eq(rv_country_from_numeric(894), "ZM"));
    CHECK(rv_country_numeric("UA") == 804);
    CHECK(rv_country_numeric("GB") == 826);
    CHECK(rv_country_numeric("AF") == 4);
    CHECK(rv_country_from_numeric(0) == NULL);
    CHECK(rv_country_from_numeric(-1) == NULL);
    CHECK(rv_country_from_numeric(1) == NULL);
    CHECK(rv_country_from_numeric(736) == NULL); /* old Sudan, withdrawn */
    CHECK(rv_country_from_numeric(891) == NULL); /* Serbia and Montenegro */
    CHECK(rv_country_from_numeric(999) == NULL);
    CHECK(rv_country_from_numeric(100000) == NULL);
}

static void test_fips(void)
{
    static const char *const map[][2] = {
        {"UK", "GB"}, {"CH", "CN"}, {"AS", "AU"}, {"TU", "TR"}, {"BY", "BI"}, {"BA", "BH"},
        {"NI", "NG"}, {"BL", "BO"}, {"RP", "PH"}, {"IN", "IN"}, {"GM", "DE"}, {"SP", "ES"},
        {"JA", "JP"}, {"KS", "KR"}, {"KN", "KP"}, {"IZ", "IQ"}, {"IR", "IR"}, {"SY", "SY"},
        {"UP", "UA"}, {"RS", "RU"}, {"SZ", "CH"}, {"AU", "AT"}, {"CG", "CD"}, {"CF", "CG"},
        {"OD", "SS"}, {"SU", "SD"}, {"WE", "PS"}, {"GZ", "PS"}, {"RI", "RS"}, {"MJ", "ME"},
        {"BM", "MM"}, {"NG", "NE"}, {"US", "US"}, {"VM", "VN"}, {"IS", "IL"}, {"LE", "LB"},
        {"YM", "YE"}, {"SF", "ZA"}, {"AG", "DZ"}, {"MO", "MA"}, {"IV", "CI"}, {"WZ", "SZ"},
        {"AY", "AQ"}, {"JN", "SJ"}, {"SV", "SJ"}, {"WQ", "UM"}, {"UC", "CW"}, {"NN", "SX"},
        {"GB", "GA"}, {"GA", "GM"}, {"EZ", "CZ"}, {"RM", "MH"}, {"BQ", "UM"}, {"TT", "TL"},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const char *iso = rv_country_from_fips(map[i][0]);

        if (!str_eq(iso, map[i][1]))
            fprintf(stderr, "fips %s -> %s, want %s\n", map[i][0], iso ? iso : "NULL", map[i][1]);
        CHECK(str_eq(iso, map[i][1]));
    }
    /* no ISO country: Kosovo, disputed islands, oceans, dissolved states,
     * unassigned, ISO-only codes, bad shapes */
    static const char *const none[] = {"KV", "PF", "PG", "OS", "XO", "ZH",  "ZN", "NT",
                                       "YI", "XX", "DE", "uk", "U",  "UKR", ""};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        CHECK(rv_country_from_fips(none[i]) == NULL);
    CHECK(rv_country_from_fips(NULL) == NULL);

    /* every answer is an assigned ISO code; count the map */
    int mapped = 0;
    for (char a = 'A'; a <= 'Z'; a++) {
        for (char b = 'A'; b <= 'Z'; b++) {
            char f[3] = {a, b, '\0'};
            const char *iso = rv_country_from_fips(f);

            if (iso != NULL) {
                mapped++;
                CHECK(rv_country_valid(iso));
            }
        }
    }
    CHECK(mapped >= 250 && mapped <= 270);
}

static void test_names(void)
{
    static const char *const map[][2] = {
        {"Ukraine", "UA"},
        {"Democratic Republic of Congo", "CD"},
        {"Republic of Congo", "CG"},
        {"Congo", "CG"},
        {"Syria", "SY"},
        {"Iran", "IR"},
        {"Russia", "RU"},
        {"South Korea", "KR"},
        {"North Korea", "KP"},
        {"Ivory Coast", "CI"},
        {"Czech Republic", "CZ"},
        {"Czechia", "CZ"},
        {"eSwatini", "SZ"},
        {"Palestine", "PS"},
        {"Vietnam", "VN"},
        {"Viet Nam", "VN"},
        {"Laos", "LA"},
        {"Bolivia", "BO"},
        {"Venezuela", "VE"},
        {"Tanzania", "TZ"},
        {"Moldova", "MD"},
        {"Turkey", "TR"},
        {"United States", "US"},
        {"United Kingdom", "GB"},
        {"Myanmar", "MM"},
        {"Burma", "MM"},
        {"Syrian Arab Republic", "SY"},
        {"Iran, Islamic Republic of", "IR"},
        {"Russian Federation", "RU"},
        {"Cote d'Ivoire", "CI"},
        {"C\xc3\xb4te d'Ivoire", "CI"},
        {"Cura\xc3\xa7"
         "ao",
         "CW"},
        {"Curacao", "CW"},
        {"UKRAINE", "UA"},
        {"sOuTh SuDaN", "SS"},
        {"  Ukraine\n", "UA"},
        {"Bosnia and Herzegovina", "BA"},
        {"Cape Verde", "CV"},
        {"East Timor", "TL"},
        {"Saint-Barthelemy", "BL"},
        {"Vatican City", "VA"},
        {"Caribbean Netherlands", "BQ"},
        {"South Georgia and the South Sandwich Islands", "GS"},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const char *iso = rv_country_from_name(map[i][0]);

        if (!str_eq(iso, map[i][1]))
            fprintf(stderr, "name '%s' -> %s, want %s\n", map[i][0], iso ? iso : "NULL", map[i][1]);
        CHECK(str_eq(iso, map[i][1]));
    }
    static const char *const none[] = {"Kosovo",
                                       "Atlantis",
                                       "UA",
                                       "Ukrain",
                                       "Ukraine x",
                                       "",
                                       "   ",
                                       "Korea",
                                       "Republic of",
                                       "Syria Syria Syria Syria Syria "
                                       "Syria Syria Syria Syria Syria Syria Syria Syria"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        CHECK(rv_country_from_name(none[i]) == NULL);
    CHECK(rv_country_from_name(NULL) == NULL);
}

int main(void)
{
    test_table();
    test_codes();
    test_numeric();
    test_fips();
    test_names();
    if (check_failures != 0) {
        fprintf(stderr, "test_country: %d check(s) failed\n", check_failures);
        return EXIT_FAILURE;
    }
    printf("test_country: ok\n");
    return EXIT_SUCCESS;
}
