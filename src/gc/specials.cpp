#include "gc/specials.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gc/link_table.hpp"
#include "gc/mark.hpp"
#include "gc/threads.hpp"
#include "heap/mheap.hpp"
#include "os/fatal.hpp"
#include "os/immortal.hpp"
#include "os/mutex.hpp"

namespace mgc::internal {

std::atomic<std::size_t> g_finalizers_queued{0};
void (*g_caller_finalizer_hook)() = nullptr;

namespace {

struct Finalizer {
  FinalizerFn fn;
  void* data;
  FinalizerOrder order;
  bool doomed;  // found unreachable; moves to the queue after the stop
};

struct Queued {
  void* obj;
  FinalizerFn fn;
  void* data;
};

// Immortal: the finalizer thread waits on these until the process ends.
Mutex g_specials_lock;
std::unordered_map<std::uintptr_t, Finalizer>& finalizers() {
  static Immortal<std::unordered_map<std::uintptr_t, Finalizer>> x;
  return *x;
}
LinkTable& links(bool long_link) {
  static Immortal<LinkTable> short_links, long_links;
  return long_link ? *long_links : *short_links;
}
WeakHandle* g_weak_first = nullptr;
std::size_t g_weak_count = 0;
bool g_java_finalization = false;
void (*g_queue_hook)(void*) = nullptr;
bool g_links_died = false;  // some link is dead: queue_doomed_finalizers erases
// The links that died in the last stop, per table (short, long), so that
// erasing them after it does not walk the whole table again (guile's weak
// tables hold hundreds of thousands). The world is stopped when they are
// written, and a stopped thread may hold the system allocator's lock: they
// only grow outside a stop (reserved to the tables' sizes after each
// erase); a death that finds no room asks for the full walk instead.
std::vector<std::uintptr_t>& dead_links(bool long_link) {
  static Immortal<std::vector<std::uintptr_t>> short_dead, long_dead;
  return long_link ? *long_dead : *short_dead;
}
bool g_dead_links_overflowed = false;

// World stopped: link addr of table long_link has died.
void note_dead_link(std::uintptr_t addr, bool long_link) {
  std::vector<std::uintptr_t>& v = dead_links(long_link);
  if (v.size() < v.capacity()) {
    v.push_back(addr);  // no allocation: within the capacity
  } else {
    g_dead_links_overflowed = true;
  }
  g_links_died = true;
}

Mutex g_queue_lock;
std::condition_variable_any& queue_cv() {
  static Immortal<std::condition_variable_any> x;
  return *x;
}
std::condition_variable_any& done_cv() {
  static Immortal<std::condition_variable_any> x;
  return *x;
}
std::deque<Queued>& queue() {
  static Immortal<std::deque<Queued>> x;
  return *x;
}
std::uint64_t g_queued_total = 0;
std::uint64_t g_done_total = 0;
// Whether the finalizer thread runs or is starting: set as it is started,
// cleared when it could not start (no thread, or no memory for its record)
// and in the child of fork(), which has none. Written under the specials
// lock, and under the queue lock too when cleared, since
// wait_for_finalizers waits on it.
std::atomic<bool> g_thread_started{false};
FinalizerPolicy g_policy = FinalizerPolicy::kThread;

__thread bool tls_running_finalizers __attribute__((tls_model("initial-exec")));

void adjust_specials(std::uintptr_t base, int delta) {
  MSpan* s = mheap().span_of(base);
  if (s == nullptr) fatal("specials: object %#lx has no span", static_cast<unsigned long>(base));
  if (delta > 0) {
    s->specials.fetch_add(1, std::memory_order_relaxed);
  } else {
    s->specials.fetch_sub(1, std::memory_order_relaxed);
  }
}

// Queue lock held: take the oldest queued finalizer.
Queued pop_locked() {
  Queued q = queue().front();
  queue().pop_front();
  g_finalizers_queued.fetch_sub(1, std::memory_order_relaxed);
  return q;
}

// Take one queued finalizer and run it. Its own frame, so that once it
// returns no register or slot of the loop's frame holds the object.
[[gnu::noinline]] void run_one_finalizer() {
  Queued q;
  {
    std::unique_lock<Mutex> g(g_queue_lock);
    queue_cv().wait(g, [] { return !queue().empty(); });
    q = pop_locked();
  }
  q.fn(q.obj, q.data);
}

void finalizer_thread();

// Specials lock held: the finalizer thread could not start. Nothing is
// lost: the queued finalizers wait for the next start (the next cycle that
// queues some, the next set_finalizer), and wait_for_finalizers, woken
// here, runs them in its caller.
void finalizer_thread_failed_locked() {
  std::lock_guard<Mutex> q(g_queue_lock);
  g_thread_started.store(false, std::memory_order_relaxed);
  done_cv().notify_all();
}

// Specials lock held.
void start_finalizer_thread_locked() {
  if (g_thread_started.load(std::memory_order_relaxed)) return;
  // Set first: a thread that fails at once clears it only after we let go
  // of the specials lock.
  g_thread_started.store(true, std::memory_order_relaxed);
  try {
    std::thread(finalizer_thread).detach();
  } catch (const std::system_error&) {
    finalizer_thread_failed_locked();
  }
}

void finalizer_thread() {
  // The object sits on this stack during the call.
  if (register_thread() == nullptr) {  // no memory for its record
    std::lock_guard<Mutex> s(g_specials_lock);
    finalizer_thread_failed_locked();
    return;
  }
  for (;;) {
    clear_vector_registers();
    run_one_finalizer();
    // Before completion is published: once wait_for_finalizers returns, the
    // program may drop the object, and a stop of this thread must then
    // find no copy of it on the stack or in a register.
    scrub_stack_below(16 * 1024);
    clear_vector_registers();
    std::lock_guard<Mutex> g(g_queue_lock);
    g_done_total++;
    done_cv().notify_all();
  }
}

// The key of the live object holding p in the special tables: its start,
// or for a tiny object p itself (objects share a tiny block; a tiny
// object is named by its own address). A fatal error naming what when p
// is in no live object.
std::uintptr_t live_object(const void* p, const char* what) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t base = object_base(a);
  if (base == 0) fatal("%s(%p): not a live object of this heap", what, p);
  return mheap().span_of(a)->kind == Kind::kTiny ? a : base;
}

// Where a link's location lies: in the heap in an object the mark did not
// reach (or in no allocated object), the location dies with the heap
// memory and the link is dropped without a write (Boehm's dangling links).
bool link_location_dead(std::uintptr_t link) { return mheap().span_of(link) != nullptr && !object_marked(link); }

// World stopped: clear (write NULL to) the live links of table whose object
// is unmarked.
void clear_links_to_unmarked(bool long_link) {
  links(long_link).for_each([long_link](Link& l) {
    if (l.dead() || object_marked(l.obj())) return;
    *reinterpret_cast<void**>(l.addr()) = nullptr;
    l.set_dead();
    note_dead_link(l.addr(), long_link);
  });
}

void drop_dangling_links(bool long_link) {
  links(long_link).for_each([long_link](Link& l) {
    if (l.dead() || !link_location_dead(l.addr())) return;
    l.set_dead();
    note_dead_link(l.addr(), long_link);
  });
}

// Long links, in one walk: a link whose location died is dropped without a
// write; one whose object died is cleared.
void drop_or_clear_long_links() {
  links(true).for_each([](Link& l) {
    if (l.dead()) return;
    if (link_location_dead(l.addr())) {
      l.set_dead();
      note_dead_link(l.addr(), true);
    } else if (!object_marked(l.obj())) {
      *reinterpret_cast<void**>(l.addr()) = nullptr;
      l.set_dead();
      note_dead_link(l.addr(), true);
    }
  });
}

// Specials lock held, world running. A link registered again at a dead
// link's address since the stop is live again and stays.
void erase_dead_links(bool long_link, bool walk_all) {
  LinkTable& table = links(long_link);
  std::vector<std::uintptr_t>& dead = dead_links(long_link);
  if (walk_all) {
    table.erase_if([](const Link& l) { return l.dead(); });
  } else {
    for (std::uintptr_t addr : dead) {
      Link* l = table.find(addr);
      if (l != nullptr && l->dead()) table.erase(l);
    }
  }
  dead.clear();
}

// Specials lock held, world running: room for every link to die in the
// next stop without allocating.
void reserve_dead_links() {
  for (bool long_link : {false, true}) {
    try {
      dead_links(long_link).reserve(links(long_link).size());
    } catch (const std::bad_alloc&) {
      // The next stop walks the table instead (g_dead_links_overflowed).
    }
  }
}

}  // namespace

