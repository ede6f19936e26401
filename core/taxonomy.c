/*
 * taxonomy: the 14 violation codes. Digital threats first. The order is
 * stored in LMDB keys: append only, never reorder.
 */
#include <string.h>

#include "rv/taxonomy.h"

static const struct {
    const char *name;
    const char *desc;
} tax[RV_VIOLATION_COUNT] = {
    {"internet_shutdown", "internet shutdown or network disruption ordered or tolerated by authorities"},
    {"censorship", "blocking or filtering of websites, apps or content"},
    {"surveillance", "unlawful or disproportionate surveillance, spyware, data seizure"},
    {"online_harassment", "doxing, smear campaigns, threats and harassment online"},
    {"expression_restriction", "restrictions on freedom of expression and the press"},
    {"assembly_repression", "repression of peaceful assembly: dispersal, excessive force, bans"},
    {"arbitrary_detention", "arbitrary arrest and detention"},
    {"enforced_disappearance", "enforced disappearance, abduction by or with the acquiescence of the state"},
    {"torture", "torture and cruel, inhuman or degrading treatment"},
    {"killing", "unlawful killings, including of civilians and protesters"},
    {"sexual_violence", "sexual and gender-based violence"},
    {"attack_on_defenders", "attacks on human rights defenders and journalists"},
    {"attack_on_civilians", "attacks on civilians and civilian objects"},
    {"displacement", "forced displacement of people"},
};

int rv_violation_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < RV_VIOLATION_COUNT; i++)
        if (name[0] == tax[i].name[0] && strcmp(name, tax[i].name) == 0)
            return i;
    return -1;
}

const char *rv_violation_name(int v)
{
    return (v >= 0 && v < RV_VIOLATION_COUNT) ? tax[v].name : NULL;
}

const char *rv_violation_desc(int v)
{
    return (v >= 0 && v < RV_VIOLATION_COUNT) ? tax[v].desc : NULL;
}
