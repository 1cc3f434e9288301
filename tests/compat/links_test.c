/* Disappearing links: GC_general_register_disappearing_link leaves the
 * link intact while the object is reachable and clears it when the object
 * becomes unreachable, before finalizers run; registering a link twice
 * gives GC_DUPLICATE and binds it to the last object; the older
 * GC_register_disappearing_link (the link is a field of the object it
 * watches); GC_unregister_disappearing_link (1, then 0);
 * GC_move_disappearing_link (GC_SUCCESS, GC_NOT_FOUND, GC_DUPLICATE);
 * links living in a heap object that is itself reclaimed are dropped and
 * never written to later; and long links (GC_register_long_link and its
 * unregister and move), which stay while a finalizer still has the object
 * and clear only when it is gone for good. */
#include "compat_test.h"

#define N 16
#define SIZE 64

void* volatile links_root[N];
static uintptr_t g_hidden[N];

static void clear_roots(void) {
  for (int i = 0; i < N; i++) links_root[i] = NULL;
}

static NOINLINE void* new_object(int i) {
  void** p = GC_malloc(SIZE);
  CHECK(p != NULL);
  fill(p + 2, SIZE - 2 * sizeof(void*), (unsigned)i);
  return p;
}

/* --- kept intact, then cleared ----------------------------------------------------- */

static watch_t g_link[N];

static NOINLINE void make_linked(int i, int rooted) {
  void* p = new_object(i);
  watch(&g_link[i], p);
  g_hidden[i] = hide(p);
  if (rooted) links_root[i] = p;
}

static void test_kept_then_cleared(void) {
  for (int i = 0; i < N; i++) make_linked(i, 1);
  collect();
  collect();
  for (int i = 0; i < N; i++) CHECK(g_link[i].link == (void*)g_hidden[i]); /* untouched */
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_link, N);
  for (int i = 0; i < N; i++) CHECK(g_link[i].link == NULL || g_link[i].link == (void*)g_hidden[i]);
  unwatch_all(g_link, N);
}

/* --- cleared before finalizers run ------------------------------------------------------ */

static watch_t g_before[N];
static int g_before_runs[N];
static int g_before_cleared[N];
static int g_before_slot[N];

static void GC_CALLBACK check_cleared(void* obj, void* cd) {
  int i = *(int*)cd;
  (void)obj;
  g_before_runs[i]++;
  g_before_cleared[i] = g_before[i].link == NULL;
}

static NOINLINE void make_finalizable_linked(int i) {
  void* p = new_object(i);
  watch(&g_before[i], p);
  g_before_slot[i] = i;
  GC_register_finalizer(p, check_cleared, &g_before_slot[i], NULL, NULL);
}

static void test_cleared_before_finalizers(void) {
  for (int i = 0; i < N; i++) make_finalizable_linked(i);
  collect();
  int ran = 0;
  for (int i = 0; i < N; i++) {
    ran += g_before_runs[i];
    if (g_before_runs[i]) CHECK(g_before_cleared[i]);
  }
  CHECK_CMP(ran * 8, >=, 7 * N);
  unwatch_all(g_before, N);
}

/* --- GC_DUPLICATE, and the last object wins ------------------------------------------------ */

static void* g_dup_link[N];
static watch_t g_dup_first[N];
static uintptr_t g_dup_second[N];

static NOINLINE void make_duplicate(int i) {
  void* first = new_object(i);
  void* second = new_object(i);
  watch(&g_dup_first[i], first);
  g_dup_link[i] = (void*)hide(first);
  CHECK(GC_general_register_disappearing_link(&g_dup_link[i], first) == GC_SUCCESS);
  CHECK(GC_general_register_disappearing_link(&g_dup_link[i], first) == GC_DUPLICATE);
  CHECK(GC_general_register_disappearing_link(&g_dup_link[i], second) == GC_DUPLICATE);
  g_dup_second[i] = hide(second);
  links_root[i] = second;
}

static void test_duplicate(void) {
  for (int i = 0; i < N; i++) make_duplicate(i);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_dup_first, N);
  for (int i = 0; i < N; i++) CHECK(g_dup_link[i] != NULL); /* follows the second object, alive */
  clear_roots();
  collect();
  int cleared = 0;
  for (int i = 0; i < N; i++) cleared += g_dup_link[i] == NULL;
  CHECK_CMP(cleared * 8, >=, 7 * N);
  for (int i = 0; i < N; i++)
    if (g_dup_link[i]) CHECK(GC_unregister_disappearing_link(&g_dup_link[i]) == 1);
  unwatch_all(g_dup_first, N);
}

