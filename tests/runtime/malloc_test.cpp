// malloc: the front door (src/runtime/malloc.cpp, include/mallocgc/mallocgc.hpp).
//
// Sizes and size classes, zeroing, alignment, object kinds, the tiny
// allocator, large objects, overflow and OS refusal, mgc::make<T>,
// mgc::allocator<T> with standard containers, and mgc::Type.
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "heap/mcentral.hpp"
#include "heap/mheap.hpp"
#include "heap/span.hpp"
#include "heap/sweep.hpp"
#include "mallocgc/mallocgc.hpp"

namespace {

using mgc::internal::kClassToSize;
using mgc::internal::kMaxSmallSize;
using mgc::internal::kNumSizeClasses;
using mgc::internal::kPageSize;

// How an object is allocated.
enum class Api { kAlloc, kNoscan, kTyped };

const char* api_name(Api api) {
  switch (api) {
    case Api::kAlloc:
      return "alloc";
    case Api::kNoscan:
      return "alloc_noscan";
    case Api::kTyped:
      return "alloc_typed";
  }
  return "?";
}

void* allocate(Api api, std::size_t size) {
  switch (api) {
    case Api::kAlloc:
      return mgc::alloc(size);
    case Api::kNoscan:
      return mgc::alloc_noscan(size);
    case Api::kTyped:
      return mgc::alloc_typed(mgc::Type(size, {}));
  }
  return nullptr;
}

// The smallest size class that holds size bytes, computed from the table
// alone (not from the size-to-class lookup under test); 0 above 32 KiB.
int smallest_class(std::size_t size) {
  for (int c = 1; c < kNumSizeClasses; c++)
    if (kClassToSize[c] >= size) return c;
  return 0;
}

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// What find_object must report for an object of size bytes from api at p.
mgc::ObjectInfo expected_info(Api api, std::size_t size, void* p) {
  mgc::ObjectInfo e;
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::size_t n = size == 0 ? 1 : size;
  if (api == Api::kNoscan && n < 16) {  // tiny: the whole 16-byte block
    e.base = reinterpret_cast<void*>(a & ~std::uintptr_t{15});
    e.size = 16;
  } else {
    e.base = p;
    e.size = n > kMaxSmallSize ? round_up(n, kPageSize) : kClassToSize[smallest_class(n)];
  }
  e.kind = api == Api::kAlloc    ? mgc::ObjectKind::conservative
           : api == Api::kNoscan ? mgc::ObjectKind::noscan
                                 : mgc::ObjectKind::typed;
  return e;
}

bool all_zero(const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; i++)
    if (b[i] != 0) return false;
  return true;
}

bool all_equal(const void* p, std::size_t n, unsigned char v) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; i++)
    if (b[i] != v) return false;
  return true;
}

struct Live {
  std::uintptr_t base;
  std::size_t size;
  unsigned char fill;
};

// Every object keeps its fill (nothing else wrote into it) and no two
// overlap.
void expect_disjoint_and_intact(std::vector<Live> objs) {
  for (const Live& o : objs)
    EXPECT_TRUE(all_equal(reinterpret_cast<void*>(o.base), o.size, o.fill))
        << "object at " << reinterpret_cast<void*>(o.base) << " of " << o.size << " bytes was overwritten";
  std::sort(objs.begin(), objs.end(), [](const Live& x, const Live& y) { return x.base < y.base; });
  for (std::size_t i = 1; i < objs.size(); i++)
    EXPECT_LE(objs[i - 1].base + objs[i - 1].size, objs[i].base)
        << "objects at " << reinterpret_cast<void*>(objs[i - 1].base) << " (" << objs[i - 1].size << " bytes) and "
        << reinterpret_cast<void*>(objs[i].base) << " overlap";
}

// Allocate one object, check it (non-null, zeroed, aligned, find_object),
// fill it and remember it.
void allocate_and_check(Api api, std::size_t size, std::vector<Live>* live) {
  SCOPED_TRACE(testing::Message() << api_name(api) << "(" << size << ")");
  void* p = allocate(api, size);
  ASSERT_NE(p, nullptr);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::size_t n = size == 0 ? 1 : size;
  EXPECT_TRUE(all_zero(p, n)) << "not zeroed";
  if (n >= 16) {
    EXPECT_EQ(a % 16, 0u) << "objects of 16 bytes or more are 16-aligned";
  } else if (api != Api::kNoscan) {
    EXPECT_EQ(a % 8, 0u);
  }
  mgc::ObjectInfo info;
  ASSERT_TRUE(mgc::find_object(p, &info));
  const mgc::ObjectInfo e = expected_info(api, size, p);
  EXPECT_EQ(info.base, e.base);
  EXPECT_EQ(info.size, e.size);
  EXPECT_EQ(info.kind, e.kind);
  ASSERT_TRUE(mgc::find_object(static_cast<char*>(p) + n - 1, &info)) << "last byte";
  EXPECT_EQ(info.base, e.base);
  const auto fill = static_cast<unsigned char>(live->size() % 251 + 1);
  std::memset(p, fill, n);
  live->push_back({a, n, fill});
}

