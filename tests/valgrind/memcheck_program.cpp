// A small program run under valgrind's memcheck by the memcheck_* tests
// (tests/valgrind/check_memcheck.py), built with MALLOCGC_VALGRIND:
//
//   memcheck_program clean               allocation of every kind and size,
//                                        explicit frees, cycles with several
//                                        mark threads: memcheck must report
//                                        no error
//   memcheck_program use-after-free      reads an object after mgc::free
//   memcheck_program use-after-collect   reads an object after a cycle
//                                        reclaimed it
//   memcheck_program fork                forks while other threads hold
//                                        half-used cache chunks; the child
//                                        collects: no error in either
//
// The use-after ones must be reported ("Invalid read", a block "free'd").
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "mallocgc/mallocgc.hpp"

namespace {

// Hidden from the conservative scan: bit 63 set, never an address.
constexpr std::uintptr_t kMask = 0xA5C3'96F0'0F69'3C5Aull;

struct Node {
  Node* next;
  long value;
};

// Keep the list reachable from a global.
Node* g_list = nullptr;

[[gnu::noinline]] long clean() {
  long sum = 0;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 20000; i++) g_list = mgc::make<Node>(g_list, i);
    for (std::size_t size : {1u, 7u, 8u, 15u, 16u, 24u, 100u, 256u, 1000u, 5000u, 40000u, 200000u}) {
      auto* p = static_cast<unsigned char*>(mgc::alloc_noscan(size));
      std::memset(p, 0xAB, size);
      sum += p[size - 1];
      if (size % 2 == 0) mgc::free(p);
      auto* q = static_cast<void**>(mgc::alloc(size < 8 ? 8 : size));
      q[0] = g_list;
    }
    mgc::Type pair(16, {0, 8});
    auto** t = static_cast<void**>(mgc::alloc_typed(pair));
    t[0] = g_list;
    mgc::collect();
    for (Node* n = g_list; n != nullptr; n = n->next) sum += n->value;
    if (round == 1) g_list = nullptr;  // garbage for the next cycles
  }
  mgc::release_memory();
  return sum;
}

[[gnu::noinline]] std::uintptr_t freed_object() {
  auto* p = static_cast<char*>(mgc::alloc(48));
  std::memset(p, 1, 48);
  mgc::free(p);
  return reinterpret_cast<std::uintptr_t>(p) ^ kMask;
}

[[gnu::noinline]] std::uintptr_t garbage_object() {
  auto* p = static_cast<char*>(mgc::alloc(48));
  std::memset(p, 1, 48);
  return reinterpret_cast<std::uintptr_t>(p) ^ kMask;
}

// Overwrite the stack the helpers above left, so no stale copy keeps the
// garbage alive.
[[gnu::noinline]] void scrub() {
  char buf[16384];
  std::memset(buf, 0, sizeof buf);
  asm volatile("" : : "r"(buf) : "memory");
}

int read_byte(std::uintptr_t hidden) { return *reinterpret_cast<volatile char*>(hidden ^ kMask); }

// Threads that each take a chunk of tiny blocks and of a small class, use
// part of it and wait while the main thread forks: the child inherits
// their reserved slots, which its cycles reclaim (and memcheck must have
// seen them as blocks: an "Invalid free" otherwise). The child's status is
// memcheck's --error-exitcode when it reported anything.
[[gnu::noinline]] int fork_with_cached_chunks() {
  std::atomic<int> ready{0};
  std::atomic<bool> forked{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++)
    threads.emplace_back([&] {
      for (int i = 0; i < 5; i++) {
        *static_cast<volatile char*>(mgc::alloc_noscan(8)) = 1;
        *static_cast<void* volatile*>(mgc::alloc(48)) = nullptr;
      }
      ready.fetch_add(1);
      while (!forked.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  while (ready.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < 3; i++) {
      g_list = mgc::make<Node>(g_list, i);
      mgc::collect();
    }
    _exit(0);
  }
  forked.store(true);
  for (std::thread& t : threads) t.join();
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 3;
  std::printf("child: exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "clean";
  if (std::strcmp(mode, "clean") == 0) {
    std::printf("clean: %ld\n", clean());
    return 0;
  }
  if (std::strcmp(mode, "use-after-free") == 0) {
    const std::uintptr_t h = freed_object();
    std::printf("read %d\n", read_byte(h));
    return 0;
  }
  if (std::strcmp(mode, "use-after-collect") == 0) {
    const std::uintptr_t h = garbage_object();
    scrub();
    mgc::collect();
    std::printf("read %d\n", read_byte(h));
    return 0;
  }
  if (std::strcmp(mode, "fork") == 0) return fork_with_cached_chunks();
  std::fprintf(stderr, "usage: %s clean|use-after-free|use-after-collect|fork\n", argv[0]);
  return 2;
}
