// binary-trees and GCBench written once for the C++ programs, over a heap
// policy: bench_workloads_mgc (mallocgc, collected, nothing freed) and
// bench_workloads_mimalloc (mi_malloc + mi_free of every node, the floor).
// bench/workloads_boehm.c is the same code in C for Boehm GC and
// bench/go/workloads the same in Go; keep the four in step.
//
// A heap policy H provides:
//
//   static constexpr const char* kName;        the "system" of the report
//   static constexpr bool kFreesExplicitly;    free_tree after each use?
//   T* alloc<T>()          uninitialized (every field is then written)
//   T* alloc_zeroed<T>()   all fields zero
//   double* alloc_doubles(n)   zeroed, never scanned
//   void free(void*)       (only called when kFreesExplicitly)
//   void fill_report(gcw_result&)   collector figures, or gc_cycles = -1
//
// Each allocation that fails aborts the program.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gc_workload.h"

namespace bench {

[[noreturn, gnu::cold]] inline void out_of_memory(const char* what) {
  std::fprintf(stderr, "out of memory allocating %s\n", what);
  std::abort();
}

// --- binary-trees ----------------------------------------------------------
// The Benchmarks Game's binary-trees, one thread: a stretch tree of depth
// max+1, a long-lived tree of depth max, and 2^(max - d + 4) short-lived
// trees of each even depth d from 4 to max, each built bottom-up, walked
// (check = its node count) and dropped.

struct TreeNode {
  TreeNode* left;
  TreeNode* right;
};

template <class H>
TreeNode* bottom_up_tree(H& h, int depth) {
  TreeNode* left = nullptr;
  TreeNode* right = nullptr;
  if (depth > 0) {
    left = bottom_up_tree(h, depth - 1);
    right = bottom_up_tree(h, depth - 1);
  }
  TreeNode* n = h.template alloc<TreeNode>();
  n->left = left;
  n->right = right;
  return n;
}

inline long item_check(const TreeNode* n) {
  return n->left == nullptr ? 1 : 1 + item_check(n->left) + item_check(n->right);
}

template <class H, class Node>
void free_tree(H& h, Node* n) {
  if (n == nullptr) return;
  free_tree(h, n->left);
  free_tree(h, n->right);
  h.free(n);
}

// Runs binary-trees and returns the sum of every check it prints.
template <class H>
long long binary_trees(H& h, int n) {
  constexpr int kMinDepth = 4;
  const int max_depth = n < kMinDepth + 2 ? kMinDepth + 2 : n;
  const int stretch_depth = max_depth + 1;
  long long total = 0;

  {
    TreeNode* stretch = bottom_up_tree(h, stretch_depth);
    const long check = item_check(stretch);
    std::printf("stretch tree of depth %d\t check: %ld\n", stretch_depth, check);
    total += check;
    if constexpr (H::kFreesExplicitly) free_tree(h, stretch);
  }
  gcw_guard_rss();

  TreeNode* long_lived = bottom_up_tree(h, max_depth);

  for (int d = kMinDepth; d <= max_depth; d += 2) {
    const long iterations = 1L << (max_depth - d + kMinDepth);
    // Look at the peak RSS about once per million nodes.
    const long guard_mask = (d + 1 >= 20 ? 1L : 1L << (20 - (d + 1))) - 1;
    long check = 0;
    for (long i = 1; i <= iterations; ++i) {
      TreeNode* t = bottom_up_tree(h, d);
      check += item_check(t);
      if constexpr (H::kFreesExplicitly) free_tree(h, t);
      if ((i & guard_mask) == 0) gcw_guard_rss();
    }
    std::printf("%ld\t trees of depth %d\t check: %ld\n", iterations, d, check);
    total += check;
  }

  const long check = item_check(long_lived);
  std::printf("long lived tree of depth %d\t check: %ld\n", max_depth, check);
  total += check;
  if constexpr (H::kFreesExplicitly) free_tree(h, long_lived);
  return total;
}

// --- GCBench ----------------------------------------------------------------
// Boehm and Ellis's GCBench (the classic C version, GCBench.c), at its
// classic sizes: a stretch tree of depth 18, a long-lived tree of depth 16
// and a long-lived array of 500,000 doubles, then trees of depth 4 to 16
// built top-down (Populate) and bottom-up (MakeTree), as many of each
// depth as make twice the stretch tree's nodes. The collector settings of
// the original (GC_full_freq, GC_free_space_divisor, incremental mode) are
// left at their defaults, as everywhere in these benchmarks.

struct GCBenchNode {
  GCBenchNode* left;
  GCBenchNode* right;
  int i, j;
};

constexpr int kStretchTreeDepth = 18;    // about 16 MiB
constexpr int kLongLivedTreeDepth = 16;  // about 4 MiB
constexpr int kArraySize = 500000;       // about 4 MiB
constexpr int kMinTreeDepth = 4;
constexpr int kMaxTreeDepth = 16;

constexpr int tree_size(int i) { return (1 << (i + 1)) - 1; }
constexpr int num_iters(int i) { return 2 * tree_size(kStretchTreeDepth) / tree_size(i); }

// Build a tree top-down, assigning to older objects.
template <class H>
void populate(H& h, int depth, GCBenchNode* node) {
  if (depth <= 0) return;
  --depth;
  node->left = h.template alloc_zeroed<GCBenchNode>();
  node->right = h.template alloc_zeroed<GCBenchNode>();
  populate(h, depth, node->left);
  populate(h, depth, node->right);
}

// Build a tree bottom-up.
template <class H>
GCBenchNode* make_tree(H& h, int depth) {
  if (depth <= 0) return h.template alloc_zeroed<GCBenchNode>();
  GCBenchNode* left = make_tree(h, depth - 1);
  GCBenchNode* right = make_tree(h, depth - 1);
  GCBenchNode* result = h.template alloc_zeroed<GCBenchNode>();
  result->left = left;
  result->right = right;
  return result;
}

inline long count_nodes(const GCBenchNode* n) {
  return n == nullptr ? 0 : 1 + count_nodes(n->left) + count_nodes(n->right);
}

template <class H>
void time_construction(H& h, int depth) {
  const int iters = num_iters(depth);
  std::printf("Creating %d trees of depth %d\n", iters, depth);
  double t0 = gcw_now();
  for (int i = 0; i < iters; ++i) {
    GCBenchNode* temp = h.template alloc_zeroed<GCBenchNode>();
    populate(h, depth, temp);
    if constexpr (H::kFreesExplicitly) free_tree(h, temp);
  }
  std::printf("\tTop down construction took %.0f msec\n", (gcw_now() - t0) * 1e3);
  t0 = gcw_now();
  for (int i = 0; i < iters; ++i) {
    GCBenchNode* temp = make_tree(h, depth);
    if constexpr (H::kFreesExplicitly) free_tree(h, temp);
  }
  std::printf("\tBottom up construction took %.0f msec\n", (gcw_now() - t0) * 1e3);
  gcw_guard_rss();
}

// Runs GCBench; returns the long-lived tree's node count (tree_size(16)).
template <class H>
long long gcbench(H& h) {
  std::printf("Garbage Collector Test\n");
  std::printf(" Live storage will peak at %zu bytes.\n\n",
              2 * sizeof(GCBenchNode) * tree_size(kLongLivedTreeDepth) + sizeof(double) * kArraySize);
  std::printf(" Stretching memory with a binary tree of depth %d\n", kStretchTreeDepth);
  {
    GCBenchNode* temp = make_tree(h, kStretchTreeDepth);
    if constexpr (H::kFreesExplicitly) free_tree(h, temp);
  }

  std::printf(" Creating a long-lived binary tree of depth %d\n", kLongLivedTreeDepth);
  GCBenchNode* long_lived = h.template alloc_zeroed<GCBenchNode>();
  populate(h, kLongLivedTreeDepth, long_lived);

  std::printf(" Creating a long-lived array of %d doubles\n", kArraySize);
  double* array = h.alloc_doubles(kArraySize);
  for (int i = 0; i < kArraySize / 2; ++i) array[i] = 1.0 / i;

  for (int d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) time_construction(h, d);

  // The classic's "fake reference" that keeps both alive to the end.
  const long nodes = count_nodes(long_lived);
  if (nodes != tree_size(kLongLivedTreeDepth) || array[1000] != 1.0 / 1000) {
    std::fprintf(stderr, "GCBench failed: the long-lived tree or array was damaged\n");
    std::exit(1);
  }
  if constexpr (H::kFreesExplicitly) {
    free_tree(h, long_lived);
    h.free(array);
  }
  return nodes;
}

// main() of bench_workloads_*: "binary-trees [depth]" or "gcbench".
template <class H>
int workload_main(H& h, double start, int argc, char** argv) {
  const char* bench = argc >= 2 ? argv[1] : "";
  gcw_result r{};
  r.stall_max_ms = -1;  // fill_report sets it where the system reports it
  r.system = H::kName;
  r.bench = bench;
  if (std::strcmp(bench, "binary-trees") == 0 && gcw_param(argc, argv, 21, &r.param)) {
    r.check = binary_trees(h, r.param);
  } else if (std::strcmp(bench, "gcbench") == 0 && argc == 2) {
    r.param = kMaxTreeDepth;
    r.check = gcbench(h);
  } else {
    std::fprintf(stderr, "usage: %s binary-trees [depth (21)] | gcbench\n", argv[0]);
    return 2;
  }
  r.wall_s = gcw_now() - start;
  h.fill_report(r);
  gcw_print(&r);
  return 0;
}

}  // namespace bench
