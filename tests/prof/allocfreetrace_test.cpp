// MALLOCGC_DEBUG=allocfreetrace=1: a child (this executable, running the
// Child test) allocates, frees and collects with it on; the parent checks
// that every allocation, the free and the cycle were reported, with stacks
// that name the allocating function, and that what the child dropped was
// reported by the sweep.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "mallocgc/mallocgc.hpp"

extern "C" __attribute__((noinline)) void* mgc_test_traced_alloc(std::size_t size, bool noscan) {
  void* p = noscan ? mgc::alloc_noscan(size) : mgc::alloc(size);
  asm volatile("" ::"r"(p) : "memory");  // no tail call: the stack keeps this frame
  return p;
}

namespace {

constexpr int kObjects = 200;

TEST(AllocFreeTrace, Child) {
  if (std::getenv("MGC_ALLOCFREETRACE_CHILD") == nullptr) GTEST_SKIP() << "run by AllocFreeTrace.Lines";
  static void* keep[kObjects];
  // Sizes the fast path would take: tiny, small, a 64-slot class, large.
  const std::size_t sizes[] = {8, 24, 64, 40000};
  for (int i = 0; i < kObjects; i++) keep[i] = mgc_test_traced_alloc(sizes[i % 4], i % 2 == 0);
  std::printf("child: first %p freed %p\n", keep[0], keep[1]);
  std::fflush(stdout);
  mgc::free(keep[1]);
  mgc::collect();
  // Dropped now: the sweep of the next cycles reports them (tiny objects go
  // with their blocks, which are reported as blocks: not checked here).
  for (int i = 2; i < kObjects; i++) {
    if (i % 4 != 0) std::printf("child: dropped %p\n", keep[i]);
    keep[i] = nullptr;
  }
  std::fflush(stdout);
  mgc::collect();
  mgc::collect();
}

// This executable's path. Read through the link, not run as /proc/PID/exe:
// under valgrind that file is valgrind's tool, which refuses to start
// directly, while readlink answers with the program's own path.
std::string own_executable() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "/proc/" + std::to_string(getpid()) + "/exe";
}

TEST(AllocFreeTrace, Lines) {
  const std::string cmd = "MGC_ALLOCFREETRACE_CHILD=1 MALLOCGC_DEBUG=allocfreetrace=1 '" + own_executable() +
                          "' --gtest_filter=AllocFreeTrace.Child 2>&1";
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(f), 0) << out.substr(0, 4000);

  // One line per allocation made by the traced function (each followed by
  // its stack, whose first frame is in that function).
  std::size_t allocs = 0, pos = 0;
  while ((pos = out.find("allocfreetrace: alloc ", pos)) != std::string::npos) {
    const std::size_t next = out.find("allocfreetrace:", pos + 1);
    const std::string entry = out.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    if (entry.find("mgc_test_traced_alloc") != std::string::npos) allocs++;
    pos += 1;
  }
  EXPECT_EQ(allocs, static_cast<std::size_t>(kObjects)) << out.substr(0, 4000);
  const std::size_t at = out.find("child: first ");
  ASSERT_NE(at, std::string::npos) << out.substr(0, 4000);
  char first[32] = {}, freed[32] = {};
  ASSERT_EQ(std::sscanf(out.c_str() + at, "child: first %31s freed %31s", first, freed), 2);
  EXPECT_NE(out.find(std::string("allocfreetrace: alloc ") + first + " size 8 kind tiny"), std::string::npos)
      << out.substr(0, 4000);
  EXPECT_NE(out.find(std::string("allocfreetrace: alloc ") + freed + " size 24 kind conservative"), std::string::npos);
  EXPECT_NE(out.find(std::string("allocfreetrace: free ") + freed + " size 32"), std::string::npos)
      << out.substr(0, 4000);
  EXPECT_NE(out.find("size 40000 kind conservative"), std::string::npos);
  // The sweep reports what the collector freed.
  std::size_t dropped = 0, swept = 0;
  for (pos = out.find("child: dropped "); pos != std::string::npos; pos = out.find("child: dropped ", pos + 1)) {
    char addr[32] = {};
    ASSERT_EQ(std::sscanf(out.c_str() + pos, "child: dropped %31s", addr), 1);
    dropped++;
    if (out.find(std::string("allocfreetrace: sweep ") + addr + " size ") != std::string::npos) swept++;
  }
  EXPECT_EQ(dropped, static_cast<std::size_t>(kObjects - 2) * 3 / 4 + 1) << out.substr(0, 4000);
  // A conservative scan may keep a few (a stale register or stack slot).
  EXPECT_GE(swept * 10, dropped * 9) << swept << " of " << dropped << " dropped objects were reported swept";
  EXPECT_NE(out.find("allocfreetrace: gc 1 start"), std::string::npos);
  EXPECT_NE(out.find("allocfreetrace: gc 1 end"), std::string::npos);
}

}  // namespace
