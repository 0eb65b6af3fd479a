// FUZZ_CHECK: an invariant a fuzz target asserts about a parser's result. A violation
// prints the condition and aborts, which libFuzzer reports as a crash and saves the input.
// Unlike assert() it is active in every build type.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
