// Multi-threaded stress of allocation and free (label `stress`).
//
// Worker threads allocate objects of random sizes and kinds (tiny, small,
// medium, typed, large), check that each comes back zeroed, fill it with a
// pattern derived from (thread, sequence number), keep a random working
// set, verify the pattern before freeing, and hand some objects to other
// threads through a shared pool to be verified and freed there. A global
// map of live [base, base + size) intervals checks that no two live objects
// overlap. Workers run in rounds, so that threads exit with live objects
// that later threads free. At the end everything is freed: heap_objects is
// back to where it was and check_heap() passes.
//
// MALLOCGC_STRESS_SCALE multiplies the number of operations (default 1: a
// few seconds).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "mallocgc/mallocgc.hpp"
#include "runtime/debug_malloc.hpp"

namespace {

double stress_scale() {
  const char* s = std::getenv("MALLOCGC_STRESS_SCALE");
  if (s == nullptr || *s == '\0') return 1.0;
  const double v = std::strtod(s, nullptr);
  return v > 0 ? v : 1.0;
}

enum class Kind { kTiny, kSmallNoscan, kSmall, kMedium, kTyped, kLarge };

struct Obj {
  unsigned char* p;
  std::size_t size;
  std::uint64_t seed;  // from (thread, sequence)
  Kind kind;
};

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

std::uint64_t pattern_word(std::uint64_t seed, std::size_t k) { return mix(seed + k * 0x9E3779B97F4A7C15ull); }

void fill(const Obj& o) {
  const std::size_t words = o.size / 8;
  for (std::size_t k = 0; k < words; k++) {
    const std::uint64_t w = pattern_word(o.seed, k);
    std::memcpy(o.p + 8 * k, &w, 8);
  }
  const std::uint64_t last = pattern_word(o.seed, words);
  std::memcpy(o.p + 8 * words, &last, o.size % 8);
}

// The first byte that differs from the pattern, or size.
std::size_t first_bad_byte(const Obj& o) {
  const std::size_t words = o.size / 8;
  for (std::size_t k = 0; k < words; k++) {
    const std::uint64_t w = pattern_word(o.seed, k);
    if (std::memcmp(o.p + 8 * k, &w, 8) != 0) return 8 * k;
  }
  const std::uint64_t last = pattern_word(o.seed, words);
  if (std::memcmp(o.p + 8 * words, &last, o.size % 8) != 0) return 8 * words;
  return o.size;
}

bool all_zero(const unsigned char* p, std::size_t n) {
  return std::all_of(p, p + n, [](unsigned char c) { return c == 0; });
}

class Stress {
 public:
  explicit Stress(std::size_t ops_per_thread) : ops_(ops_per_thread) {
    for (std::size_t size : {8, 24, 40, 64, 200, 256, 264, 1000, 5000, 30000, 40000, 100000}) {
      std::vector<std::size_t> offs;
      for (std::size_t off = 0; off + 8 <= size && off < 4096; off += 16) offs.push_back(off);
      types_.emplace_back(size, offs.data(), offs.size());
    }
  }

  void worker(std::uint32_t thread, std::uint64_t rng_seed) {
    std::mt19937_64 rng(rng_seed);
    std::vector<Obj> mine;
    const std::size_t target = 200 + rng() % 1500;  // working set, roughly
    std::uint64_t seq = 0;
    for (std::size_t op = 0; op < ops_ && !failed(); op++) {
      const unsigned r = rng() % 100;
      if (r < 3) {
        if (!mine.empty()) give(take_random(&mine, rng));
      } else if (r < 6) {
        if (std::optional<Obj> o = take_from_pool(rng)) release(*o, thread);
      } else if (mine.size() < target ? r < 70 : r < 40) {
        mine.push_back(allocate(thread, seq++, rng));
        if (failed()) break;
      } else if (!mine.empty()) {
        release(take_random(&mine, rng), thread);
      }
    }
    // Exit with live objects: later threads (or the end) free them.
    for (Obj& o : mine) give(o);
  }

  // Free everything still in the pool (single-threaded, at the end).
  void drain() {
    std::vector<Obj> rest;
    {
      std::lock_guard<std::mutex> g(pool_lock_);
      rest.swap(pool_);
    }
    for (const Obj& o : rest) release(o, 0);
  }

  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  std::string failure() {
    std::lock_guard<std::mutex> g(fail_lock_);
    return failure_;
  }
  std::size_t live_intervals() {
    std::lock_guard<std::mutex> g(live_lock_);
    return live_.size();
  }
  std::uint64_t allocated() const { return allocated_.load(); }

 private:
  void fail(const std::string& what) {
    std::lock_guard<std::mutex> g(fail_lock_);
    if (!failed_.exchange(true)) failure_ = what;
  }

  static std::string hex(const void* p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", p);
    return buf;
  }

