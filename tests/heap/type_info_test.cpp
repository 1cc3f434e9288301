// Tests for src/heap/type_info: interning of object layouts.
#include "heap/type_info.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "mallocgc/internal/fast_path.hpp"

namespace mgc::internal {
namespace {

const TypeInfo* intern(std::size_t size, std::vector<std::size_t> offsets, TypeError* err = nullptr) {
  TypeError e = TypeError::kNoMemory;  // must be overwritten
  const TypeInfo* t = intern_type(size, offsets.data(), offsets.size(), &e);
  if (err != nullptr) *err = e;
  if (t != nullptr) {
    EXPECT_EQ(e, TypeError::kNone);
  }
  return t;
}

TEST(TypeInfo, SameLayoutGivesTheSameRecord) {
  const TypeInfo* a = intern(24, {0, 16});
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(intern(24, {0, 16}), a);
  EXPECT_EQ(intern(24, {16, 0}), a) << "offsets in another order";
  EXPECT_EQ(intern(24, {0, 16, 0, 16}), a) << "offsets repeated";
  const TypeInfo* none = intern(40, {});
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(intern(40, {}), none);
}

TEST(TypeInfo, DifferentLayoutsGiveDifferentRecords) {
  std::vector<const TypeInfo*> got = {
      intern(24, {0, 16}),  intern(24, {0, 8}), intern(24, {0}), intern(24, {}),      intern(32, {0, 16}),
      intern(16, {0, 8}),   intern(8, {0}),     intern(8, {}),   intern(16, {}),      intern(17, {}),
      intern(4096, {4088}), intern(4096, {0}),  intern(24, {8}), intern(32, {0, 24}), intern(25, {0, 16}),
  };
  std::set<const TypeInfo*> distinct(got.begin(), got.end());
  EXPECT_EQ(distinct.size(), got.size());
  EXPECT_EQ(distinct.count(nullptr), 0u);
}

TEST(TypeInfo, ManyLayoutsInternStably) {
  // More layouts than buckets: each still interns to its own record.
  std::vector<const TypeInfo*> first;
  for (std::size_t i = 0; i < 3000; i++) first.push_back(intern(8 * (i % 100 + 1), {8 * (i % 100)}));
  for (std::size_t i = 0; i < 3000; i++) {
    EXPECT_EQ(first[i], first[i % 100]);
    EXPECT_EQ(first[i]->size, 8 * (i % 100 + 1));
  }
  std::set<const TypeInfo*> distinct(first.begin(), first.end());
  EXPECT_EQ(distinct.size(), 100u);
}

TEST(TypeInfo, FieldsAndBitsMatchTheOffsets) {
  const TypeInfo* t = intern(80, {8, 24, 72, 24});
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->size, 80u);
  EXPECT_EQ(t->nwords, 10u);  // last pointer word + 1
  EXPECT_EQ(t->npointers, 3u);
  for (std::size_t w = 0; w < 12; w++) EXPECT_EQ(t->is_pointer_word(w), w == 1 || w == 3 || w == 9) << w;

  const TypeInfo* none = intern(64, {});
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(none->nwords, 0u);
  EXPECT_EQ(none->npointers, 0u);
  for (std::size_t w = 0; w < 8; w++) EXPECT_FALSE(none->is_pointer_word(w));

  // The last word may be a pointer when the size is not a multiple of 8 as
  // long as 8 bytes fit.
  const TypeInfo* odd = intern(20, {8});
  ASSERT_NE(odd, nullptr);
  EXPECT_EQ(odd->nwords, 2u);
  EXPECT_TRUE(odd->is_pointer_word(1));
}

TEST(TypeInfo, LargeTypeWithPointersAtStartAndEnd) {
  constexpr std::size_t kSize = 100 * 1024;
  const TypeInfo* t = intern(kSize, {0, kSize - 8});
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->size, kSize);
  EXPECT_EQ(t->nwords, kSize / 8);
  EXPECT_EQ(t->npointers, 2u);
  for (std::size_t w = 0; w < kSize / 8; w++) ASSERT_EQ(t->is_pointer_word(w), w == 0 || w == kSize / 8 - 1) << w;
  EXPECT_EQ(t->elem_size, 0u);
  EXPECT_EQ(t->span_class, 0u);
  EXPECT_EQ(intern(kSize, {kSize - 8, 0}), t);
  EXPECT_NE(intern(kSize, {0, kSize - 16}), t);
  EXPECT_NE(intern(kSize, {0}), t);
}

