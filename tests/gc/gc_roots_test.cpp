// The collector's roots (src/gc/roots): each kind keeps an object alive,
// contents intact, while it holds the object's only reference, and the
// object is reclaimed once it lets go. The kinds: a stack slot (near the
// top and under 2000 frames), a callee-saved register of the collecting
// thread, any register of a thread the collector stopped, a global in .bss
// and in .data, a thread_local of the main thread and of another thread,
// and add_roots ranges (system malloc and mmap, overlapping and repeated).
// Memory from the system malloc is not a root unless registered.
//
// See gc_test_support.hpp for how a test keeps stale copies out of the
// scan; in short: no raw heap pointer in a test body.
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <thread>

#include "gc_test_support.hpp"

using gctest::collect_clean;
using gctest::hide;
using gctest::reveal;
using gctest::track_new;
using gctest::Tracked;

// Roots in the executable's data segment. Not static, not in an anonymous
// namespace: they must exist as written.
void* volatile gctest_bss_slot;  // zero-initialised: .bss
char gctest_anchor;
void* volatile gctest_data_slot = &gctest_anchor;                   // initialised: .data
thread_local void* volatile gctest_tls_bss_slot;                    // .tbss
thread_local void* volatile gctest_tls_data_slot = &gctest_anchor;  // .tdata

// --- registers ----------------------------------------------------------------
// gctest_hold_in_<reg>(hidden, during) puts the object's address in <reg>
// (and nowhere else), calls during(), and returns <reg> hidden again.
// gctest_spin_in_<reg>(hidden, go, ready) does the same, sets *ready and
// spins until *go: a thread stopped anywhere in that loop has the only
// reference in <reg>.

#if defined(__x86_64__)
#define GCTEST_MASK "0xA5C396F00F693C5A"
static_assert(gctest::kMask == 0xA5C396F00F693C5Aull);

#define GCTEST_HOLD_IN(reg)                                   \
  asm(".pushsection .text\n"                                  \
      ".globl gctest_hold_in_" #reg                           \
      "\n"                                                    \
      ".type gctest_hold_in_" #reg                            \
      ", @function\n"                                         \
      "gctest_hold_in_" #reg                                  \
      ":\n"                                                   \
      ".cfi_startproc\n"                                      \
      "  push %" #reg                                         \
      "\n"                                                    \
      ".cfi_adjust_cfa_offset 8\n"                            \
      ".cfi_rel_offset %" #reg                                \
      ", 0\n"                                                 \
      "  movabs $" GCTEST_MASK                                \
      ", %rax\n"                                              \
      "  mov %rdi, %" #reg                                    \
      "\n"                                                    \
      "  xor %rax, %" #reg                                    \
      "\n"                                                    \
      "  xor %eax, %eax\n"                                    \
      "  xor %edi, %edi\n"                                    \
      "  call *%rsi\n"                                        \
      "  movabs $" GCTEST_MASK                                \
      ", %rax\n"                                              \
      "  xor %" #reg                                          \
      ", %rax\n"                                              \
      "  pop %" #reg                                          \
      "\n"                                                    \
      ".cfi_adjust_cfa_offset -8\n"                           \
      ".cfi_restore %" #reg                                   \
      "\n"                                                    \
      "  ret\n"                                               \
      ".cfi_endproc\n"                                        \
      ".size gctest_hold_in_" #reg ", .-gctest_hold_in_" #reg \
      "\n"                                                    \
      ".popsection\n");                                       \
  extern "C" std::uintptr_t gctest_hold_in_##reg(std::uintptr_t, void (*)());