/* --- GC_register_disappearing_link: a field of the object ----------------------------------- */

#define FIELD_VALUE ((void*)(uintptr_t)0x1234)

static int g_field_runs[N];
static int g_field_cleared[N];
static int g_field_slot[N];

static void GC_CALLBACK check_field(void* obj, void* cd) {
  int i = *(int*)cd;
  g_field_runs[i]++;
  g_field_cleared[i] = ((void**)obj)[1] == NULL;
}

static NOINLINE void make_self_linked(int i, int rooted) {
  void** p = new_object(i);
  p[1] = FIELD_VALUE;
  CHECK(GC_register_disappearing_link(&p[1]) == GC_SUCCESS);
  CHECK(GC_register_disappearing_link(&p[1]) == GC_DUPLICATE);
  g_field_slot[i] = i;
  GC_register_finalizer(p, check_field, &g_field_slot[i], NULL, NULL);
  if (rooted) links_root[i] = p;
}

static NOINLINE int field_intact(int i) { return ((void**)links_root[i])[1] == FIELD_VALUE; }

static void test_register_disappearing_link(void) {
  for (int i = 0; i < N; i++) make_self_linked(i, 1);
  collect();
  collect();
  for (int i = 0; i < N; i++) CHECK(field_intact(i));
  clear_roots();
  collect();
  int ran = 0;
  for (int i = 0; i < N; i++) {
    CHECK_CMP(g_field_runs[i], <=, 1);
    ran += g_field_runs[i];
    if (g_field_runs[i]) CHECK(g_field_cleared[i]); /* the object saw its own link cleared */
  }
  CHECK_CMP(ran * 8, >=, 7 * N);
}

/* --- GC_unregister_disappearing_link ---------------------------------------------------- */

static void* g_unreg_link[N];
static watch_t g_unreg_obj[N];

static NOINLINE void make_unregistered(int i) {
  void* p = new_object(i);
  watch(&g_unreg_obj[i], p);
  g_unreg_link[i] = (void*)hide(p);
  CHECK(GC_general_register_disappearing_link(&g_unreg_link[i], p) == GC_SUCCESS);
  CHECK(GC_unregister_disappearing_link(&g_unreg_link[i]) == 1);
  CHECK(GC_unregister_disappearing_link(&g_unreg_link[i]) == 0);
}

static void test_unregister(void) {
  static void* never_registered;
  CHECK(GC_unregister_disappearing_link(&never_registered) == 0);
  for (int i = 0; i < N; i++) make_unregistered(i);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_unreg_obj, N);
  for (int i = 0; i < N; i++) CHECK(g_unreg_link[i] != NULL); /* no longer a link */
  unwatch_all(g_unreg_obj, N);
}

/* --- GC_move_disappearing_link, GC_move_long_link ---------------------------------------- */

typedef int(GC_CALL* register_fn)(void**, const void*);
typedef int(GC_CALL* move_fn)(void**, void**);
typedef int(GC_CALL* unregister_fn)(void**);

#define UNTOUCHED ((void*)(uintptr_t)0x777)

static void* g_from[N];
static void* g_to[N];
static void* g_other[N];
static watch_t g_moved_obj[N];

static NOINLINE void make_moved(int i, register_fn reg, move_fn move, unregister_fn unreg) {
  void* p = new_object(i);
  void* q = new_object(i);
  watch(&g_moved_obj[i], p);
  links_root[i] = q;
  g_from[i] = (void*)hide(p);
  g_to[i] = UNTOUCHED;
  g_other[i] = (void*)hide(q);
  CHECK(move(&g_from[i], &g_to[i]) == GC_NOT_FOUND); /* nothing registered there */
  CHECK(move(&g_from[i], &g_from[i]) == GC_NOT_FOUND);
  CHECK(reg(&g_from[i], p) == GC_SUCCESS);
  CHECK(move(&g_from[i], &g_from[i]) == GC_SUCCESS); /* registered: a no-op */
  CHECK(reg(&g_other[i], q) == GC_SUCCESS);
  CHECK(move(&g_from[i], &g_other[i]) == GC_DUPLICATE); /* the target has a link */
  CHECK(move(&g_from[i], &g_to[i]) == GC_SUCCESS);
  CHECK(g_to[i] == UNTOUCHED); /* moving does not write the new location */
  CHECK(unreg(&g_from[i]) == 0);
  CHECK(move(&g_from[i], &g_to[i]) == GC_NOT_FOUND);
}

