// The scavenger (src/gc/scavenger): a heap the program dropped goes back to
// the OS, at once with mgc::release_memory(), and without it from the
// background scavenger after the next cycle; memory the heap hands out
// afterwards is zeroed. Checked on the process's resident set
// (/proc/self/statm) and on the stats, by conditions polled with a generous
// deadline, never by a fixed sleep.
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>

#include "gc/pacer.hpp"
#include "gc/scavenger.hpp"
#include "gc_test_support.hpp"
#include "gtest/gtest.h"
#include "mallocgc/mallocgc.hpp"
#include "runtime/debug_malloc.hpp"
#include "runtime/options.hpp"

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
// The dropped heap: half small objects, half large ones.
constexpr std::size_t kHeapBytes = 512 * kMiB;
constexpr std::size_t kSmall = 1024, kLarge = 256 * 1024;
constexpr std::size_t kNumSmall = kHeapBytes / 2 / kSmall, kNumLarge = kHeapBytes / 2 / kLarge;
// What "dropped" must give back at least (the rest: what the goal keeps,
// metadata, a stale pointer or two).
constexpr std::size_t kMustDrop = 400 * kMiB;

std::size_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// The only root of the big heap (a global: scanned).
void** g_big = nullptr;

[[gnu::noinline]] void build_heap(std::size_t scale_down = 1) {
  const std::size_t ns = kNumSmall / scale_down, nl = kNumLarge / scale_down;
  g_big = static_cast<void**>(mgc::alloc((ns + nl) * sizeof(void*)));
  ASSERT_NE(g_big, nullptr);
  for (std::size_t i = 0; i < ns + nl; i++) {
    const std::size_t size = i < ns ? kSmall : kLarge;
    void* p = mgc::alloc_noscan(size);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x5A, size);  // resident, and not zero
    g_big[i] = p;
  }
}

[[gnu::noinline]] void drop_heap() {
  g_big = nullptr;
  gctest::scrub_stack_and_registers();
}

