// The pacer (Go: mgcpacer.go, without the concurrent-mark parts): when the
// next cycle starts.
//
//   goal = max(live + (live + roots) x GOGC/100, 4 MiB)
//
// live: what the last mark found; roots: the bytes of the root ranges it
// scanned (stacks, registers, thread-local and global data, explicit
// roots). Go counts stacks and globals so since 1.18: a mark's cost grows
// with them as with the live heap, and a program whose roots dwarf its
// heap (guile maps its compiled code's data and registers it as roots)
// would otherwise collect far more often than its marks can pay for.
//
// GOGC < 0 ("off") makes the goal infinite. A soft memory limit (Go's
// GOMEMLIMIT) lowers the goal to the limit minus the allocator's metadata,
// but never below live + max(live / 16, 1 MiB): a live heap above the limit
// makes cycles frequent, not continuous. The heap's live counter
// (MHeap::live) grows by whole chunks and large objects on slow paths; a
// slow path that finds it at or above the goal starts a cycle.
//
// Owns: the two settings and the goal. Lock-free.
#pragma once

#include <cstdint>

#include "heap/mheap.hpp"

namespace mgc::internal {

inline constexpr std::uint64_t kHeapMinimum = std::uint64_t{4} << 20;
inline constexpr std::int64_t kNoMemoryLimit = INT64_MAX;

int pacer_set_gc_percent(int percent);  // returns the old value
// Boehm's habit of using the heap it has (the Boehm face): the goal is at
// least live + fill_permille/1000 of the committed bytes the last mark
// left free, so a heap grown by a peak of live data is used before the
// next cycle; but never above the highest goal the live heap itself ever
// set (GOGC's rule). Without that cap the heap ratchets: a program whose
// garbage cannot reuse the free pages (large objects that keep growing,
// as GMP's temporaries do) grows the heap, which raises the goal, which
// lets it allocate more garbage before the next cycle (guile's bignums
// reached 566 MiB for 1 MiB live). 0 (the default) is Go's rule alone.
void pacer_set_heap_fill(int fill_permille);
// The smallest goal (kHeapMinimum, Go's 4 MiB, unless set): a program
// whose live heap is tiny still allocates this much between cycles. The
// Boehm face lowers it, as Boehm's first collections come early.
void pacer_set_min_goal(std::uint64_t bytes);
std::int64_t pacer_set_memory_limit(std::int64_t);  // negative: no change; returns the old value
int pacer_gc_percent();
std::int64_t pacer_memory_limit();

// Recompute the goal after a mark that found live bytes and scanned roots
// bytes of roots (or after a setting changed, with the last mark's figures).
// A concurrent mark also says what the program allocated while it ran:
// the next trigger leaves that much room (scaled) before the goal.
void pacer_end_cycle(std::uint64_t live, std::uint64_t roots, std::uint64_t allocated_during_mark = 0,
                     bool concurrent = false);
std::uint64_t pacer_last_roots();
std::uint64_t pacer_goal();
std::uint64_t pacer_last_live();
// A cycle the pacer asked for was declined (collection disabled): ask
// again once the heap has grown by a quarter more, or 4 MiB.
void pacer_defer();
// The goal from the settings and the last mark, again (after collection is
// enabled again).
void pacer_recompute();

// The GC CPU limiter (Go: gcCPULimiter in mgclimit.go). When the memory
// limit holds the goal below GOGC's and the live heap leaves little room
// under it, cycles would follow each other with the program barely running
// between them. A bucket of CPU time tracks the excess: it fills by the
// collector's CPU time and drains by the program's (2 x gc - process CPU,
// read at each cycle's end and each would-be start), clamped to [0,
// 2 x capacity]. While it holds the capacity or more, a cycle the pacer asks for is put off (the
// goal moves up by live/16, at least 1 MiB, and the heap passes the limit)
// until the program has run long enough to drain it: collection settles
// at about half the process's CPU. Capacity: one CPU-second, a burst Go
// also allows (one per P there). Cycles the program asks for (collect())
// are never put off. Called under the cycle lock.
bool pacer_limiter_allows(std::uint64_t gc_cpu_ns, std::uint64_t process_cpu_ns);
void pacer_limiter_account(std::uint64_t gc_cpu_ns, std::uint64_t process_cpu_ns);
// Cycles put off by the limiter since start (stats: gc_cpu_limited).
std::uint64_t pacer_limiter_deferrals();
// Pass the limiter's bucket and clock readings (nanoseconds, not
// references) to exclude, as exclude_mark_statics does.
void exclude_pacer_statics(void (*exclude)(const void* begin, const void* end));
// Tests: the bucket's capacity (ns of CPU) and the limiter off or on.
void pacer_set_limiter(bool on, std::uint64_t capacity_ns);
// Tests: an empty bucket, the settings kept (what the collector's CPU time
// before the test has put in it is forgotten).
void pacer_empty_limiter_bucket();

// Mostly-concurrent marking: cycles start at a trigger below the goal
// (pacer.cpp's store_goal: 70% of the way from the live heap to the goal
// at first, then early enough for what the last mark saw allocated while
// it ran), and allocation waits for the cycle at the goal.
// Only once the last mark found kConcurrentMinLive or more (about 5 ms of
// stop-the-world marking for pointer-dense data here): a smaller heap's
// mark is shorter than what running it beside the program costs (a wake-up
// of the background thread, two stops, the written-page scans; the seed's
// benchmarks, which collect every millisecond, ran 25 to 140% slower), so
// its automatic cycles stop the world as before, at the goal.
inline constexpr std::uint64_t kConcurrentMinLive = std::uint64_t{4} << 20;
void pacer_set_concurrent(bool on);
// Whether the next automatic cycle marks beside the program.
bool pacer_next_cycle_concurrent();
// Tests: the live heap from which automatic cycles mark concurrently.
void pacer_set_concurrent_min_live(std::uint64_t bytes);

extern std::atomic<std::uint64_t> g_heap_goal;
extern std::atomic<std::uint64_t> g_heap_trigger;  // the goal, or below it in concurrent mode
inline bool pacer_should_collect() { return mheap().live() >= g_heap_trigger.load(std::memory_order_relaxed); }

}  // namespace mgc::internal