void free_all(const std::vector<Live>& live) {
  for (const Live& o : live) mgc::free(reinterpret_cast<void*>(o.base));
}

constexpr Api kApis[] = {Api::kAlloc, Api::kNoscan, Api::kTyped};

// ---------------------------------------------------------------------------
// Sizes and size classes

TEST(MallocSizes, EverySizeUpTo1100) {
  for (Api api : kApis) {
    std::vector<Live> live;
    for (std::size_t size = 1; size <= 1100; size++) {
      allocate_and_check(api, size, &live);
      if (HasFatalFailure()) return;
    }
    expect_disjoint_and_intact(live);
    free_all(live);
  }
}

std::vector<std::size_t> boundary_sizes() {
  std::vector<std::size_t> sizes;
  for (int c = 1; c < kNumSizeClasses; c++) {
    sizes.push_back(kClassToSize[c]);
    sizes.push_back(kClassToSize[c] + 1u);
  }
  for (std::size_t s : {kMaxSmallSize, kMaxSmallSize + 1, std::size_t{1} << 20, (std::size_t{1} << 20) + 1})
    sizes.push_back(s);
  return sizes;
}

TEST(MallocSizes, EveryClassBoundaryAndLargeSizes) {
  for (Api api : kApis) {
    std::vector<Live> live;
    for (std::size_t size : boundary_sizes()) {
      allocate_and_check(api, size, &live);
      if (HasFatalFailure()) return;
    }
    expect_disjoint_and_intact(live);
    free_all(live);
  }
}

TEST(MallocSizes, ManyObjectsOfEveryClassAreDisjoint) {
  // Several spans' worth of each class, so that slots of consecutive chunks
  // and spans are checked against each other.
  for (int c = 1; c < kNumSizeClasses; c++) {
    SCOPED_TRACE(testing::Message() << "class " << c << " (" << kClassToSize[c] << " bytes)");
    const std::size_t size = kClassToSize[c];
    const std::size_t count = std::max<std::size_t>(8, std::min<std::size_t>(200, (1u << 20) / size));
    std::vector<Live> live;
    for (std::size_t i = 0; i < count; i++) {
      allocate_and_check(i % 2 ? Api::kAlloc : Api::kTyped, size, &live);
      if (HasFatalFailure()) return;
    }
    expect_disjoint_and_intact(live);
    free_all(live);
  }
}

TEST(MallocSizes, FindObjectIsExactAtEveryByteOfAnObject) {
  // Slot index by multiplication: the first and last byte of each object of
  // a few spans of every class map to that object, and only to it.
  for (int c = 1; c < kNumSizeClasses; c++) {
    const std::size_t size = kClassToSize[c];
    std::vector<void*> objs;
    for (int i = 0; i < 12; i++) objs.push_back(mgc::alloc(size));
    for (void* p : objs) {
      ASSERT_NE(p, nullptr);
      for (std::size_t off : {std::size_t{0}, size / 2, size - 1}) {
        mgc::ObjectInfo info;
        ASSERT_TRUE(mgc::find_object(static_cast<char*>(p) + off, &info)) << "class " << c << " offset " << off;
        EXPECT_EQ(info.base, p) << "class " << c << " offset " << off;
        EXPECT_EQ(info.size, size);
      }
    }
    for (void* p : objs) mgc::free(p);
  }
}

TEST(MallocSizes, ZeroSizeGivesDistinctUsablePointers) {
  struct Case {
    const char* name;
    std::function<void*()> fn;
  };
  const Case cases[] = {
      {"alloc(0)", [] { return mgc::alloc(0); }},
      {"alloc_noscan(0)", [] { return mgc::alloc_noscan(0); }},
  };
  std::vector<void*> all;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (int i = 0; i < 4; i++) {
      auto* p = static_cast<unsigned char*>(c.fn());
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(*p, 0);
      *p = 0xAB;  // usable: at least one byte
      EXPECT_TRUE(mgc::find_object(p, nullptr));
      all.push_back(p);
    }
  }
  std::vector<void*> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end())
      << "two zero-size allocations share an address";
  for (void* p : all) EXPECT_EQ(*static_cast<unsigned char*>(p), 0xAB);
  for (void* p : all) mgc::free(p);
}

// ---------------------------------------------------------------------------
// Zeroing

