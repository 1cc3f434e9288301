#include "runtime/heap_profile.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "mallocgc/mallocgc.hpp"
#include "prof/pprof.hpp"
#include "prof/sample.hpp"
#include "runtime/options.hpp"

namespace mgc::internal {

namespace {
const char* g_exit_path = nullptr;

void write_at_exit() {
  if (!write_pprof_heap_profile(g_exit_path))
    std::fprintf(stderr, "mallocgc: MALLOCGC_HEAPPROFILE=%s: cannot write the heap profile: %s\n", g_exit_path,
                 std::strerror(errno));
}
}  // namespace

void write_heap_profile_at_exit(const char* path) {
  if (g_exit_path != nullptr) return;
  g_exit_path = path;
  std::atexit(write_at_exit);
}

}  // namespace mgc::internal

namespace mgc {

bool write_heap_profile(const char* path) {
  internal::ensure_options();
  return internal::write_pprof_heap_profile(path);
}

std::int64_t set_memprofile_rate(std::int64_t bytes) {
  internal::ensure_options();
  if (bytes < 0) return internal::g_memprofile_rate.load(std::memory_order_relaxed);
  return internal::g_memprofile_rate.exchange(bytes, std::memory_order_relaxed);
}

}  // namespace mgc
