// mgc::stats (src/runtime/stats.cpp): the counters move by exactly the
// right amounts for the calling thread's allocations and frees, and the
// page figures keep their order.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "mallocgc/mallocgc.hpp"
#include "runtime/thread_cache.hpp"

namespace {

using mgc::internal::kClassToSize;
using mgc::internal::kMaxSmallSize;
using mgc::internal::kNumSizeClasses;
using mgc::internal::kPageSize;

int smallest_class(std::size_t size) {
  for (int c = 1; c < kNumSizeClasses; c++)
    if (kClassToSize[c] >= size) return c;
  return 0;
}

// after - before, field by field (wrapping, so a decrease shows as huge).
struct Delta {
  std::int64_t heap_alloc, heap_objects, mallocs, frees, large_mallocs, large_frees, tiny_mallocs, tiny_frees;
  std::int64_t class_mallocs[kNumSizeClasses], class_frees[kNumSizeClasses];
};

Delta delta(const mgc::Stats& a, const mgc::Stats& b) {
  auto d = [](std::uint64_t x, std::uint64_t y) { return static_cast<std::int64_t>(y - x); };
  Delta r{d(a.heap_alloc, b.heap_alloc),
          d(a.heap_objects, b.heap_objects),
          d(a.mallocs, b.mallocs),
          d(a.frees, b.frees),
          d(a.large_mallocs, b.large_mallocs),
          d(a.large_frees, b.large_frees),
          d(a.tiny_mallocs, b.tiny_mallocs),
          d(a.tiny_frees, b.tiny_frees),
          {},
          {}};
  for (int i = 0; i < kNumSizeClasses; i++) {
    r.class_mallocs[i] = d(a.by_size[i].mallocs, b.by_size[i].mallocs);
    r.class_frees[i] = d(a.by_size[i].frees, b.by_size[i].frees);
  }
  return r;
}

void expect_classes(const Delta& d, int cls, std::int64_t mallocs, std::int64_t frees) {
  for (int i = 0; i < kNumSizeClasses; i++) {
    EXPECT_EQ(d.class_mallocs[i], i == cls ? mallocs : 0) << "by_size[" << i << "].mallocs";
    EXPECT_EQ(d.class_frees[i], i == cls ? frees : 0) << "by_size[" << i << "].frees";
  }
}

struct SmallCase {
  const char* name;
  std::size_t size;
  std::function<void*()> alloc;
};

TEST(Stats, SmallObjectsMoveTheirClass) {
  const SmallCase cases[] = {
      {"alloc(1)", 1, [] { return mgc::alloc(1); }},
      {"alloc(8)", 8, [] { return mgc::alloc(8); }},
      {"alloc(9)", 9, [] { return mgc::alloc(9); }},
      {"alloc_noscan(16)", 16, [] { return mgc::alloc_noscan(16); }},
      {"alloc(100)", 100, [] { return mgc::alloc(100); }},
      {"alloc_noscan(256)", 256, [] { return mgc::alloc_noscan(256); }},
      {"alloc(257)", 257, [] { return mgc::alloc(257); }},
      {"alloc_noscan(5000)", 5000, [] { return mgc::alloc_noscan(5000); }},
      {"alloc_typed(40)", 40,
       [] {
         return mgc::alloc_typed(mgc::Type(40, {0, 32}));
       }},
      {"alloc_typed(2000)", 2000, [] { return mgc::alloc_typed(mgc::Type(2000, {8})); }},
      {"alloc(32768)", 32768, [] { return mgc::alloc(32768); }},
  };
  for (const SmallCase& c : cases) {
    SCOPED_TRACE(c.name);
    const int cls = smallest_class(c.size);
    const auto bytes = static_cast<std::int64_t>(kClassToSize[cls]);
    const mgc::Stats s0 = mgc::stats();
    void* p = c.alloc();
    ASSERT_NE(p, nullptr);
    const mgc::Stats s1 = mgc::stats();
    const Delta a = delta(s0, s1);
    EXPECT_EQ(a.mallocs, 1);
    EXPECT_EQ(a.frees, 0);
    EXPECT_EQ(a.heap_objects, 1);
    EXPECT_EQ(a.heap_alloc, bytes);
    EXPECT_EQ(a.tiny_mallocs, 0);
    EXPECT_EQ(a.large_mallocs, 0);
    expect_classes(a, cls, 1, 0);
    mgc::free(p);
    const Delta f = delta(s1, mgc::stats());
    EXPECT_EQ(f.mallocs, 0);
    EXPECT_EQ(f.frees, 1);
    EXPECT_EQ(f.heap_objects, -1);
    EXPECT_EQ(f.heap_alloc, -bytes);
    EXPECT_EQ(f.tiny_frees, 0);
    EXPECT_EQ(f.large_frees, 0);
    expect_classes(f, cls, 0, 1);
  }
}

TEST(Stats, ManySmallObjectsAcrossChunksAndSpans) {
  // More objects than one chunk (64) and than one span holds.
  for (std::size_t size : {std::size_t{16}, std::size_t{2048}}) {
    const int cls = smallest_class(size);
    const mgc::Stats s0 = mgc::stats();
    std::vector<void*> objs;
    for (int i = 0; i < 1000; i++) objs.push_back(mgc::alloc(size));
    const Delta a = delta(s0, mgc::stats());
    EXPECT_EQ(a.mallocs, 1000);
    EXPECT_EQ(a.heap_objects, 1000);
    EXPECT_EQ(a.heap_alloc, 1000 * static_cast<std::int64_t>(size));
    expect_classes(a, cls, 1000, 0);
    for (void* p : objs) mgc::free(p);
    const Delta f = delta(s0, mgc::stats());
    EXPECT_EQ(f.frees, 1000);
    EXPECT_EQ(f.heap_objects, 0);
    EXPECT_EQ(f.heap_alloc, 0);
  }
}

TEST(Stats, TinyObjectsCountAsTinyAndTheirBlocks) {
  // A 15-byte object cannot share a block with another 15-byte one, so the
  // second of two takes a new block: exactly 16 more bytes.
  void* first = mgc::alloc_noscan(15);
  const mgc::Stats s0 = mgc::stats();
  void* p = mgc::alloc_noscan(15);
  const mgc::Stats s1 = mgc::stats();
  const Delta a = delta(s0, s1);
  EXPECT_EQ(a.tiny_mallocs, 1);
  EXPECT_EQ(a.mallocs, 1);
  EXPECT_EQ(a.heap_objects, 1);
  EXPECT_EQ(a.heap_alloc, 16);
  expect_classes(a, -1, 0, 0);  // tiny objects are in no class's figures
  // An object sharing the block: one more object, no more bytes.
  void* q = mgc::alloc_noscan(1);
  const Delta b = delta(s1, mgc::stats());
  EXPECT_EQ(b.tiny_mallocs, 1);
  EXPECT_EQ(b.heap_objects, 1);
  EXPECT_EQ(b.heap_alloc, 0);
  mgc::free(first);  // its block is not the current one: released whole
  mgc::free(q);
  mgc::free(p);
  const Delta f = delta(s1, mgc::stats());
  EXPECT_EQ(f.tiny_frees, 3);
  EXPECT_EQ(f.frees, 3);
  EXPECT_EQ(f.heap_objects, -2);
  expect_classes(f, -1, 0, 0);
}

TEST(Stats, TinyBlockLeavesHeapAllocWhenItsObjectsAreFreed) {
  // A block that is not the current one: freeing its last object releases
  // it.
  mgc::alloc_noscan(15);
  const mgc::Stats s0 = mgc::stats();
  void* a = mgc::alloc_noscan(15);  // block A
  void* b = mgc::alloc_noscan(15);  // block B, now the current one
  EXPECT_EQ(delta(s0, mgc::stats()).heap_alloc, 32);
  mgc::free(a);
  EXPECT_EQ(delta(s0, mgc::stats()).heap_alloc, 16);
  mgc::free(b);
  // mallocgc.hpp: heap_alloc counts a block "while any object in it lives
  // and, empty or not, each thread's current tiny block". B is the current
  // block: it starts over in place and stays counted...
  EXPECT_EQ(delta(s0, mgc::stats()).heap_alloc, 16);
  void* c = mgc::alloc_noscan(15);
  EXPECT_EQ(c, b);
  EXPECT_EQ(delta(s0, mgc::stats()).heap_alloc, 16);
  mgc::free(c);
  // ...until the thread gives its cache up, which releases an empty block.
  mgc::internal::release_this_cache();
  EXPECT_EQ(delta(s0, mgc::stats()).heap_alloc, 0);
}

TEST(Stats, LargeObjectsCountWholePages) {
  for (std::size_t size : {kMaxSmallSize + 1, std::size_t{100000}, std::size_t{1} << 20, (std::size_t{3} << 20) + 5}) {
    SCOPED_TRACE(size);
    const auto bytes = static_cast<std::int64_t>((size + kPageSize - 1) / kPageSize * kPageSize);
    const mgc::Stats s0 = mgc::stats();
    void* p = mgc::alloc_noscan(size);
    const mgc::Stats s1 = mgc::stats();
    const Delta a = delta(s0, s1);
    EXPECT_EQ(a.large_mallocs, 1);
    EXPECT_EQ(a.mallocs, 1);
    EXPECT_EQ(a.heap_objects, 1);
    EXPECT_EQ(a.heap_alloc, bytes);
    EXPECT_EQ(a.tiny_mallocs, 0);
    expect_classes(a, -1, 0, 0);
    EXPECT_GE(s1.heap_inuse - s0.heap_inuse, static_cast<std::uint64_t>(bytes)) << "the span's pages are in use";
    mgc::free(p);
    const mgc::Stats s2 = mgc::stats();
    const Delta f = delta(s1, s2);
    EXPECT_EQ(f.large_frees, 1);
    EXPECT_EQ(f.frees, 1);
    EXPECT_EQ(f.heap_objects, -1);
    EXPECT_EQ(f.heap_alloc, -bytes);
    EXPECT_EQ(s1.heap_inuse - s2.heap_inuse, static_cast<std::uint64_t>(bytes)) << "the pages are free again";
  }
}

void expect_consistent(const mgc::Stats& s) {
  EXPECT_GE(s.heap_sys, s.heap_inuse);
  EXPECT_GE(s.heap_reserved, s.heap_sys);
  EXPECT_EQ(s.heap_inuse + s.heap_idle, s.heap_sys) << "committed pages are in use or idle";
  EXPECT_LE(s.heap_alloc, s.heap_inuse) << "objects lie in in-use spans";
  EXPECT_GE(s.mallocs, s.frees);
  EXPECT_EQ(s.heap_objects, s.mallocs - s.frees);
  EXPECT_EQ(s.heap_sys % kPageSize, 0u);
  std::uint64_t mallocs = s.tiny_mallocs + s.large_mallocs, frees = s.tiny_frees + s.large_frees;
  EXPECT_EQ(s.by_size[0].size, 0u);
  EXPECT_EQ(s.by_size[0].mallocs, 0u);
  for (int i = 1; i < kNumSizeClasses; i++) {
    EXPECT_EQ(s.by_size[i].size, kClassToSize[i]);
    EXPECT_GE(s.by_size[i].mallocs, s.by_size[i].frees);
    mallocs += s.by_size[i].mallocs;
    frees += s.by_size[i].frees;
  }
  EXPECT_EQ(mallocs, s.mallocs) << "mallocs is tiny + large + the classes' sum";
  EXPECT_EQ(frees, s.frees);
}

TEST(Stats, FiguresAreConsistent) {
  expect_consistent(mgc::stats());
  std::vector<void*> objs;
  for (int i = 0; i < 3000; i++) objs.push_back(mgc::alloc(static_cast<std::size_t>(i * 37 % 40000 + 1)));
  for (int i = 0; i < 500; i++) objs.push_back(mgc::alloc_noscan(static_cast<std::size_t>(i % 15 + 1)));
  const mgc::Stats full = mgc::stats();
  expect_consistent(full);
  EXPECT_GT(full.heap_inuse, 3000u * 16);
  for (std::size_t i = 0; i < objs.size(); i += 2) mgc::free(objs[i]);
  expect_consistent(mgc::stats());
  for (std::size_t i = 1; i < objs.size(); i += 2) mgc::free(objs[i]);
  const mgc::Stats empty = mgc::stats();
  expect_consistent(empty);
  EXPECT_LT(empty.heap_inuse, full.heap_inuse) << "freed spans go back to the page heap";
}

TEST(Stats, HeapObjectsReturnAfterFreeingEverything) {
  const mgc::Stats s0 = mgc::stats();
  std::vector<void*> objs;
  for (int round = 0; round < 3; round++) {
    for (std::size_t size = 1; size <= 2000; size += 7) objs.push_back(mgc::alloc(size));
    for (std::size_t size = 0; size <= 40; size++) objs.push_back(mgc::alloc_noscan(size));
    for (std::size_t size : {40000, 70000, 300000}) objs.push_back(mgc::alloc(size));
    objs.push_back(mgc::alloc_typed(mgc::Type(72, {0, 64})));
  }
  const mgc::Stats s1 = mgc::stats();
  EXPECT_EQ(s1.heap_objects, s0.heap_objects + objs.size());
  EXPECT_EQ(s1.mallocs, s0.mallocs + objs.size());
  for (void* p : objs) mgc::free(p);
  const mgc::Stats s2 = mgc::stats();
  EXPECT_EQ(s2.heap_objects, s0.heap_objects);
  EXPECT_EQ(s2.frees, s0.frees + objs.size());
}

TEST(Stats, ExitedThreadsAreCounted) {
  // A thread's counts are folded in when it exits, so after join they are
  // exact; frees by this thread of its objects are counted at once.
  const mgc::Stats s0 = mgc::stats();
  std::vector<void*> objs;
  std::thread([&objs] {
    for (int i = 0; i < 500; i++) objs.push_back(mgc::alloc(static_cast<std::size_t>(i % 300 + 1)));
    for (int i = 0; i < 100; i++) objs.push_back(mgc::alloc_noscan(static_cast<std::size_t>(i % 15 + 1)));
    objs.push_back(mgc::alloc(1 << 20));
  }).join();
  const mgc::Stats s1 = mgc::stats();
  EXPECT_EQ(s1.mallocs - s0.mallocs, objs.size());
  EXPECT_EQ(s1.tiny_mallocs - s0.tiny_mallocs, 100u);
  EXPECT_EQ(s1.large_mallocs - s0.large_mallocs, 1u);
  EXPECT_EQ(s1.heap_objects - s0.heap_objects, objs.size());
  for (void* p : objs) mgc::free(p);
  const mgc::Stats s2 = mgc::stats();
  EXPECT_EQ(s2.frees - s1.frees, objs.size());
  EXPECT_EQ(s2.heap_objects, s0.heap_objects);
  EXPECT_EQ(s2.heap_alloc, s0.heap_alloc);
}

TEST(Stats, ReadingStatsAllocatesNothing) {
  const mgc::Stats s0 = mgc::stats();
  const mgc::Stats s1 = mgc::stats();
  EXPECT_EQ(s1.mallocs, s0.mallocs);
  EXPECT_EQ(s1.heap_alloc, s0.heap_alloc);
  std::uint64_t threads = 0;
  std::thread([&] { threads = mgc::stats().num_threads; }).join();
  EXPECT_EQ(threads, s0.num_threads) << "stats() from a thread with no cache gives it none";
}

}  // namespace

