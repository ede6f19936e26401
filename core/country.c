/*
 * country: ISO 3166-1 alpha-2 / numeric codes, GDELT's FIPS 10-4 codes
 * and the English names feeds use, all as constant tables searched by
 * bisection. No state; every function may run on any thread.
 *
 * The ISO table (codes, numeric codes, English short names) follows the
 * ISO 3166-1 list as shipped by Debian's iso-codes (iso_3166-1.json);
 * names are UTF-8. The FIPS 10-4 map covers the country codes of the
 * last FIPS 10-4 revision plus the later US government codes GDELT
 * emits (NN Sint Maarten, OD South Sudan, RN Saint Martin, TB Saint
 * Barthelemy, UC Curacao). Dependencies that ISO files under another
 * code map to that code: the US minor islands to UM, the Scattered
 * Islands to TF, Ashmore/Cartier and Coral Sea to AU, Clipperton to FR,
 * Akrotiri and Dhekelia to GB, Gaza Strip and West Bank to PS.
 * Codes with no ISO country give NULL: KV Kosovo, PF Paracel Islands,
 * PG Spratly Islands, NT Netherlands Antilles, YI Serbia and
 * Montenegro, and the oceans (OS, XO, ZH, ZN, XQ ...).
 */
#include "rv/country.h"

#include <stddef.h>
#include <string.h>

struct country {
    char code[3];     /* alpha-2, NUL-terminated */
    short numeric;    /* ISO 3166-1 numeric */
    const char *name; /* English short name, UTF-8 */
};

struct fips_map {
    char fips[3]; /* FIPS 10-4 country code */
    char iso[3];  /* ISO alpha-2 it falls under */
};

struct name_entry {
    const char *key; /* name with ASCII letters lower-cased */
    char code[3];    /* alpha-2 */
};

/* Longest name key is 52 bytes; anything longer cannot match. */
#define NAME_MAX_LEN 63

