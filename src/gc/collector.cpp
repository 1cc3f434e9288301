#include "gc/collector.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <utility>

#include "gc/mark.hpp"
#include "gc/pacer.hpp"
#include "gc/roots.hpp"
#include "gc/scavenger.hpp"
#include "gc/specials.hpp"
#include "gc/threads.hpp"
#include "heap/arena.hpp"
#include "heap/kinds.hpp"
#include "heap/mcentral.hpp"
#include "heap/meta_alloc.hpp"
#include "heap/mheap.hpp"
#include "heap/sweep.hpp"
#include "heap/type_info.hpp"
#include "os/dirty_pages.hpp"
#include "os/fatal.hpp"
#include "os/immortal.hpp"
#include "os/mutex.hpp"
#include "os/sanitizer.hpp"
#include "os/trace.hpp"

namespace mgc::internal {

namespace {

GcConfig g_config;
GcHooks g_hooks;
Mutex g_cycle_lock;
// Whether this thread holds g_cycle_lock (a cycle it runs, or the
// program's lock_collector): what it calls back must not wait for it.
__thread bool tls_holds_cycle_lock __attribute__((tls_model("initial-exec")));
struct CycleLockOwner {
  CycleLockOwner() { tls_holds_cycle_lock = true; }
  ~CycleLockOwner() { tls_holds_cycle_lock = false; }
};
std::atomic<bool> g_marking{false};
}  // namespace

void (*debug_concurrent_mark_hook)(int phase) = nullptr;
bool debug_ignore_written_pages = false;

namespace {

void event(GcEvent e) {
  if (g_hooks.on_event != nullptr) g_hooks.on_event(e);
}

// Statistics, written under g_cycle_lock, read under g_stats_lock.
Mutex g_stats_lock;
std::uint64_t g_num_gc = 0;
std::uint64_t g_pause_total = 0;
std::uint64_t g_pauses[256] = {};
std::uint64_t g_gc_cpu_ns = 0;
std::uint64_t g_concurrent_cycles = 0;
std::uint64_t g_stall_total_ns = 0, g_stall_max_ns = 0;
std::atomic<std::uint64_t> g_sweeper_cpu_ns{0};

// The collector's CPU time so far: cycles, the sweeper, mark helpers, the
// scavenger. Under g_cycle_lock or g_stats_lock (g_gc_cpu_ns changes under
// both).
std::uint64_t gc_cpu_total_ns() {
  return g_gc_cpu_ns + g_sweeper_cpu_ns.load(std::memory_order_relaxed) + mark_helper_cpu_ns() + scavenge_cpu_ns();
}

// false when the clock cannot be read (another thread's CPU clock after
// it exited).
bool read_clock_ns(clockid_t clock, std::uint64_t* ns) {
  timespec t;
  if (clock_gettime(clock, &t) != 0) return false;
  *ns = static_cast<std::uint64_t>(t.tv_sec) * 1000000000u + static_cast<std::uint64_t>(t.tv_nsec);
  return true;
}

std::uint64_t now_ns(clockid_t clock = CLOCK_MONOTONIC) {
  std::uint64_t ns = 0;
  read_clock_ns(clock, &ns);
  return ns;
}

// A program may leave what Boehm's allocation lock protected inconsistent
// until its unlock has returned and it has run a few more instructions:
// guile moves a thread's VM stack under the lock and stores the new stack
// pointer after the call returns, and its mark procedure, run on that
// thread's record, hands everything between the old stack pointer and the
// new stack to the OS (MADV_DONTNEED: zeros), which has wiped hundreds of
// megabytes of a guile process here. A cycle waiting for the lock is woken
// by the very unlock and used to stop the releasing thread inside it (the
// wake-up preempts it in the futex call). So a program's unlock marks its
// thread's record while it runs, and a cycle that finds a stopped thread
// so marked starts the world again, lets it run (as below) and stops it
// again (up to kReleaseRetries times). Boehm does more work between taking
// the lock and stopping the world, which mostly hides the same window.
constexpr int kReleaseRetries = 100;

// The flag covers the unlock itself; what the program does after the
// return is covered by time: a cycle that took the lock from a program
// waits until the releasing thread has run kReleaserCpuNs more of its own
// CPU time (its CPU clock, so a preempted releaser is waited for; counted
// from the unlock when the cycle was already waiting then, else from when
// it starts to wait), or has blocked. A releaser that has not run for
// kReleaserWaitNs of the wait is asked about
// in /proc: while it is runnable (preempted on a loaded machine, where 2 ms
// without a CPU is common) the cycle waits on, up to kReleaserMaxWaitNs;
// once it sleeps, it is past the window.
constexpr std::uint64_t kReleaserCpuNs = 20 * 1000;
constexpr std::uint64_t kReleaserWaitNs = 2 * 1000 * 1000;
constexpr std::uint64_t kReleaserMaxWaitNs = 50 * 1000 * 1000;
// Set by a program's unlock, taken by the next cycle: its clock readings
// (none when no cycle waited) and the tid.
std::atomic<bool> g_program_unlocked{false};
std::atomic<std::uint64_t> g_program_unlock_cpu_ns{0};  // 0: not read
std::atomic<pid_t> g_program_unlock_tid{0};
// Cycles waiting for the cycle lock. A thread's CPU clock costs a system
// call (2 us here, against 40 ns for the monotonic clock), and programs
// such as ECL take and release the lock millions of times (it made ECL's
// weak tables 8x slower): an unlock reads it only when a cycle waits, and
// a cycle that finds no reading asks /proc and reads the clock itself.
std::atomic<int> g_cycles_waiting{0};

// The CPU-time clock of thread tid of this process, as glibc builds it for
// pthread_getcpuclockid (the kernel's per-thread scheduler clock). Made
// from the tid, not the pthread_t, so that it may be read after the thread
// exited: clock_gettime then fails instead of touching a freed descriptor.
clockid_t thread_cpu_clock(pid_t tid) { return static_cast<clockid_t>((~static_cast<unsigned>(tid)) << 3) | 6; }

void note_program_unlock(pid_t tid) {
  if (tid <= 0) return;
  const bool waited_for = g_cycles_waiting.load(std::memory_order_relaxed) != 0;
  g_program_unlock_cpu_ns.store(waited_for ? now_ns(CLOCK_THREAD_CPUTIME_ID) : 0, std::memory_order_relaxed);
  g_program_unlock_tid.store(tid, std::memory_order_relaxed);
  g_program_unlocked.store(true, std::memory_order_release);
}

// Whether thread tid of this process is running or waiting for a CPU (the
// state letter after the command name in /proc/self/task/TID/stat); false
// when it cannot be told.
bool thread_is_runnable(pid_t tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  const char* paren = std::strrchr(buf, ')');  // the command name may hold anything
  return paren != nullptr && paren[1] == ' ' && paren[2] == 'R';
}

// Wait until thread tid has run kReleaserCpuNs of CPU time past cpu0, or
// has exited, or sleeps once kReleaserWaitNs have passed since `since`, or
// kReleaserMaxWaitNs have.
void wait_for_releaser(pid_t tid, std::uint64_t cpu0, std::uint64_t since) {
  const clockid_t c = thread_cpu_clock(tid);
  if (cpu0 == 0) {
    // No reading at the unlock: a sleeping releaser is past its window;
    // a runnable one runs kReleaserCpuNs from now (later than its unlock:
    // a longer wait, never a shorter one).
    if (!thread_is_runnable(tid) || !read_clock_ns(c, &cpu0)) return;
  }
  for (;;) {
    std::uint64_t cpu;
    if (!read_clock_ns(c, &cpu)) return;  // the thread has exited
    if (cpu - cpu0 >= kReleaserCpuNs) return;
    const std::uint64_t waited = now_ns() - since;
    if (waited >= kReleaserMaxWaitNs) return;
    if (waited >= kReleaserWaitNs && !thread_is_runnable(tid)) return;
    sched_yield();
  }
}

pid_t this_thread_tid() {
  ThreadRecord* r = this_thread_record();
  return r != nullptr ? r->tid : static_cast<pid_t>(syscall(SYS_gettid));
}

// Cycle lock held.
void wait_after_program_unlock() {
  if (!g_program_unlocked.exchange(false, std::memory_order_acquire)) return;
  // A cycle run by the releaser itself: it is past its unlock.
  if (g_program_unlock_tid.load(std::memory_order_relaxed) == this_thread_tid()) return;
  wait_for_releaser(g_program_unlock_tid.load(std::memory_order_relaxed),
                    g_program_unlock_cpu_ns.load(std::memory_order_relaxed), now_ns());
}

// The tid of a stopped thread inside its release of the cycle lock, or 0.
// World stopped.
pid_t thread_releasing_the_lock() {
  pid_t found = 0;
  for_each_thread_locked([&](ThreadRecord* r) {
    if (r->releasing_cycle_lock.load(std::memory_order_relaxed)) found = r->tid;
  });
  return found;
}

const std::uint64_t g_start_ns = now_ns();

// --- the background sweeper ------------------------------------------------

Mutex g_sweeper_lock;
std::condition_variable_any& sweeper_cv() {
  static Immortal<std::condition_variable_any> x;
  return *x;
}
std::uint64_t g_sweeper_requests = 0;
std::atomic<bool> g_sweeper_started{false};

// Sweep a little at a time so that allocating threads, which sweep what
// they need themselves, rarely wait for a central lock.
// One step is one event of the trace (a batch, not a span).
// One round of the background sweeper: the span classes that have unswept
// spans when it starts, two spans each per step, then a yield, until none
// is left. Only those classes are looked at again: a look at all of them
// (kinds x size classes, each central on its own cache line) cost more
// than the two spans a step sweeps (7% of Malloc8's samples from two
// threads went to the loop alone). A class that gains unswept spans in a
// new cycle meanwhile waits for that cycle's round.
void sweep_round() {
  static int classes[kNumSpanClasses];  // the sweeper thread's only
  int nclasses = 0;
  for (int spc = 0; spc < kNumSpanClasses; spc++)
    if (mcentral(spc).may_have_unswept()) classes[nclasses++] = spc;
  while (nclasses != 0) {
    TraceScope trace(TraceEv::kSweepBackground);
    trace.only_if_work();
    std::size_t n = 0;
    int kept = 0;
    for (int i = 0; i < nclasses; i++) {
      MCentral& c = mcentral(classes[i]);
      n += c.sweep_some(2);
      if (c.may_have_unswept()) classes[kept++] = classes[i];
    }
    nclasses = kept;
    trace.a0 = n;
    if (n == 0) return;
    sched_yield();
  }
}

std::size_t sweep_large_traced() {
  TraceScope trace(TraceEv::kSweepLarge);
  trace.only_if_work();
  trace.a0 = mheap().sweep_large();
  return trace.a0;
}

void sweeper_thread() {
  trace_name_thread("background sweeper");
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<Mutex> g(g_sweeper_lock);
      sweeper_cv().wait(g, [&] { return g_sweeper_requests != seen; });
      seen = g_sweeper_requests;
    }
    const std::uint64_t t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    sweep_large_traced();
    sweep_round();
    g_sweeper_cpu_ns.fetch_add(now_ns(CLOCK_THREAD_CPUTIME_ID) - t0, std::memory_order_relaxed);
    // The spans this round emptied are free pages now, which the
    // scavenger, woken at the cycle's end, may not have seen yet.
    wake_scavenger(/*after_cycle=*/false);
  }
}