// Allocate size bytes until the address p comes back (at most limit
// objects), checking that every object is zero; free them all. Returns
// whether p came back.
bool zeroed_until_reused(Api api, std::size_t size, const void* p, int limit) {
  std::vector<void*> got;
  bool found = false;
  for (int i = 0; i < limit && !found; i++) {
    void* q = allocate(api, size);
    if (q == nullptr) break;
    got.push_back(q);
    EXPECT_TRUE(all_zero(q, size)) << (q == p ? "reused" : "fresh") << " object not zeroed";
    found = q == p;
  }
  for (void* q : got) mgc::free(q);
  return found;
}

TEST(MallocZeroing, ReusedSlotsComeBackZeroed) {
  // Fill, free, allocate the same size again: zero, and the freed address
  // does come back: small slots once the 64-slot chunk the cache holds is
  // used up, large ones at once (first fit of the page heap).
  const std::size_t sizes[] = {16,   24,   32,   48,    64,    100,   128,   256,   257,     512,    1024,
                               2000, 4096, 8192, 16384, 32768, 32769, 65536, 99999, 1 << 20, 3 << 20};
  for (Api api : kApis) {
    for (std::size_t size : sizes) {
      SCOPED_TRACE(testing::Message() << api_name(api) << "(" << size << ")");
      void* p = allocate(api, size);
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(all_zero(p, size));
      std::memset(p, 0xFF, size);
      mgc::free(p);
      EXPECT_TRUE(zeroed_until_reused(api, size, p, 65)) << "the freed address was never reused";
    }
  }
}

TEST(MallocZeroing, ReusedTinyBlockComesBackZeroed) {
  // A 15-byte object needs a block of its own; freeing it frees the block,
  // which comes back zeroed, whole, to whatever tiny size asks next.
  for (std::size_t size = 1; size < 16; size++) {
    SCOPED_TRACE(testing::Message() << "alloc_noscan(" << size << ")");
    auto* p = static_cast<unsigned char*>(mgc::alloc_noscan(15));
    ASSERT_NE(p, nullptr);
    std::memset(p, 0xFF, 15);
    mgc::free(p);
    std::vector<void*> got;
    bool reused = false;
    for (int i = 0; i < 16 * 65 && !reused; i++) {
      void* q = mgc::alloc_noscan(size);
      ASSERT_NE(q, nullptr);
      got.push_back(q);
      EXPECT_TRUE(all_zero(q, size));
      auto* block = reinterpret_cast<unsigned char*>(reinterpret_cast<std::uintptr_t>(q) & ~std::uintptr_t{15});
      if (block == p) {
        reused = true;
        // The whole block, not only the object, must be clean for the
        // objects that will share it.
        EXPECT_TRUE(all_zero(block + size, 16 - size));
      }
    }
    for (void* q : got) mgc::free(q);
    EXPECT_TRUE(reused);
  }
}

TEST(MallocZeroing, FreshLargeAndMediumObjectsAreZero) {
  // Medium and large objects are zeroed by memset only when their span may
  // hold old data: make it hold old data first (fill and free many), then
  // allocate again and look at every byte.
  for (std::size_t size : {std::size_t{300}, std::size_t{5000}, std::size_t{20000}, std::size_t{40000}}) {
    std::vector<void*> objs;
    for (int i = 0; i < 64; i++) {
      void* p = mgc::alloc(size);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0x5A, size);
      objs.push_back(p);
    }
    for (void* p : objs) mgc::free(p);
    objs.clear();
    for (int i = 0; i < 64; i++) {
      void* p = mgc::alloc_noscan(size);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(all_zero(p, size)) << size;
      objs.push_back(p);
    }
    for (void* p : objs) mgc::free(p);
  }
}

// ---------------------------------------------------------------------------
// Alignment and the tiny allocator

std::size_t tiny_alignment(std::size_t size) {
  if (size % 8 == 0) return 8;
  if (size % 4 == 0) return 4;
  if (size % 2 == 0) return 2;
  return 1;
}

TEST(MallocTiny, ObjectsAreAlignedByTheirSize) {
  // Before each object, a 1..3-byte one so that the block's offset is odd
  // or otherwise misaligned.
  for (std::size_t before = 1; before <= 3; before++) {
    for (std::size_t size = 1; size < 16; size++) {
      void* pad = mgc::alloc_noscan(before);
      void* p = mgc::alloc_noscan(size);
      ASSERT_NE(pad, nullptr);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % tiny_alignment(size), 0u)
          << "alloc_noscan(" << size << ") after alloc_noscan(" << before << ") at " << p;
    }
  }
  // The test can fail: the pads do misalign the block offset (objects of
  // odd size share blocks, so some start at odd addresses).
  bool saw_odd = false;
  for (int i = 0; i < 8 && !saw_odd; i++) saw_odd = reinterpret_cast<std::uintptr_t>(mgc::alloc_noscan(1)) % 2 == 1;
  EXPECT_TRUE(saw_odd);
}

