// Debug-malloc mode (src/runtime/debug_malloc.cpp; Go: debugMalloc):
// re-entering the allocator from its own slow path or from a signal handler
// that interrupted it dies with "malloc deadlock"; a corrupted cache dies at
// the next allocation; check_heap() runs the expensive checkers.
//
// The re-entry and cache checks exist only when kDebugMalloc (the
// debug-malloc preset); elsewhere those tests are skipped. check_heap() is
// in every build.
#include "runtime/debug_malloc.hpp"

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "gc/threads.hpp"
#include "gtest/gtest.h"
#include "heap/mcache.hpp"
#include "heap/mheap.hpp"
#include "heap/span.hpp"
#include "mallocgc/mallocgc.hpp"
#include "runtime/thread_cache.hpp"

namespace {

namespace mi = mgc::internal;

constexpr const char* kDeadlock = "malloc deadlock";

#define SKIP_UNLESS_DEBUG_MALLOC()                                                     \
  do {                                                                                 \
    if constexpr (!mi::kDebugMalloc) GTEST_SKIP() << "needs MALLOCGC_DEBUG_MALLOC=ON"; \
  } while (0)

class DebugMallocDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  void TearDown() override { mi::debug_slow_path_hook = nullptr; }
};

// Ways into a slow path. In a fresh death-test child every first
// allocation is one (the thread has no cache yet); large sizes always are.
struct SlowPath {
  const char* name;
  void (*enter)();
};

struct alignas(64) Aligned64 {
  char c[64];
};

const SlowPath kSlowPaths[] = {
    {"alloc(16), first", [] { mgc::alloc(16); }},
    {"alloc(1000)", [] { mgc::alloc(1000); }},
    {"alloc(1 MiB)", [] { mgc::alloc(1 << 20); }},
    {"alloc_noscan(4), first", [] { mgc::alloc_noscan(4); }},
    {"alloc_typed(24), first", [] { mgc::alloc_typed(mgc::Type(24, {0})); }},
    {"alloc_typed(5000)", [] { mgc::alloc_typed(mgc::Type(5000, {0})); }},
    {"make<alignas(64)>", [] { mgc::make<Aligned64>(); }},
    {"alloc(SIZE_MAX)", [] { mgc::alloc(SIZE_MAX); }},
};

std::atomic<int> g_hook_calls{0};
void* g_victim = nullptr;

TEST(DebugMalloc, TheHookRunsInEverySlowPath) {
  SKIP_UNLESS_DEBUG_MALLOC();
  mi::debug_slow_path_hook = [] { g_hook_calls++; };
  for (const SlowPath& s : kSlowPaths) {
    const int before = g_hook_calls.load();
    std::thread(s.enter).join();  // a fresh thread: the first allocation is slow
    EXPECT_GT(g_hook_calls.load(), before) << s.name;
  }
  mi::debug_slow_path_hook = nullptr;
}

TEST_F(DebugMallocDeathTest, AllocationFromTheSlowPathDies) {
  SKIP_UNLESS_DEBUG_MALLOC();
  for (const SlowPath& s : kSlowPaths) {
    SCOPED_TRACE(s.name);
    EXPECT_DEATH(
        {
          mi::debug_slow_path_hook = [] { mgc::alloc(16); };
          s.enter();
        },
        kDeadlock);
  }
  // The same for each kind of re-entering allocation.
  const SlowPath reentries[] = {
      {"alloc_noscan(4)", [] { mgc::alloc_noscan(4); }},
      {"alloc_noscan(100)", [] { mgc::alloc_noscan(100); }},
      {"alloc(100000)", [] { mgc::alloc(100000); }},
      {"alloc_typed", [] { mgc::alloc_typed(mgc::Type(16, {8})); }},
      {"make<alignas(64)>", [] { mgc::make<Aligned64>(); }},
  };
  for (const SlowPath& r : reentries) {
    SCOPED_TRACE(r.name);
    static void (*reenter)() = nullptr;
    reenter = r.enter;
    EXPECT_DEATH(
        {
          mi::debug_slow_path_hook = [] { reenter(); };
          mgc::alloc(1 << 20);
        },
        kDeadlock);
  }
}

void allocating_handler(int) { mgc::alloc(16); }
void freeing_handler(int) { mgc::free(g_victim); }

