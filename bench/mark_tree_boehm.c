/* The stop-the-world mark of a conservative heap, through Boehm's API: a
 * complete binary tree of 16-byte GC_MALLOC objects (two pointers each,
 * built depth first, so that the mark's queue holds about one entry per
 * level), kept in a global, then N GC_gcollect() timed. Each collection
 * marks the whole tree and sweeps nothing of it.
 *
 * Linked to the system's libgc.so.1; run on mallocgc's by
 * LD_LIBRARY_PATH=<build>/boehm (the README's mark table, with
 * GC_MARKERS=1 and 2). Usage: bench_mark_tree [DEPTH [COLLECTIONS]]
 * (18 and 50); prints one JSON line. */
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include <gc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct node {
  struct node* left;
  struct node* right;
};

static struct node* g_tree;

static struct node* make_tree(int depth) {
  struct node* n = GC_MALLOC(sizeof *n);
  if (n == NULL) {
    fprintf(stderr, "bench_mark_tree: out of memory\n");
    exit(1);
  }
  if (depth > 0) {
    n->left = make_tree(depth - 1);
    n->right = make_tree(depth - 1);
  }
  return n;
}

static long count(const struct node* n) { return n == NULL ? 0 : 1 + count(n->left) + count(n->right); }

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  const int depth = argc > 1 ? atoi(argv[1]) : 18;
  const int collections = argc > 2 ? atoi(argv[2]) : 50;
  if (depth < 1 || depth > 26 || collections < 1) {
    fprintf(stderr, "usage: bench_mark_tree [DEPTH 1..26 [COLLECTIONS >= 1]]\n");
    return 2;
  }
  /* Pointers to an object's start only, as guile sets it: the mark
   * compares like with like (Boehm would otherwise pad each object). */
  GC_set_all_interior_pointers(0);
  GC_INIT();
  g_tree = make_tree(depth);
  GC_gcollect();
  const double t0 = now_s();
  for (int i = 0; i < collections; i++) GC_gcollect();
  const double t1 = now_s();
  const long nodes = count(g_tree);
  if (nodes != (2L << depth) - 1) {
    fprintf(stderr, "bench_mark_tree: the tree has %ld nodes, expected %ld\n", nodes, (2L << depth) - 1);
    return 1;
  }
  printf("{\"bench\": \"mark-tree\", \"depth\": %d, \"nodes\": %ld, \"collections\": %d, \"ms_per_collection\": %.3f}\n",
         depth, nodes, collections, (t1 - t0) / collections * 1e3);
  return 0;
}
