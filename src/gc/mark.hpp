// Marking (Go: mgcmark.go, mgcwork.go): find every object reachable from
// the roots, with the world stopped, on several threads at once; or, in a
// mostly-concurrent cycle (gc/collector.hpp), beside the running program
// between two stops, marking again the heap pages it wrote
// (mark_written_range). Spans are then read while other threads make new
// ones (their state is loaded with acquire) but never recycled
// (MHeap::begin_free_deferral).
//
// Gray objects wait in work buffers: each worker fills and drains a buffer
// of its own and trades full and empty ones through a shared list (Go's
// gcWork and work.full). A candidate word is rejected when it lies outside
// the heap's address range, on a page with no in-use span, in the tail of
// a span, or on a free slot; the slot index comes from a multiplication.
// Mark bits are set with an atomic OR, so each object is scanned by one
// worker. Noscan and tiny objects are marked, not scanned; conservative
// objects have every aligned word checked; typed objects only the words
// their pointer bits name. Large objects are scanned in 64 KiB pieces so
// that several workers can share one.
//
// gccheckmark (Go: debug.gccheckmark): after the parallel mark, the same
// roots are marked again serially into a second set of bits; an object
// that this finds and the parallel mark missed aborts the program with its
// address and the kind of reference that reaches it.
//
// Owns: the work buffers (memory mapped for them, never malloc: a stopped
// thread may hold the C library's locks), the helper threads, the checkmark
// bits. Reads spans; writes only gc_bits / aux_bits.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gc/roots.hpp"

