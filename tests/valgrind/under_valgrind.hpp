// Whether the test runs under valgrind: tests whose premise cannot hold
// there (CPU time against a fixed budget, values that happen to look like
// addresses of a heap valgrind places low) say so with GTEST_SKIP or
// narrow what they check, in valgrind builds only. Other builds do not
// need valgrind's headers: there the answer is always no.
#pragma once

#if MALLOCGC_VALGRIND
#include <valgrind/valgrind.h>
#endif

namespace mgctest {

inline bool under_valgrind() {
#if MALLOCGC_VALGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}

}  // namespace mgctest