  Obj allocate(std::uint32_t thread, std::uint64_t seq, std::mt19937_64& rng) {
    Obj o{nullptr, 0, mix((std::uint64_t{thread} << 40) ^ seq), Kind::kTiny};
    const unsigned r = rng() % 100;
    void* p;
    if (r < 35) {
      o.kind = Kind::kTiny;
      o.size = 1 + rng() % 15;
      p = mgc::alloc_noscan(o.size);
    } else if (r < 50) {
      o.kind = Kind::kSmallNoscan;
      o.size = 16 + rng() % 1009;
      p = mgc::alloc_noscan(o.size);
    } else if (r < 68) {
      o.kind = Kind::kSmall;
      o.size = 1 + rng() % 1024;
      p = mgc::alloc(o.size);
    } else if (r < 80) {
      o.kind = Kind::kMedium;
      o.size = 1025 + rng() % (32768 - 1024);
      p = rng() % 2 ? mgc::alloc(o.size) : mgc::alloc_noscan(o.size);
    } else if (r < 96) {
      o.kind = Kind::kTyped;
      const mgc::Type& t = types_[rng() % types_.size()];
      o.size = t.size();
      p = mgc::alloc_typed(t);
    } else {
      o.kind = Kind::kLarge;
      o.size = 32769 + rng() % (rng() % 8 == 0 ? (1 << 20) : 200000);
      p = rng() % 2 ? mgc::alloc(o.size) : mgc::alloc_noscan(o.size);
    }
    allocated_.fetch_add(1, std::memory_order_relaxed);
    o.p = static_cast<unsigned char*>(p);
    if (p == nullptr) {
      fail("allocation of " + std::to_string(o.size) + " bytes returned nullptr");
      return o;
    }
    if (!all_zero(o.p, o.size)) fail("object at " + hex(p) + " of " + std::to_string(o.size) + " bytes not zeroed");
    mgc::ObjectInfo info;
    if (!mgc::find_object(p, &info)) {
      fail("find_object misses the new object at " + hex(p));
    } else {
      const auto base = reinterpret_cast<std::uintptr_t>(info.base), a = reinterpret_cast<std::uintptr_t>(p);
      if (a < base || a + o.size > base + info.size) fail("object at " + hex(p) + " is not inside its slot");
      const mgc::ObjectKind want = o.kind == Kind::kTyped ? mgc::ObjectKind::typed
                                   : o.kind == Kind::kTiny || o.kind == Kind::kSmallNoscan
                                       ? mgc::ObjectKind::noscan
                                       : info.kind;  // medium and large: either
      if (info.kind != want) fail("object at " + hex(p) + " has the wrong kind");
    }
    insert_interval(o);
    fill(o);
    return o;
  }

  void release(const Obj& o, std::uint32_t thread) {
    const std::size_t bad = first_bad_byte(o);
    if (bad != o.size)
      fail("object at " + hex(o.p) + " of " + std::to_string(o.size) + " bytes overwritten at byte " +
           std::to_string(bad) + " (freed by thread " + std::to_string(thread) + ")");
    erase_interval(o);  // before the free: then the address may come back
    mgc::free(o.p);
  }

  void insert_interval(const Obj& o) {
    const auto lo = reinterpret_cast<std::uintptr_t>(o.p), hi = lo + o.size;
    std::lock_guard<std::mutex> g(live_lock_);
    auto next = live_.lower_bound(lo);
    if (next != live_.end() && next->first < hi)
      fail("new object [" + hex(o.p) + ", +" + std::to_string(o.size) + ") overlaps the live object at " +
           hex(reinterpret_cast<void*>(next->first)));
    if (next != live_.begin() && std::prev(next)->second > lo)
      fail("new object at " + hex(o.p) + " overlaps the live object at " +
           hex(reinterpret_cast<void*>(std::prev(next)->first)));
    live_[lo] = hi;
  }

  void erase_interval(const Obj& o) {
    std::lock_guard<std::mutex> g(live_lock_);
    if (live_.erase(reinterpret_cast<std::uintptr_t>(o.p)) != 1)
      fail("freeing an object that is not live: " + hex(o.p));
  }

  static Obj take_random(std::vector<Obj>* v, std::mt19937_64& rng) {
    const std::size_t i = rng() % v->size();
    Obj o = (*v)[i];
    (*v)[i] = v->back();
    v->pop_back();
    return o;
  }

  void give(const Obj& o) {
    std::lock_guard<std::mutex> g(pool_lock_);
    pool_.push_back(o);
  }

  std::optional<Obj> take_from_pool(std::mt19937_64& rng) {
    std::lock_guard<std::mutex> g(pool_lock_);
    if (pool_.empty()) return std::nullopt;
    return take_random(&pool_, rng);
  }

  const std::size_t ops_;
  std::vector<mgc::Type> types_;
  std::mutex pool_lock_;
  std::vector<Obj> pool_;
  std::mutex live_lock_;
  std::map<std::uintptr_t, std::uintptr_t> live_;
  std::atomic<std::uint64_t> allocated_{0};
  std::atomic<bool> failed_{false};
  std::mutex fail_lock_;
  std::string failure_;
};

TEST(MallocStress, ThreadsAllocateVerifyAndFreeEachOthersObjects) {
  const double scale = stress_scale();
  constexpr int kRounds = 3;
  const auto ops = static_cast<std::size_t>(40000 * scale);
  const mgc::Stats before = mgc::stats();
  Stress stress(ops);
  for (int round = 0; round < kRounds && !stress.failed(); round++) {
    const int nthreads = 2 + round % 3;  // 2, 3, 4
    std::vector<std::thread> ts;
    for (int t = 0; t < nthreads; t++) {
      const auto id = static_cast<std::uint32_t>(round * 16 + t + 1);
      ts.emplace_back([&stress, id] { stress.worker(id, 0x5eed0000u + id); });
    }
    for (std::thread& t : ts) t.join();
    ASSERT_FALSE(stress.failed()) << stress.failure();
    mgc::internal::check_heap();
  }
  stress.drain();
  ASSERT_FALSE(stress.failed()) << stress.failure();
  EXPECT_EQ(stress.live_intervals(), 0u);
  const mgc::Stats after = mgc::stats();
  EXPECT_EQ(after.mallocs - before.mallocs, stress.allocated());
  EXPECT_EQ(after.frees - before.frees, stress.allocated());
  EXPECT_EQ(after.heap_objects, before.heap_objects);
  EXPECT_EQ(after.num_threads, before.num_threads);
  mgc::internal::check_heap();
}

}  // namespace
