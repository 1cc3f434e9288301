// Shared by the collector tests in tests/gc: tracked objects whose fate is
// shown by a weak reference, a finalizer and a payload, and the hygiene a
// conservative collector needs from a test that wants an object reclaimed.
//
// The rules every test here follows:
//
//   - A test body never holds a raw heap pointer it wants reclaimed. Raw
//     pointers live only in noinline helpers (their frames are dead when the
//     helper returns) and in the one root the test is about; elsewhere an
//     object is named by a Tracked: an id and the address XORed with kMask
//     (bit 63 set, so never a user-space address the scan could mistake).
//   - Before a cycle whose outcome is checked, collect_clean() overwrites
//     64 KiB of stack below the caller and zeroes the scratch registers, so
//     that no stale copy left by a helper is found in a dead frame.
//   - "Kept" is proven by the weak reference still pointing at the object,
//     its finalizer not having run, and its payload being intact after
//     allocating over any slot the collector might have freed wrongly.
//     "Reclaimed" is proven by the weak reference being cleared and the
//     finalizer having run exactly once, on an intact object: never by
//     timing.
//
// Layout of a tracked object (at least kMinTrackedSize bytes):
//   word 0  kTagMagic ^ id     (not an address)
//   word 1  link: a pointer the test may set, or 0 (not checked)
//   word 2+ pattern(id, i)     (bit 63 set: not an address)
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "gc/threads.hpp"  // print_references names registered threads
#include "gtest/gtest.h"
#include "mallocgc/mallocgc.hpp"
#include "os/sanitizer.hpp"  // print_references reads as the collector does

