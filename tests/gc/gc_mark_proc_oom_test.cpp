// Mark procedures when memory is exhausted (issue 12): a procedure that
// fills its stack gets a larger one from the OS; when the OS refuses, the
// static reserve stack, and the mark goes on. A procedure that runs on an
// object that is not marked (a kind marked from all its objects) and whose
// entries find no buffer marks that object, and the overflow rescan calls
// it again. Both used to abort. Kept objects must come through whole, with
// the path shown taken by its counter; dropped ones must still go.
#include <sys/mman.h>

#include <cstdint>
#include <cstring>

#include "gc/collector.hpp"
#include "gc/mark.hpp"
#include "gc/roots.hpp"
#include "gc_test_support.hpp"
#include "heap/kinds.hpp"
#include "os/mem.hpp"
#include "runtime/options.hpp"

using gctest::Alloc;
using gctest::collect_clean;
using gctest::hide;
using gctest::reveal;
using gctest::track_new;
using gctest::Tracked;

namespace mi = mgc::internal;

// The one root of the first test: an object of the procedure's kind.
void* volatile gctest_proc_root;

namespace {

const auto* const kGcOff = testing::AddGlobalTestEnvironment(new gctest::AutomaticCollectionOff);

constexpr std::size_t kChildren = 3000;  // entries: past 64, 256 and 1,024, under 4,096
constexpr int kTracked = 16;

// Objects of the kinds here: word 0 the number of words after it, then
// pointers, each pushed by the procedure as an entry of its own (a one-word
// range), not through GC_mark_and_push: only the stack holds them.
mi::MarkStackEntry* push_each_word(std::uintptr_t* obj, mi::MarkStackEntry* top, mi::MarkStackEntry* limit,
                                   std::uintptr_t) {
  const std::uintptr_t n = obj[0];
  for (std::uintptr_t i = 1; i <= n; i++) {
    if (top + 1 >= limit) return limit;  // full: a larger stack, please
    ++top;
    top->start = reinterpret_cast<std::uintptr_t>(&obj[i]);
    top->descr = 8 | mi::kDescriptorLength;
  }
  return top;
}

// A leaf kind: word 0 a value, nothing to mark.
mi::MarkStackEntry* push_nothing(std::uintptr_t*, mi::MarkStackEntry* top, mi::MarkStackEntry*, std::uintptr_t) {
  return top;
}

std::uintptr_t proc_descriptor(mi::MarkProc proc) {
  unsigned index;
  EXPECT_TRUE(mi::register_mark_proc(proc, &index));
  return (std::uintptr_t{index} << 2) | mi::kDescriptorProc;
}

int keep_always(void*) { return 1; }

mi::Kind new_kind(std::uintptr_t descriptor, bool mark_from_all) {
  mi::KindRecord r;
  r.descriptor = descriptor;
  r.clear = true;
  mi::Kind k{};
  EXPECT_TRUE(mi::register_kind(r, &k));
  // Kept by its disclaim procedure: then what it reaches must be kept too.
  if (mark_from_all) mi::set_kind_disclaim(k, keep_always, true);
  return k;
}

mi::Kind leaf_kind() {
  static const mi::Kind k = new_kind(proc_descriptor(push_nothing), false);
  return k;
}

// Marks, for each pointer word, the object it points to and pushes an
// entry for the leaf kind's procedure on it (what GC_MARK_AND_PUSH does,
// by hand).
mi::MarkStackEntry* push_each_leaf(std::uintptr_t* obj, mi::MarkStackEntry* top, mi::MarkStackEntry* limit,
                                   std::uintptr_t) {
  static const std::uintptr_t leaf = kind_descriptor(leaf_kind(), 32);
  const std::uintptr_t n = obj[0];
  for (std::uintptr_t i = 1; i <= n; i++) {
    if (top + 1 >= limit) return limit;
    mi::set_mark_at(obj[i]);
    ++top;
    top->start = obj[i];
    top->descr = leaf;
  }
  return top;
}

enum class Holder { kWords, kWordsMarkedFromAll, kLeavesMarkedFromAll };

mi::Kind holder_kind(Holder h) {
  static const mi::Kind words = new_kind(proc_descriptor(push_each_word), false);
  static const mi::Kind words_all = new_kind(proc_descriptor(push_each_word), true);
  static const mi::Kind leaves_all = new_kind(proc_descriptor(push_each_leaf), true);
  return h == Holder::kWords ? words : h == Holder::kWordsMarkedFromAll ? words_all : leaves_all;
}

std::uint64_t child_value(std::size_t i) { return (i * 2654435761u) | (std::uint64_t{1} << 63); }

// A holder-kind object holding kChildren children (32 bytes, conservative
// or of the leaf kind, word 0 their value) and the tracked objects (none
// for the leaf holder), every other of which the first test drops.
[[gnu::noinline]] std::uintptr_t* make_holder(Holder kind, const Tracked* t, std::size_t children = kChildren) {
  const int tracked = kind == Holder::kLeavesMarkedFromAll ? 0 : kTracked;
  const std::size_t words = 1 + children + tracked;
  auto* h = static_cast<std::uintptr_t*>(mi::alloc_of_kind(words * 8, holder_kind(kind)));
  if (h == nullptr) return nullptr;
  h[0] = words - 1;
  for (std::size_t i = 0; i < children; i++) {
    auto* c = static_cast<std::uint64_t*>(kind == Holder::kLeavesMarkedFromAll ? mi::alloc_of_kind(32, leaf_kind())
                                                                               : mgc::alloc(32));
    c[0] = child_value(i);
    h[1 + i] = reinterpret_cast<std::uintptr_t>(c);
  }
  for (int k = 0; k < tracked; k++) h[1 + children + k] = reinterpret_cast<std::uintptr_t>(reveal(t[k].hidden));
  return h;
}

// The count children in words[1..count] (an object or a node, word 0 its
// count), valued from first_value on: intact?
[[gnu::noinline]] bool words_intact(const std::uintptr_t* words, std::size_t count, std::size_t first_value = 0) {
  std::size_t bad = 0, first = count;
  for (std::size_t i = 0; i < count; i++)
    if (reinterpret_cast<const std::uint64_t*>(words[1 + i])[0] != child_value(first_value + i))
      bad++, first = std::min(first, i);
  if (bad != 0) std::printf("%zu of %zu children damaged, the first #%zu\n", bad, count, first);
  return bad == 0;
}

[[gnu::noinline]] bool children_intact(const std::uintptr_t* h, std::size_t children = kChildren) {
  return words_intact(h, children);
}

[[gnu::noinline]] void drop_even_tracked(std::uintptr_t* h, std::size_t children = kChildren) {
  for (int k = 0; k < kTracked; k += 2) h[1 + children + k] = 0;
}

// After drop_even_tracked (or the like): the even ones go, the odd stay.
void expect_even_dropped_odd_kept(const Tracked* t) {
  for (int k = 0; k < kTracked; k++) {
    if (k % 2 == 0) {
      EXPECT_RECLAIMED(t[k]);
    } else {
      EXPECT_KEPT(t[k]);
    }
  }
}

// Garbage over the slots a wrongly freed child would have released.
[[gnu::noinline]] void churn(std::size_t children = kChildren) {
  for (std::size_t i = 0; i < 2 * children; i++) {
    std::memset(mgc::alloc(32), 0xAB, 32);
    std::memset(mi::alloc_of_kind(32, leaf_kind()), 0xAB, 32);
  }
  gctest::scrub_stack_and_registers();
}

// A collection during which every request for memory is refused.
void collect_refused() {
  mi::os::inject_failures(mi::os::memory_requests() + 1, UINT64_MAX / 2);
  collect_clean();
  mi::os::inject_failures(0, 0);
}

class MarkProcOom : public testing::Test {
 protected:
  void SetUp() override {
    mi::ensure_options();
    saved_ = mi::gc_config();
    mi::GcConfig c = saved_;
    c.mark_threads = 1;  // the collecting thread's own stack, small until now
    mi::set_gc_config(c);
  }
  void TearDown() override {
    mi::set_gc_config(saved_);
    mi::debug_mark_batch_limit = 0;
    gctest_proc_root = nullptr;
  }
  mi::GcConfig saved_;
};

TEST_F(MarkProcOom, AStackTheOsWillNotGrowComesFromTheReserve) {
  Tracked t[kTracked];
  for (int k = 0; k < kTracked; k++) t[k] = track_new(48, k % 2 == 0 ? Alloc::conservative : Alloc::typed);
  gctest_proc_root = make_holder(Holder::kWords, t);
  ASSERT_NE(gctest_proc_root, nullptr);
  const std::uint64_t before = mi::mark_proc_reserve_uses();
  collect_refused();
  EXPECT_GT(mi::mark_proc_reserve_uses(), before) << "the procedure's stack grew anyway: the test proves nothing";
  churn();
  EXPECT_TRUE(children_intact(static_cast<std::uintptr_t*>(gctest_proc_root)));
  for (int k = 0; k < kTracked; k++) EXPECT_KEPT(t[k]);
  drop_even_tracked(static_cast<std::uintptr_t*>(gctest_proc_root));
  const std::uint64_t before2 = mi::mark_proc_reserve_uses();
  collect_refused();
  EXPECT_GT(mi::mark_proc_reserve_uses(), before2);
  expect_even_dropped_odd_kept(t);
  churn();
  EXPECT_TRUE(children_intact(static_cast<std::uintptr_t*>(gctest_proc_root)));
  // With memory again the stack grows from the OS.
  const std::uint64_t before3 = mi::mark_proc_reserve_uses();
  collect_clean();
  EXPECT_EQ(mi::mark_proc_reserve_uses(), before3);
  EXPECT_TRUE(children_intact(static_cast<std::uintptr_t*>(gctest_proc_root)));
}

// The reserve is static storage of the library that only a mark writes:
// not a root (scanned, it was 4 MiB more to read in every cycle, and the
// whole of it resident).
TEST_F(MarkProcOom, TheReserveIsNotARoot) {
  collect_clean();  // the allocator's exclusions are made at the first cycle
  std::uintptr_t lo, hi;
  mi::mark_proc_reserve_bounds(&lo, &hi);
  mi::GlobalsSnapshot snap;
  mi::snapshot_globals(&snap);
  ASSERT_FALSE(snap.ranges.empty());
  for (const mi::RootRange& r : snap.ranges)
    EXPECT_TRUE(r.end <= lo || r.begin >= hi) << "a root range [" << std::hex << r.begin << ", " << r.end
                                              << ") holds part of the reserve stack [" << lo << ", " << hi << ")";
}

// The holder is of a kind marked from all its objects: unreachable, its
// procedure still runs in every cycle, on an object that is not marked.
// With one mark buffer its entries find no room: one-word ranges are
// scanned on the spot, entries for the leaf kind's procedure mark their
// objects for the rescan. Either way nothing is lost, and the rescans end.
class MarkProcNoBuffers : public MarkProcOom, public testing::WithParamInterface<Holder> {};

TEST_P(MarkProcNoBuffers, EntriesOfAnUnmarkedObjectAreNotLost) {
  Tracked t[kTracked];
  for (int k = 0; k < kTracked; k++) t[k] = track_new(48, Alloc::conservative);
  const std::uintptr_t hidden_holder = hide(make_holder(GetParam(), t));
  const std::uint64_t before = mi::mark_overflow_rescans();
  mi::debug_mark_batch_limit = 1;
  collect_clean();
  mi::debug_mark_batch_limit = 0;
  EXPECT_GT(mi::mark_overflow_rescans(), before) << "the mark found room for everything: the test proves nothing";
  churn();
  const auto* h = static_cast<const std::uintptr_t*>(reveal(hidden_holder));
  EXPECT_TRUE(children_intact(h));
  if (GetParam() != Holder::kLeavesMarkedFromAll)
    for (int k = 0; k < kTracked; k++) EXPECT_KEPT(t[k]);
}

INSTANTIATE_TEST_SUITE_P(Entries, MarkProcNoBuffers,
                         testing::Values(Holder::kWordsMarkedFromAll, Holder::kLeavesMarkedFromAll),
                         [](const testing::TestParamInfo<Holder>& i) {
                           return i.param == Holder::kWordsMarkedFromAll ? "Ranges" : "ProcedureEntries";
                         });

// A procedure that pushes more entries for one object than even the
// reserve holds, with memory refused: the object is scanned as words
// instead (Boehm's contract: a procedure looks for pointers only where the
// conservative marker would). Used to abort. What it holds is kept, what it
// dropped is not.
TEST_F(MarkProcOom, AnObjectOverflowingTheReserveIsScannedAsWords) {
  constexpr std::size_t kMany = (std::size_t{1} << 18) + 40000;  // past the reserve's 256 Ki entries
  Tracked t[kTracked];
  for (int k = 0; k < kTracked; k++) t[k] = track_new(48, k % 2 == 0 ? Alloc::conservative : Alloc::typed);
  gctest_proc_root = make_holder(Holder::kWords, t, kMany);
  ASSERT_NE(gctest_proc_root, nullptr);
  const std::uint64_t before = mi::mark_proc_conservative_scans();
  collect_refused();
  EXPECT_GT(mi::mark_proc_conservative_scans(), before) << "the reserve held it all: the test proves nothing";
  churn(kMany / 8);
  EXPECT_TRUE(children_intact(static_cast<std::uintptr_t*>(gctest_proc_root), kMany));
  for (int k = 0; k < kTracked; k++) EXPECT_KEPT(t[k]);
  drop_even_tracked(static_cast<std::uintptr_t*>(gctest_proc_root), kMany);
  collect_refused();
  expect_even_dropped_odd_kept(t);
  churn(kMany / 8);
  EXPECT_TRUE(children_intact(static_cast<std::uintptr_t*>(gctest_proc_root), kMany));
}

// Entries for a procedure on memory outside the heap (nodes in a mapping
// the collector does not scan), when no mark buffer has room: there is no
// heap object to mark for the rescan, so the node's procedure runs at once,
// its pushes above the entries still waiting (which, many, make the stack
// grow: mapped, or the reserve when memory is refused). Used to abort.
constexpr std::size_t kNodes = 40;
constexpr std::size_t kNodeChildren = 1000;  // with what waits, past the holder's stack of 1,024 entries
constexpr std::size_t kFiller = 460;         // the holder's one-word ranges: more than a mark buffer holds

std::uintptr_t node_descriptor() {
  static const std::uintptr_t d = proc_descriptor(push_each_word);
  return d;
}

// The holder: word 0 kNodes, then kNodes node addresses, then kFiller words.
// Pushed: an entry for each node (first), then a one-word range for each
// filler word; taken last in, first out, the ranges fill the one buffer.
mi::MarkStackEntry* push_nodes(std::uintptr_t* obj, mi::MarkStackEntry* top, mi::MarkStackEntry* limit,
                               std::uintptr_t) {
  const std::uintptr_t nodes = obj[0];
  for (std::uintptr_t i = 1; i <= nodes + kFiller; i++) {
    if (top + 1 >= limit) return limit;
    ++top;
    if (i <= nodes) {
      top->start = obj[i];
      top->descr = node_descriptor();
    } else {
      top->start = reinterpret_cast<std::uintptr_t>(&obj[i]);
      top->descr = 8 | mi::kDescriptorLength;
    }
  }
  return top;
}

class MarkProcOutsideHeap : public MarkProcOom, public testing::WithParamInterface<bool> {};

TEST_P(MarkProcOutsideHeap, EntriesForMemoryOutsideTheHeapRunAtOnce) {
  const bool refuse = GetParam();
  static const mi::Kind holder_kind = new_kind(proc_descriptor(push_nodes), false);
  const std::size_t node_words = 1 + kNodeChildren;
  const std::size_t bytes = kNodes * node_words * 8;
  void* region = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(region, MAP_FAILED);
  auto* nodes = static_cast<std::uintptr_t*>(region);
  auto* h = static_cast<std::uintptr_t*>(mi::alloc_of_kind((1 + kNodes + kFiller) * 8, holder_kind));
  ASSERT_NE(h, nullptr);
  h[0] = kNodes;
  for (std::size_t n = 0; n < kNodes; n++) {
    std::uintptr_t* node = nodes + n * node_words;
    node[0] = kNodeChildren;
    for (std::size_t i = 0; i < kNodeChildren; i++) {
      auto* c = static_cast<std::uint64_t*>(mgc::alloc(32));
      c[0] = child_value(n * kNodeChildren + i);
      node[1 + i] = reinterpret_cast<std::uintptr_t>(c);
    }
    h[1 + n] = reinterpret_cast<std::uintptr_t>(node);
  }
  // The last node's last kTracked children are tracked objects instead.
  std::uintptr_t* last = nodes + (kNodes - 1) * node_words;
  Tracked t[kTracked];
  for (int k = 0; k < kTracked; k++) {
    t[k] = track_new(48, Alloc::conservative);
    last[1 + kNodeChildren - kTracked + k] = reinterpret_cast<std::uintptr_t>(reveal(t[k].hidden));
  }
  gctest_proc_root = h;
  h = nullptr;

  auto collect = [&] {
    mi::debug_mark_batch_limit = 1;
    if (refuse) {
      collect_refused();
    } else {
      collect_clean();
    }
    mi::debug_mark_batch_limit = 0;
  };
  auto intact = [&] {
    bool ok = true;
    for (std::size_t n = 0; n < kNodes; n++)
      ok &= words_intact(nodes + n * node_words, n + 1 == kNodes ? kNodeChildren - kTracked : kNodeChildren,
                         n * kNodeChildren);
    return ok;
  };
  const std::uint64_t runs = mi::mark_proc_outside_heap_runs();
  const std::uint64_t reserve = mi::mark_proc_reserve_uses();
  collect();
  EXPECT_GT(mi::mark_proc_outside_heap_runs(), runs) << "every entry found a buffer: the test proves nothing";
  if (refuse) {
    EXPECT_GT(mi::mark_proc_reserve_uses(), reserve);
  }
  churn(kNodes * kNodeChildren / 2);
  EXPECT_TRUE(intact());
  for (int k = 0; k < kTracked; k++) EXPECT_KEPT(t[k]);
  for (int k = 0; k < kTracked; k += 2) last[1 + kNodeChildren - kTracked + k] = 0;
  collect();
  expect_even_dropped_odd_kept(t);
  churn(kNodes * kNodeChildren / 2);
  EXPECT_TRUE(intact());
  gctest_proc_root = nullptr;
  munmap(region, bytes);
}

INSTANTIATE_TEST_SUITE_P(Memory, MarkProcOutsideHeap, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& i) { return i.param ? "Refused" : "Given"; });

}  // namespace
