#include "heap/mcentral.hpp"

#include <emmintrin.h>
#include <sched.h>

#include <bit>

#include "heap/mheap.hpp"
#include "heap/sweep.hpp"
#include "os/fatal.hpp"
#include "os/sanitizer.hpp"
#include "os/trace.hpp"

namespace mgc::internal {

namespace {
constinit MCentral g_central[kNumSpanClasses];
}

MCentral& mcentral(int spc) { return g_central[spc]; }

namespace {

[[noreturn, gnu::cold]] void bad_tiny_free(MSpan* s, std::size_t b, std::uint16_t bad) {
  const std::uintptr_t at = s->slot_address(b) + static_cast<unsigned>(std::countr_zero(static_cast<unsigned>(bad)));
  TinyMasks* t = s->tiny;
  if (t->local_freed[b] & t->remote_freed[b].load(std::memory_order_relaxed) & bad)
    fatal("free(%p): object freed twice (tiny block %#lx)", reinterpret_cast<void*>(at),
          static_cast<unsigned long>(s->slot_address(b)));
  fatal("free(%p): not the start of a live object (tiny block %#lx)", reinterpret_cast<void*>(at),
        static_cast<unsigned long>(s->slot_address(b)));
}

// Abort if block b has a freed bit where no object starts, or an object
// freed by both the owner and another thread.
inline void check_tiny_block(MSpan* s, std::size_t b) {
  TinyMasks* t = s->tiny;
  const std::uint16_t remote = t->remote_freed[b].load(std::memory_order_relaxed);
  const auto bad =
      static_cast<std::uint16_t>(((t->local_freed[b] | remote) & ~t->alloc_mask[b]) | (t->local_freed[b] & remote));
  if (__builtin_expect(bad != 0, 0)) bad_tiny_free(s, b, bad);
}

// The test of tiny_block_reclaimable.
inline bool tiny_block_done(MSpan* s, std::size_t b) {
  check_tiny_block(s, b);
  TinyMasks* t = s->tiny;
  const std::uint16_t alloc = t->alloc_mask[b];
  if (alloc == 0 || (t->local_freed[b] | t->remote_freed[b].load(std::memory_order_relaxed)) != alloc) return false;
  t->reset(b);
  return true;
}

// Of the tiny blocks of word w named by x, those whose objects are all
// freed, with their masks reset. Eight blocks at a time with SSE2 (part of
// x86-64): examining blocks one by one cost ~25 instructions a block, ~12
// per 8-byte allocation when a batch of freed tiny objects is reused.
// The exchange of the pending word (seq_cst) that produced x orders these
// reads after the freers' updates of remote_freed, which precede their
// pending bits; the vector load of remote_freed is 8 aligned 16-bit reads.
// Its vector loads and stores of the masks share words with other threads'
// 16-bit atomic accesses to the lanes of live blocks (which the stores
// write back unchanged): C++ calls that a race, x86 does not, and neither
// does ThreadSanitizer here.
__attribute__((no_sanitize("thread"))) std::uint64_t complete_tiny_blocks(MSpan* s, std::size_t w, std::uint64_t x) {
  TinyMasks* t = s->tiny;
  std::uint64_t done = 0;
  for (unsigned g = 0; g < 8; g++) {
    const auto sub = static_cast<unsigned>((x >> (g * 8)) & 0xFF);
    if (sub == 0) continue;
    const std::size_t first = w * 64 + g * 8;
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&t->alloc_mask[first]));
    const __m128i l = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&t->local_freed[first]));
    const __m128i r = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&t->remote_freed[first]));
    const __m128i f = _mm_or_si128(l, r);
    const __m128i zero = _mm_setzero_si128();
    // Lanes with a freed bit where no object starts, or with an object
    // freed by both the owner and another thread: a bad or double free.
    const __m128i bad = _mm_cmpeq_epi16(_mm_or_si128(_mm_andnot_si128(a, f), _mm_and_si128(l, r)), zero);
    const auto bad_lanes = static_cast<unsigned>(~_mm_movemask_epi8(_mm_packs_epi16(bad, zero)) & 0xFF) & sub;
    if (bad_lanes != 0) {
      const std::size_t b = first + static_cast<std::size_t>(std::countr_zero(bad_lanes));
      tiny_block_done(s, b);  // reports the address
    }
    const __m128i complete = _mm_andnot_si128(_mm_cmpeq_epi16(a, zero), _mm_cmpeq_epi16(a, f));
    const auto lanes = static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(complete, zero)) & 0xFF) & sub;
    if (lanes == 0) continue;
    // Reset the released blocks' masks. alloc_mask and local_freed belong
    // to the caller, so whole vectors are written back; remote_freed may
    // be updated by other threads in the lanes of live blocks, so it is
    // written whole only when every lane is released.
    const __m128i lane_sel = _mm_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128);
    const __m128i released =
        _mm_cmpeq_epi16(_mm_and_si128(_mm_set1_epi16(static_cast<short>(lanes)), lane_sel), lane_sel);
    const __m128i clear = _mm_andnot_si128(released, _mm_set1_epi16(-1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&t->alloc_mask[first]), _mm_and_si128(a, clear));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&t->local_freed[first]), _mm_and_si128(l, clear));
    if (lanes == 0xFF) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(&t->remote_freed[first]), zero);
    } else {
      for (unsigned m = lanes; m != 0; m &= m - 1)
        t->remote_freed[first + static_cast<std::size_t>(std::countr_zero(m))].store(0, std::memory_order_relaxed);
    }
    done |= std::uint64_t{lanes} << (g * 8);
  }
  return done;
}

}  // namespace