void set_finalizer_policy(FinalizerPolicy p, void (*hook)()) {
  std::lock_guard<Mutex> g(g_specials_lock);
  g_policy = p;
  g_caller_finalizer_hook = p == FinalizerPolicy::kCaller ? hook : nullptr;
}

void set_queue_hook(void (*hook)(void*)) {
  std::lock_guard<Mutex> g(g_specials_lock);
  g_queue_hook = hook;
}

void set_java_finalization(bool on) {
  std::lock_guard<Mutex> g(g_specials_lock);
  g_java_finalization = on;
}

int debug_fail_special_allocations = 0;

namespace {
// The system allocator behind the tables, or the test hook, refusing.
void check_special_allocation() {
  if (debug_fail_special_allocations > 0) {
    debug_fail_special_allocations--;
    throw std::bad_alloc();
  }
}
}  // namespace

bool set_finalizer(void* obj, FinalizerFn fn, void* data, FinalizerOrder order, FinalizerEntry* old) {
  const std::uintptr_t base = live_object(obj, "set_finalizer");
  if (base != reinterpret_cast<std::uintptr_t>(obj))
    fatal("set_finalizer(%p): not the start of an object (it is inside the object at %#lx)", obj,
          static_cast<unsigned long>(base));
  std::lock_guard<Mutex> g(g_specials_lock);
  if (fn != nullptr && g_policy == FinalizerPolicy::kThread) start_finalizer_thread_locked();
  auto it = finalizers().find(base);
  if (old != nullptr)
    *old = it == finalizers().end() ? FinalizerEntry{} : FinalizerEntry{it->second.fn, it->second.data};
  if (fn == nullptr) {
    if (it != finalizers().end()) {
      finalizers().erase(it);
      adjust_specials(base, -1);
    }
    return true;
  }
  if (it != finalizers().end()) {
    it->second = Finalizer{fn, data, order, false};
    return true;
  }
  try {
    check_special_allocation();
    finalizers().emplace(base, Finalizer{fn, data, order, false});
  } catch (const std::bad_alloc&) {
    return false;  // none set; *old says there was none
  }
  adjust_specials(base, +1);
  return true;
}

