// Finalizers (src/gc/finalizers), with Go's semantics: a finalizer runs
// once, on the finalizer thread, after its object is found unreachable,
// with the object (and what it reaches) intact for the call and the data
// argument it was given; data is kept alive while the finalizer is set;
// in a chain A -> B of finalizable objects A's runs first and B's only in
// a later cycle; objects that reach each other in a cycle are never
// finalized; set_finalizer(obj, nullptr) removes, a second set replaces,
// mgc::free drops; a finalizer may resurrect its object, allocate, or set
// a new finalizer.
//
// Automatic collection is off in this file (see AutomaticCollectionOff);
// every cycle is the test's own collect().
#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "gc/specials.hpp"
#include "gc_test_support.hpp"
#include "mallocgc/mallocgc.h"

using gctest::Alloc;
using gctest::collect_clean;
using gctest::final_seq;
using gctest::finalized;
using gctest::hide;
using gctest::reveal;
using gctest::track_new;
using gctest::Tracked;

void* volatile gctest_finalizer_root;          // a root the tests set
void* volatile gctest_resurrected;             // where a finalizer puts its object back
void* volatile gctest_allocated_in_finalizer;  // what a finalizer allocated

namespace {

const auto* const kGcOff = testing::AddGlobalTestEnvironment(new gctest::AutomaticCollectionOff);

[[gnu::noinline]] void set_root(std::uintptr_t h) { gctest_finalizer_root = h == 0 ? nullptr : reveal(h); }

[[gnu::noinline]] void set_finalizer_of(const Tracked& t, void (*fn)(void*, void*), void* data) {
  mgc::set_finalizer(reveal(t.hidden), fn, data);
}

// Cycles until cond() holds or max cycles ran (waiting for finalizers after
// each); returns the number of cycles, or -1.
template <class F>
int cycles_until(int max, F cond) {
  for (int i = 1; i <= max; i++) {
    collect_clean();
    mgc::wait_for_finalizers();
    if (cond()) return i;
  }
  return -1;
}

TEST(GcFinalizer, WaitWithNothingQueuedReturns) {
  mgc::wait_for_finalizers();
  mgc::wait_for_finalizers();
}

TEST(GcFinalizer, DoesNotRunWhileReachable) {
  Tracked t = track_new(64);
  set_root(t.hidden);
  for (int i = 0; i < 3; i++) {
    collect_clean();
    EXPECT_KEPT(t);
  }
  set_root(0);
}

TEST(GcFinalizer, RunsOnceOnAnIntactObject) {
  Tracked small = track_new(128);
  Tracked large = track_new(100000, Alloc::noscan);
  Tracked typed = track_new(72, Alloc::typed);
  collect_clean();
  EXPECT_RECLAIMED(small);
  EXPECT_RECLAIMED(large);
  EXPECT_RECLAIMED(typed);
  for (int i = 0; i < 3; i++) collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(finalized(small), 1);
  EXPECT_EQ(finalized(large), 1);
  EXPECT_EQ(finalized(typed), 1);
}

// --- the data argument ------------------------------------------------------------

int g_marker;
std::atomic<int> g_data_calls{0};
std::atomic<int> g_data_ok{0};
std::uintptr_t g_expected_obj;  // hidden

void data_finalizer(void* obj, void* data) {
  g_data_calls.fetch_add(1);
  if (data == &g_marker && hide(obj) == g_expected_obj) g_data_ok.fetch_add(1);
}

TEST(GcFinalizer, ReceivesItsObjectAndDataArgument) {
  Tracked t = track_new(64, Alloc::conservative, false);
  g_expected_obj = t.hidden;
  set_finalizer_of(t, data_finalizer, &g_marker);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(g_data_calls.load(), 1);
  EXPECT_EQ(g_data_ok.load(), 1) << "the finalizer got another object or data pointer";
}

std::atomic<int> g_heap_data_calls{0};
std::atomic<int> g_heap_data_intact{0};

void heap_data_finalizer(void*, void* data) {
  g_heap_data_calls.fetch_add(1);
  const int id = gctest::tracked_id(data);
  if (id >= 0 && gctest::tracked_intact(data, id)) g_heap_data_intact.fetch_add(1);
}

[[gnu::noinline]] void set_finalizer_with_data(const Tracked& obj, const Tracked& data) {
  mgc::set_finalizer(reveal(obj.hidden), heap_data_finalizer, reveal(data.hidden));
}

// data is reachable only through the finalizer registration: it lives as
// long as the finalizer is set.
TEST(GcFinalizer, HeapDataIsKeptWhileTheFinalizerIsSet) {
  Tracked obj = track_new(64, Alloc::conservative, false);
  Tracked data = track_new(256, Alloc::noscan, false);
  set_root(obj.hidden);
  set_finalizer_with_data(obj, data);
  collect_clean();
  EXPECT_KEPT(data);
  set_finalizer_of(obj, nullptr, nullptr);
  collect_clean();
  EXPECT_RECLAIMED_NO_FINALIZER(data);
  EXPECT_KEPT(obj);
  set_root(0);
  collect_clean();
  EXPECT_RECLAIMED_NO_FINALIZER(obj);
  EXPECT_EQ(g_heap_data_calls.load(), 0);
}

TEST(GcFinalizer, HeapDataIsIntactInTheCallAndReclaimedAfter) {
  Tracked obj = track_new(64, Alloc::conservative, false);
  Tracked data = track_new(256, Alloc::noscan, false);
  set_finalizer_with_data(obj, data);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(g_heap_data_calls.load(), 1);
  EXPECT_EQ(g_heap_data_intact.load(), 1) << "the data object was changed before the finalizer ran";
  const int cycles = gctest::cycles_until_cleared(data, 4);
  EXPECT_NE(cycles, -1) << "the data object outlived its finalizer by 4 cycles";
  RecordProperty("cycles_until_data_reclaimed", cycles);
}

// --- what the finalized object reaches --------------------------------------------

std::atomic<int> g_link_calls{0};
std::atomic<int> g_link_intact{0};

// A tracked object's finalizer that also checks the object its link word
// points to.
void link_checking_finalizer(void* obj, void*) {
  void* child = static_cast<void**>(obj)[1];
  const int id = child == nullptr ? -1 : gctest::tracked_id(child);
  if (id >= 0 && gctest::tracked_intact(child, id)) g_link_intact.fetch_add(1);
  g_link_calls.fetch_add(1);
  gctest::on_finalize(obj, nullptr);
}

// The object's referents stay alive for the call and one more cycle, then go.
TEST(GcFinalizer, WhatTheObjectReachesIsIntactForTheCall) {
  Tracked parent = track_new(64);
  Tracked child = track_new(512, Alloc::noscan, false);
  set_finalizer_of(parent, link_checking_finalizer, nullptr);
  gctest::set_link(parent, child.hidden);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(finalized(parent), 1);
  EXPECT_EQ(g_link_calls.load(), 1);
  EXPECT_EQ(g_link_intact.load(), 1) << "the child was changed before its parent's finalizer ran";
  EXPECT_TRUE(gctest::weak_points_at_object(child))
      << "the finalizer's object must keep what it points to for the call";
  const int cycles = gctest::cycles_until_cleared(child, 4);
  EXPECT_NE(cycles, -1) << "the child outlived its parent's finalizer by 4 cycles";
  RecordProperty("cycles_until_child_reclaimed", cycles);
}

// A -> B, both finalizable: A's finalizer runs first; B's only in a later
// cycle (A's finalizer keeps B alive through the cycle that finds A).
TEST(GcFinalizer, ChainRunsOutsideInOneCycleApart) {
  Tracked a = track_new(64);
  Tracked b = track_new(64);
  gctest::set_link(a, b.hidden);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(finalized(a), 1);
  EXPECT_EQ(finalized(b), 0) << "B's finalizer ran in the cycle that found A";
  EXPECT_TRUE(gctest::weak_points_at_object(b)) << "B's weak reference was cleared while A's finalizer kept B";
  const int cycles = cycles_until(4, [&] { return finalized(b) == 1; });
  EXPECT_NE(cycles, -1) << "B's finalizer did not run within 4 more cycles";
  RecordProperty("extra_cycles_until_b_finalized", cycles);
  EXPECT_EQ(finalized(a), 1);
  EXPECT_EQ(finalized(b), 1);
  EXPECT_LT(final_seq(a), final_seq(b));
  EXPECT_EQ(gctest::g_track.finalized_intact[b.id].load(), 1);
}

// A -> B -> C -> D: each cycle finalizes one more, in order.
TEST(GcFinalizer, LongerChainOneObjectPerCycle) {
  Tracked t[4];
  for (auto& x : t) x = track_new(48);
  for (int i = 0; i < 3; i++) gctest::set_link(t[i], t[i + 1].hidden);
  int cycle_of[4] = {0, 0, 0, 0};
  for (int cycle = 1; cycle <= 16 && finalized(t[3]) == 0; cycle++) {
    collect_clean();
    mgc::wait_for_finalizers();
    for (int i = 0; i < 4; i++)
      if (cycle_of[i] == 0 && finalized(t[i]) != 0) cycle_of[i] = cycle;
  }
  EXPECT_EQ(cycle_of[0], 1);
  for (int i = 1; i < 4; i++) {
    SCOPED_TRACE(i);
    EXPECT_NE(cycle_of[i], 0) << "never finalized";
    EXPECT_GT(cycle_of[i], cycle_of[i - 1]) << "finalized in the same cycle as (or before) the object before it";
    EXPECT_EQ(finalized(t[i]), 1);
  }
}

// --- cycles -------------------------------------------------------------------------

TEST(GcFinalizer, CycleOfFinalizableObjectsNeverRuns) {
  Tracked a = track_new(64);
  Tracked b = track_new(64);
  gctest::set_link(a, b.hidden);
  gctest::set_link(b, a.hidden);
  for (int i = 0; i < 4; i++) collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(finalized(a), 0);
  EXPECT_EQ(finalized(b), 0);
}

// A cycle with one finalizable object: its finalizer keeps B, B keeps it.
TEST(GcFinalizer, CycleWithOneFinalizableObjectNeverRuns) {
  Tracked a = track_new(64);
  Tracked b = track_new(64, Alloc::typed, false);
  gctest::set_link(a, b.hidden);
  gctest::set_link(b, a.hidden);
  for (int i = 0; i < 4; i++) collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(finalized(a), 0);
}

// The smallest cycle: an object that points at itself (as in Go, where the
// finalizer's marking of what the object reaches reaches the object).
TEST(GcFinalizer, SelfReferenceIsACycle) {
  Tracked a = track_new(64);
  gctest::set_link(a, a.hidden);
  for (int i = 0; i < 4; i++) collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(finalized(a), 0);
}

// --- removing, replacing, freeing ----------------------------------------------------

TEST(GcFinalizer, SetToNullRemoves) {
  Tracked t = track_new(64);
  set_finalizer_of(t, nullptr, nullptr);
  collect_clean();
  EXPECT_RECLAIMED_NO_FINALIZER(t);
  for (int i = 0; i < 2; i++) collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(finalized(t), 0);
}

std::atomic<int> g_first_calls{0};
void first_finalizer(void*, void*) { g_first_calls.fetch_add(1); }

TEST(GcFinalizer, SecondSetReplacesTheFirst) {
  Tracked t = track_new(64, Alloc::conservative, false);
  set_finalizer_of(t, first_finalizer, nullptr);
  set_finalizer_of(t, gctest::on_finalize, nullptr);
  collect_clean();
  EXPECT_RECLAIMED(t);
  EXPECT_EQ(g_first_calls.load(), 0);
}

[[gnu::noinline]] void free_tracked(const Tracked& t) { mgc::free(reveal(t.hidden)); }

[[gnu::noinline]] void reuse_slots(std::size_t size, int n) {
  for (int i = 0; i < n; i++) mgc::alloc(size);
}

// mgc::free drops the finalizer: it never runs, and no object that later
// takes the slot inherits it.
TEST(GcFinalizer, FreeDropsTheFinalizer) {
  for (std::size_t size : {std::size_t{64}, std::size_t{70000}}) {
    SCOPED_TRACE(size);
    const int bad_before = gctest::g_track.bad_finalizer_calls.load();
    Tracked t = track_new(size);
    free_tracked(t);
    collect_clean();
    reuse_slots(size, size > 32768 ? 4 : 300);
    collect_clean();
    collect_clean();
    mgc::wait_for_finalizers();
    EXPECT_EQ(finalized(t), 0);
    EXPECT_EQ(gctest::g_track.bad_finalizer_calls.load(), bad_before)
        << "a finalizer ran on an object that took the slot";
  }
}

// --- what a finalizer may do -------------------------------------------------------

void resurrecting_finalizer(void* obj, void*) {
  gctest_resurrected = obj;
  gctest::on_finalize(obj, nullptr);
}

[[gnu::noinline]] bool resurrected_is(const Tracked& t) {
  return gctest_resurrected == reveal(t.hidden) && gctest::tracked_intact(gctest_resurrected, t.id);
}

[[gnu::noinline]] void rearm_resurrected() {
  mgc::set_finalizer(gctest_resurrected, gctest::on_finalize, nullptr);
  gctest_resurrected = nullptr;
}

// A finalizer that stores its object in a global brings it back: intact,
// alive across cycles, not finalized again; a finalizer set anew later runs
// when it is dropped again.
TEST(GcFinalizer, ResurrectedObjectLivesOnAndIsFinalizedOnlyOnce) {
  Tracked t = track_new(200, Alloc::conservative, false);
  set_finalizer_of(t, resurrecting_finalizer, nullptr);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(finalized(t), 1);
  EXPECT_TRUE(resurrected_is(t));
  for (int i = 0; i < 3; i++) {
    collect_clean();
    gctest::churn(200, Alloc::conservative);
  }
  mgc::wait_for_finalizers();
  EXPECT_TRUE(resurrected_is(t)) << "the resurrected object was reclaimed or changed";
  EXPECT_EQ(finalized(t), 1) << "a finalizer runs once";
  rearm_resurrected();
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(finalized(t), 2) << "the finalizer set again after resurrection did not run";
}

std::atomic<int> g_rearm_calls{0};

void rearming_finalizer(void* obj, void*) {
  if (g_rearm_calls.fetch_add(1) == 0) mgc::set_finalizer(obj, rearming_finalizer, nullptr);
}

// Setting a finalizer from inside the finalizer (Go allows it): it runs
// again once the object is found unreachable again.
TEST(GcFinalizer, SetAgainInsideTheFinalizerRunsAgain) {
  Tracked t = track_new(64, Alloc::conservative, false);
  set_finalizer_of(t, rearming_finalizer, nullptr);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(g_rearm_calls.load(), 1);
  const int cycles = cycles_until(4, [] { return g_rearm_calls.load() == 2; });
  EXPECT_NE(cycles, -1) << "the re-armed finalizer did not run within 4 cycles";
  for (int i = 0; i < 2; i++) collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(g_rearm_calls.load(), 2);
  EXPECT_FALSE(gctest::weak_alive(t));
}

std::atomic<int> g_alloc_calls{0};

void allocating_finalizer(void* obj, void*) {
  auto* fresh = static_cast<std::uint64_t*>(mgc::alloc(256));
  for (int i = 0; i < 32; i++) fresh[i] = gctest::pattern(12345, i);
  gctest_allocated_in_finalizer = fresh;
  g_alloc_calls.fetch_add(1);
  gctest::on_finalize(obj, nullptr);
}

[[gnu::noinline]] bool allocated_in_finalizer_intact() {
  auto* p = static_cast<std::uint64_t*>(gctest_allocated_in_finalizer);
  if (p == nullptr) return false;
  for (int i = 0; i < 32; i++)
    if (p[i] != gctest::pattern(12345, i)) return false;
  return true;
}

// The finalizer thread allocates; what it stores in a global lives on.
TEST(GcFinalizer, FinalizerMayAllocate) {
  Tracked t = track_new(64, Alloc::conservative, false);
  set_finalizer_of(t, allocating_finalizer, nullptr);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(g_alloc_calls.load(), 1);
  for (int i = 0; i < 3; i++) {
    collect_clean();
    gctest::churn(256, Alloc::conservative);
  }
  EXPECT_TRUE(allocated_in_finalizer_intact());
  gctest_allocated_in_finalizer = nullptr;
}

// --- no memory for the tables ----------------------------------------------------

constexpr std::size_t kOomObjectSize = 48;
std::atomic<int> g_oom_calls{0};
std::atomic<int> g_oom_intact{0};  // calls that found the object's bytes as written
void oom_counting_finalizer(void* obj, void*) {
  const auto* b = static_cast<const unsigned char*>(obj);
  bool intact = true;
  for (std::size_t i = 0; i < kOomObjectSize; i++) intact = intact && b[i] == 0xab;
  if (intact) g_oom_intact.fetch_add(1);
  g_oom_calls.fetch_add(1);
}

// An object with a weak reference, the finalizer set while the table's
// allocations fail (hook: the next `fail` of them): returns the weak
// reference; *threw says whether set_finalizer threw.
[[gnu::noinline]] mgc::Weak<char> object_with_finalizer_under(int fail, bool* threw) {
  char* p = static_cast<char*>(mgc::alloc(kOomObjectSize));
  std::memset(p, 0xab, kOomObjectSize);
  mgc::Weak<char> w(p);
  mgc::internal::debug_fail_special_allocations = fail;
  *threw = false;
  try {
    mgc::set_finalizer(p, oom_counting_finalizer, nullptr);
  } catch (const std::bad_alloc&) {
    *threw = true;
  }
  mgc::internal::debug_fail_special_allocations = 0;
  return w;
}

// The table cannot grow: bad_alloc, nothing set; the object is reclaimed
// without a call, and finalizers work again once memory is back (C: 0).
TEST(GcFinalizer, NoMemoryForTheTableThrowsAndSetsNothing) {
  g_oom_calls = 0;
  bool threw = false;
  mgc::Weak<char> w = object_with_finalizer_under(1, &threw);
  EXPECT_TRUE(threw);
  for (int i = 0; i < 3; i++) collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(w.get(), nullptr) << "an object whose finalizer was refused is reclaimed";
  EXPECT_EQ(g_oom_calls.load(), 0);

  mgc::Weak<char> w2 = object_with_finalizer_under(0, &threw);
  EXPECT_FALSE(threw);
  EXPECT_GE(cycles_until(5, [] { return g_oom_calls.load() == 1; }), 1);
  EXPECT_EQ(w2.get(), nullptr);

  void* p = mgc::alloc(kOomObjectSize);
  mgc::internal::debug_fail_special_allocations = 1;
  EXPECT_EQ(mgc_set_finalizer(p, oom_counting_finalizer, nullptr), 0);
  mgc::internal::debug_fail_special_allocations = 0;
  EXPECT_EQ(mgc_set_finalizer(p, nullptr, nullptr), 1);
}

// The queue cannot grow when a cycle finds the object unreachable: the
// finalizer stays pending, the object alive (its weak reference is gone, as
// for every object found unreachable with a finalizer), and a later cycle
// queues it; the call finds the object intact.
TEST(GcFinalizer, NoMemoryForTheQueueDefersTheCall) {
  g_oom_calls = 0;
  g_oom_intact = 0;
  bool threw = true;
  mgc::Weak<char> w = object_with_finalizer_under(0, &threw);
  ASSERT_FALSE(threw);
  mgc::internal::debug_fail_special_allocations = 1;
  collect_clean();
  const int left = mgc::internal::debug_fail_special_allocations;
  mgc::internal::debug_fail_special_allocations = 0;
  mgc::wait_for_finalizers();
  EXPECT_EQ(left, 0) << "the cycle tried to queue the finalizer";
  EXPECT_EQ(g_oom_calls.load(), 0);
  for (int i = 0; i < 3; i++) gctest::churn(256, Alloc::conservative);
  EXPECT_GE(cycles_until(5, [] { return g_oom_calls.load() == 1; }), 1);
  EXPECT_EQ(g_oom_calls.load(), 1);
  EXPECT_EQ(g_oom_intact.load(), 1) << "the object was reclaimed before its deferred finalizer ran";
  EXPECT_EQ(w.get(), nullptr);
}

// --- many ------------------------------------------------------------------------

std::atomic<int> g_count_calls{0};
void counting_finalizer(void*, void*) { g_count_calls.fetch_add(1); }

constexpr int kMany = 20000;

// kMany objects with finalizers, every other one kept by a rooted array.
[[gnu::noinline]] void make_many(std::size_t size) {
  auto** keep = static_cast<void**>(mgc::alloc(kMany / 2 * sizeof(void*)));
  gctest_finalizer_root = keep;
  for (int i = 0; i < kMany; i++) {
    void* p = mgc::alloc(size);
    mgc::set_finalizer(p, counting_finalizer, nullptr);
    if (i % 2 == 1) keep[i / 2] = p;
  }
}

TEST(GcFinalizer, ManyObjectsEachFinalizedOnce) {
  make_many(48);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(g_count_calls.load(), kMany / 2);
  set_root(0);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(g_count_calls.load(), kMany);
  collect_clean();
  mgc::wait_for_finalizers();
  EXPECT_EQ(g_count_calls.load(), kMany);
}

// Objects a thread allocated and finalizable objects it set up, after the
// thread exited.
TEST(GcFinalizer, ObjectsOfAnExitedThread) {
  std::vector<Tracked> ts(100);
  std::thread([&ts] {
    gctest::new_thread_hygiene();
    for (auto& t : ts) t = track_new(96);
  }).join();
  collect_clean();
  for (const auto& t : ts) EXPECT_RECLAIMED(t);
}

}  // namespace
