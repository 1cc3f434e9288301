// Tests for src/heap/page_alloc: a private ArenaMap + PageAlloc pair driven
// by tables of alloc/free steps.
#include "heap/page_alloc.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace mgc::internal {
namespace {

constexpr long kAny = -1;

enum class Op { kAlloc, kFree };

struct Step {
  Op op;
  char id;                    // the run allocated, or freed
  std::size_t npages = 0;     // alloc: pages; free: pages from `from` (0: the whole run)
  long at = kAny;             // alloc: expected first page, from the first chunk's base
  int need_zero = -1;         // alloc: expected *need_zero (-1: either)
  std::size_t committed = 0;  // expected committed pages after the step (0: not checked)
  std::size_t reserved = 0;   // expected reserved pages after the step (0: not checked)
  bool own_chunk = false;     // alloc: the run starts a chunk of its own
  std::size_t from = 0;       // free: first page of the run to free
};

Step A(char id, std::size_t n, long at = kAny, int nz = -1, std::size_t committed = 0) {
  return Step{Op::kAlloc, id, n, at, nz, committed};
}
Step F(char id, std::size_t from = 0, std::size_t n = 0) {
  Step s{Op::kFree, id};
  s.from = from;
  s.npages = n;
  return s;
}
Step Big(char id, std::size_t n, std::size_t reserved, int nz = 0) {
  Step s{Op::kAlloc, id, n, kAny, nz};
  s.reserved = reserved;
  s.own_chunk = true;
  return s;
}

struct Scenario {
  const char* name;
  std::vector<Step> steps;
};

void PrintTo(const Scenario& s, std::ostream* os) { *os << s.name; }

// A private heap: its own arena map and page allocator.
struct Pages {
  ArenaMap map;
  PageAlloc pa{&map};
};

struct Run {
  std::uintptr_t base;
  std::size_t npages;
};

// Pages the live runs hold, page by page (runs may be freed in parts).
class Harness {
 public:
  void run(const Scenario& sc) {
    for (std::size_t i = 0; i < sc.steps.size(); i++) {
      const Step& st = sc.steps[i];
      SCOPED_TRACE(std::string(sc.name) + " step " + std::to_string(i) + " (" +
                   (st.op == Op::kAlloc ? "alloc " : "free ") + st.id + ")");
      if (st.op == Op::kAlloc) {
        do_alloc(st);
      } else {
        do_free(st);
      }
      if (::testing::Test::HasFatalFailure()) return;
      p_.pa.check();  // dies on a broken invariant
      verify(st);
    }
  }

 private:
  void do_alloc(const Step& st) {
    const std::size_t committed_before = p_.pa.committed_bytes() / kPageSize;
    bool nz = true;
    const std::uintptr_t a = p_.pa.alloc(st.npages, &nz);
    ASSERT_NE(a, 0u);
    ASSERT_EQ(a % kPageSize, 0u);
    if (origin_ == 0) {
      origin_ = a;
      EXPECT_EQ(origin_ % kArenaSize, 0u) << "a chunk starts at an arena boundary";
    }
    if (st.at != kAny) {
      EXPECT_EQ(static_cast<long>(a - origin_) / static_cast<long>(kPageSize), st.at);
    }
    if (st.need_zero != -1) {
      EXPECT_EQ(nz, st.need_zero == 1);
    }
    if (st.own_chunk) {
      EXPECT_EQ(a % kArenaSize, 0u);
      for (const auto& [id, r] : chunk_starts_) EXPECT_NE(a, r) << "reused the chunk of " << id;
      EXPECT_FALSE(a >= origin_ && a < origin_ + kArenaSize) << "inside the first chunk";
      chunk_starts_[st.id] = a;
    }
    // Committed memory grows by whole small granules at least.  Past
    // kHugePagesFrom a chunk's committed part is rounded up to its next
    // 2 MiB boundary, which is less than a full kMinGrowthPages after the
    // chunk grew in small steps (the scenarios check where it ends).
    const std::size_t committed_after = p_.pa.committed_bytes() / kPageSize;
    if (committed_after != committed_before) {
      EXPECT_GE(committed_after - committed_before, kSmallGrowthPages);
    }
    for (std::size_t i = 0; i < st.npages; i++) {
      const auto [it, inserted] = live_.emplace(a + i * kPageSize, st.id);
      ASSERT_TRUE(inserted) << "page " << i << " of the run is already in use by " << it->second;
    }
    runs_[st.id] = Run{a, st.npages};
  }

  void do_free(const Step& st) {
    ASSERT_TRUE(runs_.count(st.id)) << "no run " << st.id;
    const Run r = runs_[st.id];
    const std::size_t n = st.npages == 0 ? r.npages : st.npages;
    const std::uintptr_t base = r.base + st.from * kPageSize;
    p_.pa.free(base, n);
    for (std::size_t i = 0; i < n; i++) ASSERT_EQ(live_.erase(base + i * kPageSize), 1u);
  }

