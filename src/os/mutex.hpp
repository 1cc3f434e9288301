// The library's mutex: a futex word of three states (free, held, held
// with waiters), as glibc's default mutex keeps it, but waited on with
// the futex system call directly instead of through pthread_mutex_lock.
//
// Why not std::mutex: a thread that waits for one of the collector's locks
// must still take the stop-the-world signal while it waits (the collector
// may hold that lock while it stops the world, and a stopped thread may
// hold one another thread waits for). ThreadSanitizer defers asynchronous
// signals while their thread is inside an intercepted call that it does
// not know to block, pthread_mutex_lock among them, so under TSan such a
// stop waited forever. Here the wait is a system call TSan does not
// intercept; the lock tells TSan what it does with the __tsan_mutex_*
// annotations (so TSan still sees the happens-before edges and the lock
// order), and in a TSan build its waits time out now and then, so that a
// signal TSan deferred is delivered at the next atomic operation instead
// of waiting for the lock's holder. Other builds see none of it.
//
// Invariants: state_ is 0 only when no thread holds the lock; a thread
// that sleeps on the word has first made it 2, so an unlock that finds 2
// wakes one sleeper. Not recursive, and not bound to a thread: fork
// handlers unlock in the child what the parent's thread locked (the same
// thread, the only one there).
//
// Owns: its word. Never allocates, never calls into the heap.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define MALLOCGC_TSAN 1
#endif

namespace mgc::internal {

// The futex system call on a 32-bit word, called directly (not through an
// interceptor: see the top of the file); the waits' EINTR, EAGAIN and
// ETIMEDOUT all send the caller round its loop again.
inline long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value, const timespec* timeout) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr, 0);
}

class Mutex {
 public:
  constexpr Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() noexcept {
#ifdef MALLOCGC_TSAN
    __tsan_mutex_pre_lock(this, 0);
#endif
    std::uint32_t expected = 0;
    if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) [[unlikely]]
      lock_contended();
#ifdef MALLOCGC_TSAN
    __tsan_mutex_post_lock(this, 0, 0);
#endif
  }

  bool try_lock() noexcept {
#ifdef MALLOCGC_TSAN
    __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
#endif
    std::uint32_t expected = 0;
    const bool got = state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed);
#ifdef MALLOCGC_TSAN
    __tsan_mutex_post_lock(this, got ? __tsan_mutex_try_lock : __tsan_mutex_try_lock | __tsan_mutex_try_lock_failed, 0);
#endif
    return got;
  }

  void unlock() noexcept {
#ifdef MALLOCGC_TSAN
    __tsan_mutex_pre_unlock(this, 0);
#endif
    if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]]
      futex(&state_, FUTEX_WAKE_PRIVATE, 1, nullptr);
#ifdef MALLOCGC_TSAN
    __tsan_mutex_post_unlock(this, 0);
#endif
  }

 private:
  __attribute__((noinline)) void lock_contended() noexcept {
    // A short spin first: the collector's locks are held for a few
    // hundred instructions at a time, less than a sleep and a wake-up.
    for (int i = 0; i < 64; i++) {
      __builtin_ia32_pause();
      std::uint32_t expected = 0;
      if (state_.load(std::memory_order_relaxed) == 0 &&
          state_.compare_exchange_weak(expected, 1, std::memory_order_acquire, std::memory_order_relaxed))
        return;
    }
    // Held: mark it as waited for, and sleep until an unlock finds it so.
    // Whoever gets it from here leaves it at 2 (there may be other
    // sleepers), which costs at most one needless wake-up.
    while (state_.exchange(2, std::memory_order_acquire) != 0) {
#ifdef MALLOCGC_TSAN
      const timespec tick = {0, 1000000};  // see the top of the file
      futex(&state_, FUTEX_WAIT_PRIVATE, 2, &tick);
#else
      futex(&state_, FUTEX_WAIT_PRIVATE, 2, nullptr);
#endif
    }
  }

  std::atomic<std::uint32_t> state_{0};
};

static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

}  // namespace mgc::internal
