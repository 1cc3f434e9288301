#include "gc/threads.hpp"

#include <errno.h>
#include <link.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <new>

#include "heap/meta_alloc.hpp"
#include "mallocgc/internal/cache_front.hpp"
#include "os/dirty_pages.hpp"
#include "os/fatal.hpp"
#include "os/mutex.hpp"

namespace mgc::internal {

std::atomic<std::uint64_t> g_world_epoch{0};
__thread bool tls_in_fast_path __attribute__((tls_model("initial-exec")));
__thread bool tls_stop_deferred __attribute__((tls_model("initial-exec")));
bool debug_no_stop_deferral = false;

namespace {

void free_record(ThreadRecord* r) {
  r->~ThreadRecord();
  meta_free(r, sizeof(ThreadRecord));
}

__thread ThreadRecord* tls_record __attribute__((tls_model("initial-exec")));

Mutex g_lock;
ThreadRecord* g_first = nullptr;
int g_signal = SIGPWR;
bool g_handler_installed = false;

// Odd while the world is stopped (or being stopped). Threads in the
// handler wait for it to change.
std::atomic<std::uint32_t> g_stop_seq{0};
// Threads that have stopped in the current round.
std::atomic<std::uint32_t> g_acks{0};

// Acknowledge the stop of round seq and wait for the restart.
void park(std::uint32_t seq) {
  g_acks.fetch_add(1, std::memory_order_acq_rel);
  futex(&g_acks, FUTEX_WAKE_PRIVATE, 1, nullptr);
  while (g_stop_seq.load(std::memory_order_acquire) == seq) futex(&g_stop_seq, FUTEX_WAIT_PRIVATE, seq, nullptr);
}

// The registers and stack pointer of the code the stop signal interrupted,
// from its context; or (own_sp nonzero) the handler's own.
void save_context(ThreadRecord* r, const void* context, std::uintptr_t own_sp) {
  if (own_sp != 0) {
    std::memset(r->regs, 0, sizeof r->regs);
    r->stopped_sp = own_sp;
    return;
  }
  const auto* uc = static_cast<const ucontext_t*>(context);
  static_assert(NGREG == 23);
  for (int i = 0; i < NGREG; i++) r->regs[i] = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[i]);
  // Not the program's registers: the kernel's record of the thread's last
  // fault (its address, error code, trap number) and the old signal mask.
  // The address is often a heap object's: the first write to a page the
  // mprotect tracker protected faults there, and a later stop would keep
  // that object for ever.
  for (int i : {REG_CR2, REG_ERR, REG_TRAPNO, REG_OLDMASK}) r->regs[i] = 0;
  if (uc->uc_mcontext.fpregs != nullptr)
    std::memcpy(&r->regs[NGREG], uc->uc_mcontext.fpregs->_xmm, sizeof(uc->uc_mcontext.fpregs->_xmm));
  r->stopped_sp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
}

// ThreadSanitizer runs a signal's handler when it sees fit (at the
// thread's next intercepted call or atomic operation), passing a copy of
// the context the signal interrupted: by then the thread's registers and
// stack pointer are other ones. Under TSan the handler therefore records
// its own: callee-saved registers spilled into its frame, and its stack
// pointer below them (what park_deferred_stop does for the same reason).
#if defined(__SANITIZE_THREAD__)
constexpr bool kHandlersDeferred = true;
#else
constexpr bool kHandlersDeferred = false;
#endif

void suspend_handler(int, siginfo_t*, void* context) {
  const int saved_errno = errno;
  std::uintptr_t own_sp = 0;
  if constexpr (kHandlersDeferred) {
    __builtin_unwind_init();
    asm volatile("mov %%rsp, %0" : "=r"(own_sp));
  }
  ThreadRecord* r = tls_record;
  const std::uint32_t seq = g_stop_seq.load(std::memory_order_acquire);
  if (r != nullptr && (seq & 1) != 0) {
    if (kDebugMalloc && tls_in_fast_path && !debug_no_stop_deferral) {
      tls_stop_deferred = true;  // the fast path's exit parks
    } else {
      save_context(r, context, own_sp);
      park(seq);
    }
  } else if (r != nullptr && r->suspend_state.load(std::memory_order_acquire) == 1 &&
             !(kDebugMalloc && tls_in_fast_path)) {
    // Suspended alone (Boehm's GC_suspend_thread): cycles skip it while it
    // waits here, and scan what it saved.
    save_context(r, context, own_sp);
    r->suspend_state.store(2, std::memory_order_release);
    futex(&r->suspend_state, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
    while (r->suspend_state.load(std::memory_order_acquire) == 2)
      futex(&r->suspend_state, FUTEX_WAIT_PRIVATE, 2, nullptr);
  }
  errno = saved_errno;
}

int tls_callback(dl_phdr_info* info, std::size_t, void* arg) {
  auto* r = static_cast<ThreadRecord*>(arg);
  if (info->dlpi_tls_data == nullptr) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_TLS || ph.p_memsz == 0) continue;
    if (r->ntls == ThreadRecord::kMaxTls) return 1;
    const auto b = reinterpret_cast<std::uintptr_t>(info->dlpi_tls_data);
    r->tls[r->ntls++] = {b, b + ph.p_memsz};
  }
  return 0;
}

