// mgc::find_object (src/runtime/object_info.cpp): which object an address
// lies in, for any address at all.
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "heap/mheap.hpp"
#include "heap/span.hpp"
#include "mallocgc/mallocgc.hpp"
#include "runtime/thread_cache.hpp"

namespace {

using mgc::internal::kPageSize;

char g_global[64];
const char g_constant[64] = "read-only data";

void* at(void* p, std::size_t off) { return static_cast<char*>(p) + off; }

const mgc::ObjectInfo kUntouched = {reinterpret_cast<void*>(std::uintptr_t{0x1234}), 4321, mgc::ObjectKind::typed};

// find_object(p) is false and leaves *info alone.
void expect_not_found(const void* p, const char* what) {
  mgc::ObjectInfo info = kUntouched;
  EXPECT_FALSE(mgc::find_object(p, &info)) << what << " at " << p;
  EXPECT_EQ(info.base, kUntouched.base) << what;
  EXPECT_EQ(info.size, kUntouched.size) << what;
}

struct Case {
  const char* name;
  void* p;
  std::size_t size;      // requested
  void* base;            // expected
  std::size_t slot;      // expected
  mgc::ObjectKind kind;  // expected
};

TEST(FindObject, InteriorAddressesOfEveryKind) {
  mgc::alloc_noscan(15);                                // a fresh tiny block next
  auto* t1 = static_cast<char*>(mgc::alloc_noscan(4));  // offset 0
  auto* t2 = static_cast<char*>(mgc::alloc_noscan(8));  // offset 8
  void* small = mgc::alloc(48);
  void* medium = mgc::alloc_noscan(1000);
  void* typed = mgc::alloc_typed(mgc::Type(100, {0, 8}));
  void* big_typed = mgc::alloc_typed(mgc::Type(50000, {49992}));
  void* large = mgc::alloc(100000);
  void* large_noscan = mgc::alloc_noscan(1 << 20);
  const Case cases[] = {
      {"tiny at offset 0", t1, 4, t1, 16, mgc::ObjectKind::noscan},
      {"tiny at offset 8", t2, 8, t1, 16, mgc::ObjectKind::noscan},
      {"small", small, 48, small, 48, mgc::ObjectKind::conservative},
      {"medium", medium, 1000, medium, 1024, mgc::ObjectKind::noscan},
      {"typed", typed, 100, typed, 112, mgc::ObjectKind::typed},
      {"large typed", big_typed, 50000, big_typed, 7 * kPageSize, mgc::ObjectKind::typed},
      {"large", large, 100000, large, 13 * kPageSize, mgc::ObjectKind::conservative},
      {"large noscan", large_noscan, 1 << 20, large_noscan, 1 << 20, mgc::ObjectKind::noscan},
  };
  for (const Case& c : cases) {
    ASSERT_NE(c.p, nullptr) << c.name;
    for (std::size_t off : {std::size_t{0}, std::size_t{1}, c.size / 2, c.size - 1}) {
      mgc::ObjectInfo info;
      ASSERT_TRUE(mgc::find_object(at(c.p, off), &info)) << c.name << " + " << off;
      EXPECT_EQ(info.base, c.base) << c.name << " + " << off;
      EXPECT_EQ(info.size, c.slot) << c.name;
      EXPECT_EQ(info.kind, c.kind) << c.name;
    }
    EXPECT_TRUE(mgc::find_object(c.p, nullptr)) << "info may be null";
  }
  // The slack of a large object's last page belongs to it.
  mgc::ObjectInfo info;
  ASSERT_TRUE(mgc::find_object(at(large, 13 * kPageSize - 1), &info));
  EXPECT_EQ(info.base, large);
  for (const Case& c : cases)
    if (c.p != t2) mgc::free(c.p);
  mgc::free(t2);
}

TEST(FindObject, ForeignAddresses) {
  int on_stack = 0;
  void* from_malloc = std::malloc(100);
  mgc::alloc(16);  // the heap exists
  expect_not_found(nullptr, "nullptr");
  expect_not_found(&on_stack, "a stack address");
  expect_not_found(g_global, "a global");
  expect_not_found(g_constant, "read-only data");
  expect_not_found(from_malloc, "malloc'd memory");
  expect_not_found(reinterpret_cast<void*>(&expect_not_found), "code");
  expect_not_found(reinterpret_cast<void*>(std::uintptr_t{1}), "address 1");
  expect_not_found(reinterpret_cast<void*>(~std::uintptr_t{0}), "the last address");
  expect_not_found(reinterpret_cast<void*>(std::uintptr_t{1} << 47), "beyond user space");
  std::free(from_malloc);
}

TEST(FindObject, FreedLargeObjects) {
  for (std::size_t size : {std::size_t{40000}, std::size_t{1} << 20}) {
    void* p = mgc::alloc(size);
    ASSERT_TRUE(mgc::find_object(p, nullptr));
    mgc::free(p);
    expect_not_found(p, "a freed large object");
    expect_not_found(at(p, size - 1), "the last byte of a freed large object");
  }
}

TEST(FindObject, FreedSmallAndTinyObjects) {
  // Objects of a thread that exited (so no cache holds their spans), freed
  // here: once the frees are merged (stats() merges the pending frees of
  // spans no cache owns) the slots are free.
  std::vector<void*> objs;
  void* survivor = nullptr;
  std::thread([&] {
    for (int i = 0; i < 40; i++) objs.push_back(mgc::alloc(64));
    for (int i = 0; i < 40; i++) objs.push_back(mgc::alloc_noscan(1000));
    for (int i = 0; i < 40; i++) objs.push_back(mgc::alloc_noscan(4));
    for (int i = 0; i < 40; i++) objs.push_back(mgc::alloc_typed(mgc::Type(32, {8})));
    survivor = mgc::alloc(64);  // keeps one span of class 64 in use
  }).join();
  for (void* p : objs) ASSERT_TRUE(mgc::find_object(p, nullptr));
  for (void* p : objs) mgc::free(p);
  mgc::stats();
  for (void* p : objs) expect_not_found(p, "a freed object");
  mgc::ObjectInfo info;
  ASSERT_TRUE(mgc::find_object(survivor, &info));
  EXPECT_EQ(info.base, survivor);
  mgc::free(survivor);
  mgc::stats();
  expect_not_found(survivor, "a freed object");
}

TEST(FindObject, FreedSlotsOutsideTheCachedChunk) {
  // The owner frees a slot of a chunk it no longer holds but of a span it
  // still owns (class 32: 256 slots a span, 64 a chunk): the slot is free
  // in the span's bitmap at once.
  std::vector<void*> objs;
  void* victim = nullptr;
  for (int attempt = 0; attempt < 8 && victim == nullptr; attempt++) {
    void* first = mgc::alloc(32);
    objs.push_back(first);
    auto* s = mgc::internal::mheap().span_of(reinterpret_cast<std::uintptr_t>(first));
    bool same_span = true;
    for (int i = 0; i < 64; i++) {
      objs.push_back(mgc::alloc(32));
      same_span = same_span && mgc::internal::mheap().span_of(reinterpret_cast<std::uintptr_t>(objs.back())) == s;
    }
    if (same_span && s->owner.load() == mgc::internal::this_cache_if_any()) victim = first;
  }
  ASSERT_NE(victim, nullptr);
  ASSERT_TRUE(mgc::find_object(victim, nullptr));
  mgc::free(victim);
  expect_not_found(victim, "a freed object");
  for (void* p : objs)
    if (p != victim) mgc::free(p);
}

TEST(FindObject, ReservedSlotsCountUntilTheCacheLetsThemGo) {
  // mallocgc.hpp: "A slot that some thread's cache has reserved but not
  // handed out yet counts as allocated."
  void* reserved = nullptr;
  void* obj = nullptr;
  std::thread([&] {
    obj = mgc::alloc(128);
    reserved = at(obj, 128);  // the next slot of its chunk
    EXPECT_TRUE(mgc::find_object(reserved, nullptr));
  }).join();
  // The thread exited and gave its chunk back: the slot is free now.
  expect_not_found(reserved, "a slot no cache reserves");
  EXPECT_TRUE(mgc::find_object(obj, nullptr));
  mgc::free(obj);
}

TEST(FindObject, SpanTailIsNoObject) {
  // Class 48: 170 slots in a page, 32 bytes left at the end.
  std::vector<void*> objs;
  for (int i = 0; i < 400; i++) objs.push_back(mgc::alloc(48));
  mgc::internal::MSpan* s = mgc::internal::mheap().span_of(reinterpret_cast<std::uintptr_t>(objs[0]));
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->nelems, 170u);
  const std::uintptr_t tail = s->base + 170 * 48;
  expect_not_found(reinterpret_cast<void*>(tail), "the tail of a span");
  expect_not_found(reinterpret_cast<void*>(s->base + kPageSize - 1), "the last byte of a span");
  mgc::ObjectInfo info;
  ASSERT_TRUE(mgc::find_object(reinterpret_cast<void*>(tail - 1), &info));
  EXPECT_EQ(info.base, reinterpret_cast<void*>(tail - 48));
  for (void* p : objs) mgc::free(p);
}

}  // namespace