/* Sorted by code. */
static const struct country countries[RV_COUNTRY_COUNT] = {
    {"AD", 20, "Andorra"},
    {"AE", 784, "United Arab Emirates"},
    {"AF", 4, "Afghanistan"},
    {"AG", 28, "Antigua and Barbuda"},
    {"AI", 660, "Anguilla"},
    {"AL", 8, "Albania"},
    {"AM", 51, "Armenia"},
    {"AO", 24, "Angola"},
    {"AQ", 10, "Antarctica"},
    {"AR", 32, "Argentina"},
    {"AS", 16, "American Samoa"},
    {"AT", 40, "Austria"},
    {"AU", 36, "Australia"},
    {"AW", 533, "Aruba"},
    {"AX", 248, "\xc3\x85land Islands"},
    {"AZ", 31, "Azerbaijan"},
    {"BA", 70, "Bosnia and Herzegovina"},
    {"BB", 52, "Barbados"},
    {"BD", 50, "Bangladesh"},
    {"BE", 56, "Belgium"},
    {"BF", 854, "Burkina Faso"},
    {"BG", 100, "Bulgaria"},
    {"BH", 48, "Bahrain"},
    {"BI", 108, "Burundi"},
    {"BJ", 204, "Benin"},
    {"BL", 652, "Saint Barth\xc3\xa9lemy"},
    {"BM", 60, "Bermuda"},
    {"BN", 96, "Brunei Darussalam"},
    {"BO", 68, "Bolivia, Plurinational State of"},
    {"BQ", 535, "Bonaire, Sint Eustatius and Saba"},
    {"BR", 76, "Brazil"},
    {"BS", 44, "Bahamas"},
    {"BT", 64, "Bhutan"},
    {"BV", 74, "Bouvet Island"},
    {"BW", 72, "Botswana"},
    {"BY", 112, "Belarus"},
    {"BZ", 84, "Belize"},
    {"CA", 124, "Canada"},
    {"CC", 166, "Cocos (Keeling) Islands"},
    {"CD", 180, "Congo, The Democratic Republic of the"},
    {"CF", 140, "Central African Republic"},
    {"CG", 178, "Congo"},
    {"CH", 756, "Switzerland"},
    {"CI", 384, "C\xc3\xb4te d'Ivoire"},
    {"CK", 184, "Cook Islands"},
    {"CL", 152, "Chile"},
    {"CM", 120, "Cameroon"},
    {"CN", 156, "China"},
    {"CO", 170, "Colombia"},
    {"CR", 188, "Costa Rica"},
    {"CU", 192, "Cuba"},
    {"CV", 132, "Cabo Verde"},
    {"CW", 531,
     "Cura\xc3\xa7"
     "ao"},
    {"CX", 162, "Christmas Island"},
    {"CY", 196, "Cyprus"},
    {"CZ", 203, "Czechia"},
    {"DE", 276, "Germany"},
    {"DJ", 262, "Djibouti"},
    {"DK", 208, "Denmark"},
    {"DM", 212, "Dominica"},
    {"DO", 214, "Dominican Republic"},
    {"DZ", 12, "Algeria"},
    {"EC", 218, "Ecuador"},
    {"EE", 233, "Estonia"},
    {"EG", 818, "Egypt"},
    {"EH", 732, "Western Sahara"},
    {"ER", 232, "Eritrea"},
    {"ES", 724, "Spain"},
    {"ET", 231, "Ethiopia"},
    {"FI", 246, "Finland"},
    {"FJ", 242, "Fiji"},
    {"FK", 238, "Falkland Islands (Malvinas)"},
    {"FM", 583, "Micronesia, Federated States of"},
    {"FO", 234, "Faroe Islands"},
    {"FR", 250, "France"},
    {"GA", 266, "Gabon"},
    {"GB", 826, "United Kingdom"},
    {"GD", 308, "Grenada"},
    {"GE", 268, "Georgia"},
    {"GF", 254, "French Guiana"},
    {"GG", 831, "Guernsey"},
    {"GH", 288, "Ghana"},
    {"GI", 292, "Gibraltar"},
    {"GL", 304, "Greenland"},
    {"GM", 270, "Gambia"},
    {"GN", 324, "Guinea"},
    {"GP", 312, "Guadeloupe"},
    {"GQ", 226, "Equatorial Guinea"},
    {"GR", 300, "Greece"},
    {"GS", 239, "South Georgia and the South Sandwich Islands"},
    {"GT", 320, "Guatemala"},
    {"GU", 316, "Guam"},
    {"GW", 624, "Guinea-Bissau"},
    {"GY", 328, "Guyana"},
    {"HK", 344, "Hong Kong"},
    {"HM", 334, "Heard Island and McDonald Islands"},
    {"HN", 340, "Honduras"},
    {"HR", 191, "Croatia"},
    {"HT", 332, "Haiti"},
    {"HU", 348, "Hungary"},
    {"ID", 360, "Indonesia"},
    {"IE", 372, "Ireland"},
    {"IL", 376, "Israel"},
    {"IM", 833, "Isle of Man"},
    {"IN", 356, "India"},
    {"IO", 86, "British Indian Ocean Territory"},
    {"IQ", 368, "Iraq"},
    {"IR", 364, "Iran, Islamic Republic of"},
    {"IS", 352, "Iceland"},
    {"IT", 380, "Italy"},
    {"JE", 832, "Jersey"},
    {"JM", 388, "Jamaica"},
    {"JO", 400, "Jordan"},
    {"JP", 392, "Japan"},
    {"KE", 404, "Kenya"},
    {"KG", 417, "Kyrgyzstan"},
    {"KH", 116, "Cambodia"},
    {"KI", 296, "Kiribati"},
    {"KM", 174, "Comoros"},
    {"KN", 659, "Saint Kitts and Nevis"},
    {"KP", 408, "Korea, Democratic People's Republic of"},
    {"KR", 410, "Korea, Republic of"},
    {"KW", 414, "Kuwait"},
    {"KY", 136, "Cayman Islands"},
    {"KZ", 398, "Kazakhstan"},
    {"LA", 418, "Lao People's Democratic Republic"},
    {"LB", 422, "Lebanon"},
    {"LC", 662, "Saint Lucia"},
    {"LI", 438, "Liechtenstein"},
    {"LK", 144, "Sri Lanka"},
    {"LR", 430, "Liberia"},
    {"LS", 426, "Lesotho"},
    {"LT", 440, "Lithuania"},
    {"LU", 442, "Luxembourg"},
    {"LV", 428, "Latvia"},
    {"LY", 434, "Libya"},
    {"MA", 504, "Morocco"},
    {"MC", 492, "Monaco"},
    {"MD", 498, "Moldova, Republic of"},
    {"ME", 499, "Montenegro"},
    {"MF", 663, "Saint Martin (French part)"},
    {"MG", 450, "Madagascar"},
    {"MH", 584, "Marshall Islands"},
    {"MK", 807, "North Macedonia"},
    {"ML", 466, "Mali"},
    {"MM", 104, "Myanmar"},
    {"MN", 496, "Mongolia"},
    {"MO", 446, "Macao"},
    {"MP", 580, "Northern Mariana Islands"},
    {"MQ", 474, "Martinique"},
    {"MR", 478, "Mauritania"},
    {"MS", 500, "Montserrat"},
    {"MT", 470, "Malta"},
    {"MU", 480, "Mauritius"},
    {"MV", 462, "Maldives"},
    {"MW", 454, "Malawi"},
    {"MX", 484, "Mexico"},
    {"MY", 458, "Malaysia"},
    {"MZ", 508, "Mozambique"},
    {"NA", 516, "Namibia"},
    {"NC", 540, "New Caledonia"},
    {"NE", 562, "Niger"},
    {"NF", 574, "Norfolk Island"},
    {"NG", 566, "Nigeria"},
    {"NI", 558, "Nicaragua"},
    {"NL", 528, "Netherlands"},
    {"NO", 578, "Norway"},
    {"NP", 524, "Nepal"},
    {"NR", 520, "Nauru"},
    {"NU", 570, "Niue"},
    {"NZ", 554, "New Zealand"},
    {"OM", 512, "Oman"},
    {"PA", 591, "Panama"},
    {"PE", 604, "Peru"},
    {"PF", 258, "French Polynesia"},
    {"PG", 598, "Papua New Guinea"},
    {"PH", 608, "Philippines"},
    {"PK", 586, "Pakistan"},
    {"PL", 616, "Poland"},
    {"PM", 666, "Saint Pierre and Miquelon"},
    {"PN", 612, "Pitcairn"},
    {"PR", 630, "Puerto Rico"},
    {"PS", 275, "Palestine, State of"},
    {"PT", 620, "Portugal"},
    {"PW", 585, "Palau"},
    {"PY", 600, "Paraguay"},
    {"QA", 634, "Qatar"},
    {"RE", 638, "R\xc3\xa9union"},
    {"RO", 642, "Romania"},
    {"RS", 688, "Serbia"},
    {"RU", 643, "Russian Federation"},
    {"RW", 646, "Rwanda"},
    {"SA", 682, "Saudi Arabia"},
    {"SB", 90, "Solomon Islands"},
    {"SC", 690, "Seychelles"},
    {"SD", 729, "Sudan"},
    {"SE", 752, "Sweden"},
    {"SG", 702, "Singapore"},
    {"SH", 654, "Saint Helena, Ascension and Tristan da Cunha"},
    {"SI", 705, "Slovenia"},
    {"SJ", 744, "Svalbard and Jan Mayen"},
    {"SK", 703, "Slovakia"},
    {"SL", 694, "Sierra Leone"},
    {"SM", 674, "San Marino"},
    {"SN", 686, "Senegal"},
    {"SO", 706, "Somalia"},
    {"SR", 740, "Suriname"},
    {"SS", 728, "South Sudan"},
    {"ST", 678, "Sao Tome and Principe"},
    {"SV", 222, "El Salvador"},
    {"SX", 534, "Sint Maarten (Dutch part)"},
    {"SY", 760, "Syrian Arab Republic"},
    {"SZ", 748, "Eswatini"},
    {"TC", 796, "Turks and Caicos Islands"},
    {"TD", 148, "Chad"},
    {"TF", 260, "French Southern Territories"},
    {"TG", 768, "Togo"},
    {"TH", 764, "Thailand"},
    {"TJ", 762, "Tajikistan"},
    {"TK", 772, "Tokelau"},
    {"TL", 626, "Timor-Leste"},
    {"TM", 795, "Turkmenistan"},
    {"TN", 788, "Tunisia"},
    {"TO", 776, "Tonga"},
    {"TR", 792, "T\xc3\xbcrkiye"},
    {"TT", 780, "Trinidad and Tobago"},
    {"TV", 798, "Tuvalu"},
    {"TW", 158, "Taiwan, Province of China"},
    {"TZ", 834, "Tanzania, United Republic of"},
    {"UA", 804, "Ukraine"},
    {"UG", 800, "Uganda"},
    {"UM", 581, "United States Minor Outlying Islands"},
    {"US", 840, "United States"},
    {"UY", 858, "Uruguay"},
    {"UZ", 860, "Uzbekistan"},
    {"VA", 336, "Holy See (Vatican City State)"},
    {"VC", 670, "Saint Vincent and the Grenadines"},
    {"VE", 862, "Venezuela, Bolivarian Republic of"},
    {"VG", 92, "Virgin Islands, British"},
    {"VI", 850, "Virgin Islands, U.S."},
    {"VN", 704, "Viet Nam"},
    {"VU", 548, "Vanuatu"},
    {"WF", 876, "Wallis and Futuna"},
    {"WS", 882, "Samoa"},
    {"YE", 887, "Yemen"},
    {"YT", 175, "Mayotte"},
    {"ZA", 710, "South Africa"},
    {"ZM", 894, "Zambia"},
    {"ZW", 716, "Zimbabwe"},
};

