// The collector under mutation (label `stress`; MALLOCGC_STRESS_SCALE
// multiplies the work, default 1). Several threads grow and rewire random
// object graphs (conservative, typed and, now and then, large nodes; a
// fraction with finalizers) and pass nodes to each other through a shared
// mailbox, while automatic cycles run at GOGC=25 and the main thread
// collects as well. Every node carries a checksum of its immutable fields,
// checked on every visit and by its finalizer: a node reclaimed while
// reachable, or scanned wrongly, shows up as a bad checksum or a crash.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "gc_test_support.hpp"

namespace {

const auto* const kFirst = testing::AddGlobalTestEnvironment(new gctest::FirstObjectTaken);

int scale() {
  const char* s = std::getenv("MALLOCGC_STRESS_SCALE");
  const int v = s != nullptr ? std::atoi(s) : 1;
  return v > 0 ? v : 1;
}

struct Node {
  std::atomic<Node*> left;
  std::atomic<Node*> right;
  std::uint64_t id;
  std::uint64_t size;  // bytes
  std::uint64_t check;
  // large nodes: a pointer word at the far end, see far_edge()
};

static_assert(sizeof(std::atomic<Node*>) == sizeof(Node*));

std::uint64_t checksum(std::uint64_t id, std::uint64_t size) { return gctest::pattern(static_cast<int>(id), size); }

constexpr std::size_t kLargeSize = 40000;

std::atomic<Node*>& far_edge(Node* n) {
  return *reinterpret_cast<std::atomic<Node*>*>(reinterpret_cast<char*>(n) + kLargeSize - 8);
}

std::atomic<long> g_bad{0};
std::atomic<long> g_finalized{0};
std::atomic<std::uint64_t> g_next_id{1};

void report_bad(const Node* n, const char* where) {
  if (g_bad.fetch_add(1) < 10)
    std::fprintf(stderr, "gc_stress_test: bad node %p (%s): id %llu size %llu check %llx\n",
                 static_cast<const void*>(n), where, static_cast<unsigned long long>(n->id),
                 static_cast<unsigned long long>(n->size), static_cast<unsigned long long>(n->check));
}

bool node_ok(const Node* n) {
  return (n->size == sizeof(Node) || n->size == kLargeSize) && n->check == checksum(n->id, n->size);
}

void node_finalizer(void* obj, void*) {
  g_finalized.fetch_add(1);
  if (!node_ok(static_cast<Node*>(obj))) report_bad(static_cast<Node*>(obj), "finalizer");
}

const mgc::Type& node_type() {
  static const mgc::Type t(sizeof(Node), {0, 8});
  return t;
}

Node* new_node(std::mt19937_64& rng) {
  const unsigned r = static_cast<unsigned>(rng() % 256);
  Node* n;
  std::uint64_t size = sizeof(Node);
  if (r == 0) {
    size = kLargeSize;
    n = static_cast<Node*>(mgc::alloc(kLargeSize));
  } else if (r < 128) {
    n = static_cast<Node*>(mgc::alloc_typed(node_type()));
  } else {
    n = static_cast<Node*>(mgc::alloc(sizeof(Node)));
  }
  n->id = g_next_id.fetch_add(1);
  n->size = size;
  n->check = checksum(n->id, size);
  if (r % 64 == 1) mgc::set_finalizer(n, node_finalizer, nullptr);
  return n;
}

// Visit up to limit nodes depth-first from n, checking each.
void walk(Node* n, int depth, int& budget) {
  if (n == nullptr || budget <= 0) return;
  budget--;
  if (!node_ok(n)) {
    report_bad(n, "walk");
    return;
  }
  if (depth == 0) return;
  walk(n->left.load(std::memory_order_acquire), depth - 1, budget);
  walk(n->right.load(std::memory_order_acquire), depth - 1, budget);
  if (n->size == kLargeSize) walk(far_edge(n).load(std::memory_order_acquire), depth - 1, budget);
}

constexpr int kMailbox = 64;
std::atomic<Node*> g_mailbox[kMailbox];  // shared between the mutators (a root in .bss)

using Roots = std::vector<Node*, mgc::allocator<Node*>>;

void mutator(int seed, long ops) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(seed) * 7919 + 1);
  Roots roots(256, nullptr);  // the vector object on this stack, its buffer in the heap
  auto pick = [&]() -> Node* {
    Node* n = roots[rng() % roots.size()];
    for (int i = 0; n != nullptr && i < 3 && (rng() & 1); i++) {
      Node* next = (rng() & 1) ? n->left.load(std::memory_order_acquire) : n->right.load(std::memory_order_acquire);
      if (next == nullptr) break;
      n = next;
    }
    return n;
  };
  for (long op = 0; op < ops; op++) {
    const unsigned what = static_cast<unsigned>(rng() % 100);
    if (what < 40) {
      Node* n = new_node(rng);
      n->left.store(pick(), std::memory_order_release);
      roots[rng() % roots.size()] = n;
    } else if (what < 65) {
      Node* from = pick();
      Node* to = pick();
      if (from != nullptr) {
        if (from->size == kLargeSize && (rng() & 1)) {
          far_edge(from).store(to, std::memory_order_release);
        } else {
          ((rng() & 1) ? from->left : from->right).store(to, std::memory_order_release);
        }
      }
    } else if (what < 72) {
      roots[rng() % roots.size()] = nullptr;
    } else if (what < 80) {
      g_mailbox[rng() % kMailbox].store(pick(), std::memory_order_release);
    } else if (what < 88) {
      Node* n = g_mailbox[rng() % kMailbox].load(std::memory_order_acquire);
      if (n != nullptr) roots[rng() % roots.size()] = n;
    } else {
      int budget = 64;
      walk(pick(), 8, budget);
    }
    if (op % 4096 == 0) {
      // all of it, now and then
      for (Node* n : roots) {
        int budget = 256;
        walk(n, 6, budget);
      }
    }
  }
}

TEST(GcStress, MutatorsUnderCollection) {
  gctest::GcPercentScope gogc(25);
  const long ops = 1500000L * scale();
  constexpr int kMutators = 3;
  std::atomic<int> running{kMutators};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMutators; i++)
    threads.emplace_back([i, ops, &running] {
      mutator(i + 1, ops);
      running.fetch_sub(1);
    });
  const std::uint64_t gc_before = mgc::stats().num_gc;
  long explicit_cycles = 0;
  while (running.load() > 0) {
    mgc::collect();
    explicit_cycles++;
    for (int i = 0; i < 200 && running.load() > 0; i++) std::this_thread::yield();
  }
  for (auto& t : threads) t.join();
  const std::uint64_t cycles = mgc::stats().num_gc - gc_before;
  for (auto& m : g_mailbox) m.store(nullptr);
  mgc::collect();
  mgc::wait_for_finalizers();
  std::printf("%llu cycles (%ld explicit), %ld finalizers ran\n", static_cast<unsigned long long>(cycles),
              explicit_cycles, g_finalized.load());
  EXPECT_EQ(g_bad.load(), 0) << "nodes with bad checksums: reclaimed while reachable, or changed";
  EXPECT_GT(cycles, 0u);
}

}  // namespace
