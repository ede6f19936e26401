/*
 * country: ISO 3166-1 code tables. Pure functions over constant tables;
 * any thread.
 *
 * - all 249 officially assigned alpha-2 codes with their English short
 *   names, and their ISO 3166-1 numeric codes (ACLED's `iso` column);
 * - the FIPS 10-4 country codes GDELT uses in its Geo columns, mapped to
 *   ISO alpha-2 (`UK`->GB, `CH`->CN, `AS`->AU, `RP`->PH ...).
 */
#ifndef RV_COUNTRY_H
#define RV_COUNTRY_H

#include <stdbool.h>

#define RV_COUNTRY_COUNT 249

/* True when CODE is exactly two upper-case letters forming an assigned
 * ISO 3166-1 alpha-2 code. Case-sensitive: "sy" is not valid. */
bool rv_country_valid(const char *code);

/* English short name of an alpha-2 code, or NULL if not assigned. */
const char *rv_country_name(const char *code);

/* The I-th entry (0 <= I < RV_COUNTRY_COUNT) in alpha-2 order; NULL past
 * the end. For listings. */
const char *rv_country_code_at(int i);

/* Alpha-2 code for an ISO 3166-1 numeric code (804 -> "UA"), or NULL. */
const char *rv_country_from_numeric(int numeric);

/* ISO numeric for an alpha-2 code, or -1. */
int rv_country_numeric(const char *code);

/* ISO alpha-2 for a FIPS 10-4 country code ("UK" -> "GB"), or NULL when
 * FIPS has no ISO country for it. */
const char *rv_country_from_fips(const char *fips);

/* Alpha-2 for an English name as ACLED, GDELT DOC and the like spell it
 * ("Ukraine", "Syria", "Democratic Republic of Congo"); case-insensitive;
 * NULL if unknown. */
const char *rv_country_from_name(const char *name);

#endif