/* Indexes into countries[], sorted by numeric code. */
static const unsigned char by_numeric[RV_COUNTRY_COUNT] = {
    2,   5,   8,   61,  10,  0,   7,   3,   15,  9,   12,  11,  31,  22,  18,  6,   17,  19,
    26,  32,  28,  16,  34,  33,  30,  36,  105, 193, 238, 27,  21,  145, 23,  35,  116, 46,
    37,  51,  123, 40,  129, 214, 45,  47,  227, 53,  38,  48,  118, 245, 41,  39,  44,  49,
    97,  50,  54,  55,  24,  58,  59,  60,  62,  209, 87,  68,  66,  63,  73,  71,  89,  70,
    69,  14,  74,  79,  174, 215, 57,  75,  78,  84,  182, 56,  81,  82,  117, 88,  83,  77,
    86,  91,  90,  85,  93,  98,  95,  235, 96,  94,  99,  108, 104, 100, 107, 106, 101, 102,
    109, 43,  111, 113, 124, 112, 114, 120, 121, 122, 115, 125, 126, 131, 134, 130, 135, 128,
    132, 133, 147, 141, 155, 157, 154, 144, 152, 149, 150, 153, 156, 137, 146, 138, 139, 151,
    136, 158, 171, 159, 168, 167, 165, 52,  13,  210, 29,  160, 241, 170, 164, 161, 163, 169,
    162, 166, 148, 231, 72,  142, 184, 177, 172, 175, 185, 173, 176, 180, 178, 183, 92,  220,
    181, 186, 187, 188, 190, 191, 25,  198, 119, 4,   127, 140, 179, 236, 203, 208, 192, 204,
    189, 194, 202, 197, 201, 240, 199, 205, 246, 248, 67,  207, 195, 65,  206, 200, 212, 196,
    42,  211, 218, 217, 216, 219, 223, 225, 1,   222, 224, 221, 213, 226, 230, 229, 143, 64,
    76,  80,  110, 103, 228, 232, 239, 20,  233, 234, 237, 242, 243, 244, 247,
};

