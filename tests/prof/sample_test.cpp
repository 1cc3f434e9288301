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
  // 48 < 1000: not sampled; the fast path may take 19 more (19 * 48 < 952).
  SampleChoice k = sample_small(c.get(), kElem);
  EXPECT_FALSE(k.sampled);
  EXPECT_EQ(k.max_slots, 20u);
  ASSERT_TRUE(c->refill(spc, k.max_slots));
  ASSERT_NE(take(*c, spc), nullptr);  // the slow path's own slot
  // Distance left (952) = budget + exposed bytes.
  EXPECT_EQ(c->sample_budget + c->exposed_bytes(), 952);
  EXPECT_EQ(take_chunk(*c, spc).size(), 19u);
  EXPECT_EQ(c->sample_budget, 952 - 19 * 48);  // 40 left
  k = sample_small(c.get(), kElem);
  EXPECT_TRUE(k.sampled);
  EXPECT_GE(k.max_slots, 1u);
  mgc::set_memprofile_rate(kDefaultMemProfileRate);
}

TEST(SampleCut, OtherClassesExposedSlotsDelayTheSample) {
  mgc::set_memprofile_rate(4096);
  PrivateCache c;
  const int other = span_class(size_to_class(kElem), Kind::kConservative);
  testing::isolate_central(other);
  c->sample_rate = 4096;
  c->sample_budget = 1000;
  ASSERT_TRUE(c->refill(other, 10));  // 480 bytes exposed, charged: budget 520
  EXPECT_EQ(c->sample_budget, 520);
  // 48 < 520: no sample, and 10 more slots (10 * 48 < 472).
  SampleChoice k = sample_small(c.get(), kElem);
  EXPECT_FALSE(k.sampled);
  EXPECT_EQ(k.max_slots, 10u);
  c->sample_budget = 30;  // budget below the size, but 480 bytes still exposed elsewhere
  k = sample_small(c.get(), kElem);
  EXPECT_FALSE(k.sampled);  // the exact distance, 510, is not reached
  EXPECT_EQ(k.max_slots, 1u);
  mgc::set_memprofile_rate(kDefaultMemProfileRate);
}

}  // namespace
}  // namespace mgc::internal