void install_handler() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = suspend_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);  // nothing else runs on top of a stopped thread
  for (int s : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigdelset(&sa.sa_mask, s);
  if (sigaction(g_signal, &sa, nullptr) != 0) fatal("cannot install the suspend signal handler (signal %d)", g_signal);
  os::dirty_tracking_block_signal(g_signal);
  g_handler_installed = true;
}

// Write without locks (stdio's lock may belong to a stopped thread).
void warn_raw(const char* msg) {
  const ssize_t n = write(2, msg, std::strlen(msg));
  (void)n;
}

}  // namespace

ThreadRecord* this_thread_record() { return tls_record; }
ThreadRecord* first_thread_locked() { return g_first; }
int suspend_signal() { return g_signal; }

void set_suspend_signal(int sig) {
  std::lock_guard<Mutex> g(g_lock);
  if (g_handler_installed && sig != g_signal) fatal("the suspend signal cannot change once the world was stopped");
  g_signal = sig;
}

bool current_stack_bounds(std::uintptr_t* lo, std::uintptr_t* hi) {
  pthread_attr_t attr;
  void* addr = nullptr;
  std::size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return false;
  const bool ok = pthread_attr_getstack(&attr, &addr, &size) == 0;
  pthread_attr_destroy(&attr);
  if (!ok) return false;
  *lo = reinterpret_cast<std::uintptr_t>(addr);
  *hi = *lo + size;
  return true;
}

ThreadRecord* register_thread() {
  if (ThreadRecord* r = tls_record) {
    r->refs++;
    return r;
  }
  // Metadata memory, not the system malloc: the OS's refusal is seen here
  // as nullptr (os::inject_failures reaches it too).
  static_assert(sizeof(ThreadRecord) <= kMaxMetaBlock);
  void* mem = meta_alloc(sizeof(ThreadRecord));
  if (mem == nullptr) return nullptr;
  auto* r = ::new (mem) ThreadRecord();
  r->thread = pthread_self();
  r->tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (!current_stack_bounds(&r->stack_lo, &r->stack_hi)) fatal("cannot find the stack of thread %d", r->tid);
  dl_iterate_phdr(tls_callback, r);
  r->refs = 1;
  std::lock_guard<Mutex> g(g_lock);
  r->next = g_first;
  if (g_first != nullptr) g_first->prev = r;
  g_first = r;
  tls_record = r;
  return r;
}

