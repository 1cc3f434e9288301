#include "heap/mheap.hpp"

#include <atomic>
#include <new>

#include "heap/meta_alloc.hpp"
#include "heap/sweep.hpp"
#include "os/fatal.hpp"
#include "os/sanitizer.hpp"

namespace mgc::internal {

namespace {
// The pages of a span of kind: while they hold pointer-free objects, the
// mprotect write tracker leaves them writable (their writes need no
// tracking, and read(2) into them must work); given back to the page
// allocator, they may be protected again. Nothing for other kinds or
// trackers.
void pointer_free_pages(Kind kind, std::uintptr_t base, std::size_t bytes, bool given_back) {
  if (scan_mode(kind) == ScanMode::kNone) os::dirty_protectable(base, bytes, given_back);
}
}  // namespace

constinit MHeap g_mheap;

MSpan* MHeap::new_record() {
  void* mem = free_records_;
  if (mem != nullptr) {
    free_records_ = free_records_->next;
  } else {
    mem = meta_alloc(sizeof(MSpan));
    if (mem == nullptr) return nullptr;
  }
  return ::new (mem) MSpan();
}

MSpan* MHeap::alloc_small_span(int spc) {
  const int cls = spc / kNumKinds;
  const auto kind = static_cast<Kind>(spc % kNumKinds);
  const std::size_t npages = kClassToAllocNPages[cls];
  const std::uint32_t elem = kClassToSize[cls];
  const auto nelems = static_cast<std::uint32_t>(npages * kPageSize / elem);
  // Side tables first, outside the heap lock.
  const TypeInfo** records = nullptr;
  TinyMasks* tiny = nullptr;
  if (kind == Kind::kTyped) {
    records = static_cast<const TypeInfo**>(meta_alloc(nelems * sizeof(void*)));
    if (records == nullptr) return nullptr;
  } else if (kind == Kind::kTiny) {
    tiny = static_cast<TinyMasks*>(meta_alloc(sizeof(TinyMasks)));
    if (tiny == nullptr) return nullptr;
  }
  std::unique_lock<Mutex> g(lock_);
  const std::size_t committed_before = pages_.committed_bytes();
  bool need_zero = false;
  const std::uintptr_t base = pages_.alloc(npages, &need_zero);
  MSpan* s = base != 0 ? new_record() : nullptr;
  if (s == nullptr) {
    if (base != 0) pages_.free(base, npages);
    meta_free(records, nelems * sizeof(void*));
    meta_free(tiny, sizeof(TinyMasks));
    return nullptr;
  }
  s->base = base;
  s->npages = npages;
  s->elem_size = elem;
  s->nelems = nelems;
  s->div_magic = kClassToDivMagic[cls];
  s->span_class = static_cast<std::uint16_t>(spc);
  s->kind = kind;
  s->need_zero = need_zero;
  s->type_records = records;
  s->tiny = tiny;
  pointer_free_pages(kind, base, npages * kPageSize, false);
  // Every slot is free: the program owns none of it until the fast path
  // hands a slot out (fresh pages from the OS start unpoisoned).
  no_objects(reinterpret_cast<void*>(base), npages * kPageSize);
  s->state.store(SpanState::kSmall, std::memory_order_relaxed);
  s->sweep_gen.store(sweep_gen(), std::memory_order_relaxed);  // nothing to sweep
  publish(s);
  const std::size_t committed = pages_.committed_bytes();
  publish_counts();
  g.unlock();
  grew(committed_before, committed);
  return s;
}

MSpan* MHeap::alloc_large_span(std::size_t npages, std::size_t size, Kind kind, bool* need_zero,
                               std::uintptr_t volatile* keep) {
  std::unique_lock<Mutex> g(lock_);
  const std::size_t committed_before = pages_.committed_bytes();
  const std::uintptr_t base = pages_.alloc(npages, need_zero);
  if (base == 0) return nullptr;
  MSpan* s = new_record();
  if (s == nullptr) {
    pages_.free(base, npages);
    return nullptr;
  }
  s->base = base;
  s->npages = npages;
  const std::size_t bytes = npages * kPageSize;
  s->elem_size = bytes > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(bytes);
  s->nelems = 1;
  s->div_magic = 0;  // every offset is slot 0
  s->span_class = 0;
  s->kind = kind;
  pointer_free_pages(kind, base, bytes, false);
  // The object is the program's, its pages' tail included (Boehm's
  // GC_size and in-place GC_realloc use whole pages).
  large_allocated(reinterpret_cast<void*>(base), npages * kPageSize);
  if (*need_zero && scan_mode(kind) == ScanMode::kCustom) {
    // Published with its allocation bit set, so a collection may call the
    // kind's mark procedure on it before the caller could clear it (see
    // MCache::next_chunk): cleared here, before it can be found.
    __builtin_memset(reinterpret_cast<void*>(base), 0, npages * kPageSize);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    *need_zero = false;
  }
  s->need_zero = *need_zero;
  s->large_size = size;
  s->alloc_bits[0].store(1, std::memory_order_relaxed);
  s->alloc_count = 1;
  s->state.store(SpanState::kLarge, std::memory_order_relaxed);
  s->sweep_gen.store(sweep_gen(), std::memory_order_relaxed);
  large_.push(s);
  *keep = base;  // before the span can be found (the stop waits for this lock)
  publish(s);
  const std::size_t committed = pages_.committed_bytes();
  publish_counts();
  g.unlock();
  grew(committed_before, committed);
  return s;
}

void MHeap::publish(MSpan* s) {
  // The release stores in set_spans make the record's fields visible to
  // any thread that finds the span through the map.
  arenas_.set_spans(s->base, s->npages, s);
  inuse_pages_ += s->npages;
  if (kind_is_root(s->kind)) root_spans_++;
}

void MHeap::free_span(MSpan* s) {
  {
    std::lock_guard<Mutex> g(lock_);
    if (defer_frees_) {
      if (s->state.load(std::memory_order_relaxed) == SpanState::kFree)
        fatal("span %#lx freed twice", static_cast<unsigned long>(s->base));
      if (s->list == &large_) large_.remove(s);
      s->state.store(SpanState::kFreeing, std::memory_order_release);
      deferred_.push(s);
      return;
    }
  }
  free_span_now(s);
}

void MHeap::begin_free_deferral() {
  std::lock_guard<Mutex> g(lock_);
  defer_frees_ = true;
}

void MHeap::end_free_deferral() {
  SpanList spans;
  {
    std::lock_guard<Mutex> g(lock_);
    defer_frees_ = false;
    while (MSpan* s = deferred_.pop()) spans.push(s);
  }
  while (MSpan* s = spans.pop()) free_span_now(s);
}

bool MHeap::track_writes() {
  if (!os::dirty_tracking_start()) return false;
  std::lock_guard<Mutex> g(lock_);
  const bool known = pages_.writes_tracked();
  if (!pages_.track_writes()) return false;
  // Pointer-free spans made before the tracker knew the heap.
  if (!known) {
    for_each_span_locked([](MSpan* s) { pointer_free_pages(s->kind, s->base, s->npages * kPageSize, false); });
  }
  return os::dirty_tracking_on();
}

std::int64_t MHeap::collect_written_from(const PageChunk* head, os::DirtyRunFn fn, void* ctx) {
  std::int64_t total = 0;
  for (const PageChunk* c = head; c != nullptr; c = c->next) {
    const std::int64_t n = os::dirty_collect(c->base, c->base + c->npages * kPageSize, fn, ctx);
    if (n < 0) return -1;
    total += n;
  }
  return total;
}

const PageChunk* MHeap::chunks_head() {
  std::lock_guard<Mutex> g(lock_);
  return pages_.chunks_head();
}

std::int64_t MHeap::collect_written(os::DirtyRunFn fn, void* ctx) {
  return collect_written_from(chunks_head(), fn, ctx);
}

void MHeap::unprotect_written() {
  for (const PageChunk* c = chunks_head(); c != nullptr; c = c->next)
    if (!os::dirty_unprotect(c->base, c->base + c->npages * kPageSize)) return;
}

std::int64_t MHeap::collect_written_locked(os::DirtyRunFn fn, void* ctx) {
  return collect_written_from(pages_.chunks_head(), fn, ctx);
}

void MHeap::free_span_now(MSpan* s) {
  const TypeInfo** records = s->type_records;
  TinyMasks* tiny = s->tiny;
  const std::size_t nelems = s->nelems;
  {
    std::lock_guard<Mutex> g(lock_);
    if (s->state.load(std::memory_order_relaxed) == SpanState::kFree)
      fatal("span %#lx freed twice", static_cast<unsigned long>(s->base));
    if (s->list == &large_) large_.remove(s);
    // A freed large object, or a small span whose slots are all free:
    // nothing here is the program's any more.
    if (s->is_large()) {
      object_freed(reinterpret_cast<void*>(s->base), s->npages * kPageSize);
    } else {
      no_objects(reinterpret_cast<void*>(s->base), s->npages * kPageSize);
    }
    arenas_.set_spans(s->base, s->npages, nullptr);
    // Before another span can have the pages: they may hold traced
    // objects then.
    pointer_free_pages(s->kind, s->base, s->npages * kPageSize, true);
    pages_.free(s->base, s->npages);
    inuse_pages_ -= s->npages;
    if (kind_is_root(s->kind)) root_spans_--;
    s->state.store(SpanState::kFree, std::memory_order_release);
    s->next = free_records_;
    free_records_ = s;
  }
  meta_free(records, nelems * sizeof(void*));
  meta_free(tiny, sizeof(TinyMasks));
}

std::size_t MHeap::sweep_large() {
  SpanList dead;
  {
    std::lock_guard<Mutex> g(lock_);
    const std::uint32_t gen = sweep_gen();
    for (MSpan* s = large_.first; s != nullptr;) {
      MSpan* next = s->next;
      if (s->sweep_gen.load(std::memory_order_relaxed) != gen) {
        if (s->gc_bits[0].load(std::memory_order_relaxed) != 0 ||
            (scan_mode(s->kind) == ScanMode::kCustom && disclaimed(s, 0, 1) != 0)) {
          s->gc_bits[0].store(0, std::memory_order_relaxed);
          s->sweep_gen.store(gen, std::memory_order_relaxed);
        } else {
          // Claim it as free() would; an explicit free racing with us has
          // claimed it first and frees it itself.
          auto expected = SpanState::kLarge;
          if (s->state.compare_exchange_strong(expected, SpanState::kFreeing, std::memory_order_acq_rel)) {
            large_.remove(s);
            dead.push(s);
          }
        }
      }
      s = next;
    }
    large_swept_gen_.store(gen, std::memory_order_relaxed);
  }
  std::size_t bytes = 0;
  AllocCounters& swept = swept_counters();
  while (MSpan* s = dead.pop()) {
    if (auto* hook = g_sweep_free_hook.load(std::memory_order_relaxed)) hook(s->base, s->large_size, s->kind);
    bytes += s->npages * kPageSize;
    swept.large_frees.fetch_add(1, std::memory_order_relaxed);
    swept.large_free_bytes.fetch_add(s->npages * kPageSize, std::memory_order_relaxed);
    free_span(s);
  }
  return bytes;
}

std::size_t MHeap::sweep_large_if_behind() {
  if (large_swept_gen_.load(std::memory_order_relaxed) == sweep_gen()) return 0;
  return sweep_large();
}

bool MHeap::has_free_pages(std::size_t npages) {
  std::lock_guard<Mutex> g(lock_);
  return pages_.free_bytes() >= npages * kPageSize;
}

HeapPageStats MHeap::page_stats() {
  std::lock_guard<Mutex> g(lock_);
  return {pages_.reserved_bytes(), pages_.committed_bytes(), pages_.free_bytes(), pages_.released_bytes(),
          inuse_pages_ * kPageSize};
}

std::size_t MHeap::scavenge_one(bool spare_dense) {
  std::lock_guard<Mutex> work(scav_lock_);
  ScavengeBatch b;
  {
    std::lock_guard<Mutex> g(lock_);
    if (!pages_.take_scavenge(&b, spare_dense)) return 0;
    publish_counts();
  }
  // The pages are out of the free pool: no span holds them and no
  // allocation can get them until they are returned.
  PageAlloc::release_batch(b);
  std::lock_guard<Mutex> g(lock_);
  pages_.return_scavenged(b);
  publish_counts();
  // take_scavenge takes a block only when it has an unreleased page.
  return b.unreleased * kPageSize;
}

void MHeap::grew(std::size_t committed_before, std::size_t committed) {
  if (committed <= committed_before) return;
  if (growth_hook_ != nullptr) growth_hook_(committed);
  if (auto* fn = growth_scavenger_.load(std::memory_order_relaxed)) fn(committed - committed_before);
}

void MHeap::set_limit(std::size_t bytes) {
  std::lock_guard<Mutex> g(lock_);
  pages_.set_limit(bytes);
}

bool MHeap::expand(std::size_t bytes) {
  std::unique_lock<Mutex> g(lock_);
  const bool ok = pages_.expand((bytes + kPageSize - 1) / kPageSize);
  const std::size_t committed = pages_.committed_bytes();
  publish_counts();
  g.unlock();
  // Not the growth scavenger: the program asked for these pages to be
  // there (GC_expand_hp), not for free ones to be traded for them.
  if (ok && growth_hook_ != nullptr) growth_hook_(committed);
  return ok;
}

void MHeap::set_huge_pages(bool on) {
  std::lock_guard<Mutex> g(lock_);
  pages_.set_huge_pages(on);
}

void MHeap::check(bool (*skip)(const MSpan*)) {
  std::lock_guard<Mutex> g(lock_);
  pages_.check();
  std::size_t inuse = 0;
  pages_.for_each_chunk([&](std::uintptr_t base, std::size_t committed) {
    for (std::size_t i = 0; i < committed; i++) {
      const std::uintptr_t page = base + i * kPageSize;
      MSpan* s = arenas_.span_of(page);
      if (s == nullptr || s->base != page) continue;
      if (s->base + s->npages * kPageSize > base + committed * kPageSize)
        fatal("heap: span %#lx runs past the committed end of its chunk", static_cast<unsigned long>(page));
      for (std::size_t k = 1; k < s->npages; k++)
        if (arenas_.span_of(page + k * kPageSize) != s)
          fatal("heap: page %zu of span %#lx does not map to it", k, static_cast<unsigned long>(page));
      inuse += s->npages;
      if (s->state.load(std::memory_order_relaxed) != SpanState::kFreeing && (skip == nullptr || !skip(s))) s->check();
    }
  });
  if (inuse != inuse_pages_) fatal("heap: %zu pages in mapped spans but %zu counted in use", inuse, inuse_pages_);
  if (inuse_pages_ * kPageSize + pages_.free_bytes() + pages_.scavenging_bytes() != pages_.committed_bytes())
    fatal("heap: %zu in-use pages, %zu free bytes and %zu being released do not add up to %zu committed bytes",
          inuse_pages_, pages_.free_bytes(), pages_.scavenging_bytes(), pages_.committed_bytes());
}

}  // namespace mgc::internal
