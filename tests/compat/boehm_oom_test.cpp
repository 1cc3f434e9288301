// The Boehm face's thread registrations when there is no memory for a
// thread's record (issue 12). Boehm aborts; here GC_register_my_thread
// returns GC_NO_MEMORY, GC_pthread_create returns EAGAIN without running
// the start routine, and GC_init leaves the registration to the thread's
// first allocation. Each is followed by the same call with memory, which
// must then work. A C program cannot make only these requests fail, so
// this is a GoogleTest built from the face's sources with the core, which
// reaches the core's hook (debug_refuse_meta_allocs).
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <thread>

#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc.h>

#include "gtest/gtest.h"
#include "heap/meta_alloc.hpp"

namespace mi = mgc::internal;

namespace {

struct RefuseNext {
  explicit RefuseNext(int n) { mi::debug_refuse_meta_allocs.store(n); }
  ~RefuseNext() { mi::debug_refuse_meta_allocs.store(0); }
};

// A list of n cells, collected over, then checked: the thread's heap
// pointers are seen by the collector.
bool list_survives(int n) {
  struct Cell {
    Cell* next;
    long value;
  };
  Cell* head = nullptr;
  for (int i = 0; i < n; i++) {
    auto* c = static_cast<Cell*>(GC_MALLOC(sizeof(Cell)));
    if (c == nullptr) return false;
    c->next = head;
    c->value = i;
    head = c;
  }
  GC_gcollect();
  for (int i = 0; i < n; i++) (void)GC_MALLOC(sizeof(Cell));  // over what a lost cell would have freed
  for (int i = n - 1; i >= 0; i--, head = head->next)
    if (head == nullptr || head->value != i) return false;
  return head == nullptr;
}

TEST(BoehmOom, RegisterMyThreadWithoutMemorySaysSoAndRegistersLater) {
  GC_INIT();
  GC_allow_register_threads();
  int first = -1, second = -1;
  bool registered_after_refusal = true, survived = false;
  std::thread t([&] {
    GC_stack_base sb;
    ASSERT_EQ(GC_get_stack_base(&sb), GC_SUCCESS);
    {
      RefuseNext refuse(1);
      first = GC_register_my_thread(&sb);
      EXPECT_EQ(mi::debug_refuse_meta_allocs.load(), 0) << "the refusal was not the registration's";
    }
    registered_after_refusal = GC_thread_is_registered() != 0;
    second = GC_register_my_thread(&sb);
    survived = list_survives(20000);
    GC_unregister_my_thread();
  });
  t.join();
  EXPECT_EQ(first, GC_NO_MEMORY);
  EXPECT_FALSE(registered_after_refusal);
  EXPECT_EQ(second, GC_SUCCESS);
  EXPECT_TRUE(survived);
}

std::atomic<int> g_ran{0};

void* start(void* arg) {
  g_ran.fetch_add(1);
  *static_cast<bool*>(arg) = list_survives(20000);
  return arg;
}

class BoehmOomCreate : public testing::TestWithParam<int> {};

TEST_P(BoehmOomCreate, PthreadCreateWithoutMemoryFailsWithEagainAndRunsNothing) {
  GC_INIT();
  const int detach = GetParam();
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, detach);
  bool ok = false;
  pthread_t t;
  const int ran = g_ran.load();
  {
    RefuseNext refuse(1);
    EXPECT_EQ(GC_pthread_create(&t, &attr, start, &ok), EAGAIN);
    EXPECT_EQ(mi::debug_refuse_meta_allocs.load(), 0) << "the refusal was not the new thread's registration";
  }
  EXPECT_EQ(g_ran.load(), ran) << "the start routine ran";
  // With memory again: a thread as usual.
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_JOINABLE);
  ASSERT_EQ(GC_pthread_create(&t, &attr, start, &ok), 0);
  void* ret = nullptr;
  ASSERT_EQ(GC_pthread_join(t, &ret), 0);
  EXPECT_EQ(ret, &ok);
  EXPECT_TRUE(ok);
  EXPECT_EQ(g_ran.load(), ran + 1);
  pthread_attr_destroy(&attr);
}

INSTANTIATE_TEST_SUITE_P(Threads, BoehmOomCreate, testing::Values(PTHREAD_CREATE_JOINABLE, PTHREAD_CREATE_DETACHED),
                         [](const testing::TestParamInfo<int>& i) {
                           return i.param == PTHREAD_CREATE_JOINABLE ? "Joinable" : "Detached";
                         });

// GC_init in a fresh process (the death test re-runs the binary) with no
// memory for the primordial thread's record: no abort, the thread is not
// registered, and its first allocation registers it.
TEST(BoehmOomDeathTest, InitWithoutMemoryForTheThreadRecordLeavesItToTheFirstAllocation) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        mi::debug_refuse_meta_allocs.store(1);
        GC_init();
        const bool refused_here = mi::debug_refuse_meta_allocs.load() == 0;
        mi::debug_refuse_meta_allocs.store(0);
        const bool registered = GC_thread_is_registered() != 0;
        const bool survived = list_survives(20000);
        std::exit(refused_here && !registered && survived && GC_thread_is_registered() ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
