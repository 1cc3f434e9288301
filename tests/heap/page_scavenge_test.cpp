// Tests for the page allocator's released ("scavenged") state
// (src/heap/page_alloc): a private ArenaMap + PageAlloc, whose pages are
// real committed memory, released with MADV_DONTNEED.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "heap/page_alloc.hpp"

namespace mgc::internal {
namespace {

constexpr std::size_t B = kMinGrowthPages;  // pages per huge-page block (256)

struct Pages {
  ArenaMap map;
  PageAlloc pa{&map};
};

void fill(std::uintptr_t base, std::size_t npages, unsigned char v) {
  std::memset(reinterpret_cast<void*>(base), v, npages * kPageSize);
}

// Every byte of the pages is v.
bool all_bytes(std::uintptr_t base, std::size_t npages, unsigned char v) {
  const auto* p = reinterpret_cast<const unsigned char*>(base);
  for (std::size_t i = 0; i < npages * kPageSize; i++)
    if (p[i] != v) return false;
  return true;
}

TEST(PageScavenge, ReleasedPagesReadZeroAndNeedNoZeroing) {
  Pages p;
  bool nz = true;
  const std::uintptr_t a = p.pa.alloc(2 * B, &nz);
  ASSERT_NE(a, 0u);
  ASSERT_EQ(p.pa.committed_bytes(), 2 * B * kPageSize);
  fill(a, 2 * B, 0xAB);
  p.pa.free(a, 2 * B);
  EXPECT_EQ(p.pa.released_bytes(), 0u) << "freed pages are not released until scavenged";
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}), 2 * B);
  p.pa.check();
  EXPECT_EQ(p.pa.released_bytes(), 2 * B * kPageSize);
  EXPECT_EQ(p.pa.free_bytes(), 2 * B * kPageSize) << "released pages stay free";
  EXPECT_EQ(p.pa.committed_bytes(), 2 * B * kPageSize) << "released pages stay committed";
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}), 0u) << "nothing left to release";

  nz = true;
  const std::uintptr_t b = p.pa.alloc(2 * B, &nz);
  EXPECT_EQ(b, a);
  EXPECT_FALSE(nz) << "a run of released pages is zero";
  EXPECT_TRUE(all_bytes(b, 2 * B, 0)) << "released pages read as zero";
  EXPECT_EQ(p.pa.released_bytes(), 0u) << "allocating takes pages out of the released state";
  p.pa.check();
}

TEST(PageScavenge, MixedRunNeedsZeroing) {
  Pages p;
  bool nz;
  const std::uintptr_t a = p.pa.alloc(B, &nz);
  const std::uintptr_t b = p.pa.alloc(B, &nz);
  ASSERT_EQ(b, a + B * kPageSize);
  fill(a, B, 1);
  fill(b, B, 2);
  p.pa.free(a, B);
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}), B);
  p.pa.free(b, B);  // dirty, not released
  p.pa.check();
  EXPECT_EQ(p.pa.released_bytes(), B * kPageSize);
  const std::uintptr_t c = p.pa.alloc(2 * B, &nz);
  EXPECT_EQ(c, a);
  EXPECT_TRUE(nz) << "half the run holds old data";
  EXPECT_TRUE(all_bytes(a, B, 0));
  EXPECT_TRUE(all_bytes(b, B, 2)) << "unreleased pages keep their data";
  EXPECT_EQ(p.pa.released_bytes(), 0u);
  p.pa.check();
}

TEST(PageScavenge, HighestBlockFirstAndWholeBlocksAtOnce) {
  Pages p;
  bool nz;
  const std::uintptr_t a = p.pa.alloc(4 * B, &nz);
  ASSERT_EQ(p.pa.committed_bytes(), 4 * B * kPageSize);
  p.pa.free(a, 4 * B);
  for (std::size_t k = 4; k-- > 0;) {
    ScavengeBatch batch;
    ASSERT_TRUE(p.pa.take_scavenge(&batch));
    EXPECT_EQ(batch.chunk->base + batch.first * kPageSize, a + k * B * kPageSize) << "block " << k;
    EXPECT_TRUE(batch.whole);
    EXPECT_EQ(batch.npages, B);
    EXPECT_EQ(batch.unreleased, B);
    // In flight: neither free nor released, and the counts still agree.
    EXPECT_EQ(p.pa.scavenging_bytes(), B * kPageSize);
    EXPECT_EQ(p.pa.free_bytes(), (k * B + (3 - k) * B) * kPageSize);
    p.pa.check();
    PageAlloc::release_batch(batch);
    p.pa.return_scavenged(batch);
    EXPECT_EQ(p.pa.scavenging_bytes(), 0u);
    p.pa.check();
  }
  ScavengeBatch none;
  EXPECT_FALSE(p.pa.take_scavenge(&none));
  EXPECT_EQ(p.pa.released_bytes(), 4 * B * kPageSize);
}

