// MCache: a thread's allocation cache (Go: mcache.go).
//
// For every span class the cache owns at most one span and exposes up to 64
// of its free slots (one "chunk", a word of the span's alloc_bits) to the
// inline fast path as front.alloc[spc]: a bitmap and the address of the
// chunk's first slot. It also holds the tiny allocator's current block.
// When a chunk runs out the slow path calls refill: the next chunk of the
// same span, else the span goes back to its MCentral and another comes.
//
// Slots in a cached chunk are marked in the span's alloc_bits when the chunk
// is loaded ("reserved"), so no other thread can ever take them; mallocs are
// counted when a chunk is retired, from how many bits were consumed, which
// keeps counters off the fast path.
//
// Owns: everything in it, for its owner thread only; counters are atomics
// that the owner updates with plain loads and stores so that stats() may
// read them from other threads. Calls down into mcentral.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "heap/span.hpp"
#include "mallocgc/internal/cache_front.hpp"

namespace mgc::internal {

// Counters of one cache, or of the whole process. Owner-written.
struct AllocCounters {
  std::atomic<std::uint64_t> nmalloc[kNumSizeClasses] = {};  // non-tiny small objects
  std::atomic<std::uint64_t> nfree[kNumSizeClasses] = {};
  std::atomic<std::uint64_t> tiny_mallocs{0}, tiny_frees{0};              // tiny objects
  std::atomic<std::uint64_t> tiny_block_mallocs{0}, tiny_block_frees{0};  // their 16-byte blocks
  std::atomic<std::uint64_t> large_mallocs{0}, large_frees{0};
  std::atomic<std::uint64_t> large_malloc_bytes{0}, large_free_bytes{0};
};

// Add without a read-modify-write: for counters with a single writer.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// to += from, field by field (atomically: several caches may fold into
// one set of counters).
void add_counters(AllocCounters& to, const AllocCounters& from);

struct MCache {
  CacheFront front;  // must stay first: tls_cache points here
  MSpan* spans[kNumSpanClasses];
  std::uint32_t chunk_avail[kNumSpanClasses];     // slots the chunk offered when loaded
  std::uint64_t chunk_reserved[kNumSpanClasses];  // which slots the chunk reserved
  // Span classes whose alloc_cache may be non-empty: set by every chunk
  // load, cleared when found empty. exposed_bytes and withdraw_chunks visit
  // these alone (a thread uses a handful of the hundreds of classes; they
  // run at every sampling point).
  static constexpr int kChunkClassWords = (kNumSpanClasses + 63) / 64;
  std::uint64_t chunk_classes[kChunkClassWords];
  // The sweep generation this cache last prepared for. While it differs
  // from the global one, a cycle has marked the heap since, and the cache's
  // spans still wait for their sweep (prepare_for_sweep).
  std::uint32_t flush_gen = 0;
  std::uint16_t tiny_none;            // tiny_mask's target when there is no block
  std::uint64_t tiny_allocs_counted;  // front.tiny_allocs already in counters
  AllocCounters counters;
  // Heap profiling (prof/sample). The fast path cannot count bytes, so the
  // slots a chunk exposes to it are charged when the chunk is loaded:
  // sample_budget = bytes left before the next sampled allocation minus
  // the bytes of every slot still in an alloc_cache. A slot the fast path
  // takes then leaves the budget unchanged, and slots given back unused
  // (release_all) are refunded. Charged and refunded whether or not
  // profiling is on; prof/sample draws a new budget when sample_rate (the
  // rate the budget was drawn for, 0: none yet) differs from the rate in
  // force. Owner only.
  std::int64_t sample_budget = 0;
  // Bytes of chunks loaded and not yet added to the heap's live count:
  // added kLivePending at a time (a locked add at every chunk was most of
  // a refill's cost), and by settle and abandon. The count lags by less
  // than that per thread, as Go's lags by the spans its Ps hold.
  std::uint64_t live_pending = 0;
  static constexpr std::uint64_t kLivePending = 16 * 1024;
  void flush_live();
  std::int64_t sample_rate = 0;
  std::uint64_t sample_rand = 0;  // the owner's random state (xorshift)
  MCache* next = nullptr;         // registry links (registry lock)
  MCache* prev = nullptr;

