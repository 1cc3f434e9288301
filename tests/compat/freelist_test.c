/* Free lists a program keeps (gc_inline.h): GC_generic_malloc_many for
 * GC_I_NORMAL, GC_I_PTRFREE and a program's kind hands out a list linked
 * through the first word, of objects of that kind, all of one size at
 * least the requested one, distinct, cleared but for the link (except
 * pointer-free ones, which Boehm does not clear). The objects are the
 * program's: held only in its list (a root, then the links of scanned
 * objects) they stay across collections and are never handed out again;
 * a dropped list goes. The links of a pointer-free list are not traced:
 * past its head such a list goes unless the program keeps its objects
 * ("The caller must make sure that *result is traced even if objects are
 * ptrfree"), here in a scanned array.
 *
 * The inline allocation macros, with a thread's own tiny free list
 * arrays, as guile keeps them: GC_MALLOC_WORDS, GC_MALLOC_ATOMIC_WORDS,
 * GC_CONS and GC_FAST_MALLOC_GRANS (a program's kind; num_direct, the
 * first allocations of a size going through default_expr). The arrays
 * live in a thread-state object whose kind's mark procedure marks what
 * they hold: the heads of the scanned lists, and every object of the
 * pointer-free lists (guile's thread_mark does the same), in pieces,
 * pushing itself back. While the threads allocate, the main thread
 * collects: the objects they allocated stay intact, the ones on their
 * lists are not handed out to anyone else, and all goes when they exit.
 *
 * Sizes given to GC_generic_malloc_many are multiples of
 * GC_GRANULE_BYTES (Boehm asserts it). gc_inline.h's macros ask for whole
 * granules, without the extra byte GC_malloc adds for pointers past the
 * end, and Boehm (with GC_all_interior_pointers, the default) does not
 * scan the last word of a GC_I_NORMAL object: "it is the clients
 * responsibility to add the extra byte at the end". So the objects from
 * GC_MALLOC_WORDS here keep their last requested word spare, and nothing
 * relies on the second word of a GC_CONS pair to keep what it points to.
 * (Lists of a program's kind whose descriptor is the whole object, and
 * the links in word 0, are not affected.) */
#include <gc_inline.h>
#include <gc_mark.h>
#include <pthread.h>
#include <stdatomic.h>

#include "compat_test.h"

#define N 16
#define WORD_BYTES sizeof(GC_word)
#define MAX_LIST 4096 /* longer lists are cut here (Boehm gives a block's worth) */

/* Boehm's struct GC_ms_entry (gc_pmark.h), opaque in gc_mark.h. */
typedef struct {
  void* mse_start;
  GC_word mse_descr;
} mse_t;

static int g_kind; /* a program's kind: the whole object scanned, cleared */

void* volatile fl_root;
void* volatile fl_keep;

static uintptr_t g_members[MAX_LIST]; /* the list's objects, hidden */
static int g_count;
static watch_t g_member_watch[MAX_LIST];

/* Takes a list from GC_generic_malloc_many and checks what it promises;
 * records its objects (g_members) and roots it. */
static NOINLINE void take_list(size_t lb, int kind, int cleared) {
  void* head = NULL;
  GC_generic_malloc_many(lb, kind, &head);
  CHECK(head != NULL);
  size_t size = GC_size(head);
  CHECK_CMP(size, >=, lb);
  g_count = 0;
  for (void** p = head; p != NULL; p = *p) {
    CHECK_CMP(g_count, <, MAX_LIST);
    CHECK_CMP(GC_size(p), ==, size);
    size_t psize = 0;
    CHECK_CMP(GC_get_kind_and_size(p, &psize), ==, kind);
    CHECK_CMP(psize, ==, size);
    CHECK(GC_base(p) == (void*)p);
    if (cleared) CHECK(all_zero(p + 1, lb - WORD_BYTES));
    for (int j = 0; j < g_count; j++) CHECK(g_members[j] != hide(p));
    g_members[g_count++] = hide(p);
  }
  fl_root = head;
}

static void drop_list(void) { fl_root = NULL; }

static void test_malloc_many(void) {
  static const size_t sizes[] = {16, 32, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    take_list(sizes[s], GC_I_NORMAL, 1);
    take_list(sizes[s], g_kind, 1);
    take_list(sizes[s], GC_I_PTRFREE, 0);
  }
  drop_list();
}

