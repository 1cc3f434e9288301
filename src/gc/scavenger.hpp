// The scavenger (Go: mgcscavenge.go): free heap pages handed back to the
// OS, so that a program whose heap shrank does not keep its peak resident.
//
// The page allocator keeps a released ("scavenged") state per page
// (heap/page_alloc); MHeap::scavenge_one releases one huge-page block of
// free pages, the highest that has unreleased ones, with the heap lock
// dropped around the madvise. Here is the policy:
//
//   retained = committed heap - released pages   (what may be resident)
//   goal     = heap goal x (1 + 10%)              (Go's retainedGoal)
//   limit    = memory limit x 95% - metadata      (when a limit is set)
//
// A background thread, started at the end of the first cycle (as the
// sweeper is) and woken at the end of every cycle, releases while retained
// is above min(goal, limit); and an allocation that grows the heap by N
// bytes releases up to N bytes of free pages while retained is above it
// (Go's mheap.grow), so that free pages too scattered for a large object
// do not stay resident beside the new ones. Against the goal it is paced to about
// kScavengeCpuPercent of one CPU: after each batch it sleeps for the time
// the batch took times (100 / percent - 1). Against the limit it does not
// sleep: memory near the limit is what the limit is for. The 10% margin
// keeps the pages a cycle reuses at once (the heap grows back to the goal
// between cycles) from being released and faulted in again every cycle.
// MALLOCGC_SCAVENGE=0 keeps the thread from starting; release_memory()
// (Go's debug.FreeOSMemory) releases every free page either way.
//
// Owns: the scavenger thread, its wake-up state and its counters.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mgc::internal {

// Percent of one CPU the background scavenger may take while it works
// towards the goal (Go: scavengePercent, 1% of GOMAXPROCS; with 2 CPUs
// that is 2% of one). At 2%, a dropped 512 MiB heap went back in about
// 1 s with transparent huge pages and 3.3 s without (gc_scavenge_test's
// background case: about 90 and 330 us per 2 MiB batch), so 1 GiB takes
// 2 to 7 s.
inline constexpr int kScavengeCpuPercent = 2;

// Whether cycles wake the background scavenger (MALLOCGC_SCAVENGE).
void set_background_scavenge(bool on);
bool background_scavenge();
// Whether an allocation that grows the heap releases as much of the free
// pages elsewhere while the heap retains more than the goal (Go's
// mheap.grow; MALLOCGC_SCAVENGE, on by default, and on in the Boehm face,
// whose heap changes size at such an allocation anyway).
void set_growth_scavenge(bool on);

// After a cycle (after_cycle; cycle lock held) or a background sweep
// round: start the background scavenger the first time (or the first time
// after fork) and let it look at its goal again. With the background
// scavenger off and cycle releases on, a cycle's end releases what is
// retained beyond the goal in the calling thread instead.
void wake_scavenger(bool after_cycle);

// Release at each cycle's end, in the collecting thread, when the
// background scavenger is off (the Boehm face: Boehm unmaps only inside
// collections, so its heap figures hold still between them).
void set_cycle_release(bool on);

// Bytes of committed, unreleased heap the background scavenger aims for
// (goal and limit above); UINT64_MAX when neither applies (GOGC off, no
// limit). *by_limit: the memory limit sets it.
std::uint64_t scavenge_goal(bool* by_limit = nullptr);

// Release every free page now, whatever the goal. Returns bytes newly
// released. Takes the scavenge lock and the heap lock, batch by batch.
std::size_t scavenge_all();

// Bytes released by the scavenger (both paths) since the process started.
std::uint64_t scavenged_total();

// CPU time the releases took (background thread, growth, release_memory)
// since the process started: part of the collector's (gc_cpu_fraction,
// the GC CPU limiter), as Go counts its scavenger's.
std::uint64_t scavenge_cpu_ns();
// Pass the scavenger's counters (nanoseconds, bytes: not references, but
// able to equal a heap address where the heap lies low) to exclude.
void exclude_scavenger_statics(void (*exclude)(const void* begin, const void* end));

// fork(): the scavenger's wake-up lock is one of the collector's leaf
// locks; the child has no scavenger thread, and gets one again at its
// next cycle.
void lock_scavenger_state();
void unlock_scavenger_state();
void scavenger_after_fork();  // child, before unlock_scavenger_state

}  // namespace mgc::internal