#define GCTEST_SPIN_IN(reg)                                   \
  asm(".pushsection .text\n"                                  \
      ".globl gctest_spin_in_" #reg                           \
      "\n"                                                    \
      ".type gctest_spin_in_" #reg                            \
      ", @function\n"                                         \
      "gctest_spin_in_" #reg                                  \
      ":\n"                                                   \
      ".cfi_startproc\n"                                      \
      "  push %" #reg                                         \
      "\n"                                                    \
      ".cfi_adjust_cfa_offset 8\n"                            \
      ".cfi_rel_offset %" #reg                                \
      ", 0\n"                                                 \
      "  movabs $" GCTEST_MASK                                \
      ", %rax\n"                                              \
      "  mov %rdi, %" #reg                                    \
      "\n"                                                    \
      "  xor %rax, %" #reg                                    \
      "\n"                                                    \
      "  xor %eax, %eax\n"                                    \
      "  xor %edi, %edi\n"                                    \
      "  movl $1, (%rdx)\n"                                   \
      "1:\n"                                                  \
      "  pause\n"                                             \
      "  cmpl $0, (%rsi)\n"                                   \
      "  je 1b\n"                                             \
      "  movabs $" GCTEST_MASK                                \
      ", %rax\n"                                              \
      "  xor %" #reg                                          \
      ", %rax\n"                                              \
      "  pop %" #reg                                          \
      "\n"                                                    \
      ".cfi_adjust_cfa_offset -8\n"                           \
      ".cfi_restore %" #reg                                   \
      "\n"                                                    \
      "  ret\n"                                               \
      ".cfi_endproc\n"                                        \
      ".size gctest_spin_in_" #reg ", .-gctest_spin_in_" #reg \
      "\n"                                                    \
      ".popsection\n");                                       \
  extern "C" std::uintptr_t gctest_spin_in_##reg(std::uintptr_t, const volatile int*, volatile int*);

GCTEST_HOLD_IN(rbx)
GCTEST_HOLD_IN(rbp)
GCTEST_HOLD_IN(r12)
GCTEST_HOLD_IN(r13)
GCTEST_HOLD_IN(r14)
GCTEST_HOLD_IN(r15)

GCTEST_SPIN_IN(rbx)
GCTEST_SPIN_IN(rbp)
GCTEST_SPIN_IN(r12)
GCTEST_SPIN_IN(r13)
GCTEST_SPIN_IN(r14)
GCTEST_SPIN_IN(r15)
GCTEST_SPIN_IN(rcx)
GCTEST_SPIN_IN(r8)
GCTEST_SPIN_IN(r9)
GCTEST_SPIN_IN(r10)
GCTEST_SPIN_IN(r11)

#endif  // __x86_64__

namespace {

const auto* const kGcOff = testing::AddGlobalTestEnvironment(new gctest::AutomaticCollectionOff);

void* from_hidden(std::uintptr_t h) { return h == 0 ? nullptr : reveal(h); }

[[gnu::noinline]] void set_bss_slot(std::uintptr_t h) { gctest_bss_slot = from_hidden(h); }
[[gnu::noinline]] void set_data_slot(std::uintptr_t h) { gctest_data_slot = h == 0 ? &gctest_anchor : reveal(h); }
[[gnu::noinline]] void set_tls_bss_slot(std::uintptr_t h) { gctest_tls_bss_slot = from_hidden(h); }
[[gnu::noinline]] void set_tls_data_slot(std::uintptr_t h) {
  gctest_tls_data_slot = h == 0 ? &gctest_anchor : reveal(h);
}
[[gnu::noinline]] void store_word(void** where, std::uintptr_t h) { *where = from_hidden(h); }

// --- sanity of the harness ----------------------------------------------------

// Nothing refers to the object at all: one cycle reclaims it. If this
// fails, every "reclaimed" check in this folder means nothing.
TEST(GcRoots, UnreferencedObjectIsReclaimedInOneCycle) {
  const struct {
    std::size_t size;
    gctest::Alloc kind;
  } cases[] = {
      {32, gctest::Alloc::conservative},   {64, gctest::Alloc::noscan},          {200, gctest::Alloc::typed},
      {4096, gctest::Alloc::conservative}, {40000, gctest::Alloc::conservative}, {200000, gctest::Alloc::noscan},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "size " << c.size << " kind " << static_cast<int>(c.kind));
    Tracked t = track_new(c.size, c.kind);
    collect_clean();
    EXPECT_RECLAIMED(t);
  }
}

// --- the stack ----------------------------------------------------------------

[[gnu::noinline]] void hold_in_stack_slot(const Tracked& t) {
  void* volatile slot = reveal(t.hidden);
  collect_clean();
  EXPECT_KEPT(t);
  slot = nullptr;
  collect_clean();
  EXPECT_RECLAIMED(t);
  (void)slot;
}