namespace mgc::internal {

struct MSpan;

// Mark descriptors in Boehm's encoding (see heap/kinds.hpp).
inline constexpr std::uintptr_t kDescriptorTags = 3;
inline constexpr std::uintptr_t kDescriptorLength = 0;
inline constexpr std::uintptr_t kDescriptorBitmap = 1;
inline constexpr std::uintptr_t kDescriptorProc = 2;
inline constexpr std::uintptr_t kDescriptorPerObject = 3;
inline constexpr std::uintptr_t kPerObjectBias = 0x10;

// What a mark procedure pushes (Boehm's struct GC_ms_entry): a start
// address and the descriptor to scan it with.
struct MarkStackEntry {
  std::uintptr_t start;
  std::uintptr_t descr;
};

// A mark procedure (Boehm's GC_mark_proc): called on a mark thread for an
// object whose descriptor names it; pushes entries above top (never at or
// past limit) and returns the new top. Called with the world stopped, on
// any mark thread, possibly on several at once: it must not allocate, take
// a lock a stopped thread may hold, or call into the collector except
// mark_from_callback and push_range_from_callback (Boehm's
// GC_mark_and_push and GC_push_all). In mostly-concurrent mode it is also
// called while the program runs, on objects the program may be changing
// (it reads them as the conservative scan does: any value it finds is
// safe to push, and the object is called again if its page was written).
using MarkProc = MarkStackEntry* (*)(std::uintptr_t* object, MarkStackEntry* top, MarkStackEntry* limit,
                                     std::uintptr_t env);
inline constexpr unsigned kMaxMarkProcs = 64;
inline constexpr unsigned kFirstMarkProc = 8;  // below: reserved, as Boehm's
// The index of proc in descriptors (bits 2..7), or false when all are
// taken.
bool register_mark_proc(MarkProc proc, unsigned* index);

// From a mark procedure or a root-pushing callback, while a cycle marks:
// mark the object holding p (if any) and queue it for scanning / queue
// [begin, end) as conservative words, on the calling thread's worker.
void mark_from_callback(std::uintptr_t p);
void push_range_from_callback(std::uintptr_t begin, std::uintptr_t end);

// Before the world stops: make sure nworkers - 1 helper threads exist.
void mark_prepare(int nworkers);
// In the child of fork(): no helper thread exists any more.
void mark_after_fork();
// Pass the static storage of the mark (the buffers' pool with its reserve
// for when the OS refuses memory, the collector thread's worker, the
// helpers' CPU time) to exclude: gray entries, span caches and
// nanoseconds, not references.
void exclude_mark_statics(void (*exclude)(const void* begin, const void* end));
// The mark-procedure registry's lock (a leaf), held across fork().
void lock_mark_procs();
void unlock_mark_procs();

// World stopped. Queue a root range (split as needed) for the next drain;
// while mark_roots_now(true), scan it at once instead (the first stop of a
// mostly-concurrent cycle: stacks and registers change once the world
// restarts, so they are read before; the objects they reach are queued).
// Also for push_range_from_callback outside a drain.
void mark_root(const RootRange& r);
void mark_roots_now(bool on);
// The world is stopped for a cycle (true), or about to restart (false).
// While it is and one worker marks, mark bits are set with plain stores:
// no other thread can write them (see g_marks_exclusive in mark.cpp).
void mark_world_stopped(bool stopped);
// Whether the calling thread is draining (a mark worker, in a mark
// procedure's call).
bool mark_draining_here();
// The start of a cycle's mark: nothing counted as marked yet.
void mark_begin_cycle();
// Mostly-concurrent mark: the heap pages [begin, end) were written since
// the mark scanned them. Every allocated object of a scanned kind there is
// marked (if it was not) and its contents queued again: objects the
// program made or changed meanwhile are scanned as they are now. More
// than Go's allocate-black keeps (an old dead object beside a written
// one lives a cycle longer), never less. Main worker; the drain follows.
void mark_written_range(std::uintptr_t begin, std::uintptr_t end);
// Mostly-concurrent mark, heap lock held: just before the first stop,
// take copies every in-use span's alloc_bits into MSpan::aux_bits;
// mark_written_range then leaves alone the objects there that are not
// marked (the trace decides about them). end drops the copies (at the last
// stop, before gccheckmark needs aux_bits).
void mark_snapshot_take();
void mark_snapshot_end();
// Make the next drain rescan every marked object (the written-page
// tracker failed during the mark: no write can be trusted to be known).
void mark_rescan_all_marked();
// Bytes of the root ranges queued since the last call (the pacer counts
// them, as Go counts stacks and globals in the heap goal).
std::uint64_t take_root_bytes();
// Mark the object holding address p (if any) as a root: scanned at the
// next drain. For finalizer resurrection.
void mark_object_at(std::uintptr_t p, RootKind kind);
// Scan the contents of the object holding p without marking it (the
// referents of an unreachable finalizable object). exclude_self: words
// that point into the object itself are skipped (Boehm's ignore-self
// finalization).
void mark_referents_of(std::uintptr_t p, bool exclude_self = false);
// World stopped: mark every allocated object of s (a span of a root kind,
// uncollectable objects) and queue it for scanning as its kind says.
void mark_root_objects(MSpan* s);
// World stopped: queue what every allocated object of s reaches, without
// marking the objects (a kind whose disclaim procedure marks from all).
void mark_referents_of_span(MSpan* s);
// World stopped, during marking: set the mark of the object holding p
// without scanning it (Boehm's GC_set_mark_bit from a root-pushing
// callback); false when p is in no allocated object. clear_mark_at undoes
// it (Boehm's GC_clear_mark_bit).
bool set_mark_at(std::uintptr_t p);
void clear_mark_at(std::uintptr_t p);
// Drain all queued work on every worker; returns when nothing is gray.
// Returns the bytes of objects marked by this drain.
std::uint64_t mark_drain();
// Is the object holding p allocated and marked? Any p (false outside the
// heap). For weak references and finalizers.
bool object_marked(std::uintptr_t p);
// The start of the allocated object holding p, or 0.
std::uintptr_t object_base(std::uintptr_t p);

// gccheckmark, world stopped. begin gives every in-use span a second set of
// mark bits; while checking, mark_root / mark_object_at / mark_drain mark
// those bits instead, serially, and abort on an object the real bits lack.
void checkmark_begin();
void checkmark_end();

// Workers used by the last drain.
int mark_workers_used();
// Calls of mark procedures that ran on the static reserve stack because
// the OS refused a larger one, since the process started.
std::uint64_t mark_proc_reserve_uses();
// Objects scanned as words because their mark procedure pushed more than
// even the reserve holds (memory exhausted), since the process started.
std::uint64_t mark_proc_conservative_scans();
// Entries for a mark procedure on memory outside the heap that found no
// mark buffer and ran at once, on the pushing procedure's stack.
std::uint64_t mark_proc_outside_heap_runs();
// Where that reserve lies (tests: it must not be a root).
void mark_proc_reserve_bounds(std::uintptr_t* begin, std::uintptr_t* end);
// CPU time the helper threads have spent marking, ever.
std::uint64_t mark_helper_cpu_ns();

// Test hook (gccheckmark tests): after the parallel mark, clear the mark of
// the object at ~debug_unmark_after_mark (complemented, so that the hook
// itself is not a root that reaches it), as a buggy mark would have missed
// it. 0: off.
extern std::uintptr_t debug_unmark_after_mark;

// Test hook: when non-zero, at most this many mark buffers are handed out
// at once, as if memory ran out there (exercises the overflow rescan).
extern std::size_t debug_mark_batch_limit;

// Rescans of marked objects after a mark dropped work for want of
// buffers, since the process started.
std::uint64_t mark_overflow_rescans();

}  // namespace mgc::internal