/* Sorted by FIPS code. */
static const struct fips_map fips_map[] = {
    {"AA", "AW"}, {"AC", "AG"}, {"AE", "AE"}, {"AF", "AF"}, {"AG", "DZ"}, {"AJ", "AZ"},
    {"AL", "AL"}, {"AM", "AM"}, {"AN", "AD"}, {"AO", "AO"}, {"AQ", "AS"}, {"AR", "AR"},
    {"AS", "AU"}, {"AT", "AU"}, {"AU", "AT"}, {"AV", "AI"}, {"AX", "GB"}, {"AY", "AQ"},
    {"BA", "BH"}, {"BB", "BB"}, {"BC", "BW"}, {"BD", "BM"}, {"BE", "BE"}, {"BF", "BS"},
    {"BG", "BD"}, {"BH", "BZ"}, {"BK", "BA"}, {"BL", "BO"}, {"BM", "MM"}, {"BN", "BJ"},
    {"BO", "BY"}, {"BP", "SB"}, {"BQ", "UM"}, {"BR", "BR"}, {"BS", "TF"}, {"BT", "BT"},
    {"BU", "BG"}, {"BV", "BV"}, {"BX", "BN"}, {"BY", "BI"}, {"CA", "CA"}, {"CB", "KH"},
    {"CD", "TD"}, {"CE", "LK"}, {"CF", "CG"}, {"CG", "CD"}, {"CH", "CN"}, {"CI", "CL"},
    {"CJ", "KY"}, {"CK", "CC"}, {"CM", "CM"}, {"CN", "KM"}, {"CO", "CO"}, {"CQ", "MP"},
    {"CR", "AU"}, {"CS", "CR"}, {"CT", "CF"}, {"CU", "CU"}, {"CV", "CV"}, {"CW", "CK"},
    {"CY", "CY"}, {"DA", "DK"}, {"DJ", "DJ"}, {"DO", "DM"}, {"DQ", "UM"}, {"DR", "DO"},
    {"DX", "GB"}, {"EC", "EC"}, {"EG", "EG"}, {"EI", "IE"}, {"EK", "GQ"}, {"EN", "EE"},
    {"ER", "ER"}, {"ES", "SV"}, {"ET", "ET"}, {"EU", "TF"}, {"EZ", "CZ"}, {"FG", "GF"},
    {"FI", "FI"}, {"FJ", "FJ"}, {"FK", "FK"}, {"FM", "FM"}, {"FO", "FO"}, {"FP", "PF"},
    {"FQ", "UM"}, {"FR", "FR"}, {"FS", "TF"}, {"GA", "GM"}, {"GB", "GA"}, {"GG", "GE"},
    {"GH", "GH"}, {"GI", "GI"}, {"GJ", "GD"}, {"GK", "GG"}, {"GL", "GL"}, {"GM", "DE"},
    {"GO", "TF"}, {"GP", "GP"}, {"GQ", "GU"}, {"GR", "GR"}, {"GT", "GT"}, {"GV", "GN"},
    {"GY", "GY"}, {"GZ", "PS"}, {"HA", "HT"}, {"HK", "HK"}, {"HM", "HM"}, {"HO", "HN"},
    {"HQ", "UM"}, {"HR", "HR"}, {"HU", "HU"}, {"IC", "IS"}, {"ID", "ID"}, {"IM", "IM"},
    {"IN", "IN"}, {"IO", "IO"}, {"IP", "FR"}, {"IR", "IR"}, {"IS", "IL"}, {"IT", "IT"},
    {"IV", "CI"}, {"IZ", "IQ"}, {"JA", "JP"}, {"JE", "JE"}, {"JM", "JM"}, {"JN", "SJ"},
    {"JO", "JO"}, {"JQ", "UM"}, {"JU", "TF"}, {"KE", "KE"}, {"KG", "KG"}, {"KN", "KP"},
    {"KQ", "UM"}, {"KR", "KI"}, {"KS", "KR"}, {"KT", "CX"}, {"KU", "KW"}, {"KZ", "KZ"},
    {"LA", "LA"}, {"LE", "LB"}, {"LG", "LV"}, {"LH", "LT"}, {"LI", "LR"}, {"LO", "SK"},
    {"LQ", "UM"}, {"LS", "LI"}, {"LT", "LS"}, {"LU", "LU"}, {"LY", "LY"}, {"MA", "MG"},
    {"MB", "MQ"}, {"MC", "MO"}, {"MD", "MD"}, {"MF", "YT"}, {"MG", "MN"}, {"MH", "MS"},
    {"MI", "MW"}, {"MJ", "ME"}, {"MK", "MK"}, {"ML", "ML"}, {"MN", "MC"}, {"MO", "MA"},
    {"MP", "MU"}, {"MQ", "UM"}, {"MR", "MR"}, {"MT", "MT"}, {"MU", "OM"}, {"MV", "MV"},
    {"MX", "MX"}, {"MY", "MY"}, {"MZ", "MZ"}, {"NC", "NC"}, {"NE", "NU"}, {"NF", "NF"},
    {"NG", "NE"}, {"NH", "VU"}, {"NI", "NG"}, {"NL", "NL"}, {"NN", "SX"}, {"NO", "NO"},
    {"NP", "NP"}, {"NR", "NR"}, {"NS", "SR"}, {"NU", "NI"}, {"NZ", "NZ"}, {"OD", "SS"},
    {"PA", "PY"}, {"PC", "PN"}, {"PE", "PE"}, {"PK", "PK"}, {"PL", "PL"}, {"PM", "PA"},
    {"PO", "PT"}, {"PP", "PG"}, {"PS", "PW"}, {"PU", "GW"}, {"QA", "QA"}, {"RE", "RE"},
    {"RI", "RS"}, {"RM", "MH"}, {"RN", "MF"}, {"RO", "RO"}, {"RP", "PH"}, {"RQ", "PR"},
    {"RS", "RU"}, {"RW", "RW"}, {"SA", "SA"}, {"SB", "PM"}, {"SC", "KN"}, {"SE", "SC"},
    {"SF", "ZA"}, {"SG", "SN"}, {"SH", "SH"}, {"SI", "SI"}, {"SL", "SL"}, {"SM", "SM"},
    {"SN", "SG"}, {"SO", "SO"}, {"SP", "ES"}, {"ST", "LC"}, {"SU", "SD"}, {"SV", "SJ"},
    {"SW", "SE"}, {"SX", "GS"}, {"SY", "SY"}, {"SZ", "CH"}, {"TB", "BL"}, {"TD", "TT"},
    {"TE", "TF"}, {"TH", "TH"}, {"TI", "TJ"}, {"TK", "TC"}, {"TL", "TK"}, {"TN", "TO"},
    {"TO", "TG"}, {"TP", "ST"}, {"TS", "TN"}, {"TT", "TL"}, {"TU", "TR"}, {"TV", "TV"},
    {"TW", "TW"}, {"TX", "TM"}, {"TZ", "TZ"}, {"UC", "CW"}, {"UG", "UG"}, {"UK", "GB"},
    {"UP", "UA"}, {"US", "US"}, {"UV", "BF"}, {"UY", "UY"}, {"UZ", "UZ"}, {"VC", "VC"},
    {"VE", "VE"}, {"VI", "VG"}, {"VM", "VN"}, {"VQ", "VI"}, {"VT", "VA"}, {"WA", "NA"},
    {"WE", "PS"}, {"WF", "WF"}, {"WI", "EH"}, {"WQ", "UM"}, {"WS", "WS"}, {"WZ", "SZ"},
    {"YM", "YE"}, {"ZA", "ZM"}, {"ZI", "ZW"},
};

