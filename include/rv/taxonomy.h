/*
 * taxonomy: the 14 violation codes of DESIGN.md. Constant table; any
 * thread. Indexes are stable (stored in LMDB): never reorder.
 */
#ifndef RV_TAXONOMY_H
#define RV_TAXONOMY_H

enum rv_violation {
    RV_V_INTERNET_SHUTDOWN = 0,
    RV_V_CENSORSHIP,
    RV_V_SURVEILLANCE,
    RV_V_ONLINE_HARASSMENT,
    RV_V_EXPRESSION_RESTRICTION,
    RV_V_ASSEMBLY_REPRESSION,
    RV_V_ARBITRARY_DETENTION,
    RV_V_ENFORCED_DISAPPEARANCE,
    RV_V_TORTURE,
    RV_V_KILLING,
    RV_V_SEXUAL_VIOLENCE,
    RV_V_ATTACK_ON_DEFENDERS,
    RV_V_ATTACK_ON_CIVILIANS,
    RV_V_DISPLACEMENT,
    RV_VIOLATION_COUNT
};

/* Index of NAME ("killing"), or -1. Case-sensitive. */
int rv_violation_from_name(const char *name);
/* Code of index V, or NULL when out of range. */
const char *rv_violation_name(int v);
/* One-line description of index V, or NULL. */
const char *rv_violation_desc(int v);

#endif