TEST(MallocTiny, SmallObjectsShareBlocks) {
  // Sixteen 1-byte objects fill at most two blocks.
  std::vector<std::uintptr_t> blocks;
  for (int i = 0; i < 16; i++) blocks.push_back(reinterpret_cast<std::uintptr_t>(mgc::alloc_noscan(1)) & ~15ul);
  std::sort(blocks.begin(), blocks.end());
  blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
  EXPECT_LE(blocks.size(), 2u);
  // Conservative objects never share: 1-byte ones get 8-byte slots.
  const auto a = reinterpret_cast<std::uintptr_t>(mgc::alloc(1));
  const auto b = reinterpret_cast<std::uintptr_t>(mgc::alloc(1));
  EXPECT_GE(a > b ? a - b : b - a, 8u);
  mgc::free(reinterpret_cast<void*>(a));
  mgc::free(reinterpret_cast<void*>(b));
}

TEST(MallocTiny, ObjectsOfOneBlockDoNotOverlap) {
  std::vector<Live> live;
  for (int round = 0; round < 50; round++)
    for (std::size_t size = 1; size < 16; size++) allocate_and_check(Api::kNoscan, size, &live);
  expect_disjoint_and_intact(live);
  free_all(live);
}

// ---------------------------------------------------------------------------
// Kinds of large objects and typed objects

TEST(MallocKinds, TypedObjectsRecordTheirType) {
  // alloc_typed records the object's layout: in the span's type records
  // for small objects (inline path up to 256 bytes, slow path above), in
  // the span for large ones.
  const std::size_t sizes[] = {8, 16, 24, 200, 256, 264, 1000, 4096, 32768, 32776, 100000};
  for (std::size_t size : sizes) {
    SCOPED_TRACE(size);
    const mgc::Type t(size, {0, size - 8});
    for (int i = 0; i < 3; i++) {
      void* p = mgc::alloc_typed(t);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(all_zero(p, size));
      mgc::ObjectInfo info;
      ASSERT_TRUE(mgc::find_object(p, &info));
      EXPECT_EQ(info.kind, mgc::ObjectKind::typed);
      mgc::internal::MSpan* s = mgc::internal::mheap().span_of(reinterpret_cast<std::uintptr_t>(p));
      ASSERT_NE(s, nullptr);
      if (size > kMaxSmallSize) {
        EXPECT_EQ(s->large_type.load(), t.info());
      } else {
        ASSERT_NE(s->type_records, nullptr);
        EXPECT_EQ(s->type_records[s->object_index(reinterpret_cast<std::uintptr_t>(p))], t.info());
      }
      mgc::free(p);
    }
  }
}

TEST(MallocKinds, LargeObjectsGetWholePages) {
  for (std::size_t size : {kMaxSmallSize + 1, std::size_t{40000}, std::size_t{1} << 20, (std::size_t{5} << 20) + 3}) {
    for (Api api : {Api::kAlloc, Api::kNoscan}) {
      void* p = allocate(api, size);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kPageSize, 0u);
      mgc::ObjectInfo info;
      ASSERT_TRUE(mgc::find_object(static_cast<char*>(p) + size - 1, &info));
      EXPECT_EQ(info.base, p);
      EXPECT_EQ(info.size, round_up(size, kPageSize));
      EXPECT_EQ(info.kind, api == Api::kAlloc ? mgc::ObjectKind::conservative : mgc::ObjectKind::noscan);
      mgc::free(p);
    }
  }
}

// ---------------------------------------------------------------------------
// Overflow

TEST(MallocOverflow, ImpossibleSizesReturnNull) {
  struct Case {
    const char* name;
    std::function<void*()> fn;
  };
  constexpr std::size_t kMax = SIZE_MAX;
  const Case cases[] = {
      {"alloc(SIZE_MAX)", [] { return mgc::alloc(kMax); }},
      {"alloc(SIZE_MAX / 2)", [] { return mgc::alloc(kMax / 2); }},
      {"alloc(SIZE_MAX - page)", [] { return mgc::alloc(kMax - kPageSize + 1); }},
      {"alloc(2^47)", [] { return mgc::alloc(std::size_t{1} << 47); }},
      {"alloc_noscan(SIZE_MAX)", [] { return mgc::alloc_noscan(kMax); }},
      {"alloc_noscan(SIZE_MAX / 2)", [] { return mgc::alloc_noscan(kMax / 2); }},
      {"alloc_noscan(2^50)", [] { return mgc::alloc_noscan(std::size_t{1} << 50); }},
  };
  for (const Case& c : cases) EXPECT_EQ(c.fn(), nullptr) << c.name;
  // ...and the heap is fine afterwards.
  void* p = mgc::alloc(64);
  EXPECT_NE(p, nullptr);
  mgc::free(p);
}