/* --- a list that only the program holds ----------------------------------------------------- */

static NOINLINE void watch_members(void) {
  for (int j = 0; j < g_count; j++) watch(&g_member_watch[j], reveal(g_members[j]));
}

/* The list is as it was made: same objects, same links, cleared. */
static NOINLINE int list_unchanged(size_t lb, int cleared) {
  int j = 0;
  for (void** p = fl_root; p != NULL; p = *p, j++) {
    if (j >= g_count || hide(p) != g_members[j]) return 0;
    if (cleared && !all_zero(p + 1, lb - WORD_BYTES)) return 0;
  }
  return j == g_count;
}

static int is_member(const void* p) {
  for (int j = 0; j < g_count; j++)
    if (g_members[j] == hide(p)) return 1;
  return 0;
}

/* Allocations of the size of the list's objects (and lists of it): none
 * of them is one of the list's. */
static NOINLINE void allocate_alongside(size_t lb, int kind) {
  for (int i = 0; i < 2000; i++) {
    void* p = kind == GC_I_PTRFREE  ? GC_malloc_atomic(lb - 1)
              : kind == GC_I_NORMAL ? GC_malloc(lb - 1)
                                    : GC_generic_malloc(lb - 1, kind);
    CHECK(p != NULL);
    CHECK(!is_member(p));
  }
  for (int i = 0; i < 8; i++) {
    void* head = NULL;
    GC_generic_malloc_many(lb, kind, &head);
    for (void** p = head; p != NULL; p = *p) CHECK(!is_member(p));
  }
}

static void check_program_held(size_t lb, int kind) {
  take_list(lb, kind, 1);
  watch_members();
  for (int i = 0; i < 3; i++) {
    collect();
    allocate_alongside(lb, kind);
  }
  collect();
  CHECK_ALL_ALIVE(g_member_watch, g_count);
  CHECK(list_unchanged(lb, 1));
  allocate_alongside(lb, kind);
  drop_list();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_member_watch, g_count);
  unwatch_all(g_member_watch, g_count);
}

static void test_held_by_the_program(void) {
  check_program_held(32, GC_I_NORMAL);
  check_program_held(256, GC_I_NORMAL);
  check_program_held(32, g_kind);
  check_program_held(256, g_kind);
}

/* --- pointer-free lists ----------------------------------------------------------------------- */

static NOINLINE void keep_members_in_array(void) {
  void** array = GC_malloc(g_count * sizeof(void*));
  CHECK(array != NULL);
  for (int j = 0; j < g_count; j++) array[j] = reveal(g_members[j]);
  fl_keep = array;
}

static void test_pointer_free_lists(void) {
  /* The head alone is rooted: the rest goes. */
  take_list(32, GC_I_PTRFREE, 0);
  CHECK_CMP(g_count, >=, 16); /* enough for the mostly-reclaimed check below */
  watch_members();
  collect();
  CHECK(alive(&g_member_watch[0]));
  CHECK_MOSTLY_RECLAIMED(g_member_watch + 1, g_count - 1);
  drop_list();
  unwatch_all(g_member_watch, g_count);

  /* Kept in a scanned array, the objects stay, never handed out again. */
  take_list(32, GC_I_PTRFREE, 0);
  keep_members_in_array();
  watch_members();
  for (int i = 0; i < 3; i++) {
    collect();
    allocate_alongside(32, GC_I_PTRFREE);
  }
  CHECK_ALL_ALIVE(g_member_watch, g_count);
  CHECK(list_unchanged(32, 0));
  fl_keep = NULL;
  drop_list();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_member_watch, g_count);
  unwatch_all(g_member_watch, g_count);
}

/* --- gc_inline.h with thread-local lists ----------------------------------------------------- */

/* A thread's state, of a kind whose procedure marks its lists. Word 0 is
 * the collector's (a free object's link), word 1 a magic word. */