TEST(GcRoots, StackSlot) {
  Tracked t = track_new(64);
  hold_in_stack_slot(t);
}

TEST(GcRoots, StackSlotLargeObject) {
  Tracked t = track_new(300000);
  hold_in_stack_slot(t);
}

bool g_deep_kept = false;

[[gnu::noinline]] int recurse_then_collect(int depth, const Tracked& t) {
  volatile char pad[64];
  pad[0] = static_cast<char>(depth);
  if (depth == 0) {
    collect_clean();
    g_deep_kept = gctest::weak_points_at_object(t);
    return 0;
  }
  return recurse_then_collect(depth - 1, t) + pad[0];
}

[[gnu::noinline]] void hold_under_deep_stack(const Tracked& t) {
  void* volatile slot = reveal(t.hidden);
  recurse_then_collect(2000, t);
  EXPECT_TRUE(g_deep_kept) << "a slot 2000 frames above the collecting frame was not scanned";
  EXPECT_KEPT(t);
  slot = nullptr;
  (void)slot;
}

// The slot is 2000 frames (some 200 KiB) above the frame that collects.
TEST(GcRoots, StackSlotFarAboveTheCollectingFrame) {
  Tracked t = track_new(64);
  hold_under_deep_stack(t);
  collect_clean();
  EXPECT_RECLAIMED(t);
}

// --- registers ----------------------------------------------------------------

#if defined(__x86_64__)
Tracked g_hold_tracked;
bool g_hold_kept_by_cycle = false;

// Runs with the object's only reference in the register under test.
void during_hold() {
  collect_clean();
  g_hold_kept_by_cycle = gctest::weak_points_at_object(g_hold_tracked);
  gctest::churn(gctest::g_track.size[g_hold_tracked.id], gctest::g_track.kind[g_hold_tracked.id]);
}

TEST(GcRoots, CalleeSavedRegisterOfTheCollectingThread) {
  const struct {
    const char* name;
    std::uintptr_t (*hold)(std::uintptr_t, void (*)());
  } regs[] = {
      {"rbx", gctest_hold_in_rbx}, {"rbp", gctest_hold_in_rbp}, {"r12", gctest_hold_in_r12},
      {"r13", gctest_hold_in_r13}, {"r14", gctest_hold_in_r14}, {"r15", gctest_hold_in_r15},
  };
  for (const auto& r : regs) {
    SCOPED_TRACE(r.name);
    Tracked t = track_new(96);
    g_hold_tracked = t;
    g_hold_kept_by_cycle = false;
    const std::uintptr_t back = r.hold(t.hidden, during_hold);
    EXPECT_EQ(back, t.hidden) << "the register did not survive the call";
    EXPECT_TRUE(g_hold_kept_by_cycle) << "the cycle cleared the weak reference of an object held in " << r.name;
    EXPECT_KEPT(t);
    collect_clean();
    EXPECT_RECLAIMED(t);
  }
}

volatile int g_spin_go = 0;
volatile int g_spin_ready = 0;

// Another (registered) thread is stopped by the collector while the only
// reference sits in one of its registers; callee-saved and scratch alike,
// since a stop signal can land anywhere.
TEST(GcRoots, AnyRegisterOfAStoppedThread) {
  const struct {
    const char* name;
    std::uintptr_t (*spin)(std::uintptr_t, const volatile int*, volatile int*);
  } regs[] = {
      {"rbx", gctest_spin_in_rbx}, {"rbp", gctest_spin_in_rbp}, {"r12", gctest_spin_in_r12},
      {"r13", gctest_spin_in_r13}, {"r14", gctest_spin_in_r14}, {"r15", gctest_spin_in_r15},
      {"rcx", gctest_spin_in_rcx}, {"r8", gctest_spin_in_r8},   {"r9", gctest_spin_in_r9},
      {"r10", gctest_spin_in_r10}, {"r11", gctest_spin_in_r11},
  };
  for (const auto& r : regs) {
    SCOPED_TRACE(r.name);
    Tracked t = track_new(64);
    g_spin_go = 0;
    g_spin_ready = 0;
    std::uintptr_t back = 0;
    const std::uintptr_t hidden = t.hidden;
    auto spin = r.spin;
    std::thread th([&back, hidden, spin] {
      gctest::new_thread_hygiene();
      mgc::ThreadScope scope;
      back = spin(hidden, &g_spin_go, &g_spin_ready);
    });
    while (g_spin_ready == 0) sched_yield();
    collect_clean();
    EXPECT_KEPT(t);
    collect_clean();  // a second stop at another instruction of the loop
    EXPECT_KEPT(t);
    g_spin_go = 1;
    th.join();
    EXPECT_EQ(back, t.hidden) << "the register was changed while the thread was stopped";
    collect_clean();
    EXPECT_RECLAIMED(t);
  }
}
#else
TEST(GcRoots, CalleeSavedRegisterOfTheCollectingThread) { GTEST_SKIP() << "x86-64 only"; }
TEST(GcRoots, AnyRegisterOfAStoppedThread) { GTEST_SKIP() << "x86-64 only"; }
#endif

