// Tests for src/heap/mcentral: the partial and full lists of a span class,
// merge_pending, tiny_block_reclaimable, and sweeping without the lock. The mcentral(spc) lists are
// process-wide: every test here uses span classes no other test uses.
#include "heap/mcentral.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <future>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "heap/mheap.hpp"
#include "heap/sweep.hpp"
#include "os/sanitizer.hpp"
#include "private_cache.hpp"

namespace mgc::internal {
namespace {

using testing::PrivateCache;
using testing::remote_free;
using testing::remote_free_tiny;

// Allocate slots of an unowned-or-owned span by hand, as a cache's chunk
// would have (bits and count together).
void mark_allocated(MSpan* s, std::size_t from, std::size_t n) {
  for (std::size_t i = from; i < from + n; i++) {
    const std::uint64_t bit = std::uint64_t{1} << (i % 64);
    ASSERT_FALSE(s->alloc_bits[i / 64].load() & bit);
    s->alloc_bits[i / 64].store(s->alloc_bits[i / 64].load() | bit);
    s->alloc_count++;
    object_handed_out(reinterpret_cast<void*>(s->slot_address(i)), s->elem_size);
  }
}

void mark_all_allocated(MSpan* s) { mark_allocated(s, 0, s->nelems - s->alloc_count); }

struct Counts {
  std::size_t partial, full;
  bool operator==(const Counts&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Counts& c) {
  return os << "{partial " << c.partial << ", full " << c.full << "}";
}
Counts counts(int spc) { return {mcentral(spc).partial_count(), mcentral(spc).full_count()}; }

// The low 12 bits of slot i's address (span bases are page-aligned), for
// messages checked in a death test's child, whose heap lies elsewhere.
std::string low_hex(const MSpan* s, std::size_t i) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%03lx", static_cast<unsigned long>(s->slot_address(i) & 0xFFF));
  return buf;
}

TEST(MCentral, EmptyCentralHandsOutAFreshSpanFromTheHeap) {
  const int spc = span_class(20, Kind::kNoscan);
  PrivateCache c;
  EXPECT_EQ(counts(spc), (Counts{0, 0}));
  MSpan* s = mcentral(spc).cache_span(c.get(), spc);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->owner.load(), c.get());
  EXPECT_EQ(s->span_class, spc);
  EXPECT_EQ(s->alloc_count, 0u);
  EXPECT_EQ(s->list, nullptr);
  EXPECT_EQ(mheap().span_of(s->base), s);
  EXPECT_EQ(counts(spc), (Counts{0, 0}));
  mcentral(spc).check();
  // Given back with no slot allocated: the span returns to the heap.
  const std::uintptr_t base = s->base;
  mcentral(spc).uncache_span(s);
  EXPECT_EQ(mheap().span_of(base), nullptr);
  EXPECT_EQ(counts(spc), (Counts{0, 0}));
  mcentral(spc).check();
  mheap().check();
}

TEST(MCentral, PartlyUsedSpanGoesToPartialAndIsHandedOutAgain) {
  const int spc = span_class(21, Kind::kConservative);
  PrivateCache c1, c2;
  MSpan* s = mcentral(spc).cache_span(c1.get(), spc);
  ASSERT_NE(s, nullptr);
  mark_allocated(s, 0, 3);
  mcentral(spc).uncache_span(s);
  EXPECT_EQ(counts(spc), (Counts{1, 0}));
  EXPECT_EQ(s->owner.load(), nullptr);
  EXPECT_EQ(mheap().span_of(s->base), s);
  EXPECT_EQ(s->alloc_count, 3u);
  mcentral(spc).check();
  MSpan* again = mcentral(spc).cache_span(c2.get(), spc);
  EXPECT_EQ(again, s) << "a partial span is preferred to a fresh one";
  EXPECT_EQ(s->owner.load(), c2.get());
  EXPECT_EQ(s->list, nullptr);
  EXPECT_EQ(counts(spc), (Counts{0, 0}));
  EXPECT_EQ(s->alloc_count, 3u);
  mark_allocated(s, 3, 2);
  mcentral(spc).uncache_span(s);
  EXPECT_EQ(counts(spc), (Counts{1, 0}));
  mcentral(spc).check();
}

TEST(MCentral, FullSpanGoesToFullAndIsNotHandedOut) {
  const int spc = span_class(22, Kind::kTyped);
  PrivateCache c;
  MSpan* s = mcentral(spc).cache_span(c.get(), spc);
  ASSERT_NE(s, nullptr);
  mark_all_allocated(s);
  mcentral(spc).uncache_span(s);
  EXPECT_EQ(counts(spc), (Counts{0, 1}));
  EXPECT_EQ(s->list != nullptr, true);
  mcentral(spc).check();
  MSpan* t = mcentral(spc).cache_span(c.get(), spc);
  ASSERT_NE(t, nullptr);
  EXPECT_NE(t, s);
  EXPECT_EQ(t->alloc_count, 0u);
  EXPECT_EQ(counts(spc), (Counts{0, 1}));
  mcentral(spc).uncache_span(t);
  mcentral(spc).check();
}

TEST(MCentral, RemoteFreeMovesAFullSpanToPartialAndTheMergeFreesTheSlot) {
  const int spc = span_class(23, Kind::kNoscan);
  PrivateCache c1, c2;
  MSpan* s = mcentral(spc).cache_span(c1.get(), spc);
  ASSERT_NE(s, nullptr);
  mark_all_allocated(s);
  mcentral(spc).uncache_span(s);
  ASSERT_EQ(counts(spc), (Counts{0, 1}));
  remote_free(s, 2);
  EXPECT_EQ(counts(spc), (Counts{1, 0}));
  EXPECT_EQ(s->pending.load(), 1u);
  EXPECT_TRUE(s->is_allocated(2)) << "the merge waits for a cache or reclaim";
  mcentral(spc).check();
  // A second remote free costs no notify: the flag is still set.
  remote_free(s, 5);
  EXPECT_EQ(counts(spc), (Counts{1, 0}));
  const std::uint64_t merged = mcentral(spc).merged_slots();
  MSpan* t = mcentral(spc).cache_span(c2.get(), spc);
  EXPECT_EQ(t, s);
  EXPECT_EQ(mcentral(spc).merged_slots() - merged, 2u);
  EXPECT_FALSE(s->is_allocated(2));
  EXPECT_FALSE(s->is_allocated(5));
  EXPECT_TRUE(s->is_allocated(3));
  EXPECT_EQ(s->alloc_count, s->nelems - 2);
  EXPECT_EQ(s->pending.load(), 0u);
  EXPECT_EQ(s->pending_free[0].load(), 0u);
  EXPECT_TRUE(s->need_zero) << "freed slots hold old data";
  s->check();
  mcentral(spc).uncache_span(s);
  EXPECT_EQ(counts(spc), (Counts{1, 0}));
  mcentral(spc).check();
}

TEST(MCentral, RemoteFreeOfAnOwnedSpanLeavesTheListsAlone) {
  const int spc = span_class(24, Kind::kNoscan);
  PrivateCache c;
  MSpan* s = mcentral(spc).cache_span(c.get(), spc);
  ASSERT_NE(s, nullptr);
  mark_allocated(s, 0, 4);
  remote_free(s, 1);
  EXPECT_EQ(counts(spc), (Counts{0, 0}));
  EXPECT_EQ(s->list, nullptr);
  EXPECT_EQ(s->owner.load(), c.get());
  EXPECT_TRUE(s->is_allocated(1)) << "the owner merges at its next refill";
  // Given back, the pending free is merged first.
  mcentral(spc).uncache_span(s);
  EXPECT_EQ(counts(spc), (Counts{1, 0}));
  EXPECT_EQ(s->alloc_count, 3u);
  EXPECT_FALSE(s->is_allocated(1));
  EXPECT_EQ(s->pending.load(), 0u);
  mcentral(spc).check();
}

TEST(MCentral, UncacheOfASpanWhoseLastSlotsArePendingFreesItToTheHeap) {
  const int spc = span_class(25, Kind::kConservative);
  PrivateCache c;
  MSpan* s = mcentral(spc).cache_span(c.get(), spc);
  ASSERT_NE(s, nullptr);
  mark_allocated(s, 0, 2);
  remote_free(s, 0);
  remote_free(s, 1);
  const std::uintptr_t base = s->base;
  mcentral(spc).uncache_span(s);
  EXPECT_EQ(mheap().span_of(base), nullptr);
  EXPECT_EQ(counts(spc), (Counts{0, 0}));
  mheap().check();
}

TEST(MCentral, ReclaimReturnsWhollyFreeSpansOnly) {
  const int spc = span_class(26, Kind::kNoscan);
  PrivateCache c;
  MSpan* empty_soon = mcentral(spc).cache_span(c.get(), spc);
  ASSERT_NE(empty_soon, nullptr);
  mark_all_allocated(empty_soon);
  mcentral(spc).uncache_span(empty_soon);  // full
  MSpan* live = mcentral(spc).cache_span(c.get(), spc);
  ASSERT_NE(live, nullptr);
  ASSERT_NE(live, empty_soon);
  mark_allocated(live, 0, 3);
  mcentral(spc).uncache_span(live);  // partial
  ASSERT_EQ(counts(spc), (Counts{1, 1}));
  for (std::size_t i = 0; i < empty_soon->nelems; i++) remote_free(empty_soon, i);
  remote_free(live, 1);
  EXPECT_EQ(counts(spc), (Counts{2, 0}));
  const std::uintptr_t gone = empty_soon->base;
  EXPECT_EQ(mcentral(spc).reclaim(), 1u);
  EXPECT_EQ(mheap().span_of(gone), nullptr);
  EXPECT_EQ(mheap().span_of(live->base), live);
  EXPECT_EQ(live->alloc_count, 2u) << "reclaim merges the pending frees of the spans it keeps";
  EXPECT_EQ(counts(spc), (Counts{1, 0}));
  EXPECT_EQ(mcentral(spc).reclaim(), 0u);
  mcentral(spc).check();
  mheap().check();
}

// Regression (review finding): a non-owner free of a tiny object announces
// itself before its first write to the span, and a span that a merge
// empties is not given back to mheap while such a free is in flight: the
// free's later writes would land on a recycled span record.
TEST(MCentral, SpanIsNotFreedWhileAFreeIsInFlight) {
  const int spc = span_class(30, Kind::kConservative);
  PrivateCache c;
  MSpan* s = mcentral(spc).cache_span(c.get(), spc);
  ASSERT_NE(s, nullptr);
  mark_allocated(s, 0, 1);
  mcentral(spc).uncache_span(s);  // partial, one slot allocated
  s->frees_in_flight.store(1);    // a free of another object has begun
  remote_free(s, 0);
  EXPECT_EQ(mcentral(spc).reclaim(), 0u) << "freed while a free() was still touching it";
  EXPECT_EQ(s->alloc_count, 0u) << "the pending free is merged all the same";
  EXPECT_EQ(mheap().span_of(s->base), s);
  s->frees_in_flight.store(0);  // that free is done
  const std::uintptr_t gone = s->base;
  EXPECT_EQ(mcentral(spc).reclaim(), 1u);
  EXPECT_EQ(mheap().span_of(gone), nullptr);
  mheap().check();
}

TEST(MCentral, ReclaimEmptySpansCoversEveryClass) {
  const int a = span_class(27, Kind::kNoscan), b = span_class(28, Kind::kTyped);
  PrivateCache c;
  for (int spc : {a, b}) {
    MSpan* s = mcentral(spc).cache_span(c.get(), spc);
    ASSERT_NE(s, nullptr);
    mark_allocated(s, 0, 1);
    mcentral(spc).uncache_span(s);
    remote_free(s, 0);
  }
  EXPECT_GE(reclaim_empty_spans(), 2u);
  EXPECT_EQ(counts(a), (Counts{0, 0}));
  EXPECT_EQ(counts(b), (Counts{0, 0}));
}

TEST(MCentral, TinySpanWithLiveBlocksStaysFullAfterAMerge) {
  const int spc = kTinySpanClass;  // no other test of this file uses tiny spans
  PrivateCache c1, c2;
  testing::isolate_central(spc);
  const Counts start = counts(spc);
  MSpan* s = mcentral(spc).cache_span(c1.get(), spc);
  ASSERT_NE(s, nullptr);
  mark_all_allocated(s);
  for (std::size_t b = 0; b < s->nelems; b++) s->tiny->alloc_mask[b] = 0b11;  // two objects per block
  mcentral(spc).uncache_span(s);
  EXPECT_EQ(counts(spc), (Counts{start.partial, start.full + 1}));
  remote_free_tiny(s, 7, 0);  // one of block 7's two objects
  EXPECT_EQ(counts(spc), (Counts{start.partial + 1, start.full}));
  const std::uint64_t merged = mcentral(spc).merged_slots();
  MSpan* t = mcentral(spc).cache_span(c2.get(), spc);
  ASSERT_NE(t, nullptr);
  EXPECT_NE(t, s) << "the merge freed no block: s is still full";
  EXPECT_EQ(counts(spc), (Counts{start.partial, start.full + 1}));
  EXPECT_EQ(mcentral(spc).merged_slots(), merged);
  EXPECT_TRUE(s->is_allocated(7));
  EXPECT_EQ(s->tiny->remote_freed[7].load(), 0b01);
  mcentral(spc).uncache_span(t);
  // The block's other object: now the block is released.
  remote_free_tiny(s, 7, 1);
  EXPECT_EQ(counts(spc), (Counts{start.partial + 1, start.full}));
  MSpan* u = mcentral(spc).cache_span(c2.get(), spc);
  EXPECT_EQ(u, s);
  EXPECT_EQ(mcentral(spc).merged_slots() - merged, 1u) << "one block";
  EXPECT_FALSE(s->is_allocated(7));
  EXPECT_EQ(s->tiny->alloc_mask[7], 0);
  EXPECT_EQ(s->tiny->remote_freed[7].load(), 0);
  EXPECT_EQ(s->alloc_count, s->nelems - 1);
  s->check();
  for (std::size_t b = 0; b < s->nelems; b++) s->tiny->alloc_mask[b] = 0;  // let it go
  for (std::size_t w = 0; w < kBitmapWords; w++) s->alloc_bits[w].store(0);
  s->alloc_count = 0;
  mcentral(spc).uncache_span(s);
  mcentral(spc).check();
}

// merge_pending, called directly on a span nobody else touches.

class MergePending : public ::testing::Test {
 protected:
  void SetUp() override {
    s_ = mheap().alloc_small_span(span_class(5, Kind::kNoscan));  // 64 B, 128 slots
    ASSERT_NE(s_, nullptr);
  }
  void TearDown() override {
    if (s_ != nullptr) mheap().free_span(s_);
  }
  void pend(std::size_t i) {
    s_->pending_free[i / 64].fetch_or(std::uint64_t{1} << (i % 64));
    s_->pending.store(1);
  }
  MSpan* s_ = nullptr;
};

TEST_F(MergePending, FreesThePendingSlots) {
  mark_allocated(s_, 0, 100);
  for (std::size_t i : {3, 63, 64, 99}) pend(i);
  EXPECT_EQ(merge_pending(s_, -1, 0, 0), 4u);
  EXPECT_EQ(s_->alloc_count, 96u);
  for (std::size_t i = 0; i < 128; i++)
    EXPECT_EQ(s_->is_allocated(i), i < 100 && i != 3 && i != 63 && i != 64 && i != 99) << i;
  EXPECT_EQ(s_->pending.load(), 0u);
  EXPECT_EQ(s_->pending_free[0].load(), 0u);
  EXPECT_EQ(s_->pending_free[1].load(), 0u);
  EXPECT_TRUE(s_->need_zero);
  s_->check();
  // Nothing pending: nothing changes.
  s_->need_zero = false;
  EXPECT_EQ(merge_pending(s_, -1, 0, 0), 0u);
  EXPECT_EQ(s_->alloc_count, 96u);
  EXPECT_FALSE(s_->need_zero);
}

TEST_F(MergePending, SlotsOutsideTheCachedChunkMergeNormally) {
  mark_allocated(s_, 0, 128);
  pend(5);
  // The owner's chunk is word 1, holding slots 64 and 65: slot 5 is not in it.
  EXPECT_EQ(merge_pending(s_, -1, 0b11, 1), 1u);
  EXPECT_FALSE(s_->is_allocated(5));
  // Same bit position, other word: not confused with the chunk.
  pend(64 + 2);
  EXPECT_EQ(merge_pending(s_, -1, 0b100, 0), 1u);
  EXPECT_FALSE(s_->is_allocated(66));
}

TEST_F(MergePending, PendingFreeOfAnUnallocatedSlotDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  mark_allocated(s_, 0, 10);
  pend(2);
  pend(40);  // never allocated
  EXPECT_DEATH(merge_pending(s_, -1, 0, 0),
               "mallocgc: fatal error: free\\(0x[0-9a-f]*" + low_hex(s_, 40) + "\\): object freed twice");
}

TEST_F(MergePending, PendingFreeOfASlotStillInTheOwnersChunkDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  mark_allocated(s_, 64, 64);  // word 1 reserved by a cache's chunk
  // The chunk still holds slots 70..127: slot 72 was never handed out.
  const std::uint64_t cached = ~std::uint64_t{0} << 6;
  pend(72);
  EXPECT_DEATH(merge_pending(s_, -1, cached, 1), "free\\(0x[0-9a-f]*" + low_hex(s_, 72) +
                                                     "\\): not the start of a live object \\(the slot was never "
                                                     "allocated\\)");
  // Slot 65, handed out already, merges.
  s_->pending_free[1].store(0);
  pend(65);
  EXPECT_EQ(merge_pending(s_, -1, cached, 1), 1u);
}

TEST(MergePendingTiny, CurrentBlockIsKeptForALaterMerge) {
  MSpan* s = mheap().alloc_small_span(kTinySpanClass);
  ASSERT_NE(s, nullptr);
  mark_allocated(s, 0, 4);
  for (std::size_t b = 0; b < 4; b++) s->tiny->alloc_mask[b] = 1;
  for (std::size_t b = 0; b < 4; b++) {
    s->tiny->remote_freed[b].store(1);
    s->pending_free[0].fetch_or(std::uint64_t{1} << b);
  }
  s->pending.store(1);
  EXPECT_EQ(merge_pending(s, 2, 0, 0), 3u);
  EXPECT_TRUE(s->is_allocated(2));
  EXPECT_FALSE(s->is_allocated(0));
  EXPECT_FALSE(s->is_allocated(1));
  EXPECT_FALSE(s->is_allocated(3));
  EXPECT_EQ(s->pending_free[0].load(), 0b100u) << "the current block stays pending";
  EXPECT_EQ(s->pending.load(), 1u);
  EXPECT_EQ(s->tiny->alloc_mask[2], 1);
  s->check();
  // No longer current: released.
  EXPECT_EQ(merge_pending(s, -1, 0, 0), 1u);
  EXPECT_EQ(s->alloc_count, 0u);
  EXPECT_EQ(s->pending.load(), 0u);
  s->check();
  mheap().free_span(s);
}

// merge_pending of tiny spans examines pending blocks eight at a time: every
// pending block whose objects are all freed is released, and nothing else
// changes, in its group of eight or outside.

struct TinyBlockState {
  std::size_t block;
  std::uint16_t alloc, local, remote;
  bool pending;
  bool released;  // expected
};

struct TinyMergeCase {
  const char* name;
  std::vector<TinyBlockState> blocks;
  long current = -1;
};

void PrintTo(const TinyMergeCase& c, std::ostream* os) { *os << c.name; }

class TinyMerge : public ::testing::TestWithParam<TinyMergeCase> {};

TEST_P(TinyMerge, ReleasesExactlyTheCompletePendingBlocks) {
  const TinyMergeCase& c = GetParam();
  MSpan* s = mheap().alloc_small_span(kTinySpanClass);
  ASSERT_NE(s, nullptr);
  for (const TinyBlockState& b : c.blocks) {
    mark_allocated(s, b.block, 1);
    s->tiny->alloc_mask[b.block] = b.alloc;
    s->tiny->local_freed[b.block] = b.local;
    s->tiny->remote_freed[b.block].store(b.remote);
    if (b.pending) {
      s->pending_free[b.block / 64].fetch_or(std::uint64_t{1} << (b.block % 64));
      s->pending.store(1);
    }
  }
  s->check();
  const std::uint32_t count = s->alloc_count;
  std::size_t want = 0;
  for (const TinyBlockState& b : c.blocks) want += b.released;
  EXPECT_EQ(merge_pending(s, c.current, 0, 0), want);
  EXPECT_EQ(s->alloc_count, count - want);
  bool current_pending = false;
  for (const TinyBlockState& b : c.blocks) {
    SCOPED_TRACE("block " + std::to_string(b.block));
    EXPECT_EQ(s->is_allocated(b.block), !b.released);
    EXPECT_EQ(s->tiny->alloc_mask[b.block], b.released ? 0 : b.alloc);
    EXPECT_EQ(s->tiny->local_freed[b.block], b.released ? 0 : b.local);
    EXPECT_EQ(s->tiny->remote_freed[b.block].load(), b.released ? 0 : b.remote);
    const bool still_pending = (s->pending_free[b.block / 64].load() >> (b.block % 64)) & 1;
    EXPECT_EQ(still_pending, b.pending && static_cast<long>(b.block) == c.current) << "only the current block waits";
    current_pending = current_pending || still_pending;
  }
  EXPECT_EQ(s->pending.load(), current_pending ? 1u : 0u);
  s->check();
  for (const TinyBlockState& b : c.blocks) {  // let the span go
    s->tiny->alloc_mask[b.block] = s->tiny->local_freed[b.block] = 0;
    s->tiny->remote_freed[b.block].store(0);
  }
  mheap().free_span(s);
}

// Eight complete pending blocks; the current one (if among them) stays.
std::vector<TinyBlockState> whole_group(std::size_t first, long current = -1) {
  std::vector<TinyBlockState> v;
  for (std::size_t b = first; b < first + 8; b++)
    v.push_back({b, static_cast<std::uint16_t>(0x101u << (b % 8)), 0, static_cast<std::uint16_t>(0x101u << (b % 8)),
                 true, static_cast<long>(b) != current});
  return v;
}

INSTANTIATE_TEST_SUITE_P(
    Groups, TinyMerge,
    ::testing::Values(TinyMergeCase{"WholeGroupComplete", whole_group(8)},
                      TinyMergeCase{"WholeGroupCompleteExceptCurrent", whole_group(8, 13), 13},
                      TinyMergeCase{"MixedGroup",
                                    {
                                        {16, 0b1, 0, 0b1, true, true},             // complete
                                        {17, 0b11, 0, 0b01, true, false},          // one object lives
                                        {18, 0x8001, 0x8000, 0x0001, true, true},  // freed both ways
                                        {19, 0b1, 0, 0, true, false},              // nothing freed
                                        {20, 0b1, 0b1, 0, false, false},           // complete but not pending
                                        {21, 0, 0, 0, true, false},                // no objects
                                        {22, 0b1, 0, 0b1, true, false},            // the current block
                                        {23, 0xFFFF, 0xFFFF, 0, true, true},
                                    },
                                    22},
                      TinyMergeCase{"NeighboursUntouched",
                                    {
                                        {0, 0x1, 0, 0, false, false},
                                        {1, 0x3, 0x1, 0, false, false},
                                        {2, 0x7, 0, 0x2, false, false},
                                        {3, 0xF, 0x3, 0xC, true, true},
                                        {4, 0x11, 0x10, 0x1, false, false},  // complete, not pending
                                        {5, 0x21, 0, 0x20, false, false},
                                        {6, 0x41, 0x1, 0, false, false},
                                        {7, 0x81, 0, 0, false, false},
                                    }},
                      TinyMergeCase{"AcrossWords",
                                    {
                                        {63, 0b1, 0, 0b1, true, true},
                                        {64, 0b1, 0b1, 0, true, true},
                                        {127, 0b101, 0, 0b101, true, true},
                                        {128, 0b1, 0, 0, true, false},
                                        {504, 0b1, 0, 0b1, true, true},
                                        {511, 0b1, 0, 0b1, true, true},
                                    },
                                    128}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(TinyMergeDeathTest, BadFreeInTheMiddleOfAGroupNamesTheAddress) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MSpan* s = mheap().alloc_small_span(kTinySpanClass);
  ASSERT_NE(s, nullptr);
  mark_allocated(s, 16, 8);
  for (std::size_t b = 16; b < 24; b++) {
    s->tiny->alloc_mask[b] = 0b1;
    s->tiny->remote_freed[b].store(0b1);
    s->pending_free[0].fetch_or(std::uint64_t{1} << b);
  }
  s->tiny->remote_freed[21].store(0b100001);  // byte 5 of block 21 (base + 0x150) starts no object
  s->pending.store(1);
  EXPECT_DEATH(merge_pending(s, -1, 0, 0),
               "mallocgc: fatal error: free\\(0x[0-9a-f]*155\\): not the start of a live object \\(tiny block "
               "0x[0-9a-f]*150\\)");
  for (std::size_t b = 16; b < 24; b++) {
    s->tiny->alloc_mask[b] = 0;
    s->tiny->remote_freed[b].store(0);
  }
  mheap().free_span(s);
}

// tiny_block_reclaimable over its masks.

struct TinyCase {
  const char* name;
  std::uint16_t alloc, local, remote;
  bool reclaimable;
};

void PrintTo(const TinyCase& c, std::ostream* os) { *os << c.name; }

class TinyBlockReclaimable : public ::testing::TestWithParam<TinyCase> {};

TEST_P(TinyBlockReclaimable, ReleasesOnlyBlocksWhoseObjectsAreAllFreed) {
  const TinyCase c = GetParam();
  MSpan* s = mheap().alloc_small_span(kTinySpanClass);
  ASSERT_NE(s, nullptr);
  constexpr std::size_t b = 77;
  s->tiny->alloc_mask[b] = c.alloc;
  s->tiny->local_freed[b] = c.local;
  s->tiny->remote_freed[b].store(c.remote);
  EXPECT_EQ(tiny_block_reclaimable(s, b), c.reclaimable);
  if (c.reclaimable) {
    EXPECT_EQ(s->tiny->alloc_mask[b], 0);
    EXPECT_EQ(s->tiny->local_freed[b], 0);
    EXPECT_EQ(s->tiny->remote_freed[b].load(), 0);
  } else {
    EXPECT_EQ(s->tiny->alloc_mask[b], c.alloc);
    EXPECT_EQ(s->tiny->local_freed[b], c.local);
    EXPECT_EQ(s->tiny->remote_freed[b].load(), c.remote);
  }
  s->tiny->alloc_mask[b] = s->tiny->local_freed[b] = 0;
  s->tiny->remote_freed[b].store(0);
  mheap().free_span(s);
}

INSTANTIATE_TEST_SUITE_P(Masks, TinyBlockReclaimable,
                         ::testing::Values(TinyCase{"NoObjects", 0, 0, 0, false},
                                           TinyCase{"OneLiveObject", 0b1, 0, 0, false},
                                           TinyCase{"OneOfTwoFreedLocally", 0b101, 0b1, 0, false},
                                           TinyCase{"OneOfTwoFreedRemotely", 0b101, 0, 0b100, false},
                                           TinyCase{"AllFreedLocally", 0b101, 0b101, 0, true},
                                           TinyCase{"AllFreedRemotely", 0x8421, 0, 0x8421, true},
                                           TinyCase{"AllFreedBothWays", 0b1011, 0b0011, 0b1000, true},
                                           TinyCase{"SixteenObjects", 0xFFFF, 0xFF00, 0x00FF, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TinyBlockReclaimableDeathTest, FreeOfAnOffsetWithNoObjectDiesNamingTheAddress) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MSpan* s = mheap().alloc_small_span(kTinySpanClass);
  ASSERT_NE(s, nullptr);
  constexpr std::size_t b = 9;  // block at base + 0x90
  s->tiny->alloc_mask[b] = 0b1;
  s->tiny->remote_freed[b].store(0b1000);  // byte 3: no object starts there
  EXPECT_DEATH(tiny_block_reclaimable(s, b),
               "mallocgc: fatal error: free\\(0x[0-9a-f]*093\\): not the start of a live object \\(tiny block "
               "0x[0-9a-f]*090\\)");
  s->tiny->remote_freed[b].store(0);
  s->tiny->local_freed[b] = 0b10;  // the same through the owner's mask
  EXPECT_DEATH(tiny_block_reclaimable(s, b), "free\\(0x[0-9a-f]*091\\): not the start of a live object");
  s->tiny->alloc_mask[b] = s->tiny->local_freed[b] = 0;
  mheap().free_span(s);
}

// MCentral::check on broken lists.

TEST(MCentralCheckDeathTest, DiesOnInconsistentLists) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int spc = span_class(29, Kind::kNoscan);
  PrivateCache c;
  MSpan* s = mcentral(spc).cache_span(c.get(), spc);
  ASSERT_NE(s, nullptr);
  mark_all_allocated(s);
  mcentral(spc).uncache_span(s);
  mcentral(spc).check();
  EXPECT_DEATH(
      {
        s->alloc_bits[0].store(s->alloc_bits[0].load() & ~std::uint64_t{1});
        s->alloc_count--;
        mcentral(spc).check();
      },
      "central list: span 0x[0-9a-f]+ on a full list has 9 of 10 slots allocated");
  EXPECT_DEATH(
      {
        s->owner.store(c.get());
        mcentral(spc).check();
      },
      "central list: span 0x[0-9a-f]+ is on a list and owned by a cache");
  // The spans on the lists are checked too.
  EXPECT_DEATH(
      {
        s->alloc_bits[0].store(s->alloc_bits[0].load() | std::uint64_t{1} << 63);
        mcentral(spc).check();
      },
      "span 0x[0-9a-f]+: alloc bit set beyond the last slot \\(word 0\\)");
}

// Sweeping without the central lock. A span is taken off its list under the
// lock and swept unlocked; the sweep hook (allocfreetrace's) holds the
// sweeping thread inside the sweep of a chosen span, so that the test can
// act while that span is half swept.

struct HeldSweep {
  std::atomic<std::uintptr_t> span_base{0};
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
};
HeldSweep g_held;

void hold_in_sweep(std::uintptr_t obj, std::size_t, Kind) {
  const std::uintptr_t base = g_held.span_base.load();
  if (base == 0 || obj < base || obj >= base + kPageSize) return;
  g_held.entered.store(true);
  while (!g_held.release.load()) sched_yield();
}

// Wait up to 30 s for pred; false if it never held.
template <class Pred>
bool eventually(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    sched_yield();
  }
  return true;
}

class UnlockedSweep : public ::testing::Test {
 protected:
  void SetUp() override {
    g_held.span_base = 0;
    g_held.entered = false;
    g_held.release = false;
    g_sweep_free_hook.store(hold_in_sweep);
  }
  void TearDown() override {
    g_held.release = true;
    g_sweep_free_hook.store(nullptr);
  }
  // A full span of spc whose marks keep every slot but slot 0, unswept
  // from now on (a cycle's generation step, which the collector takes
  // with the world stopped; nothing else runs here).
  static MSpan* full_span_to_sweep(int spc, PrivateCache& c, bool give_back) {
    MSpan* s = mcentral(spc).cache_span(c.get(), spc);
    if (s == nullptr) return nullptr;
    mark_all_allocated(s);
    s->gc_bits[0].store(s->alloc_bits[0].load() & ~std::uint64_t{1});
    if (give_back) mcentral(spc).uncache_span(s);
    advance_sweep_gen();
    return s;
  }
};

TEST_F(UnlockedSweep, ACacheSweepingASpanLeavesTheListToOthersAndACycleWaitsForIt) {
  const int spc = span_class(31, Kind::kNoscan);
  PrivateCache c1, c2;
  MSpan* s = full_span_to_sweep(spc, c1, true);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(needs_sweep(s));
  g_held.span_base = s->base;
  MSpan* got = nullptr;
  std::thread a([&] { got = mcentral(spc).cache_span(c1.get(), spc); });
  ASSERT_TRUE(eventually([] { return g_held.entered.load(); }));
  // The sweep of s holds no lock: another cache of the class is served
  // (a fresh span: s was the only one), and the lists pass their check.
  auto other = std::async(std::launch::async, [&] { return mcentral(spc).cache_span(c2.get(), spc); });
  const bool served = other.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  g_held.release = !served;  // a failure must not hang the test
  ASSERT_TRUE(served) << "cache_span waited for another thread's sweep";
  MSpan* fresh = other.get();
  ASSERT_NE(fresh, nullptr);
  EXPECT_NE(fresh, s);
  EXPECT_EQ(s->list, nullptr) << "a span being swept is on no list";
  EXPECT_EQ(s->owner.load(), nullptr);
  // A cycle (or fork) locks the class only once no sweep is halfway: it
  // must let go and wait, then find s swept and owned by the sweeper.
  const std::uint64_t waits = mcentral(spc).quiesce_waits();
  bool swept_when_locked = false;
  MCache* owner_when_locked = nullptr;
  std::thread q([&] {
    mcentral(spc).lock_quiesced();
    swept_when_locked = !needs_sweep(s);
    owner_when_locked = s->owner.load();
    mcentral(spc).unlock();
  });
  const bool waited = eventually([&] { return mcentral(spc).quiesce_waits() > waits; });
  g_held.release = true;
  q.join();
  a.join();
  EXPECT_TRUE(waited) << "lock_quiesced did not wait for the sweep";
  EXPECT_TRUE(swept_when_locked);
  EXPECT_EQ(owner_when_locked, c1.get());
  EXPECT_EQ(got, s);
  EXPECT_EQ(s->alloc_count, s->nelems - 1) << "the sweep freed slot 0 alone";
  EXPECT_FALSE(s->is_allocated(0));
  mcentral(spc).check();
}

TEST_F(UnlockedSweep, AStoppedWorldWithASpanTakenDies) {
  // The collector's sweep of what is left, with the lock taken the plain
  // way (not quiesced) while a thread is inside a sweep: the invariant
  // lock_quiesced keeps is checked there.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int spc = span_class(34, Kind::kNoscan);
  EXPECT_DEATH(
      {
        PrivateCache c1;
        MSpan* s = full_span_to_sweep(spc, c1, true);
        g_held.span_base = s->base;
        std::thread a([&] { mcentral(spc).cache_span(c1.get(), spc); });
        a.detach();
        if (!eventually([] { return g_held.entered.load(); })) std::abort();
        mcentral(spc).lock();
        mcentral(spc).sweep_unswept_locked();
      },
      "central list: 1 span\\(s\\) taken for sweeping while the world is stopped");
}

TEST_F(UnlockedSweep, AnOwnerSweepsTheSpanItGivesBackWithoutTheLock) {
  const int spc = span_class(32, Kind::kConservative);
  PrivateCache c1, c2;
  MSpan* s = full_span_to_sweep(spc, c1, false);  // still c1's
  ASSERT_NE(s, nullptr);
  g_held.span_base = s->base;
  std::thread a([&] { mcentral(spc).uncache_span(s); });
  ASSERT_TRUE(eventually([] { return g_held.entered.load(); }));
  auto other = std::async(std::launch::async, [&] { return mcentral(spc).cache_span(c2.get(), spc); });
  const bool served = other.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  g_held.release = true;
  a.join();
  ASSERT_TRUE(served) << "cache_span waited for an owner's sweep";
  EXPECT_NE(other.get(), s);
  // Filed after its sweep: one free slot, so on the swept partial list.
  EXPECT_FALSE(needs_sweep(s));
  EXPECT_EQ(s->owner.load(), nullptr);
  EXPECT_EQ(s->alloc_count, s->nelems - 1);
  EXPECT_EQ(counts(spc), (Counts{1, 0}));
  mcentral(spc).check();
}

TEST_F(UnlockedSweep, ThreadsSweepingOneClassAtOnceLoseNoSpan) {
  // Many unswept spans of one class, swept by four threads through
  // sweep_some and cache_span at once: every span ends swept, on a list
  // or in a cache, with its one dead slot freed.
  g_sweep_free_hook.store(nullptr);
  const int spc = span_class(33, Kind::kNoscan);
  PrivateCache c;
  std::vector<MSpan*> spans;
  for (int i = 0; i < 200; i++) {
    MSpan* s = mcentral(spc).cache_span(c.get(), spc);
    ASSERT_NE(s, nullptr);
    mark_all_allocated(s);
    s->gc_bits[0].store(s->alloc_bits[0].load() & ~std::uint64_t{1});
    spans.push_back(s);
  }
  for (MSpan* s : spans) mcentral(spc).uncache_span(s);
  advance_sweep_gen();
  std::vector<PrivateCache> caches(2);
  std::vector<MSpan*> taken(2, nullptr);
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; t++) ts.emplace_back([&] { mcentral(spc).sweep_some(~std::size_t{0}); });
  for (int t = 0; t < 2; t++) ts.emplace_back([&, t] { taken[t] = mcentral(spc).cache_span(caches[t].get(), spc); });
  for (std::thread& t : ts) t.join();
  std::size_t owned = 0;
  for (MSpan* s : spans) {
    EXPECT_FALSE(needs_sweep(s));
    EXPECT_EQ(s->alloc_count, s->nelems - 1);
    const MCache* o = s->owner.load();
    if (o != nullptr) {
      owned++;
      EXPECT_TRUE(o == caches[0].get() || o == caches[1].get());
    } else {
      EXPECT_NE(s->list, nullptr);
    }
  }
  EXPECT_EQ(owned, 2u);
  EXPECT_EQ(counts(spc), (Counts{spans.size() - 2, 0}));
  mcentral(spc).check();
}

}  // namespace
}  // namespace mgc::internal
