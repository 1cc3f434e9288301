// Boehm's collector control on the core: initialisation (GC_init, implicit
// at the first allocation, Boehm's GC_* environment variables), explicit
// and disabled collection, pacing (GC_free_space_divisor as GOGC), the hard
// heap limit and expansion, collection events and callbacks, statistics.
//
// Pacing: Boehm allocates about N / GC_free_space_divisor bytes between
// collections, N being twice the traced bytes (plus untraced ones and the
// roots); the core's GOGC lets the heap grow by GOGC% of what the last mark
// found live. For a heap of traced objects the two agree when
// GOGC = 200 / divisor: Boehm's default divisor 3 is GOGC 66, divisor 2 is
// GOGC 100, divisor 1 GOGC 200. MALLOCGC_GOGC, when set, overrides the
// mapping.
//
// The face's hooks are installed when the library is loaded (a
// constructor): which cycles may run (GC_dont_gc, GC_alloc_lock, the stop
// function), the events, the program's extra roots, where finalizers run.
#include "runtime/collect.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "compat/boehm/boehm.hpp"
#include "gc/collector.hpp"
#include "gc/mark.hpp"
#include "gc/pacer.hpp"
#include "gc/roots.hpp"
#include "gc/scavenger.hpp"
#include "gc/specials.hpp"
#include "gc/threads.hpp"
#include "heap/mcentral.hpp"
#include "heap/mheap.hpp"
#include "os/dirty_pages.hpp"
#include "os/fatal.hpp"
#include "runtime/options.hpp"
#include "runtime/thread_cache.hpp"

namespace mgc::internal::boehm {

std::size_t g_extra_bytes = 1;
std::atomic<bool> g_initialized{false};
__thread bool tls_holds_alloc_lock __attribute__((tls_model("initial-exec")));

// Defined in the face's other files.
void install_root_hooks();
void push_program_roots();
void toggleref_before_mark();
void toggleref_after_mark();
void thread_events(GC_EventType e);

namespace {

std::once_flag g_init_once;
int g_log_fd = 2;
bool g_print_stats = false;

// Settings that wait for initialisation or that the getters return.
unsigned g_markers_requested = 0;  // GC_set_markers_count; 0: one per CPU
GC_word g_applied_divisor = 0;     // the divisor the pacer last got
bool g_gogc_from_environment = false;
// GC_enable_incremental took effect (the mostly-concurrent mode is on).
std::atomic<bool> g_incremental{false};

// Boehm's incremental mode on the core: the mostly-concurrent mark (see
// GC_enable_incremental). Refused, as Boehm refuses, with GC_dont_gc set
// or GC_DISABLE_INCREMENTAL in the environment.
void enable_incremental() {
  if (GC_dont_gc != 0 || std::getenv("GC_DISABLE_INCREMENTAL") != nullptr) return;
  set_concurrent_mark(true);
  g_incremental.store(true, std::memory_order_relaxed);
}
GC_stop_func g_default_stop_func = nullptr;
__thread bool tls_explicit_collection __attribute__((tls_model("initial-exec")));
GC_start_callback_proc g_start_callback = nullptr;
GC_on_collection_event_proc g_event_proc = nullptr;
std::atomic<std::size_t> g_max_heap_size{0};
std::atomic<int> g_disable_automatic{0};
unsigned long g_time_limit_ns = 0;
int g_rate = 10, g_max_prior_attempts = 1;
std::size_t g_min_bytes_allocd = 1;
GC_word g_allocd_bytes_per_finalizer = 10000;
int g_force_unmap = 0, g_manual_vdb = 0, g_pages_executable = 0;

// Statistics a cycle leaves for the getters.
std::uint64_t g_live_before_mark = 0;
std::atomic<std::uint64_t> g_reclaimed_last{0}, g_reclaimed_before{0};
std::atomic<std::uint64_t> g_total_at_last_gc{0};
std::atomic<std::uint64_t> g_full_gc_ms{0};
std::atomic<bool> g_measuring{false};
std::uint64_t g_cycle_start_ns = 0;
std::atomic<std::size_t> g_queued_at_start{0};
// A cycle queued finalizers and the program's notifier has not heard of it.
std::atomic<bool> g_notify_pending{false};

std::uint64_t now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1000000000u + static_cast<std::uint64_t>(t.tv_nsec);
}

// GOGC for a free space divisor (see the top of the file).
int gogc_for_divisor(GC_word divisor) { return divisor == 0 ? 200 : static_cast<int>(200 / divisor); }

void apply_divisor() {
  const GC_word d = GC_free_space_divisor;
  if (d == g_applied_divisor || g_gogc_from_environment) return;
  g_applied_divisor = d;
  pacer_set_gc_percent(gogc_for_divisor(d));
}

void update_heap_bounds() {
  std::uintptr_t lo, hi;
  mheap().bounds(&lo, &hi);
  if (lo >= hi) return;
  GC_least_plausible_heap_addr = reinterpret_cast<void*>(lo);
  GC_greatest_plausible_heap_addr = reinterpret_cast<void*>(hi - 1);
}

// Boehm's GC_parse_mem_size_arg: digits, then at most one of k, M, G.
// 0 for anything else.
std::size_t parse_mem_size(const char* s) {
  if (*s == '\0') return 0;
  char* end;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || errno != 0) return 0;
  if (*end == '\0') return v;
  if (end[1] != '\0') return 0;
  switch (*end) {
    case 'k':
    case 'K':
      return v << 10;
    case 'm':
    case 'M':
      return v << 20;
    case 'g':
    case 'G':
      return v << 30;
    default:
      return 0;
  }
}

