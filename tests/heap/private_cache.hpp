// Test helpers for driving MCentral and MCache directly: a private MCache
// (not registered as any thread's cache), the fast path's slot taking, and
// the remote free that src/runtime/free.cpp records.
#pragma once

#include <cstdint>
#include <new>
#include <vector>

#include "heap/mcache.hpp"
#include "heap/mcentral.hpp"
#include "heap/meta_alloc.hpp"
#include "heap/mheap.hpp"
#include "mallocgc/internal/fast_path.hpp"

namespace mgc::internal::testing {

// An MCache in metadata memory, as thread_cache.cpp makes one, but owned by
// the test instead of a thread. Gives its spans back when destroyed.
class PrivateCache {
 public:
  PrivateCache() {
    void* mem = meta_alloc(sizeof(MCache));
    c_ = ::new (mem) MCache();
    c_->reset();
  }
  ~PrivateCache() {
    if (c_ == nullptr) return;
    c_->release_all();
    c_->~MCache();
    meta_free(c_, sizeof(MCache));
  }
  PrivateCache(const PrivateCache&) = delete;
  PrivateCache& operator=(const PrivateCache&) = delete;

  // Leave the cache's spans where they are (for tests that broke them).
  void abandon() { c_ = nullptr; }

  MCache* operator->() const { return c_; }
  MCache& operator*() const { return *c_; }
  MCache* get() const { return c_; }

 private:
  MCache* c_;
};

// The inline fast path's step: the next slot of the cached chunk, or
// nullptr when the chunk is empty.
inline void* take(MCache& c, int spc) {
  void* p = nullptr;
  std::size_t slot = 0;
  if (!next_free_fast(&c.front, spc, kClassToSize[spc / kNumKinds], &p, &slot)) return nullptr;
  return p;
}

// Every slot left in the cached chunk.
inline std::vector<void*> take_chunk(MCache& c, int spc) {
  std::vector<void*> v;
  while (void* p = take(c, spc)) v.push_back(p);
  return v;
}

// A free from a thread that does not own the span: record_pending of
// src/runtime/free.cpp.
inline void remote_free(MSpan* s, std::size_t i) {
  const std::size_t w = i / 64;
  const std::uint64_t bit = std::uint64_t{1} << (i % 64);
  s->pending_free[w].fetch_or(bit, std::memory_order_seq_cst);
  if (s->pending.exchange(1, std::memory_order_seq_cst) == 0) mcentral(s->span_class).notify_pending(s);
}

// A remote free of the tiny object at byte off of block b (free_tiny).
inline void remote_free_tiny(MSpan* s, std::size_t b, unsigned off) {
  s->tiny->remote_freed[b].fetch_or(static_cast<std::uint16_t>(1u << off), std::memory_order_acq_rel);
  remote_free(s, b);
}

// Make sure the next cache_span(spc) takes a fresh span from mheap: park
// every span of the partial list with a dummy owner (they are never given
// back; only tests of this process see them).
inline void isolate_central(int spc) {
  static char dummy_owner;
  while (mcentral(spc).partial_count() != 0) mcentral(spc).cache_span(reinterpret_cast<MCache*>(&dummy_owner), spc);
}

}  // namespace mgc::internal::testing
