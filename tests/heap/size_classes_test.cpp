// Tests for include/mallocgc/internal/size_classes.hpp and size_to_class:
// the properties tools/mksizeclasses.cpp promises. (That the committed table
// is what the generator writes is the size_classes_generated CTest.)
#include "mallocgc/internal/size_classes.hpp"

#include <gtest/gtest.h>

#include <cstdint>

#include "mallocgc/internal/fast_path.hpp"

namespace mgc::internal {
namespace {

// size_to_class constant-folds.
static_assert(size_to_class(1) == 1);
static_assert(size_to_class(16) == 2);
static_assert(size_to_class(kMaxSmallSize) == kNumSizeClasses - 1);
static_assert(size_to_class(kMaxSmallSize + 1) == 0);

TEST(SizeClasses, AboutSixtySixClasses) {
  EXPECT_GE(kNumSizeClasses - 1, 60);
  EXPECT_LE(kNumSizeClasses - 1, 70);
  EXPECT_EQ(kClassToSize[0], 0) << "class 0 means 'not small'";
  EXPECT_EQ(kClassToAllocNPages[0], 0);
}

TEST(SizeClasses, SizesIncreaseAndAreMultiplesOf16FromSixteenOn) {
  EXPECT_EQ(kClassToSize[1], 8);
  for (int c = 1; c < kNumSizeClasses; c++) {
    const unsigned size = kClassToSize[c];
    if (c > 1) {
      EXPECT_GT(size, kClassToSize[c - 1]) << "class " << c;
    }
    if (size >= 16) {
      EXPECT_EQ(size % 16, 0u) << "class " << c << " (" << size << " B) is not 16-aligned";
    }
  }
  EXPECT_EQ(kClassToSize[kNumSizeClasses - 1], kMaxSmallSize);
  EXPECT_EQ(kMaxSmallSize, 32768u);
}

TEST(SizeClasses, PowersOfTwoUpToAPageAreClasses) {
  // Alignment relies on them: alloc_aligned looks for a class whose size is
  // a multiple of the alignment, and slots of such a class are aligned.
  for (unsigned p = 16; p <= 8192; p *= 2) {
    bool found = false;
    for (int c = 1; c < kNumSizeClasses; c++) found = found || kClassToSize[c] == p;
    EXPECT_TRUE(found) << p << " is not a size class";
    EXPECT_EQ(kClassToSize[size_to_class(p)], p);
  }
}

TEST(SizeClasses, TailWasteAtMostOneEighth) {
  for (int c = 1; c < kNumSizeClasses; c++) {
    const std::size_t span = kClassToAllocNPages[c] * kPageSize;
    EXPECT_LE(span % kClassToSize[c], span / 8) << "class " << c;
  }
}

TEST(SizeClasses, PageCountsAreTheSmallestWithAtMostOneEighthWaste) {
  for (int c = 1; c < kNumSizeClasses; c++) {
    const std::size_t size = kClassToSize[c];
    const std::size_t npages = kClassToAllocNPages[c];
    ASSERT_GE(npages, 1u) << "class " << c;
    EXPECT_GE(npages * kPageSize, size) << "class " << c << " does not fit one object in its span";
    for (std::size_t fewer = 1; fewer < npages; fewer++) {
      const std::size_t span = fewer * kPageSize;
      EXPECT_FALSE(span >= size && span % size <= span / 8)
          << "class " << c << " (" << size << " B) would fit " << fewer << " pages";
    }
    // Spans fit their slot bitmaps.
    EXPECT_LE(npages * kPageSize / size, kPageSize / 8) << "class " << c;
  }
}

TEST(SizeClasses, DivMagicIsTheCeilingOfTwoToThe32OverTheSize) {
  for (int c = 1; c < kNumSizeClasses; c++) {
    const std::uint64_t size = kClassToSize[c];
    EXPECT_EQ(kClassToDivMagic[c], 0xFFFFFFFFull / size + 1) << "class " << c;
  }
}

TEST(SizeClasses, PageConstantsAgree) {
  EXPECT_EQ(std::size_t{1} << kPageShift, kPageSize);
  EXPECT_EQ(kPageSize, 8192u);
}

TEST(SizeToClass, SmallestClassThatFitsForEverySmallSize) {
  for (std::size_t n = 1; n <= kMaxSmallSize; n++) {
    const int c = size_to_class(n);
    ASSERT_GE(c, 1) << n;
    ASSERT_LT(c, kNumSizeClasses) << n;
    ASSERT_GE(kClassToSize[c], n) << "size " << n << " gets class " << c << ", too small";
    ASSERT_LT(kClassToSize[c - 1], n) << "size " << n << " gets class " << c << ", class " << c - 1 << " fits";
  }
}

TEST(SizeToClass, SizesOutsideTheSmallRange) {
  // 0 is not a small size: callers ask for 1 byte instead (alloc_slow, mgc::alloc).
  EXPECT_EQ(size_to_class(0), 0);
  EXPECT_EQ(size_to_class(kMaxSmallSize + 1), 0);
  EXPECT_EQ(size_to_class(kMaxSmallSize + kLargeSizeDiv), 0);
  EXPECT_EQ(size_to_class(std::size_t{1} << 40), 0);
  EXPECT_EQ(size_to_class(~std::size_t{0}), 0);
}

TEST(SizeToClass, TableBoundaries) {
  // The last size of the 8-byte table and the first of the 128-byte one.
  const std::size_t edge = kSmallSizeMax - kSmallSizeDiv;
  EXPECT_EQ(kClassToSize[size_to_class(896)], 896u);
  EXPECT_EQ(kClassToSize[size_to_class(897)], 1024u);
  EXPECT_EQ(kClassToSize[size_to_class(edge)], 1024u);
  EXPECT_EQ(kClassToSize[size_to_class(edge + 1)], 1024u);
  EXPECT_EQ(kClassToSize[size_to_class(kSmallSizeMax)], 1024u);
  EXPECT_EQ(kClassToSize[size_to_class(kSmallSizeMax + 1)], 1152u);
}

TEST(SpanClasses, EncodeClassAndKind) {
  for (int c = 0; c < kNumSizeClasses; c++) {
    for (Kind k : {Kind::kNoscan, Kind::kConservative, Kind::kTyped, Kind::kTiny}) {
      const int spc = span_class(c, k);
      EXPECT_EQ(spc / kNumKinds, c);
      EXPECT_EQ(spc % kNumKinds, static_cast<int>(k));
      EXPECT_LT(spc, kNumSpanClasses);
    }
  }
  EXPECT_EQ(kClassToSize[kTinySizeClass], kTinySize);
  EXPECT_EQ(kTinySpanClass, span_class(kTinySizeClass, Kind::kTiny));
}

}  // namespace
}  // namespace mgc::internal
