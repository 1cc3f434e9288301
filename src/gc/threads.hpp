// The thread registry and stopping the world (Boehm: pthread_stop_world.c;
// Go stops the world at safe points instead, which C code does not have).
//
// A registered thread may hold heap pointers: its stack, saved registers
// and static thread-local storage are roots. Threads register at their
// first allocation (runtime/thread_cache) or explicitly (mgc::ThreadScope,
// mgc_register_thread), and leave when the last reason ends or at exit.
//
// The world is stopped with a signal (SIGPWR unless MALLOCGC_SUSPEND_SIGNAL
// says otherwise) sent to every registered thread but the caller. The
// handler copies the interrupted registers (general and SSE) into the
// thread's record, publishes the interrupted stack pointer, acknowledges,
// and waits on a futex until the world restarts. A thread blocked in a
// system call is interrupted the same way; the handler is installed with
// SA_RESTART, so calls that the kernel restarts continue unseen, while the
// few that Linux never restarts after a handler (nanosleep, poll, epoll_wait,
// select, sigtimedwait, and calls with a timeout set on a socket) return
// EINTR as with any signal. The handler preserves errno.
//
// Debug-malloc builds: a thread interrupted inside the inline allocation
// fast path does not stop in the handler; it notes the request and stops
// when the fast path ends (park_deferred_stop), so no cycle ever happens
// during a fast path, which the fast path's exit check verifies.
//
// Owns: the registry, its lock, the handler and the stop protocol. Never
// allocates from the collected heap; stop/start never allocate at all.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mgc::internal {

struct ThreadRecord {
  pthread_t thread;
  pid_t tid;
  std::uintptr_t stack_lo = 0;  // lowest address of the stack mapping
  std::uintptr_t stack_hi = 0;  // one past the highest
  // Static TLS blocks of the loaded modules, as seen by the thread when it
  // registered.
  static constexpr int kMaxTls = 32;
  struct Range {
    std::uintptr_t begin, end;
  } tls[kMaxTls];
  int ntls = 0;
  int refs = 0;  // allocation cache (1) + explicit registrations
  // Inside call_blocking (Boehm's GC_do_blocking): the thread holds no heap
  // pointer below blocked_sp, is not signalled, and its stack is scanned
  // from blocked_sp. Registry lock to change.
  bool blocked = false;
  std::uintptr_t blocked_sp = 0;
  // An alternate signal stack (Boehm's GC_register_altstack): a thread
  // stopped on it has it scanned from its stack pointer, and its normal
  // stack whole.
  std::uintptr_t altstack_lo = 0, altstack_hi = 0;
  // Boehm's GC_suspend_thread: 0 running, 1 asked to stop, 2 stopped in
  // the suspend handler (registers saved, stopped_sp published) until
  // resumed. A futex word.
  std::atomic<std::uint32_t> suspend_state{0};
  // Inside the program's release of the cycle lock (Boehm's allocation
  // lock), from just before the unlock until it returns: a cycle that
  // stops the thread there restarts the world and tries again (see
  // unlock_collector). Written by the thread; read while it is stopped.
  std::atomic<bool> releasing_cycle_lock{false};
  // Filled by the thread itself while stopped.
  std::uintptr_t stopped_sp = 0;
  static constexpr int kRegs = 23 + 32;  // general registers + 16 SSE registers
  std::uintptr_t regs[kRegs] = {};
  ThreadRecord* next = nullptr;
  ThreadRecord* prev = nullptr;
};

// Register the calling thread (once more, if it already is). nullptr when
// memory for its record cannot be had (the thread stays unregistered).
ThreadRecord* register_thread();
// Drop one registration; the record goes with the last.
void unregister_thread();
// Drop the calling thread's record whatever its count (thread exit).
void unregister_thread_at_exit();
ThreadRecord* this_thread_record();

