// Finalizers and weak references (Go: specials in mheap.go, mfinal.go and
// the weak handles of internal/weak; Boehm: finalize.c).
//
// Both hang off an object by its address in tables outside the heap; the
// span counts its objects that have any (MSpan::specials) so that free()
// knows when to drop them. With the world stopped, after the mark:
//   1. weak references whose object is unmarked are cleared;
//   2. each finalizer whose object is unmarked is taken off the table and
//      its object marked again (with everything it reaches), so that it is
//      alive for the call; the entries move to the finalizer thread's queue
//      once the world runs (the queue's memory comes from malloc, which a
//      stopped thread may hold).
// At the start of every mark, what a finalizable object points to and the
// data of every finalizer are roots (Go marks a finalizable object's
// referents, not the object): so an object reachable from another
// finalizable object is never finalized first, and finalizable objects
// that reach each other are never finalized at all.
//
// Owns: the finalizer table, the weak handle list, the finalizer queue and
// thread, and their locks. Never allocates while the world is stopped.
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

void set_finalizer(void* obj, void (*fn)(void*, void*), void* data);
void wait_for_finalizers();
WeakHandle* weak_create(const void* p);
void* weak_get(const WeakHandle* h);
void weak_destroy(WeakHandle* h);

// free() of the object at base, whose span has specials: drop its
// finalizer and clear its weak references.
void drop_specials(std::uintptr_t base);

// The collector, around and inside a stop of the world.
void lock_specials();    // before stopping: table, handles and queue
void unlock_specials();  // after restarting
void mark_finalizer_roots();
void clear_dead_weak_refs();
std::size_t doom_unreachable_finalizables();  // marks them; drain after
void queue_doomed_finalizers();               // world running, specials unlocked

}  // namespace mgc::internal