bool tiny_block_reclaimable(MSpan* s, std::size_t b) {
  std::atomic_thread_fence(std::memory_order_acquire);  // pairs with the freers' release
  return tiny_block_done(s, b);
}

std::size_t merge_pending(MSpan* s, long current_tiny, std::uint64_t cached, std::size_t cached_word) {
  // Clear the flag before taking the bits: a free that lands after our
  // exchange of its word sees the flag clear and notifies again.
  s->pending.store(0, std::memory_order_seq_cst);
  std::size_t freed = 0;
  for (std::size_t w = 0; w < s->bitmap_words(); w++) {
    // seq_cst: with the flag's seq_cst store above, this read may not be
    // satisfied before the store (a free's bit set after the store is seen
    // here or finds the flag clear). Still a plain load on x86.
    if (s->pending_free[w].load(std::memory_order_seq_cst) == 0) continue;
    std::uint64_t x = s->pending_free[w].exchange(0, std::memory_order_seq_cst);
    std::uint64_t bits = s->alloc_bits[w].load(std::memory_order_relaxed);
    if (s->kind == Kind::kTiny) {
      std::uint64_t keep = 0;
      if (current_tiny >= 0 && static_cast<std::size_t>(current_tiny) / 64 == w) {
        keep = x & (std::uint64_t{1} << (current_tiny % 64));
        x &= ~keep;
        if (keep != 0) check_tiny_block(s, static_cast<std::size_t>(current_tiny));
      }
      const std::uint64_t release = complete_tiny_blocks(s, w, x);
      // Blocks whose objects are all freed: free memory from now on.
      if constexpr (MALLOCGC_ASAN || MALLOCGC_VALGRIND) {
        for (std::uint64_t r = release; r != 0; r &= r - 1)
          object_freed(reinterpret_cast<void*>(s->slot_address(w * 64 + static_cast<std::size_t>(std::countr_zero(r)))),
                       kTinySize);
      }
      if (keep != 0) {
        s->pending_free[w].fetch_or(keep, std::memory_order_seq_cst);
        s->pending.store(1, std::memory_order_seq_cst);
      }
      x = release;
    } else {
      if (w == cached_word && (x & cached)) {
        const std::size_t i = w * 64 + static_cast<std::size_t>(std::countr_zero(x & cached));
        fatal("free(%p): not the start of a live object (the slot was never allocated)",
              reinterpret_cast<void*>(s->slot_address(i)));
      }
      if (x & ~bits) {
        const std::size_t i = w * 64 + static_cast<std::size_t>(std::countr_zero(x & ~bits));
        fatal("free(%p): object freed twice", reinterpret_cast<void*>(s->slot_address(i)));
      }
    }
    if (x == 0) continue;
    s->alloc_bits[w].store(bits & ~x, std::memory_order_relaxed);
    const auto n = static_cast<std::uint32_t>(popcount64(x));
    s->alloc_count -= n;
    freed += n;
  }
  if (freed != 0) s->need_zero = true;
  return freed;
}