// Poll cond until it holds or the deadline passes.
template <class F>
bool eventually(F cond, std::chrono::seconds limit = std::chrono::seconds(120)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::uint64_t retained() {
  const mgc::Stats s = mgc::stats();
  return s.heap_sys - s.heap_released;
}

TEST(Scavenge, ReleaseMemoryReturnsADroppedHeapAtOnce) {
  mgc::internal::set_background_scavenge(false);  // what goes back is the call's doing
  build_heap();
  const std::size_t full = rss_bytes();
  ASSERT_GT(full, kHeapBytes) << "the heap is resident";
  drop_heap();
  const std::size_t released = mgc::release_memory();
  const std::size_t after = rss_bytes();
  const mgc::Stats s = mgc::stats();
  EXPECT_GE(released, kMustDrop);
  EXPECT_LT(after + kMustDrop, full) << "RSS " << full / kMiB << " MiB -> " << after / kMiB << " MiB";
  EXPECT_GE(s.heap_released, kMustDrop);
  EXPECT_LE(s.heap_released, s.heap_idle) << "released pages are free pages";
  EXPECT_LE(s.heap_idle, s.heap_sys);
  mgc::internal::check_heap();
  // Little more to give back (what a stale word kept alive in the first
  // collection, say).
  EXPECT_LT(mgc::release_memory(), 16 * kMiB);
  mgc::internal::set_background_scavenge(true);
}

// The collector's CPU time so far, as gc_cpu_fraction reports it.
double gc_cpu_seconds() {
  const double fraction = mgc::stats().gc_cpu_fraction;
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return fraction * (static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9);
}

// Releasing pages is the collector's work: its CPU time counts in
// gc_cpu_fraction (and so in the GC CPU limiter), and a release that finds
// nothing to do counts nothing.
TEST(Scavenge, ReleasingCountsAsTheCollectorsCpuTime) {
  mgc::internal::set_background_scavenge(false);
  build_heap();
  drop_heap();
  gctest::collect_clean();  // the heap is free pages now, none released yet
  const std::uint64_t cpu0 = mgc::internal::scavenge_cpu_ns();
  const double gc0 = gc_cpu_seconds();
  const std::size_t released = mgc::internal::scavenge_all();
  const double gc1 = gc_cpu_seconds();
  const std::uint64_t spent = mgc::internal::scavenge_cpu_ns() - cpu0;
  std::printf("released %zu MiB in %.3f ms of CPU; the collector's CPU grew by %.3f ms\n", released / kMiB,
              static_cast<double>(spent) * 1e-6, (gc1 - gc0) * 1e3);
  ASSERT_GE(released, kMustDrop);
  EXPECT_GT(spent, 0u);
  EXPECT_GE(gc1 - gc0, 0.8 * static_cast<double>(spent) * 1e-9) << "gc_cpu_fraction leaves the releases out";
  const std::uint64_t cpu1 = mgc::internal::scavenge_cpu_ns();
  EXPECT_EQ(mgc::internal::scavenge_all(), 0u);
  EXPECT_EQ(mgc::internal::scavenge_cpu_ns(), cpu1) << "a release of nothing was counted";
  mgc::internal::set_background_scavenge(true);
}

// The Boehm face's mode: no background thread, but each cycle's end
// releases what was retained beyond the goal at the last six cycles' ends,
// in the collecting thread. Off, cycles release nothing.
TEST(Scavenge, CycleReleaseGivesBackWhatIsBeyondTheGoalAtTheCyclesEnd) {
  mgc::internal::ensure_options();  // which would set the background scavenger anew
  mgc::internal::set_background_scavenge(false);
  for (const bool on : {false, true}) {
    SCOPED_TRACE(on ? "cycle release on" : "cycle release off");
    mgc::internal::set_cycle_release(on);
    build_heap();
    drop_heap();
    const std::uint64_t before = mgc::internal::scavenged_total();
    gctest::collect_clean();  // forced: swept before its end, so the dead heap is free pages
    // As Boehm unmaps a block free for six collections: not at once.
    EXPECT_LT(mgc::internal::scavenged_total() - before, kMustDrop);
    for (int i = 0; i < 6; i++) gctest::collect_clean();
    const std::uint64_t released = mgc::internal::scavenged_total() - before;
    if (on) {
      EXPECT_GE(released, kMustDrop);
      EXPECT_LE(retained(), mgc::internal::scavenge_goal()) << "retained " << retained() / kMiB << " MiB";
    } else {
      EXPECT_EQ(released, 0u);
      mgc::release_memory();  // the next round starts from a released heap
    }
  }
  mgc::internal::set_cycle_release(false);
  mgc::internal::set_background_scavenge(true);
}

TEST(Scavenge, MemoryReusedAfterReleaseIsZeroed) {
  mgc::internal::set_background_scavenge(false);
  build_heap();
  drop_heap();
  ASSERT_GE(mgc::release_memory(), kMustDrop);
  // The same shapes again, from the released pages: zero, then usable.
  for (int round = 0; round < 2; round++) {
    SCOPED_TRACE(round);
    void** keep = static_cast<void**>(mgc::alloc((kNumSmall + kNumLarge) * sizeof(void*)));
    ASSERT_NE(keep, nullptr);
    g_big = keep;
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < kNumSmall + kNumLarge; i++) {
      const std::size_t size = i < kNumSmall ? kSmall : kLarge;
      auto* p = static_cast<unsigned char*>(mgc::alloc_noscan(size));
      ASSERT_NE(p, nullptr);
      for (std::size_t k = 0; k < size; k += 8)
        if (*reinterpret_cast<std::uint64_t*>(p + k) != 0) nonzero++;
      std::memset(p, static_cast<int>(i & 0xFF) | 1, size);
      keep[i] = p;
    }
    EXPECT_EQ(nonzero, 0u) << "words not zero in fresh objects";
    for (std::size_t i = 0; i < kNumSmall + kNumLarge; i += 97) {
      const std::size_t size = i < kNumSmall ? kSmall : kLarge;
      auto* p = static_cast<unsigned char*>(keep[i]);
      EXPECT_EQ(p[0], static_cast<unsigned char>(static_cast<int>(i & 0xFF) | 1));
      EXPECT_EQ(p[size - 1], p[0]);
    }
    keep = nullptr;
    drop_heap();
    mgc::release_memory();
  }
  mgc::internal::check_heap();
  mgc::internal::set_background_scavenge(true);
}