void wake_sweeper() {
  // Only cycles call this, one at a time (the cycle lock).
  if (!g_sweeper_started.exchange(true)) std::thread(sweeper_thread).detach();
  std::lock_guard<Mutex> g(g_sweeper_lock);
  g_sweeper_requests++;
  sweeper_cv().notify_one();
}

// --- the background collector (mostly-concurrent mode) ----------------------

Mutex g_bg_lock;
std::condition_variable_any& bg_cv() {
  static Immortal<std::condition_variable_any> x;
  return *x;
}
bool g_bg_requested = false;
std::atomic<bool> g_bg_busy{false};  // requested or running
std::atomic<bool> g_bg_started{false};

void background_collector_thread() {
  trace_name_thread("background collector");
  for (;;) {
    {
      std::unique_lock<Mutex> g(g_bg_lock);
      bg_cv().wait(g, [] { return g_bg_requested; });
      g_bg_requested = false;
    }
    gc_cycle(false);
    g_bg_busy.store(false, std::memory_order_release);
  }
}

// --- the cycle ---------------------------------------------------------------

int worker_count() {
  if (g_config.mark_threads > 0) return g_config.mark_threads;
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : static_cast<int>(std::min<long>(n, 64));
}

ProfileHooks g_profile_hooks;
// The unlock that matches the lock taken by lock_world_state (the hooks
// may be set between the two).
void (*g_profile_unlock)() = nullptr;

