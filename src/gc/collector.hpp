// The collector's cycle (Go: gcStart, gcMarkDone, gcMarkTermination, and
// the background sweeper of mgcsweep.go), stop-the-world version:
//
// Mostly-concurrent mode (GcConfig::concurrent) splits step 3: a first
// stop reads the roots and queues what they reach; the world restarts and
// the mark runs beside the program, then marks again in rounds the heap
// pages the program wrote meanwhile (os/dirty_pages); a last stop marks
// what was written since the last round and the roots once more, drains,
// and goes on with step 4. Span records are not recycled between the two
// stops (MHeap::begin_free_deferral).
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
//      finalizer thread, wake the background sweeper and the scavenger
//      (gc/scavenger), which returns pages beyond the new goal to the OS.
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
  bool allocfreetrace = false;  // a line to stderr at each cycle's start and end
  // Mostly-concurrent marking (MALLOCGC_DEBUG=gcstoptheworld=0): see
  // collect_in_background. Falls back to stopping the world for the whole
  // mark where written pages cannot be tracked (os/dirty_pages).
  bool concurrent = false;
};
void set_gc_config(const GcConfig& c);
// GcConfig::concurrent alone (with the pacer's trigger), under the cycle
// lock: a running cycle finishes in the mode it started in.
void set_concurrent_mark(bool on);
const GcConfig& gc_config();

// Points of a cycle an embedder may watch (Boehm's GC_EventType, in its
// order). kStart comes before the stop, with the cycle lock held; those
// between kPostStopWorld and kPreStartWorld come with the world stopped,
// where the hook must not allocate or take a lock a stopped thread may
// hold; kEnd after the world restarts.
enum class GcEvent {
  kStart,
  kMarkStart,
  kMarkEnd,
  kReclaimStart,
  kReclaimEnd,
  kEnd,
  kPreStopWorld,
  kPostStopWorld,
  kPreStartWorld,
  kPostStartWorld,
};

// What an embedder adds to the cycle (the Boehm face). Every hook is
// optional; set them before the first cycle.
struct GcHooks {
  // Before a cycle, with no lock held: false skips it (Boehm's GC_dont_gc,
  // a thread holding GC_alloc_lock). The pacer then defers the next
  // automatic attempt.
  bool (*may_collect)() = nullptr;
  void (*on_event)(GcEvent) = nullptr;
  // World stopped, after the other roots are queued: may call mark_root and
  // set_mark_at (Boehm's GC_push_other_roots).
  void (*push_roots)() = nullptr;
};
void set_gc_hooks(const GcHooks& h);

// The heap profile's part of a cycle (prof/sample, a layer above): lock is
// taken with the world's state (before the world stops, and by fork's
// prepare handler), so no stopped thread holds it; after_mark runs with
// the world stopped once the mark is final (finalizers' marking included)
// and must not allocate; unlock after the world restarts. Set once, before
// the first allocation's options apply.
struct ProfileHooks {
  void (*lock)() = nullptr;
  void (*unlock)() = nullptr;
  void (*after_mark)() = nullptr;
};
void set_profile_hooks(const ProfileHooks& h);

// Whether a cycle is marking now on some thread (Boehm's GC_set_mark_bit
// and friends only act then).
bool gc_marking();

// Stop and restart the world for the program (Boehm's
// GC_stop_world_external): no cycle runs in between, and the calling
// thread must not allocate.
void stop_world_external();
void start_world_external();

// The cycle lock, for the program (Boehm's GC_alloc_lock): no cycle runs
// while it is held. A thread that holds it must not wait for a cycle.
void lock_collector();
void unlock_collector();
// Run fn with no cycle running: a running one finishes first, none starts
// until fn returns (at once if this thread already holds the cycle lock).
// Not a program's release of the lock: no releaser bookkeeping.
void with_cycles_excluded(void (*fn)());

// fork(), the collector's part (runtime/collect has the whole): prepare
// takes every lock a cycle may hold, and the scavenge lock, so that the
// child inherits none held by a thread that does not exist in it; parent
// releases them; child releases them and forgets the other threads
// (registry records, mark helpers, the background sweeper and scavenger).
void fork_prepare_collector();
void fork_parent_collector();
void fork_child_collector();

// The allocation slow path found the heap at or past the pacer's trigger.
// Stop-the-world mode: a cycle here (gc_cycle(false)). Mostly-concurrent
// mode: while the heap is below the goal, a cycle is started on the
// background collector thread (if none runs) and the caller goes on
// allocating; at or past the goal the caller waits for the running cycle
// (or runs one): a crude mark assist, which keeps a program that allocates
// faster than the mark progresses from outrunning it.
void collect_in_background();

// Test hooks (mostly-concurrent mode). debug_concurrent_mark_hook is
// called on the collecting thread with the world running: phase 0 after
// the first stop, before anything it queued is scanned; phase 1 once that
// is drained, before the rounds of written pages. nullptr: none.
// debug_ignore_written_pages: the written pages are collected but not
// marked again (a mark that misses the program's writes, for the tests
// that show gccheckmark catching it).
extern void (*debug_concurrent_mark_hook)(int phase);
extern bool debug_ignore_written_pages;

// Run a cycle. forced: run one even if the pacer does not ask for it (and
// sweep everything before returning, as Go's runtime.GC does). Returns
// whether a cycle ran (false when a hook declined or, unforced, another
// thread had just collected).
bool gc_cycle(bool forced);

// Sweep every span no cache holds and every large span (before a cycle, and
// for collect()).
void finish_sweep();

struct GcStats {
  std::uint64_t num_gc;
  std::uint64_t pause_total_ns;
  std::uint64_t pause_ns[256];
  std::uint64_t last_live;
  double cpu_fraction;
  std::uint64_t concurrent_cycles;  // cycles whose mark ran beside the program
  // Allocations that waited for another thread's cycle to end: total, and
  // the longest single wait.
  std::uint64_t stall_total_ns;
  std::uint64_t stall_max_ns;
};
void gc_stats(GcStats* out);

}  // namespace mgc::internal
