// The runtime's side of the collector: what slow paths do about cycles,
// and the public calls (mgc::collect, ThreadScope, finalizers, weak
// references, roots, settings).
//
// Owns: nothing but glue. Calls into gc/ and the calling thread's cache.
#pragma once

#include "gc/pacer.hpp"
#include "heap/mcache.hpp"
#include "heap/sweep.hpp"

namespace mgc::internal {

[[gnu::noinline]] void collect_from_slow_path();

// mgc::collect, telling whether a cycle ran (a hook may decline it).
bool collect_now();

// fork() handlers (Boehm's GC_atfork_*): prepare takes the collector's and
// the allocator's shared locks, so that the child inherits none held by a
// thread that does not exist in it; parent releases them; child releases
// them and forgets the other threads. The other threads' caches stay
// registered in the child, their spans owned and unused.
void fork_prepare();
void fork_parent();
void fork_child();

// Called at the start of every allocation slow path: start a cycle if the
// heap reached its goal, and prepare the thread's cache for the sweep if a
// cycle ran since it last did (Go: mcache.prepareForSweep at acquirep).
inline void gc_on_slow_path(MCache* c) {
  if (pacer_should_collect()) collect_from_slow_path();
  if (c != nullptr && c->flush_gen != sweep_gen()) c->prepare_for_sweep();
}

}  // namespace mgc::internal