void lock_world_state() {
  lock_threads();
  lock_roots();
  lock_specials();
  // Quiesced: no thread is halfway through an unlocked sweep when the
  // world stops (its span would be half swept, on no list and in no cache).
  for (int spc = 0; spc < kNumSpanClasses; spc++) mcentral(spc).lock_quiesced();
  mheap().lock();
  if (g_profile_hooks.lock != nullptr) {
    g_profile_hooks.lock();
    g_profile_unlock = g_profile_hooks.unlock;
  }
}

void unlock_world_state() {
  if (void (*unlock)() = std::exchange(g_profile_unlock, nullptr)) unlock();
  mheap().unlock();
  for (int spc = kNumSpanClasses - 1; spc >= 0; spc--) mcentral(spc).unlock();
  unlock_specials();
  unlock_roots();
  unlock_threads();
}

constexpr std::uintptr_t kRedZone = 128;  // below rsp, x86-64 SysV

bool g_warned_foreign_stack = false;

// Every root: thread stacks, registers and TLS, globals, explicit ranges,
// finalizer roots. self_sp: the collecting thread's stack pointer, below
// its spilled registers.
void queue_roots(const GlobalsSnapshot& globals, std::uintptr_t self_sp) {
  ThreadRecord* self = this_thread_record();
  for_each_thread_locked([&](ThreadRecord* r) {
    std::uintptr_t sp = r == self ? self_sp : r->stopped_sp;
    if (r->blocked && r != self) {
      // Not stopped: its registers were spilled above blocked_sp.
      sp = r->blocked_sp;
    } else if (r != self) {
      mark_root({reinterpret_cast<std::uintptr_t>(r->regs),
                 reinterpret_cast<std::uintptr_t>(r->regs + ThreadRecord::kRegs), RootKind::kRegisters});
      sp = sp > r->stack_lo + kRedZone ? sp - kRedZone : r->stack_lo;
    }
    if (sp >= r->altstack_lo && sp < r->altstack_hi) {
      // Stopped in a handler on its alternate stack: where the normal stack
      // was left is unknown, so all of it is scanned.
      mark_root({sp, r->altstack_hi, RootKind::kStack});
      mark_root({r->stack_lo, r->stack_hi, RootKind::kStack});
    } else if (sp >= r->stack_lo && sp < r->stack_hi) {
      mark_root({sp, r->stack_hi, RootKind::kStack});
    } else if (!g_warned_foreign_stack) {
      g_warned_foreign_stack = true;
      static const char msg[] =
          "mallocgc: warning: a registered thread runs on a stack other than its own (coroutines?); that stack is "
          "not scanned: register it with mgc::add_roots\n";
      const ssize_t n = write(2, msg, sizeof msg - 1);
      (void)n;
    }
    for (int i = 0; i < r->ntls; i++) mark_root({r->tls[i].begin, r->tls[i].end, RootKind::kTls});
  });
  for (const RootRange& g : globals.ranges) mark_root(g);
  for_each_explicit_root_locked([](const RootRange& r) { mark_root(r); });
  mark_finalizer_roots();
  // Uncollectable objects, and kinds that mark from all their objects: the
  // heap is walked only when some exist.
  const bool from_all = any_kind_marks_from_all();
  if (mheap().has_root_spans() || from_all)
    mheap().for_each_span_locked([from_all](MSpan* s) {
      if (kind_is_root(s->kind)) {
        mark_root_objects(s);
      } else if (from_all && scan_mode(s->kind) == ScanMode::kCustom && kind_record(s->kind).mark_from_all) {
        mark_referents_of_span(s);
      }
    });
  if (g_hooks.push_roots != nullptr) g_hooks.push_roots();
}

