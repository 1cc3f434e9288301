// Marking when its buffers cannot grow (memory exhausted): gray objects
// that find no room are dropped, their marks kept, and the drain rescans
// every marked object until nothing was dropped (Boehm's mark-stack
// overflow recovery). The hook debug_mark_batch_limit caps the buffers as
// the OS would. Kept objects must survive whole, with the overflow shown to
// have happened (the rescan counter moved); unreachable ones must still go.
#include <cstdint>
#include <cstring>

#include "gc/collector.hpp"
#include "gc/mark.hpp"
#include "gc_test_support.hpp"
#include "runtime/options.hpp"

using gctest::Alloc;
using gctest::collect_clean;
using gctest::hide;
using gctest::reveal;
using gctest::track_new;
using gctest::Tracked;

namespace mi = mgc::internal;

// The one root of these tests: a wide, conservatively scanned array.
void* volatile gctest_overflow_root;

namespace {

const auto* const kGcOff = testing::AddGlobalTestEnvironment(new gctest::AutomaticCollectionOff);

constexpr std::size_t kWide = 20000;  // 50 buffers' worth of children of one object
constexpr int kDeep = 3000;
constexpr int kTracked = 40;

struct Node {
  Node* next;
  std::uint64_t value;
  void* leaf;  // a noscan payload
};

const mgc::Type& node_type() {
  static const mgc::Type t(sizeof(Node), {0, 16});
  return t;
}

std::uint64_t value_of(std::size_t i, int depth) { return (i * 1000003u + static_cast<std::uint64_t>(depth)) | 1; }

// Slot i of the root: a chain of nodes (depth 1 for most, kDeep for every
// 1000th), conservative and typed in turn, each with a noscan leaf.
[[gnu::noinline]] void* make_chain(std::size_t i) {
  const int depth = i % 1000 == 0 ? kDeep : 1;
  Node* head = nullptr;
  for (int d = depth - 1; d >= 0; d--) {
    auto* n = static_cast<Node*>((i + static_cast<std::size_t>(d)) % 2 == 0 ? mgc::alloc(sizeof(Node))
                                                                            : mgc::alloc_typed(node_type()));
    n->next = head;
    n->value = value_of(i, d);
    auto* leaf = static_cast<std::uint64_t*>(mgc::alloc_noscan(24));
    leaf[0] = leaf[1] = leaf[2] = ~n->value;
    n->leaf = leaf;
    head = n;
  }
  return head;
}

[[gnu::noinline]] void build_root() {
  auto** a = static_cast<void**>(mgc::alloc(kWide * sizeof(void*)));
  for (std::size_t i = 0; i < kWide; i++) a[i] = make_chain(i);
  gctest_overflow_root = a;
}

bool g_hung[kWide];  // slot i holds a holder (see hang) in front of its chain

[[gnu::noinline]] bool root_intact() {
  auto** a = static_cast<void**>(gctest_overflow_root);
  for (std::size_t i = 0; i < kWide; i++) {
    const void* chain = g_hung[i] ? static_cast<void**>(a[i])[0] : a[i];
    int d = 0;
    for (auto* n = static_cast<const Node*>(chain); n != nullptr; n = n->next, d++) {
      const auto* leaf = static_cast<const std::uint64_t*>(n->leaf);
      if (n->value != value_of(i, d) || leaf[0] != ~n->value || leaf[2] != ~n->value) return false;
    }
    if (d != (i % 1000 == 0 ? kDeep : 1)) return false;
  }
  return true;
}

// Tracked objects hung below chain i's last node (in its leaf's place is
// not possible: leaves are noscan), through a conservative holder put in
// the root's slot i instead of the chain: kTracked of them, spread out.
[[gnu::noinline]] void hang(std::size_t i, const Tracked& t) {
  auto** holder = static_cast<void**>(mgc::alloc(2 * sizeof(void*)));
  holder[0] = static_cast<void**>(gctest_overflow_root)[i];
  holder[1] = reveal(t.hidden);
  static_cast<void**>(gctest_overflow_root)[i] = holder;
  g_hung[i] = true;
}

[[gnu::noinline]] void unhang(std::size_t i) {
  auto** a = static_cast<void**>(gctest_overflow_root);
  a[i] = static_cast<void**>(a[i])[0];
  g_hung[i] = false;
}

std::size_t slot_of(int k) { return static_cast<std::size_t>(k) * (kWide / kTracked) + 7; }

void collect_with_buffers(std::size_t limit) {
  mi::debug_mark_batch_limit = limit;
  collect_clean();
  mi::debug_mark_batch_limit = 0;
}

class MarkOverflow : public testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    mi::ensure_options();
    saved_ = mi::gc_config();
    mi::GcConfig c = saved_;
    c.checkmark = GetParam();  // the serial re-mark runs short of buffers too
    mi::set_gc_config(c);
  }
  void TearDown() override {
    mi::set_gc_config(saved_);
    gctest_overflow_root = nullptr;
    std::memset(g_hung, 0, sizeof g_hung);
  }
  mi::GcConfig saved_;
};

TEST_P(MarkOverflow, KeepsWhatIsReachableAndReclaimsTheRest) {
  build_root();
  Tracked t[kTracked];
  for (int k = 0; k < kTracked; k++) {
    t[k] = track_new(64, k % 2 == 0 ? Alloc::conservative : Alloc::typed);
    hang(slot_of(k), t[k]);
  }
  const std::uint64_t before = mi::mark_overflow_rescans();
  collect_with_buffers(1);
  EXPECT_GT(mi::mark_overflow_rescans(), before) << "the mark never ran out of buffers: the test proves nothing";
  EXPECT_TRUE(root_intact());
  for (int k = 0; k < kTracked; k++) EXPECT_KEPT(t[k]);
  // Half the tracked objects lose their holder; the rest stay.
  for (int k = 0; k < kTracked; k += 2) unhang(slot_of(k));
  const std::uint64_t before2 = mi::mark_overflow_rescans();
  collect_with_buffers(1);
  EXPECT_GT(mi::mark_overflow_rescans(), before2);
  for (int k = 0; k < kTracked; k++) {
    if (k % 2 == 0) {
      EXPECT_RECLAIMED(t[k]);
    } else {
      EXPECT_KEPT(t[k]);
    }
  }
  EXPECT_TRUE(root_intact());
  // With buffers to spare the same heap marks without a rescan.
  const std::uint64_t before3 = mi::mark_overflow_rescans();
  collect_with_buffers(0);
  EXPECT_EQ(mi::mark_overflow_rescans(), before3);
  EXPECT_TRUE(root_intact());
}

INSTANTIATE_TEST_SUITE_P(Checkmark, MarkOverflow, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& i) { return i.param ? "On" : "Off"; });

}  // namespace
