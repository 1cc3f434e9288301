// Threads' allocation caches: the thread-local pointer the fast path loads,
// creation of a thread's cache at its first allocation, its release when
// the thread exits, and the registry of live caches that statistics walk.
//
// Owns: tls_cache, the empty cache, the registry and its lock, the cache
// pool and the counters of exited threads. Never touches another thread's
// CacheFront; reads only other caches' atomic counters.
#pragma once

#include "heap/mcache.hpp"

namespace mgc::internal {

// The calling thread's cache, created (and registered for release at
// thread exit) on first use. nullptr when metadata memory is exhausted.
MCache* this_cache();

// What tls_cache points at before a thread's first allocation.
extern CacheFront g_empty_cache;

// The calling thread's cache if it has one, else nullptr. Never creates.
inline MCache* this_cache_if_any() {
  CacheFront* c = tls_cache;
  return c == &g_empty_cache ? nullptr : reinterpret_cast<MCache*>(c);
}

// Counters not owned by any one live cache: those of exited threads, of
// frees from threads that do not own the span, and of large objects.
// Updated with atomic read-modify-writes.
AllocCounters& shared_counters();

// Call fn(const MCache&) for every live cache, registry lock held; returns
// the number of caches.
template <class F>
std::size_t for_each_cache(F&& fn);

// Implementation detail of for_each_cache.
std::size_t for_each_cache_impl(void (*fn)(const MCache&, void*), void* arg);

template <class F>
std::size_t for_each_cache(F&& fn) {
  return for_each_cache_impl([](const MCache& c, void* f) { (*static_cast<F*>(f))(c); }, &fn);
}

// Register the calling thread explicitly (ThreadScope, mgc_register_thread);
// its record is dropped at exit even without a matching unregister. false
// when there was no memory for the record: nothing registered.
bool register_thread_scope();

// Release the calling thread's cache now, as if the thread exited (tests,
// and threads that want to hand their spans back early).
void release_this_cache();

// The calling thread leaves the collector's view whatever registered it
// (Boehm's GC_unregister_my_thread): its cache goes back and every
// registration is dropped. An allocation after this registers it again.
void unregister_thread_fully();

// fork(): hold the registry lock across it. Before it, finish_cache_setup
// waits for the one-time setup another thread may be in the middle of (a
// child would wait for it forever).
void finish_cache_setup();
void lock_cache_registry();
void unlock_cache_registry();
// In the child of fork(), registry unlocked: drop every cache but the
// calling thread's from the registry (their owners did not come along);
// their spans stay owned and unused (see thread_cache.cpp).
void reclaim_caches_after_fork();

}  // namespace mgc::internal