namespace {
void remove_record(ThreadRecord* r) {
  {
    std::lock_guard<Mutex> g(g_lock);
    if (r->prev != nullptr) {
      r->prev->next = r->next;
    } else {
      g_first = r->next;
    }
    if (r->next != nullptr) r->next->prev = r->prev;
    tls_record = nullptr;
  }
  free_record(r);
}
}  // namespace

void unregister_thread() {
  ThreadRecord* r = tls_record;
  if (r == nullptr) fatal("mgc_unregister_thread: the thread is not registered");
  if (--r->refs == 0) remove_record(r);
}

void unregister_thread_at_exit() {
  if (ThreadRecord* r = tls_record) remove_record(r);
}

[[gnu::noinline]] void* call_blocking(void* (*fn)(void*), void* arg) {
  ThreadRecord* r = tls_record;
  if (r == nullptr || r->blocked) return fn(arg);
  // Callee-saved registers go to this frame, which lies above the stack
  // pointer published below; the caller saved the others it needs.
  __builtin_unwind_init();
  std::uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  {
    std::lock_guard<Mutex> g(g_lock);
    r->blocked_sp = sp;
    r->blocked = true;
  }
  void* result = fn(arg);
  {
    // Waits for a cycle in progress: it holds the registry lock.
    std::lock_guard<Mutex> g(g_lock);
    r->blocked = false;
  }
  asm volatile("" ::: "memory");
  return result;
}

void* call_active(void* (*fn)(void*), void* arg) {
  ThreadRecord* r = tls_record;
  if (r == nullptr || !r->blocked) return fn(arg);
  {
    std::lock_guard<Mutex> g(g_lock);
    r->blocked = false;
  }
  // Stopped by the signal again meanwhile, and scanned from wherever it
  // stops: the frames of the blocking section are scanned too.
  void* result = fn(arg);
  {
    std::lock_guard<Mutex> g(g_lock);
    r->blocked = true;
  }
  return result;
}

void set_stack_bottom(ThreadRecord* r, std::uintptr_t hi) {
  std::lock_guard<Mutex> g(g_lock);
  if (hi <= r->stack_lo || hi > r->stack_hi) r->stack_lo = 0;
  r->stack_hi = hi;
}

void set_altstack(ThreadRecord* r, std::uintptr_t lo, std::uintptr_t hi) {
  std::lock_guard<Mutex> g(g_lock);
  r->altstack_lo = lo;
  r->altstack_hi = hi;
}

namespace {
ThreadRecord* find_locked(pthread_t t) {
  for (ThreadRecord* r = g_first; r != nullptr; r = r->next)
    if (pthread_equal(r->thread, t)) return r;
  return nullptr;
}
}  // namespace

void suspend_thread(pthread_t t) {
  // The registry lock keeps cycles out while the thread goes to sleep.
  std::lock_guard<Mutex> g(g_lock);
  if (!g_handler_installed) install_handler();
  ThreadRecord* r = find_locked(t);
  if (r == nullptr || r == tls_record || r->suspend_state.load() != 0) return;
  r->suspend_state.store(1, std::memory_order_release);
  // Signalled again until it answers: a debug-malloc build's thread inside
  // the fast path lets the signal pass.
  while (r->suspend_state.load(std::memory_order_acquire) == 1) {
    if (pthread_kill(r->thread, g_signal) != 0) {
      r->suspend_state.store(0);
      return;
    }
    const timespec ten_ms = {0, 10 * 1000 * 1000};
    futex(&r->suspend_state, FUTEX_WAIT_PRIVATE, 1, &ten_ms);
  }
}

