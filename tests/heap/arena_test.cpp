// Tests for src/heap/arena: the page -> span map of a private ArenaMap.
#include "heap/arena.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <vector>

#include "heap/span.hpp"
#include "os/mem.hpp"

namespace mgc::internal {
namespace {

int g_static_int = 42;

// Addresses that are never in a heap this test builds.
std::vector<std::uintptr_t> outsiders() {
  int on_stack = 0;
  static std::unique_ptr<int> from_malloc = std::make_unique<int>(1);
  return {
      0,
      1,
      ~std::uintptr_t{0},
      ~std::uintptr_t{0} - kPageSize,
      reinterpret_cast<std::uintptr_t>(&on_stack),
      reinterpret_cast<std::uintptr_t>(&g_static_int),
      reinterpret_cast<std::uintptr_t>(from_malloc.get()),
      reinterpret_cast<std::uintptr_t>(&outsiders),
      std::uintptr_t{1} << 47,  // first non-canonical user address
      std::uintptr_t{1} << 50,
      std::uintptr_t{1} << 63,
  };
}

void expect_outsiders_unmapped(const ArenaMap& m) {
  for (std::uintptr_t a : outsiders()) {
    EXPECT_EQ(m.span_of(a), nullptr) << std::hex << a;
    EXPECT_FALSE(m.in_heap_range(a)) << std::hex << a;
  }
}

// Address space for n arenas, arena-aligned, never committed: the map
// never touches the arenas' memory.
std::uintptr_t reserve_arenas(std::size_t n) {
  void* p = os::reserve(n * kArenaSize, kArenaSize);
  EXPECT_NE(p, nullptr);
  return reinterpret_cast<std::uintptr_t>(p);
}

TEST(ArenaMap, EmptyMapHasNoSpans) {
  ArenaMap m;
  expect_outsiders_unmapped(m);
  const std::uintptr_t base = reserve_arenas(1);
  EXPECT_EQ(m.span_of(base), nullptr);
  EXPECT_FALSE(m.in_heap_range(base));
}

TEST(ArenaMap, AddedArenasAreInRangeButHaveNoSpansYet) {
  ArenaMap m;
  const std::uintptr_t base = reserve_arenas(2);
  ASSERT_TRUE(m.add_arenas(base, 2));
  expect_outsiders_unmapped(m);
  EXPECT_TRUE(m.in_heap_range(base));
  EXPECT_TRUE(m.in_heap_range(base + 2 * kArenaSize - 1));
  EXPECT_FALSE(m.in_heap_range(base - 1));
  EXPECT_FALSE(m.in_heap_range(base + 2 * kArenaSize));
  for (std::uintptr_t a = base; a < base + 2 * kArenaSize; a += kPageSize) ASSERT_EQ(m.span_of(a), nullptr);
  // Adding them again changes nothing.
  ASSERT_TRUE(m.add_arenas(base, 2));
  EXPECT_EQ(m.span_of(base), nullptr);
}

struct SetSpansCase {
  const char* name;
  std::size_t first_page;  // from the base of the first arena
  std::size_t npages;
};

void PrintTo(const SetSpansCase& c, std::ostream* os) { *os << c.name; }

class ArenaMapSetSpans : public ::testing::TestWithParam<SetSpansCase> {};

TEST_P(ArenaMapSetSpans, EveryPageMapsToTheSpanAndNeighboursDoNot) {
  const SetSpansCase c = GetParam();
  ArenaMap m;
  const std::uintptr_t base = reserve_arenas(3);
  ASSERT_TRUE(m.add_arenas(base, 3));
  MSpan span, other;
  const std::uintptr_t lo = base + c.first_page * kPageSize;
  const std::uintptr_t hi = lo + c.npages * kPageSize;
  m.set_spans(lo, c.npages, &span);
  for (std::uintptr_t a = lo; a < hi; a += kPageSize) {
    ASSERT_EQ(m.span_of(a), &span) << "page " << (a - base) / kPageSize;
    ASSERT_EQ(m.span_of(a + 1), &span);
    ASSERT_EQ(m.span_of(a + kPageSize / 2), &span);
    ASSERT_EQ(m.span_of(a + kPageSize - 1), &span);
  }
  if (lo > base) {
    EXPECT_EQ(m.span_of(lo - 1), nullptr);
  }
  if (hi < base + 3 * kArenaSize) {
    EXPECT_EQ(m.span_of(hi), nullptr);
  }
  expect_outsiders_unmapped(m);

  // A neighbour set next to it leaves it alone.
  if (hi < base + 3 * kArenaSize) {
    m.set_spans(hi, 1, &other);
    EXPECT_EQ(m.span_of(hi), &other);
    EXPECT_EQ(m.span_of(hi - 1), &span);
  }

  // Clearing with nullptr unmaps exactly the range.
  m.set_spans(lo, c.npages, nullptr);
  for (std::uintptr_t a = lo; a < hi; a += kPageSize) ASSERT_EQ(m.span_of(a), nullptr);
  if (hi < base + 3 * kArenaSize) {
    EXPECT_EQ(m.span_of(hi), &other);
  }
  EXPECT_TRUE(m.in_heap_range(lo));  // the arenas stay part of the heap
}

INSTANTIATE_TEST_SUITE_P(Ranges, ArenaMapSetSpans,
                         ::testing::Values(SetSpansCase{"FirstPage", 0, 1}, SetSpansCase{"MiddleRun", 3, 5},
                                           SetSpansCase{"LastPageOfArena", kPagesPerArena - 1, 1},
                                           SetSpansCase{"AcrossArenaBoundary", kPagesPerArena - 2, 4},
                                           SetSpansCase{"WholeArena", kPagesPerArena, kPagesPerArena},
                                           SetSpansCase{"AcrossThreeArenas", kPagesPerArena - 1, kPagesPerArena + 2},
                                           SetSpansCase{"LastPageOfHeap", 3 * kPagesPerArena - 1, 1}),
                         [](const auto& info) { return info.param.name; });

TEST(ArenaMap, GapBetweenArenasHasNoSpans) {
  // Arenas 0 and 4 of a 5-arena reservation: 1..3 lie inside [lo, hi)
  // but belong to no arena of the map.
  ArenaMap m;
  const std::uintptr_t base = reserve_arenas(5);
  ASSERT_TRUE(m.add_arenas(base + 4 * kArenaSize, 1));
  EXPECT_FALSE(m.in_heap_range(base));
  ASSERT_TRUE(m.add_arenas(base, 1));  // lo moves down
  EXPECT_TRUE(m.in_heap_range(base));
  MSpan a, b;
  m.set_spans(base + kArenaSize - kPageSize, 1, &a);
  m.set_spans(base + 4 * kArenaSize, 1, &b);
  EXPECT_EQ(m.span_of(base + kArenaSize - 1), &a);
  EXPECT_EQ(m.span_of(base + 4 * kArenaSize), &b);
  for (std::uintptr_t x = base + kArenaSize; x < base + 4 * kArenaSize; x += kArenaSize / 4) {
    EXPECT_TRUE(m.in_heap_range(x));
    EXPECT_EQ(m.span_of(x), nullptr) << std::hex << x;
  }
  EXPECT_FALSE(m.in_heap_range(base + 5 * kArenaSize));
  expect_outsiders_unmapped(m);
}

// The first-level table is one for the process (an address belongs to one
// heap), so span_of answers alike through every map; the bounds that
// in_heap_range checks (the conservative scan's fast reject) are per map.
TEST(ArenaMap, SpanOfIsSharedBoundsArePerMap) {
  ArenaMap m1, m2;
  const std::uintptr_t base = reserve_arenas(1);
  ASSERT_TRUE(m1.add_arenas(base, 1));
  MSpan s;
  m1.set_spans(base, 2, &s);
  EXPECT_EQ(m1.span_of(base), &s);
  EXPECT_EQ(m2.span_of(base), &s);
  EXPECT_TRUE(m1.in_heap_range(base));
  EXPECT_FALSE(m2.in_heap_range(base));
  m1.set_spans(base, 2, nullptr);
}

}  // namespace
}  // namespace mgc::internal
