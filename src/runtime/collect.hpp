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

// Called at the start of every allocation slow path: start a cycle if the
// heap reached its goal, and prepare the thread's cache for the sweep if a
// cycle ran since it last did (Go: mcache.prepareForSweep at acquirep).
inline void gc_on_slow_path(MCache* c) {
  if (pacer_should_collect()) collect_from_slow_path();
  if (c != nullptr && c->flush_gen != sweep_gen()) c->prepare_for_sweep();
}

}  // namespace mgc::internal