void MCentral::merge(MSpan* s) {
  const std::size_t n = merge_pending(s, -1, 0, 0);
  if (n != 0) merged_.fetch_add(n, std::memory_order_relaxed);
}

std::uint32_t MCentral::sweep_gen_now() { return sweep_gen(); }

// Is a free() by a non-owner thread still working on s? Checked after the
// merge that emptied s: such a free announced itself before its first
// write to s, which the merge saw, so the announcement is seen here too.
bool MCentral::frees_in_flight(const MSpan* s) { return s->frees_in_flight.load(std::memory_order_seq_cst) != 0; }

void MCentral::file_swept(MSpan* s, SpanList* empty) {
  if (s->alloc_count == 0 && !frees_in_flight(s)) {
    empty->push(s);
    return;
  }
  swept_list_for(s).push(s);
}

SpanList& MCentral::swept_list_for(const MSpan* s) {
  const std::size_t k = swept_index();
  return s->alloc_count == s->nelems && s->pending.load(std::memory_order_relaxed) == 0 ? full_[k] : partial_[k];
}

namespace {
void free_spans(SpanList& empty) {
  while (MSpan* s = empty.pop()) mheap().free_span(s);
}
// Unswept full spans examined per cache_span before the heap grows instead
// (Go's mcentral.cacheSpan stops after 100 spans as well).
constexpr int kSweepBudget = 64;
}  // namespace

MSpan* MCentral::cache_span(MCache* c, int spc) {
  SpanList empty;
  MSpan* found = nullptr;
  {
    std::unique_lock<Mutex> g(lock_);
    const std::size_t k = swept_index();
    while (found == nullptr) {
      MSpan* s = partial_[k].pop();
      if (s == nullptr) break;
      if (s->pending.load(std::memory_order_relaxed) != 0) merge(s);
      if (s->alloc_count < s->nelems) {
        found = s;
      } else {
        full_[k].push(s);  // its pending frees were tiny objects of live blocks
      }
    }
    if (found != nullptr) {
      found->owner.store(c, std::memory_order_relaxed);
    } else {
      // Then spans the last cycle has not swept yet: sweeping one may well
      // free slots, which is better than growing the heap. Each is swept
      // with the lock released (see take_unswept), so that other threads
      // of this class find the partial list meanwhile. The spans swept
      // here are one event of the trace.
      TraceScope trace(TraceEv::kSweepAlloc);
      trace.only_if_work();
      for (int budget = kSweepBudget; budget > 0; budget--) {
        MSpan* s = take_unswept();
        if (s == nullptr) break;
        trace.a0++;
        if (sweep_taken(g, s, c)) {
          found = s;
          break;
        }
        file_swept(s, &empty);
      }
    }
  }
  free_spans(empty);
  if (found != nullptr) return found;
  const std::size_t npages = kClassToAllocNPages[spc / kNumKinds];
  if (!mheap().has_free_pages(npages)) reclaim_empty_spans();
  MSpan* s = mheap().alloc_small_span(spc);
  if (s != nullptr) s->owner.store(c, std::memory_order_relaxed);
  return s;
}