TEST(MallocOverflow, BigButPossibleSizesSucceed) {
  // The other side of the limit: 64 MiB is address space, not memory,
  // until touched.
  for (std::size_t size : {std::size_t{64} << 20, std::size_t{256} << 20}) {
    void* p = mgc::alloc_noscan(size);
    ASSERT_NE(p, nullptr) << size;
    static_cast<char*>(p)[0] = 1;
    static_cast<char*>(p)[size - 1] = 1;
    mgc::free(p);
  }
}

struct Huge {
  char bytes[std::size_t{1} << 50];
};

TEST(MallocOverflow, MakeOfHugeTypesThrowsBadAlloc) {
  EXPECT_THROW(mgc::make<Huge>(), std::bad_alloc);
  // Arrays of 2^50 bytes, each extent below 2^31 (g++ 12's std::is_array
  // does not recognise larger bounds).
  EXPECT_THROW((mgc::make<long[1 << 27][1 << 20]>()), std::bad_alloc);
  EXPECT_THROW((mgc::make<char[1 << 30][1 << 20]>()), std::bad_alloc);
}

TEST(MallocOverflow, AllocatorOfHugeCountsThrows) {
  mgc::allocator<long> a;
  EXPECT_THROW(a.allocate(SIZE_MAX / 4), std::bad_array_new_length);  // n * sizeof(long) overflows
  EXPECT_THROW(a.allocate(SIZE_MAX / sizeof(long) + 1), std::bad_array_new_length);
  try {
    a.allocate(SIZE_MAX / 16);  // no overflow, but too big for any heap
    ADD_FAILURE() << "no exception";
  } catch (const std::bad_array_new_length&) {
    ADD_FAILURE() << "bad_array_new_length for a count whose byte size does not overflow";
  } catch (const std::bad_alloc&) {
  }
  std::vector<int, mgc::allocator<int>> v;
  EXPECT_THROW(v.reserve(v.max_size()), std::bad_alloc);
}

// The child of the death test below: limit the address space to a little
// above what the process uses, then allocate until the OS refuses.
[[noreturn]] void run_out_of_address_space() {
  auto fail = [](const char* what) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    std::fflush(stderr);
    std::_Exit(1);
  };
  // Give the heap its first arena and maps before the limit.
  void* first = mgc::alloc_noscan(1 << 20);
  if (first == nullptr) fail("first allocation");
  std::size_t vm_kib = 0;
  {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmSize:", 0) == 0) vm_kib = std::strtoul(line.c_str() + 7, nullptr, 10);
  }
  if (vm_kib == 0) fail("cannot read VmSize");
  const rlim_t limit = vm_kib * 1024 + (rlim_t{32} << 20);
  const rlimit rl = {limit, limit};
  if (setrlimit(RLIMIT_AS, &rl) != 0) fail("setrlimit");

  std::vector<void*> objs;
  bool refused = false;
  for (int i = 0; i < 4096 && !refused; i++) {
    void* p = mgc::alloc_noscan(1 << 20);
    if (p == nullptr) {
      refused = true;
    } else {
      objs.push_back(p);
    }
  }
  if (!refused) fail("4 GiB allocated under a limit of VmSize + 32 MiB");
  if (objs.empty()) fail("the limit left no room at all");
  if (mgc::alloc((1 << 20) + 1) != nullptr) fail("alloc after refusal");
  bool threw = false;
  try {
    struct Big {
      char b[2 << 20];
    };
    mgc::make<Big>();
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  if (!threw) fail("make<T> did not throw std::bad_alloc");
  threw = false;
  try {
    mgc::allocator<char>().allocate(2 << 20);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  if (!threw) fail("allocator<T>::allocate did not throw std::bad_alloc");
  // Memory given back is usable again.
  mgc::free(objs.back());
  objs.pop_back();
  void* again = mgc::alloc_noscan(1 << 20);
  if (again == nullptr) fail("no allocation after a free");
  if (!all_zero(again, 1 << 20)) fail("not zeroed");
  std::_Exit(0);
}

TEST(MallocDeathTest, ReturnsNullWhenTheOsRefuses) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of shadow: an address-space limit breaks it";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_out_of_address_space(), testing::ExitedWithCode(0), "");
}

// ---------------------------------------------------------------------------
// make<T>