// A positive int, or 0 when s is not one.
int parse_positive(const char* s) {
  char* end;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v <= 0 || v > 1 << 30) return 0;
  return static_cast<int>(v);
}

// Boehm's environment variables. A malformed value is a warning (through
// the warn proc, as Boehm's) and is otherwise ignored.
void read_environment() {
  if (std::getenv("GC_PRINT_STATS") != nullptr || std::getenv("GC_PRINT_VERBOSE_STATS") != nullptr)
    g_print_stats = true;
  if (const char* name = std::getenv("GC_LOG_FILE")) {
    const int fd = open(name, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      g_log_fd = fd;
    } else {
      warn("GC Warning: Failed to open log file %s\n", reinterpret_cast<GC_word>(name));
    }
  }
  if (std::getenv("GC_DONT_GC") != nullptr) GC_dont_gc = 1;
  if (std::getenv("GC_FIND_LEAK") != nullptr) GC_find_leak = 1;
  if (std::getenv("GC_ALL_INTERIOR_POINTERS") != nullptr) GC_all_interior_pointers = 1;
  if (const char* s = std::getenv("GC_FREE_SPACE_DIVISOR")) {
    if (const int d = parse_positive(s)) {
      GC_free_space_divisor = static_cast<GC_word>(d);
    } else {
      warn("GC Warning: Bad free space divisor %s - ignoring it.\n", reinterpret_cast<GC_word>(s));
    }
  }
  if (const char* s = std::getenv("GC_MARKERS")) {
    const int n = parse_positive(s);
    if (n == 0 || n > 64) {
      warn("GC Warning: Too big or invalid number of mark threads: %s; using the default\n",
           reinterpret_cast<GC_word>(s));
    } else {
      g_markers_requested = static_cast<unsigned>(n);
    }
  } else if (const char* p = std::getenv("GC_NPROCS")) {
    const int n = parse_positive(p);
    if (n == 0) {
      warn("GC Warning: Bad processor count %s - ignoring it.\n", reinterpret_cast<GC_word>(p));
    } else if (g_markers_requested == 0) {
      g_markers_requested = static_cast<unsigned>(n > 64 ? 64 : n);
    }
  }
  std::size_t initial = 0;
  if (const char* s = std::getenv("GC_INITIAL_HEAP_SIZE")) {
    initial = parse_mem_size(s);
    if (initial == 0) warn("GC Warning: Bad initial heap size %s - ignoring it.\n", reinterpret_cast<GC_word>(s));
  }
  if (const char* s = std::getenv("GC_MAXIMUM_HEAP_SIZE")) {
    const std::size_t max = parse_mem_size(s);
    if (max == 0 || max < initial) {
      warn("GC Warning: Bad maximum heap size %s - ignoring it.\n", reinterpret_cast<GC_word>(s));
    } else {
      if (GC_max_retries == 0) GC_max_retries = 2;
      GC_set_max_heap_size(max);
    }
  }
  if (initial != 0) {
    const std::size_t have = GC_get_heap_size();
    if (initial > have && !mheap().expand(initial - have))
      warn("GC Warning: Cannot expand the heap to the initial size %lu\n", static_cast<GC_word>(initial));
  }
}