MSpan* MCentral::take_unswept() {
  const std::size_t u = 1 - swept_index();
  MSpan* s = partial_[u].pop();
  if (s == nullptr) s = full_[u].pop();
  if (s != nullptr) sweeping_++;
  return s;
}

bool MCentral::sweep_taken(std::unique_lock<Mutex>& g, MSpan* s, MCache* c) {
  g.unlock();
  sweep_small_span(s);
  // Still ours alone: a merge needs the owner or the lock only to keep out
  // the other mergers, and those find spans on a list or in a cache.
  if (s->pending.load(std::memory_order_relaxed) != 0) merge(s);
  // Owned before it stops counting as taken: a cycle or a fork that waits
  // for this class's sweeps must find it somewhere.
  const bool owned = c != nullptr && s->alloc_count < s->nelems;
  if (owned) s->owner.store(c, std::memory_order_relaxed);
  g.lock();
  sweeping_--;
  return owned;
}

void MCentral::lock_quiesced() {
  lock_.lock();
  // Each taken span is given back under the lock; while it is held no
  // sweep of this class starts, so the count only falls to zero.
  while (sweeping_ != 0) {
    quiesce_waits_.fetch_add(1, std::memory_order_relaxed);
    lock_.unlock();
    sched_yield();
    lock_.lock();
  }
}

void MCentral::uncache_span(MSpan* s) {
  SpanList empty;
  {
    // A span its owner held across a cycle is swept as it comes back,
    // counted as taken so that no cycle starts halfway through.
    std::unique_lock<Mutex> g(lock_);
    s->owner.store(nullptr, std::memory_order_relaxed);
    if (needs_sweep(s)) {
      sweeping_++;
      sweep_taken(g, s, nullptr);
    } else if (s->pending.load(std::memory_order_relaxed) != 0) {
      merge(s);
    }
    file_swept(s, &empty);
  }
  free_spans(empty);
}

void MCentral::notify_pending(MSpan* s) {
  // Only move the span where a cache will find it; the merge itself waits
  // for cache_span or reclaim, so that later frees of the same span (the
  // flag stays set) cost no lock.
  std::lock_guard<Mutex> g(lock_);
  if (s->owner.load(std::memory_order_relaxed) != nullptr) return;  // its owner merges at its next refill
  for (std::size_t k = 0; k < 2; k++) {
    if (s->list == &full_[k]) {
      full_[k].remove(s);
      partial_[k].push(s);
    }
  }
}

std::size_t MCentral::reclaim() {
  SpanList empty;
  {
    std::lock_guard<Mutex> g(lock_);
    SpanList& partial = partial_[swept_index()];
    for (MSpan* s = partial.first; s != nullptr;) {
      MSpan* next = s->next;
      if (s->pending.load(std::memory_order_relaxed) != 0) merge(s);
      if (s->alloc_count == 0 && !frees_in_flight(s)) {
        partial.remove(s);
        empty.push(s);
      }
      s = next;
    }
  }
  const std::size_t n = empty.count;
  free_spans(empty);
  return n + sweep_some(~std::size_t{0});
}

std::size_t MCentral::sweep_some(std::size_t max) {
  std::size_t n = 0;
  SpanList empty;
  {
    std::unique_lock<Mutex> g(lock_);
    while (n < max) {
      MSpan* s = take_unswept();
      if (s == nullptr) {
        swept_through_.store(sweep_gen_now(), std::memory_order_relaxed);
        break;
      }
      sweep_taken(g, s, nullptr);
      file_swept(s, &empty);
      n++;
    }
  }
  free_spans(empty);
  return n;
}