void wait_for_finalizers() {
  for (;;) {
    bool own_thread;
    {
      std::lock_guard<Mutex> s(g_specials_lock);
      own_thread = g_policy == FinalizerPolicy::kThread;
      if (own_thread) start_finalizer_thread_locked();  // again, if it could not start before
    }
    {
      std::unique_lock<Mutex> g(g_queue_lock);
      const std::uint64_t target = g_queued_total;
      done_cv().wait(g, [&] {
        return g_done_total >= target || (own_thread && !g_thread_started.load(std::memory_order_relaxed));
      });
      if (g_done_total >= target) return;
    }
    // The finalizer thread could not start (no memory for its record, or
    // no thread): the caller runs what is queued.
    run_queued_finalizers();
  }
}

std::size_t run_queued_finalizers() {
  if (tls_running_finalizers) return 0;
  tls_running_finalizers = true;
  std::size_t n = 0;
  for (;;) {
    Queued q;
    {
      std::lock_guard<Mutex> g(g_queue_lock);
      if (queue().empty()) break;
      q = pop_locked();
    }
    q.fn(q.obj, q.data);
    n++;
    std::lock_guard<Mutex> g(g_queue_lock);
    g_done_total++;
    done_cv().notify_all();
  }
  tls_running_finalizers = false;
  return n;
}

std::size_t queue_all_finalizers() {
  {
    std::lock_guard<Mutex> g(g_specials_lock);
    // A cycle before they are queued keeps doomed objects as roots.
    for (auto& [base, f] : finalizers()) f.doomed = true;
  }
  return queue_doomed_finalizers();
}

WeakHandle* weak_create(const void* p) {
  if (p == nullptr) return nullptr;
  const std::uintptr_t base = live_object(p, "weak reference to");
  auto* h = new (std::nothrow) WeakHandle();
  if (h == nullptr) return nullptr;
  h->target.store(reinterpret_cast<std::uintptr_t>(p), std::memory_order_relaxed);
  h->base = base;
  std::lock_guard<Mutex> g(g_specials_lock);
  h->prev = nullptr;
  h->next = g_weak_first;
  if (g_weak_first != nullptr) g_weak_first->prev = h;
  g_weak_first = h;
  g_weak_count++;
  adjust_specials(base, +1);
  return h;
}

void* weak_get(const WeakHandle* h) { return reinterpret_cast<void*>(h->target.load(std::memory_order_acquire)); }

