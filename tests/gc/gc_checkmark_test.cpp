// gccheckmark (src/gc/mark.hpp): after the parallel mark, a serial re-mark
// into a second set of bits must find exactly what the parallel mark found;
// an object it reaches that the parallel mark missed aborts the program
// with the object's address and the kind of reference that reaches it.
//
// The missed mark is simulated with a test hook that clears one object's
// mark bit between the parallel mark and the check, as a buggy mark would
// have left it.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "gc/collector.hpp"
#include "gc/mark.hpp"
#include "gtest/gtest.h"
#include "mallocgc/mallocgc.hpp"
#include "runtime/options.hpp"

namespace {

namespace mi = mgc::internal;

struct Node {
  Node* next;
  std::uint64_t value;
};

void enable_checkmark() {
  mi::ensure_options();  // or the first allocation would apply the environment over this
  mi::GcConfig c = mi::gc_config();
  c.checkmark = true;
  mi::set_gc_config(c);
}

Node* volatile g_root = nullptr;

[[gnu::noinline]] Node* make_list(int n) {
  Node* head = nullptr;
  for (int i = 0; i < n; i++) {
    auto* x = static_cast<Node*>(mgc::alloc(sizeof(Node)));
    x->next = head;
    x->value = static_cast<std::uint64_t>(i) * 2654435761u;
    head = x;
  }
  return head;
}

bool list_intact(const Node* head, int n) {
  int i = n - 1;
  for (const Node* x = head; x != nullptr; x = x->next, i--)
    if (x->value != static_cast<std::uint64_t>(i) * 2654435761u) return false;
  return i == -1;
}

class GcCheckmarkDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// A correct mark passes the check, cycle after cycle, with garbage around.
TEST(GcCheckmark, CorrectMarkPasses) {
  enable_checkmark();
  g_root = make_list(5000);
  for (int cycle = 0; cycle < 5; cycle++) {
    make_list(2000);  // garbage
    mgc::collect();
    ASSERT_TRUE(list_intact(g_root, 5000));
  }
  g_root = nullptr;
  mi::set_gc_config({});
}

TEST_F(GcCheckmarkDeathTest, MissedObjectReachedFromAGlobalDies) {
  EXPECT_DEATH(
      {
        enable_checkmark();
        g_root = make_list(3);
        mi::debug_unmark_after_mark = ~reinterpret_cast<std::uintptr_t>(g_root);
        mgc::collect();
      },
      "gccheckmark: object 0x[0-9a-f]+ is reachable \\(from a global word at 0x[0-9a-f]+\\) but the parallel mark "
      "did not mark it");
}

TEST_F(GcCheckmarkDeathTest, MissedObjectReachedFromTheHeapDies) {
  EXPECT_DEATH(
      {
        enable_checkmark();
        g_root = make_list(3);
        mi::debug_unmark_after_mark = ~reinterpret_cast<std::uintptr_t>(g_root->next);
        mgc::collect();
      },
      "gccheckmark: object 0x[0-9a-f]+ is reachable \\(from a heap word");
}

[[gnu::noinline]] void hold_on_stack_and_collect() {
  Node* volatile local = make_list(2);
  Node* const victim = local;
  mi::debug_unmark_after_mark = ~reinterpret_cast<std::uintptr_t>(victim);
  mgc::collect();
  std::printf("%p\n", static_cast<void*>(local));
}

TEST_F(GcCheckmarkDeathTest, MissedObjectReachedFromAStackDies) {
  EXPECT_DEATH(
      {
        enable_checkmark();
        hold_on_stack_and_collect();
      },
      "gccheckmark: object 0x[0-9a-f]+ is reachable \\(from a (stack|registers) word");
}

// The hook without checkmark: the object is lost (this is what checkmark
// exists to catch), which the weak reference shows. Guards the hook itself.
TEST(GcCheckmark, TheHookReallyLosesTheMarkWithoutTheCheck) {
  mi::ensure_options();
  mi::set_gc_config({});
  g_root = make_list(2);
  mgc::Weak<Node> w(g_root->next);
  mi::debug_unmark_after_mark = ~reinterpret_cast<std::uintptr_t>(g_root->next);
  mgc::collect();
  mi::debug_unmark_after_mark = 0;
  EXPECT_EQ(w.get(), nullptr) << "the unmarked object was not treated as unreachable";
  g_root->next = nullptr;  // it was freed: drop the dangling reference
  g_root = nullptr;
}

}  // namespace