void MCentral::sweep_unswept_locked() {
  // The world is stopped after lock_quiesced: a span still taken would be
  // half swept by a stopped thread, on no list, and swept again here.
  if (sweeping_ != 0) fatal("central list: %u span(s) taken for sweeping while the world is stopped", sweeping_);
  const std::size_t k = swept_index();
  for (SpanList* l : {&partial_[1 - k], &full_[1 - k]}) {
    while (MSpan* s = l->pop()) {
      sweep_small_span(s);
      if (s->pending.load(std::memory_order_relaxed) != 0) merge(s);
      swept_list_for(s).push(s);
    }
  }
}

std::size_t MCentral::unswept_count() {
  std::lock_guard<Mutex> g(lock_);
  const std::size_t u = 1 - swept_index();
  return partial_[u].count + full_[u].count;
}

std::size_t reclaim_empty_spans() {
  TraceScope trace(TraceEv::kSweepReclaim);
  trace.only_if_work();
  // Dead large objects first: their runs of pages are the likeliest to
  // hold what the caller needs (a large object after another was dropped).
  mheap().sweep_large_if_behind();
  std::size_t n = 0;
  for (int spc = 0; spc < kNumSpanClasses; spc++) n += g_central[spc].reclaim();
  trace.a0 = n;
  return n;
}

std::size_t reclaim_orphan_spans(const MCache* keep) {
  // Collected under the heap lock, given back after it (uncache_span may
  // free a span to mheap). Owned spans are on no list, so their links are
  // free for this one.
  SpanList orphans;
  mheap().lock();
  mheap().for_each_span_locked([&](MSpan* s) {
    const MCache* owner = s->owner.load(std::memory_order_relaxed);
    if (s->is_large() || owner == nullptr || owner == keep) return;
    std::uint32_t allocated = 0;
    const bool black = needs_sweep(s);
    for (std::size_t w = 0; w < s->bitmap_words(); w++) {
      const std::uint64_t bits = s->alloc_bits[w].load(std::memory_order_relaxed) & s->valid_mask(w);
      allocated += static_cast<std::uint32_t>(popcount64(bits));
      if (black) s->gc_bits[w].store(s->gc_bits[w].load(std::memory_order_relaxed) | bits, std::memory_order_relaxed);
    }
    s->alloc_count = allocated;
    orphans.push(s);
  });
  mheap().unlock();
  std::size_t n = 0;
  while (MSpan* s = orphans.pop()) {
    g_central[s->span_class].uncache_span(s);
    n++;
  }
  return n;
}

void MCentral::check() {
  std::lock_guard<Mutex> g(lock_);
  const std::size_t k = swept_index();
  for (SpanList* l : {&partial_[0], &partial_[1], &full_[0], &full_[1]}) {
    std::size_t count = 0;
    const bool swept = l == &partial_[k] || l == &full_[k];
    for (MSpan* s = l->first; s != nullptr; s = s->next, count++) {
      if (s->list != l) fatal("central list: span %#lx does not know its list", static_cast<unsigned long>(s->base));
      if (s->owner.load(std::memory_order_relaxed) != nullptr)
        fatal("central list: span %#lx is on a list and owned by a cache", static_cast<unsigned long>(s->base));
      if ((l == &full_[0] || l == &full_[1]) && s->alloc_count != s->nelems)
        fatal("central list: span %#lx on a full list has %u of %u slots allocated",
              static_cast<unsigned long>(s->base), s->alloc_count, s->nelems);
      if (swept && needs_sweep(s))
        fatal("central list: span %#lx on a swept list is not swept", static_cast<unsigned long>(s->base));
      s->check();
    }
    if (count != l->count) fatal("central list: count %zu but %zu spans linked", l->count, count);
  }
}

std::size_t MCentral::partial_count() {
  std::lock_guard<Mutex> g(lock_);
  return partial_[0].count + partial_[1].count;
}

std::size_t MCentral::full_count() {
  std::lock_guard<Mutex> g(lock_);
  return full_[0].count + full_[1].count;
}

}  // namespace mgc::internal
