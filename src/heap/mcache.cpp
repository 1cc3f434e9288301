#include "heap/mcache.hpp"

#include <atomic>
#include <bit>

#include "heap/mcentral.hpp"
#include "heap/mheap.hpp"
#include "heap/sweep.hpp"
#include "os/fatal.hpp"
#include "os/sanitizer.hpp"
#include "os/trace.hpp"

namespace mgc::internal {

void add_counters(AllocCounters& to, const AllocCounters& from) {
  auto add = [](std::atomic<std::uint64_t>& dst, const std::atomic<std::uint64_t>& src) {
    dst.fetch_add(src.load(std::memory_order_relaxed), std::memory_order_relaxed);
  };
  for (int i = 0; i < kNumSizeClasses; i++) {
    add(to.nmalloc[i], from.nmalloc[i]);
    add(to.nfree[i], from.nfree[i]);
  }
  add(to.tiny_mallocs, from.tiny_mallocs);
  add(to.tiny_frees, from.tiny_frees);
  add(to.tiny_block_mallocs, from.tiny_block_mallocs);
  add(to.tiny_block_frees, from.tiny_block_frees);
  add(to.large_mallocs, from.large_mallocs);
  add(to.large_frees, from.large_frees);
  add(to.large_malloc_bytes, from.large_malloc_bytes);
  add(to.large_free_bytes, from.large_free_bytes);
}

void MCache::reset() {
  front.tiny = 0;
  front.tiny_offset = kTinySize;
  tiny_none = 0;
  front.tiny_mask = &tiny_none;
  for (int spc = 0; spc < kNumSpanClasses; spc++) {
    front.alloc[spc] = AllocSlot{};
    spans[spc] = nullptr;
    front.alloc[spc].chunk_word = 0;
    chunk_avail[spc] = 0;
    chunk_reserved[spc] = 0;
  }
  for (std::uint64_t& w : chunk_classes) w = 0;
  flush_gen = sweep_gen();
  sample_budget = 0;
  sample_rate = 0;   // nothing exposed: the next sampling decision draws anew
  live_pending = 0;  // abandon adds it first; a new cache has none
}

// The lowest n set bits of x.
static std::uint64_t lowest_bits(std::uint64_t x, std::uint32_t n) {
  std::uint64_t keep = 0;
  for (; n != 0 && x != 0; n--) {
    keep |= x & (~x + 1);
    x &= x - 1;
  }
  return keep;
}

bool MCache::next_chunk(int spc, MSpan* s, std::uint32_t max_slots) {
  // Scan the words after the last chunk, wrapping, so that slots freed in
  // earlier words are found again.
  const std::size_t words = s->bitmap_words();
  const std::size_t start = spans[spc] == s ? front.alloc[spc].chunk_word : 0;
  for (std::size_t k = 0; k < words; k++) {
    // start < words: a compare, not a division (a refill's costliest
    // instruction after the live count's add).
    const std::size_t w = start + k < words ? start + k : start + k - words;
    const std::uint64_t bits = s->alloc_bits[w].load(std::memory_order_relaxed);
    std::uint64_t avail = ~bits & s->valid_mask(w);
    if (avail == 0) continue;
    // Only the slots below the cut are reserved: those above stay free.
    if (max_slots < 64) avail = lowest_bits(avail, max_slots);
    // A reserved slot counts as allocated to a collection, which calls the
    // mark procedure of a program's kind on it if some word points there.
    // Such procedures follow what they find (Boehm promises them cleared
    // free objects), so old data goes first, before the reservation can be
    // seen: the fence keeps the compiler from sinking the stores past it,
    // and a thread stopped by the collector has made its stores visible.
    if (s->need_zero && scan_mode(s->kind) == ScanMode::kCustom) {
      for (std::uint64_t a = avail; a != 0; a &= a - 1)
        zero_free_memory(
            reinterpret_cast<void*>(s->slot_address(w * 64 + static_cast<std::size_t>(std::countr_zero(a)))),
            s->elem_size);
      std::atomic_signal_fence(std::memory_order_seq_cst);
    }
    s->alloc_bits[w].store(bits | avail, std::memory_order_relaxed);  // reserve the chunk
    const auto n = static_cast<std::uint32_t>(popcount64(avail));
    s->alloc_count += n;
    AllocSlot& a = front.alloc[spc];
    a.alloc_cache = avail;
    a.chunk_base = s->slot_address(w * 64);
    if (s->kind == Kind::kTyped) {
      a.aux = s->type_records + w * 64;
    } else if (s->kind == Kind::kTiny) {
      a.aux = s->tiny->alloc_mask + w * 64;
    } else {
      a.aux = nullptr;
    }
    spans[spc] = s;
    front.alloc[spc].chunk_word = static_cast<std::uint16_t>(w);
    chunk_avail[spc] = n;
    chunk_reserved[spc] = avail;
    chunk_classes[spc / 64] |= std::uint64_t{1} << (spc % 64);
    live_pending += std::uint64_t{n} * s->elem_size;
    if (live_pending >= kLivePending) flush_live();
    sample_budget -= static_cast<std::int64_t>(n) * s->elem_size;  // exposed: charged
    return true;
  }
  return false;
}

void MCache::retire_chunk(int spc) {
  AllocSlot& a = front.alloc[spc];
  const auto left = static_cast<std::uint32_t>(popcount64(a.alloc_cache));
  const std::uint64_t used = chunk_avail[spc] - left;
  chunk_avail[spc] = left;
  if (spc % kNumKinds == static_cast<int>(Kind::kTiny)) {
    bump(counters.tiny_block_mallocs, used);
    // Publish the tiny objects too, so that other threads' statistics lag
    // by at most one chunk of blocks.
    const std::uint64_t t = front.tiny_allocs;
    bump(counters.tiny_mallocs, t - tiny_allocs_counted);
    tiny_allocs_counted = t;
  } else if (used != 0) {
    bump(counters.nmalloc[spc / kNumKinds], used);
  }
}

long MCache::current_tiny_block(const MSpan* s) const {
  if (front.tiny == 0 || front.tiny < s->base || front.tiny >= s->limit()) return -1;
  return static_cast<long>((front.tiny - s->base) / kTinySize);
}

void MCache::drop_tiny_block() {
  if (front.tiny == 0) return;
  MSpan* s = spans[kTinySpanClass];
  const auto b = static_cast<std::size_t>(current_tiny_block(s));
  front.tiny = 0;
  front.tiny_offset = kTinySize;
  front.tiny_mask = &tiny_none;
  // Release the block now if it holds no live object: it may have been
  // started over (alloc_mask 0) or have had all its objects freed. Else
  // its last free, by us or by another thread's pending free, releases it.
  if (tiny_block_reclaimable(s, b) || s->tiny->alloc_mask[b] == 0) {
    object_freed(reinterpret_cast<void*>(s->slot_address(b)), kTinySize);
    release_slot(s, b);
    bump(counters.tiny_block_frees);
  }
}

void MCache::release_slot(MSpan* s, std::size_t i) {
  // Owner only. The slot becomes free in alloc_bits, never straight back
  // into the cached chunk: alloc_bits must say "not allocated" at once, or
  // a second free of the same object from another thread would pass its
  // check and later free whatever the slot holds by then. A later refill
  // finds the slot again.
  const std::size_t w = i / 64;
  s->clear_alloc_bit(w, s->alloc_bits[w].load(std::memory_order_relaxed), std::uint64_t{1} << (i % 64));
}

template <class Fn>
void MCache::for_each_chunk_class(Fn fn) {
  for (int k = 0; k < kChunkClassWords; k++) {
    for (std::uint64_t m = chunk_classes[k]; m != 0; m &= m - 1) {
      const int spc = k * 64 + std::countr_zero(m);
      if (front.alloc[spc].alloc_cache == 0) {
        chunk_classes[k] &= ~(std::uint64_t{1} << (spc % 64));
      } else {
        fn(spc);
      }
    }
  }
}

std::int64_t MCache::exposed_bytes() {
  std::int64_t x = 0;
  for_each_chunk_class([&](int spc) {
    x += static_cast<std::int64_t>(popcount64(front.alloc[spc].alloc_cache)) *
         static_cast<std::int64_t>(spans[spc]->elem_size);
  });
  return x;
}

void MCache::withdraw_chunks() {
  for_each_chunk_class([&](int spc) {
    retire_chunk(spc);  // counts the slots handed out
    unreserve_chunk(spc, spc == kTinySpanClass ? current_tiny_block(spans[spc]) : -1);
  });
}

void MCache::unreserve_chunk(int spc, long tiny_block) {
  MSpan* s = spans[spc];
  const std::uint64_t left = front.alloc[spc].alloc_cache;
  const std::size_t w = front.alloc[spc].chunk_word;
  // Merge first, while the chunk's unhanded slots are still known: a
  // pending free of one of them is a free of memory never allocated.
  if (s->pending.load(std::memory_order_relaxed) != 0) {
    const std::size_t n = merge_pending(s, tiny_block, left, w);
    if (spc == kTinySpanClass) bump(counters.tiny_block_frees, n);
  }
  s->alloc_bits[w].store(s->alloc_bits[w].load(std::memory_order_relaxed) & ~left, std::memory_order_relaxed);
  s->alloc_count -= static_cast<std::uint32_t>(popcount64(left));
  sample_budget += static_cast<std::int64_t>(popcount64(left)) * s->elem_size;  // refund what was charged
  front.alloc[spc].alloc_cache = 0;
  chunk_avail[spc] = 0;          // nothing reserved is left uncounted
  chunk_reserved[spc] &= ~left;  // nor handed out, for blacken_current_chunks
}

bool MCache::refill(int spc, std::uint32_t max_slots) {
  MSpan* s = spans[spc];
  if (s != nullptr) {
    retire_chunk(spc);
    if (s->pending.load(std::memory_order_relaxed) != 0) {
      const std::size_t n = merge_pending(s, spc == kTinySpanClass ? current_tiny_block(s) : -1,
                                          front.alloc[spc].alloc_cache, front.alloc[spc].chunk_word);
      if (spc == kTinySpanClass) bump(counters.tiny_block_frees, n);
    }
    if (next_chunk(spc, s, max_slots)) return true;
    // Full: the tiny block must not outlive our ownership of its span.
    if (spc == kTinySpanClass) drop_tiny_block();
    front.alloc[spc] = AllocSlot{};
    spans[spc] = nullptr;
    mcentral(spc).uncache_span(s);
  }
  s = mcentral(spc).cache_span(this, spc);
  if (s == nullptr) return false;
  if (!next_chunk(spc, s, max_slots)) fatal("central list of class %d handed out a span with no free slot", spc);
  return true;
}

void MCache::flush_live() {
  if (live_pending == 0) return;
  mheap().add_live(live_pending);
  live_pending = 0;
}

void MCache::settle() {
  flush_live();
  for (int spc = 0; spc < kNumSpanClasses; spc++)
    if (spans[spc] != nullptr) retire_chunk(spc);
  const std::uint64_t t = front.tiny_allocs;
  bump(counters.tiny_mallocs, t - tiny_allocs_counted);
  tiny_allocs_counted = t;
}

void MCache::abandon() {
  // chunk_avail holds the reserved slots not yet counted (retire_chunk
  // leaves it so); the owner may have been stopped between two of these
  // fields' updates, which at worst miscounts one chunk.
  for (int spc = 0; spc < kNumSpanClasses; spc++) {
    if (spans[spc] == nullptr) continue;
    if (spc == kTinySpanClass) {
      bump(counters.tiny_block_mallocs, chunk_avail[spc]);
    } else {
      bump(counters.nmalloc[spc / kNumKinds], chunk_avail[spc]);
    }
    if constexpr (MALLOCGC_VALGRIND) {
      // The chunk's slots nobody got stay allocated for the child's cycles
      // to reclaim: memcheck must see them as blocks before the sweep frees
      // them. Only those still reserved in the span's bits (the fields may
      // be half-updated), each once (handed-out ones are blocks already).
      const MSpan* s = spans[spc];
      const std::size_t w = front.alloc[spc].chunk_word;
      if (w < s->bitmap_words()) {
        const std::uint64_t left =
            front.alloc[spc].alloc_cache & s->alloc_bits[w].load(std::memory_order_relaxed) & s->valid_mask(w);
        for (std::uint64_t m = left; m != 0; m &= m - 1)
          orphaned_slot(
              reinterpret_cast<void*>(s->slot_address(w * 64 + static_cast<std::size_t>(std::countr_zero(m)))),
              s->elem_size);
      }
    }
  }
  bump(counters.tiny_mallocs, front.tiny_allocs - tiny_allocs_counted);
  tiny_allocs_counted = front.tiny_allocs;
  flush_live();
  reset();
}

void MCache::release_all() {
  // Spans held across a cycle are swept as they go back: first mark what
  // the current chunks handed out since the world was stopped. The trace
  // counts those spans, as one event.
  const std::uint32_t gen = sweep_gen();
  TraceScope trace(TraceEv::kSweepCacheFlush);
  trace.only_if_work();
  if (flush_gen != gen) blacken_current_chunks();
  settle();
  drop_tiny_block();
  for (int spc = 0; spc < kNumSpanClasses; spc++) {
    MSpan* s = spans[spc];
    if (s == nullptr) continue;
    unreserve_chunk(spc, -1);  // the tiny block is dropped already
    front.alloc[spc] = AllocSlot{};
    spans[spc] = nullptr;
    chunk_reserved[spc] = 0;
    if (needs_sweep(s)) trace.a0++;
    mcentral(spc).uncache_span(s);
  }
  flush_gen = gen;
}

void MCache::blacken_current_chunks() {
  for (int spc = 0; spc < kNumSpanClasses; spc++) {
    MSpan* s = spans[spc];
    if (s == nullptr || !needs_sweep(s)) continue;
    // Under the class's lock, which a cycle takes before it stops the
    // world: the first stop of a mostly-concurrent cycle clears this
    // span's marks and declares it swept, and blackening after that (with
    // the mark running, objects it would never scan) must not happen. So
    // the check is made again under the lock, and no mark runs on this
    // span while it is held: plain ORs suffice.
    std::lock_guard<MCentral> hold(mcentral(spc));
    if (!needs_sweep(s)) continue;
    const std::size_t w = front.alloc[spc].chunk_word;
    const std::uint64_t black = chunk_reserved[spc] & ~front.alloc[spc].alloc_cache;
    s->gc_bits[w].store(s->gc_bits[w].load(std::memory_order_relaxed) | black, std::memory_order_relaxed);
    if (spc == kTinySpanClass) {
      const long b = current_tiny_block(s);
      if (b >= 0) {
        const auto bw = static_cast<std::size_t>(b) / 64;
        s->gc_bits[bw].store(s->gc_bits[bw].load(std::memory_order_relaxed) | (std::uint64_t{1} << (b % 64)),
                             std::memory_order_relaxed);
      }
    }
  }
}

void MCache::prepare_for_sweep() { release_all(); }

void MCache::owner_free(MSpan* s, std::size_t i) {
  const int spc = s->span_class;
  const std::size_t w = i / 64;
  const std::uint64_t bit = std::uint64_t{1} << (i % 64);
  const void* p = reinterpret_cast<void*>(s->slot_address(i));
  if (!(s->alloc_bits[w].load(std::memory_order_relaxed) & bit) ||
      (front.alloc[spc].chunk_word == w && (front.alloc[spc].alloc_cache & bit)))
    fatal("free(%p): object is not allocated (freed twice?)", p);
  if (s->pending_free[w].load(std::memory_order_relaxed) & bit) fatal("free(%p): object freed twice", p);
  object_freed(p, s->elem_size);
  release_slot(s, i);
  bump(counters.nfree[spc / kNumKinds]);
}

void MCache::owner_free_tiny(MSpan* s, std::size_t b, unsigned off) {
  TinyMasks* t = s->tiny;
  const auto bit = static_cast<std::uint16_t>(1u << off);
  const std::uintptr_t block = s->slot_address(b);
  const std::uint16_t alloc = t->alloc_mask[b];
  if (__builtin_expect(!(alloc & bit), 0))
    fatal("free(%p): not the start of a live object (tiny block)", reinterpret_cast<void*>(block + off));
  const std::uint16_t remote = t->remote_freed[b].load(std::memory_order_acquire);
  const auto local = static_cast<std::uint16_t>(t->local_freed[b] | bit);
  if (__builtin_expect(((t->local_freed[b] | remote) & bit) != 0, 0))
    fatal("free(%p): object freed twice", reinterpret_cast<void*>(block + off));
  bump(counters.tiny_frees);
  if ((local | remote) != alloc) {
    t->local_freed[b] = local;
    return;
  }
  if (local & remote)
    fatal("free(%p): object freed twice (tiny block %#lx)", reinterpret_cast<void*>(block + off),
          static_cast<unsigned long>(block));
  t->reset(b);
  if (block == front.tiny) {
    // Every object of the current block is free: start it over in place,
    // zeroed as a new block would be. It stays this thread's block (and
    // counted in use) until the thread takes another or exits.
    __builtin_memset(reinterpret_cast<void*>(block), 0, kTinySize);
    front.tiny_offset = 0;
    return;
  }
  object_freed(reinterpret_cast<void*>(block), kTinySize);
  release_slot(s, b);
  bump(counters.tiny_block_frees);
}

void MCache::check(int spc) const {
  const AllocSlot& a = front.alloc[spc];
  MSpan* s = spans[spc];
  if (s == nullptr) {
    if (a.alloc_cache != 0) fatal("cache: span class %d has slots but no span", spc);
    return;
  }
  if (s->owner.load(std::memory_order_relaxed) != this)
    fatal("cache: span %#lx of class %d is not owned by this cache", static_cast<unsigned long>(s->base), spc);
  if (s->span_class != spc) fatal("cache: span of class %u cached as class %d", s->span_class, spc);
  const std::size_t w = front.alloc[spc].chunk_word;
  if (a.chunk_base != s->slot_address(w * 64)) fatal("cache: class %d chunk base does not match its span", spc);
  if (a.alloc_cache & ~s->alloc_bits[w].load(std::memory_order_relaxed))
    fatal("cache: class %d holds slots not reserved in its span", spc);
  if (a.alloc_cache & ~s->valid_mask(w)) fatal("cache: class %d holds slots beyond its span's end", spc);
  if (popcount64(a.alloc_cache) > chunk_avail[spc])
    fatal("cache: class %d holds more slots than its chunk offered", spc);
  if (front.tiny_offset > kTinySize) fatal("cache: tiny offset %zu beyond the block", front.tiny_offset);
  if (front.tiny != 0) {
    MSpan* ts = spans[kTinySpanClass];
    const long b = ts == nullptr ? -1 : current_tiny_block(ts);
    if (b < 0) fatal("cache: tiny block %#lx is not in the cached tiny span", static_cast<unsigned long>(front.tiny));
    if (front.tiny_mask != &ts->tiny->alloc_mask[b]) fatal("cache: tiny mask does not belong to the tiny block");
  } else if (front.tiny_offset != kTinySize) {
    fatal("cache: no tiny block but tiny offset %zu", front.tiny_offset);
  }
}

}  // namespace mgc::internal