struct CycleResult {
  std::uint64_t heap_before;
  std::uint64_t live;
  std::uint64_t pause_ns;
  std::uint64_t mark_ns;
  int workers;
  // Mostly concurrent: the two stops, the concurrent part, the rounds of
  // written pages and what the final stop found written.
  bool concurrent;
  std::uint64_t pause1_ns, pause2_ns, concurrent_ns;
  int rounds;
  std::uint64_t final_written;
};

// What a stopped part of a cycle does.
enum class StopPhase {
  kWhole,   // stop-the-world: the whole mark
  kStart,   // first stop of a mostly-concurrent cycle: roots, read at once
  kFinish,  // its last stop: written pages, roots again, finish
};

std::atomic<bool> g_concurrent_mark{false};  // between the two stops

// The spans' state at the start of a mark (the first stop).
void prepare_spans_for_mark(bool concurrent) {
  const std::uint32_t gen = sweep_gen();
  // Spans the background sweeper had not reached yet (it may be behind).
  for (int spc = 0; spc < kNumSpanClasses; spc++) mcentral(spc).sweep_unswept_locked();
  // Marks left from an earlier cycle on spans that caches still hold
  // unswept (their owners have not reached a slow path since) must go, or
  // this mark would take those objects for already scanned. When the mark
  // goes on with the world started, such a span is also declared swept
  // for the current generation: its owner's first slow path must neither
  // sweep it with a mark half done nor blacken what it handed out (the
  // mark judges those objects; after this cycle the span needs a sweep
  // again, by this mark).
  mheap().for_each_span_locked([&](MSpan* s) {
    if (s->sweep_gen.load(std::memory_order_relaxed) == gen) return;
    for (std::size_t w = 0; w < kBitmapWords; w++) s->gc_bits[w].store(0, std::memory_order_relaxed);
    if (concurrent) s->sweep_gen.store(gen, std::memory_order_relaxed);
  });
}

// A run of written pages: its objects are marked and queued again (not
// under debug_ignore_written_pages).
void ignore_written(void*, std::uintptr_t, std::uintptr_t) {}
void on_written(void*, std::uintptr_t begin, std::uintptr_t end) {
  if (!debug_ignore_written_pages) mark_written_range(begin, end);
}

// The end of every mark, world stopped: verify, finalize, advance.
void finish_mark(const GlobalsSnapshot& globals, std::uintptr_t self_sp, CycleResult* res, std::uint64_t live,
                 std::uint64_t roots, std::uint64_t t_mark) {
  res->workers = mark_workers_used();
  if (debug_unmark_after_mark != 0) {
    const std::uintptr_t victim = ~debug_unmark_after_mark;
    MSpan* s = mheap().span_of(victim);
    if (s != nullptr) {
      const std::size_t i = s->is_large() ? 0 : s->object_index(victim);
      s->gc_bits[i / 64].fetch_and(~(std::uint64_t{1} << (i % 64)), std::memory_order_relaxed);
    }
  }
  if (g_config.checkmark) {
    TraceScope trace(TraceEv::kCheckmark);
    checkmark_begin();
    queue_roots(globals, self_sp);
    mark_drain();
    checkmark_end();
  }
  live += finalize_after_mark();
  if (g_profile_hooks.after_mark != nullptr && g_profile_unlock != nullptr) g_profile_hooks.after_mark();
  g_marking.store(false, std::memory_order_relaxed);
  event(GcEvent::kMarkEnd);
  res->mark_ns = now_ns() - t_mark;
  res->live = live;
  advance_sweep_gen();
  // What was handed out since the first stop (heap_before was read there).
  const std::uint64_t now_live = mheap().live();
  const std::uint64_t during = res->concurrent && now_live > res->heap_before ? now_live - res->heap_before : 0;
  mheap().reset_live(live);
  pacer_end_cycle(live, roots, during, res->concurrent);
}

// The concurrent part's state, carried from the first stop to the last.
struct ConcurrentMark {
  std::uint64_t live = 0;
  std::uint64_t roots = 0;
  std::uint64_t t_mark = 0;
};
ConcurrentMark g_cmark;

// The stopped part of the cycle. Runs in a frame below the one that
// spilled the caller's registers (see with_registers_spilled).
void stopped_cycle(const GlobalsSnapshot& globals, std::uintptr_t self_sp, CycleResult* res, StopPhase phase) {
  if (phase == StopPhase::kFinish) {
    // What the program wrote since the last round, then the roots again,
    // read as they are now; the drain finishes with the world stopped.
    g_marking.store(true, std::memory_order_relaxed);
    TraceScope trace(TraceEv::kMarkTermination);
    std::int64_t written = mheap().collect_written_locked(on_written, nullptr);
    if (written < 0 || !os::dirty_tracking_on()) {
      // The tracker failed during the mark: every marked object again.
      mark_rescan_all_marked();
      written = 0;
    }
    res->final_written = static_cast<std::uint64_t>(written);
    take_root_bytes();
    queue_roots(globals, self_sp);
    take_root_bytes();
    g_cmark.live += mark_drain();
    mark_snapshot_end();
    g_concurrent_mark.store(false, std::memory_order_relaxed);
    trace.a0 = res->final_written;
    finish_mark(globals, self_sp, res, g_cmark.live, g_cmark.roots, g_cmark.t_mark);
    return;
  }
  res->heap_before = mheap().live();
  prepare_spans_for_mark(phase == StopPhase::kStart);
  const std::uint64_t t_mark = now_ns();
  event(GcEvent::kMarkStart);
  g_marking.store(true, std::memory_order_relaxed);
  mark_begin_cycle();
  if (phase == StopPhase::kStart) {
    TraceScope trace(TraceEv::kMarkRoots);
    take_root_bytes();
    // Read now: the stacks and registers change once the world restarts.
    mark_roots_now(true);
    queue_roots(globals, self_sp);
    mark_roots_now(false);
    g_cmark = {};
    g_cmark.roots = take_root_bytes();
    g_cmark.t_mark = t_mark;
    // The Boehm face's callbacks act only while the world is stopped.
    g_marking.store(false, std::memory_order_relaxed);
    g_concurrent_mark.store(true, std::memory_order_relaxed);
    return;
  }
  {
    TraceScope trace(TraceEv::kMarkRoots);
    take_root_bytes();
    queue_roots(globals, self_sp);
  }
  const std::uint64_t roots = take_root_bytes();
  TraceScope trace_mark(TraceEv::kMark);
  const std::uint64_t live = mark_drain();
  trace_mark.a1 = static_cast<std::uint64_t>(mark_workers_used());
  finish_mark(globals, self_sp, res, live, roots, t_mark);
  trace_mark.a0 = res->live;
}