#define STATE_MAGIC ((GC_word)0x7468726561647321ull)
typedef struct {
  void* link;
  GC_word magic;
  void* normal[GC_TINY_FREELISTS]; /* GC_MALLOC_WORDS, GC_CONS */
  void* kind[GC_TINY_FREELISTS];   /* GC_FAST_MALLOC_GRANS, the program's kind */
  void* atomic[GC_TINY_FREELISTS]; /* GC_MALLOC_ATOMIC_WORDS: links not traced */
} state_t;

static unsigned g_state_proc;
static int g_state_kind;
static atomic_int g_state_calls, g_state_pieces;

/* Entries 0 and 1 of env: the heads of the scanned lists; from 2 on, the
 * objects of pointer-free list env - 2, one list a call (the procedure
 * then pushes itself back for the next: pieces of the work, each
 * marking something). */
static struct GC_ms_entry* state_proc(GC_word* addr, struct GC_ms_entry* msp, struct GC_ms_entry* limit, GC_word env) {
  state_t* s = (state_t*)addr;
  if (s->magic != STATE_MAGIC) return msp; /* cleared: not set up yet, or free */
  if (env == 0) atomic_fetch_add(&g_state_calls, 1);
  atomic_fetch_add(&g_state_pieces, 1);
  if (env + 1 < 2 + GC_TINY_FREELISTS) {
    /* "always called with at least one empty entry": room for this. */
    mse_t* next = (mse_t*)msp + 1;
    next->mse_start = addr;
    next->mse_descr = GC_MAKE_PROC((GC_word)g_state_proc, env + 1);
    msp = (struct GC_ms_entry*)next;
  }
  if (env < 2) {
    void** heads = env == 0 ? s->normal : s->kind;
    for (int j = 0; j < GC_TINY_FREELISTS; j++) msp = GC_MARK_AND_PUSH(heads[j], msp, limit, &heads[j]);
  } else {
    for (void** p = s->atomic[env - 2]; (GC_word)p > 4096; p = *p) msp = GC_MARK_AND_PUSH(p, msp, limit, NULL);
  }
  return msp;
}

#define THREADS 2
#define ROUNDS 4
#define CELLS 1500
#define MAX_WORDS 12 /* sizes 1 .. 12 words */
#define SAMPLE_PER_LIST 8

typedef struct {
  int index;
  uintptr_t state; /* hidden */
  int bad;         /* a check that failed, by line */
  int direct;      /* default_expr calls of GC_FAST_MALLOC_GRANS */
} thread_info_t;

static thread_info_t g_info[THREADS];
static pthread_barrier_t g_parked, g_resumed;

#define T_CHECK(cond)                                    \
  do {                                                   \
    if (!(cond) && info->bad == 0) info->bad = __LINE__; \
  } while (0)

static NOINLINE void* counted_direct(thread_info_t* info, size_t bytes) {
  info->direct++;
  return GC_generic_malloc(bytes, g_kind);
}

/* One round: a list of CELLS cells, each a GC_MALLOC_WORDS object of 3
 * words: the pair, the next cell, and the spare last word (see the top).
 * The pair, from GC_CONS, holds a NORMAL object from GC_MALLOC_WORDS and
 * a pointer-free leaf from GC_MALLOC_ATOMIC_WORDS (its words filled); the
 * leaf is kept by the NORMAL object (GC_CONS's second word is the last:
 * Boehm does not trace it). Objects of the program's kind come from
 * GC_FAST_MALLOC_GRANS. Returns the list. */
