#include "heap/kinds.hpp"

#include <atomic>
#include <mutex>

#include "os/fatal.hpp"
#include "os/mutex.hpp"

namespace mgc::internal {
namespace {

KindRecord g_kinds[kMaxCustomKinds];
// Published after a record is written: readers of a kind got it from
// register_kind (or from a span made with it), after the release.
std::atomic<int> g_count{0};
std::atomic<bool> g_marks_from_all{false};
Mutex g_lock;

}  // namespace

void lock_kinds() { g_lock.lock(); }
void unlock_kinds() { g_lock.unlock(); }

bool register_kind(const KindRecord& r, Kind* out) {
  std::lock_guard<Mutex> g(g_lock);
  const int n = g_count.load(std::memory_order_relaxed);
  if (n == kMaxCustomKinds) return false;
  g_kinds[n] = r;
  g_count.store(n + 1, std::memory_order_release);
  *out = static_cast<Kind>(static_cast<int>(Kind::kFirstCustom) + n);
  return true;
}

const KindRecord& kind_record(Kind k) {
  const int i = static_cast<int>(k) - static_cast<int>(Kind::kFirstCustom);
  if (i < 0 || i >= g_count.load(std::memory_order_acquire)) fatal("kind %d was never registered", static_cast<int>(k));
  return g_kinds[i];
}

int custom_kinds() { return g_count.load(std::memory_order_acquire); }

void set_kind_disclaim(Kind k, int (*disclaim)(void*), bool mark_from_all) {
  std::lock_guard<Mutex> g(g_lock);
  KindRecord& r = const_cast<KindRecord&>(kind_record(k));
  r.disclaim = disclaim;
  r.mark_from_all = mark_from_all;
  if (mark_from_all) g_marks_from_all.store(true, std::memory_order_release);
}

bool any_kind_marks_from_all() { return g_marks_from_all.load(std::memory_order_acquire); }

}  // namespace mgc::internal