namespace gctest {

// --- hiding pointers from the scan ------------------------------------------

constexpr std::uintptr_t kMask = 0xA5C3'96F0'0F69'3C5Aull;  // bit 63 set
static_assert((kMask >> 63) == 1);

inline std::uintptr_t hide(const void* p) { return reinterpret_cast<std::uintptr_t>(p) ^ kMask; }
inline void* reveal(std::uintptr_t h) { return reinterpret_cast<void*>(h ^ kMask); }

// --- stack and register hygiene ---------------------------------------------

constexpr std::size_t kScrubBytes = 64 * 1024;

// Zero the caller-saved general registers and the low halves of the vector
// registers (memset and memcpy leave copies there).
[[gnu::always_inline]] inline void clobber_scratch_registers() {
#if defined(__x86_64__)
  asm volatile(
      "xor %%eax, %%eax\n\t"
      "xor %%ecx, %%ecx\n\t"
      "xor %%edx, %%edx\n\t"
      "xor %%esi, %%esi\n\t"
      "xor %%edi, %%edi\n\t"
      "xor %%r8d, %%r8d\n\t"
      "xor %%r9d, %%r9d\n\t"
      "xor %%r10d, %%r10d\n\t"
      "xor %%r11d, %%r11d\n\t"
      "pxor %%xmm0, %%xmm0\n\t"
      "pxor %%xmm1, %%xmm1\n\t"
      "pxor %%xmm2, %%xmm2\n\t"
      "pxor %%xmm3, %%xmm3\n\t"
      "pxor %%xmm4, %%xmm4\n\t"
      "pxor %%xmm5, %%xmm5\n\t"
      "pxor %%xmm6, %%xmm6\n\t"
      "pxor %%xmm7, %%xmm7\n\t"
      "pxor %%xmm8, %%xmm8\n\t"
      "pxor %%xmm9, %%xmm9\n\t"
      "pxor %%xmm10, %%xmm10\n\t"
      "pxor %%xmm11, %%xmm11\n\t"
      "pxor %%xmm12, %%xmm12\n\t"
      "pxor %%xmm13, %%xmm13\n\t"
      "pxor %%xmm14, %%xmm14\n\t"
      "pxor %%xmm15, %%xmm15\n\t" ::
          : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
            "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
#elif defined(__aarch64__)
  asm volatile(
      "mov x0, xzr\n\tmov x1, xzr\n\tmov x2, xzr\n\tmov x3, xzr\n\t"
      "mov x4, xzr\n\tmov x5, xzr\n\tmov x6, xzr\n\tmov x7, xzr\n\t"
      "mov x8, xzr\n\tmov x9, xzr\n\tmov x10, xzr\n\tmov x11, xzr\n\t"
      "mov x12, xzr\n\tmov x13, xzr\n\tmov x14, xzr\n\tmov x15, xzr\n\t"
      "mov x16, xzr\n\tmov x17, xzr\n\t" ::
          : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16",
            "x17", "memory");
#endif
}

// Overwrite the stack the next calls will use and the scratch registers.
// Not instrumented by AddressSanitizer: its redzones around buf would be
// left unwritten, and stale addresses in them would survive the scrub.
[[gnu::noinline]] __attribute__((no_sanitize("address"))) inline void scrub_stack_and_registers() {
  char buf[kScrubBytes];
  std::memset(buf, 0, sizeof buf);
  asm volatile("" : : "r"(buf) : "memory");  // the stores must happen
  clobber_scratch_registers();
}

// A cycle that judges the caller's frames and roots, not the leftovers of
// helpers it called before.
[[gnu::noinline]] inline void collect_clean() {
  scrub_stack_and_registers();
  mgc::collect();
  clobber_scratch_registers();
}

// --- tracked objects --------------------------------------------------------

constexpr std::uint64_t kTagMagic = 0xC0DE'5EED'0000'0000ull | (1ull << 63);
constexpr int kMaxTracked = 1 << 14;
constexpr std::size_t kMinTrackedSize = 32;

enum class Alloc { conservative, noscan, typed };

struct TrackState {
  std::atomic<int> next_id{0};
  std::atomic<int> finalized[kMaxTracked];         // finalizer calls
  std::atomic<int> finalized_intact[kMaxTracked];  // calls that found the payload intact
  std::atomic<int> weak_null_in_finalizer[kMaxTracked];
  std::atomic<int> final_seq[kMaxTracked];  // order of the (first) finalizer call, from 1
  std::atomic<int> seq{0};
  std::atomic<int> bad_finalizer_calls{0};  // calls on objects without a valid tag
  std::size_t size[kMaxTracked];
  Alloc kind[kMaxTracked];
  mgc::Weak<void>* weak[kMaxTracked];  // system-allocated, never destroyed
};

inline TrackState g_track;

// id is a full word on purpose: an int would leave four bytes of padding
// that are never written, and an id of 0 under a stale 0x00007fxx in the
// padding reads as the 4 GiB-aligned address of the first arena, which is
// where the process's first object lives.
struct Tracked {
  std::int64_t id = -1;
  std::uintptr_t hidden = 0;
};

inline std::uint64_t pattern(std::int64_t id, std::size_t word) {
  std::uint64_t x = (static_cast<std::uint64_t>(id) << 32) ^ word ^ 0x9E37'79B9'7F4A'7C15ull;
  x *= 0xBF58'476D'1CE4'E5B9ull;
  x ^= x >> 31;
  return x | (1ull << 63);
}

inline void fill_tracked(void* p, std::int64_t id, std::size_t size) {
  auto* w = static_cast<std::uint64_t*>(p);
  w[0] = kTagMagic ^ static_cast<std::uint64_t>(id);
  w[1] = 0;
  for (std::size_t i = 2; i < size / 8; i++) w[i] = pattern(id, i);
}

inline bool tracked_intact(const void* p, std::int64_t id) {
  const auto* w = static_cast<const std::uint64_t*>(p);
  if (w[0] != (kTagMagic ^ static_cast<std::uint64_t>(id))) return false;
  for (std::size_t i = 2; i < g_track.size[id] / 8; i++)
    if (w[i] != pattern(id, i)) return false;
  return true;
}

inline int tracked_id(const void* obj) {
  const std::uint64_t tag = *static_cast<const std::uint64_t*>(obj) ^ kTagMagic;
  return tag < static_cast<std::uint64_t>(kMaxTracked) ? static_cast<int>(tag) : -1;
}

// The finalizer of tracked objects: counts the call, checks the payload and
// that the weak reference was cleared first. data must be nullptr.
inline void on_finalize(void* obj, void* data) {
  const int id = tracked_id(obj);
  if (id < 0 || id >= g_track.next_id.load() || data != nullptr) {
    g_track.bad_finalizer_calls.fetch_add(1);
    return;
  }
  if (tracked_intact(obj, id)) g_track.finalized_intact[id].fetch_add(1);
  if (g_track.weak[id]->get() == nullptr) g_track.weak_null_in_finalizer[id].fetch_add(1);
  int expected = 0;
  g_track.final_seq[id].compare_exchange_strong(expected, g_track.seq.fetch_add(1) + 1);
  g_track.finalized[id].fetch_add(1);
}

inline void* allocate(Alloc kind, std::size_t size) {
  switch (kind) {
    case Alloc::conservative:
      return mgc::alloc(size);
    case Alloc::noscan:
      return mgc::alloc_noscan(size);
    case Alloc::typed:
      return mgc::alloc_typed(mgc::Type(size, {8}));  // the link word is a pointer
  }
  return nullptr;
}

[[gnu::noinline]] inline Tracked track_new_here(std::size_t size, Alloc kind, bool finalizer) {
  size = (size < kMinTrackedSize ? kMinTrackedSize : size + 7) & ~std::size_t{7};
  const int id = g_track.next_id.fetch_add(1);
  if (id >= kMaxTracked) {
    std::fprintf(stderr, "gc_test_support: more than %d tracked objects\n", kMaxTracked);
    std::abort();
  }
  void* p = allocate(kind, size);
  if (p == nullptr) {
    std::fprintf(stderr, "gc_test_support: allocation of %zu bytes failed\n", size);
    std::abort();
  }
  g_track.size[id] = size;
  g_track.kind[id] = kind;
  fill_tracked(p, id, size);
  g_track.weak[id] = new mgc::Weak<void>(p);
  if (finalizer) mgc::set_finalizer(p, on_finalize, nullptr);
  return {static_cast<std::int64_t>(id), hide(p)};
}

// A new tracked object of size bytes (rounded up to words), with a weak
// reference and, if asked, the finalizer on_finalize. The work runs one
// frame down and is scrubbed after: the frame that made the object may
// keep its address in a slot (a value live across a call that can throw
// is spilled), and the caller's next callee, the test's holder, takes the
// same stack and may never write that slot; its scan would find the stale
// copy there (the ASan build did, once mgc::set_finalizer could throw).
[[gnu::noinline]] inline Tracked track_new(std::size_t size = 64, Alloc kind = Alloc::conservative,
                                           bool finalizer = true) {
  const Tracked t = track_new_here(size, kind, finalizer);
  scrub_stack_and_registers();
  return t;
}

inline int finalized(const Tracked& t) { return g_track.finalized[t.id].load(); }
inline int final_seq(const Tracked& t) { return g_track.final_seq[t.id].load(); }

[[gnu::noinline]] inline bool weak_alive(const Tracked& t) { return g_track.weak[t.id]->get() != nullptr; }
[[gnu::noinline]] inline bool weak_points_at_object(const Tracked& t) {
  return hide(g_track.weak[t.id]->get()) == t.hidden;
}
[[gnu::noinline]] inline bool payload_intact(const Tracked& t) { return tracked_intact(reveal(t.hidden), t.id); }

// Write to to's object (reveal(to.hidden), or nullptr for to.hidden == 0)
// into the link word of from.
[[gnu::noinline]] inline void set_link(const Tracked& from, std::uintptr_t to_hidden) {
  static_cast<void**>(reveal(from.hidden))[1] = to_hidden == 0 ? nullptr : reveal(to_hidden);
}

// Allocate over the slots a wrong free would have released: objects of the
// same size and kind, filled with a non-address byte, then dropped.
[[gnu::noinline]] inline void churn(std::size_t size, Alloc kind) {
  std::size_t n = (std::size_t{2} << 20) / size;
  if (n > 160) n = 160;
  if (n < 2) n = 2;
  for (std::size_t i = 0; i < n; i++) {
    void* p = allocate(kind, size);
    if (p != nullptr) std::memset(p, 0xAB, size);
  }
  scrub_stack_and_registers();
}

inline void expect_kept_at(const Tracked& t, const char* file, int line) {
  SCOPED_TRACE(testing::Message() << "tracked object #" << t.id << " (" << g_track.size[t.id]
                                  << " bytes) expected alive, checked at " << file << ":" << line);
  mgc::wait_for_finalizers();
  const bool alive = weak_points_at_object(t);
  EXPECT_TRUE(alive) << "its weak reference was cleared: the collector found the object unreachable";
  EXPECT_EQ(finalized(t), 0) << "its finalizer ran";
  if (alive) {
    churn(g_track.size[t.id], g_track.kind[t.id]);
    EXPECT_TRUE(payload_intact(t)) << "its contents changed";
  }
}

// Diagnosis for an object that outlived the cycle meant to reclaim it:
// print each word of the process's writable mappings that points into it,
// with the mapping (a data segment, the heap, a thread's stack: which
// registered thread, and whether above the stack pointer the last stop
// published, i.e. scanned), and the registers the last stop saved that
// point into it. It tells a stale copy in the test's frames from one in the
// collector's own threads. The words of this function's frame are skipped.
// Under valgrind it reads every writable mapping, valgrind's own and
// unwritten stack included: memcheck's error reporting is off meanwhile,
// as for the collector's conservative reads (else one failed check of a
// test adds millions of "Invalid read" and "uninitialised" errors).
[[gnu::noinline]] __attribute__((no_sanitize("address"))) inline void print_references(const Tracked& t) {
  namespace mi = mgc::internal;
  char here;
  const auto own_lo = reinterpret_cast<std::uintptr_t>(&here) - 4096;
  const auto own_hi = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) + 256;
  const std::uintptr_t lo = t.hidden ^ kMask, hi = lo + g_track.size[t.id];
  std::fprintf(stderr, "references to tracked object #%lld [%#lx, %#lx):\n", static_cast<long long>(t.id),
               static_cast<unsigned long>(lo), static_cast<unsigned long>(hi));
  struct Stack {
    pid_t tid;
    std::uintptr_t lo, hi, sp;
  } stacks[64];
  int nstacks = 0;
  mi::lock_threads();
  for (const mi::ThreadRecord* r = mi::first_thread_locked(); r != nullptr; r = r->next) {
    if (nstacks < 64) stacks[nstacks++] = {r->tid, r->stack_lo, r->stack_hi, r->stopped_sp};
    for (int i = 0; i < mi::ThreadRecord::kRegs; i++)
      if (r->regs[i] >= lo && r->regs[i] < hi)
        std::fprintf(stderr, "  register slot %d of thread %d at its last stop holds %#lx\n", i, r->tid,
                     static_cast<unsigned long>(r->regs[i]));
  }
  mi::unlock_threads();
  FILE* maps = std::fopen("/proc/self/maps", "r");
  if (maps == nullptr) return;
  char line[512];
  int shown = 0;
  mi::collector_reads_begin();
  while (std::fgets(line, sizeof line, maps) != nullptr) {
    unsigned long b = 0, e = 0;
    char perms[5] = {};
    if (std::sscanf(line, "%lx-%lx %4s", &b, &e, perms) != 3 || perms[0] != 'r' || perms[1] != 'w') continue;
    if (e - b > (256ul << 20) || std::strstr(line, "[vvar]") != nullptr) continue;  // sanitizer shadow and such
    line[std::strcspn(line, "\n")] = '\0';
    for (std::uintptr_t a = b; a + 8 <= e; a += 8) {
      if (a >= own_lo && a < own_hi) continue;
      const std::uintptr_t v = *reinterpret_cast<const volatile std::uintptr_t*>(a);
      if (v < lo || v >= hi || shown++ >= 20) continue;
      std::fprintf(stderr, "  %#lx holds %#lx; %#lx bytes below the end of %s\n", static_cast<unsigned long>(a),
                   static_cast<unsigned long>(v), static_cast<unsigned long>(e - a), line);
      for (int i = 0; i < nstacks; i++)
        if (a >= stacks[i].lo && a < stacks[i].hi)
          std::fprintf(stderr, "    on the stack of registered thread %d%s, %s its last stopped sp %#lx\n",
                       stacks[i].tid, stacks[i].tid == ::getpid() ? " (main)" : "",
                       a >= stacks[i].sp ? "above" : "below", static_cast<unsigned long>(stacks[i].sp));
    }
  }
  mi::collector_reads_end();
  std::fclose(maps);
}

inline void expect_reclaimed_at(const Tracked& t, bool has_finalizer, const char* file, int line) {
  SCOPED_TRACE(testing::Message() << "tracked object #" << t.id << " (" << g_track.size[t.id]
                                  << " bytes) expected reclaimed, checked at " << file << ":" << line);
  const bool alive = weak_alive(t);
  EXPECT_FALSE(alive) << "its weak reference still points at it after the cycle";
  if (alive) print_references(t);
  mgc::wait_for_finalizers();
  if (has_finalizer) {
    EXPECT_EQ(finalized(t), 1) << "its finalizer should have run exactly once";
    EXPECT_EQ(g_track.finalized_intact[t.id].load(), finalized(t)) << "the finalizer saw changed contents";
    EXPECT_EQ(g_track.weak_null_in_finalizer[t.id].load(), finalized(t))
        << "the weak reference was not cleared before the finalizer ran";
  }
}

#define EXPECT_KEPT(t) ::gctest::expect_kept_at((t), __FILE__, __LINE__)
#define EXPECT_RECLAIMED(t) ::gctest::expect_reclaimed_at((t), true, __FILE__, __LINE__)
#define EXPECT_RECLAIMED_NO_FINALIZER(t) ::gctest::expect_reclaimed_at((t), false, __FILE__, __LINE__)

// Cycles (collect_clean) until t's weak reference is cleared, at most max;
// returns how many it took, or -1.
[[gnu::noinline]] inline int cycles_until_cleared(const Tracked& t, int max) {
  for (int i = 1; i <= max; i++) {
    collect_clean();
    if (!weak_alive(t)) return i;
  }
  return -1;
}

// --- pacing -------------------------------------------------------------------

// Sets GOGC for its lifetime and restores the previous setting.
class GcPercentScope {
 public:
  explicit GcPercentScope(int percent) : previous_(mgc::set_gc_percent(percent)) {}
  ~GcPercentScope() { mgc::set_gc_percent(previous_); }
  GcPercentScope(const GcPercentScope&) = delete;
  GcPercentScope& operator=(const GcPercentScope&) = delete;