static NOINLINE void* allocate_round(thread_info_t* info, state_t* s, int round) {
  void* list = NULL;
  for (int c = 0; c < CELLS; c++) {
    size_t n = 1 + (size_t)(c + round) % MAX_WORDS;
    GC_word* leaf;
    GC_MALLOC_ATOMIC_WORDS(leaf, n, s->atomic);
    T_CHECK(leaf != NULL);
    T_CHECK(GC_size(leaf) >= n * WORD_BYTES);
    T_CHECK(GC_get_kind_and_size(leaf, NULL) == GC_I_PTRFREE);
    for (size_t w = 0; w < n; w++) leaf[w] = (GC_word)(c * 131 + (int)w) | 1; /* odd: no pointer */
    void** normal;
    GC_MALLOC_WORDS(normal, n + 1, s->normal);
    T_CHECK(normal != NULL);
    T_CHECK(GC_size(normal) >= (n + 1) * WORD_BYTES);
    T_CHECK(GC_get_kind_and_size(normal, NULL) == GC_I_NORMAL);
    T_CHECK(all_zero(normal, (n + 1) * WORD_BYTES));
    normal[n - 1] = leaf; /* word n is the spare one */
    void** pair;
    GC_CONS(pair, normal, leaf, s->normal);
    T_CHECK(pair != NULL && pair[0] == normal && pair[1] == leaf);
    T_CHECK(GC_get_kind_and_size(pair, NULL) == GC_I_NORMAL);
    void** cell;
    GC_MALLOC_WORDS(cell, 3, s->normal);
    T_CHECK(cell != NULL && all_zero(cell, 3 * WORD_BYTES));
    cell[0] = pair;
    cell[1] = list;
    list = cell;
    size_t granules = (size_t)c % 8;
    void** object;
    GC_FAST_MALLOC_GRANS(object, granules, s->kind, 0, g_kind, counted_direct(info, granules * GC_GRANULE_BYTES),
                         *object = NULL);
    T_CHECK(object != NULL);
    T_CHECK(GC_get_kind_and_size(object, NULL) == g_kind);
    T_CHECK(all_zero(object, granules == 0 ? 1 : granules * GC_GRANULE_BYTES));
  }
  return list;
}

static NOINLINE int list_intact(void* list, int round) {
  int c = CELLS - 1;
  for (void** cell = list; cell != NULL; cell = cell[1], c--) {
    if (c < 0) return 0;
    size_t n = 1 + (size_t)(c + round) % MAX_WORDS;
    void** pair = cell[0];
    void** normal = pair[0];
    GC_word* leaf = pair[1];
    if (cell[2] != NULL || normal == NULL || leaf == NULL) return 0;
    if (!all_zero(normal, (n - 1) * WORD_BYTES) || normal[n - 1] != leaf || normal[n] != NULL) return 0;
    for (size_t w = 0; w < n; w++)
      if (leaf[w] != ((GC_word)(c * 131 + (int)w) | 1)) return 0;
  }
  return c == -1;
}

static void* allocating_thread(void* arg) {
  thread_info_t* info = arg;
  state_t* volatile state = GC_generic_malloc(sizeof(state_t), g_state_kind);
  T_CHECK(state != NULL && all_zero(state, sizeof(state_t)));
  state->magic = STATE_MAGIC;
  info->state = hide(state);
  void* volatile lists[ROUNDS];
  for (int round = 0; round < ROUNDS; round++) {
    lists[round] = allocate_round(info, state, round);
    pthread_barrier_wait(&g_parked); /* main collects, then checks the lists */
    pthread_barrier_wait(&g_resumed);
    for (int r = 0; r <= round; r++) T_CHECK(list_intact(lists[r], r));
  }
  for (int round = 0; round < ROUNDS; round++) lists[round] = NULL;
  state = NULL;
  scrub();
  return NULL;
}

/* What the threads' lists hold, collected by main while they are parked. */
#define MAX_FREE (THREADS * 3 * GC_TINY_FREELISTS * MAX_LIST / 4)
static uintptr_t g_free[MAX_FREE];
static int g_nfree;
static watch_t g_free_watch[THREADS * 3 * GC_TINY_FREELISTS * SAMPLE_PER_LIST];
static int g_nfree_watch;
static watch_t g_state_watch[THREADS];

static int cmp_uintptr(const void* a, const void* b) {
  uintptr_t x = *(const uintptr_t*)a, y = *(const uintptr_t*)b;
  return x < y ? -1 : x > y;
}

static NOINLINE void record_free_objects(int watch_them) {
  g_nfree = 0;
  for (int t = 0; t < THREADS; t++) {
    state_t* s = reveal(g_info[t].state);
    void** lists[3] = {s->normal, s->kind, s->atomic};
    for (int l = 0; l < 3; l++) {
      for (int j = 0; j < GC_TINY_FREELISTS; j++) {
        int k = 0;
        for (void** p = lists[l][j]; (GC_word)p > 4096; p = *p, k++) {
          CHECK_CMP(g_nfree, <, MAX_FREE);
          g_free[g_nfree++] = (uintptr_t)p;
          if (watch_them && k < SAMPLE_PER_LIST) watch(&g_free_watch[g_nfree_watch++], p);
        }
      }
    }
  }
  qsort(g_free, (size_t)g_nfree, sizeof g_free[0], cmp_uintptr);
  /* Mask them: g_free is a root, and must not keep what it lists. */
  for (int i = 0; i < g_nfree; i++) g_free[i] = hide((void*)g_free[i]);
}

