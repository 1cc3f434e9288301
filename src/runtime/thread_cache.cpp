#include "runtime/thread_cache.hpp"

#include <pthread.h>

#include <climits>
#include <mutex>
#include <new>

#include "gc/threads.hpp"
#include "heap/mcentral.hpp"
#include "heap/meta_alloc.hpp"
#include "os/fatal.hpp"
#include "os/mutex.hpp"

namespace mgc::internal {

namespace {
std::uint16_t g_empty_tiny_mask;  // never written: the empty cache has no block
}

// Every alloc_cache 0 and no tiny block: the fast path finds nothing here
// and goes to the slow path, which gives the thread a cache of its own.
// Never written by anyone.
constinit CacheFront g_empty_cache = {0, kTinySize, &g_empty_tiny_mask, 0, {}};

__thread CacheFront* tls_cache __attribute__((tls_model("initial-exec"))) = &g_empty_cache;

namespace {

struct Registry {
  Mutex lock;
  MCache* first = nullptr;
  MCache* pool = nullptr;  // released caches, linked through next
  std::size_t count = 0;
};

constinit Registry g_registry;
constinit AllocCounters g_shared;
pthread_key_t g_exit_key;
std::once_flag g_key_once;

void release_cache(MCache* c) {
  c->release_all();
  if (tls_cache == &c->front) tls_cache = &g_empty_cache;
  std::lock_guard<Mutex> g(g_registry.lock);
  add_counters(g_shared, c->counters);
  if (c->prev != nullptr) {
    c->prev->next = c->next;
  } else {
    g_registry.first = c->next;
  }
  if (c->next != nullptr) c->next->prev = c->prev;
  g_registry.count--;
  c->next = g_registry.pool;
  g_registry.pool = c;
}

// The key's value for a registered thread that has no cache.
void* const kNoCache = reinterpret_cast<void*>(1);

// Calls of on_thread_exit in this thread so far.
__thread unsigned tls_exit_calls __attribute__((tls_model("initial-exec")));

// pthread key destructor: the thread is exiting. Its cache goes back, then
// its registration, but not in the first round of destructors: then the
// key is set again, which makes pthread run one more round (of up to
// PTHREAD_DESTRUCTOR_ITERATIONS, 4 in glibc).  The program's own
// destructors run in the same round in an order nobody chooses, and may
// still hold heap pointers or let the collector's mark procedures read what
// they are tearing down (guile unmaps a thread's VM stack there, then calls
// GC_unregister_my_thread): the thread stays stopped and scanned by
// collections until they are done, as with Boehm, which has no destructor
// of its own for such threads.  A destructor that unregisters the thread
// itself clears the key, which ends the deferral.  A thread registered
// before it began to exit is first called in round 1, so the second call
// is certain; only one first registered by another destructor in pthread's
// last round would miss it, which no known program does.  Allocation from
// a later destructor creates a fresh cache (and registration) and sets the
// key again.
void on_thread_exit(void* arg) {
  static_assert(PTHREAD_DESTRUCTOR_ITERATIONS >= 2);
  if (tls_exit_calls++ == 0) {
    pthread_setspecific(g_exit_key, arg);
    return;
  }
  if (arg != kNoCache) release_cache(static_cast<MCache*>(arg));
  unregister_thread_at_exit();
}

void create_exit_key() {
  std::call_once(g_key_once, [] {
    if (pthread_key_create(&g_exit_key, on_thread_exit) != 0) fatal("cannot create the thread-exit key");
  });
}

}  // namespace

AllocCounters& shared_counters() { return g_shared; }

MCache* this_cache() {
  if (MCache* c = this_cache_if_any()) return c;
  create_exit_key();
  void* mem;
  {
    std::lock_guard<Mutex> g(g_registry.lock);
    mem = g_registry.pool;
    if (mem != nullptr) g_registry.pool = g_registry.pool->next;
  }
  if (mem == nullptr) {
    static_assert(sizeof(MCache) <= kMaxMetaBlock);
    mem = meta_alloc(sizeof(MCache));
    if (mem == nullptr) return nullptr;
  }
  // A thread that allocates holds heap pointers: registered first, so that
  // without memory for its record the allocation fails like any other.
  auto* c = ::new (mem) MCache();
  if (register_thread() == nullptr) {
    std::lock_guard<Mutex> g(g_registry.lock);
    c->next = g_registry.pool;
    g_registry.pool = c;
    return nullptr;
  }
  c->reset();
  {
    std::lock_guard<Mutex> g(g_registry.lock);
    c->next = g_registry.first;
    if (c->next != nullptr) c->next->prev = c;
    c->prev = nullptr;
    g_registry.first = c;
    g_registry.count++;
  }
  tls_cache = &c->front;
  pthread_setspecific(g_exit_key, c);
  return c;
}

bool register_thread_scope() {
  create_exit_key();
  if (register_thread() == nullptr) return false;
  if (pthread_getspecific(g_exit_key) == nullptr) pthread_setspecific(g_exit_key, kNoCache);
  return true;
}

void release_this_cache() {
  MCache* c = this_cache_if_any();
  if (c == nullptr) return;
  release_cache(c);
  unregister_thread();
  pthread_setspecific(g_exit_key, this_thread_record() != nullptr ? kNoCache : nullptr);
}

void unregister_thread_fully() {
  create_exit_key();
  if (MCache* c = this_cache_if_any()) release_cache(c);
  unregister_thread_at_exit();
  pthread_setspecific(g_exit_key, nullptr);
}

void finish_cache_setup() { create_exit_key(); }

void reclaim_caches_after_fork() {
  // A thread left behind may have been inside one of its cache's slow paths
  // (several fields changed one after the other, without a lock): its
  // chunk fields cannot be trusted, and releasing them as at thread exit
  // could clear the allocation bits of live objects (debug-malloc builds
  // caught a central list handing out a full span so). Its counters are
  // settled as if every reserved slot had been handed out, and its spans
  // are given back from their bits alone (reclaim_orphan_spans); the
  // reserved slots nobody got are reclaimed by the next cycles.
  MCache* const mine = this_cache_if_any();
  {
    std::lock_guard<Mutex> g(g_registry.lock);
    for (MCache* c = g_registry.first; c != nullptr;) {
      MCache* const next = c->next;
      if (c != mine) {
        c->abandon();
        add_counters(g_shared, c->counters);
        if (c->prev != nullptr) {
          c->prev->next = c->next;
        } else {
          g_registry.first = c->next;
        }
        if (c->next != nullptr) c->next->prev = c->prev;
        g_registry.count--;
        // Reusable only once no span names it as owner: below, before any
        // other thread of the child can exist.
        c->next = g_registry.pool;
        g_registry.pool = c;
      }
      c = next;
    }
  }
  reclaim_orphan_spans(mine);
}

void lock_cache_registry() { g_registry.lock.lock(); }
void unlock_cache_registry() { g_registry.lock.unlock(); }

std::size_t for_each_cache_impl(void (*fn)(const MCache&, void*), void* arg) {
  std::lock_guard<Mutex> g(g_registry.lock);
  for (MCache* c = g_registry.first; c != nullptr; c = c->next) fn(*c, arg);
  return g_registry.count;
}

}  // namespace mgc::internal
