// Reading a clock in nanoseconds: the monotonic clock for durations, a
// thread's or the process's CPU clock for the collector's CPU accounting.
// Owns nothing; touches nothing but the clock.
#pragma once

#include <time.h>

#include <cstdint>

namespace mgc::internal::os {

// The clock's reading in nanoseconds; 0 when it cannot be read.
inline std::uint64_t clock_ns(clockid_t clock) {
  timespec t;
  if (clock_gettime(clock, &t) != 0) return 0;
  return static_cast<std::uint64_t>(t.tv_sec) * 1000000000u + static_cast<std::uint64_t>(t.tv_nsec);
}

}  // namespace mgc::internal::os
