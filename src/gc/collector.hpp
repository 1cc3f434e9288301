// The collector's cycle (Go: gcStart, gcMarkDone, gcMarkTermination, and
// the background sweeper of mgcsweep.go), stop-the-world version:
//
//   1. finish sweeping the previous cycle (every span not in a cache);
//   2. list the loaded objects' segments; take every lock a stopped thread
//      could hold that the cycle needs (thread registry, roots, specials,
//      every central list, the heap); stop the world;
//   3. clear the marks of spans that caches held across the last cycle,
//      queue the roots, mark in parallel, optionally re-check the mark;
//   4. clear dead weak references, doom unreachable finalizable objects and
//      mark them, advance the sweep generation, set the next goal;
//   5. restart the world, release the locks, hand doomed objects to the
//      finalizer thread, wake the background sweeper.
// A cycle never starts from the inline fast path: only slow paths and
// collect() call in here. Caches are never touched: each thread prepares
// its own cache for the sweep at its next slow path.
//
// Owns: the cycle lock, the background sweeper thread, the collector's
// statistics and configuration.
#pragma once

#include <cstdint>

namespace mgc::internal {

struct GcConfig {
  int mark_threads = 0;  // 0: one per online CPU
  bool gctrace = false;
  bool checkmark = false;
};
void set_gc_config(const GcConfig& c);
const GcConfig& gc_config();

// Run a cycle. forced: run one even if the pacer does not ask for it (and
// sweep everything before returning, as Go's runtime.GC does).
void gc_cycle(bool forced);

// Sweep every span no cache holds and every large span (before a cycle, and
// for collect()).
void finish_sweep();

struct GcStats {
  std::uint64_t num_gc;
  std::uint64_t pause_total_ns;
  std::uint64_t pause_ns[256];
  std::uint64_t last_live;
  double cpu_fraction;
};
void gc_stats(GcStats* out);

}  // namespace mgc::internal
