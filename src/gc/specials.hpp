// Finalizers, weak references and disappearing links (Go: specials in
// mheap.go, mfinal.go and the weak handles of internal/weak; Boehm:
// finalize.c).
//
// All of them hang off an object by its address in tables outside the
// heap. The span counts its objects that have a finalizer or a weak
// reference (MSpan::specials) so that free() knows when to drop them;
// disappearing links are not dropped by free() (Boehm: "explicit
// deallocation of obj may or may not cause link to eventually be cleared"):
// the next cycle clears them if the slot is dead then.
//
// With the world stopped, after the mark (finalize_after_mark), in Boehm's
// order, which for the C++ API's finalizers is also Go's:
//   1. short disappearing links whose object is unmarked are cleared (the
//      link's location gets NULL);
//   2. the referents of every unmarked finalizable object are marked, as its
//      order says (ordered and unreachable: all; ignore-self: all but
//      pointers into itself; no-order: none), so an object reachable from
//      another finalizable object is not finalized first, and finalizable
//      objects that reach each other never are. Then the C++ API's weak
//      references whose object is still unmarked are cleared (Go's rule:
//      what a finalizable object reaches keeps its weak references);
//   3. finalizable objects still unmarked are doomed and marked, with what
//      they reach, so that they are intact for the call. With Java
//      finalization (Boehm's GC_java_finalization) no-order objects' referents
//      are marked first, and an "unreachable" object that this reached is
//      not doomed this cycle;
//   4. disappearing links whose own location lies in an unmarked heap object
//      are dropped, then long links whose object is still unmarked are
//      cleared.
// Doomed entries move to the finalizer queue once the world runs (the
// queue's memory comes from malloc, which a stopped thread may hold).
// Queued finalizers run on the finalizer thread (the C++ API), or, under
// the caller policy (the Boehm face), in threads that ask: from allocation
// slow paths through the caller hook, or run_queued_finalizers.
// At the start of every mark, the data of every finalizer, every queued
// object and its data are roots.
//
// Owns: the finalizer table, the weak handle list, the link tables, the
// finalizer queue and thread, and their locks. Never allocates while the
// world is stopped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mgc::internal {

struct WeakHandle {
  std::atomic<std::uintptr_t> target;  // the address given, or 0 once cleared
  std::uintptr_t base;                 // its object's start
  WeakHandle* next;
  WeakHandle* prev;
};

using FinalizerFn = void (*)(void* obj, void* data);

// When an unreachable finalizable object is finalized (Boehm's four
// registration calls; the C++ API uses kOrdered, which is Go's rule too).
enum class FinalizerOrder : std::uint8_t {
  kOrdered,      // not while another unreachable finalizable object reaches it
  kIgnoreSelf,   // kOrdered, but pointers from the object into itself do not count
  kNoOrder,      // whatever reaches it
  kUnreachable,  // with Java finalization: not while a no-order one reaches it
};

struct FinalizerEntry {
  FinalizerFn fn = nullptr;  // nullptr: none
  void* data = nullptr;
};

// Set the finalizer of the object starting at obj (a tiny object: any
// address in its block); fn == nullptr removes it. The previous one, if
// any, goes to *old (may be nullptr). Aborts if obj is not an object of the
// heap. false when the table could not grow (no memory): nothing changed.
bool set_finalizer(void* obj, FinalizerFn fn, void* data, FinalizerOrder order = FinalizerOrder::kOrdered,
                   FinalizerEntry* old = nullptr);
void wait_for_finalizers();
// Test hook: the next n allocations of the finalizer table and queue fail
// as if the system allocator refused them.
extern int debug_fail_special_allocations;
WeakHandle* weak_create(const void* p);
void* weak_get(const WeakHandle* h);
void weak_destroy(WeakHandle* h);

// Disappearing links (Boehm): *link is set to NULL when obj_base's object
// is found unreachable; short links before finalization is decided, long
// links only once the object cannot come back through a finalizer. A link
// registered again follows the new object (and reports kDuplicate).
enum class LinkResult { kSuccess, kDuplicate, kNotFound, kNoMemory };
LinkResult register_link(void** link, std::uintptr_t obj_base, bool long_link);
bool unregister_link(void** link, bool long_link);
// Move the registration of link to new_link (same object); new_link ==
// link only asks whether link is registered.
LinkResult move_link(void** link, void** new_link, bool long_link);

// Where queued finalizers run.
enum class FinalizerPolicy {
  kThread,  // one finalizer thread (the C++ API)
  kCaller,  // threads that ask (the Boehm face): allocation slow paths call the caller hook when some are queued
};
// Set before the first finalizer is registered. hook: under kCaller, called
// at the end of allocation slow paths (nothing held, the thread may
// allocate) while finalizers are queued.
void set_finalizer_policy(FinalizerPolicy p, void (*hook)());
// Boehm's GC_java_finalization, read by the next cycle.
void set_java_finalization(bool on);
// Called with each object as its finalizer is queued (Boehm's await
// finalize proc): world running, the specials lock held, so it must not
// call into the allocator. nullptr: none.
void set_queue_hook(void (*hook)(void* obj));

// Finalizers queued and not yet started.
extern std::atomic<std::size_t> g_finalizers_queued;
extern void (*g_caller_finalizer_hook)();
// End of an allocation slow path (kCaller only: g_caller_finalizer_hook is
// nullptr under kThread).
inline void run_caller_finalizer_hook() {
  if (__builtin_expect(g_finalizers_queued.load(std::memory_order_relaxed) != 0, 0) &&
      g_caller_finalizer_hook != nullptr)
    g_caller_finalizer_hook();
}
// Run queued finalizers in the calling thread until the queue is empty;
// returns how many ran. A finalizer that allocates does not run others
// from inside (nested calls return 0).
std::size_t run_queued_finalizers();
// Queue every finalizer there is, reachable or not (Boehm's
// GC_finalize_all); returns how many.
std::size_t queue_all_finalizers();

// free() of the object at base, whose span has specials: drop its
// finalizer and clear its weak references.
void drop_specials(std::uintptr_t base);

// For diagnostics (GC_dump_finalization): counts of entries.
struct SpecialsCounts {
  std::size_t finalizers, weak_handles, short_links, long_links, queued;
};
SpecialsCounts specials_counts();

// The collector, around and inside a stop of the world.
void lock_specials();    // before stopping: tables, handles and queue
void unlock_specials();  // after restarting
// In the child of fork(), specials locked: no finalizer thread, no waiter.
void specials_after_fork();
void mark_finalizer_roots();
// After the mark has drained: steps 1-4 above. Returns the bytes it marked.
std::uint64_t finalize_after_mark();
// World running, specials unlocked: move doomed entries to the queue, drop
// dead links; returns how many finalizers were queued.
std::size_t queue_doomed_finalizers();

}  // namespace mgc::internal