void print_stats_line() {
  const HeapPageStats ps = mheap().page_stats();
  log_printf("GC #%lu: %lu KiB live after mark, %lu KiB reclaimed, heap %lu KiB (%lu KiB free)\n",
             static_cast<unsigned long>(GC_gc_no), static_cast<unsigned long>(pacer_last_live() >> 10),
             static_cast<unsigned long>(g_reclaimed_last.load() >> 10),
             static_cast<unsigned long>(ps.committed_bytes >> 10), static_cast<unsigned long>(ps.free_bytes >> 10));
}

// --- hooks --------------------------------------------------------------------

bool may_collect() {
  if (GC_dont_gc != 0 || tls_holds_alloc_lock) return false;
  // An explicit collection checked its own stop function.
  if (tls_explicit_collection) return true;
  if (g_disable_automatic.load(std::memory_order_relaxed) != 0) return false;
  GC_stop_func stop = g_default_stop_func;
  return stop == nullptr || stop() == 0;
}

void on_event(GcEvent e) {
  const auto be = static_cast<GC_EventType>(static_cast<int>(e));
  switch (e) {
    case GcEvent::kStart:
      if (GC_start_callback_proc cb = g_start_callback) cb();
      apply_divisor();
      set_java_finalization(GC_java_finalization != 0);
      toggleref_before_mark();
      g_cycle_start_ns = now_ns();
      g_queued_at_start.store(g_finalizers_queued.load());
      break;
    case GcEvent::kMarkStart:
      g_live_before_mark = mheap().live();
      update_heap_bounds();
      break;
    case GcEvent::kMarkEnd:
      toggleref_after_mark();
      break;
    case GcEvent::kPostStopWorld:
      thread_events(GC_EVENT_THREAD_SUSPENDED);
      break;
    case GcEvent::kPreStartWorld:
      thread_events(GC_EVENT_THREAD_UNSUSPENDED);
      break;
    case GcEvent::kEnd: {
      const std::uint64_t live = pacer_last_live();
      const std::uint64_t reclaimed = g_live_before_mark > live ? g_live_before_mark - live : 0;
      g_reclaimed_before.fetch_add(g_reclaimed_last.exchange(reclaimed));
      g_total_at_last_gc.store(mheap().total_allocated());
      g_freed_since_gc.store(0);
      GcStats st;
      gc_stats(&st);
      GC_gc_no = st.num_gc;
      if (g_measuring.load()) g_full_gc_ms.fetch_add((now_ns() - g_cycle_start_ns) / 1000000);
      if (g_print_stats) print_stats_line();
      // Finalizers run on demand: the program hears that this cycle queued
      // some (Boehm: at most once per cycle) from the collecting thread once
      // it is out of the allocator (notify_or_invoke_finalizers): a cycle
      // may run inside an allocation's slow path, and guile's notifier
      // allocates.
      if (g_finalizers_queued.load() > g_queued_at_start.load()) g_notify_pending.store(true);
      break;
    }
    default:
      break;
  }
  if (GC_on_collection_event_proc p = g_event_proc) p(be);
}