static int on_a_free_list(const void* p) {
  uintptr_t key = (uintptr_t)p;
  int lo = 0, hi = g_nfree;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    uintptr_t v = (uintptr_t)reveal(g_free[mid]);
    if (v == key) return 1;
    if (v < key) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return 0;
}

/* Main's allocations of the sizes the threads' lists hold: none is on
 * one of them. */
static NOINLINE void allocate_and_compare(void) {
  for (size_t granules = 1; granules < 8; granules++) {
    size_t lb = granules * GC_GRANULE_BYTES;
    for (int i = 0; i < 200; i++) {
      CHECK(!on_a_free_list(GC_malloc(lb - 1)));
      CHECK(!on_a_free_list(GC_malloc_atomic(lb - 1)));
      CHECK(!on_a_free_list(GC_generic_malloc(lb - 1, g_kind)));
    }
    int kinds[3] = {GC_I_NORMAL, GC_I_PTRFREE, g_kind};
    for (int k = 0; k < 3; k++) {
      void* head = NULL;
      GC_generic_malloc_many(lb, kinds[k], &head);
      for (void** p = head; p != NULL; p = *p) CHECK(!on_a_free_list(p));
    }
  }
}

static void test_inline_macros(void) {
  pthread_barrier_init(&g_parked, NULL, THREADS + 1);
  pthread_barrier_init(&g_resumed, NULL, THREADS + 1);
  pthread_t threads[THREADS];
  for (int t = 0; t < THREADS; t++) {
    g_info[t].index = t;
    CHECK(pthread_create(&threads[t], NULL, allocating_thread, &g_info[t]) == 0);
  }
  for (int round = 0; round < ROUNDS; round++) {
    pthread_barrier_wait(&g_parked);
    if (round == 0)
      for (int t = 0; t < THREADS; t++) watch(&g_state_watch[t], reveal(g_info[t].state));
    int calls = atomic_load(&g_state_calls);
    collect();
    CHECK_CMP(atomic_load(&g_state_calls), >=, calls + THREADS); /* the procedure ran for each state */
    record_free_objects(round == ROUNDS - 1);
    collect();
    allocate_and_compare();
    pthread_barrier_wait(&g_resumed);
  }
  CHECK_CMP(g_nfree_watch, >, 0);
  for (int t = 0; t < THREADS; t++) CHECK(pthread_join(threads[t], NULL) == 0);
  for (int t = 0; t < THREADS; t++) CHECK_CMP(g_info[t].bad, ==, 0); /* the line of a failed T_CHECK */
  /* The procedure went through the lists in pieces. */
  CHECK_CMP(atomic_load(&g_state_pieces), >=, atomic_load(&g_state_calls) * 2);
  /* Whatever the lists held when the threads exited goes with them. */
  collect();
  CHECK_MOSTLY_RECLAIMED(g_state_watch, THREADS);
  CHECK_MOSTLY_RECLAIMED(g_free_watch, g_nfree_watch);
  unwatch_all(g_state_watch, THREADS);
  unwatch_all(g_free_watch, g_nfree_watch);
  pthread_barrier_destroy(&g_parked);
  pthread_barrier_destroy(&g_resumed);
}

/* --- GC_FAST_MALLOC_GRANS with num_direct -------------------------------------------------- */

static int g_direct_calls;

static void* direct(size_t bytes) {
  g_direct_calls++;
  return GC_generic_malloc(bytes, g_kind);
}

/* gc_inline.h: "If num_direct is nonzero, and the individual free list
 * pointers are initialized to (void *)1, then we allocate num_direct
 * granules directly using generic_malloc before putting multiple objects
 * into the tiny_fl entry": the counter starts at 1 and grows by
 * granules + 1 per direct allocation while it is <= num_direct. */