TEST(Scavenge, BackgroundScavengerReturnsADroppedHeapAfterACycle) {
  build_heap();
  const std::size_t full = rss_bytes();
  drop_heap();
  // A cycle, not release_memory: it finds the heap dead, lowers the goal
  // and wakes the scavenger.
  gctest::collect_clean();
  const auto t0 = std::chrono::steady_clock::now();
  const bool down = eventually([&] { return rss_bytes() + kMustDrop < full; });
  // For the record (not a check: the machine is shared).
  std::printf("background scavenger: RSS %zu -> %zu MiB in %.2f s\n", full / kMiB, rss_bytes() / kMiB,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_TRUE(down) << "RSS " << full / kMiB << " MiB -> " << rss_bytes() / kMiB << " MiB";
  const bool at_goal = eventually([] { return retained() <= mgc::internal::scavenge_goal(); });
  EXPECT_TRUE(at_goal) << "retained " << retained() / kMiB << " MiB, goal " << mgc::internal::scavenge_goal() / kMiB
                       << " MiB";
  std::printf("at the goal: RSS %zu MiB, retained %zu MiB\n", rss_bytes() / kMiB,
              static_cast<std::size_t>(retained() / kMiB));
  EXPECT_GE(mgc::stats().heap_released, kMustDrop);
  EXPECT_GE(mgc::internal::scavenged_total(), kMustDrop);
}

// With collection off the goal keeps everything; a memory limit brings
// the retained heap down to it.
TEST(Scavenge, MemoryLimitDrivesTheScavenger) {
  const int old_gc = mgc::set_gc_percent(-1);
  build_heap(2);  // 256 MiB
  drop_heap();
  gctest::collect_clean();
  EXPECT_EQ(mgc::internal::scavenge_goal(), UINT64_MAX) << "no goal without GOGC or a limit";
  const std::int64_t old_limit = mgc::set_memory_limit(std::int64_t{96} << 20);
  gctest::collect_clean();  // wakes the scavenger with the new goal
  bool by_limit = false;
  const std::uint64_t goal = mgc::internal::scavenge_goal(&by_limit);
  EXPECT_TRUE(by_limit);
  EXPECT_LT(goal, std::uint64_t{96} << 20);
  const bool at_goal = eventually([goal] { return retained() <= goal; });
  EXPECT_TRUE(at_goal) << "retained " << retained() / kMiB << " MiB, goal " << goal / kMiB << " MiB";
  mgc::set_memory_limit(old_limit);
  mgc::set_gc_percent(old_gc);
}

// Scattered free pages and a large object that fits in none of their
// runs: the heap grows for it, and (Go's mheap.grow) the allocation
// releases as much of the free pages while the heap retains more than the
// goal; with growth scavenging off it releases nothing. The background
// scavenger is off here, so every release is the allocation's.
void** g_spans = nullptr;  // the kept objects (a global: scanned)

[[gnu::noinline]] void build_scattered(std::size_t n) {
  // 1 KiB objects, eight to a page-sized span, all kept while they are
  // made; then the objects of every other run of eight are dropped, so
  // that about half the spans die whole and their pages go back as runs of
  // a page or two, between live spans.
  g_spans = static_cast<void**>(mgc::alloc(n * sizeof(void*)));
  ASSERT_NE(g_spans, nullptr);
  for (std::size_t i = 0; i < n; i++) {
    void* p = mgc::alloc_noscan(kSmall);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x5A, kSmall);
    g_spans[i] = p;
  }
  for (std::size_t i = 0; i < n; i++)
    if ((i / 8) % 2 != 0) g_spans[i] = nullptr;
  gctest::scrub_stack_and_registers();
}