void resume_thread(pthread_t t) {
  std::lock_guard<Mutex> g(g_lock);
  ThreadRecord* r = find_locked(t);
  if (r == nullptr || r->suspend_state.load() != 2) return;
  r->suspend_state.store(0, std::memory_order_release);
  futex(&r->suspend_state, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
}

bool thread_suspended(pthread_t t) {
  std::lock_guard<Mutex> g(g_lock);
  ThreadRecord* r = find_locked(t);
  return r != nullptr && r->suspend_state.load() == 2;
}

void forget_other_threads() {
  ThreadRecord* self = tls_record;
  ThreadRecord* r = g_first;
  while (r != nullptr) {
    ThreadRecord* next = r->next;
    if (r != self) free_record(r);
    r = next;
  }
  g_first = self;
  if (self != nullptr) {
    self->next = self->prev = nullptr;
    self->thread = pthread_self();
    self->tid = static_cast<pid_t>(syscall(SYS_gettid));
  }
}

void lock_threads() { g_lock.lock(); }
void unlock_threads() { g_lock.unlock(); }

void stop_the_world() {
  if (!g_handler_installed) install_handler();
  g_acks.store(0, std::memory_order_relaxed);
  // Blocked threads are not stopped; suspended ones are already.
  const auto signalled = [](const ThreadRecord* r) {
    return r != tls_record && !r->blocked && r->suspend_state.load(std::memory_order_acquire) != 2;
  };
  // Cleared before the store that opens the round, which the handlers
  // read (acquire) before they write their own.
  for (ThreadRecord* r = g_first; r != nullptr; r = r->next)
    if (signalled(r)) r->stopped_sp = 0;
  const std::uint32_t seq = g_stop_seq.load(std::memory_order_relaxed) + 1;
  g_stop_seq.store(seq, std::memory_order_seq_cst);
  std::uint32_t n = 0;
  for (ThreadRecord* r = g_first; r != nullptr; r = r->next) {
    if (!signalled(r)) continue;
    const int err = pthread_kill(r->thread, g_signal);
    if (err == 0) {
      n++;
    } else {
      char buf[160];
      std::snprintf(buf, sizeof buf, "mallocgc: warning: cannot signal registered thread %d (error %d); not stopped\n",
                    r->tid, err);
      warn_raw(buf);
    }
  }
  int waited_s = 0;
  for (;;) {
    const std::uint32_t acks = g_acks.load(std::memory_order_acquire);
    if (acks >= n) break;
    const timespec one_second = {1, 0};
    if (futex(&g_acks, FUTEX_WAIT_PRIVATE, acks, &one_second) != 0 && errno == ETIMEDOUT && ++waited_s % 10 == 0) {
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "mallocgc: warning: %u of %u threads have not stopped after %d s; a registered thread must "
                    "not block signal %d (MALLOCGC_SUSPEND_SIGNAL)\n",
                    n - acks, n, waited_s, g_signal);
      warn_raw(buf);
    }
  }
  // Only now: a thread that the signal found inside a fast path finished
  // it before it acknowledged, and its exit check must not see a change.
  g_world_epoch.fetch_add(1, std::memory_order_acq_rel);
}

void start_the_world() {
  // Before any thread runs again.
  g_world_epoch.fetch_add(1, std::memory_order_acq_rel);
  const std::uint32_t seq = g_stop_seq.load(std::memory_order_relaxed) + 1;
  g_stop_seq.store(seq, std::memory_order_seq_cst);
  futex(&g_stop_seq, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
}

[[gnu::noinline]] __attribute__((no_sanitize("address"))) void scrub_stack_below(std::size_t bytes) {
  char* p = static_cast<char*>(__builtin_alloca(bytes));
  std::memset(p, 0, bytes);
  asm volatile("" : : "r"(p) : "memory");
}

[[gnu::noinline]] void park_deferred_stop() {
  tls_stop_deferred = false;
  const std::uint32_t seq = g_stop_seq.load(std::memory_order_acquire);
  ThreadRecord* r = tls_record;
  if ((seq & 1) == 0 || r == nullptr) return;
  // Callee-saved registers go to this frame, which lies above the stack
  // pointer published below; the others hold nothing the caller keeps.
  __builtin_unwind_init();
  std::uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  save_context(r, nullptr, sp);
  park(seq);
}

}  // namespace mgc::internal
