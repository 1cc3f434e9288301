/* binary-trees and GCBench on Boehm-Demers-Weiser GC (libgc-dev), in C.
 *
 *   bench_workloads_boehm binary-trees [depth (21)]
 *   bench_workloads_boehm gcbench
 *
 * Boehm as a C program uses it: GC_THREADS (defined by bench/CMakeLists.txt),
 * GC_INIT() first, default settings (GC_* environment variables of libgc
 * apply), nodes from GC_MALLOC (conservatively scanned), the GCBench array
 * from GC_MALLOC_ATOMIC, nothing freed by hand. The same algorithms as
 * bench/gc_workloads.hpp; keep them in step.
 *
 * Pauses: a collection event callback timestamps GC_EVENT_START and
 * GC_EVENT_END. Between the two the collector holds the allocation lock
 * (and stops the world to mark), so no thread allocates: that interval is
 * the pause an allocating program sees. Every pause is kept (up to
 * kMaxPauses), so the percentiles cover the whole run. Prints the
 * workload's usual lines, then one line of JSON (bench/gc_workload.h). */
#include <gc/gc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc_workload.h"

/* --- pauses ------------------------------------------------------------- */

enum { kMaxPauses = 1 << 16 };
static uint64_t pauses_ns[kMaxPauses];
static size_t npauses;
static uint64_t pause_total_ns;
static uint64_t pause_start_ns;

/* Called with the allocation lock held: must not allocate. */
static void GC_CALLBACK on_collection_event(GC_EventType e) {
  if (e == GC_EVENT_START) {
    pause_start_ns = gcw_now_ns();
  } else if (e == GC_EVENT_END && pause_start_ns != 0) {
    const uint64_t ns = gcw_now_ns() - pause_start_ns;
    pause_start_ns = 0;
    pause_total_ns += ns;
    if (npauses < kMaxPauses) pauses_ns[npauses++] = ns;
  }
}

static void out_of_memory(const char* what) {
  fprintf(stderr, "out of memory allocating %s\n", what);
  abort();
}

/* --- binary-trees ------------------------------------------------------- */

typedef struct TreeNode {
  struct TreeNode* left;
  struct TreeNode* right;
} TreeNode;

static TreeNode* bottom_up_tree(int depth) {
  TreeNode* left = NULL;
  TreeNode* right = NULL;
  TreeNode* n;
  if (depth > 0) {
    left = bottom_up_tree(depth - 1);
    right = bottom_up_tree(depth - 1);
  }
  n = (TreeNode*)GC_MALLOC(sizeof(TreeNode));
  if (n == NULL) out_of_memory("a node");
  n->left = left;
  n->right = right;
  return n;
}

static long item_check(const TreeNode* n) {
  return n->left == NULL ? 1 : 1 + item_check(n->left) + item_check(n->right);
}

static long long binary_trees(int n) {
  const int min_depth = 4;
  const int max_depth = n < min_depth + 2 ? min_depth + 2 : n;
  const int stretch_depth = max_depth + 1;
  long long total = 0;
  TreeNode* long_lived;
  long check;
  int d;

  check = item_check(bottom_up_tree(stretch_depth));
  printf("stretch tree of depth %d\t check: %ld\n", stretch_depth, check);
  total += check;
  gcw_guard_rss();

  long_lived = bottom_up_tree(max_depth);

  for (d = min_depth; d <= max_depth; d += 2) {
    const long iterations = 1L << (max_depth - d + min_depth);
    const long guard_mask = (d + 1 >= 20 ? 1L : 1L << (20 - (d + 1))) - 1;
    long i;
    check = 0;
    for (i = 1; i <= iterations; ++i) {
      check += item_check(bottom_up_tree(d));
      if ((i & guard_mask) == 0) gcw_guard_rss();
    }
    printf("%ld\t trees of depth %d\t check: %ld\n", iterations, d, check);
    total += check;
  }

  check = item_check(long_lived);
  printf("long lived tree of depth %d\t check: %ld\n", max_depth, check);
  return total + check;
}

/* --- GCBench ------------------------------------------------------------ */

typedef struct GCBenchNode {
  struct GCBenchNode* left;
  struct GCBenchNode* right;
  int i, j;
} GCBenchNode;

enum {
  kStretchTreeDepth = 18,   /* about 16 MiB */
  kLongLivedTreeDepth = 16, /* about 4 MiB */
  kArraySize = 500000,      /* about 4 MiB */
  kMinTreeDepth = 4,
  kMaxTreeDepth = 16
};

