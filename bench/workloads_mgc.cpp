// binary-trees and GCBench on mallocgc, with the collector on at its
// default pacing (GOGC=100) and nothing freed by hand.
//
//   bench_workloads_mgc binary-trees [depth (21)]
//   bench_workloads_mgc gcbench
//
// Nodes are typed allocations (mgc::alloc_typed with an mgc::Type naming
// their two pointer words), as a language runtime would allocate them; the
// GCBench array of doubles is noscan. Prints the workload's usual lines,
// then one line of JSON (bench/gc_workload.h): wall and CPU time, peak RSS,
// cycles, and the longest and 99th-percentile pause from mgc::stats(),
// whose ring keeps the last 256 pauses.
#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "gc_workloads.hpp"
#include "mallocgc/mallocgc.hpp"

namespace {

struct MgcHeap {
  static constexpr const char* kName = "mallocgc";
  static constexpr bool kFreesExplicitly = false;

  // The layouts, made once in main (not at static initialization, which
  // may run before the library's).
  const mgc::Type tree_node{sizeof(bench::TreeNode),
                            {offsetof(bench::TreeNode, left), offsetof(bench::TreeNode, right)}};
  const mgc::Type gcbench_node{sizeof(bench::GCBenchNode),
                               {offsetof(bench::GCBenchNode, left), offsetof(bench::GCBenchNode, right)}};

  template <class T>
  const mgc::Type& type_of() const {
    if constexpr (std::is_same_v<T, bench::TreeNode>) {
      return tree_node;
    } else {
      static_assert(std::is_same_v<T, bench::GCBenchNode>);
      return gcbench_node;
    }
  }

  // Typed memory is zeroed: alloc and alloc_zeroed are one call.
  template <class T>
  [[gnu::always_inline]] T* alloc() {
    void* p = mgc::alloc_typed(type_of<T>());
    if (__builtin_expect(p == nullptr, 0)) bench::out_of_memory("a node");
    return static_cast<T*>(p);
  }
  template <class T>
  [[gnu::always_inline]] T* alloc_zeroed() {
    return alloc<T>();
  }
  double* alloc_doubles(std::size_t n) {
    void* p = mgc::alloc_noscan(n * sizeof(double));
    if (p == nullptr) bench::out_of_memory("the array");
    return static_cast<double*>(p);
  }
  void free(void*) {}

  void fill_report(gcw_result& r) {
    const mgc::Stats s = mgc::stats();
    const std::uint64_t n = s.num_gc < s.pause_ns.size() ? s.num_gc : s.pause_ns.size();
    for (std::uint64_t i = 0; i < n; ++i) pauses[i] = s.pause_ns[(s.num_gc - 1 - i) % s.pause_ns.size()];
    r.gc_cycles = static_cast<long long>(s.num_gc);
    r.pauses_ns = pauses.data();
    r.npauses = n;
    r.pause_total_ns = s.pause_total_ns;
    r.stall_max_ms = static_cast<double>(s.gc_stall_max_ns) * 1e-6;
  }
  std::array<std::uint64_t, 256> pauses{};
};

}  // namespace

int main(int argc, char** argv) {
  const double start = gcw_now();
  MgcHeap heap;
  return bench::workload_main(heap, start, argc, argv);
}
