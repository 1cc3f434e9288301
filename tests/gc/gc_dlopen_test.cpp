// Roots in shared objects loaded at run time (src/gc/roots: the writable
// segments of every loaded module). gc_test_module.so, opened with dlopen
// after the heap and the collector have run, keeps an object through a
// global in its .bss and in its .data; clearing the global lets the object
// go; after dlclose its segments are no longer scanned (nor touched: no
// crash) and a module opened again starts over. Loading and unloading on a
// registered thread while another collects must not deadlock.
//
// The module's path comes from MGC_GC_TEST_MODULE (tests/gc/CMakeLists.txt)
// or the environment variable MALLOCGC_GC_TEST_MODULE; without either the
// tests skip.
//
// Automatic collection is off in this file (see AutomaticCollectionOff).
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "gc_test_support.hpp"

using gctest::collect_clean;
using gctest::reveal;
using gctest::track_new;
using gctest::Tracked;

namespace {

const auto* const kGcOff = testing::AddGlobalTestEnvironment(new gctest::AutomaticCollectionOff);

const char* module_path() {
  if (const char* env = std::getenv("MALLOCGC_GC_TEST_MODULE")) return env;
#ifdef MGC_GC_TEST_MODULE
  return MGC_GC_TEST_MODULE;
#else
  return nullptr;
#endif
}

#define SKIP_WITHOUT_MODULE()                                                                    \
  do {                                                                                           \
    if (module_path() == nullptr)                                                                \
      GTEST_SKIP() << "no test module: tests/CMakeLists.txt needs add_subdirectory(gc), or set " \
                      "MALLOCGC_GC_TEST_MODULE to a build of tests/gc/gc_test_module.cpp";       \
  } while (0)

struct Module {
  void* handle = nullptr;
  void (*set)(int, void*) = nullptr;
  void* (*get)(int) = nullptr;
};

Module open_module() {
  Module m;
  m.handle = ::dlopen(module_path(), RTLD_NOW | RTLD_LOCAL);
  if (m.handle == nullptr) {
    ADD_FAILURE() << "dlopen(" << module_path() << "): " << ::dlerror();
    return m;
  }
  m.set = reinterpret_cast<void (*)(int, void*)>(::dlsym(m.handle, "gctest_module_set"));
  m.get = reinterpret_cast<void* (*)(int)>(::dlsym(m.handle, "gctest_module_get"));
  EXPECT_NE(m.set, nullptr);
  EXPECT_NE(m.get, nullptr);
  return m;
}

bool module_is_loaded() {
  void* h = ::dlopen(module_path(), RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return false;
  ::dlclose(h);
  return true;
}

[[gnu::noinline]] void module_set(const Module& m, int which, std::uintptr_t h) {
  m.set(which, h == 0 ? nullptr : reveal(h));
}

[[gnu::noinline]] bool module_holds(const Module& m, int which, const Tracked& t) {
  return m.get(which) == reveal(t.hidden);
}

TEST(GcDlopen, GlobalsOfAModuleLoadedAfterTheFirstCycle) {
  SKIP_WITHOUT_MODULE();
  collect_clean();  // the collector has seen the modules before this one
  Module m = open_module();
  ASSERT_NE(m.set, nullptr);
  for (int which : {0, 1}) {
    SCOPED_TRACE(which == 0 ? "the module's .bss" : "the module's .data");
    Tracked t = track_new(128);
    module_set(m, which, t.hidden);
    collect_clean();
    EXPECT_KEPT(t);
    EXPECT_TRUE(module_holds(m, which, t));
    module_set(m, which, 0);
    collect_clean();
    EXPECT_RECLAIMED(t);
  }
  ::dlclose(m.handle);
}

// After dlclose the module's segments are gone: scanning must neither touch
// them nor keep what they held. Opening it again gives fresh globals that
// are roots again.
TEST(GcDlopen, UnloadedModuleIsNoLongerARoot) {
  SKIP_WITHOUT_MODULE();
  Module m = open_module();
  ASSERT_NE(m.set, nullptr);
  Tracked t = track_new(64);
  module_set(m, 0, t.hidden);
  collect_clean();
  EXPECT_KEPT(t);
  ::dlclose(m.handle);
  if (module_is_loaded()) GTEST_SKIP() << "dlclose did not unload the module; cannot check its segments are dropped";
  collect_clean();
  EXPECT_RECLAIMED(t);

  Module again = open_module();
  ASSERT_NE(again.set, nullptr);
  Tracked u = track_new(64);
  module_set(again, 1, u.hidden);
  collect_clean();
  EXPECT_KEPT(u);
  module_set(again, 1, 0);
  collect_clean();
  EXPECT_RECLAIMED(u);
  ::dlclose(again.handle);
}

TEST(GcDlopen, LoadedAndUnloadedBetweenManyCycles) {
  SKIP_WITHOUT_MODULE();
  for (int i = 0; i < 20; i++) {
    SCOPED_TRACE(i);
    Module m = open_module();
    ASSERT_NE(m.set, nullptr);
    Tracked t = track_new(48);
    module_set(m, i % 2, t.hidden);
    collect_clean();
    EXPECT_KEPT(t);
    ::dlclose(m.handle);
    collect_clean();
  }
}

// A registered thread loads and unloads the module (taking the loader's
// lock) while the main thread collects: if the world can be stopped while
// that thread holds the lock and the collector then walks the module list,
// this hangs. A watchdog turns a hang into a failure with a message.
TEST(GcDlopen, LoadingOnARegisteredThreadWhileCollecting) {
  SKIP_WITHOUT_MODULE();
  std::atomic<bool> stop{false};
  std::atomic<long> progress{0};
  std::thread loader([&] {
    mgc::ThreadScope scope;
    while (!stop.load()) {
      void* h = ::dlopen(module_path(), RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr) break;
      mgc::alloc(32);
      ::dlclose(h);
      progress.fetch_add(1);
    }
  });
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(m);
    long last = -1;
    while (!cv.wait_for(lock, std::chrono::seconds(60), [&] { return done; })) {
      const long now = progress.load();
      if (now == last) {
        std::fprintf(stderr, "gc_dlopen_test: no progress in 60 s: collect() and dlopen() deadlocked\n");
        std::abort();
      }
      last = now;
    }
  });
  for (int i = 0; i < 200; i++) {
    mgc::collect();
    progress.fetch_add(1);
  }
  stop.store(true);
  loader.join();
  {
    std::lock_guard<std::mutex> lock(m);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  SUCCEED() << progress.load() << " loads and cycles";
}

}  // namespace
