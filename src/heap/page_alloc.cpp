#include "heap/page_alloc.hpp"

#include <algorithm>

#include "heap/meta_alloc.hpp"
#include "os/dirty_pages.hpp"
#include "os/fatal.hpp"
#include "os/mem.hpp"

namespace mgc::internal {
namespace {

inline bool test_bit(const std::uint64_t* bits, std::size_t i) { return (bits[i / 64] >> (i % 64)) & 1; }

void set_range(std::uint64_t* bits, std::size_t from, std::size_t n, bool value) {
  for (std::size_t i = from; i < from + n;) {
    if (i % 64 == 0 && i + 64 <= from + n) {
      bits[i / 64] = value ? ~std::uint64_t{0} : 0;
      i += 64;
      continue;
    }
    if (value) {
      bits[i / 64] |= std::uint64_t{1} << (i % 64);
    } else {
      bits[i / 64] &= ~(std::uint64_t{1} << (i % 64));
    }
    i++;
  }
}

bool any_in_range(const std::uint64_t* bits, std::size_t from, std::size_t n) {
  for (std::size_t i = from; i < from + n; i++)
    if (test_bit(bits, i)) return true;
  return false;
}

std::size_t count_in_range(const std::uint64_t* bits, std::size_t from, std::size_t n) {
  std::size_t k = 0;
  for (std::size_t i = from; i < from + n;) {
    if (i % 64 == 0 && i + 64 <= from + n) {
      k += static_cast<std::size_t>(__builtin_popcountll(bits[i / 64]));
      i += 64;
      continue;
    }
    k += test_bit(bits, i) ? 1 : 0;
    i++;
  }
  return k;
}

constexpr std::size_t kBlockPages = kMinGrowthPages;  // one huge page
constexpr std::size_t kBlockWords = kBlockPages / 64;

std::size_t bitmap_bytes(std::size_t npages) { return (npages + 63) / 64 * sizeof(std::uint64_t); }

}  // namespace

std::uintptr_t PageAlloc::find(PageChunk* c, std::size_t npages) {
  // First fit over the free bitmap, skipping full and empty words whole.
  const std::size_t words = (c->committed + 63) / 64;
  std::size_t run_start = 0, run_len = 0;
  bool first_free_seen = false;
  for (std::size_t w = c->search_from; w < words; w++) {
    const std::uint64_t x = c->free_bits[w];
    if (x != 0 && !first_free_seen) {
      first_free_seen = true;
      c->search_from = w;
    }
    if (x == ~std::uint64_t{0}) {
      if (run_len == 0) run_start = w * 64;
      run_len += 64;
    } else if (x == 0) {
      run_len = 0;
    } else {
      for (std::size_t b = 0; b < 64; b++) {
        if ((x >> b) & 1) {
          if (run_len == 0) run_start = w * 64 + b;
          run_len++;
          if (run_len >= npages) break;
        } else {
          run_len = 0;
        }
      }
    }
    if (run_len >= npages) {
      set_range(c->free_bits, run_start, npages, false);
      free_pages_ -= npages;
      return c->base + run_start * kPageSize;
    }
  }
  if (!first_free_seen) c->search_from = words;
  return 0;
}

std::uintptr_t PageAlloc::alloc(std::size_t npages, bool* need_zero) {
  for (int attempt = 0; attempt < 2; attempt++) {
    if (free_pages_ >= npages) {
      for (PageChunk* c = chunks_; c != nullptr; c = c->next) {
        if (std::uintptr_t a = find(c, npages)) {
          const std::size_t first = (a - c->base) / kPageSize;
          // Released pages read as zero; only dirty ones need clearing.
          *need_zero = any_in_range(c->dirty_bits, first, npages);
          set_range(c->dirty_bits, first, npages, true);  // in use: will be written
          const std::size_t released = count_in_range(c->scav_bits, first, npages);
          if (released != 0) {
            set_range(c->scav_bits, first, npages, false);
            released_pages_ -= released;
          }
          return a;
        }
      }
    }
    if (attempt == 0 && !grow(npages)) return 0;
  }
  return 0;
}

void PageAlloc::free(std::uintptr_t base, std::size_t npages) {
  PageChunk* c = chunk_of(base);
  if (c == nullptr) fatal("page allocator: free of %#lx, outside the heap", static_cast<unsigned long>(base));
  const std::size_t first = (base - c->base) / kPageSize;
  for (std::size_t i = first; i < first + npages; i++)
    if (test_bit(c->free_bits, i)) fatal("page allocator: page %#lx freed twice", c->base + i * kPageSize);
  set_range(c->free_bits, first, npages, true);
  if (first / 64 < c->search_from) c->search_from = first / 64;
  const std::size_t top = (first + npages - 1) / kBlockPages + 1;
  if (top > c->scav_top) c->scav_top = top;
  free_pages_ += npages;
}

bool PageAlloc::take_scavenge(ScavengeBatch* b, bool spare_dense) {
  // A block backed by a transparent huge page that is nearly all in use
  // (Go: 96%) keeps its few free pages: releasing them would split the
  // huge page for little memory, and cost every access to the rest of it
  // a TLB miss. Only where the heap uses huge pages, and only for a block
  // none of whose pages is released already (then it is split anyway).
  const bool spare = spare_dense && huge_pages_ && committed_pages_ * kPageSize >= kHugePagesFrom;
  // The chunks from the highest address down: the scavenger works
  // downward so that the low addresses, where first fit allocates, stay
  // resident and dense (as Go's does).
  std::uintptr_t below = UINTPTR_MAX;
  for (;;) {
    PageChunk* c = nullptr;
    for (PageChunk* x = chunks_; x != nullptr; x = x->next)
      if (x->scav_top != 0 && x->base < below && (c == nullptr || x->base > c->base)) c = x;
    if (c == nullptr) return false;
    below = c->base;
    // scav_top comes down past blocks with nothing to release; a spared
    // block keeps it above, so that what stays free and unreleased is
    // always below it.
    bool lowering = true;
    for (std::size_t blk = c->scav_top; blk-- > 0;) {
      const std::size_t first = blk * kBlockPages;
      if (first >= c->committed) {
        if (lowering) c->scav_top = blk;
        continue;
      }
      const std::size_t w0 = first / 64;
      const std::size_t words = std::min(kBlockWords, (c->committed + 63) / 64 - w0);
      bool whole = first + kBlockPages <= c->committed;
      std::uint64_t want[kBlockWords] = {};
      bool any = false, some_released = false;
      std::size_t nfree = 0;
      for (std::size_t i = 0; i < words; i++) {
        const std::uint64_t f = c->free_bits[w0 + i];
        want[i] = f & ~c->scav_bits[w0 + i];
        any |= want[i] != 0;
        some_released |= (f & c->scav_bits[w0 + i]) != 0;
        nfree += static_cast<std::size_t>(__builtin_popcountll(f));
        whole &= f == ~std::uint64_t{0};
      }
      if (!any) {
        if (lowering) c->scav_top = blk;
        continue;
      }
      if (spare && !some_released && words == kBlockWords && nfree * 25 < kBlockPages) {
        lowering = false;
        spared_blocks_++;
        continue;
      }
      if (lowering) c->scav_top = blk;  // whatever is found below is taken now
      b->chunk = c;
      b->first = first;
      b->whole = whole;
      b->npages = 0;
      b->unreleased = 0;
      for (std::size_t i = 0; i < kBlockWords; i++) {
        std::uint64_t t = 0;
        if (i < words) {
          t = whole ? c->free_bits[w0 + i] : want[i];
          const std::uint64_t was_released = t & c->scav_bits[w0 + i];
          released_pages_ -= static_cast<std::size_t>(__builtin_popcountll(was_released));
          b->unreleased += static_cast<std::size_t>(__builtin_popcountll(t & ~was_released));
          c->scav_bits[w0 + i] &= ~t;
          c->free_bits[w0 + i] &= ~t;
        }
        b->taken[i] = t;
        b->npages += static_cast<std::size_t>(__builtin_popcountll(t));
      }
      free_pages_ -= b->npages;
      scavenging_pages_ += b->npages;
      return true;
    }
  }
}

void PageAlloc::release_batch(const ScavengeBatch& b) {
  const std::uintptr_t block = b.chunk->base + b.first * kPageSize;
  if (b.whole) {
    os::release(reinterpret_cast<void*>(block), kBlockPages * kPageSize);
    return;
  }
  // One call per run of taken pages.
  for (std::size_t i = 0; i < kBlockPages;) {
    if (!((b.taken[i / 64] >> (i % 64)) & 1)) {
      i++;
      continue;
    }
    std::size_t j = i + 1;
    while (j < kBlockPages && ((b.taken[j / 64] >> (j % 64)) & 1)) j++;
    os::release(reinterpret_cast<void*>(block + i * kPageSize), (j - i) * kPageSize);
    i = j;
  }
}

void PageAlloc::return_scavenged(const ScavengeBatch& b) {
  PageChunk* c = b.chunk;
  const std::size_t w0 = b.first / 64;
  for (std::size_t i = 0; i < kBlockWords; i++) {
    const std::uint64_t t = b.taken[i];
    if (t == 0) continue;
    c->free_bits[w0 + i] |= t;
    c->scav_bits[w0 + i] |= t;
    c->dirty_bits[w0 + i] &= ~t;
  }
  if (w0 < c->search_from) c->search_from = w0;
  free_pages_ += b.npages;
  released_pages_ += b.npages;
  scavenging_pages_ -= b.npages;
}

std::size_t PageAlloc::scavenge(std::size_t max_pages, bool spare_dense) {
  std::size_t done = 0;
  ScavengeBatch b;
  while (done < max_pages && take_scavenge(&b, spare_dense)) {
    release_batch(b);
    return_scavenged(b);
    done += b.unreleased;
  }
  return done;
}

PageChunk* PageAlloc::chunk_of(std::uintptr_t addr) const {
  for (PageChunk* c = chunks_; c != nullptr; c = c->next)
    if (addr >= c->base && addr < c->base + c->npages * kPageSize) return c;
  return nullptr;
}

void PageAlloc::advise(std::uintptr_t base, std::size_t npages) const {
  if (huge_pages_ && committed_pages_ * kPageSize >= kHugePagesFrom)
    os::advise_huge_pages(reinterpret_cast<void*>(base), npages * kPageSize);
}

std::size_t PageAlloc::within_limit(std::size_t want, std::size_t need) const {
  if (limit_pages_ == 0 || committed_pages_ + want <= limit_pages_) return want;
  if (committed_pages_ + need > limit_pages_) return 0;
  return limit_pages_ - committed_pages_;
}

bool PageAlloc::grow(std::size_t npages, bool reuse_tail) {
  const std::size_t granule = committed_pages_ * kPageSize >= kHugePagesFrom ? kMinGrowthPages : kSmallGrowthPages;
  const std::size_t step = npages > granule ? npages : granule;
  // Extend a chunk whose committed part ends in free pages or has room.
  for (PageChunk* c = chunks_; c != nullptr; c = c->next) {
    if (c->npages - c->committed < npages) continue;
    // Free pages at the committed end combine with the new ones.
    std::size_t tail_free = 0;
    while (reuse_tail && tail_free < c->committed && tail_free < npages &&
           test_bit(c->free_bits, c->committed - 1 - tail_free))
      tail_free++;
    std::size_t want = npages - tail_free;
    // End on a growth boundary (chunks are arena-aligned, so page counts
    // from the chunk base are address alignment).
    const std::size_t need = want;
    want = (c->committed + want + granule - 1) / granule * granule - c->committed;
    if (want > c->npages - c->committed) want = c->npages - c->committed;
    if (want != 0) {
      want = within_limit(want, need);
      if (want == 0) return false;  // the limit refuses
    }
    if (!os::commit(reinterpret_cast<void*>(c->base + c->committed * kPageSize), want * kPageSize)) return false;
    advise(c->base + c->committed * kPageSize, want);
    set_range(c->free_bits, c->committed, want, true);
    const std::size_t guard = guard_ && c->committed == 0 ? 1 : 0;
    if (guard) set_range(c->free_bits, 0, 1, false);
    // The search may have given up past the old end: start it no later
    // than the new pages.
    if (c->committed / 64 < c->search_from) c->search_from = c->committed / 64;
    c->committed += want;
    // The new pages are free and unreleased: the scavenger's to look at.
    c->scav_top = std::max(c->scav_top, (c->committed + kBlockPages - 1) / kBlockPages);
    committed_pages_ += want - guard;
    free_pages_ += want - guard;
    return true;
  }
  // A new chunk of whole arenas.
  const std::size_t arena_pages = kPagesPerArena;
  if (step > (std::size_t{1} << (kAddressBits - kPageShift))) return false;
  // One page more than asked for the guard page (below).
  const std::size_t guard = guard_ ? 1 : 0;
  if (within_limit(npages, npages) == 0) return false;
  const std::size_t chunk_pages = (step + guard + arena_pages - 1) / arena_pages * arena_pages;
  void* mem = os::reserve(chunk_pages * kPageSize, kArenaSize);
  if (mem == nullptr) return false;
  auto* c = static_cast<PageChunk*>(meta_alloc(sizeof(PageChunk)));
  if (c == nullptr) return false;
  c->base = reinterpret_cast<std::uintptr_t>(mem);
  c->npages = chunk_pages;
  const std::size_t bm = bitmap_bytes(chunk_pages);
  if (bm <= kMaxMetaBlock) {
    c->free_bits = static_cast<std::uint64_t*>(meta_alloc(bm));
    c->dirty_bits = static_cast<std::uint64_t*>(meta_alloc(bm));
    c->scav_bits = static_cast<std::uint64_t*>(meta_alloc(bm));
  } else {
    c->free_bits = static_cast<std::uint64_t*>(os::map_metadata(bm));
    c->dirty_bits = static_cast<std::uint64_t*>(os::map_metadata(bm));
    c->scav_bits = static_cast<std::uint64_t*>(os::map_metadata(bm));
  }
  if (c->free_bits == nullptr || c->dirty_bits == nullptr || c->scav_bits == nullptr) return false;
  if (!arenas_->add_arenas(c->base, chunk_pages / arena_pages)) return false;
  // Before any page of it is written: the mark must see every write. A
  // refusal turns tracking off for good, which the collector notices.
  if (writes_tracked()) os::dirty_track(c->base, chunk_pages * kPageSize);
  std::size_t want = (step + guard + granule - 1) / granule * granule;
  if (want > chunk_pages) want = chunk_pages;
  want = std::max(within_limit(want - guard, npages), npages) + guard;
  if (!os::commit(mem, want * kPageSize)) {
    // Keep the chunk (its address space is cheap) for a later, smaller try.
    c->next = chunks_;
    chunks_ = c;
    reserved_pages_ += chunk_pages;
    return false;
  }
  advise(c->base, want);
  // With guard_, the chunk's first page never holds an object: its address
  // is the mapping's, which other code keeps (records of the mapping, the
  // end address of a thread stack mapped just below), and a conservative
  // scan would take any of those for a reference to the first object. It
  // counts as neither committed nor free.
  set_range(c->free_bits, guard, want - guard, true);
  c->committed = want;
  c->scav_top = (want + kBlockPages - 1) / kBlockPages;
  c->next = chunks_;
  chunks_ = c;
  reserved_pages_ += chunk_pages;
  committed_pages_ += want - guard;
  free_pages_ += want - guard;
  return true;
}

bool PageAlloc::track_writes() {
  const unsigned gen = os::dirty_tracking_generation();
  if (track_gen_ == gen) return true;
  for (PageChunk* c = chunks_; c != nullptr; c = c->next) {
    if (!os::dirty_track(c->base, c->npages * kPageSize)) return false;
    // What os::commit made writable before the tracker knew the chunk.
    os::dirty_committed(c->base, c->committed * kPageSize);
  }
  track_gen_ = gen;
  return true;
}

void PageAlloc::check() const {
  std::size_t reserved = 0, committed = 0, free = 0, released = 0;
  for (PageChunk* c = chunks_; c != nullptr; c = c->next) {
    reserved += c->npages;
    committed += c->committed - (guard_ && c->committed != 0 ? 1 : 0);  // less the guard page
    for (std::size_t i = 0; i < c->npages; i++) {
      const bool is_free = test_bit(c->free_bits, i);
      if (is_free) {
        if (i >= c->committed) fatal("page allocator: uncommitted page %zu of chunk %#lx is free", i, c->base);
        free++;
      }
      if (test_bit(c->scav_bits, i)) {
        if (!is_free) fatal("page allocator: page %zu of chunk %#lx is released but not free", i, c->base);
        if (test_bit(c->dirty_bits, i))
          fatal("page allocator: page %zu of chunk %#lx is released but marked dirty", i, c->base);
        released++;
      }
      if (is_free && !test_bit(c->scav_bits, i) && i / kBlockPages >= c->scav_top)
        fatal("page allocator: free unreleased page %zu of chunk %#lx above the scavenger's start", i, c->base);
    }
  }
  if (reserved != reserved_pages_ || committed != committed_pages_ || free != free_pages_ ||
      released != released_pages_)
    fatal(
        "page allocator: counts (reserved %zu, committed %zu, free %zu, released %zu) disagree with bitmaps (%zu, "
        "%zu, %zu, %zu)",
        reserved_pages_, committed_pages_, free_pages_, released_pages_, reserved, committed, free, released);
}

}  // namespace mgc::internal