// Regression (review finding): another live thread's tiny objects were
// counted only when that thread exited, so frees of them by this thread
// made heap_objects fall far below the truth. The lag is now one chunk of
// blocks (64 blocks of up to 16 objects).
TEST(Stats, AnotherLiveThreadsTinyObjectsAreCountedWithinAChunk) {
  constexpr int kObjects = 100000;
  std::vector<void*> objects(kObjects);
  std::mutex m;
  std::condition_variable cv;
  bool allocated = false, done = false;
  const mgc::Stats s0 = mgc::stats();
  std::thread t([&] {
    for (void*& p : objects) p = mgc::alloc_noscan(8);
    std::unique_lock<std::mutex> l(m);
    allocated = true;
    cv.notify_all();
    cv.wait(l, [&] { return done; });
  });
  {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return allocated; });
  }
  const Delta a = delta(s0, mgc::stats());
  EXPECT_GE(a.tiny_mallocs, kObjects - 64 * 16);
  EXPECT_LE(a.tiny_mallocs, kObjects);
  for (void* p : objects) mgc::free(p);
  const Delta f = delta(s0, mgc::stats());
  EXPECT_EQ(f.tiny_frees, kObjects);
  EXPECT_GE(f.heap_objects, -64 * 16);
  {
    std::lock_guard<std::mutex> l(m);
    done = true;
  }
  cv.notify_all();
  t.join();
  EXPECT_EQ(delta(s0, mgc::stats()).heap_objects, 0);
}
