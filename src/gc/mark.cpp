#include "gc/mark.hpp"

#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <vector>

#include "heap/kinds.hpp"
#include "heap/mheap.hpp"
#include "heap/type_info.hpp"
#include "os/clock.hpp"
#include "os/fatal.hpp"
#include "os/immortal.hpp"
#include "os/mem.hpp"
#include "os/mutex.hpp"
#include "os/sanitizer.hpp"
#include "os/trace.hpp"

namespace mgc::internal {

std::uintptr_t debug_unmark_after_mark = 0;
std::size_t debug_mark_batch_limit = 0;

namespace {

// The allocated object holding p: its span, slot and extent. Tiny blocks
// count as one object.
struct ObjectRef {
  MSpan* span;
  std::size_t slot;
  std::uintptr_t base;
  std::size_t size;
};

bool locate(std::uintptr_t p, ObjectRef* out) {
  MSpan* s = mheap().span_of(p);
  if (s == nullptr) return false;
  const SpanState st = s->state.load(std::memory_order_acquire);
  if (st == SpanState::kLarge) {
    // Anywhere in its pages, as the mark has it.
    *out = {s, 0, s->base, s->large_size};
    return true;
  }
  if (st != SpanState::kSmall) return false;
  const std::size_t i = s->object_index(p);
  if (i >= s->nelems || !s->is_allocated(i)) return false;
  *out = {s, i, s->slot_address(i), s->elem_size};
  return true;
}

// A range to scan: conservative words [begin, end) when type is null, else
// the words of [begin, end) that type's pointer bits name, counted from
// the object's base. kind says where the reference came from.
struct Gray {
  std::uintptr_t begin;
  std::uintptr_t end;
  const TypeInfo* type;
  std::uintptr_t base;
  RootKind kind;
};

// A copy of an entry that a push may have written a moment ago, field by
// field: each load then matches one store of the push and is forwarded
// from the store buffer. The compiler's own copy reads 16 bytes at once
// across two stores (base and the one-byte kind), which cannot be
// forwarded and waits for both to reach the cache: a quarter of the
// drain's time on a conservative mark that stays in the cache.
inline Gray load_gray(const Gray& g) {
  std::uintptr_t begin = g.begin, end = g.end, base = g.base;
  const TypeInfo* type = g.type;
  asm("" : "+r"(begin), "+r"(end), "+r"(base), "+r"(type));
  return {begin, end, type, base, g.kind};
}

// Gray::type of a typed small object whose type record (at Gray::base) is
// not read yet.
const TypeInfo* const kTypeNotRead = reinterpret_cast<const TypeInfo*>(1);
// Gray::type of an object (at Gray::begin) scanned as a mark descriptor
// says (heap/kinds.hpp); Gray::end holds the descriptor.
const TypeInfo* const kDescriptor = reinterpret_cast<const TypeInfo*>(2);

// Mark procedures (Boehm's GC_new_proc), by index; indices below
// kFirstMarkProc are Boehm's reserved ones.
MarkProc g_mark_procs[kMaxMarkProcs];
std::atomic<unsigned> g_mark_proc_count{kFirstMarkProc};
Mutex g_mark_proc_lock;

// Set bit b of *word atomically; was it set? One locked bts (a fetch_or
// whose result is tested compiles to a compare-exchange loop).
inline bool test_and_set(std::atomic<std::uint64_t>* word, std::size_t b) {
  bool was_set;
  asm volatile("lock btsq %2, %0"
               : "+m"(*reinterpret_cast<std::uint64_t*>(word)), "=@ccc"(was_set)
               : "r"(b)
               : "memory");
  return was_set;
}

// Set while the world is stopped and the collecting thread marks alone
// (no helper started in this drain): then nothing else can write a mark
// bit, and mark_bit_set uses a plain load and store. A locked bts costs
// about a fifth of a conservative mark (binary trees of 16-byte objects:
// 63 against 50 ms per 2 Mi-node collection on one thread), mostly by
// holding back the loads behind it. Written by the collecting thread
// only; turned off under the shared lock before any helper is woken, so
// a helper's marks, atomic, come after all the plain ones in time.
std::atomic<bool> g_marks_exclusive{false};
bool g_world_stopped = false;  // collecting thread only

// Set bit b of *word; was it set? Atomic unless marks are exclusive.
inline bool mark_bit_set(std::atomic<std::uint64_t>* word, std::size_t b) {
  if (g_marks_exclusive.load(std::memory_order_relaxed)) {
    const std::uint64_t v = word->load(std::memory_order_relaxed);
    if ((v >> b) & 1) return true;
    word->store(v | (std::uint64_t{1} << b), std::memory_order_relaxed);
    return false;
  }
  return test_and_set(word, b);
}

constexpr std::size_t kBatchEntries = 400;
struct Batch {
  Batch* next;
  std::size_t n;
  std::size_t cap;  // kBatchEntries, or 0 for the stand-in (no_batch)
  Gray e[kBatchEntries];
};

// A worker's buffer when the pool had none to give: empty and full at
// once, so the first push asks the pool again. Never written.
Batch g_no_batch = {nullptr, 0, 0, {}};

constexpr std::size_t kPieceBytes = 64 * 1024;  // large objects and roots are scanned in pieces

// Buffers are bump-allocated from chunks mapped as the mark needs them and
// recycled, never unmapped. Address space is claimed a chunk at a time, so
// that a process under an address-space limit (ulimit -v, valgrind) pays
// only for the buffers its heaviest mark used.
class BatchPool {
 public:
  // User-provided: the reserve is left as static storage starts (zero,
  // untouched), not cleared page by page.
  BatchPool() {}

  // An empty buffer, or nullptr when memory is exhausted (the mark then
  // drops work it can find again: see Worker::push_marked).
  Batch* try_get() {
    std::lock_guard<Mutex> g(lock_);
    if (debug_mark_batch_limit != 0 && out_ >= debug_mark_batch_limit) return nullptr;
    Batch* b = free_;
    if (b != nullptr) {
      free_ = b->next;
    } else {
      if (chunk_ == nullptr || used_ + sizeof(Batch) > kChunk) {
        void* p = os::map_metadata(kChunk);
        if (p == nullptr) {
          // The OS refuses: the reserve in static storage, once.
          if (reserve_used_) return nullptr;
          reserve_used_ = true;
          p = reserve_;
        }
        chunk_ = static_cast<char*>(p);
        used_ = 0;
      }
      b = reinterpret_cast<Batch*>(chunk_ + used_);
      used_ += sizeof(Batch);
    }
    out_++;
    b->next = nullptr;
    b->n = 0;
    b->cap = kBatchEntries;
    return b;
  }
  void put(Batch* b) {
    if (b == &g_no_batch) return;
    std::lock_guard<Mutex> g(lock_);
    out_--;
    b->next = free_;
    free_ = b;
  }

