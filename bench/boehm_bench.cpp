// The seed's four on Boehm-Demers-Weiser GC (libgc-dev), Google Benchmark.
//
// Boehm as a program uses it: GC_THREADS (defined by bench/CMakeLists.txt),
// GC_INIT() at the start of main, default settings (GC_INITIAL_HEAP_SIZE and
// the other GC_* environment variables of libgc apply), the collector on,
// nothing freed by hand. Each result is stored to a global so that it
// escapes; the names match malloc_bench.cpp and bench/go:
//
//   Malloc8            GC_MALLOC_ATOMIC(8)
//   Malloc16           GC_MALLOC_ATOMIC(16)
//   MallocTypeInfo8    GC_malloc_explicitly_typed(8, d1)   one pointer word
//   MallocTypeInfo16   GC_malloc_explicitly_typed(16, d2)  two pointer words
//
// The counter `collections` is the number of collections per benchmark run.
//
// Beside them, as bench_malloc_threads measures mallocgc:
//
//   Malloc8Threads/real_time/threads:N   GC_MALLOC_ATOMIC(8) from N threads
//                                        at once, ns per allocation of all
//                                        threads together
//
// Google Benchmark's threads are not made by GC_pthread_create: each
// registers itself for the run (GC_allow_register_threads in main).
#include <benchmark/benchmark.h>
#include <gc/gc.h>
#include <gc/gc_typed.h>

#include <string>

namespace {

void* volatile sink;

struct OnePointer {
  void* p;
};
struct TwoPointers {
  void* p;
  void* q;
};

GC_descr d1;
GC_descr d2;

void make_descriptors() {
  GC_word bm1[GC_BITMAP_SIZE(OnePointer)] = {0};
  GC_set_bit(bm1, GC_WORD_OFFSET(OnePointer, p));
  d1 = GC_make_descriptor(bm1, GC_WORD_LEN(OnePointer));

  GC_word bm2[GC_BITMAP_SIZE(TwoPointers)] = {0};
  GC_set_bit(bm2, GC_WORD_OFFSET(TwoPointers, p));
  GC_set_bit(bm2, GC_WORD_OFFSET(TwoPointers, q));
  d2 = GC_make_descriptor(bm2, GC_WORD_LEN(TwoPointers));
}

template <class Alloc>
void run(benchmark::State& state, Alloc alloc) {
  const GC_word gc_before = GC_get_gc_no();
  for (auto _ : state) sink = alloc();
  state.counters["collections"] = static_cast<double>(GC_get_gc_no() - gc_before);
  state.SetItemsProcessed(state.iterations());
}

void Malloc8(benchmark::State& state) {
  run(state, [] { return GC_MALLOC_ATOMIC(8); });
}

void Malloc16(benchmark::State& state) {
  run(state, [] { return GC_MALLOC_ATOMIC(16); });
}

void MallocTypeInfo8(benchmark::State& state) {
  run(state, [] { return GC_malloc_explicitly_typed(sizeof(OnePointer), d1); });
}

void MallocTypeInfo16(benchmark::State& state) {
  run(state, [] { return GC_malloc_explicitly_typed(sizeof(TwoPointers), d2); });
}

void Malloc8Threads(benchmark::State& state) {
  const bool was_registered = GC_thread_is_registered() != 0;
  if (!was_registered) {
    GC_stack_base sb;
    if (GC_get_stack_base(&sb) != GC_SUCCESS) {
      state.SkipWithError("GC_get_stack_base failed");
      return;
    }
    GC_register_my_thread(&sb);
  }
  const GC_word gc_before = GC_get_gc_no();
  // A store to a shared global from both threads would measure false
  // sharing: DoNotOptimize keeps the (opaque) call and drops the result.
  for (auto _ : state) benchmark::DoNotOptimize(GC_MALLOC_ATOMIC(8));
  if (state.thread_index() == 0) state.counters["collections"] = static_cast<double>(GC_get_gc_no() - gc_before);
  state.SetItemsProcessed(state.iterations());
  if (!was_registered) GC_unregister_my_thread();
}

BENCHMARK(Malloc8);
BENCHMARK(Malloc16);
BENCHMARK(MallocTypeInfo8);
BENCHMARK(MallocTypeInfo16);
BENCHMARK(Malloc8Threads)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  GC_INIT();
  GC_allow_register_threads();
  make_descriptors();
  const unsigned v = GC_get_version();
  benchmark::AddCustomContext("allocator", "boehm " + std::to_string(v >> 16) + "." + std::to_string((v >> 8) & 0xff) +
                                               "." + std::to_string(v & 0xff));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
