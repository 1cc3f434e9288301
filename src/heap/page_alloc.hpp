// The page allocator: which 8 KiB pages of the heap are free, and runs of
// them for new spans (Go: mpagealloc.go, simplified to bitmaps).
//
// The heap's address space is a list of chunks, each a reservation of one
// or more whole arenas. A chunk is committed from its start upward in steps
// of at least kMinGrowth; committed pages are free or in use, tracked by a
// bitmap, so freeing coalesces for free (a run is just consecutive bits).
// A second bitmap remembers which free pages may hold old data, so a span
// made of never-used pages skips zeroing. A third marks free pages that
// were handed back to the OS (released, "scavenged" in Go's words): the
// scavenger (gc/scavenger) takes free, unreleased pages out of the pool in
// batches of at most one huge page, releases them with the heap lock
// dropped, and returns them released. A released page reads as zero, so
// a span made of released pages skips zeroing too.
//
// Each committed page is in one of these states:
//   in use          free 0, scav 0, dirty 1 (set at alloc: will be written)
//   being released  free 0, scav 0 (taken by take_scavenge, not yet back)
//   free, dirty     free 1, scav 0, dirty 1 (freed; resident, old data)
//   free, fresh     free 1, scav 0, dirty 0 (committed, never used)
//   released        free 1, scav 1, dirty 0 (MADV_DONTNEED: zero, not resident)
// Invariants: scav implies free and not dirty; the counters match the
// bitmaps (check()).
//
// Owns: the chunks and their bitmaps. The heap lock must be held for every
// call. Never touches the page -> span map or span records.
#pragma once

#include <cstddef>
#include <cstdint>

#include "heap/arena.hpp"
#include "os/dirty_pages.hpp"

namespace mgc::internal {

// Heap growth: past kHugePagesFrom the committed part of a chunk always
// ends on a 2 MiB boundary, so growth comes in steps of at least 2 MiB.
// The OS is asked rarely, and with MALLOCGC_HUGEPAGES every committed
// 2 MiB can be backed by one transparent huge page (a half-committed 2 MiB
// range cannot: its first touch splits it into 4 KiB pages for good).
// Below, the steps are 512 KiB (64 pages: committed parts still end on
// whole words of the free bitmaps, which the search relies on), so that a
// small heap's committed size, which the pacer's heap fill reads, stays
// close to what it uses.
inline constexpr std::size_t kHugePageSize = std::size_t{2} << 20;
inline constexpr std::size_t kMinGrowthPages = kHugePageSize / kPageSize;
inline constexpr std::size_t kSmallGrowthPages = 64;

// Transparent huge pages only for what is committed beyond this: a 2 MiB
// page becomes resident as a whole at its first touch, which costs a small
// heap (most of Boehm's programs: w3m's is a few MiB) more than its speed
// is worth, while a large heap grows three times faster with them (see
// runtime/options.hpp).
inline constexpr std::size_t kHugePagesFrom = std::size_t{32} << 20;

struct PageChunk {
  std::uintptr_t base = 0;
  std::size_t npages = 0;               // reserved pages (whole arenas)
  std::size_t committed = 0;            // pages [0, committed) are committed
  std::uint64_t* free_bits = nullptr;   // bit set: committed and free
  std::uint64_t* dirty_bits = nullptr;  // bit set: may hold old data
  std::uint64_t* scav_bits = nullptr;   // bit set: free and released to the OS
  std::size_t search_from = 0;          // no free page below this word
  // No free unreleased page in huge-page blocks (kMinGrowthPages pages
  // from the chunk base) at or above this block: where the scavenger's
  // downward search starts. free() and growth raise it.
  std::size_t scav_top = 0;
  PageChunk* next = nullptr;
};

// Pages the scavenger took out of the free pool to release: all lie in one
// huge-page block of one chunk. whole: every page of the block was free,
// so the block is released with one call (a transparent huge page goes
// back whole instead of being split).
struct ScavengeBatch {
  PageChunk* chunk = nullptr;
  std::size_t first = 0;  // the block's first page, from the chunk base
  std::uint64_t taken[kMinGrowthPages / 64] = {};
  std::size_t npages = 0;      // pages taken (bits set in taken)
  std::size_t unreleased = 0;  // of those, pages not released before
  bool whole = false;
};

class PageAlloc {
 public:
  // guard_page: keep the first page of every chunk out of use (the heap's
  // allocator does, see grow()).
  explicit constexpr PageAlloc(ArenaMap* arenas, bool guard_page = false) : arenas_(arenas), guard_(guard_page) {}

  // A run of npages free pages, marked in use, growing the heap when none
  // is free. 0 when the OS refuses. *need_zero: some page may hold old data.
  std::uintptr_t alloc(std::size_t npages, bool* need_zero);

