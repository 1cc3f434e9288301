// Reference for bench_heap_growth: the cost of first touching fresh
// anonymous memory, with no allocator in the way.
//
//   bench_page_touch [--mib=256] [--advise=none|huge]
//
// Maps mib MiB (aligned to 2 MiB), optionally madvise(MADV_HUGEPAGE)s it,
// writes one byte per 4 KiB page and prints one line of JSON: the time per
// MiB, the same per 16-byte object, and how much of the memory the kernel
// backed with transparent huge pages. On the VMs we measure on a first
// touch of a 4 KiB page costs 11-15 us (shared/ANCHORS.md).
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "memory_probe.hpp"

int main(int argc, char** argv) {
  const long mib = std::strtol(bench::arg_value(argc, argv, "mib", "256"), nullptr, 10);
  const char* advise = bench::arg_value(argc, argv, "advise", "none");
  const bool huge = std::strcmp(advise, "huge") == 0;
  if (mib <= 0 || (!huge && std::strcmp(advise, "none") != 0)) {
    std::fprintf(stderr, "usage: %s [--mib=N] [--advise=none|huge]\n", argv[0]);
    return 2;
  }
  const std::size_t kHuge = std::size_t{2} << 20;
  const std::size_t bytes = static_cast<std::size_t>(mib) << 20;

  const double t0 = bench::now_seconds();
  void* m = mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  char* base = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(m) + kHuge - 1) & ~(kHuge - 1));
  if (huge && madvise(base, bytes, MADV_HUGEPAGE) != 0) {
    std::perror("madvise(MADV_HUGEPAGE)");
    return 1;
  }
  for (std::size_t off = 0; off < bytes; off += 4096) base[off] = 1;
  asm volatile("" ::: "memory");
  const double seconds = bench::now_seconds() - t0;

  bench::report("mmap", huge ? "MADV_HUGEPAGE" : "none", mib, seconds, bench::anon_huge_kib());
  munmap(m, bytes + kHuge);
  return 0;
}
