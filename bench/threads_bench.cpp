// Malloc8 from one thread and from two at once (Google Benchmark): does
// allocation scale with threads? The target is two threads' aggregate
// throughput at least 1.8x one thread's.
//
//   Malloc8Threads/real_time/threads:N       collector on, nothing kept:
//       mgc::alloc_noscan(8) per iteration and the result dropped, so the
//       collector reclaims it, as Go's b.RunParallel Malloc8 measures
//   Malloc8ThreadsWarm/real_time/threads:N   the allocator alone: each
//       thread keeps its results and frees them, untimed, every 2^20
//       allocations (as bench_malloc's Malloc8; the batch is a root
//       range, so cycles find it live and have nothing to reclaim)
//
// Run with ->UseRealTime(): the time per iteration is wall time divided by
// the iterations of all threads together, so ns/op(1 thread) / ns/op(2
// threads) is the scaling ratio (items_per_second is the aggregate rate).
// Each thread registers itself with mallocgc at its first allocation.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mallocgc/mallocgc.hpp"

namespace {

// A collector that does not collect would let Malloc8Threads take all the
// machine's memory (about 1.6 GiB a second): every kGuardEvery
// allocations, stop the run when the peak RSS is over kGuardKiB.
constexpr std::uint64_t kGuardEvery = std::uint64_t{1} << 20;
constexpr long kGuardKiB = 2L << 20;  // 2 GiB

bool rss_over_limit() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss > kGuardKiB;
}

void Malloc8Threads(benchmark::State& state) {
  std::uint64_t n = 0;
  for (auto _ : state) {
    void* p = mgc::alloc_noscan(8);
    benchmark::DoNotOptimize(p);
    if (__builtin_expect(++n % kGuardEvery == 0, 0) && rss_over_limit()) {
      state.SkipWithError("peak RSS over 2 GiB: is the collector collecting?");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

constexpr std::size_t kBatch = std::size_t{1} << 20;

void Malloc8ThreadsWarm(benchmark::State& state) {
  std::vector<void*> objects(kBatch);
  void** const p = objects.data();
  mgc::add_roots(p, p + kBatch);  // system malloc memory is not scanned
  // Warm up this thread's cache and pages, as bench_malloc does.
  for (std::size_t i = 0; i < kBatch; ++i) p[i] = mgc::alloc_noscan(8);
  for (std::size_t i = 0; i < kBatch; ++i) mgc::free(p[i]);

  std::size_t i = 0;
  for (auto _ : state) {
    p[i] = mgc::alloc_noscan(8);
    if (__builtin_expect(++i == kBatch, 0)) {
      state.PauseTiming();
      for (std::size_t k = 0; k < i; ++k) mgc::free(p[k]);
      i = 0;
      state.ResumeTiming();
    }
  }
  for (std::size_t k = 0; k < i; ++k) mgc::free(p[k]);
  mgc::remove_roots(p, p + kBatch);
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(Malloc8Threads)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(Malloc8ThreadsWarm)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("allocator", "mallocgc");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