 private:
  int previous_;
};

// The process's first heap object sits at the base of the first arena,
// which is 4 GiB-aligned: a stack word where a 32-bit 0 or 1 (an int, a
// bool) was stored over the low half of an old 0x00007fxx'xxxxxxxx value
// reads as an address inside that object, so the collector may find it
// referenced when nothing refers to it (a conservative collector's false
// retention, seen here about once in a few hundred runs). Test files take
// that slot for good before their tests, so that no tracked object lands
// there (the pointer lives in this .bss variable).
inline void* volatile g_first_object;

[[gnu::noinline]] inline void allocate_the_first_object() { g_first_object = mgc::alloc(16); }

// Run fn 128 KiB below the caller, then scrub there. For work done outside
// a test body (an environment's SetUp): the heap's first use leaves heap
// addresses (an arena's base, a span's) in the frames it runs in, and at a
// shallow depth those slots would later be the never-written holes of live
// gtest frames and test bodies, where no scrub reaches and the scan finds
// them. Deep down they are below every frame a cycle scans.
template <class F>
[[gnu::noinline]] void run_deep(F fn) {
  char pad[128 * 1024];
  asm volatile("" : : "r"(pad) : "memory");
  fn();
  scrub_stack_and_registers();
  asm volatile("" : : "r"(pad) : "memory");
}

// For test files about reachability: no automatic cycle may start between
// a tracked object's creation and the moment the test roots it (the
// object is only hidden then), so only the tests' own collect() calls run
// cycles. Register once per file:
//
//   const auto* const kGcOff = testing::AddGlobalTestEnvironment(new gctest::AutomaticCollectionOff);
class AutomaticCollectionOff : public testing::Environment {
 public:
  void SetUp() override {
    run_deep([this] {
      previous_ = mgc::set_gc_percent(-1);
      allocate_the_first_object();
    });
  }
  void TearDown() override { mgc::set_gc_percent(previous_); }