void weak_destroy(WeakHandle* h) {
  {
    std::lock_guard<Mutex> g(g_specials_lock);
    if (h->prev != nullptr) {
      h->prev->next = h->next;
    } else {
      g_weak_first = h->next;
    }
    if (h->next != nullptr) h->next->prev = h->prev;
    g_weak_count--;
    if (h->target.load(std::memory_order_relaxed) != 0) adjust_specials(h->base, -1);
  }
  delete h;
}

LinkResult register_link(void** link, std::uintptr_t obj_base, bool long_link) {
  const auto addr = reinterpret_cast<std::uintptr_t>(link);
  // The table keeps a flag in the low bit (and writes a word there).
  if (addr == 0 || (addr & 7) != 0) fatal("register_link(%p): the location is null or not aligned", link);
  std::lock_guard<Mutex> g(g_specials_lock);
  try {
    // Room for this one to die in a stop (see dead_links), grown ahead.
    std::vector<std::uintptr_t>& dead = dead_links(long_link);
    if (dead.capacity() <= links(long_link).size()) dead.reserve(2 * links(long_link).size() + 16);
    auto [l, inserted] = links(long_link).try_emplace(addr, obj_base);
    if (inserted) return LinkResult::kSuccess;
    // A link cleared in the last stop and not erased yet is gone already.
    const bool was_live = !l->dead();
    // Boehm: a link follows the last object it was registered with.
    l->reset(obj_base);
    return was_live ? LinkResult::kDuplicate : LinkResult::kSuccess;
  } catch (const std::bad_alloc&) {
    return LinkResult::kNoMemory;
  }
}

bool unregister_link(void** link, bool long_link) {
  std::lock_guard<Mutex> g(g_specials_lock);
  Link* l = links(long_link).find(reinterpret_cast<std::uintptr_t>(link));
  if (l == nullptr) return false;
  const bool live = !l->dead();
  links(long_link).erase(l);
  return live;
}

LinkResult move_link(void** link, void** new_link, bool long_link) {
  const auto from = reinterpret_cast<std::uintptr_t>(link);
  const auto to = reinterpret_cast<std::uintptr_t>(new_link);
  std::lock_guard<Mutex> g(g_specials_lock);
  LinkTable& table = links(long_link);
  Link* src = table.find(from);
  if (src == nullptr || src->dead()) return LinkResult::kNotFound;
  if (from == to) return LinkResult::kSuccess;
  Link* dst = table.find(to);
  if (dst != nullptr && !dst->dead()) return LinkResult::kDuplicate;
  if (to == 0 || (to & 7) != 0) fatal("move_link(%p, %p): the new location is null or not aligned", link, new_link);
  const std::uintptr_t obj = src->obj();
  try {
    table.try_emplace(to, obj).first->reset(obj);  // a dead one there is replaced
  } catch (const std::bad_alloc&) {
    return LinkResult::kNoMemory;
  }
  table.erase(from);  // by address: the insertion may have moved the entries
  return LinkResult::kSuccess;
}

void drop_specials(std::uintptr_t base) {
  std::lock_guard<Mutex> g(g_specials_lock);
  auto it = finalizers().find(base);
  if (it != finalizers().end()) {
    finalizers().erase(it);
    adjust_specials(base, -1);
  }
  for (WeakHandle* h = g_weak_first; h != nullptr; h = h->next) {
    if (h->base == base && h->target.load(std::memory_order_relaxed) != 0) {
      h->target.store(0, std::memory_order_release);
      adjust_specials(base, -1);
    }
  }
}

SpecialsCounts specials_counts() {
  std::lock_guard<Mutex> g(g_specials_lock);
  std::lock_guard<Mutex> q(g_queue_lock);
  return {finalizers().size(), g_weak_count, links(false).size(), links(true).size(), queue().size()};
}

void lock_specials() {
  g_specials_lock.lock();
  g_queue_lock.lock();
}

void unlock_specials() {
  g_queue_lock.unlock();
  g_specials_lock.unlock();
}

void specials_after_fork() {
  // The finalizer thread and the parent's waiters did not come along: the
  // condition variables may count waiters that do not exist here (a
  // notify could wait for them), so they are made anew. A finalizer the
  // parent's thread was running is the parent's: counted done here.
  ::new (&queue_cv()) std::condition_variable_any();
  ::new (&done_cv()) std::condition_variable_any();
  g_thread_started.store(false, std::memory_order_relaxed);
  g_done_total = g_queued_total - queue().size();
  if (!queue().empty() && g_policy == FinalizerPolicy::kThread) start_finalizer_thread_locked();
}