// Spill the callee-saved registers into this frame, then run the cycle in
// a deeper one, so the collecting thread's own registers are scanned with
// its stack.
[[gnu::noinline]] void with_registers_spilled(const GlobalsSnapshot& globals, CycleResult* res, StopPhase phase) {
  __builtin_unwind_init();
  std::uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  collector_reads_begin();
  stopped_cycle(globals, sp, res, phase);
  collector_reads_end();
  asm volatile("" ::: "memory");
}

void print_trace(std::uint64_t n, const CycleResult& r) {
  const double mib = 1024.0 * 1024.0;
  std::fprintf(stderr, "gc %llu @%.3fs: %.1f -> %.1f MiB live, %.1f MiB roots, %.1f MiB goal; ",
               static_cast<unsigned long long>(n), static_cast<double>(now_ns() - g_start_ns) / 1e9,
               static_cast<double>(r.heap_before) / mib, static_cast<double>(r.live) / mib,
               static_cast<double>(pacer_last_roots()) / mib, static_cast<double>(pacer_goal()) / mib);
  if (r.concurrent) {
    std::fprintf(stderr,
                 "pause %.3f+%.3f ms, concurrent mark %.3f ms (%d rounds of written pages, %s; %.1f KiB written at "
                 "the last stop), %d threads\n",
                 static_cast<double>(r.pause1_ns) / 1e6, static_cast<double>(r.pause2_ns) / 1e6,
                 static_cast<double>(r.concurrent_ns) / 1e6, r.rounds, os::dirty_tracking_name(),
                 static_cast<double>(r.final_written) / 1024.0, r.workers);
  } else {
    std::fprintf(stderr, "pause %.3f ms (mark %.3f ms, %d threads)\n", static_cast<double>(r.pause_ns) / 1e6,
                 static_cast<double>(r.mark_ns) / 1e6, r.workers);
  }
}

// allocfreetrace's line for a cycle (Go: tracegc), with write(2): no stdio
// lock, which a stopped thread may hold.
void allocfreetrace_cycle(const char* what) {
  std::uint64_t n;
  {
    std::lock_guard<Mutex> g(g_stats_lock);
    n = g_num_gc;
  }
  if (what[0] == 's') n++;  // the cycle starting
  char line[96];
  const int len =
      std::snprintf(line, sizeof line, "allocfreetrace: gc %llu %s\n", static_cast<unsigned long long>(n), what);
  if (len > 0) {
    const ssize_t w = write(2, line, static_cast<std::size_t>(len));
    (void)w;
  }
}

}  // namespace

void set_gc_config(const GcConfig& c) { g_config = c; }

void set_concurrent_mark(bool on) {
  std::unique_lock<Mutex> g(g_cycle_lock, std::defer_lock);
  if (!tls_holds_cycle_lock) g.lock();
  g_config.concurrent = on;
  pacer_set_concurrent(on);
}
void set_profile_hooks(const ProfileHooks& h) { g_profile_hooks = h; }
const GcConfig& gc_config() { return g_config; }

namespace {
std::size_t finish_sweep_spans() {
  std::size_t n = 0;
  for (int spc = 0; spc < kNumSpanClasses; spc++)
    if (mcentral(spc).may_have_unswept()) n += mcentral(spc).sweep_some(~std::size_t{0});
  return n;
}

// finish_sweep as an event of the trace (ev says which), large objects
// apart.
void finish_sweep_traced(TraceEv ev) {
  {
    TraceScope trace(ev);
    trace.only_if_work();
    trace.a0 = finish_sweep_spans();
  }
  sweep_large_traced();
}
}  // namespace

void finish_sweep() {
  finish_sweep_spans();
  mheap().sweep_large();
}