 private:
  int previous_ = 100;
};

// For test files that leave pacing alone: only take the first object.
class FirstObjectTaken : public testing::Environment {
 public:
  void SetUp() override {
    run_deep([] { allocate_the_first_object(); });
  }
};

// --- threads -----------------------------------------------------------------

// A counter threads wait on: set() raises it, wait_for(n) blocks until it
// is at least n. No allocation.
class Phase {
 public:
  void set(int v) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (v > value_) value_ = v;
    }
    cv_.notify_all();
  }
  void wait_for(int v) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return value_ >= v; });
  }
  int get() {
    std::lock_guard<std::mutex> lock(m_);
    return value_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int value_ = 0;
};

// First thing in a thread a test starts: a new thread begins with a copy
// of its creator's vector registers, which the stop handler saves and the
// mark scans; they may hold a stale address the test wants reclaimed.
[[gnu::always_inline]] inline void new_thread_hygiene() { clobber_scratch_registers(); }

inline pid_t this_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// The system call thread tid is blocked in, from /proc (-1: running, -2:
// unknown).
inline long current_syscall(pid_t tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/syscall", static_cast<int>(tid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -2;
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -2;
  buf[n] = '\0';
  if (std::strncmp(buf, "running", 7) == 0) return -1;
  return std::strtol(buf, nullptr, 10);
}

// Wait (polling /proc, not timing anything) until thread tid sits in system
// call nr or nr2. False if /proc cannot tell or it took over ~20 s: the test
// then goes on without the guarantee and says so.
inline bool wait_until_in_syscall(pid_t tid, long nr, long nr2 = -100) {
  for (int i = 0; i < 20000; i++) {
    const long s = current_syscall(tid);
    if (s == nr || s == nr2) {
      // Seen twice in a row: blocked, not passing through.
      ::usleep(1000);
      const long again = current_syscall(tid);
      if (again == nr || again == nr2) return true;
    }
    if (s == -2) return false;
    ::usleep(1000);
  }
  return false;
}

}  // namespace gctest
