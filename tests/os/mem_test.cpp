// Tests for src/os/mem: reserve, commit, release, map_metadata.
#include "os/mem.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <ostream>
#include <vector>

namespace mgc::internal::os {
namespace {

constexpr std::size_t kOsPage = 4096;

bool all_bytes(const void* p, std::size_t n, unsigned char value) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; i++)
    if (b[i] != value) return false;
  return true;
}

struct ReserveCase {
  std::size_t size;
  std::size_t align;
};

void PrintTo(const ReserveCase& c, std::ostream* os) { *os << c.size << " bytes aligned to " << c.align; }

class ReserveAlignment : public ::testing::TestWithParam<ReserveCase> {};

TEST_P(ReserveAlignment, ReturnsAlignedRangeThatCommitsAndHoldsData) {
  const ReserveCase c = GetParam();
  // Several in a row: the first may happen to be aligned by luck.
  std::vector<char*> got;
  for (int i = 0; i < 4; i++) {
    auto* p = static_cast<char*>(reserve(c.size, c.align));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % c.align, 0u) << "align " << c.align;
    // The whole range is usable once committed.
    ASSERT_TRUE(commit(p, c.size));
    p[0] = 1;
    p[c.size - 1] = 2;
    EXPECT_EQ(p[0], 1);
    EXPECT_EQ(p[c.size - 1], 2);
    got.push_back(p);
  }
  // Distinct reservations do not overlap.
  for (std::size_t i = 0; i < got.size(); i++)
    for (std::size_t j = i + 1; j < got.size(); j++)
      EXPECT_TRUE(got[i] + c.size <= got[j] || got[j] + c.size <= got[i]);
  for (char* p : got) unmap(p, c.size);
}

INSTANTIATE_TEST_SUITE_P(Alignments, ReserveAlignment,
                         ::testing::Values(ReserveCase{kOsPage, kOsPage}, ReserveCase{8192, 8192},
                                           ReserveCase{3 * 8192, 64 * 1024}, ReserveCase{1 << 20, 2 << 20},
                                           ReserveCase{64 << 20, 64 << 20}, ReserveCase{8192, std::size_t{1} << 30}),
                         [](const auto& info) {
                           return "size" + std::to_string(info.param.size) + "_align" +
                                  std::to_string(info.param.align);
                         });

TEST(OsMem, ReservedMemoryIsNotAccessibleUntilCommitted) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto* p = static_cast<volatile char*>(reserve(1 << 20, 1 << 20));
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(p[0] = 1, "");
  EXPECT_DEATH((void)p[(1 << 20) - 1], "");
  // Commit only the middle: its neighbours stay inaccessible.
  ASSERT_TRUE(commit(const_cast<char*>(p) + 8192, 8192));
  p[8192] = 7;
  p[2 * 8192 - 1] = 8;
  EXPECT_EQ(p[8192], 7);
  EXPECT_EQ(p[2 * 8192 - 1], 8);
  EXPECT_DEATH((void)p[8192 - 1], "");
  EXPECT_DEATH((void)p[2 * 8192], "");
  unmap(const_cast<char*>(p), 1 << 20);
}

TEST(OsMem, CommittedMemoryStartsZeroedAndIsWritable) {
  constexpr std::size_t kSize = 256 * 1024;
  auto* p = static_cast<unsigned char*>(reserve(kSize, 8192));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(commit(p, kSize));
  EXPECT_TRUE(all_bytes(p, kSize, 0));
  std::memset(p, 0x5A, kSize);
  EXPECT_TRUE(all_bytes(p, kSize, 0x5A));
  unmap(p, kSize);
}

TEST(OsMem, ReleasedMemoryReadsAsZeroAndStaysWritable) {
  constexpr std::size_t kSize = 128 * 1024;
  auto* p = static_cast<unsigned char*>(reserve(kSize, 8192));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(commit(p, kSize));
  std::memset(p, 0xAB, kSize);
  // Release the middle half only: the rest keeps its data.
  release(p + kSize / 4, kSize / 2);
  EXPECT_TRUE(all_bytes(p, kSize / 4, 0xAB));
  EXPECT_TRUE(all_bytes(p + kSize / 4, kSize / 2, 0));
  EXPECT_TRUE(all_bytes(p + 3 * kSize / 4, kSize / 4, 0xAB));
  // Still committed: writable without another commit.
  std::memset(p + kSize / 4, 0xCD, kSize / 2);
  EXPECT_TRUE(all_bytes(p + kSize / 4, kSize / 2, 0xCD));
  unmap(p, kSize);
}

TEST(OsMem, AbsurdReservationsFail) {
  EXPECT_EQ(reserve(std::size_t{1} << 60, 8192), nullptr);
  EXPECT_EQ(reserve(std::size_t{1} << 60, std::size_t{1} << 26), nullptr);
  // size + align overflows.
  EXPECT_EQ(reserve(~std::size_t{0} - 4095, 8192), nullptr);
}

TEST(OsMem, HugePageAdviceKeepsContents) {
  constexpr std::size_t kSize = 4 << 20;
  auto* p = static_cast<unsigned char*>(reserve(kSize, 2 << 20));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(commit(p, kSize));
  std::memset(p, 0x11, kSize);
  advise_huge_pages(p, kSize);
  EXPECT_TRUE(all_bytes(p, kSize, 0x11));
  unmap(p, kSize);
}

TEST(OsMem, MetadataMappingsAreZeroedWritableAndPageAligned) {
  for (std::size_t size : {std::size_t{1}, kOsPage, std::size_t{100000}, std::size_t{1} << 20}) {
    auto* p = static_cast<unsigned char*>(map_metadata(size));
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kOsPage, 0u) << size;
    EXPECT_TRUE(all_bytes(p, size, 0)) << size;
    std::memset(p, 0x77, size);
    EXPECT_TRUE(all_bytes(p, size, 0x77)) << size;
    unmap(p, size);
  }
  EXPECT_EQ(map_metadata(std::size_t{1} << 60), nullptr);
}

}  // namespace
}  // namespace mgc::internal::os
