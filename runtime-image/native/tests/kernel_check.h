// kernel_check.h: the check harness of the stw_cpu kernel tests (test_kernels, test_repack,
// test_q4_K_r8), which link only stw_cpu: a counted CHECK with a printf-style reason, and the
// summary line and exit status.
#pragma once

#include <stdio.h>

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        g_checks++;                                                         \
        if (!(cond)) {                                                      \
            g_failures++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
        }                                                                   \
    } while (0)

// Prints "N checks, M failures" and returns the process exit status (0 when nothing failed).
static inline int check_finish(void) {
    printf("%d checks, %d failures\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