// Run fn(arg) with the calling thread "inactive" (Boehm's GC_do_blocking):
// the world is stopped without it, its stack is scanned only above this
// call's frame, and it must not touch heap pointers until fn returns. It
// leaves that state only when no cycle is running. call_active runs fn
// active again inside such a call (Boehm's GC_call_with_gc_active). Both
// just call fn on a thread that is not registered.
void* call_blocking(void* (*fn)(void*), void* arg);
void* call_active(void* (*fn)(void*), void* arg);

// The calling thread's stack: its mapping, from pthread. false when pthread
// cannot tell.
bool current_stack_bounds(std::uintptr_t* lo, std::uintptr_t* hi);
// Scan the calling thread's stack up to hi instead (a coroutine's stack,
// Boehm's GC_set_stackbottom); a hi outside the thread's own stack drops
// the lower bound check.
void set_stack_bottom(ThreadRecord* r, std::uintptr_t hi);
void set_altstack(ThreadRecord* r, std::uintptr_t lo, std::uintptr_t hi);

// Stop one registered thread until resume_thread (Boehm's
// GC_suspend_thread): it waits in the suspend handler, and cycles treat it
// as stopped. Not the calling thread. Unknown or unregistered threads are
// ignored.
void suspend_thread(pthread_t t);
void resume_thread(pthread_t t);
bool thread_suspended(pthread_t t);

// In the child of fork(): only the calling thread exists; drop the others'
// records (the registry lock must be free).
void forget_other_threads();

// Lock the registry (first lock of a cycle) / unlock it.
void lock_threads();
void unlock_threads();

// Registry locked: stop every registered thread but the caller; returns
// when all are stopped. start_the_world restarts them.
void stop_the_world();
void start_the_world();

// Registry locked, world stopped: fn(record, is_self) for every record.
template <class F>
void for_each_thread_locked(F&& fn);
ThreadRecord* first_thread_locked();

// Incremented when a cycle stops the world and when it restarts it: a
// fast path that sees it change was in flight across a cycle.
extern std::atomic<std::uint64_t> g_world_epoch;

// Debug-malloc: set while the calling thread runs the inline fast path
// (between its entry check and its exit check, or the slow path's start).
extern __thread bool tls_in_fast_path __attribute__((tls_model("initial-exec")));
// A stop request that arrived during the fast path; the exit check calls
// park_deferred_stop when it is set.
extern __thread bool tls_stop_deferred __attribute__((tls_model("initial-exec")));
void park_deferred_stop();
// Test hook: when true, the handler stops a thread even inside the fast
// path (so a test can show that the exit check catches a cycle).
extern bool debug_no_stop_deferral;

// Zero the SSE registers. A new thread starts with a copy of its creator's,
// and a thread that then only waits (the finalizer thread) would hold a
// stale heap address there, which the stop handler saves and the mark
// scans, for ever. The collector's own registered threads call this.
inline void clear_vector_registers() {
  asm volatile(
      "pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\tpxor %%xmm3, %%xmm3\n\t"
      "pxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\tpxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\t"
      "pxor %%xmm8, %%xmm8\n\tpxor %%xmm9, %%xmm9\n\tpxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
      "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\tpxor %%xmm14, %%xmm14\n\tpxor %%xmm15, %%xmm15" ::
          : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
            "xmm13", "xmm14", "xmm15");
}

// Zero bytes of the stack below the caller's frame. Dead frames keep
// copies of heap addresses (a cache's chunk bases, a finalizer's object);
// a frame later made in the same place, and scanned because it is live,
// would otherwise find them there. Not instrumented by AddressSanitizer,
// whose redzones would stay unwritten.
[[gnu::noinline]] void scrub_stack_below(std::size_t bytes = 32 * 1024);

// The signal in use (after options are read).
int suspend_signal();
void set_suspend_signal(int sig);

template <class F>
void for_each_thread_locked(F&& fn) {
  for (ThreadRecord* r = first_thread_locked(); r != nullptr; r = r->next) fn(r);
}

}  // namespace mgc::internal