struct alignas(32) A32 {
  char c;
};
struct alignas(64) A64 {
  char c[3];
};
struct alignas(256) A256 {
  long x;
};
struct alignas(4096) A4096 {
  int y;
};

template <class T>
void expect_aligned_make() {
  std::vector<T*> objs;
  for (int i = 0; i < 20; i++) {
    T* p = mgc::make<T>();
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignof(T), 0u) << "alignof " << alignof(T) << " at " << p;
    EXPECT_TRUE(all_zero(p, sizeof(T)));
    std::memset(static_cast<void*>(p), 0x77, sizeof(T));
    mgc::ObjectInfo info;
    ASSERT_TRUE(mgc::find_object(p, &info));
    EXPECT_EQ(info.base, p);
    EXPECT_EQ(info.kind, mgc::ObjectKind::conservative);
    objs.push_back(p);
  }
  for (T* p : objs) EXPECT_TRUE(all_equal(p, sizeof(T), 0x77));
  for (T* p : objs) mgc::free(p);
}

TEST(MallocMake, HonoursAlignment) {
  expect_aligned_make<A32>();
  expect_aligned_make<A64>();
  expect_aligned_make<A256>();
  expect_aligned_make<A4096>();
}

TEST(MallocMake, ConstructsWithArguments) {
  struct Node {
    Node* next;
    long value;
  };
  Node* a = mgc::make<Node>(nullptr, 42);
  Node* b = mgc::make<Node>(a, 7);
  EXPECT_EQ(a->next, nullptr);
  EXPECT_EQ(a->value, 42);
  EXPECT_EQ(b->next, a);
  EXPECT_EQ(b->value, 7);
  int* i = mgc::make<int>(5);
  EXPECT_EQ(*i, 5);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(i) % alignof(int), 0u);
  auto* s = mgc::make<std::string>("a string long enough not to fit in the small buffer");
  EXPECT_EQ(*s, "a string long enough not to fit in the small buffer");
  s->~basic_string();
  mgc::free(s);
  mgc::free(a);
  mgc::free(b);
  mgc::free(i);
}

TEST(MallocMake, KindFollowsTheType) {
  struct Case {
    const char* name;
    void* p;
    mgc::ObjectKind kind;
  };
  enum class Color { red, green };
  struct Pair {
    void* a;
    void* b;
  };
  const Case cases[] = {
      {"int", mgc::make<int>(), mgc::ObjectKind::noscan},
      {"double", mgc::make<double>(1.5), mgc::ObjectKind::noscan},
      {"enum", mgc::make<Color>(Color::green), mgc::ObjectKind::noscan},
      {"double[100]", mgc::make<double[100]>(), mgc::ObjectKind::noscan},
      {"int[3][7]", mgc::make<int[3][7]>(), mgc::ObjectKind::noscan},
      {"Pair", mgc::make<Pair>(), mgc::ObjectKind::conservative},
      {"void*[10]", mgc::make<void* [10]>(), mgc::ObjectKind::conservative},
      {"Pair[1000]", mgc::make<Pair[1000]>(), mgc::ObjectKind::conservative},
      {"double[8192]", mgc::make<double[8192]>(), mgc::ObjectKind::noscan},
  };
  for (const Case& c : cases) {
    mgc::ObjectInfo info;
    ASSERT_TRUE(mgc::find_object(c.p, &info)) << c.name;
    EXPECT_EQ(info.kind, c.kind) << c.name;
  }
  for (const Case& c : cases) mgc::free(c.p);
}

TEST(MallocMake, ArraysOfClassesAreConstructedAndZeroed) {
  struct Counted {
    int value = 17;
  };
  auto* arr = mgc::make<Counted[50]>();
  for (const Counted& c : *arr) EXPECT_EQ(c.value, 17);
  auto* zeros = mgc::make<long[300]>();
  EXPECT_TRUE(all_zero(zeros, sizeof(long[300])));
  mgc::free(arr);
  mgc::free(zeros);
}

struct Throws {
  explicit Throws(int) { throw std::runtime_error("constructor"); }
  long pad[4];
};

struct ThrowsInArray {
  static inline int constructed = 0;
  ThrowsInArray() {
    if (++constructed == 3) throw std::runtime_error("third element");
  }
  void* p;
};

TEST(MallocMake, ConstructorExceptionFreesTheMemory) {
  const mgc::Stats before = mgc::stats();
  EXPECT_THROW(mgc::make<Throws>(1), std::runtime_error);
  ThrowsInArray::constructed = 0;
  EXPECT_THROW((mgc::make<ThrowsInArray[5]>()), std::runtime_error);
  const mgc::Stats after = mgc::stats();
  EXPECT_EQ(after.mallocs - before.mallocs, 2u);
  EXPECT_EQ(after.frees - before.frees, 2u);
  EXPECT_EQ(after.heap_objects, before.heap_objects);
}