static void check_move(register_fn reg, move_fn move, unregister_fn unreg) {
  for (int i = 0; i < N; i++) make_moved(i, reg, move, unreg);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_moved_obj, N);
  for (int i = 0; i < N; i++) {
    CHECK(g_from[i] != NULL);                       /* the old location is no link */
    CHECK(g_other[i] != NULL);                      /* q is rooted */
    CHECK(g_to[i] == NULL || g_to[i] == UNTOUCHED); /* the new one is */
    if (alive(&g_moved_obj[i]))
      CHECK(g_to[i] == UNTOUCHED);
    else
      CHECK(g_to[i] == NULL);
    CHECK(unreg(&g_other[i]) == 1);
    if (g_to[i]) CHECK(unreg(&g_to[i]) == 1);
  }
  clear_roots();
  unwatch_all(g_moved_obj, N);
}

static void test_move(void) {
  check_move(GC_general_register_disappearing_link, GC_move_disappearing_link, GC_unregister_disappearing_link);
  check_move(GC_register_long_link, GC_move_long_link, GC_unregister_long_link);
}

/* --- links inside a reclaimed object ------------------------------------------------------ */

#define FILLERS 4096
#define PATTERN ((uintptr_t)0xA5A5A5A5A5A5A5A5ull)

void* volatile links_fillers; /* a GC_malloc'd array of FILLERS objects of SIZE bytes */
static watch_t g_holder[N];
static uintptr_t g_holder_link[N]; /* hidden address of each holder's link */
static watch_t g_target[N];

/* holder (unrooted) holds, at word 1, a link to target (rooted). */
static NOINLINE void make_holder(int i) {
  void** holder = GC_malloc(SIZE);
  void* target = new_object(i);
  CHECK(holder != NULL);
  watch(&g_holder[i], holder);
  watch(&g_target[i], target);
  holder[1] = (void*)hide(target);
  CHECK(GC_general_register_disappearing_link(&holder[1], target) == GC_SUCCESS);
  g_holder_link[i] = hide(&holder[1]);
  links_root[i] = target;
}

/* Fill the heap's SIZE-byte slots (the reclaimed holders among them). */
static NOINLINE void make_fillers(void) {
  void** fillers = GC_malloc(FILLERS * sizeof(void*));
  CHECK(fillers != NULL);
  links_fillers = fillers;
  for (int f = 0; f < FILLERS; f++) {
    uintptr_t* p = GC_malloc(SIZE); /* the holders' kind, to reuse their slots */
    CHECK(p != NULL);
    for (size_t w = 0; w < SIZE / sizeof(uintptr_t); w++) p[w] = PATTERN;
    fillers[f] = p;
  }
}

/* How many of the reclaimed holders' slots the fillers took (for
 * MGC_COMPAT_VERBOSE: reuse makes the test stronger, but is not asked). */
static NOINLINE int holders_reused(void) {
  void** fillers = links_fillers;
  int reused = 0;
  for (int i = 0; i < N; i++) {
    if (alive(&g_holder[i])) continue;
    char* holder = (char*)reveal(g_holder_link[i]) - sizeof(void*);
    for (int f = 0; f < FILLERS; f++) reused += fillers[f] == holder;
  }
  return reused;
}

static NOINLINE int fillers_intact(void) {
  void** fillers = links_fillers;
  for (int f = 0; f < FILLERS; f++) {
    const uintptr_t* p = fillers[f];
    for (size_t w = 0; w < SIZE / sizeof(uintptr_t); w++)
      if (p[w] != PATTERN) return 0;
  }
  return 1;
}

static void test_link_in_reclaimed_object(void) {
  for (int i = 0; i < N; i++) make_holder(i);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_holder, N); /* the holders, and their links, are gone */
  CHECK_ALL_ALIVE(g_target, N);
  for (int i = 0; i < N; i++)
    if (!alive(&g_holder[i])) CHECK(GC_unregister_disappearing_link(reveal(g_holder_link[i])) == 0);
  make_fillers();
  if (getenv("MGC_COMPAT_VERBOSE")) fprintf(stderr, "links_test: %d holders' slots reused\n", holders_reused());
  clear_roots(); /* now the targets die: no link of theirs may be written */
  collect();
  CHECK_MOSTLY_RECLAIMED(g_target, N);
  CHECK(fillers_intact());
  links_fillers = NULL;
  unwatch_all(g_holder, N);
  unwatch_all(g_target, N);
}

