// The collector's timeline (Go: runtime/trace, the GC part): timed events
// recorded by the threads that do the work, written as Chrome trace-event
// JSON ({"traceEvents": [...]}) that Perfetto and chrome://tracing open.
//
// Every event is a complete event ("ph":"X": a start and a duration) on
// the thread that did the work, or a counter ("ph":"C"). Phases nest on a
// thread by construction: a caller takes its start time before the
// callee's and its end time after it, so a stop of the world lies inside
// its cycle and a mark worker's drain inside the stop.
//
// Recording:
//   - Off, it costs one relaxed load of g_trace_on in the slow path that
//     would record (trace_on()); the inline fast path never records.
//   - On, an event is one fetch_add on the ring's head and a few relaxed
//     stores into a slot guarded by a sequence number (a seqlock per slot).
//     No lock is taken, nothing is allocated: a thread may record with any
//     lock of the allocator or the collector held, with the world stopped,
//     and a thread stopped while it records leaves one slot that the
//     writer skips.
//   - The ring is bounded: it keeps the newest kTraceCapacity events (a
//     long-running program keeps its recent history); older ones are
//     overwritten and counted as dropped in the file ("otherData").
//
// Writing (write_trace_file) reads the ring without stopping the recorders:
// a slot rewritten while it is read is skipped. It calls open/write only,
// so it may run at exit while the collector's threads still record.
//
// Owns: the ring (mapped at the first start, never unmapped), the thread
// names, the tid cache. Below every other layer: the heap and the
// collector both record here.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mgc::internal {

// What an event is. The names and argument names are in trace.cpp's table.
enum class TraceEv : std::uint16_t {
  kCycle,            // a whole collection cycle (args: cycle number, forced)
  kSweepFinish,      // the sweep a cycle finishes before it stops the world
  kPause,            // the world stopped, from the stop request to the restart
  kStopThreads,      // stopping every registered thread (signals, acknowledgements)
  kMark,             // marking, world stopped (args: live bytes, mark workers)
  kMarkRoots,        // queueing the roots
  kMarkWorker,       // one mark worker's drain (args: bytes it marked)
  kCheckmark,        // gccheckmark's serial re-mark
  kStartThreads,     // restarting the world
  kSweepForced,      // collect()'s sweep of everything after the cycle
  kSweepBackground,  // a batch of the background sweeper (args: spans)
  kSweepLarge,       // freeing dead large objects (args: bytes)
  kSweepAlloc,       // spans an allocating thread swept to find a free slot (args: spans)
  kSweepCacheFlush,  // a thread's cache handed back after a cycle, its spans swept (args: spans)
  kSweepReclaim,     // empty spans reclaimed before the heap grows (args: spans)
  kScavenge,         // one batch of the background scavenger (args: bytes)
  kScavengeAll,      // release_memory()'s scavenge (args: bytes)
  kScavengeGrowth,   // released by an allocation that grew the heap (args: bytes)
  kHeapCounter,      // counter: live heap after a mark and the next goal
  kMarkConcurrent,   // the mark while the program runs, between the two stops (args: live bytes, rounds)
  kMarkWritten,      // a round of written pages marked again, world running (args: bytes written)
  kMarkTermination,  // the last stop's mark: written pages, roots, drain (args: bytes written)
  kCount
};

// Events the ring keeps (a power of two): 48 bytes each, 6 MiB mapped
// with MAP_NORESERVE, touched as it fills. A cycle of a program with a
// few thousand spans records about a hundred events (the background
// sweeper's batches are most of them), so the ring holds the last
// thousand cycles or so.
inline constexpr std::size_t kTraceCapacity = std::size_t{1} << 17;

extern std::atomic<bool> g_trace_on;

// Whether events are being recorded (one relaxed load).
inline bool trace_on() { return g_trace_on.load(std::memory_order_relaxed); }

// CLOCK_MONOTONIC in nanoseconds.
std::uint64_t trace_now();

// Start recording (maps the ring the first time). false when the OS
// refuses the memory.
bool trace_start();
void trace_stop();

// Record a complete event that started at start_ns (trace_now()) and ends
// now, on the calling thread. Only when trace_on().
void trace_complete(TraceEv ev, std::uint64_t start_ns, std::uint64_t a0 = 0, std::uint64_t a1 = 0);
// Record a counter event (kHeapCounter): two values at this moment.
void trace_counter(TraceEv ev, std::uint64_t a0, std::uint64_t a1);

// A scoped complete event: the start is taken only when tracing is on, the
// event recorded at the end of the scope. a0/a1 may be set meanwhile.
class TraceScope {
 public:
  explicit TraceScope(TraceEv ev) : ev_(ev), start_(trace_on() ? trace_now() : 0) {}
  ~TraceScope() {
    if (start_ != 0 && (!only_if_work_ || a0 != 0)) trace_complete(ev_, start_, a0, a1);
  }
  // Record the event only if a0 ends up nonzero (a sweep that found
  // nothing to do is no event).
  void only_if_work() { only_if_work_ = true; }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;
  std::uint64_t a0 = 0;
  std::uint64_t a1 = 0;

 private:
  TraceEv ev_;
  std::uint64_t start_;
  bool only_if_work_ = false;
};

// Name the calling thread in the trace ("mark worker 1", "background
// sweeper"): kept whether or not tracing is on (a thread is named once, at
// its start, which may come before the trace does). At most 256 names.
void trace_name_thread(const char* name);

// Write the events in the ring to path as Chrome trace JSON (truncating
// it). false with errno set when the file cannot be written.
bool write_trace_file(const char* path);

// Events recorded ever, and those the ring has overwritten (the oldest).
std::uint64_t trace_recorded();
std::uint64_t trace_dropped();

// The file MALLOCGC_TRACE names: recording starts now and the file is
// written at exit (atexit, by the process that set it: not by a fork
// child, which would overwrite it). Copies path. false when the ring
// cannot be mapped.
bool trace_to_file_at_exit(const char* path);

// Test hook: use a ring of capacity events (a power of two) from now on,
// dropping what was recorded. Not while others record.
void trace_reset_for_testing(std::size_t capacity);

}  // namespace mgc::internal
