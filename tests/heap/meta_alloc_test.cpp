// Tests for src/heap/meta_alloc: zeroed, aligned, distinct, recycled blocks.
#include "heap/meta_alloc.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace mgc::internal {
namespace {

bool all_zero(const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; i++)
    if (b[i] != 0) return false;
  return true;
}

class MetaAllocSize : public ::testing::TestWithParam<std::size_t> {};

TEST_P(MetaAllocSize, BlocksAreZeroedAlignedWritableAndDistinct) {
  const std::size_t size = GetParam();
  const std::size_t usable = size == 0 ? 1 : size;
  std::vector<unsigned char*> blocks;
  for (int i = 0; i < 24; i++) {
    auto* p = static_cast<unsigned char*>(meta_alloc(size));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 16, 0u);
    EXPECT_TRUE(all_zero(p, usable));
    std::memset(p, 0xEE, usable);  // writable over the whole size
    blocks.push_back(p);
  }
  std::vector<unsigned char*> sorted = blocks;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i + 1 < sorted.size(); i++) EXPECT_LE(sorted[i] + usable, sorted[i + 1]);
  // Dirty blocks come back zeroed.
  for (auto* p : blocks) meta_free(p, size);
  for (std::size_t i = 0; i < blocks.size(); i++) {
    auto* p = static_cast<unsigned char*>(meta_alloc(size));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(all_zero(p, usable));
    blocks[i] = p;
  }
  for (auto* p : blocks) meta_free(p, size);
}

INSTANTIATE_TEST_SUITE_P(Sizes, MetaAllocSize,
                         ::testing::Values(0, 1, 8, 15, 16, 17, 24, 48, 100, 1000, 4095, 4096, 4097, 10000, 40000,
                                           kMaxMetaBlock - 1, kMaxMetaBlock),
                         [](const auto& info) { return "size" + std::to_string(info.param); });

TEST(MetaAlloc, FreedBlockIsReusedForTheSameSize) {
  auto* p = static_cast<unsigned char*>(meta_alloc(200));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0xFF, 200);
  meta_free(p, 200);
  auto* q = static_cast<unsigned char*>(meta_alloc(200));
  EXPECT_EQ(q, p);
  EXPECT_TRUE(all_zero(q, 200));
  // A size in the same power-of-two bin takes it too.
  meta_free(q, 200);
  EXPECT_EQ(meta_alloc(256), p);
  // A different bin does not.
  meta_free(p, 256);
  auto* r = meta_alloc(100);
  EXPECT_NE(r, p);
  EXPECT_EQ(meta_alloc(129), p);
  meta_free(r, 100);
  meta_free(p, 129);
}

TEST(MetaAlloc, ReuseMapsNoNewMemoryButFreshBlocksDo) {
  std::vector<void*> blocks;
  for (int i = 0; i < 64; i++) blocks.push_back(meta_alloc(32 * 1024));  // 2 MiB: at least one new mapping
  const std::size_t sys = meta_sys_bytes();
  EXPECT_GE(sys, std::size_t{2} << 20);
  for (void* p : blocks) meta_free(p, 32 * 1024);
  for (void*& p : blocks) p = meta_alloc(32 * 1024);
  EXPECT_EQ(meta_sys_bytes(), sys);
  for (void* p : blocks) meta_free(p, 32 * 1024);
  std::vector<void*> more;
  for (int i = 0; i < 128; i++) more.push_back(meta_alloc(32 * 1024));
  EXPECT_GT(meta_sys_bytes(), sys);
  for (void* p : more) meta_free(p, 32 * 1024);
}

TEST(MetaAlloc, FreeOfNullIsIgnored) {
  meta_free(nullptr, 64);
  // Had nullptr gone on the bin's free list, this would hand it out.
  void* p = meta_alloc(64);
  EXPECT_NE(p, nullptr);
  meta_free(p, 64);
}

TEST(MetaAllocDeathTest, BlockAboveTheLimitDiesWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(meta_alloc(kMaxMetaBlock + 1),
               "mallocgc: fatal error: meta_alloc\\(65537\\): block too large for metadata");
  EXPECT_DEATH(meta_alloc(std::size_t{1} << 40), "meta_alloc\\(1099511627776\\): block too large");
}

}  // namespace
}  // namespace mgc::internal