void on_heap_growth(std::size_t committed) {
  update_heap_bounds();
  if (GC_on_heap_resize_proc p = GC_on_heap_resize) p(committed);
}

// The calling thread's chunks loaded since its cache last added them to
// the heap's counts (MCache::live_pending): in the figures it reads, as
// Boehm's own allocations are in its.
void flush_own_live() {
  if (MCache* c = this_cache_if_any()) c->flush_live();
}

void on_fatal(const char* line) {
  if (GC_abort_func f = GC_on_abort) f(line);
}

void caller_finalizer_hook() { notify_or_invoke_finalizers(); }

__thread bool tls_initializing __attribute__((tls_model("initial-exec")));

void do_init() {
  tls_initializing = true;
  ensure_options();  // its first-use hook comes back to first_use()
  read_environment();
  g_extra_bytes = GC_all_interior_pointers != 0 ? 1 : 0;
  g_gogc_from_environment = std::getenv("MALLOCGC_GOGC") != nullptr;
  apply_divisor();
  // Boehm unmaps only inside a collection, so its heap size and unmapped
  // bytes hold still between two calls when no cycle runs; programs (and
  // tests) compare them. A background scavenger would change them at any
  // moment: here pages go back to the OS when the program asks
  // (GC_gcollect_and_unmap, GC_set_force_unmap_on_gcollect), and in the
  // background only with MALLOCGC_SCAVENGE=1. At each cycle's end, in the
  // collecting thread, what is retained beyond the goal goes back, as
  // Boehm unmaps at its collections (guile's bignums held 8 MiB resident
  // for a goal of 4 without it).
  if (std::getenv("MALLOCGC_SCAVENGE") == nullptr) {
    set_background_scavenge(false);
    set_cycle_release(true);
  }
  // Boehm collects when its heap is full, not before: it uses the room a
  // peak left, all of it (the pacer's cap, the highest goal the live heap
  // itself set, keeps the heap bounded when free slots are stranded in
  // size classes no longer used). Three quarters of it cost guile's
  // binary-trees 406 cycles to Boehm's 241; all of it, 320, at the same
  // peak RSS.
  pacer_set_heap_fill(1000);
  // Boehm's first collections come when its 64 KiB heap fills; the core's
  // 4 MiB first goal would let a small program (chase, mmv) reach a peak
  // resident size twice Boehm's before its first cycle.  256 KiB costs a
  // few early cycles of a tiny heap, which are cheap.
  pacer_set_min_goal(std::uint64_t{1} << 18);
  if (g_markers_requested != 0) {
    GcConfig c = gc_config();
    c.mark_threads = static_cast<int>(g_markers_requested);
    set_gc_config(c);
  }
  {
    const int n =
        gc_config().mark_threads > 0 ? gc_config().mark_threads : static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    GC_parallel = n > 1 ? n - 1 : 0;
  }
  // The initialising thread is Boehm's primordial one: registered for good.
  // Without memory for its record it is not yet, which is safe while it
  // holds no heap pointer: its first allocation registers it first, or
  // fails as an allocation.
  if (this_thread_record() == nullptr) register_thread_scope();
  std::uintptr_t lo, hi;
  if (GC_stackbottom == nullptr && current_stack_bounds(&lo, &hi)) GC_stackbottom = reinterpret_cast<char*>(hi);
  // Boehm starts with a heap (64 KiB); the core's smallest growth is 2 MiB.
  if (mheap().page_stats().committed_bytes == 0) mheap().expand(64 * 1024);
  // Boehm's programs count on cycles coming only from allocation calls and
  // on a world that stops at once (a pointer-free list from
  // GC_generic_malloc_many, whose links the mark never follows, is safe
  // while the program walks it and stores each object where it is seen):
  // the mostly-concurrent mode's background cycles would break both, so
  // the Boehm face stops the world for every mark unless the program asks
  // for Boehm's incremental mode (GC_enable_incremental, or
  // GC_ENABLE_INCREMENTAL in the environment as Boehm reads it here).
  set_concurrent_mark(false);
  if (std::getenv("GC_ENABLE_INCREMENTAL") != nullptr) enable_incremental();
  g_initialized.store(true, std::memory_order_release);
  tls_initializing = false;
  // Boehm collects once as part of initialisation ("empty GCs at startup"
  // count in GC_gc_no) unless told not to.
  if (GC_dont_precollect == 0 && GC_dont_gc == 0) {
    tls_explicit_collection = true;
    collect_now();
    tls_explicit_collection = false;
  }
  update_heap_bounds();
}