void mark_finalizer_roots() {
  for (const auto& [base, f] : finalizers()) {
    mark_object_at(reinterpret_cast<std::uintptr_t>(f.data), RootKind::kFinalizer);
    if (f.doomed) mark_object_at(base, RootKind::kFinalizer);
  }
  for (const Queued& q : queue()) {
    mark_object_at(reinterpret_cast<std::uintptr_t>(q.obj), RootKind::kFinalizer);
    mark_object_at(reinterpret_cast<std::uintptr_t>(q.data), RootKind::kFinalizer);
  }
}

std::uint64_t finalize_after_mark() {
  std::uint64_t marked = 0;
  // 1. Short links to unmarked objects.
  clear_links_to_unmarked(false);
  // 2. What unmarked finalizable objects reach, as their order says.
  bool pushed = false;
  for (const auto& [base, f] : finalizers()) {
    if (f.doomed || object_marked(base)) continue;
    switch (f.order) {
      case FinalizerOrder::kOrdered:
      case FinalizerOrder::kUnreachable:
        mark_referents_of(base);
        pushed = true;
        break;
      case FinalizerOrder::kIgnoreSelf:
        mark_referents_of(base, /*exclude_self=*/true);
        pushed = true;
        break;
      case FinalizerOrder::kNoOrder:
        break;
    }
  }
  if (pushed) marked += mark_drain();
  // The C++ API's weak references, as Go clears them: an object that an
  // unreachable finalizable one reaches keeps its weak references, the
  // finalizable one loses them before its finalizer runs.
  for (WeakHandle* h = g_weak_first; h != nullptr; h = h->next) {
    const std::uintptr_t t = h->target.load(std::memory_order_relaxed);
    if (t != 0 && !object_marked(t)) {
      h->target.store(0, std::memory_order_release);
      adjust_specials(h->base, -1);
    }
  }
  // 3. Doom the rest and keep them (and what they reach) for the call.
  std::size_t doomed = 0;
  for (auto& [base, f] : finalizers()) {
    if (f.doomed || object_marked(base)) continue;
    f.doomed = true;
    doomed++;
    // Java mode: no-order objects' referents count before an unreachable
    // one is judged; unreachable ones wait for that judgement.
    if (g_java_finalization && f.order == FinalizerOrder::kNoOrder) mark_referents_of(base);
    if (!g_java_finalization || f.order != FinalizerOrder::kUnreachable) mark_object_at(base, RootKind::kFinalizer);
  }
  if (doomed != 0) marked += mark_drain();
  if (g_java_finalization && doomed != 0) {
    bool any = false;
    for (auto& [base, f] : finalizers()) {
      if (!f.doomed || f.order != FinalizerOrder::kUnreachable) continue;
      if (object_marked(base)) {
        f.doomed = false;  // another finalizable object still reaches it
      } else {
        mark_object_at(base, RootKind::kFinalizer);
        any = true;
      }
    }
    if (any) marked += mark_drain();
  }
  // 4. Links that lived in dead objects, then long links.
  drop_dangling_links(false);
  drop_or_clear_long_links();
  return marked;
}

std::size_t queue_doomed_finalizers() {
  std::lock_guard<Mutex> g(g_specials_lock);
  if (g_links_died) {
    erase_dead_links(false, g_dead_links_overflowed);
    erase_dead_links(true, g_dead_links_overflowed);
    g_links_died = false;
    g_dead_links_overflowed = false;
  }
  reserve_dead_links();
  std::size_t n = 0;
  for (auto it = finalizers().begin(); it != finalizers().end();) {
    if (!it->second.doomed) {
      ++it;
      continue;
    }
    {
      std::lock_guard<Mutex> q(g_queue_lock);
      try {
        check_special_allocation();
        queue().push_back({reinterpret_cast<void*>(it->first), it->second.fn, it->second.data});
      } catch (const std::bad_alloc&) {
        // No room in the queue: the rest stay doomed in the table, where
        // the next cycle keeps them alive (mark_finalizer_roots) and queues
        // them again.
        break;
      }
      g_finalizers_queued.fetch_add(1, std::memory_order_relaxed);
      g_queued_total++;
    }
    adjust_specials(it->first, -1);
    if (g_queue_hook != nullptr) g_queue_hook(reinterpret_cast<void*>(it->first));
    it = finalizers().erase(it);
    n++;
  }
  if (n != 0) {
    // In the child of a fork the thread is started again by the first
    // finalizers queued there.
    if (g_policy == FinalizerPolicy::kThread) start_finalizer_thread_locked();
    queue_cv().notify_all();
  }
  return n;
}

}  // namespace mgc::internal
