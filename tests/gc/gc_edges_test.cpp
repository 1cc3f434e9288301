// The collector's edges (src/gc/mark): what a heap object's words do to the
// objects they point at. Any word of a conservative object keeps its target
// (first, middle and last word; small, size-class-sized and large parents);
// a typed object keeps what its pointer fields name and nothing its other
// fields hold; a noscan object keeps nothing; interior pointers keep their
// object, from a root or from the heap; cycles without finalizers are
// reclaimed; long chains and wide arrays are marked to the end; standard
// containers on mgc::allocator keep their elements.
#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

#include "gc_test_support.hpp"

using gctest::Alloc;
using gctest::collect_clean;
using gctest::hide;
using gctest::reveal;
using gctest::track_new;
using gctest::Tracked;

// The one root of the parents in this file.
void* volatile gctest_edges_root;

namespace {

const auto* const kGcOff = testing::AddGlobalTestEnvironment(new gctest::AutomaticCollectionOff);

[[gnu::noinline]] void set_root(std::uintptr_t h, std::size_t offset = 0) {
  gctest_edges_root = h == 0 ? nullptr : static_cast<char*>(reveal(h)) + offset;
}

// A rooted parent of the given kind and size; its hidden address.
[[gnu::noinline]] std::uintptr_t new_rooted_parent(Alloc kind, std::size_t size, const mgc::Type* type = nullptr) {
  void* p = type != nullptr ? mgc::alloc_typed(*type) : gctest::allocate(kind, size);
  gctest_edges_root = p;
  return hide(p);
}

// parent[offset] = child + child_offset (nullptr for child_hidden == 0).
[[gnu::noinline]] void put_word(std::uintptr_t parent, std::size_t offset, std::uintptr_t child_hidden,
                                std::size_t child_offset = 0) {
  void* v = child_hidden == 0 ? nullptr : static_cast<char*>(reveal(child_hidden)) + child_offset;
  std::memcpy(static_cast<char*>(reveal(parent)) + offset, &v, sizeof v);
}

// --- conservative objects -----------------------------------------------------

TEST(GcEdges, AnyWordOfAConservativeObject) {
  const std::size_t sizes[] = {16, 48, 1024, 32768, 100000};
  const Alloc child_kinds[] = {Alloc::conservative, Alloc::noscan, Alloc::typed};
  int n = 0;
  for (std::size_t size : sizes) {
    const std::size_t words = size / 8;
    for (std::size_t word : {std::size_t{0}, words / 2, words - 1}) {
      SCOPED_TRACE(testing::Message() << "parent of " << size << " bytes, word " << word);
      const std::uintptr_t parent = new_rooted_parent(Alloc::conservative, size);
      Tracked child = track_new(64, child_kinds[n++ % 3]);
      put_word(parent, word * 8, child.hidden);
      collect_clean();
      EXPECT_KEPT(child);
      put_word(parent, word * 8, 0);
      collect_clean();
      EXPECT_RECLAIMED(child);
    }
  }
  set_root(0);
}

// A parent that itself is reachable only through another heap object.
TEST(GcEdges, TwoLevelsBelowTheRoot) {
  const std::uintptr_t top = new_rooted_parent(Alloc::conservative, 64);
  Tracked mid = track_new(64, Alloc::conservative, /*finalizer=*/false);
  Tracked leaf = track_new(64);
  put_word(top, 32, mid.hidden);
  gctest::set_link(mid, leaf.hidden);
  collect_clean();
  EXPECT_KEPT(mid);
  EXPECT_KEPT(leaf);
  put_word(top, 32, 0);
  collect_clean();
  EXPECT_RECLAIMED_NO_FINALIZER(mid);
  EXPECT_RECLAIMED(leaf);
  set_root(0);
}

// --- typed objects --------------------------------------------------------------

// Words 1 and 4 are pointers, the rest are not: an address in word 2 keeps
// nothing.
TEST(GcEdges, TypedPointerFieldKeepsAndOtherFieldsDoNot) {
  const mgc::Type type(48, {8, 32});
  const std::uintptr_t parent = new_rooted_parent(Alloc::typed, 48, &type);
  Tracked a = track_new(64);
  Tracked b = track_new(64, Alloc::noscan);
  put_word(parent, 8, a.hidden);
  put_word(parent, 32, b.hidden);
  collect_clean();
  EXPECT_KEPT(a);
  EXPECT_KEPT(b);
  put_word(parent, 8, 0);
  put_word(parent, 16, a.hidden);  // a's address, now only in a non-pointer field
  collect_clean();
  EXPECT_RECLAIMED(a);
  EXPECT_KEPT(b);
  set_root(0);
}

TEST(GcEdges, TypedNonPointerFieldsKeepNothing) {
  const mgc::Type type(64, {56});
  const std::uintptr_t parent = new_rooted_parent(Alloc::typed, 64, &type);
  Tracked ts[7];
  for (int i = 0; i < 7; i++) {
    ts[i] = track_new(32 + 16 * i);
    put_word(parent, 8 * i, ts[i].hidden, i % 2 == 0 ? 0 : 8);  // start and interior addresses
  }
  collect_clean();
  for (const Tracked& t : ts) EXPECT_RECLAIMED(t);
  set_root(0);
}

// A typed object above the small-object limit: its bits are kept per word
// across pages.
TEST(GcEdges, LargeTypedObjectPointerFieldsAndOthers) {
  const mgc::Type type(80000, {0, 65536});
  const std::uintptr_t parent = new_rooted_parent(Alloc::typed, 80000, &type);
  Tracked kept_first = track_new(64);
  Tracked kept_far = track_new(64);
  Tracked not_kept = track_new(64);
  put_word(parent, 0, kept_first.hidden);
  put_word(parent, 65536, kept_far.hidden);
  put_word(parent, 65544, not_kept.hidden);
  collect_clean();
  EXPECT_KEPT(kept_first);
  EXPECT_KEPT(kept_far);
  EXPECT_RECLAIMED(not_kept);
  put_word(parent, 65536, 0);
  collect_clean();
  EXPECT_RECLAIMED(kept_far);
  EXPECT_KEPT(kept_first);
  set_root(0);
}

// An interior address in a typed pointer field keeps its object.
TEST(GcEdges, TypedPointerFieldWithAnInteriorAddress) {
  const mgc::Type type(32, {16});
  const std::uintptr_t parent = new_rooted_parent(Alloc::typed, 32, &type);
  Tracked t = track_new(256);
  put_word(parent, 16, t.hidden, 200);
  collect_clean();
  EXPECT_KEPT(t);
  put_word(parent, 16, 0);
  collect_clean();
  EXPECT_RECLAIMED(t);
  set_root(0);
}

// --- noscan objects -------------------------------------------------------------

TEST(GcEdges, NoscanObjectKeepsNothing) {
  const std::uintptr_t parent = new_rooted_parent(Alloc::noscan, 64);
  Tracked t = track_new(64);
  put_word(parent, 16, t.hidden);
  collect_clean();
  EXPECT_RECLAIMED(t);
  set_root(0);
}

[[gnu::noinline]] std::uintptr_t new_rooted_make_array() {
  auto* words = mgc::make<std::uintptr_t[8]>();  // arithmetic: noscan
  gctest_edges_root = words;
  return hide(words);
}

TEST(GcEdges, MakeOfAnArithmeticArrayKeepsNothing) {
  const std::uintptr_t parent = new_rooted_make_array();
  Tracked t = track_new(64);
  put_word(parent, 24, t.hidden);
  collect_clean();
  EXPECT_RECLAIMED(t);
  set_root(0);
}

// --- interior pointers ----------------------------------------------------------

TEST(GcEdges, InteriorPointerFromARoot) {
  for (std::size_t size : {std::size_t{64}, std::size_t{5000}, std::size_t{200000}}) {
    for (std::size_t offset : {std::size_t{1}, size / 2 + 3, size - 1}) {
      SCOPED_TRACE(testing::Message() << size << " bytes, offset " << offset);
      Tracked t = track_new(size);
      set_root(t.hidden, offset);
      collect_clean();
      EXPECT_KEPT(t);
      set_root(0);
      collect_clean();
      EXPECT_RECLAIMED(t);
    }
  }
}

TEST(GcEdges, InteriorPointerFromAConservativeObject) {
  const std::uintptr_t parent = new_rooted_parent(Alloc::conservative, 32);
  for (std::size_t size : {std::size_t{48}, std::size_t{20000}, std::size_t{150000}}) {
    SCOPED_TRACE(size);
    Tracked t = track_new(size);
    put_word(parent, 8, t.hidden, size - 8);
    collect_clean();
    EXPECT_KEPT(t);
    put_word(parent, 8, 0);
    collect_clean();
    EXPECT_RECLAIMED(t);
  }
  set_root(0);
}

// --- small objects without a finalizer: tiny and noscan ------------------------

constexpr int kTiny = 512;

[[gnu::noinline]] void fill_tiny(std::uintptr_t array) {
  auto** slots = static_cast<std::uint64_t**>(reveal(array));
  for (int i = 0; i < kTiny; i++) {
    slots[i] = static_cast<std::uint64_t*>(mgc::alloc_noscan(8));
    *slots[i] = gctest::pattern(i, 7);
  }
}

[[gnu::noinline]] int tiny_intact(std::uintptr_t array) {
  auto** slots = static_cast<std::uint64_t**>(reveal(array));
  int ok = 0;
  for (int i = 0; i < kTiny; i++) ok += *slots[i] == gctest::pattern(i, 7);
  return ok;
}

[[gnu::noinline]] void tiny_churn() {
  for (int i = 0; i < 4 * kTiny; i++) *static_cast<std::uint64_t*>(mgc::alloc_noscan(8)) = ~0ull;
}

// Tiny objects share 16-byte blocks: a pointer to any of them keeps the
// block, and the contents survive allocation after the cycle.
TEST(GcEdges, TinyObjectsKeptByTheirPointers) {
  const std::uintptr_t array = new_rooted_parent(Alloc::conservative, kTiny * sizeof(void*));
  fill_tiny(array);
  collect_clean();
  tiny_churn();
  collect_clean();
  tiny_churn();
  EXPECT_EQ(tiny_intact(array), kTiny);
  set_root(0);
}

// --- cycles, chains, fan-out ------------------------------------------------------

TEST(GcEdges, CycleWithoutFinalizersIsReclaimed) {
  Tracked a = track_new(64, Alloc::conservative, false);
  Tracked b = track_new(64, Alloc::typed, false);
  Tracked self = track_new(64, Alloc::conservative, false);
  gctest::set_link(a, b.hidden);
  gctest::set_link(b, a.hidden);
  gctest::set_link(self, self.hidden);
  const std::uintptr_t parent = new_rooted_parent(Alloc::conservative, 32);
  put_word(parent, 0, a.hidden);
  put_word(parent, 8, self.hidden);
  collect_clean();
  EXPECT_KEPT(a);
  EXPECT_KEPT(b);
  EXPECT_KEPT(self);
  set_root(0);
  collect_clean();
  EXPECT_RECLAIMED_NO_FINALIZER(a);
  EXPECT_RECLAIMED_NO_FINALIZER(b);
  EXPECT_RECLAIMED_NO_FINALIZER(self);
}

struct ChainNode {
  ChainNode* next;
  std::uint64_t index;
  std::uint64_t check;
};

std::uint64_t chain_check(std::uint64_t i) { return gctest::pattern(static_cast<int>(i & 0xffff), i >> 16); }

// A chain of n nodes below the root, typed (next is the only pointer) or
// conservative; returns the last node, hidden.
[[gnu::noinline]] std::uintptr_t build_chain(std::size_t n, bool typed) {
  const mgc::Type type(sizeof(ChainNode), {0});
  ChainNode* head = nullptr;
  ChainNode* last = nullptr;
  for (std::size_t i = 0; i < n; i++) {
    auto* node = static_cast<ChainNode*>(typed ? mgc::alloc_typed(type) : mgc::alloc(sizeof(ChainNode)));
    node->index = i;
    node->check = chain_check(i);
    if (last == nullptr) {
      head = node;
    } else {
      last->next = node;
    }
    last = node;
    if (i == 0) gctest_edges_root = head;  // rooted while the rest is built
  }
  return hide(last);
}

[[gnu::noinline]] void attach_tail(std::uintptr_t last, const Tracked& tail) {
  static_cast<ChainNode*>(reveal(last))->next = static_cast<ChainNode*>(reveal(tail.hidden));
}

// Nodes in order with their checks; returns how many.
[[gnu::noinline]] std::size_t walk_chain(std::size_t n, const Tracked& tail) {
  auto* node = static_cast<ChainNode*>(gctest_edges_root);
  std::size_t i = 0;
  while (i < n && node != nullptr && node->index == i && node->check == chain_check(i)) {
    node = node->next;
    i++;
  }
  return i == n && node == reveal(tail.hidden) ? n : i;
}

[[gnu::noinline]] void cut_chain_at(std::size_t i) {
  auto* node = static_cast<ChainNode*>(gctest_edges_root);
  while (node->index + 1 < i) node = node->next;
  node->next = nullptr;
}

void chain_test(std::size_t n, bool typed) {
  const std::uintptr_t last = build_chain(n, typed);
  Tracked tail = track_new(64);
  attach_tail(last, tail);
  collect_clean();
  EXPECT_KEPT(tail);
  EXPECT_EQ(walk_chain(n, tail), n) << "the chain is broken or changed after the cycle";
  cut_chain_at(n / 2);
  collect_clean();
  EXPECT_RECLAIMED(tail);
  set_root(0);
}

// Marking must not depend on recursion depth.
TEST(GcEdges, LongConservativeChain) { chain_test(200000, false); }
TEST(GcEdges, LongTypedChain) { chain_test(200000, true); }

constexpr std::size_t kFan = 65536;

[[gnu::noinline]] void build_fan(std::uintptr_t array) {
  auto** slots = static_cast<std::uint64_t**>(reveal(array));
  for (std::size_t i = 0; i + 1 < kFan; i++) {
    slots[i] = static_cast<std::uint64_t*>(mgc::alloc_noscan(48));
    for (int w = 0; w < 6; w++) slots[i][w] = gctest::pattern(static_cast<int>(i), w);
  }
}

[[gnu::noinline]] void set_fan_last(std::uintptr_t array, const Tracked& last) {
  static_cast<void**>(reveal(array))[kFan - 1] = reveal(last.hidden);
}

[[gnu::noinline]] std::size_t fan_intact(std::uintptr_t array) {
  auto** slots = static_cast<std::uint64_t**>(reveal(array));
  std::size_t ok = 0;
  for (std::size_t i = 0; i + 1 < kFan; i++) {
    bool good = true;
    for (int w = 0; w < 6; w++) good = good && slots[i][w] == gctest::pattern(static_cast<int>(i), w);
    ok += good;
  }
  return ok;
}

[[gnu::noinline]] void fan_garbage() {
  for (std::size_t i = 0; i < kFan; i++) std::memset(mgc::alloc_noscan(48), 0xAB, 48);
}

// One large conservative array of 64 Ki pointers to small noscan objects.
TEST(GcEdges, WideArrayOfPointers) {
  const std::uintptr_t array = new_rooted_parent(Alloc::conservative, kFan * sizeof(void*));
  build_fan(array);
  Tracked last = track_new(48, Alloc::noscan);
  set_fan_last(array, last);
  collect_clean();
  fan_garbage();
  EXPECT_KEPT(last);
  EXPECT_EQ(fan_intact(array), kFan - 1);
  set_root(0);
  collect_clean();
  EXPECT_RECLAIMED(last);
}

// --- standard containers on mgc::allocator --------------------------------------

using PtrVector = std::vector<void*, mgc::allocator<void*>>;

[[gnu::noinline]] void vector_push(PtrVector& v, std::uintptr_t h) { v.push_back(reveal(h)); }
[[gnu::noinline]] void vector_clear_slot(PtrVector& v, std::size_t i) { v[i] = nullptr; }
[[gnu::noinline]] void vector_release(PtrVector& v) {
  v.clear();
  v.shrink_to_fit();
}

// The vector object is a root (here in a stack frame); its buffer lives in
// the collected heap and keeps its elements, across reallocations.
[[gnu::noinline]] void vector_case() {
  PtrVector v;  // no reserve: growth reallocates and frees old buffers
  constexpr int kN = 300;
  Tracked ts[kN];
  for (int i = 0; i < kN; i++) {
    ts[i] = track_new(48);
    vector_push(v, ts[i].hidden);
  }
  collect_clean();
  for (int i = 0; i < kN; i++) {
    SCOPED_TRACE(i);
    EXPECT_KEPT(ts[i]);
  }
  for (int i = 0; i < kN; i += 2) vector_clear_slot(v, i);
  collect_clean();
  for (int i = 0; i < kN; i++) {
    SCOPED_TRACE(i);
    if (i % 2 == 0) {
      EXPECT_RECLAIMED(ts[i]);
    } else {
      EXPECT_KEPT(ts[i]);
    }
  }
  vector_release(v);
  collect_clean();
  for (int i = 1; i < kN; i += 2) {
    SCOPED_TRACE(i);
    EXPECT_RECLAIMED(ts[i]);
  }
}

TEST(GcEdges, VectorOnMgcAllocatorHeldByAStackRoot) { vector_case(); }

// The vector object itself in the data segment.
alignas(PtrVector) unsigned char g_vector_storage[sizeof(PtrVector)];

TEST(GcEdges, VectorOnMgcAllocatorHeldByAGlobal) {
  auto* v = new (g_vector_storage) PtrVector;
  Tracked a = track_new(64);
  Tracked b = track_new(64);
  vector_push(*v, a.hidden);
  for (int i = 0; i < 100; i++) vector_push(*v, 0 ^ gctest::kMask);  // nullptr elements, growth
  vector_push(*v, b.hidden);
  collect_clean();
  EXPECT_KEPT(a);
  EXPECT_KEPT(b);
  vector_clear_slot(*v, 0);
  collect_clean();
  EXPECT_RECLAIMED(a);
  EXPECT_KEPT(b);
  v->~PtrVector();  // frees the buffer
  collect_clean();
  EXPECT_RECLAIMED(b);
}

using PtrMap = std::map<int, void*, std::less<int>, mgc::allocator<std::pair<const int, void*>>>;

[[gnu::noinline]] void map_put(PtrMap& m, int k, std::uintptr_t h) { m.emplace(k, reveal(h)); }
[[gnu::noinline]] void map_erase(PtrMap& m, int k) { m.erase(k); }
[[gnu::noinline]] bool map_has(const PtrMap& m, int k, std::uintptr_t h) {
  auto it = m.find(k);
  return it != m.end() && it->second == reveal(h);
}

// A node-based container: the map object on the stack, every node in the
// collected heap. Erased nodes are freed; what only they held goes.
[[gnu::noinline]] void map_case() {
  PtrMap m;
  constexpr int kN = 100;
  Tracked ts[kN];
  for (int i = 0; i < kN; i++) {
    ts[i] = track_new(40);
    map_put(m, i, ts[i].hidden);
  }
  collect_clean();
  for (int i = 0; i < kN; i++) {
    SCOPED_TRACE(i);
    EXPECT_KEPT(ts[i]);
    EXPECT_TRUE(map_has(m, i, ts[i].hidden));
  }
  for (int i = 0; i < kN; i += 3) map_erase(m, i);
  collect_clean();
  for (int i = 0; i < kN; i++) {
    SCOPED_TRACE(i);
    if (i % 3 == 0) {
      EXPECT_RECLAIMED(ts[i]);
    } else {
      EXPECT_KEPT(ts[i]);
      EXPECT_TRUE(map_has(m, i, ts[i].hidden));
    }
  }
}

TEST(GcEdges, MapOnMgcAllocatorKeepsItsNodes) { map_case(); }

}  // namespace