 private:
  static constexpr std::size_t kChunk = std::size_t{1} << 20;  // 81 buffers
  static_assert(sizeof(Batch) <= kChunk);
  Mutex lock_;
  char* chunk_ = nullptr;
  std::size_t used_ = 0;
  std::size_t out_ = 0;  // buffers handed out and not put back
  Batch* free_ = nullptr;
  // One chunk's worth for when the OS refuses memory (bss: costs nothing
  // until used).
  bool reserve_used_ = false;
  alignas(64) char reserve_[kChunk];
};

BatchPool& pool() {
  static Immortal<BatchPool> x;
  return *x;
}

// The shared list of full buffers and the termination protocol.
struct Shared {
  Mutex lock;
  std::condition_variable_any cv;
  Batch* full = nullptr;
  int nworkers = 1;
  std::atomic<int> waiting{0};
  bool done = false;
  std::uint64_t drain_id = 0;  // helpers start a drain when this changes
  int helpers_active = 0;
  bool draining = false;
  bool helpers_started = false;
  int want_workers = 1;
  std::condition_variable_any helpers_cv;
  std::atomic<std::uint64_t> marked_bytes{0};
};
Shared& shared_state() {
  static Immortal<Shared> x;
  return *x;
}

int g_nhelpers = 0;
int g_workers_used = 1;
bool g_checking = false;

// Lock held: bring the helpers into the current drain. They are started
// only once a worker has a full buffer to share: a small live heap (the
// common case for a program that allocates much and keeps little) is
// marked by the collecting thread alone, without waking anyone.
void start_helpers_locked() {
  Shared& sh = shared_state();
  if (!sh.draining || sh.helpers_started || sh.want_workers < 2) return;
  sh.helpers_started = true;
  g_marks_exclusive.store(false, std::memory_order_relaxed);
  sh.nworkers = sh.want_workers;
  sh.helpers_active = sh.want_workers - 1;
  sh.drain_id++;
  sh.cv.notify_all();
}

void push_full(Batch* b) {
  std::lock_guard<Mutex> g(shared_state().lock);
  b->next = shared_state().full;
  shared_state().full = b;
  start_helpers_locked();
  shared_state().cv.notify_one();
}

// Set when a mark dropped gray objects for want of buffers (memory
// exhausted): the drain then scans every marked object again (Boehm's
// mark-stack-overflow recovery). Only marked objects are ever dropped.
std::atomic<bool> g_overflowed{false};
std::atomic<std::uint64_t> g_overflow_rescans{0};

Batch* get_or_none() {
  Batch* b = pool().try_get();
  return b != nullptr ? b : &g_no_batch;
}

class Worker {
 public:
  Worker() : cur_(get_or_none()) {}
  ~Worker() {
    pool().put(cur_);
    release_proc_stack();
  }

  // Queue e; false when no buffer can be had (memory exhausted), and the
  // caller must deal with e itself.
  bool try_push(const Gray& e) {
    if (cur_->n == cur_->cap) [[unlikely]] {
      Batch* b = pool().try_get();
      if (b == nullptr) return false;
      if (cur_ != &g_no_batch) push_full(cur_);
      cur_ = b;
    }
    cur_->e[cur_->n++] = e;
    return true;
  }
  // Queue a range that nothing else will scan again (a root, part of an
  // object being scanned): when no buffer can be had, scan it now.
  void push(const Gray& e) {
    if (!try_push(e)) [[unlikely]]
      scan(e);
  }
  // Queue the contents of an object whose mark is set: when no buffer can
  // be had they are dropped, and found again by the rescan of marked
  // objects that ends the drain.
  void push_marked(const Gray& e) {
    if (!try_push(e)) [[unlikely]]
      g_overflowed.store(true, std::memory_order_relaxed);
  }
  // Scan every object whose mark is set, directly (mark_drain's recovery).
  void rescan_marked();

  void drain();
  void drain_loop();
  std::uint64_t marked_bytes = 0;

  void scan(const Gray& e);
  // The pointer words of a typed object at base (plain layout, t->period
  // 0) that lie in [begin, end): by its type's bits, a set bit at a time.
  void scan_pointer_words(const TypeInfo* t, std::uintptr_t base, std::uintptr_t begin, std::uintptr_t end,
                          RootKind kind);
  // The small typed object at obj whose type record is at rec (a
  // kTypeNotRead entry): its pointer words, as its type says.
  void scan_small_typed(std::uintptr_t obj, std::uintptr_t rec, RootKind kind);
  // Scan the object at p as descriptor d says.
  void scan_descriptor(std::uintptr_t p, std::uintptr_t d);
  void call_mark_proc(std::uintptr_t p, std::uintptr_t d);
  // Take entries 1..n of the procedure stack (see call_mark_proc).
  void settle_proc_entries(std::size_t n);
  // Whether the object at p has its mark set (in the bits this mark uses).
  static bool marked_now(std::uintptr_t p);
  void mark(std::uintptr_t v, std::uintptr_t from, RootKind kind);
  // Slot i of s (allocated; base and size its object's): set its mark and,
  // if it was not set, queue its contents as its kind says. scan == false
  // sets the mark only.
  void mark_slot(MSpan* s, std::size_t i, std::uintptr_t base, std::size_t size, std::uintptr_t from, RootKind kind,
                 bool scan = true);
  // Queue the contents of slot i of s as its kind says.
  void queue_contents(MSpan* s, std::size_t i, std::uintptr_t base, std::size_t size);
  // The allocated objects of s in the written pages [lo, hi): marked if
  // they were not, and their contents queued either way (a large object's
  // only within [lo, hi) when its kind allows).
  void mark_written(MSpan* s, std::uintptr_t lo, std::uintptr_t hi);

 private:
  bool refill();
  Batch* cur_;
  // The span of the last candidate that had one. Spans do not change while
  // the world is stopped; forget() before a drain in another stop.
  MSpan* last_ = nullptr;
  std::uintptr_t last_base_ = 0;
  std::uintptr_t last_bytes_ = 0;
  // Where a mark procedure pushes: entry 0 is the "current top" it is
  // given, its pushes go above. Grown (and the procedure called again)
  // when one overflows it.
  MarkStackEntry proc_stack_small_[64];
  MarkStackEntry* proc_stack_ = proc_stack_small_;
  std::size_t proc_stack_size_ = 64;
  // A larger procedure stack, entries 0..keep copied over: mapped, or the
  // reserve when the OS refuses. False when there is none larger.
  bool grow_proc_stack(std::size_t keep);

