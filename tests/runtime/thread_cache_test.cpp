// Threads' allocation caches (src/runtime/thread_cache.cpp): created at a
// thread's first allocation, given back (spans and all) when it exits, so
// that any number of short-lived threads leave the heap as they found it.
#include "runtime/thread_cache.hpp"

#include <pthread.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "heap/mheap.hpp"
#include "heap/span.hpp"
#include "mallocgc/mallocgc.hpp"

namespace {

using mgc::internal::MCache;
using mgc::internal::MSpan;
using mgc::internal::this_cache_if_any;

MSpan* span_of(const void* p) { return mgc::internal::mheap().span_of(reinterpret_cast<std::uintptr_t>(p)); }

TEST(ThreadCache, FirstAllocationCreatesTheCache) {
  const std::uint64_t base = mgc::stats().num_threads;
  std::thread([base] {
    EXPECT_EQ(this_cache_if_any(), nullptr);
    EXPECT_EQ(mgc::internal::tls_cache, &mgc::internal::g_empty_cache);
    EXPECT_EQ(mgc::stats().num_threads, base);
    void* p = mgc::alloc(16);
    ASSERT_NE(p, nullptr);
    MCache* c = this_cache_if_any();
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(mgc::internal::tls_cache, &c->front);
    EXPECT_EQ(mgc::stats().num_threads, base + 1);
    mgc::alloc_noscan(3);
    mgc::alloc(100000);
    EXPECT_EQ(this_cache_if_any(), c) << "one cache per thread";
    EXPECT_EQ(mgc::stats().num_threads, base + 1);
  }).join();
  EXPECT_EQ(mgc::stats().num_threads, base) << "exit releases the cache";
}

TEST(ThreadCache, EveryKindOfFirstAllocationCreatesTheCache) {
  struct alignas(128) Aligned {
    char c;
  };
  const std::uint64_t base = mgc::stats().num_threads;
  const std::function<void*()> firsts[] = {
      [] { return mgc::alloc(8); },
      [] { return mgc::alloc(1000); },
      [] { return mgc::alloc_noscan(1); },
      [] { return mgc::alloc_noscan(64); },
      [] { return mgc::alloc_typed(mgc::Type(24, {0})); },
      [] { return mgc::alloc_typed(mgc::Type(2400, {0})); },
      [] { return static_cast<void*>(mgc::make<Aligned>()); },
  };
  for (const auto& first : firsts) {
    void* p = nullptr;
    std::thread([&] {
      p = first();
      EXPECT_NE(this_cache_if_any(), nullptr);
      EXPECT_EQ(mgc::stats().num_threads, base + 1);
    }).join();
    ASSERT_NE(p, nullptr);
    mgc::free(p);
  }
  EXPECT_EQ(mgc::stats().num_threads, base);
}

TEST(ThreadCache, ThreadsThatOnlyFreeGetNoCache) {
  void* p = mgc::alloc(64);
  const std::uint64_t base = mgc::stats().num_threads;
  std::thread([&] {
    mgc::free(p);
    mgc::stats();
    EXPECT_EQ(this_cache_if_any(), nullptr);
    EXPECT_EQ(mgc::stats().num_threads, base);
  }).join();
}

TEST(ThreadCache, ExitGivesTheSpansBack) {
  std::vector<void*> objs;
  std::set<MSpan*> spans;
  std::thread([&] {
    for (std::size_t size : {8, 16, 100, 1000, 5000, 20000}) {
      objs.push_back(mgc::alloc(size));
      objs.push_back(mgc::alloc_noscan(size));
    }
    objs.push_back(mgc::alloc_noscan(4));
    objs.push_back(mgc::alloc_typed(mgc::Type(48, {8})));
    MCache* c = this_cache_if_any();
    for (void* p : objs) {
      MSpan* s = span_of(p);
      ASSERT_NE(s, nullptr);
      EXPECT_EQ(s->owner.load(), c) << "the thread's cache owns the spans it allocates from";
      spans.insert(s);
    }
  }).join();
  for (MSpan* s : spans) EXPECT_EQ(s->owner.load(), nullptr) << "span at " << s->base << " still owned after exit";
  for (void* p : objs) EXPECT_TRUE(mgc::find_object(p, nullptr)) << "objects outlive their thread";
  for (void* p : objs) mgc::free(p);
}

TEST(ThreadCache, ObjectsOutliveTheirThreadIntact) {
  std::vector<std::pair<unsigned char*, std::size_t>> objs;
  std::thread([&] {
    for (std::size_t i = 1; i < 3000; i += 13) {
      auto* p = static_cast<unsigned char*>(i % 2 ? mgc::alloc(i) : mgc::alloc_noscan(i % 15 + 1));
      const std::size_t n = i % 2 ? i : i % 15 + 1;
      std::memset(p, static_cast<int>(i % 255 + 1), n);
      objs.emplace_back(p, n);
    }
  }).join();
  // Another thread allocates a lot: it must not get any of those objects.
  std::thread([] {
    std::vector<void*> more;
    for (std::size_t i = 1; i < 3000; i += 13) {
      more.push_back(mgc::alloc(i));
      more.push_back(mgc::alloc_noscan(i % 15 + 1));
    }
    for (void* p : more) mgc::free(p);
  }).join();
  for (std::size_t k = 0; k < objs.size(); k++) {
    const std::size_t i = 1 + 13 * k;
    for (std::size_t b = 0; b < objs[k].second; b++)
      ASSERT_EQ(objs[k].first[b], i % 255 + 1) << "object " << k << " byte " << b;
  }
  for (auto& [p, n] : objs) mgc::free(p);
}

// The per-thread work of the test: a few objects of several sizes,
// some tiny, one large, all freed by the thread.
void allocate_and_free_a_few() {
  void* objs[] = {
      mgc::alloc_noscan(1), mgc::alloc_noscan(4),    mgc::alloc_noscan(12), mgc::alloc(16),
      mgc::alloc(100),      mgc::alloc_noscan(2000), mgc::alloc(40000),
  };
  for (void* p : objs) mgc::free(p);
}

TEST(ThreadCache, TenThousandShortThreadsLeaveTheHeapAsTheyFoundIt) {
  // The issue: every thread that allocates and frees must give everything
  // back when it exits. Threads run eight at a time.
  const mgc::Stats before = mgc::stats();
  constexpr int kThreads = 10000, kAtOnce = 8;
  for (int i = 0; i < kThreads; i += kAtOnce) {
    std::thread ts[kAtOnce];
    for (std::thread& t : ts) t = std::thread(allocate_and_free_a_few);
    for (std::thread& t : ts) t.join();
  }
  const mgc::Stats after = mgc::stats();
  EXPECT_EQ(after.num_threads, before.num_threads);
  EXPECT_EQ(after.mallocs - before.mallocs, 7u * kThreads);
  EXPECT_EQ(after.frees - before.frees, 7u * kThreads);
  EXPECT_EQ(after.heap_objects, before.heap_objects);
  EXPECT_EQ(after.heap_alloc, before.heap_alloc)
      << "the heap grew by " << after.heap_alloc - before.heap_alloc << " bytes after " << kThreads << " threads";
  EXPECT_LE(after.heap_inuse, before.heap_inuse + (8u << 20)) << "spans leak";
}

TEST(ThreadCache, ThreadsExitWithoutFreeingAndAnotherFrees) {
  // Each thread exits with its objects alive; this thread frees them
  // afterwards, in spans no cache owns.
  const mgc::Stats before = mgc::stats();
  std::mutex m;
  std::vector<void*> objs;
  constexpr int kThreads = 1000, kAtOnce = 8;
  for (int i = 0; i < kThreads; i += kAtOnce) {
    std::thread ts[kAtOnce];
    for (std::thread& t : ts)
      t = std::thread([&] {
        void* mine[] = {mgc::alloc_noscan(1), mgc::alloc_noscan(4),    mgc::alloc_noscan(12), mgc::alloc(16),
                        mgc::alloc(100),      mgc::alloc_noscan(2000), mgc::alloc(40000)};
        std::lock_guard<std::mutex> g(m);
        objs.insert(objs.end(), std::begin(mine), std::end(mine));
      });
    for (std::thread& t : ts) t.join();
  }
  const mgc::Stats mid = mgc::stats();
  EXPECT_EQ(mid.heap_objects, before.heap_objects + objs.size());
  EXPECT_EQ(mid.num_threads, before.num_threads);
  for (void* p : objs) mgc::free(p);
  const mgc::Stats after = mgc::stats();
  EXPECT_EQ(after.heap_objects, before.heap_objects);
  EXPECT_EQ(after.heap_alloc, before.heap_alloc);
  EXPECT_LT(after.heap_inuse, mid.heap_inuse) << "emptied spans go back to the page heap";
}

TEST(ThreadCache, ManyLiveThreadsHaveACacheEach) {
  constexpr int kThreads = 32;
  const std::uint64_t base = mgc::stats().num_threads;
  std::barrier sync(kThreads + 1);
  std::vector<std::thread> ts;
  std::set<MCache*> caches;
  std::mutex m;
  for (int i = 0; i < kThreads; i++)
    ts.emplace_back([&] {
      mgc::free(mgc::alloc(32));
      {
        std::lock_guard<std::mutex> g(m);
        caches.insert(this_cache_if_any());
      }
      sync.arrive_and_wait();  // all alive
      sync.arrive_and_wait();  // counted
    });
  sync.arrive_and_wait();
  EXPECT_EQ(mgc::stats().num_threads, base + kThreads);
  EXPECT_EQ(caches.size(), static_cast<std::size_t>(kThreads));
  sync.arrive_and_wait();
  for (std::thread& t : ts) t.join();
  EXPECT_EQ(mgc::stats().num_threads, base);
}

TEST(ThreadCache, ReleaseThisCacheEarly) {
  const std::uint64_t base = mgc::stats().num_threads;
  std::thread([base] {
    auto* p = static_cast<char*>(mgc::alloc(200));
    std::memset(p, 7, 200);
    MSpan* s = span_of(p);
    EXPECT_EQ(mgc::stats().num_threads, base + 1);
    mgc::internal::release_this_cache();
    EXPECT_EQ(this_cache_if_any(), nullptr);
    EXPECT_EQ(mgc::stats().num_threads, base);
    EXPECT_EQ(s->owner.load(), nullptr);
    EXPECT_EQ(p[199], 7);
    void* q = mgc::alloc(200);  // a new cache
    EXPECT_NE(q, p);
    EXPECT_NE(this_cache_if_any(), nullptr);
    EXPECT_EQ(mgc::stats().num_threads, base + 1);
    mgc::free(p);
    mgc::free(q);
  }).join();
  EXPECT_EQ(mgc::stats().num_threads, base);
}

// A pthread key created after the allocator's: its destructor runs after
// the allocator released the thread's cache.
pthread_key_t g_late_key;
std::atomic<int> g_late_runs{0};

void late_destructor(void*) {
  g_late_runs++;
  void* p = mgc::alloc(64);
  void* t = mgc::alloc_noscan(5);
  mgc::free(p);
  mgc::free(t);
}

TEST(ThreadCache, AllocationFromALaterThreadExitDestructor) {
  mgc::free(mgc::alloc(16));  // the allocator's key exists first
  ASSERT_EQ(pthread_key_create(&g_late_key, late_destructor), 0);
  const mgc::Stats before = mgc::stats();
  std::thread([] {
    mgc::free(mgc::alloc(16));
    pthread_setspecific(g_late_key, reinterpret_cast<void*>(1));
  }).join();
  EXPECT_EQ(g_late_runs.load(), 1);
  const mgc::Stats after = mgc::stats();
  EXPECT_EQ(after.num_threads, before.num_threads) << "the cache made by the destructor is released too";
  EXPECT_EQ(after.heap_objects, before.heap_objects);
  EXPECT_EQ(after.mallocs - before.mallocs, 3u);
  pthread_key_delete(g_late_key);
}

}  // namespace