// The core's first-use hook: a program that allocates before GC_init.
void first_use() {
  if (!tls_initializing) init_once();
}

// Installed when libgc.so.1 is loaded, before the program can allocate.
[[gnu::constructor]] void install_face() {
  GcHooks h;
  h.may_collect = may_collect;
  h.on_event = on_event;
  h.push_roots = push_program_roots;
  set_gc_hooks(h);
  set_fork_extra_locks(
      [] {
        lock_togglerefs();
        lock_free_lists();
        lock_layouts();
      },
      [] {
        unlock_layouts();
        unlock_free_lists();
        unlock_togglerefs();
      });
  set_finalizer_policy(FinalizerPolicy::kCaller, caller_finalizer_hook);
  mheap().set_growth_hook(on_heap_growth);
  set_fatal_hook(on_fatal);
  set_first_use_hook(first_use);
  install_root_hooks();
  // Boehm internals no program reads: not roots.
  exclude_from_roots(GC_arrays, GC_arrays + sizeof GC_arrays);
}

// A collection the program asked for (GC_gcollect and friends); false when
// it did not run.
// After a collection the program asked to unmap: every free page goes
// back to the OS.
void release_free_pages() {
  reclaim_empty_spans();
  scavenge_all();
}

bool explicit_collection() {
  ensure_init();
  if (GC_dont_gc != 0) return false;
  notify_or_invoke_finalizers();
  tls_explicit_collection = true;
  const bool ran = collect_now();
  tls_explicit_collection = false;
  if (ran) notify_or_invoke_finalizers();
  return ran;
}

}  // namespace

void init_once() { std::call_once(g_init_once, do_init); }

void* default_oom_fn(std::size_t) { return nullptr; }

int log_fd() { return g_log_fd; }
void set_log_fd(int fd) { g_log_fd = fd; }
bool print_stats() { return g_print_stats; }

void log_printf(const char* format, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, format);
  const int n = std::vsnprintf(buf, sizeof buf, format, ap);
  va_end(ap);
  if (n <= 0) return;
  const std::size_t len = static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1;
  const ssize_t w = write(g_log_fd, buf, len);
  (void)w;
}

void notify_or_invoke_finalizers() {
  if (g_finalizers_queued.load(std::memory_order_relaxed) == 0) return;
  if (GC_finalize_on_demand == 0) {
    run_queued_finalizers();
    return;
  }
  if (g_notify_pending.load(std::memory_order_relaxed) && g_notify_pending.exchange(false))
    if (GC_finalizer_notifier_proc n = GC_finalizer_notifier) n();
}

}  // namespace mgc::internal::boehm

using namespace mgc::internal;
using namespace mgc::internal::boehm;

