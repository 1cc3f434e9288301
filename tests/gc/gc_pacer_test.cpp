// The pacer's heap fill (Boehm's habit, used by the compat library): the
// goal may use the free room of a heap a peak of live data left, but never
// more than the live heap itself ever justified, or garbage that cannot
// reuse the free pages (large objects of ever larger sizes, as GMP's
// temporaries are) grows the heap, which raises the goal, without end.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "gc/pacer.hpp"
#include "gtest/gtest.h"
#include "heap/mheap.hpp"
#include "mallocgc/mallocgc.hpp"
#include "runtime/options.hpp"

namespace {

namespace mi = mgc::internal;

void* volatile g_sink;

// Garbage as GMP makes it for a growing number: each result a little
// larger than the last (never fitting where an earlier one was), with
// small pointer-free temporaries between them; 1.5 GiB in all.
[[gnu::noinline]] void grow_garbage() {
  std::uint64_t total = 0;
  std::size_t size = 8 << 10;
  while (total < (std::uint64_t{3} << 29)) {
    auto* p = static_cast<char*>(mgc::alloc_noscan(size));
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, 64);
    p[size - 1] = 2;
    g_sink = p;
    for (int i = 0; i < 16; i++) g_sink = mgc::alloc_noscan(48 + static_cast<std::size_t>(i) * 16);
    total += size;
    size += 4096 + size / 1024;
  }
  g_sink = nullptr;
}

TEST(GcPacer, HeapFillDoesNotRatchetTheHeapUpWithGarbage) {
  mi::ensure_options();
  mi::pacer_set_heap_fill(750);
  mi::pacer_set_min_goal(std::uint64_t{1} << 18);
  grow_garbage();
  const std::uint64_t committed = mi::mheap().committed_bytes();
  mi::pacer_set_heap_fill(0);
  mi::pacer_set_min_goal(mi::kHeapMinimum);
  // The live set is under 4 MiB (one object of the run at a time), so the
  // goal stays near GOGC's: the heap holds a goal's worth of garbage plus
  // the pages that sizes left too small to reuse.
  std::printf("committed after the garbage: %llu MiB\n", static_cast<unsigned long long>(committed >> 20));
  EXPECT_LT(committed, std::uint64_t{96} << 20) << "the heap grew with the garbage";
}

}  // namespace
