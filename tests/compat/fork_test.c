/* fork() in a threaded program, as Boehm documents it: GC_set_handle_fork(1)
 * before GC_INIT installs handlers (fork_manual_test.c: with -1 the
 * program surrounds each fork with GC_atfork_prepare/parent/child). While
 * three threads allocate and collect, the main thread forks again and
 * again; every child allocates, collects, checks what it built and exits
 * within seconds, and the parent's threads and data are unharmed. */
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>

#include "compat_test.h"

#ifndef FORK_MANUAL
#define FORK_MANUAL 0
#endif

#define FORKS 60
#define THREADS 3

struct node {
  struct node* next;
  GC_word value;
};

static NOINLINE struct node* build(GC_word seed, int n) {
  struct node* head = NULL;
  for (int i = 0; i < n; i++) {
    struct node* x = GC_MALLOC(sizeof *x);
    CHECK(x != NULL);
    x->next = head;
    x->value = seed + (GC_word)i;
    head = x;
  }
  return head;
}

static NOINLINE int intact(const struct node* head, GC_word seed, int n) {
  GC_word sum = 0;
  int count = 0;
  for (; head != NULL; head = head->next) sum += head->value, count++;
  return count == n && sum == (GC_word)n * seed + (GC_word)n * (GC_word)(n - 1) / 2;
}

static volatile int g_stop;
static volatile int g_bad;

static void* mutator(void* arg) {
  GC_word seed = (GC_word)(uintptr_t)arg;
  for (unsigned round = 0; !g_stop; round++) {
    struct node* l = build(seed + round, 1000);
    void* volatile big = GC_MALLOC_ATOMIC(100000);
    (void)big;
    if (!intact(l, seed + round, 1000)) g_bad = 1;
    if (round % 32 == 0) GC_gcollect();
  }
  return NULL;
}

/* The child's work; its exit status. */
static int child(int k) {
  struct node* mine = build((GC_word)k, 3000);
  for (int i = 0; i < 3; i++) {
    build(7, 10000); /* garbage */
    GC_gcollect();
  }
  return intact(mine, (GC_word)k, 3000) ? 0 : 3;
}

/* The child's exit status, or -1 if it had to be killed after 20 s. */
static int wait_child(pid_t pid) {
  for (int i = 0; i < 20 * 500; i++) {
    int status;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const struct timespec pause = {0, 2 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

static void test_forks_under_allocating_threads(void) {
  struct node* kept = build(5, 500);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, mutator, (void*)(uintptr_t)(1000 * i)) == 0);
  for (int k = 0; k < FORKS; k++) {
    if (FORK_MANUAL) GC_atfork_prepare();
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      if (FORK_MANUAL) GC_atfork_child();
      _exit(child(k));
    }
    if (FORK_MANUAL) GC_atfork_parent();
    const int status = wait_child(pid);
    if (status != 0) fprintf(stderr, "child %d: %s %d\n", k, status < 0 ? "hung, killed" : "exit status", status);
    CHECK_CMP(status, ==, 0);
  }
  g_stop = 1;
  for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
  CHECK(!g_bad);
  CHECK(intact(kept, 5, 500));
}

int main(void) {
  GC_set_handle_fork(FORK_MANUAL ? -1 : 1);
  GC_INIT();
  GC_allow_register_threads();
  run(FORK_MANUAL ? "fork with GC_atfork_* around it" : "fork with GC_set_handle_fork(1)",
      test_forks_under_allocating_threads);
  return finish();
}