  void verify(const Step& st) {
    const std::size_t committed = p_.pa.committed_bytes() / kPageSize;
    EXPECT_EQ(p_.pa.free_bytes() / kPageSize + live_.size(), committed);
    EXPECT_LE(committed, p_.pa.reserved_bytes() / kPageSize);
    EXPECT_EQ(p_.pa.reserved_bytes() % kArenaSize, 0u);
    EXPECT_EQ(committed % kSmallGrowthPages, 0u) << "committed parts end on growth boundaries";
    if (st.committed != 0) {
      EXPECT_EQ(committed, st.committed);
    }
    if (st.reserved != 0) {
      EXPECT_EQ(p_.pa.reserved_bytes() / kPageSize, st.reserved);
    }
    for (const auto& [page, id] : live_) {
      ASSERT_TRUE(p_.map.in_heap_range(page)) << "page of " << id;
      ASSERT_EQ(p_.map.span_of(page), nullptr) << "the page allocator never publishes spans";
    }
  }

  Pages p_;
  std::uintptr_t origin_ = 0;
  std::map<std::uintptr_t, char> live_;
  std::map<char, Run> runs_;
  std::map<char, std::uintptr_t> chunk_starts_;
};

constexpr std::size_t G = kSmallGrowthPages;  // 64: a small heap's committed parts end on 512 KiB boundaries
constexpr std::size_t H = kMinGrowthPages;    // 256: past kHugePagesFrom, on 2 MiB boundaries
constexpr std::size_t P = kPagesPerArena;     // 8192
static_assert(G % 64 == 0 && H % G == 0 && P % H == 0, "the tables assume growth in whole bitmap words and arenas");
static_assert(P * kPageSize >= kHugePagesFrom, "an arena's worth of pages is past kHugePagesFrom");

std::vector<Scenario> scenarios() {
  return {
      {"FirstFit",
       {A('a', 4, 0, 0, G), A('b', 4, 4, 0), A('c', 4, 8, 0), F('b'), A('d', 2, 4, 1), A('e', 2, 6, 1),
        A('f', 1, 12, 0), F('a'), A('g', 5, 13, 0),  // the 4-page hole at 0 is too small
        A('h', 4, 0, 1), A('i', 1, 18, 0, G)}},
      {"CoalesceLeftThenRight",
       {A('a', 3, 0), A('b', 5, 3), A('c', 2, 8), A('d', 1, 10), F('b'), F('c'),
        A('e', 7, 3, 1),  // spans both freed runs
        F('a'), F('e'), A('f', 10, 0, 1), F('d'), F('f'), A('g', G, 0, 1, G)}},
      {"CoalesceRightThenLeft",
       {A('a', 2, 0), A('b', 2, 2), A('c', 2, 4), A('d', 1, 6), F('c'), F('b'), A('e', 4, 2, 1), A('f', 1, 7, 0)}},
      {"CoalesceAcrossBitmapWords",
       {A('a', 60, 0), A('b', 10, 60), A('c', 10, 70), F('b'), F('c'), A('d', 20, 60, 1), A('e', 1, 80, 0)}},
      {"PartialFreesOfOneRun",
       {A('a', 16, 0, 0), F('a', 2, 4), F('a', 9, 4), A('b', 8, 16, 0),  // two 4-page holes: neither fits
        A('c', 4, 2, 1), A('d', 4, 9, 1), A('e', 1, 24, 0)}},
      {"NeedZero",
       {A('a', 8, 0, 0), F('a'), A('b', 4, 0, 1), A('c', 8, 4, 1),  // half dirty, half fresh
        A('d', 4, 12, 0), F('d'), A('e', 4, 12, 1), A('f', 2, 16, 0)}},
      {"GrowthSteps",
       {A('a', 1, 0, 0, G), A('b', G - 1, 1, 0, G), A('c', 1, G, 0, 2 * G),
        // G - 1 free pages at the committed end combine with 11 new ones,
        // and the committed end moves to the next boundary.
        A('d', G + 10, G + 1, 0, 3 * G), A('e', G, 2 * G + 11, 0, 4 * G)}},
      {"GrowthCombinesTailFreePages",
       {A('a', G - 28, 0, 0, G), A('b', 60, G - 28, 0, 2 * G), F('a'), A('c', G, G + 32, 0, 3 * G),
        A('d', G - 28, 0, 1, 3 * G)}},
      // Past kHugePagesFrom the steps are 2 MiB.
      {"FillOneArenaExactly", {A('a', P, 0, 0, P), Big('b', 1, 2 * P), F('a'), A('c', P, 0, 1, P + H)}},
      {"LargeRunsGetTheirOwnChunks",
       {A('a', 1, 0, 0, G), Big('b', P + 1, P + 2 * P), Big('c', P, P + 2 * P + P), A('d', 100), F('b'),
        A('e', P + 1, kAny, 1), Big('f', 3 * P, P + 2 * P + P + 3 * P), F('f'), F('e'), A('g', 2 * P, kAny, 1)}},
  };
}

class PageAllocScenario : public ::testing::TestWithParam<Scenario> {};

TEST_P(PageAllocScenario, Steps) { Harness().run(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Tables, PageAllocScenario, ::testing::ValuesIn(scenarios()),
                         [](const auto& info) { return info.param.name; });

TEST(PageAlloc, StartsEmpty) {
  Pages p;
  EXPECT_EQ(p.pa.reserved_bytes(), 0u);
  EXPECT_EQ(p.pa.committed_bytes(), 0u);
  EXPECT_EQ(p.pa.free_bytes(), 0u);
  p.pa.check();
}

TEST(PageAlloc, HugePagesStillGrowAndAllocate) {
  Pages p;
  p.pa.set_huge_pages(true);
  bool nz = true;
  const std::uintptr_t a = p.pa.alloc(256, &nz);
  ASSERT_NE(a, 0u);
  EXPECT_FALSE(nz);
  EXPECT_GE(p.pa.committed_bytes(), 256 * kPageSize);
  p.pa.check();
}

TEST(PageAlloc, ImpossibleRunReturnsZero) {
  Pages p;
  bool nz = false;
  // More pages than the address space has.
  EXPECT_EQ(p.pa.alloc(std::size_t{1} << 40, &nz), 0u);
  p.pa.check();
  // The allocator still works afterwards.
  EXPECT_NE(p.pa.alloc(1, &nz), 0u);
  p.pa.check();
}

// Two chunks: a first chunk whose committed pages are all in use, and a
// full second chunk with two 5-page holes. An 8-page request scans the
// first chunk, finds no free page (its search hint moves past its last
// word), and grows it. The new pages must be found at the first-fit place.
// (This holds because committed parts end on whole bitmap words: were a
// chunk grown into a partly used word below the hint, those pages would be
// skipped.)
TEST(PageAlloc, PagesGrownIntoAScannedFullChunkAreFound) {
  Harness().run(
      {"GrowScannedFullChunk",
       {A('a', G, 0, 0, G), Big('b', 2 * P, P + 2 * P), F('b', 0, 5), F('b', 100, 5), A('c', 8, G, 0, H + 2 * P)}});
}

// The same seen as a leak: every free committed page should be usable
// before the heap grows again.
TEST(PageAlloc, NoGrowthWhileEnoughCommittedPagesAreFree) {
  Pages p;
  bool nz;
  const std::uintptr_t a = p.pa.alloc(G, &nz);
  ASSERT_NE(a, 0u);
  const std::uintptr_t b = p.pa.alloc(2 * P, &nz);
  ASSERT_NE(b, 0u);
  p.pa.free(b, 5);
  p.pa.free(b + 100 * kPageSize, 5);
  // The heap is past kHugePagesFrom now: the first chunk grows from G
  // pages to its first 2 MiB boundary, H.
  ASSERT_NE(p.pa.alloc(8, &nz), 0u);
  const std::size_t committed = p.pa.committed_bytes();
  const std::size_t free_pages = p.pa.free_bytes() / kPageSize;
  ASSERT_EQ(free_pages, H - G - 8 + 10);
  std::size_t got_in_first = 0;
  for (std::size_t i = 0; i < free_pages; i++) {
    const std::uintptr_t x = p.pa.alloc(1, &nz);
    ASSERT_NE(x, 0u);
    if (x >= a && x < a + P * kPageSize) got_in_first++;
  }
  EXPECT_EQ(p.pa.committed_bytes(), committed) << "the heap grew although enough committed pages were free";
  EXPECT_EQ(got_in_first, H - G - 8);
  EXPECT_EQ(p.pa.free_bytes(), 0u);
  p.pa.check();
}

TEST(PageAllocDeathTest, DoubleFreeOfPagesDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Pages p;
  bool nz;
  const std::uintptr_t a = p.pa.alloc(4, &nz);
  const std::uintptr_t b = p.pa.alloc(4, &nz);
  ASSERT_NE(a, 0u);
  p.pa.free(a, 4);
  // The death test's child builds its own heap at another address; the
  // chunk is arena-aligned (64 MiB), so the page's low 24 bits are known.
  EXPECT_DEATH(p.pa.free(a, 4), "page allocator: page 0x[0-9a-f]+000000 freed twice");
  // Overlapping a free run: the first page already free is named.
  EXPECT_DEATH(p.pa.free(a + 3 * kPageSize, 2), "page allocator: page 0x[0-9a-f]+006000 freed twice");
  // Nothing changed: b is still in use and frees once.
  p.pa.free(b, 4);
  p.pa.check();
}

TEST(PageAllocDeathTest, FreeOutsideTheHeapDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Pages p;
  bool nz;
  ASSERT_NE(p.pa.alloc(1, &nz), 0u);
  int local;
  EXPECT_DEATH(p.pa.free(reinterpret_cast<std::uintptr_t>(&local) & ~(kPageSize - 1), 1),
               "page allocator: free of 0x[0-9a-f]+, outside the heap");
  Pages other;
  const std::uintptr_t x = other.pa.alloc(1, &nz);
  EXPECT_DEATH(p.pa.free(x, 1), "outside the heap");
}

}  // namespace
}  // namespace mgc::internal
