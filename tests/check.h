/* check.h: the CHECK macros every C test uses (after LMDB mtest.c). */
#ifndef RV_TEST_CHECK_H
#define RV_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rv/err.h"

static int check_failures;

static inline const char *rv_test_errmsg(const void *e)
{
    return e ? ((const struct rv_errbuf *)e)->msg : "";
}

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);               \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

/* rc must be RV_OK; prints rv_strerror and the error buffer otherwise */
#define CHECK_OK(rc, errp)                                                                         \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        if (rc_ != RV_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s -> %s (%s)\n", __FILE__, __LINE__, #rc, rv_strerror(rc_),    \
                    rv_test_errmsg(errp));                              \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s\n  got:      '%s'\n  expected: '%s'\n",    \
                    __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");              \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_DONE()                                                                               \
    do {                                                                                           \
        if (check_failures) {                                                                      \
            fprintf(stderr, "%d check(s) failed\n", check_failures);                               \
            return 1;                                                                              \
        }                                                                                          \
        printf("all checks passed\n");                                                             \
        return 0;                                                                                  \
    } while (0)

#endif
