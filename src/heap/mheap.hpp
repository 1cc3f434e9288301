// MHeap: spans out of pages (Go: mheap.go).
//
// mheap turns runs of pages from the page allocator into spans: small
// spans of one span class, cut into slots, and large spans holding one
// object above kMaxSmallSize. It publishes each span in the page -> span
// map when the span is made and clears it when the span is freed, and it
// keeps the span records and their side tables (type records, tiny masks).
//
// Owns: the heap lock, the arena map, the page allocator, span records.
// The heap lock is taken only on these slow paths: making and freeing a
// span, and reading page statistics. It is never held while calling into
// mcentral or mcache (they are above this layer).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "heap/arena.hpp"
#include "heap/page_alloc.hpp"
#include "heap/span.hpp"
#include "os/dirty_pages.hpp"
#include "os/mutex.hpp"

namespace mgc::internal {

struct HeapPageStats {
  std::size_t reserved_bytes;
  std::size_t committed_bytes;
  std::size_t free_bytes;      // released ones included
  std::size_t released_bytes;  // free pages handed back to the OS
  std::size_t inuse_bytes;     // pages in spans
};

class MHeap {
 public:
  constexpr MHeap() = default;

  // A fresh span of span class spc (small), owner unset, every slot free.
  // nullptr when the OS refuses memory. Takes the heap lock.
  MSpan* alloc_small_span(int spc);

  // A span of npages holding one large object of size bytes and kind.
  // Takes the heap lock. *need_zero: the pages may hold old data. *keep
  // (a slot in the caller's frame) receives the object's address before
  // the span is published: from then on a collection may stop the thread
  // before the address is in a register, and only a conservative root
  // keeps the object (see alloc_large).
  MSpan* alloc_large_span(std::size_t npages, std::size_t size, Kind kind, bool* need_zero,
                          std::uintptr_t volatile* keep);

  // Return a span's pages and record. The span must no longer be reachable
  // through any cache or central list. Takes the heap lock.
  void free_span(MSpan* s);

  // The span whose pages contain addr, or nullptr. No lock.
  MSpan* span_of(std::uintptr_t addr) const { return arenas_.span_of(addr); }
  bool in_heap_range(std::uintptr_t addr) const { return arenas_.in_heap_range(addr); }

  // In-use spans of root kinds (uncollectable objects), which the collector
  // then walks the heap for. Heap lock to change; read with the world
  // stopped.
  bool has_root_spans() const { return root_spans_ != 0; }

  // Could npages be had without growing the heap? (Free pages may be
  // fragmented, so "yes" is a hint.) Takes the heap lock.
  bool has_free_pages(std::size_t npages);

  HeapPageStats page_stats();
  void set_huge_pages(bool on);
  // A hard limit on the heap's committed bytes (0: none); see PageAlloc.
  void set_limit(std::size_t bytes);
  // Commit bytes more of free pages now; false when refused.
  bool expand(std::size_t bytes);
  // Called (no lock held) after an allocation grew the committed heap,
  // with its new size. Set once, before allocation starts.
  void set_growth_hook(void (*hook)(std::size_t committed_bytes)) { growth_hook_ = hook; }
  // Called (no lock held) after an allocation grew the committed heap, with
  // the bytes it grew by: the scavenger's (gc/), which releases as much from
  // elsewhere when the heap retains more than its goal (Go: mheap.grow).
  void set_growth_scavenger(void (*fn)(std::size_t grown_bytes)) {
    growth_scavenger_.store(fn, std::memory_order_relaxed);
  }
  // The address range of every arena (empty: lo >= hi). No lock.
  void bounds(std::uintptr_t* lo, std::uintptr_t* hi) const { arenas_.bounds(lo, hi); }
  // Committed bytes (page_stats' figure) without the heap lock: the pacer
  // reads it with the world stopped, when the collector holds that lock.
  std::size_t committed_bytes() const { return committed_.load(std::memory_order_relaxed); }
  // Of those, bytes of free pages released to the OS; no lock.
  std::size_t released_bytes() const { return released_.load(std::memory_order_relaxed); }

  // The scavenger's step (Go: mheap.scavenge with pageAlloc.scavengeOne):
  // release the free, unreleased pages of one huge-page block, the highest
  // that has any. The heap lock is held only to take the pages out of the
  // free pool and to put them back released; the madvise runs without it.
  // Returns bytes newly released (0 only when none is left). Takes the
  // scavenge lock, then the heap lock. spare_dense: leave the free pages of
  // huge pages nearly all in use (PageAlloc::take_scavenge).
  std::size_t scavenge_one(bool spare_dense = false);
  std::uint64_t spared_blocks() {
    std::lock_guard<Mutex> g(lock_);
    return pages_.spared_blocks();
  }
  // The scavenge lock serialises scavengers (the background thread,
  // release_memory) and keeps a batch from being in flight across fork():
  // taken before the heap lock, never while holding it.
  void lock_scavenge() { scav_lock_.lock(); }
  void unlock_scavenge() { scav_lock_.unlock(); }

  // Sweep every large span the last mark did not reach: unmarked ones are
  // freed (their pages return), marked ones have their mark cleared.
  // Returns bytes freed. Takes the heap lock.
  std::size_t sweep_large();
  // sweep_large, unless it has run since the last mark (no large span can
  // be unswept then: new ones are born swept). Before the heap grows: dead
  // large objects the background sweeper has not reached yet hold pages
  // an allocation could use (Go: mheap.reclaim).
  std::size_t sweep_large_if_behind();

