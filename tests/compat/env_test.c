/* The environment variables Boehm reads at GC_init: GC_INITIAL_HEAP_SIZE,
 * GC_MAXIMUM_HEAP_SIZE, GC_FREE_SPACE_DIVISOR, GC_DONT_GC, GC_PRINT_STATS,
 * GC_LOG_FILE, GC_MARKERS and GC_NPROCS, and malformed values of them,
 * which must not crash a program. Each case re-executes this program
 * (its own path --child MODE) with the variable set and every other GC_
 * variable removed; the child prints key=value lines on stdout, and the
 * parent checks its exit status, stdout and stderr.
 *
 * Not covered: GC_INITIAL_HEAP_SIZE=-1, which Boehm 8.2 parses as the
 * largest size, fails to map and ends the program with exit(1) ("Can't
 * start up: not enough memory"); a library may do better, so neither
 * outcome is stated. */
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "compat_test.h"

#define MiB ((size_t)1 << 20)

extern char** environ;

/* --- the child ------------------------------------------------------------------ */

static NOINLINE void allocate_garbage(size_t bytes) {
  for (size_t done = 0; done < bytes; done += 4096) {
    char* p = GC_malloc(4096);
    CHECK(p != NULL);
    p[0] = 1;
  }
}

/* A linked list built, collected over and checked: the collector works. */
static void* volatile g_list;

static NOINLINE void build_list(int n) {
  for (int i = 0; i < n; i++) {
    void** node = GC_malloc(4 * sizeof(void*));
    CHECK(node != NULL);
    node[0] = g_list;
    node[1] = (void*)(uintptr_t)i;
    g_list = node;
  }
}

static NOINLINE int list_intact(int n) {
  void** node = g_list;
  for (int i = n - 1; i >= 0; i--, node = node[0])
    if (node == NULL || node[1] != (void*)(uintptr_t)i) return 0;
  return node == NULL;
}

static void* worker(void* arg) {
  (void)arg;
  void** mine = NULL;
  for (int i = 0; i < 2000; i++) {
    void** node = GC_malloc(4 * sizeof(void*));
    CHECK(node != NULL);
    node[0] = mine;
    node[1] = (void*)(uintptr_t)i;
    mine = node;
    if (i % 100 == 0) allocate_garbage(256 * 1024);
  }
  for (int i = 1999; i >= 0; i--, mine = mine[0]) CHECK(mine[1] == (void*)(uintptr_t)i);
  return NULL;
}

/* Work on two threads with collections; prints the collections made. */
static void child_work(void) {
  GC_word before = GC_get_gc_no();
  pthread_t t;
  CHECK(pthread_create(&t, NULL, worker, NULL) == 0); /* GC_pthread_create */
  build_list(2000);
  for (int i = 0; i < 3; i++) {
    allocate_garbage(8 * MiB);
    GC_gcollect();
  }
  CHECK(list_intact(2000));
  CHECK(pthread_join(t, NULL) == 0);
  printf("collections=%lu\n", (unsigned long)(GC_get_gc_no() - before));
}

static volatile int g_oom_calls;

static void* GC_CALLBACK count_oom(size_t bytes) {
  (void)bytes;
  g_oom_calls++;
  return NULL;
}

#define LIVE_MAX 1000
void* volatile env_live[LIVE_MAX]; /* static data: a root */

/* Fills the heap with live 1 MiB objects until one fails (or 1000 made). */
static void child_limit(void) {
  int count = 0;
  GC_set_oom_fn(count_oom);
  GC_set_warn_proc(count_warning);
  while (count < LIVE_MAX && (env_live[count] = GC_malloc(MiB)) != NULL) count++;
  printf("count=%d\noom=%d\nheap=%zu\n", count, g_oom_calls, GC_get_heap_size());
}

static void child_dont_gc(void) {
  GC_word before = GC_get_gc_no();
  GC_gcollect();
  allocate_garbage(64 * MiB);
  printf("disabled=%d\ncollections=%lu\n", GC_is_disabled(), (unsigned long)(GC_get_gc_no() - before));
}

static void child_collections(void) {
  GC_word before = GC_get_gc_no();
  for (int i = 0; i < 5; i++) GC_gcollect();
  printf("collections=%lu\n", (unsigned long)(GC_get_gc_no() - before));
}

static int child(const char* mode) {
  GC_INIT();
  if (strcmp(mode, "heap") == 0) {
    printf("heap=%zu\n", GC_get_heap_size());
  } else if (strcmp(mode, "divisor") == 0) {
    printf("divisor=%lu\n", (unsigned long)GC_get_free_space_divisor());
  } else if (strcmp(mode, "limit") == 0) {
    child_limit();
  } else if (strcmp(mode, "dont_gc") == 0) {
    child_dont_gc();
  } else if (strcmp(mode, "collections") == 0) {
    child_collections();
  } else if (strcmp(mode, "work") == 0) {
    child_work();
  } else {
    return 2;
  }
  fflush(stdout);
  return 0;
}

/* --- the parent ------------------------------------------------------------------ */