// ---------------------------------------------------------------------------
// allocator<T> with standard containers

template <class T>
using gc_vector = std::vector<T, mgc::allocator<T>>;
template <class K, class V>
using gc_map = std::map<K, V, std::less<K>, mgc::allocator<std::pair<const K, V>>>;
using gc_string = std::basic_string<char, std::char_traits<char>, mgc::allocator<char>>;

bool in_heap(const void* p, mgc::ObjectKind kind = mgc::ObjectKind::conservative) {
  mgc::ObjectInfo info;
  return mgc::find_object(p, &info) && info.kind == kind;
}

TEST(MallocAllocator, Vector) {
  const mgc::Stats before = mgc::stats();
  {
    gc_vector<long*> v;
    for (long i = 0; i < 20000; i++) v.push_back(reinterpret_cast<long*>(i * 8));
    EXPECT_TRUE(in_heap(v.data()));
    for (long i = 0; i < 20000; i++) ASSERT_EQ(v[static_cast<std::size_t>(i)], reinterpret_cast<long*>(i * 8));
    gc_vector<long*> w = v;
    EXPECT_EQ(w, v);
    EXPECT_NE(w.data(), v.data());
    v.clear();
    v.shrink_to_fit();
  }
  const mgc::Stats after = mgc::stats();
  EXPECT_GT(after.mallocs, before.mallocs);
  EXPECT_EQ(after.heap_objects, before.heap_objects) << "deallocate frees at once";
}

TEST(MallocAllocator, OverAlignedVector) {
  gc_vector<A64> v(37);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % 64, 0u);
  EXPECT_TRUE(in_heap(v.data()));
  gc_vector<A4096> w(3);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w.data()) % 4096, 0u);
}

TEST(MallocAllocator, Map) {
  const mgc::Stats before = mgc::stats();
  {
    gc_map<int, gc_string> m;
    for (int i = 0; i < 3000; i++) m.emplace(i, gc_string(static_cast<std::size_t>(i % 40 + 20), 'a' + i % 26));
    ASSERT_EQ(m.size(), 3000u);
    for (const auto& [k, v] : m) {
      ASSERT_EQ(v.size(), static_cast<std::size_t>(k % 40 + 20));
      ASSERT_EQ(v[0], 'a' + k % 26);
      ASSERT_TRUE(in_heap(&k)) << "map nodes live in the collected heap";
      ASSERT_TRUE(in_heap(v.data())) << "long strings too";
    }
    for (int i = 0; i < 3000; i += 2) m.erase(i);
    EXPECT_EQ(m.size(), 1500u);
  }
  EXPECT_EQ(mgc::stats().heap_objects, before.heap_objects);
}

TEST(MallocAllocator, String) {
  gc_string s;
  for (int i = 0; i < 1000; i++) s += "0123456789";
  EXPECT_EQ(s.size(), 10000u);
  EXPECT_TRUE(in_heap(s.data()));
  EXPECT_EQ(s.substr(9995, 5), "56789");
  EXPECT_EQ(s.find("90"), 9u);
  gc_string t = s + s;
  EXPECT_EQ(t.size(), 20000u);
  EXPECT_EQ(t.compare(0, 10000, s), 0);
}

TEST(MallocAllocator, RebindsAndCompares) {
  mgc::allocator<int> a;
  mgc::allocator<double> b(a);
  EXPECT_TRUE(a == b);
  int* p = a.allocate(10);
  EXPECT_TRUE(all_zero(p, 10 * sizeof(int)));
  EXPECT_TRUE(in_heap(p));
  a.deallocate(p, 10);
  int* z = a.allocate(0);
  EXPECT_NE(z, nullptr);
  a.deallocate(z, 0);
}

// ---------------------------------------------------------------------------
// mgc::Type

TEST(MallocType, MalformedLayoutsThrowInvalidArgument) {
  struct Case {
    const char* name;
    std::size_t size;
    std::vector<std::size_t> offsets;
  };
  const Case cases[] = {
      {"size 0", 0, {}},
      {"size 0 with a pointer", 0, {0}},
      {"offset not a multiple of 8", 16, {4}},
      {"one good, one misaligned", 32, {0, 12}},
      {"offset at the end", 16, {16}},
      {"offset beyond the end", 16, {64}},
      {"pointer word overhangs the end", 12, {8}},
      {"pointer word in a 4-byte object", 4, {0}},
      {"huge offset", 24, {SIZE_MAX & ~std::size_t{7}}},
  };
  for (const Case& c : cases)
    EXPECT_THROW(mgc::Type(c.size, c.offsets.data(), c.offsets.size()), std::invalid_argument) << c.name;
}