// --- the data segment ---------------------------------------------------------

TEST(GcRoots, GlobalInBss) {
  Tracked t = track_new(64);
  set_bss_slot(t.hidden);
  collect_clean();
  EXPECT_KEPT(t);
  set_bss_slot(0);
  collect_clean();
  EXPECT_RECLAIMED(t);
}

TEST(GcRoots, GlobalInData) {
  Tracked t = track_new(5000);
  set_data_slot(t.hidden);
  collect_clean();
  EXPECT_KEPT(t);
  set_data_slot(0);
  collect_clean();
  EXPECT_RECLAIMED(t);
}

// --- thread-local storage -----------------------------------------------------

TEST(GcRoots, ThreadLocalOfTheMainThread) {
  Tracked a = track_new(64);
  Tracked b = track_new(128, gctest::Alloc::noscan);
  set_tls_bss_slot(a.hidden);
  set_tls_data_slot(b.hidden);
  collect_clean();
  EXPECT_KEPT(a);
  EXPECT_KEPT(b);
  set_tls_bss_slot(0);
  collect_clean();
  EXPECT_RECLAIMED(a);
  EXPECT_KEPT(b);
  set_tls_data_slot(0);
  collect_clean();
  EXPECT_RECLAIMED(b);
}

[[gnu::noinline]] bool tls_slots_intact(const Tracked& a, const Tracked& b) {
  return gctest_tls_bss_slot == reveal(a.hidden) && gctest_tls_data_slot == reveal(b.hidden) &&
         gctest::tracked_intact(gctest_tls_bss_slot, a.id) && gctest::tracked_intact(gctest_tls_data_slot, b.id);
}

// Another thread, registered by a ThreadScope (it never allocates) or by
// its first allocation, holds the only references in its thread_locals
// while it waits; then it clears them and waits again.
void thread_local_of_another_thread(bool register_by_allocation) {
  Tracked a = track_new(64);
  Tracked b = track_new(256);
  gctest::Phase worker, main_phase;
  bool intact_in_thread = false;
  std::thread th([&] {
    gctest::new_thread_hygiene();
    mgc::ThreadScope* scope = nullptr;
    if (register_by_allocation) {
      mgc::alloc_noscan(64);
    } else {
      scope = new mgc::ThreadScope;
    }
    set_tls_bss_slot(a.hidden);
    set_tls_data_slot(b.hidden);
    gctest::scrub_stack_and_registers();
    worker.set(1);
    main_phase.wait_for(1);
    intact_in_thread = tls_slots_intact(a, b);
    set_tls_bss_slot(0);
    set_tls_data_slot(0);
    gctest::scrub_stack_and_registers();
    worker.set(2);
    main_phase.wait_for(2);
    delete scope;
  });
  worker.wait_for(1);
  collect_clean();
  EXPECT_KEPT(a);
  EXPECT_KEPT(b);
  main_phase.set(1);
  worker.wait_for(2);
  EXPECT_TRUE(intact_in_thread) << "the thread found its thread_locals changed";
  collect_clean();
  EXPECT_RECLAIMED(a);
  EXPECT_RECLAIMED(b);
  main_phase.set(2);
  th.join();
}