  // Make front.alloc[spc] non-empty (its alloc_cache must be 0 now), with
  // at most max_slots slots (1..64): the heap profiler and allocfreetrace
  // cut a chunk so that the allocation that reaches the next sampling
  // point finds the alloc_cache empty and takes the slow path. The slots
  // cut off stay free in alloc_bits, and the next refill finds them in the
  // same word. false when memory is exhausted.
  bool refill(int spc, std::uint32_t max_slots = 64);

  // Bytes of the slots every alloc_cache still exposes to the fast path
  // (charged to sample_budget, not yet allocated): a walk of
  // chunk_classes, for the slow path near a sampling point.
  std::int64_t exposed_bytes();

  // Give every chunk's unhanded slots back to its span (the spans stay
  // cached; the next refill finds the slots again) and refund their bytes
  // to sample_budget, which then is the exact distance to the sampling
  // point. The heap profiler calls it when the budget, lowered by other
  // classes' exposed slots, no longer covers an allocation that the true
  // distance does: without it every allocation of that class would take
  // the slow path until those slots were used.
  void withdraw_chunks();

  // Give every span back to its central list and drop the tiny block
  // (thread exit, collect(), prepare_for_sweep). The cache is then empty
  // and reusable. Spans held across a cycle are swept on the way, after
  // blacken_current_chunks.
  void release_all();

  // The owner's first slow path after a cycle (Go: mcache.prepareForSweep).
  // The collector marked the heap without touching this cache, so objects
  // this thread handed out from its current chunks after the world was
  // stopped (possibly a fast path the stop interrupted) carry no mark; every
  // allocated slot of the current chunks is therefore marked here (live
  // for one more cycle, like Go's allocate-black), then the spans go back to
  // their central lists, which sweep them.
  void prepare_for_sweep();

  // Mark every slot the current chunks handed out (and the current tiny
  // block) in spans that wait for a sweep: see prepare_for_sweep.
  void blacken_current_chunks();

  // Account consumed slots of the cached chunks and the tiny counter into
  // counters, without giving anything back. Owner only.
  void settle();

  // Put the cache in its initial, empty state.
  void reset();

  // Fork child: the owner did not come along. Count every slot its chunks
  // reserved as allocated (the sweeper counts them as freed when it takes
  // them back), then forget its spans without touching them: they are
  // given back by reclaim_orphan_spans, from their bits alone.
  void abandon();

  // free() of slot i of s, a small non-tiny span this cache owns.
  void owner_free(MSpan* s, std::size_t i);
  // free() of the tiny object at byte off of block b of s, owned here.
  void owner_free_tiny(MSpan* s, std::size_t b, unsigned off);

  // The tiny block index of s that is this cache's current block, or -1.
  long current_tiny_block(const MSpan* s) const;

  // Debug-malloc: the cache's state for spc agrees with its span.
  void check(int spc) const;

 private:
  bool next_chunk(int spc, MSpan* s, std::uint32_t max_slots);
  void retire_chunk(int spc);
  // fn(spc) for each class in chunk_classes whose alloc_cache is not
  // empty; the others leave the set.
  template <class Fn>
  void for_each_chunk_class(Fn fn);
  // Give the current chunk's unhanded slots of spc back to its span, after
  // merging the span's pending frees (tiny_block: the current tiny block
  // there, or -1), and refund their bytes to sample_budget. The span stays
  // cached with an empty chunk. After retire_chunk.
  void unreserve_chunk(int spc, long tiny_block);
  void drop_tiny_block();
  void release_slot(MSpan* s, std::size_t i);
};

}  // namespace mgc::internal