struct GrowthRelease {
  std::size_t released = 0;  // bytes the allocation released
  std::size_t grown = 0;     // bytes the heap grew by for it
};

GrowthRelease released_by_growth(bool growth_scavenge) {
  // The first use reads MALLOCGC_SCAVENGE, which sets both switches: it
  // must come before the settings below. They are left so: turned on
  // again, a cycle of the next test's first allocation could start the
  // background scavenger, which goes on releasing after it is switched
  // off (2 MiB in WithGrowthScavengingOff under valgrind).
  EXPECT_NE(mgc::alloc_noscan(16), nullptr);
  mgc::internal::set_background_scavenge(false);
  mgc::internal::set_growth_scavenge(growth_scavenge);
  build_scattered(64 * kMiB / kSmall);
  const int old_gc = mgc::set_gc_percent(10);  // a goal near the live heap
  gctest::collect_clean();                     // the dead spans' pages are free now, scattered
  const mgc::Stats before = mgc::stats();
  EXPECT_GT(retained(), mgc::internal::scavenge_goal()) << "the test needs a heap retained beyond its goal";
  // 32 MiB, or more than all free pages: earlier tests of the process may
  // have left large free runs (released) that 32 MiB would fit in, and the
  // heap would not grow.
  const std::size_t size = std::max<std::size_t>(32 * kMiB, (before.heap_idle / kMiB + 1) * kMiB);
  void* big = mgc::alloc_noscan(size);
  EXPECT_NE(big, nullptr);
  const mgc::Stats after = mgc::stats();
  // Freed at once: a stale copy of its address (seen under valgrind) would
  // keep hundreds of MiB live and the next test's goal above its heap.
  mgc::free(big);
  mgc::set_gc_percent(old_gc);
  GrowthRelease r;
  r.released = after.heap_released > before.heap_released ? after.heap_released - before.heap_released : 0;
  r.grown = after.heap_sys > before.heap_sys ? after.heap_sys - before.heap_sys : 0;
  return r;
}

TEST(Scavenge, AnAllocationThatGrowsTheHeapReleasesFreePagesBeyondTheGoal) {
  const GrowthRelease r = released_by_growth(true);
  std::printf("released %zu MiB as the heap grew by %zu MiB\n", r.released / kMiB, r.grown / kMiB);  // for the record
  ASSERT_GT(r.grown, 0u) << "the allocation found room without growing the heap";
  EXPECT_GE(r.released, 16 * kMiB) << "released " << r.released / kMiB << " MiB as the heap grew by " << r.grown / kMiB
                                   << " MiB";
  EXPECT_LE(r.released, r.grown + 2 * kMiB) << "no more than the heap grew by (and one 2 MiB batch)";
}

TEST(Scavenge, WithGrowthScavengingOffTheGrowingAllocationReleasesNothing) {
  const GrowthRelease r = released_by_growth(false);
  ASSERT_GT(r.grown, 0u) << "the allocation found room without growing the heap";
  EXPECT_EQ(r.released, 0u);
}

// After fork the child has no scavenger thread; its first cycle starts one.
TEST(Scavenge, ChildOfForkScavengesToo) {
#if defined(__SANITIZE_ADDRESS__)
  // A known bug (README, "Known bugs"): in the ASan build the child
  // released less than 48 MiB within 60 s in 7 of 10 runs of this test
  // alone (and once in CI); not diagnosed yet.
  GTEST_SKIP() << "known bug in the ASan build: the forked child's scavenger does not release in time";
#endif
  // Earlier tests of the process (the growth tests) may have turned the
  // scavenger off.
  mgc::internal::set_background_scavenge(true);
  mgc::internal::set_growth_scavenge(true);
  gctest::collect_clean();  // the parent's scavenger runs
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::uint64_t before = mgc::stats().heap_released;
    build_heap(8);  // 64 MiB
    drop_heap();
    gctest::collect_clean();
    const bool ok =
        eventually([before] { return mgc::stats().heap_released >= before + 48 * kMiB; }, std::chrono::seconds(60));
    mgc::internal::check_heap();
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's scavenger did not release its dropped heap";
}

}  // namespace