typedef struct {
  int status; /* as from waitpid */
  char out[4096];
  char* err; /* malloc'd, NUL-terminated */
  size_t err_lines;
} result_t;

static char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  CHECK(f != NULL);
  size_t cap = 4096, len = 0;
  char* buf = malloc(cap);
  CHECK(buf != NULL);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len - 1 == 0) {
      cap *= 2;
      buf = realloc(buf, cap);
      CHECK(buf != NULL);
    }
  }
  fclose(f);
  buf[len] = '\0';
  if (size) *size = len;
  return buf;
}

static size_t count_lines(const char* text) {
  size_t lines = 0;
  for (; *text; text++) lines += *text == '\n';
  return lines;
}

/* This program's path, read through the link rather than run as
 * /proc/self/exe: under valgrind that file is valgrind's tool, which
 * refuses to start directly ("You cannot run 'env_test' directly"),
 * while readlink answers with the program's own path. */
static const char* own_executable(void) {
  static char path[4096];
  if (path[0] == '\0') {
    const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    CHECK(n > 0);
    path[n] = '\0';
  }
  return path;
}

/* Runs this program as `--child mode` with the environment minus every
 * GC_ variable plus vars (a NULL-terminated list of "NAME=value"). */
static void spawn_child(const char* mode, const char* const* vars, result_t* r) {
  char* envp[512];
  int n = 0;
  for (char** e = environ; *e && n < 480; e++)
    if (strncmp(*e, "GC_", 3) != 0) envp[n++] = *e;
  for (; vars && *vars; vars++) envp[n++] = (char*)*vars;
  envp[n] = NULL;

  char out_path[] = "/tmp/mgc-compat-env-out-XXXXXX";
  char err_path[] = "/tmp/mgc-compat-env-err-XXXXXX";
  int out_fd = mkstemp(out_path);
  int err_fd = mkstemp(err_path);
  CHECK(out_fd >= 0 && err_fd >= 0);

  posix_spawn_file_actions_t actions;
  CHECK(posix_spawn_file_actions_init(&actions) == 0);
  CHECK(posix_spawn_file_actions_adddup2(&actions, out_fd, 1) == 0);
  CHECK(posix_spawn_file_actions_adddup2(&actions, err_fd, 2) == 0);
  char* argv[] = {"env_test", "--child", (char*)mode, NULL};
  pid_t pid;
  CHECK(posix_spawn(&pid, own_executable(), &actions, NULL, argv, envp) == 0);
  posix_spawn_file_actions_destroy(&actions);
  CHECK(waitpid(pid, &r->status, 0) == pid);
  close(out_fd);
  close(err_fd);

  char* out = read_file(out_path, NULL);
  snprintf(r->out, sizeof r->out, "%s", out);
  free(out);
  r->err = read_file(err_path, NULL);
  r->err_lines = count_lines(r->err);
  unlink(out_path);
  unlink(err_path);
}

static void check_exited_ok(const result_t* r, const char* what) {
  if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0) {
    fprintf(stderr, "%s: child status %#x\nstdout:\n%s\nstderr:\n%.2000s\n", what, r->status, r->out, r->err);
    CHECK(!"the child exited with 0");
  }
}

/* The value of "key=" in the child's stdout. */
static unsigned long long value(const result_t* r, const char* key) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "%s=", key);
  const char* at = strstr(r->out, pattern);
  if (at == NULL) {
    fprintf(stderr, "no %s in the child's output:\n%s\n", pattern, r->out);
    CHECK(at != NULL);
  }
  return strtoull(at + strlen(pattern), NULL, 10);
}

static unsigned long long run_child(const char* mode, const char* var, const char* key, result_t* r) {
  const char* vars[] = {var, NULL};
  spawn_child(mode, vars, r);
  check_exited_ok(r, var ? var : mode);
  return key ? value(r, key) : 0;
}

static void release(result_t* r) {
  free(r->err);
  r->err = NULL;
}

/* --- the cases ------------------------------------------------------------------- */

static void test_initial_heap_size(void) {
  result_t r;
  CHECK_CMP(run_child("heap", NULL, "heap", &r), <, 200 * MiB); /* so the next ones mean something */
  release(&r);
  CHECK_CMP(run_child("heap", "GC_INITIAL_HEAP_SIZE=200M", "heap", &r), >=, 200 * MiB);
  release(&r);
  CHECK_CMP(run_child("heap", "GC_INITIAL_HEAP_SIZE=209715200", "heap", &r), >=, 209715200);
  release(&r);
  CHECK_CMP(run_child("heap", "GC_INITIAL_HEAP_SIZE=204800k", "heap", &r), >=, 200 * MiB);
  release(&r);
}

static void test_maximum_heap_size(void) {
  result_t r;
  run_child("limit", "GC_MAXIMUM_HEAP_SIZE=48M", NULL, &r);
  CHECK_CMP(value(&r, "count"), <, 48);
  CHECK_CMP(value(&r, "count"), >=, 8);
  CHECK_CMP(value(&r, "oom"), >=, 1);
  CHECK_CMP(value(&r, "heap"), <=, 48 * MiB);
  release(&r);
}

