// binary-trees and GCBench on mimalloc with every node freed by hand
// (mi_malloc + mi_free, no collector): the floor that a collector's
// figures are measured against.
//
//   bench_workloads_mimalloc binary-trees [depth (21)]
//   bench_workloads_mimalloc gcbench
//
// Each tree is freed, node by node, as soon as the workload drops it.
// Prints the workload's usual lines, then one line of JSON
// (bench/gc_workload.h) with null for the collector's fields.
#include <mimalloc.h>

#include <cstddef>

#include "gc_workloads.hpp"

namespace {

struct MimallocHeap {
  static constexpr const char* kName = "mimalloc";
  static constexpr bool kFreesExplicitly = true;

  template <class T>
  [[gnu::always_inline]] T* alloc() {
    void* p = mi_malloc(sizeof(T));
    if (__builtin_expect(p == nullptr, 0)) bench::out_of_memory("a node");
    return static_cast<T*>(p);
  }
  template <class T>
  [[gnu::always_inline]] T* alloc_zeroed() {
    void* p = mi_zalloc(sizeof(T));
    if (__builtin_expect(p == nullptr, 0)) bench::out_of_memory("a node");
    return static_cast<T*>(p);
  }
  double* alloc_doubles(std::size_t n) {
    void* p = mi_zalloc(n * sizeof(double));
    if (p == nullptr) bench::out_of_memory("the array");
    return static_cast<double*>(p);
  }
  void free(void* p) { mi_free(p); }

  void fill_report(gcw_result& r) { r.gc_cycles = -1; }
};

}  // namespace

int main(int argc, char** argv) {
  const double start = gcw_now();
  MimallocHeap heap;
  return bench::workload_main(heap, start, argc, argv);
}