/* ISO short names, iso-codes common and official names, and the
 * spellings ACLED and GDELT use; sorted by strcmp on the key. */
static const struct name_entry names[] = {
    {"afghanistan", "AF"},
    {"aland islands", "AX"},
    {"albania", "AL"},
    {"algeria", "DZ"},
    {"american samoa", "AS"},
    {"andorra", "AD"},
    {"angola", "AO"},
    {"anguilla", "AI"},
    {"antarctica", "AQ"},
    {"antigua and barbuda", "AG"},
    {"arab republic of egypt", "EG"},
    {"argentina", "AR"},
    {"argentine republic", "AR"},
    {"armenia", "AM"},
    {"aruba", "AW"},
    {"australia", "AU"},
    {"austria", "AT"},
    {"azerbaijan", "AZ"},
    {"bahamas", "BS"},
    {"bahrain", "BH"},
    {"bailiwick of guernsey", "GG"},
    {"bailiwick of jersey", "JE"},
    {"bangladesh", "BD"},
    {"barbados", "BB"},
    {"belarus", "BY"},
    {"belgium", "BE"},
    {"belize", "BZ"},
    {"benin", "BJ"},
    {"bermuda", "BM"},
    {"bhutan", "BT"},
    {"bolivarian republic of venezuela", "VE"},
    {"bolivia", "BO"},
    {"bolivia, plurinational state of", "BO"},
    {"bonaire, sint eustatius and saba", "BQ"},
    {"bosnia and herzegovina", "BA"},
    {"botswana", "BW"},
    {"bouvet island", "BV"},
    {"brazil", "BR"},
    {"british indian ocean territory", "IO"},
    {"british virgin islands", "VG"},
    {"brunei", "BN"},
    {"brunei darussalam", "BN"},
    {"bulgaria", "BG"},
    {"burkina faso", "BF"},
    {"burma", "MM"},
    {"burundi", "BI"},
    {"cabo verde", "CV"},
    {"cambodia", "KH"},
    {"cameroon", "CM"},
    {"canada", "CA"},
    {"cape verde", "CV"},
    {"caribbean netherlands", "BQ"},
    {"cayman islands", "KY"},
    {"central african republic", "CF"},
    {"chad", "TD"},
    {"chile", "CL"},
    {"china", "CN"},
    {"christmas island", "CX"},
    {"cocos (keeling) islands", "CC"},
    {"colombia", "CO"},
    {"commonwealth of dominica", "DM"},
    {"commonwealth of the bahamas", "BS"},
    {"commonwealth of the northern mariana islands", "MP"},
    {"comoros", "KM"},
    {"congo", "CG"},
    {"congo (brazzaville)", "CG"},
    {"congo (kinshasa)", "CD"},
    {"congo, democratic republic of the", "CD"},
    {"congo, the democratic republic of the", "CD"},
    {"cook islands", "CK"},
    {"costa rica", "CR"},
    {"cote d'ivoire", "CI"},
    {"croatia", "HR"},
    {"cuba", "CU"},
    {"curacao", "CW"},
    {"cura\xc3\xa7"
     "ao",
     "CW"},
    {"cyprus", "CY"},
    {"czech republic", "CZ"},
    {"czechia", "CZ"},
    {"c\xc3\xb4te d'ivoire", "CI"},
    {"democratic people's republic of korea", "KP"},
    {"democratic republic of congo", "CD"},
    {"democratic republic of sao tome and principe", "ST"},
    {"democratic republic of the congo", "CD"},
    {"democratic republic of timor-leste", "TL"},
    {"democratic socialist republic of sri lanka", "LK"},
    {"denmark", "DK"},
    {"djibouti", "DJ"},
    {"dominica", "DM"},
    {"dominican republic", "DO"},
    {"dr congo", "CD"},
    {"east timor", "TL"},
    {"eastern republic of uruguay", "UY"},
    {"ecuador", "EC"},
    {"egypt", "EG"},
    {"el salvador", "SV"},
    {"equatorial guinea", "GQ"},
    {"eritrea", "ER"},
    {"estonia", "EE"},
    {"eswatini", "SZ"},
    {"ethiopia", "ET"},
    {"falkland islands", "FK"},
    {"falkland islands (malvinas)", "FK"},
    {"faroe islands", "FO"},
    {"federal democratic republic of ethiopia", "ET"},
    {"federal democratic republic of nepal", "NP"},
    {"federal republic of germany", "DE"},
    {"federal republic of nigeria", "NG"},
    {"federal republic of somalia", "SO"},
    {"federated states of micronesia", "FM"},
    {"federative republic of brazil", "BR"},
    {"fiji", "FJ"},
    {"finland", "FI"},
    {"france", "FR"},
    {"french guiana", "GF"},
    {"french polynesia", "PF"},
    {"french republic", "FR"},
    {"french southern territories", "TF"},
    {"gabon", "GA"},
    {"gabonese republic", "GA"},
    {"gambia", "GM"},
    {"georgia", "GE"},
    {"germany", "DE"},
    {"ghana", "GH"},
    {"gibraltar", "GI"},
    {"grand duchy of luxembourg", "LU"},
    {"great britain", "GB"},
    {"greece", "GR"},
    {"greenland", "GL"},
    {"grenada", "GD"},
    {"guadeloupe", "GP"},
    {"guam", "GU"},
    {"guatemala", "GT"},
    {"guernsey", "GG"},
    {"guinea", "GN"},
    {"guinea-bissau", "GW"},
    {"guyana", "GY"},
    {"haiti", "HT"},
    {"hashemite kingdom of jordan", "JO"},
    {"heard island and mcdonald islands", "HM"},
    {"hellenic republic", "GR"},
    {"holy see", "VA"},
    {"holy see (vatican city state)", "VA"},
    {"honduras", "HN"},
    {"hong kong", "HK"},
    {"hong kong special administrative region of china", "HK"},
    {"hungary", "HU"},
    {"iceland", "IS"},
    {"independent state of papua new guinea", "PG"},
    {"independent state of samoa", "WS"},
    {"india", "IN"},
    {"indonesia", "ID"},
    {"iran", "IR"},
    {"iran, islamic republic of", "IR"},
    {"iraq", "IQ"},
    {"ireland", "IE"},
    {"islamic republic of afghanistan", "AF"},
    {"islamic republic of iran", "IR"},
    {"islamic republic of mauritania", "MR"},
    {"islamic republic of pakistan", "PK"},
    {"isle of man", "IM"},
    {"israel", "IL"},
    {"italian republic", "IT"},
    {"italy", "IT"},
    {"ivory coast", "CI"},
    {"jamaica", "JM"},
    {"japan", "JP"},
    {"jersey", "JE"},
    {"jordan", "JO"},
    {"kazakhstan", "KZ"},
    {"kenya", "KE"},
    {"kingdom of bahrain", "BH"},
    {"kingdom of belgium", "BE"},
    {"kingdom of bhutan", "BT"},
    {"kingdom of cambodia", "KH"},
    {"kingdom of denmark", "DK"},
    {"kingdom of eswatini", "SZ"},
    {"kingdom of lesotho", "LS"},
    {"kingdom of morocco", "MA"},
    {"kingdom of norway", "NO"},
    {"kingdom of saudi arabia", "SA"},
    {"kingdom of spain", "ES"},
    {"kingdom of sweden", "SE"},
    {"kingdom of thailand", "TH"},
    {"kingdom of the netherlands", "NL"},
    {"kingdom of tonga", "TO"},
    {"kiribati", "KI"},
    {"korea, democratic people's republic of", "KP"},
    {"korea, north", "KP"},
    {"korea, republic of", "KR"},
    {"korea, south", "KR"},
    {"kuwait", "KW"},
    {"kyrgyz republic", "KG"},
    {"kyrgyzstan", "KG"},
    {"lao people's democratic republic", "LA"},
    {"laos", "LA"},
    {"latvia", "LV"},
    {"lebanese republic", "LB"},
    {"lebanon", "LB"},
    {"lesotho", "LS"},
    {"liberia", "LR"},
    {"libya", "LY"},
    {"liechtenstein", "LI"},
    {"lithuania", "LT"},
    {"luxembourg", "LU"},
    {"macao", "MO"},
    {"macao special administrative region of china", "MO"},
    {"macau", "MO"},
    {"macedonia", "MK"},
    {"madagascar", "MG"},
    {"malawi", "MW"},
    {"malaysia", "MY"},
    {"maldives", "MV"},
    {"mali", "ML"},
    {"malta", "MT"},
    {"marshall islands", "MH"},
    {"martinique", "MQ"},
    {"mauritania", "MR"},
    {"mauritius", "MU"},
    {"mayotte", "YT"},
    {"mexico", "MX"},
    {"micronesia", "FM"},
    {"micronesia, federated states of", "FM"},
    {"moldova", "MD"},
    {"moldova, republic of", "MD"},
    {"monaco", "MC"},
    {"mongolia", "MN"},
    {"montenegro", "ME"},
    {"montserrat", "MS"},
    {"morocco", "MA"},
    {"mozambique", "MZ"},
    {"myanmar", "MM"},
    {"namibia", "NA"},
    {"nauru", "NR"},
    {"nepal", "NP"},
    {"netherlands", "NL"},
    {"new caledonia", "NC"},
    {"new zealand", "NZ"},
    {"nicaragua", "NI"},
    {"niger", "NE"},
    {"nigeria", "NG"},
    {"niue", "NU"},
    {"norfolk island", "NF"},
    {"north korea", "KP"},
    {"north macedonia", "MK"},
    {"northern mariana islands", "MP"},
    {"norway", "NO"},
    {"occupied palestinian territory", "PS"},
    {"oman", "OM"},
    {"pakistan", "PK"},
    {"palau", "PW"},
    {"palestine", "PS"},
    {"palestine, state of", "PS"},
    {"palestinian territories", "PS"},
    {"palestinian territory", "PS"},
    {"panama", "PA"},
    {"papua new guinea", "PG"},
    {"paraguay", "PY"},
    {"people's democratic republic of algeria", "DZ"},
    {"people's republic of bangladesh", "BD"},
    {"people's republic of china", "CN"},
    {"peru", "PE"},
    {"philippines", "PH"},
    {"pitcairn", "PN"},
    {"pitcairn islands", "PN"},
    {"plurinational state of bolivia", "BO"},
    {"poland", "PL"},
    {"portugal", "PT"},
    {"portuguese republic", "PT"},
    {"principality of andorra", "AD"},
    {"principality of liechtenstein", "LI"},
    {"principality of monaco", "MC"},
    {"puerto rico", "PR"},
    {"qatar", "QA"},
    {"republic of albania", "AL"},
    {"republic of angola", "AO"},
    {"republic of armenia", "AM"},
    {"republic of austria", "AT"},
    {"republic of azerbaijan", "AZ"},
    {"republic of belarus", "BY"},
    {"republic of benin", "BJ"},
    {"republic of bosnia and herzegovina", "BA"},
    {"republic of botswana", "BW"},
    {"republic of bulgaria", "BG"},
    {"republic of burundi", "BI"},
    {"republic of cabo verde", "CV"},
    {"republic of cameroon", "CM"},
    {"republic of chad", "TD"},
    {"republic of chile", "CL"},
    {"republic of colombia", "CO"},
    {"republic of congo", "CG"},
    {"republic of costa rica", "CR"},
    {"republic of croatia", "HR"},
    {"republic of cuba", "CU"},
    {"republic of cyprus", "CY"},
    {"republic of c\xc3\xb4te d'ivoire", "CI"},
    {"republic of djibouti", "DJ"},
    {"republic of ecuador", "EC"},
    {"republic of el salvador", "SV"},
    {"republic of equatorial guinea", "GQ"},
    {"republic of estonia", "EE"},
    {"republic of fiji", "FJ"},
    {"republic of finland", "FI"},
    {"republic of ghana", "GH"},
    {"republic of guatemala", "GT"},
    {"republic of guinea", "GN"},
    {"republic of guinea-bissau", "GW"},
    {"republic of guyana", "GY"},
    {"republic of haiti", "HT"},
    {"republic of honduras", "HN"},
    {"republic of iceland", "IS"},
    {"republic of india", "IN"},
    {"republic of indonesia", "ID"},
    {"republic of iraq", "IQ"},
    {"republic of kazakhstan", "KZ"},
    {"republic of kenya", "KE"},
    {"republic of kiribati", "KI"},
    {"republic of korea", "KR"},
    {"republic of latvia", "LV"},
    {"republic of liberia", "LR"},
    {"republic of lithuania", "LT"},
    {"republic of madagascar", "MG"},
    {"republic of malawi", "MW"},
    {"republic of maldives", "MV"},
    {"republic of mali", "ML"},
    {"republic of malta", "MT"},
    {"republic of mauritius", "MU"},
    {"republic of moldova", "MD"},
    {"republic of mozambique", "MZ"},
    {"republic of myanmar", "MM"},
    {"republic of namibia", "NA"},
    {"republic of nauru", "NR"},
    {"republic of nicaragua", "NI"},
    {"republic of north macedonia", "MK"},
    {"republic of palau", "PW"},
    {"republic of panama", "PA"},
    {"republic of paraguay", "PY"},
    {"republic of peru", "PE"},
    {"republic of poland", "PL"},
    {"republic of san marino", "SM"},
    {"republic of senegal", "SN"},
    {"republic of serbia", "RS"},
    {"republic of seychelles", "SC"},
    {"republic of sierra leone", "SL"},
    {"republic of singapore", "SG"},
    {"republic of slovenia", "SI"},
    {"republic of south africa", "ZA"},
    {"republic of south sudan", "SS"},
    {"republic of suriname", "SR"},
    {"republic of tajikistan", "TJ"},
    {"republic of the congo", "CG"},
    {"republic of the gambia", "GM"},
    {"republic of the marshall islands", "MH"},
    {"republic of the niger", "NE"},
    {"republic of the philippines", "PH"},
    {"republic of the sudan", "SD"},
    {"republic of trinidad and tobago", "TT"},
    {"republic of tunisia", "TN"},
    {"republic of t\xc3\xbcrkiye", "TR"},
    {"republic of uganda", "UG"},
    {"republic of uzbekistan", "UZ"},
    {"republic of vanuatu", "VU"},
    {"republic of yemen", "YE"},
    {"republic of zambia", "ZM"},
    {"republic of zimbabwe", "ZW"},
    {"reunion", "RE"},
    {"romania", "RO"},
    {"russia", "RU"},
    {"russian federation", "RU"},
    {"rwanda", "RW"},
    {"rwandese republic", "RW"},
    {"r\xc3\xa9union", "RE"},
    {"saint barthelemy", "BL"},
    {"saint barth\xc3\xa9lemy", "BL"},
    {"saint helena", "SH"},
    {"saint helena, ascension and tristan da cunha", "SH"},
    {"saint kitts and nevis", "KN"},
    {"saint lucia", "LC"},
    {"saint martin", "MF"},
    {"saint martin (french part)", "MF"},
    {"saint pierre and miquelon", "PM"},
    {"saint vincent and the grenadines", "VC"},
    {"saint-barthelemy", "BL"},
    {"saint-martin", "MF"},
    {"samoa", "WS"},
    {"san marino", "SM"},
    {"sao tome and principe", "ST"},
    {"saudi arabia", "SA"},
    {"senegal", "SN"},
    {"serbia", "RS"},
    {"seychelles", "SC"},
    {"sierra leone", "SL"},
    {"singapore", "SG"},
    {"sint maarten", "SX"},
    {"sint maarten (dutch part)", "SX"},
    {"slovak republic", "SK"},
    {"slovakia", "SK"},
    {"slovenia", "SI"},
    {"socialist republic of viet nam", "VN"},
    {"solomon islands", "SB"},
    {"somalia", "SO"},
    {"south africa", "ZA"},
    {"south georgia and the south sandwich islands", "GS"},
    {"south korea", "KR"},
    {"south sudan", "SS"},
    {"spain", "ES"},
    {"sri lanka", "LK"},
    {"state of israel", "IL"},
    {"state of kuwait", "KW"},
    {"state of palestine", "PS"},
    {"state of qatar", "QA"},
    {"sudan", "SD"},
    {"sultanate of oman", "OM"},
    {"suriname", "SR"},
    {"svalbard and jan mayen", "SJ"},
    {"swaziland", "SZ"},
    {"sweden", "SE"},
    {"swiss confederation", "CH"},
    {"switzerland", "CH"},
    {"syria", "SY"},
    {"syrian arab republic", "SY"},
    {"taiwan", "TW"},
    {"taiwan, province of china", "TW"},
    {"tajikistan", "TJ"},
    {"tanzania", "TZ"},
    {"tanzania, united republic of", "TZ"},
    {"thailand", "TH"},
    {"the bahamas", "BS"},
    {"the gambia", "GM"},
    {"the netherlands", "NL"},
    {"the state of eritrea", "ER"},
    {"the state of palestine", "PS"},
    {"timor leste", "TL"},
    {"timor-leste", "TL"},
    {"togo", "TG"},
    {"togolese republic", "TG"},
    {"tokelau", "TK"},
    {"tonga", "TO"},
    {"trinidad and tobago", "TT"},
    {"tunisia", "TN"},
    {"turkey", "TR"},
    {"turkiye", "TR"},
    {"turkmenistan", "TM"},
    {"turks and caicos islands", "TC"},
    {"tuvalu", "TV"},
    {"t\xc3\xbcrkiye", "TR"},
    {"u.s. virgin islands", "VI"},
    {"uganda", "UG"},
    {"ukraine", "UA"},
    {"union of the comoros", "KM"},
    {"united arab emirates", "AE"},
    {"united kingdom", "GB"},
    {"united kingdom of great britain and northern ireland", "GB"},
    {"united mexican states", "MX"},
    {"united republic of tanzania", "TZ"},
    {"united states", "US"},
    {"united states minor outlying islands", "UM"},
    {"united states of america", "US"},
    {"uruguay", "UY"},
    {"us virgin islands", "VI"},
    {"usa", "US"},
    {"uzbekistan", "UZ"},
    {"vanuatu", "VU"},
    {"vatican", "VA"},
    {"vatican city", "VA"},
    {"venezuela", "VE"},
    {"venezuela, bolivarian republic of", "VE"},
    {"viet nam", "VN"},
    {"vietnam", "VN"},
    {"virgin islands of the united states", "VI"},
    {"virgin islands, british", "VG"},
    {"virgin islands, u.s.", "VI"},
    {"wallis and futuna", "WF"},
    {"western sahara", "EH"},
    {"yemen", "YE"},
    {"zambia", "ZM"},
    {"zimbabwe", "ZW"},
    {"\xc3\x85land islands", "AX"},
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool is_two_upper(const char *s)
{
    return s != NULL && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] == '\0';
}

