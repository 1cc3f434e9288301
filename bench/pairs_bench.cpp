// Allocate + free of one object on a peer allocator (Google Benchmark):
// Pair/<size> for sizes 8, 16, 64 and 256, nanoseconds per pair.
//
// Built once per peer (bench/CMakeLists.txt), so that each executable has
// one allocator owning malloc: glibc's own, or jemalloc / tcmalloc linked
// ahead of libc. mimalloc is called by its own names (PAIRS_MIMALLOC).
// The calls go through the PLT, as a program's calls to malloc do. The
// executable reports, as the benchmark context `malloc_from`, the shared
// object its allocation function resolved to, so that a peer that silently
// fell back to glibc shows.
//
// mallocgc's counterpart is PairMgc/<size> in malloc_bench.cpp.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstddef>
#include <cstdlib>
#include <string>

#if defined(PAIRS_MIMALLOC)
#include <mimalloc.h>
#define PAIRS_MALLOC mi_malloc
#define PAIRS_FREE mi_free
#else
#define PAIRS_MALLOC std::malloc
#define PAIRS_FREE std::free
#endif

#define PAIRS_STR2(x) #x
#define PAIRS_STR(x) PAIRS_STR2(x)

namespace {

template <std::size_t N>
void Pair(benchmark::State& state) {
  for (auto _ : state) {
    void* p = PAIRS_MALLOC(N);
    benchmark::DoNotOptimize(p);  // p escapes: the pair cannot be elided
    PAIRS_FREE(p);
  }
  state.SetItemsProcessed(state.iterations());
}

[[maybe_unused]] const bool registered = [] {
  benchmark::RegisterBenchmark("Pair/8", Pair<8>);
  benchmark::RegisterBenchmark("Pair/16", Pair<16>);
  benchmark::RegisterBenchmark("Pair/64", Pair<64>);
  benchmark::RegisterBenchmark("Pair/256", Pair<256>);
  return true;
}();

// The file name of the shared object that defines the allocation function
// this executable calls.
std::string malloc_from() {
  void* (*fn)(std::size_t) = PAIRS_MALLOC;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(fn), &info) == 0 || info.dli_fname == nullptr) return "unknown";
  return info.dli_fname;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("allocator", PAIRS_STR(PAIRS_PEER));
  benchmark::AddCustomContext("malloc_from", malloc_from());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