TEST(MallocType, WellFormedLayoutsAreAccepted) {
  struct Case {
    std::size_t size;
    std::vector<std::size_t> offsets;
  };
  const Case cases[] = {
      {1, {}}, {8, {0}}, {16, {0, 8}}, {24, {0, 16}}, {12, {0}}, {4096, {4088}}, {40000, {0, 39992}}, {16, {8, 8}},
  };
  for (const Case& c : cases) {
    const mgc::Type t(c.size, c.offsets.data(), c.offsets.size());
    EXPECT_EQ(t.size(), c.size);
    EXPECT_NE(t.info(), nullptr);
    void* p = mgc::alloc_typed(t);
    ASSERT_NE(p, nullptr) << c.size;
    EXPECT_TRUE(all_zero(p, c.size));
    mgc::free(p);
  }
}

TEST(MallocType, LayoutsAreInterned) {
  const mgc::Type a(24, {0, 16});
  const mgc::Type b(24, {16, 0});
  const mgc::Type c(24, {0, 8});
  const mgc::Type d(32, {0, 16});
  EXPECT_EQ(a.info(), b.info());
  EXPECT_NE(a.info(), c.info());
  EXPECT_NE(a.info(), d.info());
  // A Type may be a temporary: objects keep the interned record.
  void* p = mgc::alloc_typed(mgc::Type(24, {0, 16}));
  mgc::internal::MSpan* s = mgc::internal::mheap().span_of(reinterpret_cast<std::uintptr_t>(p));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->type_records[s->object_index(reinterpret_cast<std::uintptr_t>(p))], a.info());
  mgc::free(p);
}

TEST(MallocType, OverflowingSizeThrowsBadAllocAsDocumented) {
  // mallocgc.hpp: "Throws std::invalid_argument for size 0, an offset that
  // is not a multiple of 8 or not below size; std::bad_alloc when the size
  // overflows." A size no heap can hold is the overflow case.
  EXPECT_THROW(mgc::Type(SIZE_MAX, {}), std::bad_alloc);
  EXPECT_THROW(mgc::Type(std::size_t{1} << 50, {0}), std::bad_alloc);
}

}  // namespace

namespace {

// A large object dropped just before a cycle, and one of the same size
// asked for right after it, before the background sweeper has freed the
// first: the allocation sweeps the large objects itself rather than grow
// the heap (binary data that is made, dropped and made again would
// otherwise double the process's memory). The cycle here is the sweep
// generation's step alone, with nothing marked: the test allocates nothing
// it keeps, no background sweeper runs in this process, and the pacer is
// off.
//
// Run after the other tests of this binary in one process (valgrind's
// whole-binary pass, a plain run of the executable), the heap is not
// empty: their dead objects, and free runs of 64 MiB and more that they
// left (MallocOverflow), would take the second object, or the first,
// without any reclaim (malloc reclaims only when the heap's free pages
// are too few). So the test first frees what earlier tests left (the
// sweep generation's step and a reclaim, twice: an object marked by an
// earlier cycle survives the first) and makes both objects larger than
// every free page together, heap growth's rounding included (2 MiB).
TEST(LargeObjects, AnAllocationFreesDeadLargeObjectsBeforeTheHeapGrows) {
  using mgc::internal::mheap;
  const int gogc = mgc::set_gc_percent(-1);  // no cycle of the pacer's in between
  for (int i = 0; i < 2; i++) {
    mgc::internal::advance_sweep_gen();
    mgc::internal::reclaim_empty_spans();
  }
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  const std::size_t free_before = mheap().page_stats().free_bytes;
  const std::size_t kSize =
      std::max<std::size_t>(64 * kMiB, (free_before + 2 * kMiB - 1) / (2 * kMiB) * (2 * kMiB) + 64 * kMiB);
  auto* first = static_cast<unsigned char*>(mgc::alloc_noscan(kSize));
  ASSERT_NE(first, nullptr);
  first[kSize - 1] = 1;
  const std::uintptr_t first_addr = reinterpret_cast<std::uintptr_t>(first);
  first = nullptr;
  const std::size_t committed = mheap().committed_bytes();
  mgc::internal::advance_sweep_gen();
  void* second = mgc::alloc_noscan(kSize);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(mheap().committed_bytes(), committed) << "the heap grew while a dead large object held the pages";
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(second), first_addr);
  EXPECT_EQ(static_cast<unsigned char*>(second)[kSize - 1], 0) << "reused pages come zeroed";
  mgc::set_gc_percent(gogc);
}

}  // namespace
