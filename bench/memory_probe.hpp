// Helpers shared by bench_heap_growth and bench_page_touch: a monotonic
// clock, the process's transparent-huge-page usage, and the one-line JSON
// report that tools/bench_table.py parses.
#pragma once

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {

inline double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Anonymous memory of this process backed by transparent huge pages, in
// KiB (AnonHugePages in /proc/self/smaps_rollup), or -1 when unknown.
inline long anon_huge_kib() {
  std::FILE* f = std::fopen("/proc/self/smaps_rollup", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "AnonHugePages:", 14) == 0) {
      kib = std::strtol(line + 14, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib;
}

// The value of --name=VALUE among argv, or fallback.
inline const char* arg_value(int argc, char** argv, const char* name, const char* fallback) {
  const std::size_t n = std::strlen(name);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--", 2) == 0 && std::strncmp(argv[i] + 2, name, n) == 0 && argv[i][2 + n] == '=') {
      return argv[i] + 3 + n;
    }
  }
  return fallback;
}

// Growth of memory by `mib` MiB took `seconds`: one line of JSON.
inline void report(const char* what, const char* mode, long mib, double seconds, long huge_kib) {
  std::printf(
      "{\"what\": \"%s\", \"mode\": \"%s\", \"mib\": %ld, \"seconds\": %.6f, "
      "\"ms_per_mib\": %.4f, \"ns_per_16b\": %.3f, \"anon_huge_mib\": %.1f}\n",
      what, mode, mib, seconds, seconds * 1e3 / static_cast<double>(mib),
      seconds * 1e9 / (static_cast<double>(mib) * 65536.0), huge_kib < 0 ? -1.0 : huge_kib / 1024.0);
}

}  // namespace bench