/* --- long links ------------------------------------------------------------------------ */

static watch_t g_short[N];
static watch_t g_long[N];
static int g_long_runs[N];
static int g_long_state_ok[N];
static int g_long_slot[N];
static int g_resurrect;
void* volatile links_resurrected[N];

static void GC_CALLBACK check_long(void* obj, void* cd) {
  int i = *(int*)cd;
  g_long_runs[i]++;
  /* The finalizer has the object: the short link is gone, the long one not. */
  g_long_state_ok[i] = !alive(&g_short[i]) && alive(&g_long[i]) && watched(&g_long[i]) == obj;
  if (g_resurrect) links_resurrected[i] = obj;
}

static NOINLINE void make_long_linked(int i, int finalizable) {
  void* p = new_object(i);
  watch(&g_short[i], p);
  watch_long(&g_long[i], p);
  g_hidden[i] = hide(p);
  CHECK(GC_register_long_link(&g_long[i].link, p) == GC_DUPLICATE);
  if (finalizable) {
    g_long_slot[i] = i;
    GC_register_finalizer(p, check_long, &g_long_slot[i], NULL, NULL);
  }
}

static NOINLINE int resurrected_intact(int i) {
  return links_resurrected[i] == reveal(g_hidden[i]) &&
         filled((void**)links_resurrected[i] + 2, SIZE - 2 * sizeof(void*), (unsigned)i);
}

static void reset_long(void) {
  unwatch_all(g_short, N);
  unwatch_all(g_long, N);
  memset(g_long_runs, 0, sizeof g_long_runs);
}

static int long_runs(void) {
  int ran = 0;
  for (int i = 0; i < N; i++) {
    CHECK_CMP(g_long_runs[i], <=, 1);
    if (g_long_runs[i]) CHECK(g_long_state_ok[i]);
    ran += g_long_runs[i];
  }
  return ran;
}

static void test_long_links(void) {
  /* Without a finalizer, a long link is cleared as a short one. */
  for (int i = 0; i < N; i++) make_long_linked(i, 0);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_short, N);
  CHECK_MOSTLY_RECLAIMED(g_long, N);
  reset_long();

  /* With one, the long link outlives the finalizer's run by a cycle. */
  for (int i = 0; i < N; i++) make_long_linked(i, 1);
  collect();
  CHECK_CMP(long_runs() * 8, >=, 7 * N);
  for (int i = 0; i < N; i++)
    if (g_long_runs[i]) CHECK(alive(&g_long[i]));
  collect();
  CHECK_MOSTLY_RECLAIMED(g_long, N);
  reset_long();

  /* A finalizer that makes its object reachable again keeps the long link. */
  g_resurrect = 1;
  for (int i = 0; i < N; i++) make_long_linked(i, 1);
  collect();
  CHECK_CMP(long_runs() * 8, >=, 7 * N);
  g_resurrect = 0;
  collect();
  collect();
  for (int i = 0; i < N; i++) {
    if (!g_long_runs[i]) continue;
    CHECK(alive(&g_long[i]));
    CHECK(resurrected_intact(i));
  }
  for (int i = 0; i < N; i++) links_resurrected[i] = NULL;
  collect();
  CHECK_MOSTLY_RECLAIMED(g_long, N);

  static void* never_registered;
  CHECK(GC_unregister_long_link(&never_registered) == 0);
  reset_long();
}

int main(void) {
  GC_INIT();
  run("kept intact, then cleared", test_kept_then_cleared);
  run("cleared before finalizers run", test_cleared_before_finalizers);
  run("GC_DUPLICATE, the last object wins", test_duplicate);
  run("GC_register_disappearing_link", test_register_disappearing_link);
  run("GC_unregister_disappearing_link", test_unregister);
  run("GC_move_disappearing_link, GC_move_long_link", test_move);
  run("links in a reclaimed object", test_link_in_reclaimed_object);
  run("long links", test_long_links);
  return finish();
}