namespace {

// One stop of the world for a cycle, from the request to the restart.
struct Stop {
  std::uint64_t t0 = 0;           // monotonic, at the request
  std::uint64_t trace_pause = 0;  // trace clock, 0 when not tracing
  std::uint64_t stops = 0;        // attempts
};

// List the loaded objects, take the world's locks and stop it, again until
// no thread is inside its release of the cycle lock and the list held.
// Returns with the world stopped and the locks held.
void stop_for_cycle(GlobalsSnapshot* globals, Stop* st) {
  int release_retries = 0;
  for (int attempt = 0;; attempt++) {
    snapshot_globals(globals);
    lock_world_state();
    st->t0 = now_ns();
    st->trace_pause = trace_on() ? trace_now() : 0;
    event(GcEvent::kPreStopWorld);
    {
      TraceScope trace(TraceEv::kStopThreads);
      stop_the_world();
    }
    st->stops++;
    event(GcEvent::kPostStopWorld);
    const pid_t releaser = release_retries < kReleaseRetries ? thread_releasing_the_lock() : 0;
    if (releaser == 0 && globals_unchanged(*globals)) {
      mark_world_stopped(true);
      return;
    }
    // A thread stopped inside its release of the cycle lock (see
    // kReleaseRetries), or a shared object was loaded or unloaded since the
    // listing, or is being loaded by a thread just stopped: again. The
    // releaser gets the same moment past its unlock as above.
    std::uint64_t releaser_cpu = 0;
    if (releaser != 0) read_clock_ns(thread_cpu_clock(releaser), &releaser_cpu);
    event(GcEvent::kPreStartWorld);
    {
      TraceScope trace(TraceEv::kStartThreads);
      start_the_world();
    }
    event(GcEvent::kPostStartWorld);
    if (st->trace_pause != 0) trace_complete(TraceEv::kPause, st->trace_pause, st->stops);
    unlock_world_state();
    if (releaser != 0) {
      release_retries++;
      attempt--;
      wait_for_releaser(releaser, releaser_cpu, now_ns());
      continue;
    }
    if (attempt == 1000) fatal("collector: the list of loaded objects never stops changing");
    sched_yield();
  }
}

// Restart the world stopped by stop_for_cycle; returns the pause.
std::uint64_t restart_after_cycle(const Stop& st) {
  mark_world_stopped(false);
  event(GcEvent::kPreStartWorld);
  {
    TraceScope trace(TraceEv::kStartThreads);
    start_the_world();
  }
  event(GcEvent::kPostStartWorld);
  const std::uint64_t pause = now_ns() - st.t0;
  if (st.trace_pause != 0) trace_complete(TraceEv::kPause, st.trace_pause, st.stops);
  unlock_world_state();
  return pause;
}

// One stopped part of a cycle.
std::uint64_t run_stop(StopPhase phase, CycleResult* res) {
  GlobalsSnapshot globals;
  Stop st;
  stop_for_cycle(&globals, &st);
  // The frames of the sweep and of the listing above lie where the
  // stopped cycle's frames will be, and the first of those is scanned.
  scrub_stack_below();
  with_registers_spilled(globals, res, phase);
  return restart_after_cycle(st);
}

bool g_warned_no_tracking = false;

// Mostly concurrent: may this cycle run so? The tracker is started (and
// every heap chunk registered with it) at the first one.
bool concurrent_mark_possible() {
  if (!g_config.concurrent) return false;
  if (mheap().track_writes()) return true;
  if (!g_warned_no_tracking) {
    g_warned_no_tracking = true;
    if (g_config.gctrace)
      std::fprintf(stderr, "gc: no written-page tracking (%s): marking stops the world\n", os::dirty_tracking_error());
  }
  return false;
}

// Rounds of written pages the concurrent part runs at most, and the bytes
// written in a round below which the last stop comes.
constexpr int kMaxWrittenRounds = 8;
constexpr std::int64_t kFewWrittenBytes = std::int64_t{1} << 20;

// The mark between the two stops: the world runs, mark workers (a share
// of the CPUs, at least one: the collecting thread) drain what the first
// stop queued, then rounds of written pages until few are left.
constexpr int kConcurrentWorkerShare = 4;
void concurrent_mark(CycleResult* res) {
  TraceScope trace(TraceEv::kMarkConcurrent);
  const std::uint64_t t0 = now_ns();
  collector_reads_begin();
  mark_prepare(std::max(1, worker_count() / kConcurrentWorkerShare));
  if (debug_concurrent_mark_hook != nullptr) debug_concurrent_mark_hook(0);
  g_cmark.live += mark_drain();
  if (debug_concurrent_mark_hook != nullptr) debug_concurrent_mark_hook(1);
  int rounds = 0;
  while (rounds < kMaxWrittenRounds) {
    rounds++;
    TraceScope round(TraceEv::kMarkWritten);
    const std::int64_t written = mheap().collect_written(on_written, nullptr);
    round.a0 = written < 0 ? 0 : static_cast<std::uint64_t>(written);
    if (written < 0) break;  // the last stop rescans every marked object
    g_cmark.live += mark_drain();
    if (written < kFewWrittenBytes) break;
  }
  collector_reads_end();
  mark_prepare(worker_count());
  res->rounds = rounds;
  res->concurrent_ns = now_ns() - t0;
  trace.a0 = g_cmark.live;
  trace.a1 = static_cast<std::uint64_t>(rounds);
}

// The cycle, cycle lock held and the decision to run it taken. In the
// mostly-concurrent mode, automatic cycles of a small heap stop the world
// (pacer_next_cycle_concurrent); collect()'s are concurrent whatever the
// heap (Go's runtime.GC is too).
void run_cycle(bool forced) {
  TraceScope trace_cycle(TraceEv::kCycle);
  trace_cycle.a1 = forced ? 1 : 0;
  const std::uint64_t cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
  if (g_config.allocfreetrace) allocfreetrace_cycle("start");
  event(GcEvent::kStart);
  finish_sweep_traced(TraceEv::kSweepFinish);
  mark_prepare(worker_count());
  CycleResult res{};
  if ((forced || pacer_next_cycle_concurrent()) && concurrent_mark_possible()) {
    res.concurrent = true;
    // Writes from here on are seen: the first collect only resets.
    if (mheap().collect_written(ignore_written, nullptr) < 0) {
      res.concurrent = false;
    }
  }
  if (res.concurrent) {
    mheap().begin_free_deferral();
    // Which objects exist (see mark_written_range), taken before the stop
    // to keep it short: the copy only decides which unmarked objects on a
    // written page are marked without the trace (those not in it), and
    // the trace finds every live object either way. Records are not
    // recycled from here on, so no copy is left on a reused one.
    mheap().lock();
    mark_snapshot_take();
    mheap().unlock();
    res.pause1_ns = run_stop(StopPhase::kStart, &res);
    concurrent_mark(&res);
    res.pause2_ns = run_stop(StopPhase::kFinish, &res);
    // After the restart: giving back a span's metadata takes the metadata
    // lock, which a stopped thread may hold.
    mheap().end_free_deferral();
    // Until the next cycle's first collect, no write needs to be seen: a
    // fault per page written would cost the program about 0.7 us each
    // (binary-trees: a second of system time in 16), lifting the
    // protection of the whole heap about 16 ns a page.
    mheap().unprotect_written();
    res.pause_ns = res.pause1_ns + res.pause2_ns;
  } else {
    res.pause_ns = run_stop(StopPhase::kWhole, &res);
  }
  queue_doomed_finalizers();
  event(GcEvent::kReclaimStart);
  if (forced) {
    finish_sweep_traced(TraceEv::kSweepForced);
  } else {
    wake_sweeper();
  }
  // The goal has moved: pages beyond the new one may go back to the OS.
  wake_scavenger(/*after_cycle=*/true);
  event(GcEvent::kReclaimEnd);
  std::uint64_t n;
  {
    std::lock_guard<Mutex> g(g_stats_lock);
    n = ++g_num_gc;
    g_pause_total += res.pause_ns;
    g_pauses[(n + 255) % 256] = res.pause_ns;
    g_gc_cpu_ns += now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    if (res.concurrent) g_concurrent_cycles++;
  }
  pacer_limiter_account(gc_cpu_total_ns(), now_ns(CLOCK_PROCESS_CPUTIME_ID));
  if (g_config.gctrace) print_trace(n, res);
  if (g_config.allocfreetrace) allocfreetrace_cycle("end");
  if (trace_on()) trace_counter(TraceEv::kHeapCounter, res.live, pacer_goal());
  trace_cycle.a0 = n;
  event(GcEvent::kEnd);
}

}  // namespace

