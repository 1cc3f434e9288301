// ThreadSanitizer sees the collected heap as ordinary memory: a race the
// program makes on an object is reported, naming the object's memory, and
// the heap's own synchronisation (the per-thread caches, the stops, the
// collector's locks, src/os/mutex.hpp) makes none; the rest of the tsan
// preset's tests (the stress tests among them) fail on any report. These
// need the TSan build (-DMALLOCGC_TSAN=ON) and skip elsewhere, saying so.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "gc_test_support.hpp"
#include "gtest/gtest.h"
#include "mallocgc/mallocgc.hpp"

namespace {

#if defined(__SANITIZE_THREAD__)
#define SKIP_UNLESS_TSAN() (void)0
#else
#define SKIP_UNLESS_TSAN() GTEST_SKIP() << "needs the ThreadSanitizer build (-DMALLOCGC_TSAN=ON)"
#endif

struct Counter {
  long hits;
  Counter* next;
};

// Two threads write one heap object's field with nothing ordering them;
// the collector runs meanwhile. Exits (TSan makes the status 66 if it
// reported anything).
[[noreturn]] void race_on_heap_object() {
  auto* c = static_cast<Counter*>(mgc::alloc(sizeof(Counter)));
  std::atomic<bool> go{false};
  auto body = [&] {
    while (!go.load(std::memory_order_relaxed)) {
    }
    for (int i = 0; i < 1000; i++) c->hits = c->hits + 1;  // the race
  };
  std::thread a(body), b(body);
  mgc::collect();
  go.store(true, std::memory_order_relaxed);
  a.join();
  b.join();
  std::exit(c->hits > 0 ? 0 : 1);
}

TEST(GcTsan, ARaceOnAHeapObjectIsReported) {
  SKIP_UNLESS_TSAN();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(race_on_heap_object(), testing::ExitedWithCode(66), "WARNING: ThreadSanitizer: data race");
}

// The same writes ordered by a lock of the program's: no report (the test
// would exit 66 at its end), and the collector, running between them, adds
// none of its own.
Counter* g_keep;  // a root

TEST(GcTsan, OrderedWritesAcrossCollectionsAreNotReported) {
  SKIP_UNLESS_TSAN();
  g_keep = static_cast<Counter*>(mgc::alloc(sizeof(Counter)));
  std::mutex m;
  auto body = [&] {
    for (int i = 0; i < 200; i++) {
      std::lock_guard<std::mutex> g(m);
      g_keep->hits++;
      // A new object each time, made by one thread and dropped by the
      // other: reclaimed, and its slot made again, by either.
      auto* n = static_cast<Counter*>(mgc::alloc(sizeof(Counter)));
      n->hits = i;
      g_keep->next = n;
      // Not under the lock: under TSan a thread waiting in
      // pthread_mutex_lock takes the stop signal only once it has the lock
      // (README, "ThreadSanitizer").
      if (i % 50 == 0) {
        m.unlock();
        mgc::collect();
        m.lock();
      }
    }
  };
  std::thread a(body), b(body);
  a.join();
  b.join();
  EXPECT_EQ(g_keep->hits, 400);
  g_keep = nullptr;
}

}  // namespace
