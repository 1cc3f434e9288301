// Tests for src/prof/sample's cut of the cache's chunks (MCache::refill
// with a slot limit, the budget charged and refunded) and its sampling
// decision, on a private cache (tests/heap/private_cache.hpp).
#include "prof/sample.hpp"

#include <gtest/gtest.h>

#include <cstdint>

#include "../heap/private_cache.hpp"
#include "heap/mcache.hpp"
#include "mallocgc/mallocgc.hpp"

namespace mgc::internal {
namespace {

using testing::PrivateCache;
using testing::take;
using testing::take_chunk;

// 48-byte noscan slots: 170 a span, so word 0 of a fresh span has 64.
constexpr std::size_t kElem = 48;
int spc48() { return span_class(size_to_class(kElem), Kind::kNoscan); }

TEST(SampleCut, ChunkHoldsAtMostTheLimitAndTheRestFollows) {
  testing::isolate_central(spc48());
  PrivateCache c;
  const int spc = spc48();
  ASSERT_TRUE(c->refill(spc, 5));
  MSpan* s = c->spans[spc];
  EXPECT_EQ(popcount64(c->front.alloc[spc].alloc_cache), 5u);
  EXPECT_EQ(c->chunk_avail[spc], 5u);
  EXPECT_EQ(s->alloc_count, 5u);  // only the slots offered are reserved
  EXPECT_EQ(c->sample_budget, -5 * static_cast<std::int64_t>(kElem));
  EXPECT_EQ(take_chunk(*c, spc).size(), 5u);
  // The next refill finds the slots cut off in the same word.
  ASSERT_TRUE(c->refill(spc));
  EXPECT_EQ(c->spans[spc], s);
  EXPECT_EQ(c->front.alloc[spc].chunk_word, 0u);
  EXPECT_EQ(popcount64(c->front.alloc[spc].alloc_cache), 59u);
  EXPECT_EQ(s->alloc_count, 64u);
  EXPECT_EQ(c->counters.nmalloc[spc / kNumKinds].load(), 5u);
  EXPECT_EQ(c->exposed_bytes(), 59 * static_cast<std::int64_t>(kElem));
  for (int i = 0; i < 9; i++) ASSERT_NE(take(*c, spc), nullptr);
  c->check(spc);
  // Given back: the 50 slots not handed out are refunded.
  c->release_all();
  EXPECT_EQ(c->sample_budget, -14 * static_cast<std::int64_t>(kElem));
  EXPECT_EQ(c->counters.nmalloc[spc / kNumKinds].load(), 14u);
  EXPECT_EQ(s->alloc_count, 14u);
}

TEST(SampleCut, TheAllocationThatReachesTheSamplingPointIsSampled) {
  testing::isolate_central(spc48());
  mgc::set_memprofile_rate(4096);
  PrivateCache c;
  const int spc = spc48();
  c->sample_rate = 4096;  // as drawn for the rate in force
  c->sample_budget = 1000;
  // 48 < 1000: not sampled; the chunk may hold half the rest (952 / 2):
  // 9 more slots (9 * 48 < 476), 10 with the slow path's own.
  SampleChoice k = sample_small(c.get(), kElem);
  EXPECT_FALSE(k.sampled);
  EXPECT_EQ(k.max_slots, 10u);
  ASSERT_TRUE(c->refill(spc, k.max_slots));
  ASSERT_NE(take(*c, spc), nullptr);  // the slow path's own slot
  // Distance left (952) = budget + exposed bytes.
  EXPECT_EQ(c->sample_budget + c->exposed_bytes(), 952);
  std::int64_t allocated = kElem * (1 + static_cast<std::int64_t>(take_chunk(*c, spc).size()));
  // Refill after refill, each taking half of what is left, until the slow
  // path's allocation is the one whose bytes reach the distance.
  int refills = 1;
  for (;;) {
    k = sample_small(c.get(), kElem);
    ASSERT_TRUE(c->refill(spc, k.max_slots));
    ASSERT_NE(take(*c, spc), nullptr);
    allocated += kElem;
    refills++;
    if (k.sampled) break;
    ASSERT_LT(refills, 20) << "never sampled";
    allocated += kElem * static_cast<std::int64_t>(take_chunk(*c, spc).size());
  }
  EXPECT_GE(allocated, 1000);
  EXPECT_LT(allocated - static_cast<std::int64_t>(kElem), 1000) << "sampled late";
  EXPECT_LE(refills, 8) << "the chunks near the point should halve the distance each time";
  mgc::set_memprofile_rate(kDefaultMemProfileRate);
}

TEST(SampleCut, OtherClassesExposedSlotsAreWithdrawnWhenTheBudgetLooksShort) {
  mgc::set_memprofile_rate(4096);
  PrivateCache c;
  const int other = span_class(size_to_class(kElem), Kind::kConservative);
  testing::isolate_central(other);
  c->sample_rate = 4096;
  c->sample_budget = 1000;
  ASSERT_TRUE(c->refill(other, 10));  // 480 bytes exposed, charged: budget 520
  EXPECT_EQ(c->sample_budget, 520);
  MSpan* s = c->spans[other];
  EXPECT_EQ(s->alloc_count, 10u);
  // 48 < 520: no sample, and 4 more slots (4 * 48 < 472 / 2).
  SampleChoice k = sample_small(c.get(), kElem);
  EXPECT_FALSE(k.sampled);
  EXPECT_EQ(k.max_slots, 5u);
  c->sample_budget = 30;  // budget below the size, but 480 bytes still exposed elsewhere
  k = sample_small(c.get(), kElem);
  EXPECT_FALSE(k.sampled);  // the exact distance, 510, is not reached
  // The other class's slots went back to its span, refunded: the budget is
  // the exact distance again (462 after this allocation, whose chunk
  // charges it back), and this class's chunk is sized from it.
  EXPECT_EQ(c->exposed_bytes(), 0);
  EXPECT_EQ(c->sample_budget, 510);
  EXPECT_EQ(k.max_slots, 5u);  // 4 * 48 < 462 / 2
  EXPECT_EQ(s->alloc_count, 0u);
  EXPECT_EQ(c->spans[other], s) << "the span stays cached";
  ASSERT_TRUE(c->refill(other, 64));
  EXPECT_EQ(popcount64(c->front.alloc[other].alloc_cache), 64u) << "the withdrawn slots are found again";
  c->check(other);
  mgc::set_memprofile_rate(kDefaultMemProfileRate);
}

}  // namespace
}  // namespace mgc::internal
