#include "heap/type_info.hpp"

#include <cstring>
#include <mutex>

#include "heap/meta_alloc.hpp"
#include "mallocgc/internal/fast_path.hpp"

namespace mgc::internal {
namespace {

// Types larger than this cannot be allocated anyway (see malloc's limit).
constexpr std::size_t kMaxTypeSize = std::size_t{1} << 40;
constexpr std::size_t kBuckets = 1024;

struct TypeTable {
  std::mutex lock;
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

const TypeInfo* intern_type(std::size_t size, const std::size_t* offsets, std::size_t count, TypeError* error) {
  *error = TypeError::kNone;
  if (size == 0) return *error = TypeError::kZeroSize, nullptr;
  if (size > kMaxTypeSize) return *error = TypeError::kTooLarge, nullptr;
  std::size_t nwords = 0;
  for (std::size_t i = 0; i < count; i++) {
    if (offsets[i] % 8 != 0) return *error = TypeError::kMisaligned, nullptr;
    if (offsets[i] >= size || size - offsets[i] < 8) return *error = TypeError::kOutOfRange, nullptr;
    if (offsets[i] / 8 + 1 > nwords) nwords = offsets[i] / 8 + 1;
  }
  const std::size_t nbitwords = nwords == 0 ? 1 : (nwords + 63) / 64;
  const std::size_t bytes = offsetof(TypeInfo, bits) + nbitwords * sizeof(std::uint64_t);
  if (bytes > kMaxMetaBlock) return *error = TypeError::kTooLarge, nullptr;
  // Build the bitmap on the stack when small, else straight in metadata.
  std::uint64_t small[8] = {};
  std::uint64_t* bits = small;
  void* big = nullptr;
  if (nbitwords > 8) {
    big = meta_alloc(nbitwords * sizeof(std::uint64_t));
    if (big == nullptr) return *error = TypeError::kNoMemory, nullptr;
    bits = static_cast<std::uint64_t*>(big);
  }
  std::size_t npointers = 0;
  for (std::size_t i = 0; i < count; i++) {
    const std::size_t w = offsets[i] / 8;
    if (!((bits[w / 64] >> (w % 64)) & 1)) npointers++;
    bits[w / 64] |= std::uint64_t{1} << (w % 64);
  }
  const std::size_t h = hash_layout(size, bits, nbitwords);
  std::lock_guard<std::mutex> g(g_types.lock);
  for (TypeInfo* t = g_types.buckets[h]; t != nullptr; t = t->next_interned) {
    if (t->size == size && t->nwords == nwords && std::memcmp(t->bits, bits, nbitwords * 8) == 0) {
      meta_free(big, nbitwords * sizeof(std::uint64_t));
      return t;
    }
  }
  auto* t = static_cast<TypeInfo*>(meta_alloc(bytes));
  if (t == nullptr) {
    meta_free(big, nbitwords * sizeof(std::uint64_t));
    return *error = TypeError::kNoMemory, nullptr;
  }
  t->size = size;
  t->nwords = nwords;
  t->npointers = npointers;
  std::memcpy(t->bits, bits, nbitwords * 8);
  const int cls = size_to_class(size);
  if (size <= kMaxInlineZero && cls != 0) {
    t->elem_size = kClassToSize[cls];
    t->span_class = static_cast<std::uint32_t>(span_class(cls, Kind::kTyped));
  }
  t->next_interned = g_types.buckets[h];
  g_types.buckets[h] = t;
  meta_free(big, nbitwords * sizeof(std::uint64_t));
  return t;
}

}  // namespace mgc::internal