void install(int sig, void (*handler)(int)) {
  struct sigaction sa = {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
}

TEST_F(DebugMallocDeathTest, SignalHandlerThatAllocatesInsideTheAllocatorDies) {
  SKIP_UNLESS_DEBUG_MALLOC();
  EXPECT_DEATH(
      {
        install(SIGUSR1, allocating_handler);
        mi::debug_slow_path_hook = [] { raise(SIGUSR1); };
        mgc::alloc(1 << 20);
      },
      kDeadlock);
  EXPECT_DEATH(
      {
        g_victim = mgc::alloc(64);
        install(SIGUSR1, freeing_handler);
        mi::debug_slow_path_hook = [] { raise(SIGUSR1); };
        mgc::alloc(1 << 20);
      },
      kDeadlock);
}

TEST(DebugMalloc, SignalHandlerOutsideTheAllocatorMayAllocateAndFree) {
  // The other side: the mark is cleared on the way out, so a handler that
  // runs between allocations may allocate and free (in every build).
  mgc::alloc(1 << 20);
  mgc::alloc(16);
  g_victim = mgc::alloc(64);
  const mgc::Stats before = mgc::stats();
  install(SIGUSR2, allocating_handler);
  raise(SIGUSR2);
  install(SIGUSR2, freeing_handler);
  raise(SIGUSR2);
  install(SIGUSR2, SIG_DFL);
  const mgc::Stats after = mgc::stats();
  EXPECT_EQ(after.mallocs - before.mallocs, 1u);
  EXPECT_EQ(after.frees - before.frees, 1u);
  EXPECT_NE(mgc::alloc(16), nullptr);
}

TEST_F(DebugMallocDeathTest, FreeFromTheSlowPathDies) {
  SKIP_UNLESS_DEBUG_MALLOC();
  EXPECT_DEATH(
      {
        g_victim = mgc::alloc(64);
        mi::debug_slow_path_hook = [] { mgc::free(g_victim); };
        mgc::alloc(1 << 20);
      },
      "malloc deadlock: free");
}

// Cache corruptions and what the check at the next allocation says.
struct Corruption {
  const char* name;
  void (*corrupt)(mi::MCache* c);
  std::size_t then_alloc;  // size of the conservative allocation that follows
  const char* message;
};

// 144-byte objects: 56 slots a span, so bits 56..63 of a chunk are never
// slots and never reserved.
constexpr std::size_t kOdd = 144;
int odd_spc() { return mi::span_class(mi::size_to_class(kOdd), mi::Kind::kConservative); }

const Corruption kCorruptions[] = {
    {"a slot beyond the span's end",
     [](mi::MCache* c) { c->front.alloc[odd_spc()].alloc_cache |= std::uint64_t{1} << 63; }, kOdd,
     "cache: class [0-9]+ holds slots not reserved in its span"},
    {"chunk base moved", [](mi::MCache* c) { c->front.alloc[odd_spc()].chunk_base += kOdd; }, kOdd,
     "cache: class [0-9]+ chunk base does not match its span"},
    {"span forgotten", [](mi::MCache* c) { c->spans[odd_spc()] = nullptr; }, kOdd,
     "cache: span class [0-9]+ has slots but no span"},
    {"more slots than offered", [](mi::MCache* c) { c->chunk_avail[odd_spc()] = 1; }, kOdd,
     "cache: class [0-9]+ holds more slots than its chunk offered"},
    {"tiny offset beyond the block", [](mi::MCache* c) { c->front.tiny_offset = mi::kTinySize + 1; }, 16,
     "cache: tiny offset 17 beyond the block"},
    {"tiny mask elsewhere", [](mi::MCache* c) { c->front.tiny_mask = &c->tiny_none; }, 16,
     "cache: tiny mask does not belong to the tiny block"},
};

TEST_F(DebugMallocDeathTest, CorruptedCacheDiesAtTheNextAllocation) {
  SKIP_UNLESS_DEBUG_MALLOC();
  // Whole chunks: the heap profile's sampling may cut one short, and "more
  // slots than offered" needs two left after the first allocation.
  mgc::set_memprofile_rate(0);
  for (const Corruption& k : kCorruptions) {
    SCOPED_TRACE(k.name);
    static const Corruption* current = nullptr;
    current = &k;
    EXPECT_DEATH(
        {
          mgc::alloc(kOdd);
          mgc::alloc_noscan(3);  // a tiny block
          mi::MCache* c = mi::this_cache();
          current->corrupt(c);
          mgc::alloc(current->then_alloc);
        },
        current->message);
  }
}

TEST(DebugMalloc, UncorruptedCachePassesTheChecks) {
  // The other side of the table above: the same allocations, in a fresh
  // thread, without the corruption.
  std::thread([] {
    mgc::alloc(kOdd);
    mgc::alloc_noscan(3);
    for (int i = 0; i < 1000; i++) {
      mgc::free(mgc::alloc(kOdd));
      mgc::alloc(kOdd);
      mgc::alloc(16);
      mgc::alloc_noscan(static_cast<std::size_t>(i % 15 + 1));
    }
  }).join();
}

// ---------------------------------------------------------------------------
// check_heap (every build)

void lots_of_activity() {
  // The objects are held in collected, scanned vectors reachable from
  // registered stacks: a cycle that runs meanwhile must not take them
  // (with std::vector's malloc'd storage, or from a thread that had not
  // allocated yet, it did, and the frees below then failed).
  using Pointers = std::vector<void*, mgc::allocator<void*>>;
  mgc::ThreadScope registered;
  std::mutex m;
  Pointers shared;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&, t] {
      Pointers mine;
      for (int i = 0; i < 4000; i++) {
        const auto size = static_cast<std::size_t>((i * 7919 + t * 104729) % 3000 + 1);
        void* p = i % 5 == 0 ? mgc::alloc_noscan(size % 15 + 1) : i % 3 ? mgc::alloc(size) : mgc::alloc_noscan(size);
        if (i % 97 == 0) p = mgc::alloc(40000 + static_cast<std::size_t>(i));
        mine.push_back(p);
        if (i % 3 == 0) {
          mgc::free(mine[mine.size() / 2]);
          mine.erase(mine.begin() + static_cast<long>(mine.size() / 2));
        }
      }
      std::lock_guard<std::mutex> g(m);
      for (std::size_t i = 0; i < mine.size(); i++) (i % 2 ? shared : mine).push_back(mine[i]);
    });
  for (std::thread& t : ts) t.join();
  for (std::size_t i = 0; i < shared.size(); i += 2) mgc::free(shared[i]);
  mi::check_heap();
  mgc::stats();
  mi::check_heap();
}