TEST(TypeInfo, BitmapsBeyondTheStackBufferCompareCorrectly) {
  // More than 8 bitmap words (512 pointer words) go through a heap buffer.
  std::vector<std::size_t> every(600);
  for (std::size_t i = 0; i < every.size(); i++) every[i] = 8 * i;
  const TypeInfo* all = intern(8 * 600, every);
  ASSERT_NE(all, nullptr);
  EXPECT_EQ(all->npointers, 600u);
  for (std::size_t w = 0; w < 600; w++) ASSERT_TRUE(all->is_pointer_word(w));
  every.erase(every.begin() + 300);
  const TypeInfo* holey = intern(8 * 600, every);
  ASSERT_NE(holey, nullptr);
  EXPECT_NE(holey, all);
  EXPECT_FALSE(holey->is_pointer_word(300));
  EXPECT_EQ(intern(8 * 600, every), holey);
}

TEST(TypeInfo, InlineClassForSizesUpToTheInlineLimit) {
  for (std::size_t size = 1; size <= 300; size++) {
    const TypeInfo* t = intern(size, size >= 8 ? std::vector<std::size_t>{0} : std::vector<std::size_t>{});
    ASSERT_NE(t, nullptr) << size;
    if (size <= kMaxInlineZero) {
      const int cls = size_to_class(size);
      EXPECT_EQ(t->elem_size, kClassToSize[cls]) << size;
      EXPECT_EQ(t->span_class, static_cast<std::uint32_t>(span_class(cls, Kind::kTyped))) << size;
      EXPECT_GE(t->elem_size, size);
    } else {
      EXPECT_EQ(t->elem_size, 0u) << size;
      EXPECT_EQ(t->span_class, 0u) << size;
    }
  }
}

struct ErrorCase {
  const char* name;
  std::size_t size;
  std::vector<std::size_t> offsets;
  TypeError error;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class TypeInfoError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(TypeInfoError, GivesNullptrAndTheError) {
  const ErrorCase& c = GetParam();
  TypeError e = TypeError::kNone;
  EXPECT_EQ(intern_type(c.size, c.offsets.data(), c.offsets.size(), &e), nullptr);
  EXPECT_EQ(e, c.error) << type_error_string(e);
}

INSTANTIATE_TEST_SUITE_P(Cases, TypeInfoError,
                         ::testing::Values(ErrorCase{"ZeroSize", 0, {}, TypeError::kZeroSize},
                                           ErrorCase{"ZeroSizeWithPointer", 0, {0}, TypeError::kZeroSize},
                                           ErrorCase{"OffsetNotMultipleOf8", 32, {4}, TypeError::kMisaligned},
                                           ErrorCase{"SecondOffsetNotMultipleOf8", 32, {0, 17}, TypeError::kMisaligned},
                                           ErrorCase{"OffsetAtSize", 32, {32}, TypeError::kOutOfRange},
                                           ErrorCase{"OffsetBeyondSize", 32, {0, 4096}, TypeError::kOutOfRange},
                                           ErrorCase{"WordPastTheEnd", 20, {16}, TypeError::kOutOfRange},
                                           ErrorCase{"PointerInSmallObject", 7, {0}, TypeError::kOutOfRange},
                                           ErrorCase{"HugeOffset", 64, {~std::size_t{0} - 7}, TypeError::kOutOfRange},
                                           ErrorCase{
                                               "SizeTooLarge", (std::size_t{1} << 40) + 1, {}, TypeError::kTooLarge}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TypeInfo, BoundaryLayoutsAreAccepted) {
  EXPECT_NE(intern(8, {0}), nullptr);
  EXPECT_NE(intern(std::size_t{1} << 40, {}), nullptr) << "the largest size";
  EXPECT_NE(intern(std::size_t{1} << 20, {(std::size_t{1} << 20) - 8}), nullptr) << "a 1 MiB object";
}

TEST(TypeInfo, PointerWordsFarIntoTheObject) {
  // 64 MiB: the bitmap (1 MiB) is larger than a metadata block.
  constexpr std::size_t kSize = std::size_t{64} << 20;
  const TypeInfo* t = intern(kSize, {8, kSize - 8});
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->nwords, kSize / 8);
  EXPECT_EQ(t->npointers, 2u);
  EXPECT_TRUE(t->is_pointer_word(1));
  EXPECT_TRUE(t->is_pointer_word(kSize / 8 - 1));
  EXPECT_FALSE(t->is_pointer_word(0));
  EXPECT_FALSE(t->is_pointer_word(kSize / 8 - 2));
  EXPECT_EQ(intern(kSize, {kSize - 8, 8}), t);
  EXPECT_NE(intern(kSize, {kSize - 8}), t);
}

TEST(TypeInfo, ErrorStringsAreDistinct) {
  std::set<std::string> seen;
  for (TypeError e : {TypeError::kNone, TypeError::kZeroSize, TypeError::kTooLarge, TypeError::kMisaligned,
                      TypeError::kOutOfRange, TypeError::kNoMemory}) {
    const char* s = type_error_string(e);
    ASSERT_NE(s, nullptr);
    EXPECT_GT(std::strlen(s), 0u);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_STREQ(type_error_string(TypeError::kMisaligned), "a pointer offset is not a multiple of 8");
}

}  // namespace
}  // namespace mgc::internal
