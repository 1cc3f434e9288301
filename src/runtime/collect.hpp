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

// fork() handlers: prepare takes every lock of the collector and the
// allocator (the cycle lock, the type table, the world's locks, metadata,
// the cache registry, then the leaf locks, then the program layer's), so
// that the child inherits none held by a thread that does not exist in
// it; parent releases them; child releases them, forgets the other
// threads and their caches (whose spans stay owned and unused) and lets
// the background threads start again when needed. Installed with pthread_atfork at first use; they act only in
// the automatic mode.
void fork_prepare();
void fork_parent();
void fork_child();

// How fork() is handled (Boehm's GC_set_handle_fork): kForkAutomatic (the
// default: the pthread_atfork handlers run the three above), kForkManual
// (the program calls them around fork, Boehm's GC_atfork_*; the automatic
// ones do nothing), kForkNone (nothing is done: a child that allocates may
// deadlock).
enum ForkMode : int { kForkNone = 0, kForkAutomatic = 1, kForkManual = -1 };
void set_fork_mode(ForkMode m);
ForkMode fork_mode();
// Install the pthread_atfork handlers (once; at first use).
void install_fork_handlers();
// The program layer's own leaf locks (Boehm compat): taken after the
// core's in prepare, released before them.
void set_fork_extra_locks(void (*lock)(), void (*unlock)());

// Called at the start of every allocation slow path: start a cycle if the
// heap reached its goal, and prepare the thread's cache for the sweep if a
// cycle ran since it last did (Go: mcache.prepareForSweep at acquirep).
inline void gc_on_slow_path(MCache* c) {
  if (pacer_should_collect()) collect_from_slow_path();
  if (c != nullptr && c->flush_gen != sweep_gen()) c->prepare_for_sweep();
}

}  // namespace mgc::internal
