// MCentral: for one span class, the spans no cache owns (Go: mcentral.go).
//
// Every small span is owned by exactly one MCache or sits on exactly one
// list of its class's MCentral:
//   partial - spans with a free slot, or with frees pending a merge;
//   full    - spans with every slot allocated and nothing pending.
// Each exists twice, swept and unswept, indexed by the parity of the sweep
// generation as in Go: when the collector advances the generation, the
// swept lists become the unswept ones without a span being touched (the
// unswept ones are empty by then: every cycle first finishes the sweep).
// A span is swept with the lock released: it is taken off its unswept
// list (or out of its owner's cache) under the lock and counted in
// sweeping_, swept by the taker alone, and filed or handed to a cache
// under the lock again; lock_quiesced waits until no span of the class is
// taken, so a cycle or a fork never stops a thread halfway through a
// sweep, and finds every span on a list or in a cache (Go's sweepLocker).
// A cache takes a span with cache_span and gives it back with
// uncache_span; free() of an object in an unowned full span moves the span
// to partial with notify_pending. Pending frees of an unowned span are
// merged when a cache takes it, or when the heap is about to grow
// (reclaim_empty_spans), which also returns wholly free spans to mheap.
//
// Owns: the lists, behind one lock per span class. Calls down into mheap
// (never with its lock held); never touches a cache's fast-path state.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "heap/span.hpp"
#include "os/mutex.hpp"

namespace mgc::internal {

class MCentral {
 public:
  constexpr MCentral() = default;

  // A span of this class with at least one free slot, now owned by c: from
  // the partial list, else fresh from mheap. nullptr when out of memory.
  MSpan* cache_span(MCache* c, int spc);

  // The owner gives s back: pending frees are merged, then s goes on a
  // list, or back to mheap when no slot is allocated.
  void uncache_span(MSpan* s);

  // A free() recorded the first pending free of s since its last merge.
  void notify_pending(MSpan* s);

  // Merge pending frees of unowned spans; free spans with no allocated
  // slot to mheap. Returns how many spans went back.
  std::size_t reclaim();

  // Sweep up to max unswept spans of this class: onto the swept lists, or
  // back to mheap when empty. Returns how many were swept.
  std::size_t sweep_some(std::size_t max);
  // Without the lock: false once a sweep_some of the current cycle found
  // nothing unswept, which stays true until the next cycle (spans enter
  // the unswept lists only when a cycle, holding every central lock,
  // turns the swept lists into unswept ones). A stale read says true.
  bool may_have_unswept() const { return swept_through_.load(std::memory_order_relaxed) != sweep_gen_now(); }
  // Unswept spans left (for the collector's check before a cycle).
  std::size_t unswept_count();
  // Lock held (by the collector, world stopped): sweep what is still
  // unswept onto the swept lists; empty spans stay on the partial list
  // (nothing may call mheap now); reclaim() frees them later.
  void sweep_unswept_locked();
  void lock() { lock_.lock(); }
  void unlock() { lock_.unlock(); }
  // Lock, once no span of this class is taken for sweeping (released and
  // taken again until then). For the collector and fork, which stop or
  // drop threads and then need every span on a list or in a cache.
  void lock_quiesced();
  // Times lock_quiesced found a span taken and let go of the lock to wait.
  std::uint64_t quiesce_waits() const { return quiesce_waits_.load(std::memory_order_relaxed); }

  // Expensive consistency check of both lists and their spans.
  void check();

  std::size_t partial_count();
  std::size_t full_count();

  // Slots freed by this list's merges (for tiny spans: blocks whose
  // objects were all freed; other frees are counted by free()).
  std::uint64_t merged_slots() const { return merged_.load(std::memory_order_relaxed); }

 private:
  void merge(MSpan* s);  // lock held, s unowned; or s taken
  // Lock held: an unswept span off its list, counted in sweeping_, or
  // nullptr. The taker sweeps it with sweep_taken, then files it.
  MSpan* take_unswept();
  // Lock held through g, s counted in sweeping_ (taken): sweep s and merge
  // its pending frees with the lock released; with a free slot and c not
  // null, s becomes c's (true). Returns with the lock held again and s no
  // longer counted; unless it went to c, the caller files it.
  bool sweep_taken(std::unique_lock<Mutex>& g, MSpan* s, MCache* c);
  static bool frees_in_flight(const MSpan* s);
  // Lock held: put swept, unowned s on the swept list it belongs to, or
  // onto *empty when it holds nothing (the caller frees those unlocked).
  void file_swept(MSpan* s, SpanList* empty);
  // Lock held: the swept list (full or partial) where swept s belongs.
  SpanList& swept_list_for(const MSpan* s);
  static std::size_t swept_index() { return (sweep_gen_now() / 2) & 1; }
  static std::uint32_t sweep_gen_now();

  std::atomic<std::uint64_t> merged_{0};
  // The sweep generation in which sweep_some last found both unswept
  // lists empty (see may_have_unswept); 0, never a generation, at first
  // (so that the centrals stay in zeroed storage).
  std::atomic<std::uint32_t> swept_through_{0};
  Mutex lock_;
  std::uint32_t sweeping_ = 0;  // spans taken for sweeping; under lock_
  std::atomic<std::uint64_t> quiesce_waits_{0};
  SpanList partial_[2];
  SpanList full_[2];
};

// The central list of span class spc.
MCentral& mcentral(int spc);

// reclaim() over every span class, after freeing the dead large objects
// the sweep has not reached (MHeap::sweep_large_if_behind): run before the
// heap grows. Returns small spans given back.
std::size_t reclaim_empty_spans();

// Merge s's pending frees into its alloc_bits. The caller is s's owner or
// holds s's central lock while s is unowned. In tiny spans a pending bit
// asks for a block to be examined: a block all of whose objects are freed
// is released, except current_tiny (the owner's current block, or -1),
// whose pending bit stays for a later merge. cached is the owner's
// remaining alloc_cache for chunk word cached_word: a pending free of a
// slot still in it was never allocated, a fatal error. (Only a merge while
// the chunk still holds slots can see this, which is the owner's release
// of its span; once the owner has handed such a slot out, the stray free
// cannot be told from a free of the new object. README.md says so.)
// Returns slots freed.
std::size_t merge_pending(MSpan* s, long current_tiny, std::uint64_t cached, std::size_t cached_word);

// After fork, in the child (one thread, every lock free): give back every
// small span owned by a cache other than keep (the caches of threads that
// did not come along). Their owners may have been stopped anywhere in a
// slow path, so nothing in their caches is trusted: each span's state is
// rebuilt from its bits alone. Every reserved slot counts as allocated (a
// chunk's unhanded slots are garbage for the next cycle to reclaim), and a
// span still waiting for its sweep is marked black entirely, since its
// owner's handouts since the last mark carry no mark. Returns spans given
// back.
std::size_t reclaim_orphan_spans(const MCache* keep);

// Release tiny block b of s whose objects are all freed, if they are:
// reset its masks and return true. Owner or central lock holder only.
bool tiny_block_reclaimable(MSpan* s, std::size_t b);

}  // namespace mgc::internal