static int tree_size(int i) { return (1 << (i + 1)) - 1; }
static int num_iters(int i) { return 2 * tree_size(kStretchTreeDepth) / tree_size(i); }

static GCBenchNode* new_node(void) {
  GCBenchNode* n = (GCBenchNode*)GC_MALLOC(sizeof(GCBenchNode));
  if (n == NULL) out_of_memory("a node");
  return n;
}

/* Build a tree top-down, assigning to older objects. */
static void populate(int depth, GCBenchNode* node) {
  if (depth <= 0) return;
  --depth;
  node->left = new_node();
  node->right = new_node();
  populate(depth, node->left);
  populate(depth, node->right);
}

/* Build a tree bottom-up. */
static GCBenchNode* make_tree(int depth) {
  GCBenchNode *left, *right, *result;
  if (depth <= 0) return new_node();
  left = make_tree(depth - 1);
  right = make_tree(depth - 1);
  result = new_node();
  result->left = left;
  result->right = right;
  return result;
}

static long count_nodes(const GCBenchNode* n) {
  return n == NULL ? 0 : 1 + count_nodes(n->left) + count_nodes(n->right);
}

static void time_construction(int depth) {
  const int iters = num_iters(depth);
  double t0;
  int i;
  printf("Creating %d trees of depth %d\n", iters, depth);
  t0 = gcw_now();
  for (i = 0; i < iters; ++i) populate(depth, new_node());
  printf("\tTop down construction took %.0f msec\n", (gcw_now() - t0) * 1e3);
  t0 = gcw_now();
  for (i = 0; i < iters; ++i) make_tree(depth);
  printf("\tBottom up construction took %.0f msec\n", (gcw_now() - t0) * 1e3);
  gcw_guard_rss();
}

static long long gcbench(void) {
  GCBenchNode* long_lived;
  double* array;
  long nodes;
  int i, d;

  printf("Garbage Collector Test\n");
  printf(" Live storage will peak at %zu bytes.\n\n",
         2 * sizeof(GCBenchNode) * (size_t)tree_size(kLongLivedTreeDepth) + sizeof(double) * kArraySize);
  printf(" Stretching memory with a binary tree of depth %d\n", kStretchTreeDepth);
  make_tree(kStretchTreeDepth);

  printf(" Creating a long-lived binary tree of depth %d\n", kLongLivedTreeDepth);
  long_lived = new_node();
  populate(kLongLivedTreeDepth, long_lived);

  printf(" Creating a long-lived array of %d doubles\n", kArraySize);
  array = (double*)GC_MALLOC_ATOMIC(sizeof(double) * kArraySize);
  if (array == NULL) out_of_memory("the array");
  memset(array, 0, sizeof(double) * kArraySize); /* GC_MALLOC_ATOMIC does not zero */
  for (i = 0; i < kArraySize / 2; ++i) array[i] = 1.0 / i;

  for (d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) time_construction(d);

  /* The classic's "fake reference" that keeps both alive to the end. */
  nodes = count_nodes(long_lived);
  if (nodes != tree_size(kLongLivedTreeDepth) || array[1000] != 1.0 / 1000) {
    fprintf(stderr, "GCBench failed: the long-lived tree or array was damaged\n");
    exit(1);
  }
  return nodes;
}

/* --- main --------------------------------------------------------------- */

int main(int argc, char** argv) {
  const double start = gcw_now();
  const char* bench = argc >= 2 ? argv[1] : "";
  gcw_result r;
  GC_word gc_before;

  GC_INIT();
  GC_set_on_collection_event(on_collection_event);
  /* Collections during GC_INIT are not the workload's. */
  gc_before = GC_get_gc_no();
  npauses = 0;
  pause_total_ns = 0;

  memset(&r, 0, sizeof r);
  r.stall_max_ms = -1; /* not reported */
  r.system = "boehm";
  r.bench = bench;
  if (strcmp(bench, "binary-trees") == 0 && gcw_param(argc, argv, 21, &r.param)) {
    r.check = binary_trees(r.param);
  } else if (strcmp(bench, "gcbench") == 0 && argc == 2) {
    r.param = kMaxTreeDepth;
    r.check = gcbench();
  } else {
    fprintf(stderr, "usage: %s binary-trees [depth (21)] | gcbench\n", argv[0]);
    return 2;
  }
  r.wall_s = gcw_now() - start;
  r.gc_cycles = (long long)(GC_get_gc_no() - gc_before);
  r.pauses_ns = pauses_ns;
  r.npauses = npauses;
  r.pause_total_ns = pause_total_ns;
  gcw_print(&r);
  return 0;
}