  // Return the run [base, base + npages pages) to the free pool.
  void free(std::uintptr_t base, std::size_t npages);

  // Use transparent huge pages (MADV_HUGEPAGE) for memory committed once
  // the heap has kHugePagesFrom bytes.
  void set_huge_pages(bool on) { huge_pages_ = on; }

  // A hard limit on committed bytes (Boehm's GC_set_max_heap_size): growth
  // that would pass it fails, as if the OS had refused. 0: none.
  void set_limit(std::size_t bytes) { limit_pages_ = bytes / kPageSize; }
  // Commit at least npages more free pages now (Boehm's GC_expand_hp),
  // beyond the free pages the heap has; false when the OS or the limit
  // refuses.
  bool expand(std::size_t npages) { return grow(npages, /*reuse_tail=*/false); }

  std::size_t reserved_bytes() const { return reserved_pages_ * kPageSize; }
  std::size_t committed_bytes() const { return committed_pages_ * kPageSize; }
  std::size_t free_bytes() const { return free_pages_ * kPageSize; }
  // Of the free bytes, those released to the OS.
  std::size_t released_bytes() const { return released_pages_ * kPageSize; }
  // Bytes the scavenger has taken out of the free pool and not returned.
  std::size_t scavenging_bytes() const { return scavenging_pages_ * kPageSize; }

  // The scavenger's half of the page allocator (Go: pageAlloc.scavenge).
  // take_scavenge: take the free, unreleased pages of the highest
  // huge-page block that has any out of the free pool (all free pages of
  // the block, released ones too, when every page of it is free); false
  // when no page is left to release. Then release_batch (no lock needed:
  // the pages belong to no one) and return_scavenged put them back as
  // free and released. The heap lock must be held for take and return.
  // spare_dense: pass over a block that huge pages back and that is at
  // least 96% in use, none of it released (the background scavenger and
  // the growing allocation do; release_memory and the memory limit do
  // not).
  bool take_scavenge(ScavengeBatch* b, bool spare_dense = false);
  static void release_batch(const ScavengeBatch& b);
  void return_scavenged(const ScavengeBatch& b);
  // All three at once, lock held throughout (tests, private heaps): batch
  // after batch until max_pages or more unreleased pages were released,
  // or none is left; returns how many.
  std::size_t scavenge(std::size_t max_pages, bool spare_dense = false);
  // Blocks take_scavenge passed over as dense, ever (a block counts at
  // every pass).
  std::uint64_t spared_blocks() const { return spared_blocks_; }

  // Expensive consistency check (debug): counts match the bitmaps.
  void check() const;

  // The newest chunk; chunks are only ever added at the head and never
  // change their base, size or next link, so the list from here on may be
  // walked without the lock.
  const PageChunk* chunks_head() const { return chunks_; }
  // Track writes to every chunk, and to each new one as it is reserved
  // (os/dirty_pages). false when the tracker refuses one.
  bool track_writes();
  // Whether track_writes has registered every chunk with the current tracker.
  bool writes_tracked() const { return track_gen_ != 0 && track_gen_ == os::dirty_tracking_generation(); }

  // Call fn(base, npages_committed) for every chunk.
  template <class F>
  void for_each_chunk(F&& fn) const {
    for (const PageChunk* c = chunks_; c != nullptr; c = c->next) fn(c->base, c->committed);
  }

 private:
  std::uintptr_t find(PageChunk* c, std::size_t npages);
  // Make a run of npages free pages possible. reuse_tail: free pages at
  // the committed end of a chunk count towards the run.
  bool grow(std::size_t npages, bool reuse_tail = true);
  // Pages that growth by want may commit under the limit: want, fewer (at
  // least need), or 0 when even need would pass it.
  std::size_t within_limit(std::size_t want, std::size_t need) const;
  // Heap lock held: the pages [base, base + npages) were just committed.
  void advise(std::uintptr_t base, std::size_t npages) const;
  PageChunk* chunk_of(std::uintptr_t addr) const;

  ArenaMap* arenas_;
  bool guard_;
  PageChunk* chunks_ = nullptr;
  // The tracker generation the chunks were registered with (0: none):
  // a fork child's tracker is new and knows none of them.
  unsigned track_gen_ = 0;
  std::size_t reserved_pages_ = 0;
  std::size_t committed_pages_ = 0;
  std::size_t free_pages_ = 0;
  std::size_t released_pages_ = 0;    // free pages with their scav bit set
  std::size_t scavenging_pages_ = 0;  // taken by take_scavenge, not returned
  std::uint64_t spared_blocks_ = 0;
  std::size_t limit_pages_ = 0;
  bool huge_pages_ = false;
};

}  // namespace mgc::internal