extern "C" {

void GC_init(void) { init_once(); }
int GC_is_init_called(void) { return g_initialized.load(std::memory_order_acquire) ? 1 : 0; }
// The core's threads and memory live as long as the process.
void GC_deinit(void) {}
unsigned GC_get_version(void) { return (8u << 16) | (2u << 8) | 2u; }

void GC_gcollect(void) {
  if (explicit_collection() && g_force_unmap != 0) release_free_pages();
}

// Boehm unmaps the free blocks; here every free page is released to the
// OS (mgc::release_memory's second half).
void GC_gcollect_and_unmap(void) {
  if (explicit_collection()) release_free_pages();
}

int GC_try_to_collect(GC_stop_func stop) {
  ensure_init();
  if (stop != nullptr && stop() != 0) return 0;
  return explicit_collection() ? 1 : 0;
}

void GC_set_stop_func(GC_stop_func f) { g_default_stop_func = f; }
GC_stop_func GC_get_stop_func(void) { return g_default_stop_func; }

// No incremental mode: a little collection is a whole one, when the pacer
// asks for it; 0 says there is nothing left to do.
int GC_collect_a_little(void) {
  ensure_init();
  if (pacer_should_collect()) GC_gcollect();
  return 0;
}

// As in Boehm, under the allocation lock: a cycle that is running
// finishes first, and none starts once this returns (a cycle re-checks
// GC_dont_gc under the lock). guile counts on it while it builds a thread.
void GC_disable(void) {
  with_cycles_excluded([] { __atomic_fetch_add(&GC_dont_gc, 1, __ATOMIC_RELAXED); });
}

void GC_enable(void) {
  if (__atomic_sub_fetch(&GC_dont_gc, 1, __ATOMIC_RELAXED) < 0) {
    __atomic_fetch_add(&GC_dont_gc, 1, __ATOMIC_RELAXED);
    fatal("GC_enable: collection was not disabled");
  }
  pacer_recompute();
}

int GC_is_disabled(void) { return GC_dont_gc != 0; }

// The collector stops the world for a whole cycle; there is no
// incremental or generational mode to turn on (Boehm ignores the call
// where its platform has none either).
// Boehm's incremental mode: marking between allocations, dirty pages
// found by mprotect. Here: the core's mostly-concurrent mark (two short
// stops, the mark on a background worker beside the program, written
// pages found by userfaultfd, or by mprotect where it is missing). What a
// program of Boehm's incremental mode must already allow holds here too:
// a cycle's stops may come at any point of a thread's run, not only in
// allocation calls, and objects in a program's own free lists from
// GC_malloc_many must be reachable or marked (gc_inline.h's rule).
void GC_enable_incremental(void) {
  ensure_init();
  enable_incremental();
}
int GC_is_incremental_mode(void) { return g_incremental.load(std::memory_order_relaxed) ? 1 : 0; }
// With userfaultfd the kernel resolves writes to protected pages, system
// calls included: nothing for the program to know. The mprotect fallback
// protects pages of traced kinds only (Boehm's GC_PROTECTS_POINTER_HEAP).
int GC_incremental_protection_needs(void) {
  return g_incremental.load(std::memory_order_relaxed) && std::strcmp(os::dirty_tracking_name(), "mprotect") == 0
             ? 1   // GC_PROTECTS_POINTER_HEAP
             : 0;  // GC_PROTECTS_NONE
}
void GC_start_incremental_collection(void) {}

void GC_set_free_space_divisor(GC_word d) {
  GC_free_space_divisor = d;
  if (g_initialized.load()) apply_divisor();
}
GC_word GC_get_free_space_divisor(void) { return GC_free_space_divisor; }

void GC_set_max_heap_size(GC_word n) {
  g_max_heap_size.store(n);
  mheap().set_limit(n);
  // Cycles start before the limit, as with Go's soft limit, so that it is
  // reached only when the live heap needs it.
  pacer_set_memory_limit(n == 0 ? kNoMemoryLimit : static_cast<std::int64_t>(n));
}

int GC_expand_hp(size_t bytes) {
  ensure_init();
  return mheap().expand(bytes) ? 1 : 0;
}

void GC_set_oom_fn(GC_oom_func f) { GC_oom_fn = f; }
GC_oom_func GC_get_oom_fn(void) { return GC_oom_fn; }

void GC_abort_on_oom(void) {
  const char msg[] = "Insufficient memory for the allocation\n";
  const ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  if (GC_abort_func f = GC_on_abort) f(msg);
  std::abort();
}

void GC_set_start_callback(GC_start_callback_proc f) { g_start_callback = f; }
GC_start_callback_proc GC_get_start_callback(void) { return g_start_callback; }
void GC_set_on_collection_event(GC_on_collection_event_proc f) { g_event_proc = f; }
GC_on_collection_event_proc GC_get_on_collection_event(void) { return g_event_proc; }
void GC_set_on_heap_resize(GC_on_heap_resize_proc f) { GC_on_heap_resize = f; }
GC_on_heap_resize_proc GC_get_on_heap_resize(void) { return GC_on_heap_resize; }

// A cycle's pause is its whole mark; a time limit has nothing to bound.
void GC_set_time_limit(unsigned long ms) { GC_time_limit = ms; }
unsigned long GC_get_time_limit(void) { return GC_time_limit; }
void GC_set_time_limit_tv(struct GC_timeval_s tv) {
  GC_time_limit = tv.tv_ms;
  g_time_limit_ns = tv.tv_nsec;
}
struct GC_timeval_s GC_get_time_limit_tv(void) {
  return {GC_time_limit, g_time_limit_ns};
}

void GC_set_all_interior_pointers(int on) {
  GC_all_interior_pointers = on != 0;
  g_extra_bytes = on != 0 ? 1 : 0;
}
int GC_get_all_interior_pointers(void) { return GC_all_interior_pointers; }

// Every interior pointer keeps its object here, so every displacement is
// valid already.
void GC_register_displacement(size_t) {}

void GC_set_dont_expand(int v) { GC_dont_expand = v; }
int GC_get_dont_expand(void) { return GC_dont_expand; }
void GC_set_dont_precollect(int v) { GC_dont_precollect = v; }
int GC_get_dont_precollect(void) { return GC_dont_precollect; }
void GC_set_full_freq(int v) { GC_full_freq = v; }
int GC_get_full_freq(void) { return GC_full_freq; }
void GC_set_max_retries(GC_word v) { GC_max_retries = v; }
GC_word GC_get_max_retries(void) { return GC_max_retries; }
void GC_set_non_gc_bytes(GC_word v) { GC_non_gc_bytes = v; }
GC_word GC_get_non_gc_bytes(void) { return GC_non_gc_bytes; }

void GC_set_find_leak(int v) {
  if (v != 0) warn("GC Warning: leak-finding mode is not supported by mallocgc; collecting normally\n", 0);
  GC_find_leak = v;
}
int GC_get_find_leak(void) { return GC_find_leak; }

void GC_set_force_unmap_on_gcollect(int v) { g_force_unmap = v; }
int GC_get_force_unmap_on_gcollect(void) { return g_force_unmap; }

void GC_set_pages_executable(int v) {
  if (v != 0) warn("GC Warning: mallocgc's heap pages are never executable\n", 0);
  g_pages_executable = 0;
}
int GC_get_pages_executable(void) { return g_pages_executable; }

void GC_set_min_bytes_allocd(size_t v) { g_min_bytes_allocd = v == 0 ? 1 : v; }
size_t GC_get_min_bytes_allocd(void) { return g_min_bytes_allocd; }
void GC_set_rate(int v) { g_rate = v; }
int GC_get_rate(void) { return g_rate; }
void GC_set_max_prior_attempts(int v) { g_max_prior_attempts = v; }
int GC_get_max_prior_attempts(void) { return g_max_prior_attempts; }
void GC_set_disable_automatic_collection(int v) { g_disable_automatic.store(v != 0); }
int GC_get_disable_automatic_collection(void) { return g_disable_automatic.load(); }
void GC_set_manual_vdb_allowed(int v) { g_manual_vdb = v; }
int GC_get_manual_vdb_allowed(void) { return g_manual_vdb; }
void GC_set_allocd_bytes_per_finalizer(GC_word v) { g_allocd_bytes_per_finalizer = v; }
GC_word GC_get_allocd_bytes_per_finalizer(void) { return g_allocd_bytes_per_finalizer; }

void GC_set_markers_count(unsigned n) {
  if (!g_initialized.load()) g_markers_requested = n > 64 ? 64 : n;
}
int GC_get_parallel(void) { return GC_parallel; }
// The core starts its mark helpers when a cycle first needs them.
void GC_start_mark_threads(void) { ensure_init(); }

void GC_start_performance_measurement(void) { g_measuring.store(true); }
unsigned long GC_get_full_gc_total_time(void) { return g_full_gc_ms.load(); }

GC_word GC_get_gc_no(void) { return GC_gc_no; }

// Boehm's heap size leaves out what was returned to the OS.
size_t GC_get_heap_size(void) {
  const HeapPageStats ps = mheap().page_stats();
  return ps.committed_bytes - ps.released_bytes;
}

size_t GC_get_free_bytes(void) {
  flush_own_live();
  const std::size_t heap = GC_get_heap_size();
  const std::uint64_t used = mheap().live();
  return used < heap ? heap - used : 0;
}

size_t GC_get_unmapped_bytes(void) { return mheap().page_stats().released_bytes; }

size_t GC_get_bytes_since_gc(void) {
  flush_own_live();
  const std::uint64_t live = mheap().live(), last = pacer_last_live();
  return live > last ? live - last : 0;
}

size_t GC_get_expl_freed_bytes_since_gc(void) { return g_freed_since_gc.load(); }
size_t GC_get_total_bytes(void) {
  flush_own_live();
  return mheap().total_allocated();
}
size_t GC_get_obtained_from_os_bytes(void) { return mheap().page_stats().committed_bytes; }
size_t GC_get_memory_use(void) { return mheap().page_stats().inuse_bytes; }

void GC_get_heap_usage_safe(GC_word* heap_size, GC_word* free_bytes, GC_word* unmapped, GC_word* since_gc,
                            GC_word* total) {
  if (heap_size != nullptr) *heap_size = GC_get_heap_size();
  if (free_bytes != nullptr) *free_bytes = GC_get_free_bytes();
  if (unmapped != nullptr) *unmapped = GC_get_unmapped_bytes();
  if (since_gc != nullptr) *since_gc = GC_get_bytes_since_gc();
  if (total != nullptr) *total = GC_get_total_bytes();
}

size_t GC_get_prof_stats(struct GC_prof_stats_s* out, size_t size) {
  GC_prof_stats_s s;
  // Boehm's "full" figures count the unmapped bytes in.
  s.unmapped_bytes = GC_get_unmapped_bytes();
  s.heapsize_full = GC_get_heap_size() + s.unmapped_bytes;
  s.free_bytes_full = GC_get_free_bytes() + s.unmapped_bytes;
  s.bytes_allocd_since_gc = GC_get_bytes_since_gc();
  s.allocd_bytes_before_gc = g_total_at_last_gc.load();
  s.non_gc_bytes = GC_non_gc_bytes;
  s.gc_no = GC_gc_no;
  s.markers_m1 = static_cast<GC_word>(GC_parallel);
  s.bytes_reclaimed_since_gc = g_reclaimed_last.load();
  s.reclaimed_bytes_before_gc = g_reclaimed_before.load();
  s.expl_freed_bytes_since_gc = g_freed_since_gc.load();
  s.obtained_from_os_bytes = GC_get_obtained_from_os_bytes();
  // A caller's struct may be older (shorter) or newer (longer, the rest
  // reads as -1).
  const std::size_t n = size < sizeof s ? size : sizeof s;
  std::memcpy(out, &s, n);
  if (size > sizeof s) std::memset(reinterpret_cast<char*>(out) + sizeof s, 0xff, size - sizeof s);
  return n;
}

size_t GC_get_prof_stats_unsafe(struct GC_prof_stats_s* out, size_t size) { return GC_get_prof_stats(out, size); }

}  // extern "C"