 public:
  void forget_span() { last_ = nullptr, last_base_ = 0, last_bytes_ = 0; }
  // Back to the small stack: a mapped one is unmapped, the reserve given up.
  void release_proc_stack();
};

bool Worker::refill() {
  std::unique_lock<Mutex> g(shared_state().lock);
  for (;;) {
    if (shared_state().full != nullptr) {
      Batch* b = shared_state().full;
      shared_state().full = b->next;
      g.unlock();
      pool().put(cur_);  // empty, or the stand-in
      cur_ = b;
      return true;
    }
    if (shared_state().done) return false;
    if (shared_state().waiting.fetch_add(1, std::memory_order_relaxed) + 1 == shared_state().nworkers) {
      shared_state().done = true;
      shared_state().cv.notify_all();
      return false;
    }
    shared_state().cv.wait(g, [] { return shared_state().full != nullptr || shared_state().done; });
    shared_state().waiting.fetch_sub(1, std::memory_order_relaxed);
  }
}

// The worker of a thread that drains now: mark procedures and root
// callbacks it calls push to it.
__thread Worker* tls_worker __attribute__((tls_model("initial-exec")));

void Worker::drain() {
  Worker* const outer = tls_worker;
  tls_worker = this;
  drain_loop();
  tls_worker = outer;
}

// Reads heap words as scan() does: unchecked by the sanitizers.
__attribute__((no_sanitize("address", "undefined", "thread"))) void Worker::drain_loop() {
  // Objects are scanned in the order they come off the buffer, but through
  // a small FIFO: each is prefetched when it enters and scanned kAhead
  // pops later, so the cache misses of a pointer-chasing mark overlap
  // (Boehm prefetches its mark stack the same way).
  constexpr unsigned kAhead = 8;
  // About 50 us of marking: a short mark is not worth a helper's wake-up.
  constexpr std::uint64_t kScansAlone = 4096;
  // The FIFO by field (see load_gray: no copy of a whole entry).
  std::uintptr_t ring_begin[kAhead], ring_end[kAhead], ring_base[kAhead];
  const TypeInfo* ring_type[kAhead];
  RootKind ring_kind[kAhead];
  unsigned head = 0, count = 0, since_check = 0;
  std::uint64_t scans = 0;
  bool shared = false;
  for (;;) {
    while (count < kAhead && cur_->n != 0) {
      const Gray e = load_gray(cur_->e[--cur_->n]);
      __builtin_prefetch(reinterpret_cast<const void*>(e.begin));
      if (e.type == kTypeNotRead) __builtin_prefetch(reinterpret_cast<const void*>(e.base));
      const unsigned slot = (head + count) % kAhead;
      ring_begin[slot] = e.begin;
      ring_end[slot] = e.end;
      ring_type[slot] = e.type;
      ring_base[slot] = e.base;
      ring_kind[slot] = e.kind;
      count++;
    }
    if (count == 0) {
      if (!refill()) return;
      continue;
    }
    const unsigned at = head;
    head = (head + 1) % kAhead;
    count--;
    if (ring_type[at] == nullptr && ring_end[at] - ring_begin[at] <= kPieceBytes) {
      // A conservative range in one piece (most objects): scanned here,
      // without scan()'s call and its dispatch on the entry's form.
      const std::uintptr_t end = ring_end[at];
      const RootKind kind = ring_kind[at];
      for (std::uintptr_t p = ring_begin[at]; p < end; p += 8)
        mark(*reinterpret_cast<const std::uintptr_t*>(p), p, kind);
    } else if (ring_type[at] == kTypeNotRead) {
      // A small typed object (the record was prefetched with it): so too.
      scan_small_typed(ring_begin[at], ring_base[at], ring_kind[at]);
    } else {
      scan({ring_begin[at], ring_end[at], ring_type[at], ring_base[at], ring_kind[at]});
    }
    // Another worker is idle: give it half of what is queued here. Helpers
    // start when a buffer fills, which a deep and narrow graph (a tree,
    // a list) never does: after kScansAlone objects, half is given anyway,
    // once a drain, which starts them.
    if (++since_check == 64) {
      since_check = 0;
      scans += 64;
      Batch* half = nullptr;
      const bool share = !shared && scans >= kScansAlone
                             ? cur_->n >= 2
                             : cur_->n >= 8 && shared_state().waiting.load(std::memory_order_relaxed) > 0;
      if (share && (half = pool().try_get()) != nullptr) {
        shared = true;
        const std::size_t k = cur_->n / 2;
        for (std::size_t j = 0; j < k; j++) half->e[j] = cur_->e[j];
        for (std::size_t j = k; j < cur_->n; j++) cur_->e[j - k] = cur_->e[j];
        half->n = k;
        cur_->n -= k;
        push_full(half);
      }
    }
  }
}

[[noreturn, gnu::cold]] void checkmark_failure(std::uintptr_t obj, std::uintptr_t from, RootKind kind) {
  fatal("gccheckmark: object %#lx is reachable (from a %s word at %#lx) but the parallel mark did not mark it",
        static_cast<unsigned long>(obj), root_kind_name(kind), static_cast<unsigned long>(from));
}

// The reject tests in the order of their cost; everything here is read
// without locks: the world is stopped, and spans only change under locks
// the collector holds.
inline void Worker::mark(std::uintptr_t v, std::uintptr_t from, RootKind kind) {
  v = collector_defined_word(v);
  MSpan* s;
  if (v - last_base_ < last_bytes_) {
    // Neighbours in memory are often neighbours in the graph (a structure
    // allocated in one go): the span of the last candidate, no lookup.
    s = last_;
  } else {
    const MHeap& h = mheap();
    if (!h.in_heap_range(v)) return;
    s = h.span_of(v);
    if (s == nullptr) return;
    last_ = s;
    last_base_ = s->base;
    last_bytes_ = s->npages * kPageSize;
  }
  // Acquire: a mark running beside the program may meet a span another
  // thread is just making, whose fields are published by this store.
  const SpanState st = s->state.load(std::memory_order_acquire);
  std::size_t i;
  std::uintptr_t base;
  std::size_t size;
  if (st == SpanState::kSmall) {
    i = s->object_index(v);
    if (i >= s->nelems) return;
    base = s->slot_address(i);
    size = s->elem_size;
  } else if (st == SpanState::kLarge) {
    i = 0;
    base = s->base;
    size = s->large_size;
  } else {
    return;
  }
  const std::size_t w = i / 64;
  const std::uint64_t bit = std::uint64_t{1} << (i % 64);
  if (!(s->alloc_bits[w].load(std::memory_order_relaxed) & bit)) return;
  // Freed by another thread, not merged yet: dead (in a tiny span the bit
  // only asks for the block to be examined).
  if (s->kind != Kind::kTiny && (s->pending_free[w].load(std::memory_order_relaxed) & bit)) return;
  mark_slot(s, i, base, size, from, kind);
}

inline void Worker::mark_slot(MSpan* s, std::size_t i, std::uintptr_t base, std::size_t size, std::uintptr_t from,
                              RootKind kind, bool scan) {
  const std::size_t w = i / 64;
  const std::uint64_t bit = std::uint64_t{1} << (i % 64);
  std::atomic<std::uint64_t>* bits = g_checking ? s->aux_bits : s->gc_bits;
  if (bits == nullptr) return;  // a span made after checkmark began: none can be
  if (bits[w].load(std::memory_order_relaxed) & bit) return;
  if (mark_bit_set(&bits[w], i % 64)) return;
  if (g_checking && !(s->gc_bits[w].load(std::memory_order_relaxed) & bit)) checkmark_failure(base, from, kind);
  marked_bytes += size;
  if (!scan) return;
  queue_contents(s, i, base, size);
}

__attribute__((always_inline)) inline void Worker::queue_contents(MSpan* s, std::size_t i, std::uintptr_t base,
                                                                  std::size_t size) {
  switch (scan_mode(s->kind)) {
    case ScanMode::kNone:
      return;
    case ScanMode::kConservative:
      push_marked({base, base + size, nullptr, base, RootKind::kHeap});
      return;
    case ScanMode::kCustom:
      push_marked({base, kind_descriptor(s->kind, size), kDescriptor, base, RootKind::kHeap});
      return;
    case ScanMode::kTyped: {
      if (s->is_large()) {
        const TypeInfo* t = s->large_type.load(std::memory_order_relaxed);
        if (t != nullptr) push_marked({base, base + t->scan_words() * 8, t, base, RootKind::kHeap});
        return;
      }
      // The slot's type record is a likely cache miss: queue its address
      // and read it when the object comes off the FIFO (drain prefetches).
      const TypeInfo* const* rec = s->type_records + i;
      __builtin_prefetch(rec);
      push_marked({base, 0, kTypeNotRead, reinterpret_cast<std::uintptr_t>(rec), RootKind::kHeap});
      return;
    }
  }
}

__attribute__((no_sanitize("address", "undefined", "thread"))) void Worker::scan(const Gray& in) {
  Gray e = load_gray(in);
  if (e.type == kDescriptor) return scan_descriptor(e.begin, e.end);
  if (e.type == kTypeNotRead) return scan_small_typed(e.begin, e.base, e.kind);
  std::uintptr_t end = e.end;
  // The rest of a large range waits for this worker or another; with no
  // buffer for it, it is scanned now, whole.
  if (end - e.begin > kPieceBytes && try_push({e.begin + kPieceBytes, e.end, e.type, e.base, e.kind}))
    end = e.begin + kPieceBytes;
  if (e.type == nullptr) {
    for (std::uintptr_t p = e.begin; p < end; p += 8) mark(*reinterpret_cast<const std::uintptr_t*>(p), p, e.kind);
    return;
  }
  const TypeInfo* t = e.type;
  if (t->period == 0) return scan_pointer_words(t, e.base, e.begin, end, e.kind);
  // An array: the element's bits, again and again (one division a piece).
  std::size_t w = (e.begin - e.base) / 8 % t->period;
  for (std::uintptr_t p = e.begin; p < end; p += 8) {
    if (w < t->nwords && ((t->bits[w / 64] >> (w % 64)) & 1))
      mark(*reinterpret_cast<const std::uintptr_t*>(p), p, e.kind);
    if (++w == t->period) w = 0;
  }
}

__attribute__((no_sanitize("address", "undefined", "thread"), always_inline)) inline void Worker::scan_pointer_words(
    const TypeInfo* t, std::uintptr_t base, std::uintptr_t begin, std::uintptr_t end, RootKind kind) {
  const std::size_t w0 = (begin - base) / 8;
  const std::size_t w1 = std::min((end - base) / 8, t->nwords);
  for (std::size_t lo = w0 / 64 * 64; lo < w1; lo += 64) {
    std::uint64_t m = t->bits[lo / 64];
    if (lo < w0) m &= ~std::uint64_t{0} << (w0 - lo);
    if (w1 - lo < 64) m &= (std::uint64_t{1} << (w1 - lo)) - 1;
    for (; m != 0; m &= m - 1) {
      const std::uintptr_t p = base + 8 * (lo + static_cast<std::size_t>(__builtin_ctzll(m)));
      mark(*reinterpret_cast<const std::uintptr_t*>(p), p, kind);
    }
  }
}

__attribute__((no_sanitize("address", "undefined", "thread"), always_inline)) inline void Worker::scan_small_typed(
    std::uintptr_t obj, std::uintptr_t rec, RootKind kind) {
  const TypeInfo* t = *reinterpret_cast<const TypeInfo* const*>(rec);
  if (t == nullptr) return;  // a slot reserved by a cache, never handed out
  if (t->period == 0) return scan_pointer_words(t, obj, obj, obj + t->nwords * 8, kind);
  scan({obj, obj + t->scan_words() * 8, t, obj, kind});  // an array: by its period
}

// The descriptor a per-object descriptor d finds for the object at p: in
// the object at a displacement, or (a negative one) in what the object's
// first word points to. 0 (a length of nothing) for a cleared object.
__attribute__((no_sanitize("address", "undefined", "thread"))) std::uintptr_t per_object_descriptor(std::uintptr_t p,
                                                                                                    std::uintptr_t d) {
  const std::uintptr_t disp = d & ~kDescriptorTags;
  std::uintptr_t real;
  if (static_cast<std::intptr_t>(d) >= 0) {
    real = *reinterpret_cast<const std::uintptr_t*>(p + disp);
  } else {
    const std::uintptr_t vtable = *reinterpret_cast<const std::uintptr_t*>(p);
    if (vtable == 0) return kDescriptorLength;  // a cleared object: nothing to scan
    real = *reinterpret_cast<const std::uintptr_t*>(vtable - disp - kPerObjectBias);
  }
  if ((real & kDescriptorTags) == kDescriptorPerObject) fatal("mark: a per-object descriptor names another");
  return real;
}

MarkProc mark_proc_of(std::uintptr_t d) {
  const std::size_t index = (d >> 2) & (kMaxMarkProcs - 1);
  MarkProc proc = index < g_mark_proc_count.load(std::memory_order_acquire) ? g_mark_procs[index] : nullptr;
  if (proc == nullptr) fatal("mark: descriptor %#lx names no mark procedure", static_cast<unsigned long>(d));
  return proc;
}

__attribute__((no_sanitize("address", "undefined", "thread"))) void Worker::scan_descriptor(std::uintptr_t p,
                                                                                            std::uintptr_t d) {
  switch (d & kDescriptorTags) {
    case kDescriptorLength:
      // Conservative words over d bytes, in pieces as any range.
      if (d >= 8) push({p, p + (d & ~std::uintptr_t{7}), nullptr, p, RootKind::kHeap});
      return;
    case kDescriptorBitmap:
      for (std::size_t w = 0; w < 62; w++)
        if ((d >> (63 - w)) & 1) mark(*reinterpret_cast<const std::uintptr_t*>(p + w * 8), p + w * 8, RootKind::kHeap);
      return;
    case kDescriptorProc:
      return call_mark_proc(p, d);
    default:
      return scan_descriptor(p, per_object_descriptor(p, d));
  }
}

// A mark procedure's stack when the OS refuses a larger one: static
// storage (mapped with the library, so there even under an address-space
// limit), lent to one worker at a time for one call.
constexpr std::size_t kProcReserveEntries = std::size_t{1} << 18;  // 4 MiB
alignas(64) MarkStackEntry g_proc_reserve[kProcReserveEntries];
std::atomic<bool> g_proc_reserve_lent{false};
std::atomic<std::uint64_t> g_proc_reserve_uses{0};
std::atomic<std::uint64_t> g_proc_conservative_scans{0};
std::atomic<std::uint64_t> g_proc_outside_heap_runs{0};

void Worker::release_proc_stack() {
  if (proc_stack_ == g_proc_reserve) {
    g_proc_reserve_lent.store(false, std::memory_order_release);
  } else if (proc_stack_ != proc_stack_small_) {
    os::unmap(proc_stack_, proc_stack_size_ * sizeof(MarkStackEntry));
  }
  proc_stack_ = proc_stack_small_;
  proc_stack_size_ = 64;
}

bool Worker::grow_proc_stack(std::size_t keep) {
  if (proc_stack_ == g_proc_reserve) return false;
  const std::size_t bigger = proc_stack_size_ * 4;
  auto* mem = static_cast<MarkStackEntry*>(os::map_metadata(bigger * sizeof(MarkStackEntry)));
  std::size_t size = bigger;
  if (mem == nullptr) {
    // The OS refuses: the reserve, once the worker that has it is done
    // with its call (which waits for nothing), unless this stack is as
    // large already.
    if (proc_stack_size_ >= kProcReserveEntries) return false;
    while (g_proc_reserve_lent.exchange(true, std::memory_order_acquire)) sched_yield();
    g_proc_reserve_uses.fetch_add(1, std::memory_order_relaxed);
    mem = g_proc_reserve;
    size = kProcReserveEntries;
  }
  if (keep > 0) std::memcpy(mem, proc_stack_, (keep + 1) * sizeof(MarkStackEntry));
  release_proc_stack();
  proc_stack_ = mem;
  proc_stack_size_ = size;
  return true;
}

void Worker::call_mark_proc(std::uintptr_t p, std::uintptr_t d) {
  MarkProc proc = mark_proc_of(d);
  // A poisoned object is a slot a cache reserved and has not handed out
  // (sanitizer builds): cleared, nothing to mark, and the program's
  // procedure, instrumented, must not read it.
  if (poisoned(reinterpret_cast<const void*>(p))) return;
  for (;;) {
    MarkStackEntry* top = proc_stack_;
    MarkStackEntry* limit = proc_stack_ + proc_stack_size_;
    MarkStackEntry* end = proc(reinterpret_cast<std::uintptr_t*>(p), top, limit, d >> 8);
    if (end < limit) {
      settle_proc_entries(static_cast<std::size_t>(end - top));
      break;
    }
    // The procedure filled its stack (Boehm: an overflow, which restarts
    // the mark): run it again with a larger one. Marks it already set stay
    // set; what it pushed is pushed again.
    if (!grow_proc_stack(0)) {
      // Not even the reserve holds what it pushes for this object. Boehm's
      // contract (gc_mark.h) has a procedure look for pointers only where
      // the conservative marker would, so that running the latter instead
      // is safe: the whole object is scanned as words (its pointers kept,
      // weak ones too, for a cycle), and what the procedure wrote is left
      // (how far it wrote is not known).
      ObjectRef o;
      if (!locate(p, &o))
        fatal(
            "mark: a mark procedure run on %#lx, outside the heap, pushed more than %zu entries while memory was "
            "exhausted",
            static_cast<unsigned long>(p), proc_stack_size_);
      g_proc_conservative_scans.fetch_add(1, std::memory_order_relaxed);
      push({o.base, o.base + (o.size & ~std::size_t{7}), nullptr, o.base, RootKind::kHeap});
      break;
    }
  }
  if (proc_stack_ == g_proc_reserve) release_proc_stack();
}

// Entries 1..n of the procedure stack, which a procedure wrote: queued. When
// no buffer can be had (memory exhausted), a range or a bitmap is scanned
// now; an entry for a procedure on a heap object is left to the rescan that
// ends the drain, which scans every marked object by its kind: marked here
// if it was not (Boehm's procedures mark an object before they push it; kept
// a cycle longer if not). One on memory outside the heap has no object to
// rescan: its procedure runs here, its pushes above those still to settle
// (taken last in, first out), the stack growing if it must.
__attribute__((no_sanitize("address", "undefined", "thread"))) void Worker::settle_proc_entries(std::size_t n) {
  bool dropped = false;
  while (n > 0) {
    const MarkStackEntry e = proc_stack_[n--];
    if (try_push({e.start, e.descr, kDescriptor, e.start, RootKind::kHeap})) continue;
    std::uintptr_t d = e.descr;
    if ((d & kDescriptorTags) == kDescriptorProc || (d & kDescriptorTags) == kDescriptorPerObject) {
      if (marked_now(e.start) || set_mark_at(e.start)) {
        dropped = true;
        continue;
      }
      if ((d & kDescriptorTags) == kDescriptorPerObject) d = per_object_descriptor(e.start, d);
    }
    if ((d & kDescriptorTags) != kDescriptorProc) {
      scan_descriptor(e.start, d);
      continue;
    }
    MarkProc proc = mark_proc_of(d);
    g_proc_outside_heap_runs.fetch_add(1, std::memory_order_relaxed);
    for (;;) {
      MarkStackEntry* top = proc_stack_ + n;
      MarkStackEntry* limit = proc_stack_ + proc_stack_size_;
      MarkStackEntry* end = proc(reinterpret_cast<std::uintptr_t*>(e.start), top, limit, d >> 8);
      if (end < limit) {
        n = static_cast<std::size_t>(end - proc_stack_);
        break;
      }
      if (!grow_proc_stack(n))
        fatal(
            "mark: a mark procedure run on %#lx, outside the heap, pushed more than %zu entries while memory was "
            "exhausted",
            static_cast<unsigned long>(e.start), proc_stack_size_);
    }
  }
  if (dropped) g_overflowed.store(true, std::memory_order_relaxed);
}

// The collector thread's worker; its buffer is empty between drains. In
// static storage (nothing to map when memory runs out) that the roots
// exclude: its fields (the span cache) hold heap addresses.
Worker& main_worker() {
  static Immortal<Worker> w;
  return *w;
}

int g_configured_workers = 1;

std::atomic<std::uint64_t> g_helper_cpu_ns{0};

std::uint64_t thread_cpu_ns() { return os::clock_ns(CLOCK_THREAD_CPUTIME_ID); }

void helper_loop(int id, std::uint64_t seen) {
  char name[32];
  std::snprintf(name, sizeof name, "mark worker %d", id + 1);
  trace_name_thread(name);
  for (;;) {
    {
      std::unique_lock<Mutex> g(shared_state().lock);
      shared_state().cv.wait(g, [&] { return shared_state().drain_id != seen && id < shared_state().nworkers - 1; });
      seen = shared_state().drain_id;
    }
    const std::uint64_t t0 = thread_cpu_ns();
    Worker w;
    {
      TraceScope trace(TraceEv::kMarkWorker);
      collector_reads_begin();
      w.drain();
      collector_reads_end();
      trace.a0 = w.marked_bytes;
    }
    g_helper_cpu_ns.fetch_add(thread_cpu_ns() - t0, std::memory_order_relaxed);
    shared_state().marked_bytes.fetch_add(w.marked_bytes, std::memory_order_relaxed);
    std::lock_guard<Mutex> g(shared_state().lock);
    shared_state().helpers_active--;
    shared_state().helpers_cv.notify_all();
  }
}

}  // namespace

void mark_prepare(int nworkers) {
  if (nworkers < 1) nworkers = 1;
  while (g_nhelpers < nworkers - 1) {
    const int id = g_nhelpers++;
    std::uint64_t seen;
    {
      std::lock_guard<Mutex> g(shared_state().lock);
      seen = shared_state().drain_id;
    }
    std::thread(helper_loop, id, seen).detach();
  }
  g_configured_workers = nworkers;
}

void lock_mark_procs() { g_mark_proc_lock.lock(); }
void unlock_mark_procs() { g_mark_proc_lock.unlock(); }

bool register_mark_proc(MarkProc proc, unsigned* index) {
  std::lock_guard<Mutex> g(g_mark_proc_lock);
  const unsigned n = g_mark_proc_count.load(std::memory_order_relaxed);
  if (n == kMaxMarkProcs) return false;
  g_mark_procs[n] = proc;
  g_mark_proc_count.store(n + 1, std::memory_order_release);
  *index = n;
  return true;
}

namespace {
bool g_roots_now = false;  // world stopped: the collecting thread only

// Scan [b, e) (aligned) on the main worker now, piece by piece, so that no
// part of it waits in a buffer.
void scan_range_now(std::uintptr_t b, std::uintptr_t e, RootKind kind) {
  Worker& w = main_worker();
  for (; b < e; b += kPieceBytes) w.scan({b, e - b > kPieceBytes ? b + kPieceBytes : e, nullptr, b, kind});
}
}  // namespace

namespace {
Worker& callback_worker() { return tls_worker != nullptr ? *tls_worker : main_worker(); }
}  // namespace

void mark_from_callback(std::uintptr_t p) {
  // Outside a drain (a root callback of the program, before the mark
  // starts) the main worker's remembered span is the last cycle's: that
  // span may have been freed and its record reused since.
  if (tls_worker == nullptr) main_worker().forget_span();
  callback_worker().mark(p, 0, RootKind::kExplicit);
}

void push_range_from_callback(std::uintptr_t begin, std::uintptr_t end) {
  const std::uintptr_t b = (begin + 7) & ~std::uintptr_t{7};
  if (end <= b) return;
  if (g_roots_now && tls_worker == nullptr) return scan_range_now(b, end & ~std::uintptr_t{7}, RootKind::kExplicit);
  callback_worker().push({b, end & ~std::uintptr_t{7}, nullptr, b, RootKind::kExplicit});
}

void exclude_mark_statics(void (*exclude)(const void* begin, const void* end)) {
  exclude(&pool(), &pool() + 1);
  exclude(&main_worker(), &main_worker() + 1);
  // 4 MiB that only a mark writes: scanned as a root, it would cost every
  // cycle that much reading (and map it all).
  exclude(g_proc_reserve, g_proc_reserve + kProcReserveEntries);
  // Nanoseconds, which can equal a heap address where the heap lies low
  // (valgrind): see gc_cycle.
  exclude(&g_helper_cpu_ns, &g_helper_cpu_ns + 1);
}

void mark_after_fork() {
  // The helpers did not come along, and one of them may have held the
  // shared lock: a fresh state, helpers started again when needed.
  ::new (&shared_state()) Shared();
  g_nhelpers = 0;
}

namespace {
std::uint64_t g_root_bytes = 0;  // world stopped: the collecting thread only
}  // namespace

std::uint64_t take_root_bytes() {
  const std::uint64_t n = g_root_bytes;
  g_root_bytes = 0;
  return n;
}

bool mark_draining_here() { return tls_worker != nullptr; }

void mark_world_stopped(bool stopped) {
  g_world_stopped = stopped;
  g_marks_exclusive.store(stopped, std::memory_order_relaxed);
}

void mark_roots_now(bool on) {
  g_roots_now = on;
  main_worker().forget_span();
}

void mark_begin_cycle() {
  main_worker().marked_bytes = 0;
  main_worker().forget_span();
}

void mark_root(const RootRange& r) {
  const std::uintptr_t b = (r.begin + 7) & ~std::uintptr_t{7};
  if (r.end <= b) return;
  g_root_bytes += r.end - b;
  if (g_roots_now) return scan_range_now(b, r.end & ~std::uintptr_t{7}, r.kind);
  main_worker().push({b, r.end & ~std::uintptr_t{7}, nullptr, b, r.kind});
}

void mark_object_at(std::uintptr_t p, RootKind kind) {
  Worker& w = main_worker();
  w.forget_span();  // may be the first call of a new stop
  w.mark(p, 0, kind);
}

void mark_referents_of(std::uintptr_t p, bool exclude_self) {
  ObjectRef o;
  if (!locate(p, &o)) return;
  MSpan* s = o.span;
  const TypeInfo* t = nullptr;
  switch (scan_mode(s->kind)) {
    case ScanMode::kNone:
      return;
    case ScanMode::kConservative:
    case ScanMode::kCustom:
      break;
    case ScanMode::kTyped:
      t = s->is_large() ? s->large_type.load(std::memory_order_relaxed) : s->type_records[o.slot];
      if (t == nullptr) return;
      break;
  }
  const std::uintptr_t end = t == nullptr ? o.base + o.size : o.base + t->scan_words() * 8;
  if (!exclude_self) {
    main_worker().push({o.base, end, t, o.base, RootKind::kFinalizer});
    return;
  }
  // Boehm's ignore-self finalization: every word but those that point into
  // the object itself.
  Worker& w = main_worker();
  w.forget_span();
  for (std::uintptr_t q = o.base; q < end; q += 8) {
    if (t != nullptr && !t->is_pointer_word((q - o.base) / 8)) continue;
    const std::uintptr_t v = *reinterpret_cast<const std::uintptr_t*>(q);
    if (v - o.base < o.size) continue;
    w.mark(v, q, RootKind::kFinalizer);
  }
}

void mark_root_objects(MSpan* s) {
  Worker& w = main_worker();
  if (s->is_large()) {
    if (s->is_allocated(0)) w.mark_slot(s, 0, s->base, s->large_size, s->base, RootKind::kExplicit);
    return;
  }
  for (std::size_t word = 0; word < s->bitmap_words(); word++) {
    std::uint64_t live = s->alloc_bits[word].load(std::memory_order_relaxed) &
                         ~s->pending_free[word].load(std::memory_order_relaxed) & s->valid_mask(word);
    for (; live != 0; live &= live - 1) {
      const std::size_t i = word * 64 + static_cast<std::size_t>(__builtin_ctzll(live));
      const std::uintptr_t base = s->slot_address(i);
      w.mark_slot(s, i, base, s->elem_size, base, RootKind::kExplicit);
    }
  }
}

void mark_referents_of_span(MSpan* s) {
  Worker& w = main_worker();
  const auto push_object = [&](std::uintptr_t base, std::size_t size) {
    w.push({base, kind_descriptor(s->kind, size), kDescriptor, base, RootKind::kExplicit});
  };
  if (s->is_large()) return push_object(s->base, s->large_size);
  for (std::size_t word = 0; word < s->bitmap_words(); word++) {
    std::uint64_t live = s->alloc_bits[word].load(std::memory_order_relaxed) &
                         ~s->pending_free[word].load(std::memory_order_relaxed) & s->valid_mask(word);
    for (; live != 0; live &= live - 1)
      push_object(s->slot_address(word * 64 + static_cast<std::size_t>(__builtin_ctzll(live))), s->elem_size);
  }
}

bool set_mark_at(std::uintptr_t p) {
  ObjectRef o;
  if (!locate(p, &o)) return false;
  Worker& w = tls_worker != nullptr ? *tls_worker : main_worker();
  w.mark_slot(o.span, o.slot, o.base, o.size, p, RootKind::kExplicit, /*scan=*/false);
  return true;
}

void clear_mark_at(std::uintptr_t p) {
  ObjectRef o;
  if (!locate(p, &o)) return;
  o.span->gc_bits[o.slot / 64].fetch_and(~(std::uint64_t{1} << (o.slot % 64)), std::memory_order_relaxed);
}

namespace {

bool Worker::marked_now(std::uintptr_t p) {
  ObjectRef o;
  if (!locate(p, &o)) return false;
  const std::atomic<std::uint64_t>* bits = g_checking ? o.span->aux_bits : o.span->gc_bits;
  return bits != nullptr && ((bits[o.slot / 64].load(std::memory_order_relaxed) >> (o.slot % 64)) & 1);
}

void Worker::rescan_marked() {
  // Each pass scans every marked object whole and directly, so it marks
  // at least everything one reference away from the marked set: passes
  // end, however little memory the buffers get.
  forget_span();
  mheap().for_each_span_locked([this](MSpan* s) {
    const SpanState st = s->state.load(std::memory_order_relaxed);
    if (st != SpanState::kSmall && st != SpanState::kLarge) return;
    const ScanMode mode = scan_mode(s->kind);
    if (mode == ScanMode::kNone) return;
    const std::atomic<std::uint64_t>* bits = g_checking ? s->aux_bits : s->gc_bits;
    if (bits == nullptr) return;
    for (std::size_t word = 0; word < s->bitmap_words(); word++) {
      std::uint64_t m = bits[word].load(std::memory_order_relaxed) &
                        s->alloc_bits[word].load(std::memory_order_relaxed) & s->valid_mask(word);
      for (; m != 0; m &= m - 1) {
        const std::size_t i = word * 64 + static_cast<std::size_t>(__builtin_ctzll(m));
        const std::uintptr_t base = s->is_large() ? s->base : s->slot_address(i);
        const std::size_t size = s->is_large() ? s->large_size : s->elem_size;
        if (mode == ScanMode::kConservative) {
          scan({base, base + size, nullptr, base, RootKind::kHeap});
        } else if (mode == ScanMode::kCustom) {
          scan({base, kind_descriptor(s->kind, size), kDescriptor, base, RootKind::kHeap});
        } else if (s->is_large()) {
          const TypeInfo* t = s->large_type.load(std::memory_order_relaxed);
          if (t != nullptr) scan({base, base + t->scan_words() * 8, t, base, RootKind::kHeap});
        } else {
          scan({base, 0, kTypeNotRead, reinterpret_cast<std::uintptr_t>(s->type_records + i), RootKind::kHeap});
        }
      }
    }
  });
}

// One drain by the main worker and the helpers it brings in.
std::uint64_t drain_with_helpers() {
  Worker& w = main_worker();
  Shared& sh = shared_state();
  {
    std::lock_guard<Mutex> g(sh.lock);
    sh.want_workers = g_checking ? 1 : g_configured_workers;
    sh.nworkers = 1;  // until helpers start
    sh.helpers_active = 0;
    sh.helpers_started = false;
    sh.draining = true;
    sh.done = false;
    sh.waiting.store(0, std::memory_order_relaxed);
    sh.marked_bytes.store(0, std::memory_order_relaxed);
    g_marks_exclusive.store(g_world_stopped, std::memory_order_relaxed);
    if (sh.full != nullptr) start_helpers_locked();  // the roots overflowed a buffer
  }
  // w.marked_bytes already holds what the main worker marked since the
  // last drain (roots scanned at once, objects marked as roots, written
  // pages): counted with this drain.
  w.forget_span();
  {
    TraceScope trace(TraceEv::kMarkWorker);
    w.drain();
    trace.a0 = w.marked_bytes;
  }
  int used;
  {
    std::unique_lock<Mutex> g(sh.lock);
    sh.helpers_cv.wait(g, [&sh] { return sh.helpers_active == 0; });
    sh.draining = false;
    used = sh.nworkers;
    // The helpers are done (their last marks happened before their count
    // went down under this lock): alone again.
    g_marks_exclusive.store(g_world_stopped, std::memory_order_relaxed);
  }
  g_workers_used = used;
  const std::uint64_t mine = w.marked_bytes;
  w.marked_bytes = 0;
  return mine + sh.marked_bytes.load(std::memory_order_relaxed);
}

}  // namespace

std::uint64_t mark_drain() {
  std::uint64_t marked = drain_with_helpers();
  while (g_overflowed.exchange(false, std::memory_order_relaxed)) {
    g_overflow_rescans.fetch_add(1, std::memory_order_relaxed);
    main_worker().rescan_marked();
    const std::uint64_t pass = drain_with_helpers();
    marked += pass;
    // A pass that scanned every marked object and marked nothing new has
    // closed the marked set: what a mark procedure's dropped entry names
    // was marked already, so scanned by this pass. (Without this, entries
    // a procedure pushes again each time would ask for passes for ever.)
    if (pass == 0) g_overflowed.store(false, std::memory_order_relaxed);
  }
  // A procedure stack grown for one large object is not kept for the life
  // of the process (other workers' go with them at the end of a drain).
  main_worker().release_proc_stack();
  return marked;
}

namespace {

void Worker::mark_written(MSpan* s, std::uintptr_t lo, std::uintptr_t hi) {
  const ScanMode mode = scan_mode(s->kind);
  if (s->is_large()) {
    if (!(s->alloc_bits[0].load(std::memory_order_relaxed) & 1)) return;
    const std::uintptr_t base = s->base;
    // Old (allocated at the first stop) and unmarked: the trace decides.
    const std::atomic<std::uint64_t>* old = s->aux_bits;
    if (old != nullptr && (old[0].load(std::memory_order_relaxed) & 1) &&
        !(s->gc_bits[0].load(std::memory_order_relaxed) & 1))
      return;
    // Marked only now: never scanned, so all of it is queued. Marked
    // before: scanned whole or queued whole already, so the written pages
    // are all that can hold something new.
    if (!mark_bit_set(&s->gc_bits[0], 0)) {
      marked_bytes += s->large_size;
      return queue_contents(s, 0, base, s->large_size);
    }
    std::uintptr_t end = base + s->large_size;
    const TypeInfo* t = nullptr;
    if (mode == ScanMode::kCustom) return queue_contents(s, 0, base, s->large_size);
    if (mode == ScanMode::kTyped) {
      t = s->large_type.load(std::memory_order_relaxed);
      if (t == nullptr) return;
      end = base + t->scan_words() * 8;
    }
    const std::uintptr_t b = std::max(lo, base) & ~std::uintptr_t{7};
    const std::uintptr_t e = std::min(hi, end);
    if (b < e) push({b, e, t, base, RootKind::kHeap});
    return;
  }
  std::size_t i = s->object_index(lo);
  std::size_t last = s->object_index(hi - 1);
  if (last >= s->nelems) last = s->nelems - 1;
  const std::atomic<std::uint64_t>* old = s->aux_bits;
  for (; i <= last && i < s->nelems; i++) {
    const std::size_t w = i / 64;
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    if (!(s->alloc_bits[w].load(std::memory_order_relaxed) & bit)) continue;
    if (s->pending_free[w].load(std::memory_order_relaxed) & bit) continue;
    // An object allocated before the first stop and not marked: whether
    // it lives is the trace's to say (what points to it from a marked
    // object was written after that object's scan, and that page is
    // marked again here). Marking it would keep garbage: the page holds
    // it only because a neighbour was written.
    if (old != nullptr && (old[w].load(std::memory_order_relaxed) & bit) &&
        !(s->gc_bits[w].load(std::memory_order_relaxed) & bit))
      continue;
    const std::uintptr_t base = s->slot_address(i);
    if (!mark_bit_set(&s->gc_bits[w], i % 64)) marked_bytes += s->elem_size;
    queue_contents(s, i, base, s->elem_size);
  }
}

}  // namespace

void mark_written_range(std::uintptr_t begin, std::uintptr_t end) {
  Worker& w = main_worker();
  const MHeap& h = mheap();
  std::uintptr_t p = begin & ~(kPageSize - 1);
  while (p < end) {
    MSpan* s = h.span_of(p);
    if (s == nullptr) {
      p += kPageSize;
      continue;
    }
    const std::uintptr_t span_end = s->base + s->npages * kPageSize;
    const std::uintptr_t lo = std::max(begin, s->base);
    const std::uintptr_t hi = std::min(end, span_end);
    p = span_end;
    const SpanState st = s->state.load(std::memory_order_acquire);
    if (st != SpanState::kSmall && st != SpanState::kLarge) continue;
    if (scan_mode(s->kind) == ScanMode::kNone || lo >= hi) continue;
    w.mark_written(s, lo, hi);
  }
}

namespace {

// Room for a second bitmap per span (MSpan::aux_bits), handed out span by
// span and given back whole: the concurrent mark's alloc-bit copies and
// gccheckmark's mark bits, which never overlap in time.
class AuxBitsRegion {
 public:
  // Room for nspans spans; false when the OS refuses it.
  bool map(std::size_t nspans) {
    words_ = (nspans + 1) * kBitmapWords;
    used_ = 0;
    void* p = mmap(nullptr, words_ * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<std::atomic<std::uint64_t>*>(p);
    return base_ != nullptr;
  }
  // n words for one span, or nullptr when more spans came than counted.
  std::atomic<std::uint64_t>* take(std::size_t n) {
    if (base_ == nullptr || used_ + n > words_) return nullptr;
    std::atomic<std::uint64_t>* bits = base_ + used_;
    used_ += n;
    return bits;
  }
  // Heap lock held (or the world stopped): every span forgets its bits.
  void unmap() {
    if (base_ == nullptr) return;
    mheap().for_each_span_locked([](MSpan* s) { s->aux_bits = nullptr; });
    munmap(base_, words_ * 8);
    base_ = nullptr;
  }

 private:
  std::atomic<std::uint64_t>* base_ = nullptr;
  std::size_t words_ = 0, used_ = 0;
};

AuxBitsRegion g_snapshot;
AuxBitsRegion g_checkmark;

std::size_t count_spans_locked() {
  std::size_t n = 0;
  mheap().for_each_span_locked([&](MSpan*) { n++; });
  return n;
}

}  // namespace

void mark_snapshot_take() {
  // Without the memory, no span gets a snapshot: every object on a
  // written page counts as new (more kept, nothing lost).
  if (!g_snapshot.map(count_spans_locked())) return;
  mheap().for_each_span_locked([](MSpan* s) {
    if (scan_mode(s->kind) == ScanMode::kNone) return;
    const std::size_t n = s->bitmap_words();
    std::atomic<std::uint64_t>* bits = g_snapshot.take(n);
    if (bits == nullptr) return;
    for (std::size_t w = 0; w < n; w++)
      bits[w].store(s->alloc_bits[w].load(std::memory_order_relaxed), std::memory_order_relaxed);
    s->aux_bits = bits;
  });
}

void mark_snapshot_end() { g_snapshot.unmap(); }

void mark_rescan_all_marked() { g_overflowed.store(true, std::memory_order_relaxed); }

std::uint64_t mark_overflow_rescans() { return g_overflow_rescans.load(std::memory_order_relaxed); }

int mark_workers_used() { return g_workers_used; }

std::uint64_t mark_proc_reserve_uses() { return g_proc_reserve_uses.load(std::memory_order_relaxed); }

std::uint64_t mark_proc_conservative_scans() { return g_proc_conservative_scans.load(std::memory_order_relaxed); }

std::uint64_t mark_proc_outside_heap_runs() { return g_proc_outside_heap_runs.load(std::memory_order_relaxed); }

void mark_proc_reserve_bounds(std::uintptr_t* begin, std::uintptr_t* end) {
  *begin = reinterpret_cast<std::uintptr_t>(g_proc_reserve);
  *end = reinterpret_cast<std::uintptr_t>(g_proc_reserve + kProcReserveEntries);
}

std::uint64_t mark_helper_cpu_ns() { return g_helper_cpu_ns.load(std::memory_order_relaxed); }

bool object_marked(std::uintptr_t p) {
  ObjectRef o;
  return locate(p, &o) && o.span->is_marked(o.slot);
}

std::uintptr_t object_base(std::uintptr_t p) {
  ObjectRef o;
  return locate(p, &o) ? o.base : 0;
}

void checkmark_begin() {
  if (!g_checkmark.map(count_spans_locked())) fatal("gccheckmark: cannot map its mark bits");
  mheap().for_each_span_locked([](MSpan* s) {
    s->aux_bits = g_checkmark.take(kBitmapWords);
    if (s->aux_bits == nullptr) fatal("gccheckmark: more spans than counted");
  });
  g_checking = true;
}

void checkmark_end() {
  g_checking = false;
  g_checkmark.unmap();
}

}  // namespace mgc::internal