static void test_free_space_divisor(void) {
  result_t r;
  CHECK_CMP(run_child("divisor", "GC_FREE_SPACE_DIVISOR=7", "divisor", &r), ==, 7);
  release(&r);
  CHECK_CMP(run_child("divisor", "GC_FREE_SPACE_DIVISOR=1", "divisor", &r), ==, 1);
  release(&r);
}

static void test_dont_gc(void) {
  result_t r;
  run_child("dont_gc", NULL, NULL, &r);
  CHECK_CMP(value(&r, "disabled"), ==, 0);
  CHECK_CMP(value(&r, "collections"), >, 0);
  release(&r);
  run_child("dont_gc", "GC_DONT_GC=1", NULL, &r);
  CHECK_CMP(value(&r, "disabled"), !=, 0);
  CHECK_CMP(value(&r, "collections"), ==, 0);
  release(&r);
}

static void test_print_stats(void) {
  result_t r;
  run_child("collections", NULL, "collections", &r);
  CHECK_CMP(r.err_lines, ==, 0); /* quiet by default */
  release(&r);
  unsigned long long collections = run_child("collections", "GC_PRINT_STATS=1", "collections", &r);
  CHECK_CMP(collections, ==, 5);
  CHECK_CMP(r.err_lines, >=, collections); /* some output per collection */
  release(&r);
}

static void test_log_file(void) {
  char log_path[] = "/tmp/mgc-compat-env-log-XXXXXX";
  int fd = mkstemp(log_path);
  CHECK(fd >= 0);
  close(fd);
  char log_var[64];
  snprintf(log_var, sizeof log_var, "GC_LOG_FILE=%s", log_path);
  const char* vars[] = {"GC_PRINT_STATS=1", log_var, NULL};
  result_t r;
  spawn_child("collections", vars, &r);
  check_exited_ok(&r, log_var);
  unsigned long long collections = value(&r, "collections");
  CHECK_CMP(collections, ==, 5);
  CHECK_CMP(r.err_lines, ==, 0); /* the statistics went to the file */
  release(&r);
  char* log = read_file(log_path, NULL);
  CHECK_CMP(count_lines(log), >=, collections);
  free(log);
  unlink(log_path);
}

static void test_markers(void) {
  static const char* const vars[] = {"GC_MARKERS=1", "GC_MARKERS=2", "GC_MARKERS=4",
                                     "GC_NPROCS=1",  "GC_NPROCS=2",  NULL};
  for (const char* const* v = vars; *v; v++) {
    result_t r;
    CHECK_CMP(run_child("work", *v, "collections", &r), >=, 3);
    release(&r);
  }
}

static void test_malformed(void) {
  static const char* const vars[] = {"GC_INITIAL_HEAP_SIZE=abc",
                                     "GC_INITIAL_HEAP_SIZE=",
                                     "GC_INITIAL_HEAP_SIZE=12x",
                                     "GC_INITIAL_HEAP_SIZE=0",
                                     "GC_MAXIMUM_HEAP_SIZE=abc",
                                     "GC_MAXIMUM_HEAP_SIZE=0",
                                     "GC_FREE_SPACE_DIVISOR=-1",
                                     "GC_FREE_SPACE_DIVISOR=abc",
                                     "GC_FREE_SPACE_DIVISOR=0",
                                     "GC_FREE_SPACE_DIVISOR=",
                                     "GC_MARKERS=abc",
                                     "GC_MARKERS=-1",
                                     "GC_MARKERS=0",
                                     "GC_MARKERS=100000",
                                     "GC_NPROCS=abc",
                                     "GC_NPROCS=-3",
                                     "GC_NPROCS=0",
                                     "GC_PRINT_STATS=",
                                     "GC_LOG_FILE=/nonexistent/dir/gc.log",
                                     NULL};
  for (const char* const* v = vars; *v; v++) {
    result_t r;
    CHECK_CMP(run_child("work", *v, "collections", &r), >=, 3);
    release(&r);
  }
  /* A malformed divisor leaves a usable one. */
  result_t r;
  CHECK_CMP(run_child("divisor", "GC_FREE_SPACE_DIVISOR=-1", "divisor", &r), >, 0);
  release(&r);
  CHECK_CMP(run_child("divisor", "GC_FREE_SPACE_DIVISOR=abc", "divisor", &r), >, 0);
  release(&r);
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
  run("GC_INITIAL_HEAP_SIZE", test_initial_heap_size);
  run("GC_MAXIMUM_HEAP_SIZE", test_maximum_heap_size);
  run("GC_FREE_SPACE_DIVISOR", test_free_space_divisor);
  run("GC_DONT_GC", test_dont_gc);
  run("GC_PRINT_STATS", test_print_stats);
  run("GC_LOG_FILE", test_log_file);
  run("GC_MARKERS, GC_NPROCS", test_markers);
  run("malformed values", test_malformed);
  return finish();
}
