/* fuzz_check.h: CHECK(cond), the invariant check of the fuzz targets. It aborts, so that an
 * invariant holds in release builds too and libFuzzer keeps the input that broke it. */
#ifndef PX_FUZZ_CHECK_H
#define PX_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The entry point libFuzzer (or fuzz_replay.c) calls with one input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