TEST(PageScavenge, PartlyUsedBlockReleasesOnlyItsFreePages) {
  Pages p;
  bool nz;
  const std::uintptr_t a = p.pa.alloc(2 * B, &nz);
  fill(a, 2 * B, 7);
  const std::uintptr_t hole = a + (B + 44) * kPageSize;
  p.pa.free(hole, 10);
  ScavengeBatch batch;
  ASSERT_TRUE(p.pa.take_scavenge(&batch));
  EXPECT_FALSE(batch.whole);
  EXPECT_EQ(batch.first, B);
  EXPECT_EQ(batch.npages, 10u);
  PageAlloc::release_batch(batch);
  p.pa.return_scavenged(batch);
  p.pa.check();
  EXPECT_EQ(p.pa.released_bytes(), 10 * kPageSize);
  EXPECT_TRUE(all_bytes(hole, 10, 0));
  EXPECT_TRUE(all_bytes(a, B + 44, 7)) << "pages in use below the hole were released";
  EXPECT_TRUE(all_bytes(hole + 10 * kPageSize, B - 54, 7)) << "pages in use above the hole were released";
  // Allocating the hole again: zero, no zeroing needed.
  nz = true;
  EXPECT_EQ(p.pa.alloc(10, &nz), hole);
  EXPECT_FALSE(nz);
  p.pa.check();
}

// Where the heap uses huge pages, a block nearly all in use keeps its few
// free pages when the scavenger works towards its goal (releasing them
// would split the huge page), and gives them up when everything must go
// (release_memory, the memory limit). A block with more free, or with a
// page released already, is not spared.
TEST(PageScavenge, DenseHugePagesAreSparedUnlessEverythingMustGo) {
  Pages p;
  p.pa.set_huge_pages(true);
  bool nz;
  const std::size_t blocks = kHugePagesFrom / (B * kPageSize) + 2;
  const std::uintptr_t a = p.pa.alloc(blocks * B, &nz);
  ASSERT_NE(a, 0u);
  ASSERT_GE(p.pa.committed_bytes(), kHugePagesFrom);
  auto block = [&](std::size_t k) { return a + k * B * kPageSize; };
  p.pa.free(block(3) + 8 * kPageSize, 1);  // a page released already: the huge page is split anyway
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}), 1u);
  p.pa.free(block(3) + 100 * kPageSize, 4);  // so these go too, dense or not
  p.pa.free(block(1) + 40 * kPageSize, 10);  // dense: 246 of 256 pages in use
  p.pa.free(block(2) + 40 * kPageSize, 11);  // 245 in use: not dense
  p.pa.free(block(4), B);                    // wholly free
  p.pa.check();
  const std::uint64_t spared = p.pa.spared_blocks();
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}, /*spare_dense=*/true), 11u + 4u + B);
  p.pa.check();
  EXPECT_GT(p.pa.spared_blocks(), spared);
  EXPECT_EQ(p.pa.released_bytes(), (1 + 11 + 4 + B) * kPageSize) << "the dense block's 10 pages stay";
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}, /*spare_dense=*/true), 0u) << "only dense pages are left";
  p.pa.check();
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}), 10u) << "when everything must go, the dense block's too";
  EXPECT_EQ(p.pa.released_bytes(), (1 + 10 + 11 + 4 + B) * kPageSize);
  p.pa.check();
}

// Without huge pages (a small heap, or MALLOCGC_HUGEPAGES=0) nothing is
// spared: there is no huge page to keep whole.
TEST(PageScavenge, WithoutHugePagesNothingIsSpared) {
  Pages p;
  bool nz;
  const std::uintptr_t a = p.pa.alloc(2 * B, &nz);
  p.pa.free(a + B * kPageSize + 40 * kPageSize, 10);
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}, /*spare_dense=*/true), 10u);
  p.pa.check();
}

TEST(PageScavenge, PagesFreedAgainAreReleasedAgain) {
  Pages p;
  bool nz;
  const std::uintptr_t a = p.pa.alloc(B, &nz);
  p.pa.free(a, B);
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}), B);
  for (int round = 0; round < 3; round++) {
    SCOPED_TRACE(round);
    const std::uintptr_t b = p.pa.alloc(B / 2, &nz);
    ASSERT_EQ(b, a);
    EXPECT_FALSE(nz);
    fill(b, B / 2, 9);
    p.pa.free(b, B / 2);
    p.pa.check();
    EXPECT_EQ(p.pa.released_bytes(), B / 2 * kPageSize);
    EXPECT_EQ(p.pa.scavenge(~std::size_t{0}), B / 2) << "only the dirty half is new to release";
    EXPECT_EQ(p.pa.released_bytes(), B * kPageSize);
    EXPECT_TRUE(all_bytes(a, B / 2, 0));
  }
}

TEST(PageScavenge, ScavengeStopsAfterMaxPages) {
  Pages p;
  bool nz;
  const std::uintptr_t a = p.pa.alloc(3 * B, &nz);
  p.pa.free(a, 3 * B);
  EXPECT_EQ(p.pa.scavenge(1), B) << "whole blocks: one batch";
  EXPECT_EQ(p.pa.released_bytes(), B * kPageSize);
  EXPECT_EQ(p.pa.scavenge(B + 1), 2 * B);
  p.pa.check();
}

TEST(PageScavenge, FreshGrowthIsFreeUnreleasedAndFoundByTheScavenger) {
  Pages p;
  bool nz;
  // 10 pages commit a 64-page granule; 54 fresh pages stay free.
  const std::uintptr_t a = p.pa.alloc(10, &nz);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(p.pa.committed_bytes(), kSmallGrowthPages * kPageSize);
  EXPECT_EQ(p.pa.released_bytes(), 0u);
  EXPECT_EQ(p.pa.scavenge(~std::size_t{0}), kSmallGrowthPages - 10);
  p.pa.check();
}

}  // namespace
}  // namespace mgc::internal