/* Index of CODE in countries[], or -1. */
static int find_code(const char *code)
{
    int lo = 0;
    int hi = RV_COUNTRY_COUNT - 1;

    if (!is_two_upper(code))
        return -1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        /* both are two upper-case letters: compare them as one number */
        int c = (countries[mid].code[0] << 8 | countries[mid].code[1]) - (code[0] << 8 | code[1]);

        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

bool rv_country_valid(const char *code)
{
    return find_code(code) >= 0;
}

const char *rv_country_name(const char *code)
{
    int i = find_code(code);

    return i < 0 ? NULL : countries[i].name;
}

const char *rv_country_code_at(int i)
{
    if (i < 0 || i >= RV_COUNTRY_COUNT)
        return NULL;
    return countries[i].code;
}

const char *rv_country_from_numeric(int numeric)
{
    int lo = 0;
    int hi = RV_COUNTRY_COUNT - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const struct country *c = &countries[by_numeric[mid]];

        if (c->numeric == numeric)
            return c->code;
        if (c->numeric < numeric)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

int rv_country_numeric(const char *code)
{
    int i = find_code(code);

    return i < 0 ? -1 : countries[i].numeric;
}

const char *rv_country_from_fips(const char *fips)
{
    int lo = 0;
    int hi = (int)COUNT_OF(fips_map) - 1;

    if (!is_two_upper(fips))
        return NULL;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(fips_map[mid].fips, fips);

        if (c == 0)
            return fips_map[mid].iso;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Case folding is ASCII only, so it does not depend on the locale;
 * non-ASCII bytes must match exactly. Surrounding blanks are ignored. */
const char *rv_country_from_name(const char *name)
{
    char key[NAME_MAX_LEN + 1];
    size_t start = 0;
    size_t end;
    size_t n;
    int lo = 0;
    int hi = (int)COUNT_OF(names) - 1;

    if (name == NULL)
        return NULL;
    end = strlen(name);
    while (start < end && is_space(name[start]))
        start++;
    while (end > start && is_space(name[end - 1]))
        end--;
    n = end - start;
    if (n == 0 || n > NAME_MAX_LEN)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = name[start + i];

        key[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    key[n] = '\0';
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(names[mid].key, key);

        if (c == 0)
            return names[mid].code;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}
