// mallocgc: a garbage-collected heap for C and C++ on the design of Go's
// runtime allocator. This is the C++ API; mallocgc.h is the C API with the
// same meaning.
//
//   #include <mallocgc/mallocgc.hpp>
//
//   struct Node { Node* next; long value; };
//   Node* n = mgc::make<Node>(nullptr, 42);     // conservatively scanned
//   char* s = static_cast<char*>(mgc::alloc_noscan(100));  // never scanned
//   mgc::Type pair_type(16, {0, 8});            // two pointer words
//   void* pair = mgc::alloc_typed(pair_type);   // scanned by its pointer bits
//   mgc::free(s);                               // optional explicit free
//
// Every allocation returns zeroed memory; objects of 16 bytes or more are
// 16-byte aligned. A size that cannot be satisfied (overflow, or the OS
// refusing memory) returns nullptr from the raw calls; make<T> throws
// std::bad_alloc instead.
//
// The collector finds objects that nothing reaches any more and reclaims
// them (stop-the-world parallel mark, lazy sweep, Go's GOGC pacing). What it
// scans for pointers: the stacks, saved registers and static thread-local
// storage of registered threads (a thread registers at its first
// allocation, or with mgc::ThreadScope), the writable data of the program
// and of its shared libraries, ranges given to add_roots, and the heap's
// own conservative and typed objects. Memory from the system malloc is
// NOT scanned: keep heap pointers in collected memory (mgc::allocator for
// standard containers) or in a registered root range.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include "mallocgc/internal/fast_path.hpp"

namespace mgc {

// A layout for typed allocation: the object's size and the byte offsets of
// its pointer words (each a multiple of 8 and below size). The layout is
// interned for the life of the process, so a Type may be a temporary and
// objects allocated with it stay valid after it is gone.
//
//   mgc::Type t(24, {0, 16});   // words 0 and 2 are pointers, word 1 is not
//
// Throws std::invalid_argument for size 0, an offset that is not a
// multiple of 8 or not below size; std::bad_alloc when the size overflows.
class Type {
 public:
  Type(std::size_t size, std::initializer_list<std::size_t> pointer_offsets)
      : Type(size, pointer_offsets.begin(), pointer_offsets.size()) {}
  Type(std::size_t size, const std::size_t* pointer_offsets, std::size_t count);
  explicit Type(const internal::TypeInfo* info);

  std::size_t size() const { return size_; }
  const internal::TypeInfo* info() const { return info_; }

