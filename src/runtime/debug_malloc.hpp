// Debug-malloc mode (Go: debugMalloc): run-time checks of the fast path's
// assumptions, compiled in with the MALLOCGC_DEBUG_MALLOC CMake option.
//
//   - Re-entrancy: a thread-local mark says the thread is inside the
//     allocator; entering it again (from its own slow path, or from a
//     signal handler that interrupted an allocation or a free) aborts with
//     "malloc deadlock", as Go's mallocgc throws "malloc deadlock".
//   - The cache's invariants for the span class used, at fast-path entry
//     and exit (MCache::check).
//   - check_heap(): the expensive checkers of every central list and span
//     and of the heap.
//   - No collection starts or finishes while a fast path is in flight: the
//     fast path notes the world epoch at entry and compares at exit. (The
//     stop-the-world handler lets a thread inside the fast path finish it
//     before stopping, gc/threads; this check is what proves it.)
// In ordinary builds SlowPathScope is empty and nothing here runs.
//
// Owns: the in-malloc mark and the test hook. Never allocates.
#pragma once

#include "heap/mcache.hpp"

namespace mgc::internal {

// Marks a slow path. The thread arrives marked (by the inline fast path or
// debug_enter_slow); the scope checks the cache on the way out and clears
// the mark.
class SlowPathScope {
 public:
  SlowPathScope() {
    if constexpr (kDebugMalloc) enter();
  }
  SlowPathScope(const SlowPathScope&) = delete;
  SlowPathScope& operator=(const SlowPathScope&) = delete;
  ~SlowPathScope() {
    if constexpr (kDebugMalloc) leave();
  }
  void set_span_class(MCache* c, int spc) {
    if constexpr (kDebugMalloc) {
      cache_ = c;
      spc_ = spc;
    }
  }

 private:
  void enter();
  void leave();
  MCache* cache_ = nullptr;
  int spc_ = -1;
};

// free() entry and exit in debug-malloc builds: free re-entered into an
// allocation (from a signal handler) is the same deadlock.
void debug_free_enter_checked();
void debug_free_exit_checked();
inline void debug_free_enter() {
  if constexpr (kDebugMalloc) debug_free_enter_checked();
}
inline void debug_free_exit() {
  if constexpr (kDebugMalloc) debug_free_exit_checked();
}

// Run every expensive checker: central lists, the page allocator and the
// map, every in-use span (large ones too) except those other threads'
// caches own, and the calling thread's cache.
void check_heap();

// Test hook (debug-malloc builds only): called inside every slow path while
// the thread is marked, so a test can re-enter the allocator from there or
// raise a signal whose handler allocates.
extern void (*debug_slow_path_hook)();

// Test hook (debug-malloc builds only): called by a large allocation just
// after its span is published, before the object's address is returned,
// so a test can run a collection in that window.
extern void (*debug_large_span_hook)();

// Test hook (debug-malloc builds only): called inside every fast path just
// after its entry check, so a test can make a cycle happen in flight.
extern void (*debug_fast_path_hook)();

}  // namespace mgc::internal