TEST(GcRoots, ThreadLocalOfAThreadWithAThreadScope) { thread_local_of_another_thread(false); }
TEST(GcRoots, ThreadLocalOfAThreadRegisteredByAllocating) { thread_local_of_another_thread(true); }

// --- explicit root ranges -----------------------------------------------------

// System malloc memory is not scanned: a reference kept only there does
// not keep its object.
TEST(GcRoots, SystemMallocMemoryIsNotARoot) {
  auto** words = static_cast<void**>(std::calloc(16, sizeof(void*)));
  ASSERT_NE(words, nullptr);
  Tracked t = track_new(64);
  store_word(&words[7], t.hidden);
  collect_clean();
  EXPECT_RECLAIMED(t);
  std::free(words);  // never read: it points at a reclaimed object
}

TEST(GcRoots, AddRootsThenRemoveRoots) {
  auto** words = static_cast<void**>(std::calloc(16, sizeof(void*)));
  ASSERT_NE(words, nullptr);
  Tracked t = track_new(64);
  store_word(&words[15], t.hidden);  // the last word of the range
  mgc::add_roots(words, words + 16);
  collect_clean();
  EXPECT_KEPT(t);
  collect_clean();
  EXPECT_KEPT(t);
  mgc::remove_roots(words, words + 16);
  collect_clean();
  EXPECT_RECLAIMED(t);
  std::free(words);
}

TEST(GcRoots, AddRootsOnAnMmapRange) {
  const std::size_t len = 3 * 4096;
  void* m = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  auto** words = static_cast<void**>(m);
  Tracked t = track_new(2048);
  store_word(&words[len / sizeof(void*) / 2], t.hidden);
  mgc::add_roots(words, words + len / sizeof(void*));
  collect_clean();
  EXPECT_KEPT(t);
  mgc::remove_roots(words, words + len / sizeof(void*));
  collect_clean();
  EXPECT_RECLAIMED(t);
  ::munmap(m, len);
}

// Each add needs its remove: the same range twice, and an overlapping one.
TEST(GcRoots, RepeatedAndOverlappingRootRanges) {
  auto** words = static_cast<void**>(std::calloc(32, sizeof(void*)));
  ASSERT_NE(words, nullptr);
  Tracked t = track_new(64);
  store_word(&words[10], t.hidden);

  mgc::add_roots(words, words + 32);
  mgc::add_roots(words, words + 32);
  mgc::remove_roots(words, words + 32);
  collect_clean();
  EXPECT_KEPT(t);
  mgc::remove_roots(words, words + 32);

  mgc::add_roots(words, words + 16);
  mgc::add_roots(words + 8, words + 24);
  mgc::remove_roots(words, words + 16);
  collect_clean();
  EXPECT_KEPT(t);
  mgc::remove_roots(words + 8, words + 24);
  collect_clean();
  EXPECT_RECLAIMED(t);
  std::free(words);
}

// Ranges come and go while others stay: each keeps exactly its own.
TEST(GcRoots, ManyRootRanges) {
  constexpr int kRanges = 64;
  void** ranges[kRanges];
  Tracked ts[kRanges];
  for (int i = 0; i < kRanges; i++) {
    ranges[i] = static_cast<void**>(std::calloc(4, sizeof(void*)));
    ASSERT_NE(ranges[i], nullptr);
    ts[i] = track_new(48);
    store_word(&ranges[i][i % 4], ts[i].hidden);
    mgc::add_roots(ranges[i], ranges[i] + 4);
  }
  for (int i = 0; i < kRanges; i += 2) mgc::remove_roots(ranges[i], ranges[i] + 4);
  collect_clean();
  for (int i = 0; i < kRanges; i++) {
    SCOPED_TRACE(i);
    if (i % 2 == 0) {
      EXPECT_RECLAIMED(ts[i]);
    } else {
      EXPECT_KEPT(ts[i]);
    }
  }
  for (int i = 1; i < kRanges; i += 2) mgc::remove_roots(ranges[i], ranges[i] + 4);
  collect_clean();
  for (int i = 1; i < kRanges; i += 2) EXPECT_RECLAIMED(ts[i]);
  for (auto* r : ranges) std::free(r);
}

}  // namespace