 private:
  friend void* alloc_typed(const Type&);
  const internal::TypeInfo* info_;
  std::size_t size_;
  std::uint32_t elem_size_;   // the size class's object size, or 0
  std::uint32_t span_class_;  // typed span class, or 0: not inline-able
};

// Allocate size bytes, conservatively scanned: every aligned word may be a
// pointer. Returns nullptr when size overflows or memory is exhausted.
[[gnu::always_inline]] inline void* alloc(std::size_t size) {
  return internal::alloc_kind<internal::Kind::kConservative>(size);
}

// Allocate size bytes that are never scanned (strings, numbers, pixels):
// the collector will not look for pointers in them. Objects under 16 bytes
// come from the tiny allocator.
[[gnu::always_inline]] inline void* alloc_noscan(std::size_t size) {
  return internal::alloc_kind<internal::Kind::kNoscan>(size);
}

// Allocate one object of type t; its pointer bits are recorded so that only
// the words t names are scanned.
[[gnu::always_inline]] inline void* alloc_typed(const Type& t) {
  if (t.span_class_ == 0) {
    internal::debug_enter_slow();
    return internal::alloc_typed_slow(t.info_);
  }
  return internal::typed_alloc(t.info_, static_cast<int>(t.span_class_), t.elem_size_);
}

// Free an object now (optional: Boehm's GC_FREE). p must be the start of a
// live object allocated here, from any thread; nullptr is ignored. Anything
// else (an interior or foreign pointer, a double free) aborts the program
// with a message that names the address.
void free(void* p);

// Construct a T in collected memory: noscan for arithmetic and enum types
// and arrays of them, conservatively scanned otherwise. alignof(T) is
// honoured up to a page. Throws std::bad_alloc when memory is exhausted.
template <class T, class... A>
T* make(A&&... args) {
  using Elem = std::remove_all_extents_t<T>;
  constexpr bool noscan = std::is_arithmetic_v<Elem> || std::is_enum_v<Elem>;
  constexpr internal::Kind kind = noscan ? internal::Kind::kNoscan : internal::Kind::kConservative;
  static_assert(alignof(T) <= internal::kPageSize, "mgc::make honours alignment up to a page");
  void* p;
  if constexpr (alignof(T) > 16) {
    p = internal::alloc_aligned(sizeof(T), alignof(T), kind);
  } else if constexpr (noscan) {
    p = alloc_noscan(sizeof(T));
  } else {
    p = alloc(sizeof(T));
  }
  if (p == nullptr) throw std::bad_alloc();
  if constexpr (std::is_array_v<T>) {
    static_assert(sizeof...(A) == 0, "mgc::make of an array takes no arguments");
    if constexpr (!std::is_trivially_default_constructible_v<Elem>) {
      try {
        ::new (p) T();
      } catch (...) {
        mgc::free(p);
        throw;
      }
    }
    return std::launder(static_cast<T*>(p));
  } else {
    try {
      return ::new (p) T(std::forward<A>(args)...);
    } catch (...) {
      mgc::free(p);
      throw;
    }
  }
}

// --- the collector ---------------------------------------------------------

// Run a full collection now and sweep what it found (Go: runtime.GC). Spans
// that other threads' caches hold are swept when those threads next reach
// a slow path. Finalizers it queues run later, on the finalizer thread.
void collect();

// Return as much memory to the OS as possible now (Go:
// debug.FreeOSMemory): a full collection as collect() does, then every free
// page of the heap is released (madvise MADV_DONTNEED), whatever the
// background scavenger's goal. Returns the bytes newly released. The
// memory stays reserved; reusing it costs page faults and no zeroing.
//
//   drop_big_cache();
//   mgc::release_memory();   // RSS falls to about the live heap
std::size_t release_memory();

// Heap profiling (Go: runtime.MemProfileRate and pprof.WriteHeapProfile).
// On average one allocation per rate bytes is sampled with its call stack
// (MALLOCGC_MEMPROFILERATE, default 512 KiB; 0: off; 1: every
// allocation); set_memprofile_rate changes the rate from the next sample
// on (a negative value only asks) and returns the previous one.
// write_heap_profile writes what was sampled to path as a gzipped pprof
// profile (alloc_objects, alloc_space, inuse_objects, inuse_space, scaled
// to estimates of the whole heap as Go scales them); in-use figures are as
// of the last collection and the explicit frees since. false (errno set)
// when the file cannot be written. MALLOCGC_HEAPPROFILE=path writes one at
// exit.
//
//   mgc::write_heap_profile("heap.pb.gz");
//   // $ go tool pprof -top ./program heap.pb.gz
std::int64_t set_memprofile_rate(std::int64_t bytes);
bool write_heap_profile(const char* path);
// The collector's timeline, as Chrome trace-event JSON that Perfetto
// (ui.perfetto.dev) and chrome://tracing open: every cycle, its stops of
// the world, each mark worker's drain (one row per thread), sweeping in
// batches (background sweeper, allocating threads, cache flushes), the
// scavenger. MALLOCGC_TRACE=path records from the first allocation and
// writes path at exit; start_trace() records from now. Recording keeps the
// newest 131,072 events (6 MiB) and costs nothing while off. write_trace
// writes what is recorded so far (recording goes on); false with errno set
// when the file cannot be written. Safe from any thread, not from a
// finalizer or signal handler of the collector.
//
//   mgc::start_trace();
//   run_workload();
//   mgc::write_trace("gc.json");   // open in ui.perfetto.dev
bool start_trace();
void stop_trace();
bool write_trace(const char* path);

// GOGC: start a cycle when the heap has grown by percent% over what the last
// mark found live (at least a 4 MiB goal). A negative value turns automatic
// collection off (Go: GOGC=off), unless the memory limit is near. Returns
// the previous setting (-1 for off).
int set_gc_percent(int percent);

// A soft limit on the heap in bytes (Go: GOMEMLIMIT): cycles start earlier
// so the heap stays under it if the live data allows. When it does not
// (live data near or over the limit), the GC CPU limiter keeps collection
// at about half the process's CPU after a burst of one CPU-second: cycles
// are put off and the heap grows past the limit meanwhile, as in Go
// (Stats::gc_cpu_limited counts them). A negative value leaves the limit
// unchanged; INT64_MAX means no limit. Returns the previous limit.
std::int64_t set_memory_limit(std::int64_t bytes);

// Scan [begin, end) as a root range, word by word, until remove_roots is
// called with the same range. For heap pointers kept in memory the
// collector does not otherwise see (system malloc, mmap). Overlapping and
// repeated ranges are allowed; each add needs its remove. Aborts on an
// empty or inverted range, or on removing a range never added.
void add_roots(void* begin, void* end);
void remove_roots(void* begin, void* end);

// Run fn(obj, data) once, on the finalizer thread, after obj (the start of
// a live heap object) is found unreachable; obj and what it reaches stay
// alive for the call, and obj is reclaimed at a later cycle if the call did
// not make it reachable again. data is kept alive while the finalizer is
// set. fn == nullptr removes obj's finalizer; setting a second one replaces
// the first. As in Go: finalizers of objects that reach each other in a
// cycle never run, and an object's finalizer keeps what it points to alive
// for one more cycle. mgc::free(obj) drops its finalizer without running
// it. Aborts if obj is not the start of a live object; throws
// std::bad_alloc, with nothing changed, when the finalizer table cannot
// grow (C: mgc_set_finalizer returns 0 then, else 1).
void set_finalizer(void* obj, void (*fn)(void* obj, void* data), void* data);

// Block until every finalizer queued before the call has returned. When
// the finalizer thread cannot run (no memory for its record, no thread to
// be had), the calling thread runs them.
void wait_for_finalizers();

// Register the calling thread for as long as the scope lives: its stack,
// registers and thread-local storage become roots. A thread registers
// itself at its first allocation (until it exits); threads that hold heap
// pointers without allocating need a ThreadScope (C:
// mgc_register_thread). Scopes nest. Throws std::bad_alloc when there is no
// memory for the thread's record (nothing registered then).
class ThreadScope {
 public:
  ThreadScope();
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;
};

namespace internal {
struct WeakHandle;
WeakHandle* weak_create(const void* p);  // p in a live object; nullptr for nullptr
void* weak_get(const WeakHandle* h);
void weak_destroy(WeakHandle* h);
}  // namespace internal

// A weak reference: get() returns the pointer given at construction while
// its object is reachable, and nullptr from the moment a collection finds
// the object unreachable (before the object's finalizer, if any, runs; a
// finalizer that resurrects the object does not bring the reference back).
// The handle itself lives outside the heap; copies share nothing.
template <class T>
class Weak {
 public:
  Weak() = default;
  explicit Weak(T* p) : h_(internal::weak_create(p)) {}
  Weak(const Weak& o) : h_(internal::weak_create(o.get())) {}
  Weak(Weak&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Weak& operator=(Weak o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  ~Weak() {
    if (h_ != nullptr) internal::weak_destroy(h_);
  }
  T* get() const { return h_ == nullptr ? nullptr : static_cast<T*>(internal::weak_get(h_)); }

 private:
  internal::WeakHandle* h_ = nullptr;
};

// Statistics of one size class.
struct SizeClassStats {
  std::size_t size = 0;       // bytes per object
  std::uint64_t mallocs = 0;  // cumulative objects allocated
  std::uint64_t frees = 0;    // cumulative objects freed
};

// A snapshot in the spirit of Go's runtime.MemStats. Counts of the calling
// thread are exact; another thread's allocations are published at its slow
// paths, so they may lag by at most one cached chunk (64 objects) per size
// class until that thread next refills or exits.
struct Stats {
  std::uint64_t heap_alloc = 0;     // bytes in allocated objects
  std::uint64_t heap_objects = 0;   // allocated objects
  std::uint64_t heap_sys = 0;       // bytes of heap memory committed from the OS
  std::uint64_t heap_reserved = 0;  // bytes of address space reserved for the heap
  std::uint64_t heap_inuse = 0;     // bytes in spans that hold objects
  std::uint64_t heap_idle = 0;      // committed bytes in free page runs
  std::uint64_t heap_released = 0;  // of heap_idle, bytes returned to the OS (Go's HeapReleased)
  std::uint64_t mallocs = 0;        // cumulative objects allocated
  std::uint64_t frees = 0;          // cumulative objects freed
  std::uint64_t large_mallocs = 0;  // of mallocs, objects above kMaxSmallSize
  std::uint64_t large_frees = 0;    // of frees, objects above kMaxSmallSize
  std::uint64_t tiny_mallocs = 0;   // of mallocs, tiny objects (noscan, under 16 bytes)
  std::uint64_t tiny_frees = 0;     // of frees, tiny objects
  std::uint64_t num_threads = 0;    // threads with an allocation cache
  // The collector (Go's MemStats names). Pauses are stop-the-world times.
  std::uint64_t num_gc = 0;                // completed cycles
  std::uint64_t heap_goal = 0;             // heap size at which the next cycle starts
  std::uint64_t next_gc = 0;               // = heap_goal (Go's name)
  std::uint64_t heap_live_after_mark = 0;  // bytes the last mark found reachable
  // Bytes of root ranges the last mark scanned: stacks, registers,
  // thread-local and global data, explicit roots. The goal counts them:
  // live + (live + roots) x GOGC/100 (Go's rule since 1.18).
  std::uint64_t gc_roots_bytes = 0;
  std::uint64_t pause_total_ns = 0;  // all pauses, ever
  // The last 256 pauses, ns, as a ring: the latest is at
  // [(num_gc + 255) % 256] (Go: PauseNs).
  std::array<std::uint64_t, 256> pause_ns{};
  double gc_cpu_fraction = 0;  // collector CPU time / process CPU time since start
  // Cycles the GC CPU limiter put off: the memory limit held the goal low
  // and collection had taken over half the CPU (see set_memory_limit).
  std::uint64_t gc_cpu_limited = 0;
  // Cycles whose mark ran beside the program between two short stops
  // (MALLOCGC_DEBUG=gcstoptheworld=0), and how the collector finds the
  // pages the program wrote meanwhile: "userfaultfd", "mprotect" (the
  // fallback, MALLOCGC_DEBUG=dirtypages=...), or "none" (marking then stops
  // the world).
  std::uint64_t num_concurrent_gc = 0;
  const char* gc_write_tracking = "none";
  // Time allocating threads waited for a cycle another thread ran, in
  // total and the longest wait: not pauses of the world, but a thread's
  // stall all the same (in the mostly-concurrent mode: the heap reached
  // its goal before the mark ended; Go's threads would help mark instead).
  std::uint64_t gc_stall_total_ns = 0;
  std::uint64_t gc_stall_max_ns = 0;
  // Per size class, objects other than tiny ones ([0] unused). heap_alloc
  // counts a tiny object's whole 16-byte block while any object in it lives
  // and, empty or not, each thread's current tiny block.
  std::array<SizeClassStats, internal::kNumSizeClasses> by_size{};
};

Stats stats();

// The object kinds, as find_object reports them.
enum class ObjectKind { noscan, conservative, typed };

struct ObjectInfo {
  void* base = nullptr;  // first byte of the object
  std::size_t size = 0;  // bytes of its slot (size class), or the large span's bytes
  ObjectKind kind = ObjectKind::noscan;
};

// Is p inside an allocated object of this heap, and which? Constant time,
// no lock. A tiny object reports its whole 16-byte block. A slot that some
// thread's cache has reserved but not handed out yet counts as allocated.
bool find_object(const void* p, ObjectInfo* info);

// Standard-library allocator whose memory is collected and conservatively
// scanned: std::vector<Node*, mgc::allocator<Node*>> keeps its elements
// reachable for the collector. deallocate frees at once.
template <class T>
struct allocator {
  using value_type = T;
  allocator() noexcept = default;
  template <class U>
  allocator(const allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    void* p = alignof(T) > 16 ? internal::alloc_aligned(n * sizeof(T), alignof(T), internal::Kind::kConservative)
                              : alloc(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { mgc::free(p); }

  template <class U>
  friend bool operator==(const allocator&, const allocator<U>&) noexcept {
    return true;
  }
};

}  // namespace mgc
