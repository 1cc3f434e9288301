#include "prof/sample.hpp"

#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "gc/threads.hpp"
#include "heap/mcache.hpp"
#include "heap/mheap.hpp"
#include "os/fatal.hpp"
#include "os/mutex.hpp"
#include "prof/math.hpp"
#include "prof/unwind.hpp"

namespace mgc::internal {

constinit std::atomic<std::int64_t> g_memprofile_rate{kDefaultMemProfileRate};
constinit std::atomic<bool> g_allocfreetrace{false};

namespace {

// --- sampling ----------------------------------------------------------------

std::uint64_t next_random(MCache* c) {
  std::uint64_t x = c->sample_rand;
  if (x == 0) {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    x = (reinterpret_cast<std::uintptr_t>(c) * 0x9E3779B97F4A7C15ull) ^ static_cast<std::uint64_t>(t.tv_nsec) ^
        (static_cast<std::uint64_t>(t.tv_sec) << 32);
    if (x == 0) x = 1;
  }
  x ^= x >> 12;  // xorshift64*
  x ^= x << 25;
  x ^= x >> 27;
  c->sample_rand = x;
  return x * 0x2545F4914F6CDD1Dull;
}

// Bytes to the next sample: exponential with mean rate (Go: fastexprand),
// so that the sampling points form a Poisson process over the bytes
// allocated and an object's chance to be sampled depends on its size only.
std::int64_t draw_distance(MCache* c, std::int64_t rate) {
  // u uniform in (0, 1]: 53 random bits, plus one so that log(u) is finite.
  const double u = static_cast<double>((next_random(c) >> 11) + 1) * 0x1.0p-53;
  const double d = -log_of(u) * static_cast<double>(rate);
  if (d >= 0x1.0p62) return std::int64_t{1} << 62;
  return static_cast<std::int64_t>(d) + 1;
}

// The rate in force, with c's budget drawn for it when it changed (or c
// was reset): a budget left from another rate would bias the next sample.
std::int64_t current_rate(MCache* c) {
  const std::int64_t rate = g_memprofile_rate.load(std::memory_order_relaxed);
  if (c->sample_rate != rate) {
    c->sample_rate = rate;
    if (rate > 1) c->sample_budget = draw_distance(c, rate) - c->exposed_bytes();
  }
  return rate;
}

// Whether an allocation of e bytes that no chunk charged reaches the
// sampling point; c's budget then counts it (or starts anew after it).
// B = distance left - exposed bytes, so the exact distance is needed only
// when e >= B.
bool decide(MCache* c, std::int64_t rate, std::int64_t e) {
  if (e < c->sample_budget) {
    c->sample_budget -= e;
    return false;
  }
  const std::int64_t exposed = c->exposed_bytes();
  if (e < c->sample_budget + exposed) {
    // Not yet: the others' exposed slots made the budget look short. Take
    // them back, so the budget is the true distance again and this class's
    // chunks are sized from it (see sample_small).
    c->withdraw_chunks();
    c->sample_budget -= e;
    return false;
  }
  c->sample_budget = draw_distance(c, rate) - exposed;
  return true;
}

// --- buckets and sampled objects --------------------------------------------

Mutex g_lock;

constexpr std::size_t kBucketHeads = 4096;
ProfileBucket* g_buckets[kBucketHeads];
std::size_t g_nbuckets = 0;

// Sampled objects still alive: open addressing, linear probing, keyed by
// the object's address. kEmpty ends a probe sequence, kGone does not.
struct ObjectSlot {
  std::uintptr_t addr;
  ProfileBucket* bucket;
};
constexpr std::uintptr_t kEmpty = 0;
constexpr std::uintptr_t kGone = 1;
ObjectSlot* g_objects = nullptr;
std::size_t g_cap = 0;   // a power of two, or 0
std::size_t g_used = 0;  // live and gone slots

std::size_t hash_addr(std::uintptr_t a) { return static_cast<std::size_t>((a >> 4) * 0x9E3779B97F4A7C15ull >> 20); }

ObjectSlot* find_object_slot(std::uintptr_t a) {
  if (g_cap == 0) return nullptr;
  for (std::size_t i = hash_addr(a) & (g_cap - 1);; i = (i + 1) & (g_cap - 1)) {
    if (g_objects[i].addr == a) return &g_objects[i];
    if (g_objects[i].addr == kEmpty) return nullptr;
  }
}

// Lock held, world running (allocates). false when out of memory.
bool grow_objects() {
  if ((g_used + 1) * 2 <= g_cap) return true;
  std::size_t live = 0;
  for (std::size_t i = 0; i < g_cap; i++) live += g_objects[i].addr > kGone;
  std::size_t cap = g_cap == 0 ? 1024 : g_cap;
  while ((live + 1) * 4 > cap) cap *= 2;
  auto* t = static_cast<ObjectSlot*>(std::calloc(cap, sizeof(ObjectSlot)));
  if (t == nullptr) return false;
  for (std::size_t i = 0; i < g_cap; i++) {
    if (g_objects[i].addr <= kGone) continue;
    std::size_t j = hash_addr(g_objects[i].addr) & (cap - 1);
    while (t[j].addr != kEmpty) j = (j + 1) & (cap - 1);
    t[j] = g_objects[i];
  }
  std::free(g_objects);
  g_objects = t;
  g_cap = cap;
  g_used = live;
  return true;
}

void count_free(ProfileBucket* b) {
  b->frees++;
  b->free_bytes += b->size;
}

// Lock held: the record of the object at a goes; the object's span stops
// counting it among its specials.
void drop(ObjectSlot* o, MSpan* s) {
  count_free(o->bucket);
  o->addr = kGone;
  o->bucket = nullptr;
  if (s != nullptr) s->specials.fetch_sub(1, std::memory_order_relaxed);
}

ProfileBucket* find_bucket(std::uint64_t h, std::size_t size, const void* const* stack, int depth) {
  ProfileBucket*& head = g_buckets[h % kBucketHeads];
  for (ProfileBucket* b = head; b != nullptr; b = b->next)
    if (b->hash == h && b->size == size && b->depth == depth &&
        std::memcmp(b->stack, stack, sizeof(void*) * static_cast<std::size_t>(depth)) == 0)
      return b;
  auto* b = static_cast<ProfileBucket*>(std::calloc(1, sizeof(ProfileBucket)));
  if (b == nullptr) return nullptr;
  b->hash = h;
  b->size = size;
  b->depth = depth;
  std::memcpy(b->stack, stack, sizeof(void*) * static_cast<std::size_t>(depth));
  b->next = head;
  head = b;
  g_nbuckets++;
  return b;
}

}  // namespace

SampleChoice sample_small(MCache* c, std::size_t elem) {
  const bool trace = g_allocfreetrace.load(std::memory_order_relaxed);
  const std::int64_t rate = current_rate(c);
  if (rate == 0) return {false, trace ? 1u : 64u};
  if (rate == 1) return {true, 1};
  const auto e = static_cast<std::int64_t>(elem);
  const bool sampled = decide(c, rate, e);
  // The fast path may take n more slots if n * e stays below the budget:
  // then none of them, whatever the other classes' exposed slots, reaches
  // the sampling point. At most half the budget, though: near the point
  // classes that alternate would otherwise take the whole distance from
  // each other at every refill, each time through withdraw_chunks; halves
  // leave room for the others, and the distance is used up in a number of
  // refills logarithmic in it.
  const std::int64_t b = c->sample_budget;
  const std::int64_t n = b >= 2 ? std::min<std::int64_t>((b / 2 - 1) / e, 63) : 0;
  // The chunk's load charges every slot it reserves, this one included,
  // which decide has already counted.
  c->sample_budget += e;
  return {sampled, trace ? 1u : static_cast<std::uint32_t>(1 + n)};
}

bool sample_large(MCache* c, std::size_t bytes) {
  const std::int64_t rate = current_rate(c);
  if (rate == 0) return false;
  if (rate == 1) return true;
  return decide(c, rate, static_cast<std::int64_t>(bytes));
}

void profile_alloc(void* p, std::size_t bytes, const void* pc) {
  void* frames[kMaxProfileStack + 16];
  std::uintptr_t lo = 0, hi = 0;
  if (const ThreadRecord* r = this_thread_record()) lo = r->stack_lo, hi = r->stack_hi;
  const int n = fast_backtrace(frames, static_cast<int>(sizeof frames / sizeof frames[0]), lo, hi);
  // Drop the allocator's own frames: everything before the caller's return
  // address (or, when a tail call hid it, only this function's frame).
  int start = n > 0 ? 1 : 0;
  for (int i = 0; i < n; i++) {
    if (frames[i] == pc) {
      start = i;
      break;
    }
  }
  const int depth = std::min(n - start, kMaxProfileStack);
  const void* const* stack = const_cast<const void* const*>(frames + start);
  std::uint64_t h = 1469598103934665603ull ^ bytes;  // FNV-1a over the words
  for (int i = 0; i < depth; i++) {
    h ^= reinterpret_cast<std::uintptr_t>(stack[i]);
    h *= 1099511628211ull;
  }
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  MSpan* s = mheap().span_of(a);
  std::lock_guard<Mutex> g(g_lock);
  ProfileBucket* b = find_bucket(h, bytes, stack, depth);
  if (b == nullptr) return;  // out of memory: the sample is lost
  b->allocs++;
  b->alloc_bytes += bytes;
  if (ObjectSlot* o = find_object_slot(a)) {
    // A record the object's death did not drop (a disclaimed object's slot,
    // a tiny block freed but for its first object): the old one died.
    count_free(o->bucket);
    o->bucket = b;
    return;
  }
  if (!grow_objects()) {
    count_free(b);  // untracked: count it gone rather than alive forever
    return;
  }
  std::size_t i = hash_addr(a) & (g_cap - 1);
  while (g_objects[i].addr > kGone) i = (i + 1) & (g_cap - 1);
  if (g_objects[i].addr == kEmpty) g_used++;
  g_objects[i] = {a, b};
  // free() of any object of the span now takes its general path, which
  // calls profile_free.
  if (s != nullptr) s->specials.fetch_add(1, std::memory_order_relaxed);
}

void profile_free(std::uintptr_t base) {
  std::lock_guard<Mutex> g(g_lock);
  if (ObjectSlot* o = find_object_slot(base)) drop(o, mheap().span_of(base));
}

void profile_lock() { g_lock.lock(); }
void profile_unlock() { g_lock.unlock(); }

void profile_after_mark() {
  for (std::size_t i = 0; i < g_cap; i++) {
    ObjectSlot* o = &g_objects[i];
    if (o->addr <= kGone) continue;
    MSpan* s = mheap().span_of(o->addr);
    const SpanState st = s == nullptr ? SpanState::kFree : s->state.load(std::memory_order_relaxed);
    bool live = false;
    if (st == SpanState::kLarge) {
      live = s->is_marked(0);
    } else if (st == SpanState::kSmall) {
      live = s->is_marked(s->object_index(o->addr));
    } else {
      s = nullptr;  // freed without its record (cannot happen): nothing to uncount
    }
    if (!live) drop(o, s);
  }
}

ProfileBucket* profile_snapshot(std::size_t* n) {
  std::lock_guard<Mutex> g(g_lock);
  *n = 0;
  if (g_nbuckets == 0) return nullptr;
  auto* out = static_cast<ProfileBucket*>(std::malloc(g_nbuckets * sizeof(ProfileBucket)));
  if (out == nullptr) return nullptr;
  for (ProfileBucket* head : g_buckets)
    for (ProfileBucket* b = head; b != nullptr; b = b->next) out[(*n)++] = *b;
  return out;
}

}  // namespace mgc::internal
