// The cost of growing a fresh mallocgc heap with memory from the OS.
//
//   bench_heap_growth [--mib=256]
//
// In a fresh process, allocates mib MiB as mgc::alloc_noscan(4096) objects
// and writes one byte to each (as a program initializing its objects
// would; the library skips zeroing memory that is fresh from the OS, so
// without the write the pages might not be touched at all). Prints one line
// of JSON: wall time per MiB, the same per 16-byte object, and how much of
// the process's memory the kernel backed with transparent huge pages.
// tools/bench_table.py runs it with MALLOCGC_HUGEPAGES=0 and =1 (the library
// madvise(MADV_HUGEPAGE)s its arenas when 1) beside bench_page_touch, the
// same touch pattern on plain mmap'd memory.
//
// The collector is off (mgc::set_gc_percent(-1), Go's GOGC=off): the
// measure is the cost of fresh pages, not of marking a growing heap. The
// pointer vector (system malloc, not scanned) is a root range all the same.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mallocgc/mallocgc.hpp"
#include "memory_probe.hpp"

int main(int argc, char** argv) {
  const long mib = std::strtol(bench::arg_value(argc, argv, "mib", "256"), nullptr, 10);
  if (mib <= 0) {
    std::fprintf(stderr, "usage: %s [--mib=N]\n", argv[0]);
    return 2;
  }
  constexpr std::size_t kObject = 4096;
  const std::size_t count = (static_cast<std::size_t>(mib) << 20) / kObject;

  // Untimed: the pointer vector's own pages, and the heap's and this
  // thread's one-time set-up (by an object of another size class).
  mgc::set_gc_percent(-1);
  std::vector<void*> objects(count, nullptr);
  mgc::add_roots(objects.data(), objects.data() + count);
  void* first = mgc::alloc_noscan(16);
  if (first == nullptr) {
    std::fprintf(stderr, "bench_heap_growth: mgc::alloc_noscan(16) returned nullptr\n");
    return 1;
  }

  const double t0 = bench::now_seconds();
  for (std::size_t i = 0; i < count; ++i) {
    char* p = static_cast<char*>(mgc::alloc_noscan(kObject));
    if (p == nullptr) {
      std::fprintf(stderr, "bench_heap_growth: out of memory after %zu objects\n", i);
      return 1;
    }
    p[0] = 1;
    objects[i] = p;
  }
  asm volatile("" ::: "memory");
  const double seconds = bench::now_seconds() - t0;

  const char* env = std::getenv("MALLOCGC_HUGEPAGES");
  char mode[64];
  std::snprintf(mode, sizeof mode, "MALLOCGC_HUGEPAGES=%.20s", env != nullptr ? env : "(unset)");
  bench::report("mallocgc", mode, mib, seconds, bench::anon_huge_kib());
  for (void* p : objects) mgc::free(p);
  mgc::free(first);
  mgc::remove_roots(objects.data(), objects.data() + count);
  return 0;
}