  // Bytes handed to caches and large objects since the last mark, plus
  // what that mark found live: the pacer's heap_live (Go: heapLive).
  // Counted per chunk and large object on slow paths, never per object.
  // One locked add a chunk: live is the total less a base that the end of
  // a cycle sets (world stopped: no add runs meanwhile). Unsigned
  // arithmetic wraps, so a base above the total is no harm.
  void add_live(std::uint64_t bytes) { total_.fetch_add(bytes, std::memory_order_relaxed); }
  std::uint64_t live() const {
    return total_.load(std::memory_order_relaxed) - live_base_.load(std::memory_order_relaxed);
  }
  // Bytes handed to caches and large objects ever (Boehm's
  // GC_get_total_bytes), by the same chunks.
  std::uint64_t total_allocated() const { return total_.load(std::memory_order_relaxed); }
  void reset_live(std::uint64_t bytes) {
    live_base_.store(total_.load(std::memory_order_relaxed) - bytes, std::memory_order_relaxed);
  }

  // Mostly-concurrent marking (gc/collector): while a mark runs with the
  // world started, free_span keeps the records and pages of the spans it
  // is given (a mark worker may be reading them) in state kFreeing, which
  // the mark rejects, and end_free_deferral gives them back. Both take
  // the heap lock (and end_free_deferral the metadata lock: not with the
  // world stopped).
  void begin_free_deferral();
  void end_free_deferral();
  // Track writes to every page of the heap, now and as it grows
  // (os/dirty_pages). false when the tracker is off. Takes the heap lock.
  bool track_writes();
  // Pass each run of heap pages written since the last call to fn (see
  // os::dirty_collect); -1 when the tracker failed. The _locked variant
  // with the heap lock held (the world stopped).
  std::int64_t collect_written(os::DirtyRunFn fn, void* ctx);
  // Lift the write-protection of the whole heap until the next
  // collect_written (after a mark: writes between marks then cost no
  // fault). Takes the heap lock for a moment.
  void unprotect_written();
  std::int64_t collect_written_locked(os::DirtyRunFn fn, void* ctx);

  // The collector stops the world holding the heap lock, so that no
  // stopped thread can hold it; while it does, only the _locked calls
  // below may be used.
  void lock() { lock_.lock(); }
  void unlock() { lock_.unlock(); }
  // Call fn(MSpan*) for every in-use span (small and large). Lock held.
  template <class F>
  void for_each_span_locked(F&& fn);

  // Expensive consistency check of the page allocator, the map, and every
  // in-use span for which skip(span) is false (spans that another thread's
  // cache owns change under our feet and must be skipped).
  void check(bool (*skip)(const MSpan*) = nullptr);

 private:
  MSpan* new_record();  // heap lock held
  void publish(MSpan* s);

  // Heap lock held: refresh the lock-free copies of the page counts.
  void publish_counts() {
    committed_.store(pages_.committed_bytes(), std::memory_order_relaxed);
    released_.store(pages_.released_bytes(), std::memory_order_relaxed);
  }

  Mutex lock_;
  Mutex scav_lock_;
  ArenaMap arenas_;
  PageAlloc pages_{&arenas_, /*guard_page=*/true};
  MSpan* free_records_ = nullptr;  // recycled span records, via next
  bool defer_frees_ = false;
  SpanList deferred_;  // spans free_span was given while defer_frees_
  void free_span_now(MSpan* s);
  std::int64_t collect_written_from(const PageChunk* head, os::DirtyRunFn fn, void* ctx);
  // The newest chunk, read under the heap lock; the list from there on
  // does not change (PageAlloc::chunks_head).
  const PageChunk* chunks_head();
  std::size_t inuse_pages_ = 0;
  SpanList large_;  // every large span not yet being freed
  // The sweep generation of the last whole walk of large_ (written under
  // lock_; read without it by sweep_large_if_behind).
  std::atomic<std::uint32_t> large_swept_gen_{0};
  std::size_t root_spans_ = 0;
  // Added to at every chunk a cache loads, by every allocating thread: a
  // cache line of their own, apart from what the heap lock's holders write
  // (a background sweeper freeing spans made each add a miss: most of a
  // refill's cost).
  alignas(64) std::atomic<std::uint64_t> total_{0};
  std::atomic<std::uint64_t> live_base_{0};
  alignas(64) std::atomic<std::size_t> committed_{0};  // pages_'s committed bytes, heap lock to write
  std::atomic<std::size_t> released_{0};               // pages_'s released bytes, heap lock to write
  void (*growth_hook_)(std::size_t) = nullptr;
  std::atomic<void (*)(std::size_t)> growth_scavenger_{nullptr};
  // After an allocation, no lock held: tell the hooks.
  void grew(std::size_t committed_before, std::size_t committed);
};

template <class F>
void MHeap::for_each_span_locked(F&& fn) {
  pages_.for_each_chunk([&](std::uintptr_t base, std::size_t committed) {
    for (std::size_t i = 0; i < committed;) {
      MSpan* s = arenas_.span_of(base + i * kPageSize);
      if (s == nullptr || s->base != base + i * kPageSize) {
        i++;
        continue;
      }
      fn(s);
      i += s->npages;
    }
  });
}

// The process-wide heap (constant-initialised, so usable before main).
extern MHeap g_mheap;
inline MHeap& mheap() { return g_mheap; }

}  // namespace mgc::internal
