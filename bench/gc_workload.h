/* The report of one run of a collector workload (binary-trees, GCBench),
 * shared by the C and C++ programs bench_workloads_* so that every system
 * is timed and printed the same way; bench/go/workloads prints the same
 * fields. tools/bench_table.py parses the last line of stdout:
 *
 *   {"bench": "binary-trees", "param": 21, "system": "mallocgc",
 *    "wall_s": 9.1, "cpu_s": 9.6, "user_s": 9.0, "sys_s": 0.6,
 *    "peak_rss_mib": 80.5, "gc_cycles": 130, "pauses": 130,
 *    "pause_max_ms": 3.1, "pause_p99_ms": 2.9, "pause_total_ms": 200.0,
 *    "check": 4194303}
 *
 * wall_s: monotonic clock from the start of main to the end of the work.
 * cpu_s = user_s + sys_s: getrusage(RUSAGE_SELF), every thread of the
 * process (collector threads included). peak_rss_mib: ru_maxrss.
 * gc_cycles: collections during the run. pauses: how many pauses the
 * maximum and the 99th percentile (nearest rank) cover, which is fewer
 * than gc_cycles when the system keeps only the last ones (mallocgc and Go:
 * 256). pause_total_ms: every pause of the run. A system without a
 * collector prints null for the collector fields. check: a figure from the
 * workload's result that every system must agree on.
 *
 * C and C++; header only, every function static. */
#ifndef MALLOCGC_BENCH_GC_WORKLOAD_H
#define MALLOCGC_BENCH_GC_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double gcw_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t gcw_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Abort the run when the process's peak RSS passes BENCH_RSS_LIMIT_MIB
 * (default 4096): a collector that does not collect would otherwise take
 * the whole of a shared machine's memory (binary-trees at depth 21
 * allocates about 10 GiB in all). Called every million nodes or so; one
 * getrusage costs well under a microsecond. */
static void gcw_guard_rss(void) {
  static long limit_kib = 0;
  struct rusage ru;
  if (limit_kib == 0) {
    const char* env = getenv("BENCH_RSS_LIMIT_MIB");
    long mib = env != NULL && *env != '\0' ? strtol(env, NULL, 10) : 4096;
    limit_kib = (mib > 0 ? mib : 4096) * 1024;
  }
  getrusage(RUSAGE_SELF, &ru);
  if (ru.ru_maxrss > limit_kib) {
    fprintf(stderr, "peak RSS %ld MiB is over BENCH_RSS_LIMIT_MIB=%ld: is the collector collecting?\n",
            ru.ru_maxrss / 1024, limit_kib / 1024);
    exit(3);
  }
}

static int gcw_compare_u64(const void* a, const void* b) {
  const uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

/* One run's figures. gc_cycles < 0: no collector (the pause fields are
 * printed as null). pauses_ns may be reordered by gcw_print. */
typedef struct {
  const char* bench;
  int param;
  const char* system;
  double wall_s;
  long long gc_cycles;
  uint64_t* pauses_ns;
  size_t npauses;
  uint64_t pause_total_ns;
  /* mallocgc only (else negative, not printed): the longest time an
   * allocation waited for a cycle to end (Stats::gc_stall_max_ns). */
  double stall_max_ms;
  long long check;
} gcw_result;

static void gcw_print(gcw_result* r) {
  struct rusage ru;
  double user_s, sys_s;
  getrusage(RUSAGE_SELF, &ru);
  user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
  sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
  printf("{\"bench\": \"%s\", \"param\": %d, \"system\": \"%s\", \"wall_s\": %.4f, \"cpu_s\": %.4f, ", r->bench,
         r->param, r->system, r->wall_s, user_s + sys_s);
  printf("\"user_s\": %.4f, \"sys_s\": %.4f, \"peak_rss_mib\": %.1f, ", user_s, sys_s, (double)ru.ru_maxrss / 1024.0);
  if (r->gc_cycles < 0) {
    printf("\"gc_cycles\": null, \"pauses\": null, \"pause_max_ms\": null, \"pause_p99_ms\": null, ");
    printf("\"pause_total_ms\": null, ");
  } else {
    double max_ms = 0, p99_ms = 0;
    if (r->npauses > 0) {
      /* Nearest rank: the smallest pause that at least 99% of pauses do not exceed. */
      size_t rank = (size_t)((r->npauses * 99 + 99) / 100);
      qsort(r->pauses_ns, r->npauses, sizeof r->pauses_ns[0], gcw_compare_u64);
      max_ms = (double)r->pauses_ns[r->npauses - 1] * 1e-6;
      p99_ms = (double)r->pauses_ns[rank - 1] * 1e-6;
    }
    printf("\"gc_cycles\": %lld, \"pauses\": %zu, \"pause_max_ms\": %.4f, \"pause_p99_ms\": %.4f, ", r->gc_cycles,
           r->npauses, max_ms, p99_ms);
    printf("\"pause_total_ms\": %.4f, ", (double)r->pause_total_ns * 1e-6);
  }
  if (r->stall_max_ms >= 0) printf("\"stall_max_ms\": %.4f, ", r->stall_max_ms);
  printf("\"check\": %lld}\n", r->check);
  fflush(stdout);
}

/* Parse "NAME [N]" from argv: the workload's name and its integer parameter
 * (binary-trees: the depth), fallback when absent. Returns 0 on a bad
 * number. */
static int gcw_param(int argc, char** argv, int fallback, int* out) {
  char* end = NULL;
  long v;
  if (argc < 3) {
    *out = fallback;
    return 1;
  }
  v = strtol(argv[2], &end, 10);
  if (end == argv[2] || *end != '\0' || v < 1 || v > 30) return 0;
  *out = (int)v;
  return 1;
}

#endif /* MALLOCGC_BENCH_GC_WORKLOAD_H */