TEST(CheckHeap, PassesAfterALotOfActivity) {
  lots_of_activity();
  mi::check_heap();
}

class CheckHeapDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// A span on a central list: allocated by a thread that has exited. Its
// class (20480 bytes, 2 slots a span) is one lots_of_activity never uses,
// so the span holds exactly this object.
mi::MSpan* unowned_span() {
  void* p = nullptr;
  std::thread([&p] { p = mgc::alloc(20000); }).join();
  mi::MSpan* s = mi::mheap().span_of(reinterpret_cast<std::uintptr_t>(p));
  if (s == nullptr || s->owner.load() != nullptr || s->nelems != 2 || s->alloc_count != 1) std::abort();
  return s;
}

TEST_F(CheckHeapDeathTest, DiesOnACorruptedSpan) {
  struct Case {
    const char* name;
    void (*corrupt)(mi::MSpan*);
    const char* message;
  };
  const Case cases[] = {
      {"alloc_count", [](mi::MSpan* s) { s->alloc_count++; }, "span 0x[0-9a-f]+: alloc_count 2 but 1 alloc bits set"},
      {"alloc bit beyond the end", [](mi::MSpan* s) { s->alloc_bits[0].fetch_or(std::uint64_t{1} << 63); },
       "span 0x[0-9a-f]+: alloc bit set beyond the last slot"},
      {"slot size", [](mi::MSpan* s) { s->elem_size = 20000; }, "span 0x[0-9a-f]+: slot size 20000"},
      {"owned while on a list", [](mi::MSpan* s) { s->owner.store(reinterpret_cast<mi::MCache*>(s)); },
       "central list: span 0x[0-9a-f]+ is on a list and owned"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    static void (*corrupt)(mi::MSpan*) = nullptr;
    corrupt = c.corrupt;
    EXPECT_DEATH(
        {
          lots_of_activity();
          mi::MSpan* s = unowned_span();
          mi::check_heap();  // fine so far
          corrupt(s);
          mi::check_heap();
        },
        c.message);
  }
}

TEST_F(CheckHeapDeathTest, ChecksLargeSpans) {
  // debug_malloc.hpp: check_heap runs "the expensive checkers of every
  // central list and span and of the heap". A large span sits on no central
  // list; MSpan::check has a branch for it that nothing reaches.
  EXPECT_DEATH(
      {
        void* p = mgc::alloc(1 << 20);
        mi::mheap().span_of(reinterpret_cast<std::uintptr_t>(p))->nelems = 2;
        mi::check_heap();
      },
      "span 0x[0-9a-f]+: large span");
}

// --- the fast path and the collector -----------------------------------------
// debug-malloc checks at every fast-path exit that no cycle started or
// finished while it ran. The stop-the-world handler normally lets a thread
// found inside the fast path finish it first; with that deferral turned
// off (a test hook), a cycle that runs while the fast path is in flight
// must be caught.

TEST_F(DebugMallocDeathTest, CycleDuringTheFastPathDies) {
  SKIP_UNLESS_DEBUG_MALLOC();
  EXPECT_DEATH(
      {
        mgc::alloc(16);  // the thread's cache now holds a chunk of 16-byte slots
        mi::debug_no_stop_deferral = true;
        mi::debug_fast_path_hook = [] {
          mi::debug_fast_path_hook = nullptr;
          std::thread([] { mgc::collect(); }).join();  // stops this thread mid fast path
        };
        mgc::alloc(16);
      },
      "a collection cycle started or finished while the allocation fast path was in flight");
}

// The same fast path with deferral on: threads allocating flat out while
// another collects over and over never trip the check.
TEST(DebugMalloc, CyclesNeverLandInsideAFastPath) {
  SKIP_UNLESS_DEBUG_MALLOC();
  std::atomic<bool> stop{false};
  std::vector<std::thread> mutators;
  for (int t = 0; t < 2; t++) {
    mutators.emplace_back([&stop] {
      void* volatile keep = nullptr;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 1000; i++) {
          keep = mgc::alloc(16);
          keep = mgc::alloc_noscan(8);
        }
      }
      (void)keep;
    });
  }
  const std::uint64_t before = mgc::stats().num_gc;
  for (int i = 0; i < 100; i++) mgc::collect();
  stop.store(true);
  for (auto& t : mutators) t.join();
  EXPECT_GE(mgc::stats().num_gc - before, 100u);
}