/* Lists taken while collections run: a cycle that starts inside
 * GC_generic_malloc_many (one of its allocations fills a span and the
 * heap is due) must not reclaim the part of the list built so far, whose
 * pointer-free links nobody traces. With a high free space divisor, the
 * collections come often and nearly all inside the calls. Every object is
 * kept in a scanned
 * array as soon as the list is returned, and marked with its own stamp:
 * an object reclaimed inside the call would come back in a later list
 * (a duplicate) or be overwritten (a broken stamp). */
#define MANY_LISTS 600
#define MANY_MAX (MANY_LISTS * 256)
static void* g_many[MANY_MAX];

static void test_lists_across_collections(void) {
  const size_t lb = 32;
  size_t total = 0;
  int inside = 0; /* collections that ran inside GC_generic_malloc_many */
  /* Frequent collections, nearly all of them inside the calls. */
  GC_word divisor = GC_get_free_space_divisor();
  GC_set_free_space_divisor(50);
  GC_word gc0 = GC_get_gc_no();
  for (int l = 0; l < MANY_LISTS; l++) {
    void* head = NULL;
    GC_word before = GC_get_gc_no();
    GC_generic_malloc_many(lb, GC_I_PTRFREE, &head);
    inside += GC_get_gc_no() != before;
    CHECK(head != NULL);
    for (void** p = head; p != NULL;) {
      void** next = *p;
      CHECK_CMP(total, <, MANY_MAX);
      g_many[total] = p;
      p[0] = (void*)~(GC_word)total; /* never an address */
      p[1] = (void*)(GC_word)(total * 2654435761u);
      total++;
      p = next;
    }
  }
  if (getenv("MGC_COMPAT_VERBOSE"))
    fprintf(stderr, "%zu objects, %d of %d collections inside\n", total, inside, (int)(GC_get_gc_no() - gc0));
  GC_set_free_space_divisor(divisor);
  CHECK_CMP(inside, >=, 3);
  collect();
  for (size_t i = 0; i < total; i++) {
    void** p = g_many[i];
    CHECK(p[0] == (void*)~(GC_word)i);
    CHECK(p[1] == (void*)(GC_word)(i * 2654435761u));
  }
  memset(g_many, 0, sizeof g_many);
}

static void test_num_direct(void) {
  enum { NUM_DIRECT = 6 };
  for (size_t granules = 0; granules < 4; granules++) {
    void* fl[GC_TINY_FREELISTS];
    for (int j = 0; j < GC_TINY_FREELISTS; j++) fl[j] = (void*)1;
    int expected = 0;
    for (size_t counter = 1; counter <= NUM_DIRECT; counter += granules + 1) expected++;
    g_direct_calls = 0;
    for (int i = 0; i < expected + 8; i++) {
      void** p;
      GC_FAST_MALLOC_GRANS(p, granules, fl, NUM_DIRECT, g_kind, direct(granules * GC_GRANULE_BYTES), *p = NULL);
      CHECK(p != NULL);
      CHECK_CMP(GC_get_kind_and_size(p, NULL), ==, g_kind);
      CHECK(all_zero(p, granules == 0 ? 1 : granules * GC_GRANULE_BYTES));
      CHECK_CMP(g_direct_calls, ==, i < expected ? i + 1 : expected);
    }
    CHECK((GC_word)fl[granules] > GC_TINY_FREELISTS + 1 + NUM_DIRECT || fl[granules] == NULL); /* a list now */
  }
}

int main(void) {
  GC_INIT();
  g_kind = (int)GC_new_kind(GC_new_free_list(), 0 | GC_DS_LENGTH, 1, 1);
  g_state_proc = GC_new_proc(state_proc);
  g_state_kind = (int)GC_new_kind(GC_new_free_list(), GC_MAKE_PROC((GC_word)g_state_proc, 0), 0, 1);
  run("GC_generic_malloc_many", test_malloc_many);
  run("a list held by the program stays, a dropped one goes", test_held_by_the_program);
  run("pointer-free lists: links not traced", test_pointer_free_lists);
  run("GC_FAST_MALLOC_GRANS with num_direct", test_num_direct);
  run("pointer-free lists taken while collections run", test_lists_across_collections);
  run("gc_inline.h macros with thread-local lists", test_inline_macros);
  return finish();
}
