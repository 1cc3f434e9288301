// mallocgc's allocation benchmarks (Google Benchmark).
//
// The seed's four, one allocation per benchmark iteration, so the time
// reported is nanoseconds per allocation, with the collector on at its
// default pacing (GOGC=100) reclaiming what the loop drops:
//
//   Malloc8            mgc::alloc_noscan(8)     the tiny allocator
//   Malloc16           mgc::alloc_noscan(16)
//   MallocTypeInfo8    mgc::alloc_typed(Type(8, {0}))      one pointer word
//   MallocTypeInfo16   mgc::alloc_typed(Type(16, {0, 8}))  two pointer words
//
// Each result is stored to a global, as Go's escaping benchmark bodies
// (bench/go/malloc_test.go) and the Boehm GC versions (boehm_bench.cpp) do:
// every object is garbage once the next one is stored, and the cost of
// collecting it is in the figure. The counter `collections` is the number
// of cycles per benchmark run.
//
// Beside them, PairMgc/<size>: alloc_noscan(size) then mgc::free of the same
// object, the counterpart of bench_pairs_* (malloc + free) of the peers.
// The size is a compile-time constant, as sizeof(T) is in real callers, so
// the inline fast path folds its size-class lookup.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>

#include "mallocgc/mallocgc.hpp"

namespace {

void* volatile sink;

template <class Alloc>
[[gnu::always_inline]] inline void run(benchmark::State& state, Alloc alloc) {
  const std::uint64_t gc_before = mgc::stats().num_gc;
  for (auto _ : state) sink = alloc();
  state.counters["collections"] = static_cast<double>(mgc::stats().num_gc - gc_before);
  state.SetItemsProcessed(state.iterations());
}

void Malloc8(benchmark::State& state) {
  run(state, [] { return mgc::alloc_noscan(8); });
}

void Malloc16(benchmark::State& state) {
  run(state, [] { return mgc::alloc_noscan(16); });
}

void MallocTypeInfo8(benchmark::State& state) {
  static const mgc::Type t1(8, {0});
  run(state, [] { return mgc::alloc_typed(t1); });
}

void MallocTypeInfo16(benchmark::State& state) {
  static const mgc::Type t2(16, {0, 8});
  run(state, [] { return mgc::alloc_typed(t2); });
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
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