bool gc_cycle(bool forced) {
  if (g_hooks.may_collect != nullptr && !g_hooks.may_collect()) {
    pacer_defer();
    return false;
  }
  std::unique_lock<Mutex> cycle(g_cycle_lock, std::defer_lock);
  if (!cycle.try_lock()) {
    g_cycles_waiting.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t t0 = now_ns();
    cycle.lock();
    g_cycles_waiting.fetch_sub(1, std::memory_order_relaxed);
    // An allocation stalled behind another thread's cycle (in the
    // mostly-concurrent mode: the heap reached the goal before the mark
    // ended, where Go's mutator would assist). Not the background
    // collector's own wait: no allocation waits there.
    if (!forced && this_thread_record() != nullptr) {
      const std::uint64_t waited = now_ns() - t0;
      std::lock_guard<Mutex> g(g_stats_lock);
      g_stall_total_ns += waited;
      g_stall_max_ns = std::max(g_stall_max_ns, waited);
    }
  }
  CycleLockOwner owner;
  // Under the cycle lock, which fork() handlers take: a child must not
  // inherit a one-time initialisation (a guard) that a thread of the
  // parent was in the middle of.
  static bool excluded = false;
  if (!excluded) {
    excluded = true;
    // The allocator's static metadata: the arena map (32 MiB), and the heap
    // and central lists, whose page allocator and bounds hold addresses
    // of the heap that are not references to objects.
    exclude_from_roots(arena_l1, arena_l1 + kArenaL1Entries);
    exclude_from_roots(&mheap(), &mheap() + 1);
    exclude_from_roots(&mcentral(0), &mcentral(kNumSpanClasses - 1) + 1);
    exclude_mark_statics(exclude_from_roots);
    // The collector's clock readings and durations (nanoseconds): no
    // pointers, but where the heap lies low they can equal an object's
    // address and keep it alive. Under valgrind the heap is mapped near
    // 0x8000000, 134 ms in nanoseconds, and a few slowed cycles' pause
    // total fell into it (gc_heap_metadata_test).
    exclude_from_roots(&g_pause_total, &g_pause_total + 1);
    exclude_from_roots(std::begin(g_pauses), std::end(g_pauses));
    exclude_from_roots(&g_gc_cpu_ns, &g_gc_cpu_ns + 1);
    exclude_from_roots(&g_stall_total_ns, &g_stall_total_ns + 1);
    exclude_from_roots(&g_stall_max_ns, &g_stall_max_ns + 1);
    exclude_from_roots(&g_sweeper_cpu_ns, &g_sweeper_cpu_ns + 1);
    exclude_from_roots(&g_program_unlock_cpu_ns, &g_program_unlock_cpu_ns + 1);
    exclude_pacer_statics(exclude_from_roots);
    exclude_scavenger_statics(exclude_from_roots);
  }
  // Asked again under the lock: a thread may have forbidden cycles (Boehm's
  // GC_disable) while this one waited for it.
  if (g_hooks.may_collect != nullptr && !g_hooks.may_collect()) {
    pacer_defer();
    return false;
  }
  if (!forced && !pacer_should_collect()) return false;  // another thread just collected
  if (!forced && !pacer_limiter_allows(gc_cpu_total_ns(), now_ns(CLOCK_PROCESS_CPUTIME_ID))) return false;
  wait_after_program_unlock();
  run_cycle(forced);
  return true;
}

