// AddressSanitizer understands the heap (src/os/sanitizer.hpp): free slots
// are poisoned, handed-out ones are not, so a use after mgc::free or after
// the collector reclaimed an object is an ASan report ("use-after-poison"),
// while ordinary use, reuse and the collector's own conservative reads are
// not. The tests need the sanitizer build (MALLOCGC_SANITIZE) and skip
// elsewhere, saying so.
#include <cstdint>
#include <cstring>

#include "gc_test_support.hpp"
#include "gtest/gtest.h"
#include "mallocgc/mallocgc.hpp"

#if MALLOCGC_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace {

using gctest::hide;
using gctest::reveal;

#if MALLOCGC_ASAN
#define SKIP_UNLESS_ASAN() (void)0
bool poisoned(const void* p) { return __asan_address_is_poisoned(p) != 0; }
bool region_clean(const void* p, std::size_t n) {
  return __asan_region_is_poisoned(const_cast<void*>(p), n) == nullptr;
}
#else
#define SKIP_UNLESS_ASAN() GTEST_SKIP() << "needs the sanitizer build (-DMALLOCGC_SANITIZE=ON)"
bool poisoned(const void*) { return false; }
bool region_clean(const void*, std::size_t) { return true; }
#endif

// Read a byte the way a buggy program would (the load must happen).
[[gnu::noinline]] int read_byte(std::uintptr_t hidden) { return *static_cast<volatile const char*>(reveal(hidden)); }

TEST(GcSanitizer, AllocatedMemoryIsUsableFreedMemoryIsPoisoned) {
  SKIP_UNLESS_ASAN();
  for (std::size_t size : {16u, 48u, 256u, 1000u, 32768u, 100000u}) {
    SCOPED_TRACE(size);
    char* p = static_cast<char*>(mgc::alloc(size));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(region_clean(p, size));
    std::memset(p, 1, size);
    mgc::free(p);
    EXPECT_TRUE(poisoned(p));
    EXPECT_TRUE(poisoned(p + size - 1));
  }
}

TEST(GcSanitizer, ReusedSlotsAreUnpoisonedAgain) {
  SKIP_UNLESS_ASAN();
  // Free a run of slots, then allocate as many of the same size: the cache
  // finds the freed ones again, and each is usable whole.
  void* ps[200];
  for (void*& p : ps) p = mgc::alloc_noscan(64);
  for (void* p : ps) mgc::free(p);
  for (int i = 0; i < 400; i++) {
    char* q = static_cast<char*>(mgc::alloc_noscan(64));
    ASSERT_TRUE(region_clean(q, 64));
    std::memset(q, 2, 64);
  }
  // Typed and aligned allocations pass through the same fast path.
  mgc::Type t(32, {0, 8});
  void* typed = mgc::alloc_typed(t);
  EXPECT_TRUE(region_clean(typed, 32));
}

TEST(GcSanitizer, ATinyBlockIsPoisonedOnlyWhenAllItsObjectsAreFree) {
  SKIP_UNLESS_ASAN();
  // Two 8-byte tiny objects fill one 16-byte block.
  char* a = nullptr;
  char* b = nullptr;
  for (int tries = 0; tries < 4 && (b == nullptr || b != a + 8); tries++) {
    a = static_cast<char*>(mgc::alloc_noscan(8));
    b = static_cast<char*>(mgc::alloc_noscan(8));
  }
  ASSERT_EQ(b, a + 8) << "two tiny objects did not share a block";
  char* next = static_cast<char*>(mgc::alloc_noscan(8));  // the cache moves to another block
  ASSERT_NE(reinterpret_cast<std::uintptr_t>(next) & ~std::uintptr_t{15}, reinterpret_cast<std::uintptr_t>(a));
  mgc::free(a);
  EXPECT_FALSE(poisoned(b)) << "a live neighbour in the block was poisoned";
  b[0] = 1;  // still the program's
  mgc::free(b);
  EXPECT_TRUE(poisoned(a));
  EXPECT_TRUE(poisoned(b));
  (void)next;
}

[[gnu::noinline]] std::uintptr_t make_garbage_object(std::size_t size, mgc::Weak<void>** weak) {
  void* p = mgc::alloc(size);
  std::memset(p, 0x5A, size);
  *weak = new mgc::Weak<void>(p);
  return hide(p);
}

[[gnu::noinline]] bool alive(mgc::Weak<void>* w) { return w->get() != nullptr; }

// An unreachable object of size bytes, reclaimed by a cycle: its hidden
// address. Fails the test when conservative leftovers keep it.
std::uintptr_t reclaimed_object(std::size_t size) {
  mgc::Weak<void>* weak = nullptr;
  const std::uintptr_t h = make_garbage_object(size, &weak);
  for (int i = 0; i < 3 && alive(weak); i++) gctest::collect_clean();
  EXPECT_FALSE(alive(weak)) << "the object was not reclaimed";
  delete weak;
  return h;
}

TEST(GcSanitizer, TheSweepPoisonsWhatItReclaims) {
  SKIP_UNLESS_ASAN();
  for (std::size_t size : {64u, 4096u, 200000u}) {
    SCOPED_TRACE(size);
    const std::uintptr_t h = reclaimed_object(size);
    EXPECT_TRUE(poisoned(reveal(h)));
  }
}

class GcSanitizerDeathTest : public testing::Test {
 protected:
  // Forked at the statement, so the child sees exactly the heap the test
  // just checked (the collector's threads do not come along; the
  // statement only reads).
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "fast"); }
};

TEST_F(GcSanitizerDeathTest, UseAfterFreeIsReported) {
  SKIP_UNLESS_ASAN();
  char* p = static_cast<char*>(mgc::alloc(64));
  const std::uintptr_t h = hide(p);
  mgc::free(p);
  p = nullptr;
  EXPECT_DEATH(read_byte(h), "use-after-poison");
  char* big = static_cast<char*>(mgc::alloc_noscan(1 << 20));
  const std::uintptr_t hb = hide(big + 12345);
  mgc::free(big);
  big = nullptr;
  EXPECT_DEATH(read_byte(hb), "use-after-poison");
}

TEST_F(GcSanitizerDeathTest, UseAfterTheCollectorReclaimedIsReported) {
  SKIP_UNLESS_ASAN();
  const std::uintptr_t small = reclaimed_object(48);
  EXPECT_DEATH(read_byte(small), "use-after-poison");
  const std::uintptr_t large = reclaimed_object(300000);
  EXPECT_DEATH(read_byte(hide(static_cast<char*>(reveal(large)) + 4096)), "use-after-poison");
}

}  // namespace
