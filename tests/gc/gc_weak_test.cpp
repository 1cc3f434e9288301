// Weak references (mgc::Weak, src/gc/finalizers): get() returns the pointer
// while its object is reachable and nullptr from the cycle that finds it
// unreachable on; the reference is cleared before the object's finalizer
// runs and a finalizer that resurrects the object does not bring it back;
// a weak reference keeps nothing alive; copies are independent.
//
// Automatic collection is off in this file (see AutomaticCollectionOff).
#include <atomic>
#include <cstdint>
#include <thread>
#include <utility>

#include "gc_test_support.hpp"

using gctest::Alloc;
using gctest::collect_clean;
using gctest::hide;
using gctest::reveal;
using gctest::track_new;
using gctest::Tracked;

void* volatile gctest_weak_root;
void* volatile gctest_weak_resurrected;

namespace {

const auto* const kGcOff = testing::AddGlobalTestEnvironment(new gctest::AutomaticCollectionOff);

[[gnu::noinline]] void set_root(std::uintptr_t h) { gctest_weak_root = h == 0 ? nullptr : reveal(h); }

// A weak reference to t's object plus offset, made where the raw pointer
// may live.
[[gnu::noinline]] mgc::Weak<char> weak_to(const Tracked& t, std::size_t offset = 0) {
  return mgc::Weak<char>(static_cast<char*>(reveal(t.hidden)) + offset);
}

[[gnu::noinline]] bool points_at(const mgc::Weak<char>& w, const Tracked& t, std::size_t offset = 0) {
  return w.get() == static_cast<char*>(reveal(t.hidden)) + offset;
}

[[gnu::noinline]] bool is_null(const mgc::Weak<char>& w) { return w.get() == nullptr; }

// Copying reads the pointer: done out of line, like everything that does.
[[gnu::noinline]] mgc::Weak<char> copy_of(const mgc::Weak<char>& w) { return mgc::Weak<char>(w); }
[[gnu::noinline]] void assign(mgc::Weak<char>& to, const mgc::Weak<char>& from) { to = from; }

TEST(GcWeak, NullAndDefault) {
  mgc::Weak<int> none;
  EXPECT_EQ(none.get(), nullptr);
  mgc::Weak<int> of_null(nullptr);
  EXPECT_EQ(of_null.get(), nullptr);
  collect_clean();
  EXPECT_EQ(of_null.get(), nullptr);
  mgc::Weak<int> copy(of_null);
  EXPECT_EQ(copy.get(), nullptr);
}

TEST(GcWeak, StaysWhileReachableAcrossCycles) {
  Tracked t = track_new(64, Alloc::conservative, false);
  mgc::Weak<char> w = weak_to(t);
  set_root(t.hidden);
  for (int i = 0; i < 4; i++) {
    collect_clean();
    EXPECT_TRUE(points_at(w, t));
    EXPECT_KEPT(t);
  }
  set_root(0);
  collect_clean();
  EXPECT_TRUE(is_null(w));
}

TEST(GcWeak, ClearedByTheCycleThatFindsTheObjectUnreachable) {
  for (std::size_t size : {std::size_t{32}, std::size_t{4096}, std::size_t{50000}}) {
    for (Alloc kind : {Alloc::conservative, Alloc::noscan, Alloc::typed}) {
      SCOPED_TRACE(testing::Message() << size << " bytes, kind " << static_cast<int>(kind));
      Tracked t = track_new(size, kind, false);
      mgc::Weak<char> w = weak_to(t);
      EXPECT_TRUE(points_at(w, t));
      collect_clean();
      EXPECT_TRUE(is_null(w));
      EXPECT_RECLAIMED_NO_FINALIZER(t);
      collect_clean();
      EXPECT_TRUE(is_null(w)) << "a cleared weak reference came back";
    }
  }
}

// A weak reference to an interior address returns that address.
TEST(GcWeak, InteriorAddress) {
  Tracked t = track_new(1000, Alloc::conservative, false);
  mgc::Weak<char> w = weak_to(t, 999);
  set_root(t.hidden);
  collect_clean();
  EXPECT_TRUE(points_at(w, t, 999));
  set_root(0);
  collect_clean();
  EXPECT_TRUE(is_null(w));
}

// Weak references keep nothing: an object reached only by weak references
// (even many) is reclaimed.
TEST(GcWeak, KeepsNothingAlive) {
  Tracked t = track_new(64);
  mgc::Weak<char> ws[8];
  for (auto& w : ws) w = weak_to(t);
  collect_clean();
  for (const auto& w : ws) EXPECT_TRUE(is_null(w));
  EXPECT_RECLAIMED(t);
}

// A copy is a reference of its own: made from a live one it points at the
// same object, and both are cleared together; destroying one leaves the
// other; a copy of a cleared reference is null.
TEST(GcWeak, CopiesAreIndependentHandles) {
  Tracked t = track_new(64, Alloc::conservative, false);
  set_root(t.hidden);
  auto* first = new mgc::Weak<char>(weak_to(t));
  mgc::Weak<char> copy = copy_of(*first);
  mgc::Weak<char> assigned;
  assign(assigned, copy);
  mgc::Weak<char> moved(std::move(*first));
  delete first;
  collect_clean();
  EXPECT_TRUE(points_at(copy, t));
  EXPECT_TRUE(points_at(assigned, t));
  EXPECT_TRUE(points_at(moved, t));
  set_root(0);
  collect_clean();
  EXPECT_TRUE(is_null(copy));
  EXPECT_TRUE(is_null(assigned));
  EXPECT_TRUE(is_null(moved));
  mgc::Weak<char> late = copy_of(copy);
  EXPECT_TRUE(is_null(late));
}

// Handles made and dropped in numbers while objects come and go.
TEST(GcWeak, ManyHandlesCreatedAndDestroyed) {
  Tracked t = track_new(64, Alloc::conservative, false);
  set_root(t.hidden);
  for (int round = 0; round < 20; round++) {
    auto* ws = new mgc::Weak<char>[500];
    for (int i = 0; i < 500; i++) ws[i] = weak_to(t);
    if (round % 5 == 0) collect_clean();
    for (int i = 0; i < 500; i++) ASSERT_TRUE(points_at(ws[i], t));
    delete[] ws;
  }
  set_root(0);
  collect_clean();
  EXPECT_RECLAIMED_NO_FINALIZER(t);
}

// Cleared before the finalizer runs: the tracked finalizer records what
// the object's weak reference said during the call.
TEST(GcWeak, ClearedBeforeTheFinalizerRuns) {
  Tracked t = track_new(128);
  collect_clean();
  mgc::wait_for_finalizers();
  ASSERT_EQ(gctest::finalized(t), 1);
  EXPECT_EQ(gctest::g_track.weak_null_in_finalizer[t.id].load(), 1)
      << "inside the finalizer the weak reference still returned the object";
}

mgc::Weak<void>* g_weak_seen_by_resurrector;
std::atomic<int> g_resurrections{0};
std::atomic<int> g_weak_null_during_resurrection{0};

void resurrector(void* obj, void*) {
  if (g_weak_seen_by_resurrector->get() == nullptr) g_weak_null_during_resurrection.fetch_add(1);
  gctest_weak_resurrected = obj;
  g_resurrections.fetch_add(1);
}

[[gnu::noinline]] void set_resurrector(const Tracked& t) {
  g_weak_seen_by_resurrector = gctest::g_track.weak[t.id];
  mgc::set_finalizer(reveal(t.hidden), resurrector, nullptr);
}

[[gnu::noinline]] bool resurrected_intact(const Tracked& t) {
  return gctest_weak_resurrected == reveal(t.hidden) && gctest::tracked_intact(gctest_weak_resurrected, t.id);
}

[[gnu::noinline]] mgc::Weak<char> weak_to_resurrected() {
  return mgc::Weak<char>(static_cast<char*>(gctest_weak_resurrected));
}

// A finalizer that makes its object reachable again does not bring the
// weak reference back; a new weak reference to the living object works.
TEST(GcWeak, NotRestoredByResurrection) {
  Tracked t = track_new(96, Alloc::conservative, false);
  mgc::Weak<char> w = weak_to(t);
  set_resurrector(t);
  collect_clean();
  mgc::wait_for_finalizers();
  ASSERT_EQ(g_resurrections.load(), 1);
  EXPECT_EQ(g_weak_null_during_resurrection.load(), 1);
  EXPECT_TRUE(resurrected_intact(t));
  EXPECT_TRUE(is_null(w));
  EXPECT_FALSE(gctest::weak_alive(t));
  mgc::Weak<char> fresh = weak_to_resurrected();
  for (int i = 0; i < 3; i++) {
    collect_clean();
    EXPECT_TRUE(is_null(w)) << "resurrection brought the weak reference back";
    EXPECT_TRUE(points_at(fresh, t)) << "a weak reference made after resurrection was cleared";
  }
  EXPECT_TRUE(resurrected_intact(t));
  gctest_weak_resurrected = nullptr;
  collect_clean();
  const bool gone = is_null(fresh);
  EXPECT_TRUE(gone) << "the resurrected object outlived its last reference";
  if (!gone) gctest::print_references(t);
  EXPECT_EQ(g_resurrections.load(), 1);
}

// Made on one thread, read and cleared as seen from another.
TEST(GcWeak, UsedAcrossThreads) {
  Tracked t = track_new(64, Alloc::conservative, false);
  set_root(t.hidden);
  mgc::Weak<char>* w = nullptr;
  std::thread([&] { w = new mgc::Weak<char>(weak_to(t)); }).join();
  collect_clean();
  bool alive_there = false;
  std::thread([&] { alive_there = points_at(*w, t); }).join();
  EXPECT_TRUE(alive_there);
  set_root(0);
  collect_clean();
  bool null_there = false;
  std::thread([&] { null_there = is_null(*w); }).join();
  EXPECT_TRUE(null_there);
  delete w;
}

}  // namespace
