#include "gc/pacer.hpp"

#include <algorithm>

#include "heap/meta_alloc.hpp"

namespace mgc::internal {

std::atomic<std::uint64_t> g_heap_goal{kHeapMinimum};
std::atomic<std::uint64_t> g_heap_trigger{kHeapMinimum};

namespace {
std::atomic<int> g_percent{100};
std::atomic<std::int64_t> g_limit{kNoMemoryLimit};
std::atomic<std::uint64_t> g_live{0};
std::atomic<std::uint64_t> g_roots{0};
std::atomic<int> g_fill_permille{0};
std::atomic<std::uint64_t> g_min_goal{kHeapMinimum};
// The highest goal GOGC's rule gave at the end of a cycle (the fill's cap).
std::atomic<std::uint64_t> g_peak_goal{0};

// The limiter's bucket and the clock readings it last took (cycle lock).
bool g_limiter_on = true;
std::uint64_t g_limiter_capacity = 1'000'000'000;
std::uint64_t g_bucket = 0;
std::uint64_t g_last_gc_cpu = 0, g_last_process_cpu = 0;
// The memory limit, not GOGC, set the goal last computed.
std::atomic<bool> g_limit_binding{false};
std::atomic<std::uint64_t> g_limiter_deferrals{0};

std::atomic<bool> g_concurrent_pacing{false};
std::atomic<std::uint64_t> g_concurrent_min_live{kConcurrentMinLive};
// The last concurrent mark: the live heap it found and what the program
// allocated while it ran (0, 0: none yet).
std::atomic<std::uint64_t> g_runway_live{0};
std::atomic<std::uint64_t> g_runway_alloc{0};

// Set the goal and the trigger with it. A mostly-concurrent cycle must
// start early enough that its mark ends before the heap reaches the goal:
// at 70% of the way from the last live heap to the goal (Go starts between
// 70% and 95%, by what its last cycles took; ours is fixed). after_mark:
// the goal comes from a mark's figures (else it moves the goal only, as a
// deferral does, and the trigger follows it).
void store_goal(std::uint64_t goal, bool after_mark = true) {
  g_heap_goal.store(goal, std::memory_order_relaxed);
  std::uint64_t trigger = goal;
  const std::uint64_t live = g_live.load(std::memory_order_relaxed);
  if (after_mark && pacer_next_cycle_concurrent() && goal > live && goal != UINT64_MAX) {
    trigger = live + (goal - live) / 10 * 7;
    // The runway (Go's gcControllerState.trigger, simplified): what the
    // program allocated during the last concurrent mark, scaled by how much
    // more there is to mark now (a mark's time grows with the live heap),
    // plus a tenth, must fit between the trigger and the goal. A mark that
    // ran long starts the next one earlier (back to back at worst, as Go's
    // do under pressure); one that ended with room to spare, later (at most
    // at 95% of the way).
    const std::uint64_t marked = g_runway_live.load(std::memory_order_relaxed);
    const std::uint64_t alloc = g_runway_alloc.load(std::memory_order_relaxed);
    if (marked != 0) {
      const double runway =
          static_cast<double>(alloc) * (static_cast<double>(live) / static_cast<double>(marked)) * 1.1;
      const double room = static_cast<double>(goal - live);
      const double start = runway >= room ? 0.0 : std::min(room - runway, room * 0.95);
      trigger = live + static_cast<std::uint64_t>(start);
    }
  }
  g_heap_trigger.store(trigger, std::memory_order_relaxed);
}

// GOGC's goal for a live heap (pct >= 0), without overflow for huge heaps.
std::uint64_t gogc_goal(std::uint64_t live, int pct) {
  const auto p = static_cast<std::uint64_t>(pct);
  const std::uint64_t scan = live + g_roots.load(std::memory_order_relaxed);
  return std::max(live + scan / 100 * p + scan % 100 * p / 100, g_min_goal.load(std::memory_order_relaxed));
}

std::uint64_t compute_goal(std::uint64_t live) {
  const int pct = g_percent.load(std::memory_order_relaxed);
  std::uint64_t goal = UINT64_MAX;
  if (pct >= 0) goal = gogc_goal(live, pct);
  const int fill = g_fill_permille.load(std::memory_order_relaxed);
  const std::uint64_t committed = mheap().committed_bytes();
  if (pct >= 0 && fill > 0 && committed > live) {
    const std::uint64_t filled = live + (committed - live) / 1000 * static_cast<std::uint64_t>(fill);
    goal = std::max(goal, std::min(filled, g_peak_goal.load(std::memory_order_relaxed)));
  }
  bool binding = false;
  const std::int64_t limit = g_limit.load(std::memory_order_relaxed);
  if (limit != kNoMemoryLimit) {
    const std::uint64_t meta = meta_sys_bytes();
    const std::uint64_t under = static_cast<std::uint64_t>(limit) > meta ? static_cast<std::uint64_t>(limit) - meta : 0;
    const std::uint64_t floor = live + std::max(live / 16, std::uint64_t{1} << 20);
    const std::uint64_t limited = std::max(under, floor);
    binding = limited < goal;
    goal = std::min(goal, limited);
  }
  g_limit_binding.store(binding, std::memory_order_relaxed);
  return goal;
}
}  // namespace

int pacer_set_gc_percent(int percent) {
  const int old = g_percent.exchange(percent < 0 ? -1 : percent);
  store_goal(compute_goal(g_live.load()));
  return old;
}

std::int64_t pacer_set_memory_limit(std::int64_t bytes) {
  if (bytes < 0) return g_limit.load();
  const std::int64_t old = g_limit.exchange(bytes);
  store_goal(compute_goal(g_live.load()));
  return old;
}

void pacer_set_heap_fill(int fill_permille) {
  g_fill_permille.store(fill_permille < 0 ? 0 : fill_permille, std::memory_order_relaxed);
  store_goal(compute_goal(g_live.load()));
}

void pacer_set_min_goal(std::uint64_t bytes) {
  g_min_goal.store(bytes, std::memory_order_relaxed);
  store_goal(compute_goal(g_live.load()));
}

int pacer_gc_percent() { return g_percent.load(std::memory_order_relaxed); }
std::int64_t pacer_memory_limit() { return g_limit.load(std::memory_order_relaxed); }

void pacer_end_cycle(std::uint64_t live, std::uint64_t roots, std::uint64_t allocated_during_mark, bool concurrent) {
  if (concurrent) {
    g_runway_live.store(live, std::memory_order_relaxed);
    g_runway_alloc.store(allocated_during_mark, std::memory_order_relaxed);
  }
  g_live.store(live, std::memory_order_relaxed);
  g_roots.store(roots, std::memory_order_relaxed);
  const int pct = g_percent.load(std::memory_order_relaxed);
  if (pct >= 0) {
    const std::uint64_t own = gogc_goal(live, pct);
    if (own > g_peak_goal.load(std::memory_order_relaxed)) g_peak_goal.store(own, std::memory_order_relaxed);
  }
  store_goal(compute_goal(live));
}

void pacer_defer() {
  const std::uint64_t live = mheap().live();
  store_goal(live + std::max(live / 4, g_min_goal.load(std::memory_order_relaxed)), false);
}

void pacer_recompute() { store_goal(compute_goal(g_live.load())); }

void pacer_limiter_account(std::uint64_t gc_cpu_ns, std::uint64_t process_cpu_ns) {
  // Readings taken by different clocks at slightly different moments may
  // run backwards against each other by a tick: no change then.
  const std::uint64_t gc = gc_cpu_ns > g_last_gc_cpu ? gc_cpu_ns - g_last_gc_cpu : 0;
  const std::uint64_t all = process_cpu_ns > g_last_process_cpu ? process_cpu_ns - g_last_process_cpu : 0;
  g_last_gc_cpu = std::max(g_last_gc_cpu, gc_cpu_ns);
  g_last_process_cpu = std::max(g_last_process_cpu, process_cpu_ns);
  if (2 * gc >= all) {
    // Past the capacity too, up to twice it: the cycle that filled the
    // bucket took more than half, and the program gets that much back
    // before the next one (clamped at the capacity, the first drain would
    // let the next cycle start at once).
    g_bucket = std::min(2 * g_limiter_capacity, g_bucket + (2 * gc - all));
  } else {
    const std::uint64_t drain = all - 2 * gc;
    g_bucket = g_bucket > drain ? g_bucket - drain : 0;
  }
}

bool pacer_limiter_allows(std::uint64_t gc_cpu_ns, std::uint64_t process_cpu_ns) {
  pacer_limiter_account(gc_cpu_ns, process_cpu_ns);
  if (!g_limiter_on || !g_limit_binding.load(std::memory_order_relaxed) || g_bucket < g_limiter_capacity) return true;
  g_limiter_deferrals.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t live = mheap().live();
  store_goal(live + std::max(live / 16, std::uint64_t{1} << 20), false);
  return false;
}

bool pacer_next_cycle_concurrent() {
  return g_concurrent_pacing.load(std::memory_order_relaxed) &&
         g_live.load(std::memory_order_relaxed) >= g_concurrent_min_live.load(std::memory_order_relaxed);
}

void pacer_set_concurrent_min_live(std::uint64_t bytes) {
  g_concurrent_min_live.store(bytes, std::memory_order_relaxed);
  pacer_recompute();
}

void pacer_set_concurrent(bool on) {
  g_concurrent_pacing.store(on, std::memory_order_relaxed);
  pacer_recompute();
}

std::uint64_t pacer_limiter_deferrals() { return g_limiter_deferrals.load(std::memory_order_relaxed); }

void pacer_set_limiter(bool on, std::uint64_t capacity_ns) {
  g_limiter_on = on;
  g_limiter_capacity = capacity_ns;
  g_bucket = 0;
}

void pacer_empty_limiter_bucket() { g_bucket = 0; }

void exclude_pacer_statics(void (*exclude)(const void* begin, const void* end)) {
  exclude(&g_bucket, &g_bucket + 1);
  exclude(&g_last_gc_cpu, &g_last_gc_cpu + 1);
  exclude(&g_last_process_cpu, &g_last_process_cpu + 1);
}

std::uint64_t pacer_goal() { return g_heap_goal.load(std::memory_order_relaxed); }
std::uint64_t pacer_last_live() { return g_live.load(std::memory_order_relaxed); }
std::uint64_t pacer_last_roots() { return g_roots.load(std::memory_order_relaxed); }

}  // namespace mgc::internal
