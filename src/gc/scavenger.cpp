#include "gc/scavenger.hpp"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <new>
#include <thread>

#include "gc/pacer.hpp"
#include "heap/meta_alloc.hpp"
#include "heap/mheap.hpp"
#include "os/clock.hpp"
#include "os/immortal.hpp"
#include "os/mutex.hpp"
#include "os/trace.hpp"

namespace mgc::internal {

namespace {

std::atomic<bool> g_enabled{true};
std::atomic<bool> g_growth_enabled{true};
std::atomic<bool> g_cycle_release{false};
constexpr std::size_t kReleaseAge = 6;
std::uint64_t g_excess_seen[kReleaseAge] = {};
std::uint64_t g_cycle_ends = 0;
std::atomic<std::uint64_t> g_scavenged{0};
// CPU time spent releasing pages, by the background thread and by the
// program's threads (growth, release_memory): the collector's cost.
std::atomic<std::uint64_t> g_scavenge_cpu_ns{0};

std::uint64_t thread_cpu_now() { return os::clock_ns(CLOCK_THREAD_CPUTIME_ID); }

// Counts the CPU time of one release, when it released something (a look
// that found nothing to do is not the scavenger's work).
class ScavengeCpu {
 public:
  ScavengeCpu() : t0_(thread_cpu_now()) {}
  void done(std::uint64_t released) {
    if (released != 0) g_scavenge_cpu_ns.fetch_add(thread_cpu_now() - t0_, std::memory_order_relaxed);
  }

 private:
  std::uint64_t t0_;
};

// Wake-up state: g_requests counts cycles that asked the thread to look at
// its goal. g_lock guards it and the condition variable; it is a leaf.
Mutex g_lock;
std::condition_variable_any& scavenger_cv() {
  static Immortal<std::condition_variable_any> x;
  return *x;
}
std::uint64_t g_requests = 0;
bool g_started = false;  // under g_lock

// The longest sleep between two batches: the pacing is about CPU, not
// about being slow when each batch is slow (a loaded machine).
constexpr auto kMaxSleep = std::chrono::milliseconds(20);

std::uint64_t now_ns() { return os::clock_ns(CLOCK_MONOTONIC); }

// Bytes retained beyond the goal (0: none), and whether the limit asks.
std::uint64_t excess(bool* by_limit) {
  const std::uint64_t goal = scavenge_goal(by_limit);
  const std::uint64_t committed = mheap().committed_bytes();
  const std::uint64_t released = mheap().released_bytes();
  const std::uint64_t retained = committed > released ? committed - released : 0;
  return retained > goal ? retained - goal : 0;
}

void scavenger_thread() {
  trace_name_thread("scavenger");
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<Mutex> g(g_lock);
      scavenger_cv().wait(g, [&] { return g_requests != seen; });
      seen = g_requests;
    }
    for (;;) {
      bool by_limit = false;
      if (excess(&by_limit) == 0) break;
      const std::uint64_t t0 = now_ns();
      // One huge page per batch at most: the heap lock is dropped between
      // batches and around each madvise. A batch is an event of the trace.
      std::size_t got;
      {
        TraceScope trace(TraceEv::kScavenge);
        trace.only_if_work();
        ScavengeCpu cpu;
        got = trace.a0 = mheap().scavenge_one(/*spare_dense=*/!by_limit);
        cpu.done(got);
      }
      if (got == 0) break;  // every free page is released
      g_scavenged.fetch_add(got, std::memory_order_relaxed);
      if (by_limit) continue;
      const std::uint64_t took = now_ns() - t0;
      const auto sleep = std::chrono::nanoseconds(took * (100 / kScavengeCpuPercent - 1));
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(sleep, kMaxSleep));
    }
  }
}

}  // namespace

