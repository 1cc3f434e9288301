// The heap profiler's stack walk (prof/unwind) against glibc's backtrace():
// the same return addresses, frame for frame, through frames whose CFA is
// rsp- or rbp-based (alloca), recursion, the C library's own code calling
// back (qsort), another thread, and a signal handler's frame (which the
// rules do not cover: the walk must fall back, and still agree). Counted
// walks show which way each went.
#include "prof/unwind.hpp"

#include <alloca.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "gc/threads.hpp"
#include "gtest/gtest.h"
#include "mallocgc/mallocgc.hpp"

namespace mi = mgc::internal;

namespace {

constexpr int kMax = 64;

struct Walks {
  void* fast[kMax];
  int nfast = 0;
  void* slow[kMax];
  int nslow = 0;
};

// The calling thread's stack, found before the walks (not in a signal
// handler: it reads /proc).
thread_local std::uintptr_t t_lo, t_hi;
void find_stack() { ASSERT_TRUE(mi::current_stack_bounds(&t_lo, &t_hi)); }

// Both walks from one frame: their first entries are this function's two
// call sites, the rest must be the same.
[[gnu::noinline]] void walk_both(Walks* w) {
  w->nfast = mi::fast_backtrace(w->fast, kMax, t_lo, t_hi);
  w->nslow = backtrace(w->slow, kMax);
  asm volatile("" ::: "memory");  // no tail call: this frame stays
}

// backtrace() under AddressSanitizer is its interceptor, whose own frame
// comes first: the walks are compared from the end.
void expect_same(const Walks& w) {
  ASSERT_GT(w.nslow, 2);
  const int extra = w.nslow - w.nfast;
  if (extra != 0 && extra != 1) {
    char** f = backtrace_symbols(w.fast, w.nfast);
    char** s = backtrace_symbols(w.slow, w.nslow);
    for (int i = 0; i < std::max(w.nfast, w.nslow); i++)
      std::printf("%2d %-60s %s\n", i, i < w.nfast ? f[i] : "", i < w.nslow ? s[i] : "");
    std::free(f);
    std::free(s);
  }
  ASSERT_TRUE(extra == 0 || extra == 1) << w.nfast << " frames against backtrace()'s " << w.nslow;
  for (int i = 1; i < w.nfast; i++) EXPECT_EQ(w.fast[i], w.slow[i + extra]) << "frame " << i;
}

[[gnu::noinline]] int recurse(int depth, Walks* w) {
  if (depth == 0) {
    walk_both(w);
    return 0;
  }
  const int r = recurse(depth - 1, w);
  asm volatile("" ::: "memory");
  return r + 1;
}

TEST(Unwind, MatchesBacktraceAtEveryDepth) {
  find_stack();
  for (int depth = 0; depth < 40; depth++) {
    const mi::UnwindCounts before = mi::unwind_counts();
    Walks w;
    recurse(depth, &w);
    expect_same(w);
    const mi::UnwindCounts after = mi::unwind_counts();
    EXPECT_EQ(after.fast, before.fast + 1) << "depth " << depth;
    EXPECT_EQ(after.fallback, before.fallback) << "depth " << depth;
  }
}

// alloca makes GCC address the frame from rbp: the CFA is rbp-based in it,
// and the frames above it need rbp's value.
[[gnu::noinline]] int with_alloca(std::size_t n, Walks* w) {
  auto* buf = static_cast<volatile char*>(alloca(n));
  buf[0] = 1;
  buf[n - 1] = 2;
  recurse(3, w);
  return buf[0] + buf[n - 1];
}

[[gnu::noinline]] int above_alloca(std::size_t n, Walks* w) {
  auto* buf = static_cast<volatile char*>(alloca(n));
  buf[0] = 3;
  const int r = with_alloca(n * 2 + 8, w);
  return r + buf[0];
}

TEST(Unwind, FramesAddressedFromRbpToo) {
  find_stack();
  for (std::size_t n : {16, 1000, 5000}) {
    const mi::UnwindCounts before = mi::unwind_counts();
    Walks w;
    above_alloca(n, &w);
    expect_same(w);
    EXPECT_EQ(mi::unwind_counts().fallback, before.fallback);
  }
}

Walks* g_qsort_walks;

int compare_and_walk(const void* a, const void* b) {
  if (g_qsort_walks != nullptr) {
    walk_both(g_qsort_walks);
    g_qsort_walks = nullptr;
  }
  const int x = *static_cast<const int*>(a), y = *static_cast<const int*>(b);
  return (x > y) - (x < y);
}

TEST(Unwind, ThroughTheCLibrary) {
  find_stack();
  std::vector<int> v(100);
  for (int i = 0; i < 100; i++) v[i] = (i * 37) % 100;
  const mi::UnwindCounts before = mi::unwind_counts();
  Walks w;
  g_qsort_walks = &w;
  qsort(v.data(), v.size(), sizeof(int), compare_and_walk);
  expect_same(w);
  EXPECT_EQ(mi::unwind_counts().fallback, before.fallback);
}

TEST(Unwind, OnAnotherThread) {
  Walks w;
  std::thread t([&] {
    find_stack();
    recurse(5, &w);
  });
  t.join();
  expect_same(w);
}

// A signal handler's frame: the trampoline's rules are an expression, so
// the walk falls back to backtrace() and still gives the same frames.
Walks* g_signal_walks;
void on_signal(int) { recurse(2, g_signal_walks); }

TEST(Unwind, FallsBackAtASignalFrame) {
  find_stack();
  struct sigaction sa {
  }, old{};
  sa.sa_handler = on_signal;
  ASSERT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
  Walks w;
  g_signal_walks = &w;
  const mi::UnwindCounts before = mi::unwind_counts();
  raise(SIGUSR2);
  sigaction(SIGUSR2, &old, nullptr);
  EXPECT_EQ(mi::unwind_counts().fallback, before.fallback + 1);
  expect_same(w);
}

// An object unloaded may leave its addresses to another's code: the next
// walk starts from an empty cache, and still agrees with backtrace().
TEST(Unwind, AnUnloadedObjectEmptiesTheCache) {
  find_stack();
  Walks w;
  recurse(3, &w);  // the cache is in step with the loader
  const mi::UnwindCounts before = mi::unwind_counts();
  recurse(3, &w);
  EXPECT_EQ(mi::unwind_counts().flushes, before.flushes) << "emptied with nothing unloaded";
  void* lib = dlopen("libresolv.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) GTEST_SKIP() << "no libresolv.so.2 to load: " << dlerror();
  ASSERT_EQ(dlclose(lib), 0);
  recurse(3, &w);
  EXPECT_EQ(mi::unwind_counts().flushes, before.flushes + 1);
  expect_same(w);
}

// Without stack bounds the walk cannot check its reads: backtrace().
TEST(Unwind, UnknownStackBoundsFallBack) {
  const mi::UnwindCounts before = mi::unwind_counts();
  void* frames[kMax];
  EXPECT_GT(mi::fast_backtrace(frames, kMax, 0, 0), 1);
  EXPECT_EQ(mi::unwind_counts().fallback, before.fallback + 1);
}

}  // namespace