void collect_in_background() {
  if (!pacer_next_cycle_concurrent() || tls_holds_cycle_lock || mheap().live() >= pacer_goal()) {
    gc_cycle(false);
    return;
  }
  if (g_bg_busy.exchange(true, std::memory_order_acq_rel)) return;  // one is on its way
  if (!g_bg_started.exchange(true)) std::thread(background_collector_thread).detach();
  std::lock_guard<Mutex> g(g_bg_lock);
  g_bg_requested = true;
  bg_cv().notify_one();
}

void set_gc_hooks(const GcHooks& h) { g_hooks = h; }

bool gc_marking() {
  // Between the two stops of a mostly-concurrent cycle, only on a thread
  // that drains (a mark procedure calling back): the program's threads run
  // then, and their calls must not touch the mark's buffers.
  return g_marking.load(std::memory_order_relaxed) ||
         (g_concurrent_mark.load(std::memory_order_relaxed) && mark_draining_here());
}

void stop_world_external() {
  g_cycle_lock.lock();
  tls_holds_cycle_lock = true;
  finish_sweep();
  lock_world_state();
  stop_the_world();
}

void start_world_external() {
  start_the_world();
  unlock_world_state();
  tls_holds_cycle_lock = false;
  g_cycle_lock.unlock();
}

void lock_collector() {
  g_cycle_lock.lock();
  tls_holds_cycle_lock = true;
}

void unlock_collector() {
  tls_holds_cycle_lock = false;
  ThreadRecord* r = this_thread_record();
  if (r != nullptr) r->releasing_cycle_lock.store(true, std::memory_order_relaxed);
  note_program_unlock(r != nullptr ? r->tid : 0);
  g_cycle_lock.unlock();
  if (r != nullptr) r->releasing_cycle_lock.store(false, std::memory_order_relaxed);
}

void with_cycles_excluded(void (*fn)()) {
  if (tls_holds_cycle_lock) return fn();
  std::lock_guard<Mutex> g(g_cycle_lock);
  fn();
}

namespace {

// The leaf locks: no other lock is taken while one of them is held.
void lock_leaves() {
  lock_kinds();
  lock_mark_procs();
  lock_root_exclusions();
  g_stats_lock.lock();
  g_sweeper_lock.lock();
  g_bg_lock.lock();
  lock_scavenger_state();
}

void unlock_leaves() {
  unlock_scavenger_state();
  g_bg_lock.unlock();
  g_sweeper_lock.unlock();
  g_stats_lock.unlock();
  unlock_root_exclusions();
  unlock_mark_procs();
  unlock_kinds();
}

}  // namespace

// The order is that of nesting elsewhere: the cycle lock outermost, the
// type table before metadata (interning frees under it), then the world's
// locks as a cycle takes them, metadata, and last the leaves.
void fork_prepare_collector() {
  g_cycle_lock.lock();
  lock_type_table();
  // No scavenger batch in flight: its pages, out of the free pool, would
  // be lost to the child.
  mheap().lock_scavenge();
  lock_world_state();
  meta_lock();
  lock_leaves();
}

void fork_parent_collector() {
  unlock_leaves();
  meta_unlock();
  unlock_world_state();
  mheap().unlock_scavenge();
  unlock_type_table();
  g_cycle_lock.unlock();
}

void fork_child_collector() {
  // The sweeper and the mark helpers did not come along; they start again
  // at the next cycle. Its condition variable may count the sweeper as a
  // waiter: made anew.
  ::new (&sweeper_cv()) std::condition_variable_any();
  g_sweeper_started.store(false);
  ::new (&bg_cv()) std::condition_variable_any();
  g_bg_started.store(false);
  g_bg_busy.store(false);
  g_bg_requested = false;
  scavenger_after_fork();
  unlock_leaves();
  meta_unlock();
  forget_other_threads();
  specials_after_fork();
  g_program_unlocked.store(false, std::memory_order_relaxed);  // no releaser here
  g_cycles_waiting.store(0, std::memory_order_relaxed);        // nor a waiting cycle
  unlock_world_state();
  mheap().unlock_scavenge();
  unlock_type_table();
  mark_after_fork();
  g_cycle_lock.unlock();
}

void gc_stats(GcStats* out) {
  std::lock_guard<Mutex> g(g_stats_lock);
  out->num_gc = g_num_gc;
  out->pause_total_ns = g_pause_total;
  std::copy(std::begin(g_pauses), std::end(g_pauses), out->pause_ns);
  out->last_live = pacer_last_live();
  const std::uint64_t cpu = now_ns(CLOCK_PROCESS_CPUTIME_ID);
  const std::uint64_t gc = gc_cpu_total_ns();
  // Clock granularity can put a just-measured part a little ahead of the
  // process clock.
  out->cpu_fraction = cpu == 0 ? 0 : std::min(1.0, static_cast<double>(gc) / static_cast<double>(cpu));
  out->concurrent_cycles = g_concurrent_cycles;
  out->stall_total_ns = g_stall_total_ns;
  out->stall_max_ns = g_stall_max_ns;
}

}  // namespace mgc::internal