void set_background_scavenge(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
void set_growth_scavenge(bool on) { g_growth_enabled.store(on, std::memory_order_relaxed); }
void set_cycle_release(bool on) { g_cycle_release.store(on, std::memory_order_relaxed); }
bool background_scavenge() { return g_enabled.load(std::memory_order_relaxed); }

std::uint64_t scavenge_goal(bool* by_limit) {
  std::uint64_t goal = UINT64_MAX;
  if (pacer_gc_percent() >= 0) {
    const std::uint64_t g = pacer_goal();
    goal = g > UINT64_MAX / 2 ? UINT64_MAX : g + g / 10;
  }
  bool limited = false;
  const std::int64_t limit = pacer_memory_limit();
  if (limit != kNoMemoryLimit) {
    const auto l = static_cast<std::uint64_t>(limit);
    const std::uint64_t meta = meta_sys_bytes();
    const std::uint64_t under = l - l / 20;
    const std::uint64_t lg = under > meta ? under - meta : 0;
    if (lg < goal) {
      goal = lg;
      limited = true;
    }
  }
  if (by_limit != nullptr) *by_limit = limited;
  return goal;
}

namespace {

// Release free pages, batch by batch, until want bytes or none is left
// (but the dense huge pages' when spare_dense); counted in the total.
// Returns bytes released.
std::uint64_t release_up_to(std::uint64_t want, bool spare_dense) {
  ScavengeCpu cpu;
  std::uint64_t total = 0;
  while (total < want) {
    const std::size_t got = mheap().scavenge_one(spare_dense);
    if (got == 0) break;
    total += got;
  }
  g_scavenged.fetch_add(total, std::memory_order_relaxed);
  cpu.done(total);
  return total;
}

// The heap grew by grown bytes: release as much of its free pages (up to
// what it retains beyond the goal) in the allocating thread, as Go's
// mheap.grow does. A heap whose free pages are too scattered for a large
// object then keeps its resident size near the goal instead of adding the
// new object's pages to them (guile's 128 MiB bytevectors made after
// hundreds of megabytes of small objects died: 1030 MiB peak RSS).
void scavenge_after_growth(std::size_t grown) {
  if (!g_growth_enabled.load(std::memory_order_relaxed)) return;
  bool by_limit = false;
  const std::uint64_t want = std::min<std::uint64_t>(grown, excess(&by_limit));
  if (want == 0) return;
  TraceScope trace(TraceEv::kScavengeGrowth);
  trace.a0 = release_up_to(want, /*spare_dense=*/!by_limit);
}

}  // namespace

void wake_scavenger(bool after_cycle) {
  // From the first cycle on: before it the goal means nothing yet.
  mheap().set_growth_scavenger(scavenge_after_growth);
  if (!g_enabled.load(std::memory_order_relaxed)) {
    if (after_cycle && g_cycle_release.load(std::memory_order_relaxed)) {
      // Boehm unmaps a block once it has stayed free for GC_unmap_threshold
      // (6) collections: a heap the program just grew (GC_expand_hp,
      // GC_INITIAL_HEAP_SIZE) stays. Here: what was retained beyond the
      // goal at each of the last six cycles' ends (the cycle lock guards
      // the ring).
      bool by_limit = false;
      const std::uint64_t now = excess(&by_limit);
      g_excess_seen[g_cycle_ends++ % kReleaseAge] = now;
      std::uint64_t want = now;
      if (!by_limit) {
        if (g_cycle_ends < kReleaseAge) return;
        for (std::uint64_t e : g_excess_seen) want = std::min(want, e);
      }
      if (want == 0) return;
      TraceScope trace(TraceEv::kScavenge);
      trace.a0 = release_up_to(want, /*spare_dense=*/!by_limit);
    }
    return;
  }
  std::lock_guard<Mutex> g(g_lock);
  if (!g_started) {
    g_started = true;
    std::thread(scavenger_thread).detach();
  }
  g_requests++;
  scavenger_cv().notify_one();
}

std::size_t scavenge_all() {
  TraceScope trace(TraceEv::kScavengeAll);
  trace.a0 = release_up_to(UINT64_MAX, /*spare_dense=*/false);
  return trace.a0;
}

std::uint64_t scavenged_total() { return g_scavenged.load(std::memory_order_relaxed); }

std::uint64_t scavenge_cpu_ns() { return g_scavenge_cpu_ns.load(std::memory_order_relaxed); }

void exclude_scavenger_statics(void (*exclude)(const void* begin, const void* end)) {
  exclude(&g_scavenge_cpu_ns, &g_scavenge_cpu_ns + 1);
  exclude(&g_scavenged, &g_scavenged + 1);
}

void lock_scavenger_state() { g_lock.lock(); }
void unlock_scavenger_state() { g_lock.unlock(); }

void scavenger_after_fork() {
  // The thread did not come along; the condition variable may count it as
  // a waiter: made anew.
  ::new (&scavenger_cv()) std::condition_variable_any();
  g_started = false;
}

}  // namespace mgc::internal