// A collection that stops a thread after its large object's span is
// published and before the object's address is back in a register must
// keep the object: the address is then only in the allocating frame. (ECL
// had a thread's binding stack freed and reused under it this way, about
// one run in a hundred of its threaded workload.) The hook collects from
// another thread while this one waits in it, for every kind of large
// object; each must come back live, whole, and distinct from the next.
TEST(DebugMalloc, CollectionJustAfterALargeSpanIsPublishedKeepsTheObject) {
  SKIP_UNLESS_DEBUG_MALLOC();
  constexpr std::size_t kSize = 256 * 1024;
  static std::atomic<int> hook_calls{0};
  void* (*const allocators[])(std::size_t) = {[](std::size_t n) { return mgc::alloc(n); },
                                              [](std::size_t n) { return mgc::alloc_noscan(n); }};
  for (auto allocate : allocators) {
    for (int round = 0; round < 3; round++) {
      const std::uint64_t cycles = mgc::stats().num_gc;
      mi::debug_large_span_hook = [] {
        mi::debug_large_span_hook = nullptr;
        hook_calls++;
        std::thread([] { mgc::collect(); }).join();
      };
      auto* p = static_cast<unsigned char*>(allocate(kSize));
      ASSERT_NE(p, nullptr);
      ASSERT_EQ(mi::debug_large_span_hook, nullptr) << "the hook did not run";
      EXPECT_GT(mgc::stats().num_gc, cycles);
      mgc::ObjectInfo info;
      ASSERT_TRUE(mgc::find_object(p, &info)) << "the collection freed the object under its allocation";
      EXPECT_EQ(info.base, p);
      EXPECT_GE(info.size, kSize);
      std::memset(p, 0xa5, kSize);
      auto* q = static_cast<unsigned char*>(allocate(kSize));
      ASSERT_NE(q, nullptr);
      EXPECT_TRUE(q + kSize <= p || p + kSize <= q) << "two live large objects overlap";
      std::memset(q, 0x5a, kSize);
      for (std::size_t i = 0; i < kSize; i += 4096) ASSERT_EQ(p[i], 0xa5) << "at " << i;
      mgc::free(q);
      mgc::free(p);
    }
  }
  EXPECT_EQ(hook_calls.load(), 6);
}

}  // namespace
