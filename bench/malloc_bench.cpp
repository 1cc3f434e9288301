// mallocgc's allocation benchmarks (Google Benchmark).
//
// The seed's four, on a warm heap, one allocation per benchmark iteration,
// so the time reported is nanoseconds per allocation:
//
//   Malloc8            mgc::alloc_noscan(8)     the tiny allocator
//   Malloc16           mgc::alloc_noscan(16)
//   MallocTypeInfo8    mgc::alloc_typed(Type(8, {0}))      one pointer word
//   MallocTypeInfo16   mgc::alloc_typed(Type(16, {0, 8}))  two pointer words
//
// Each result escapes into a preallocated vector of kBatch pointers. When
// the vector is full the timer is paused, every object is freed with
// mgc::free, and the timer resumes: the allocations reuse warm pages, as a
// program whose collector keeps up does, and the cost of growing the heap
// with fresh pages (a page fault per 4 KiB on the VMs we measure on) is
// left to bench_heap_growth. One pause per kBatch allocations costs well
// under a nanosecond per allocation. The vector's memory comes from the
// system malloc, which the collector does not scan: it is registered as a
// root range, so the collector (on, at its defaults) finds every kept
// object live and has nothing to reclaim; the heap stays at one batch, so
// cycles are rare. bench_malloc_threads measures Malloc8 with the collector
// reclaiming every object.
//
// Beside them, PairMgc/<size>: alloc_noscan(size) then mgc::free of the same
// object, the counterpart of bench_pairs_* (malloc + free) of the peers.
// The size is a compile-time constant, as sizeof(T) is in real callers, so
// the inline fast path folds its size-class lookup.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <vector>

#include "mallocgc/mallocgc.hpp"

namespace {

// Objects per timed batch. 1 Mi objects is 16 MiB of 16-byte objects: the
// batch is far larger than the caches, as Go's 4 MiB minimum heap goal is.
constexpr std::size_t kBatch = std::size_t{1} << 20;

void free_all(void** p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) mgc::free(p[i]);
}

// Runs alloc() once per iteration; see the file comment.
template <class Alloc>
[[gnu::always_inline]] inline void run_batched(benchmark::State& state, Alloc alloc) {
  std::vector<void*> objects(kBatch);
  void** const p = objects.data();
  mgc::add_roots(p, p + kBatch);

  // Warm up: bring the heap to the size one batch needs, touch its pages
  // and fill the thread's cache, then give everything back.
  for (std::size_t i = 0; i < kBatch; ++i) {
    p[i] = alloc();
    if (p[i] == nullptr) {
      free_all(p, i);
      mgc::remove_roots(p, p + kBatch);
      state.SkipWithError("allocation returned nullptr");
      return;
    }
  }
  free_all(p, kBatch);

  std::size_t i = 0;
  for (auto _ : state) {
    p[i] = alloc();
    if (__builtin_expect(++i == kBatch, 0)) {
      state.PauseTiming();
      free_all(p, i);
      i = 0;
      state.ResumeTiming();
    }
  }
  free_all(p, i);
  mgc::remove_roots(p, p + kBatch);
  state.SetItemsProcessed(state.iterations());
}

void Malloc8(benchmark::State& state) {
  run_batched(state, [] { return mgc::alloc_noscan(8); });
}

void Malloc16(benchmark::State& state) {
  run_batched(state, [] { return mgc::alloc_noscan(16); });
}

void MallocTypeInfo8(benchmark::State& state) {
  static const mgc::Type t1(8, {0});
  run_batched(state, [] { return mgc::alloc_typed(t1); });
}

void MallocTypeInfo16(benchmark::State& state) {
  static const mgc::Type t2(16, {0, 8});
  run_batched(state, [] { return mgc::alloc_typed(t2); });
}

BENCHMARK(Malloc8);
BENCHMARK(Malloc16);
BENCHMARK(MallocTypeInfo8);
BENCHMARK(MallocTypeInfo16);

template <std::size_t N>
void PairMgc(benchmark::State& state) {
  for (auto _ : state) {
    void* p = mgc::alloc_noscan(N);
    benchmark::DoNotOptimize(p);
    mgc::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// Registered under the names the peers use: PairMgc/8 beside Pair/8.
[[maybe_unused]] const bool registered_pairs = [] {
  benchmark::RegisterBenchmark("PairMgc/8", PairMgc<8>);
  benchmark::RegisterBenchmark("PairMgc/16", PairMgc<16>);
  benchmark::RegisterBenchmark("PairMgc/64", PairMgc<64>);
  benchmark::RegisterBenchmark("PairMgc/256", PairMgc<256>);
  return true;
}();

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("allocator", "mallocgc");
  benchmark::AddCustomContext("batch", std::to_string(kBatch));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
