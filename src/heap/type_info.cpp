#include "heap/type_info.hpp"

#include <cstring>
#include <mutex>

#include "heap/meta_alloc.hpp"
#include "mallocgc/internal/fast_path.hpp"
#include "os/mem.hpp"
#include "os/mutex.hpp"

namespace mgc::internal {
namespace {

// Types larger than this cannot be allocated anyway (see malloc's limit).
constexpr std::size_t kMaxTypeSize = std::size_t{1} << 40;
constexpr std::size_t kBuckets = 1024;

struct TypeTable {
  Mutex lock;
  TypeInfo* buckets[kBuckets] = {};
};
constinit TypeTable g_types;

std::size_t hash_layout(std::size_t size, const std::uint64_t* bits, std::size_t nbitwords) {
  std::uint64_t h = size * 0x9E3779B97F4A7C15ull;
  for (std::size_t i = 0; i < nbitwords; i++) h = (h ^ bits[i]) * 0x100000001B3ull;
  return static_cast<std::size_t>(h ^ (h >> 29)) % kBuckets;
}

}  // namespace

const char* type_error_string(TypeError e) {
  switch (e) {
    case TypeError::kNone:
      return "no error";
    case TypeError::kZeroSize:
      return "size is 0";
    case TypeError::kTooLarge:
      return "size is too large";
    case TypeError::kMisaligned:
      return "a pointer offset is not a multiple of 8";
    case TypeError::kOutOfRange:
      return "a pointer word does not lie inside the object";
    case TypeError::kNoMemory:
      return "out of memory";
  }
  return "unknown error";
}

const TypeInfo* intern_type(std::size_t size, const std::size_t* offsets, std::size_t count, TypeError* error,
                            std::size_t period) {
  *error = TypeError::kNone;
  if (size == 0) return *error = TypeError::kZeroSize, nullptr;
  if (size > kMaxTypeSize) return *error = TypeError::kTooLarge, nullptr;
  // An element's pointer words lie in the element, which fits the object.
  const std::size_t extent = period == 0 ? size : period * 8;
  if (period != 0 && extent > size) return *error = TypeError::kOutOfRange, nullptr;
  std::size_t nwords = 0;
  for (std::size_t i = 0; i < count; i++) {
    if (offsets[i] % 8 != 0) return *error = TypeError::kMisaligned, nullptr;
    if (offsets[i] >= extent || extent - offsets[i] < 8) return *error = TypeError::kOutOfRange, nullptr;
    if (offsets[i] / 8 + 1 > nwords) nwords = offsets[i] / 8 + 1;
  }
  const std::size_t nbitwords = nwords == 0 ? 1 : (nwords + 63) / 64;
  const std::size_t bytes = offsetof(TypeInfo, bits) + nbitwords * sizeof(std::uint64_t);
  // Build the record first, then look for an equal one. Records too big
  // for the metadata allocator (pointer words beyond 4 MiB into the
  // object) get a mapping of their own.
  const bool mapped = bytes > kMaxMetaBlock;
  auto* t = static_cast<TypeInfo*>(mapped ? os::map_metadata(bytes) : meta_alloc(bytes));
  if (t == nullptr) return *error = TypeError::kNoMemory, nullptr;
  auto discard = [&] {
    if (mapped) {
      os::unmap(t, bytes);
    } else {
      meta_free(t, bytes);
    }
  };
  std::size_t npointers = 0;
  for (std::size_t i = 0; i < count; i++) {
    const std::size_t w = offsets[i] / 8;
    if (!((t->bits[w / 64] >> (w % 64)) & 1)) npointers++;
    t->bits[w / 64] |= std::uint64_t{1} << (w % 64);
  }
  t->size = size;
  t->nwords = nwords;
  t->npointers = npointers;
  t->period = period;
  const int cls = size_to_class(size);
  if (size <= kMaxInlineZero && cls != 0) {
    t->elem_size = kClassToSize[cls];
    t->span_class = static_cast<std::uint32_t>(span_class(cls, Kind::kTyped));
  }
  const std::size_t h = hash_layout(size, t->bits, nbitwords);
  std::lock_guard<Mutex> g(g_types.lock);
  for (TypeInfo* u = g_types.buckets[h]; u != nullptr; u = u->next_interned) {
    if (u->size == size && u->nwords == nwords && u->period == period &&
        std::memcmp(u->bits, t->bits, nbitwords * 8) == 0) {
      discard();
      return u;
    }
  }
  t->next_interned = g_types.buckets[h];
  g_types.buckets[h] = t;
  return t;
}

void lock_type_table() { g_types.lock.lock(); }
void unlock_type_table() { g_types.lock.unlock(); }

}  // namespace mgc::internal
