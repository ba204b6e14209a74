// Function multi-versioning for the hot CPU loops.
//
// On x86-64 with GCC, a function marked RCNN_CLI_VECTOR_CLONES is compiled for
// AVX-512, AVX2 and the baseline (SSE2), and the best one for the running CPU is
// picked when the library loads. Elsewhere it is an ordinary function.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RCNN_CLI_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RCNN_CLI_VECTOR_CLONES
#endif
