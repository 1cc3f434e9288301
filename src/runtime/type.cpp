// mgc::Type: a typed layout as the C++ API sees it, over the interned
// TypeInfo of the heap layer.
#include <new>
#include <stdexcept>
#include <string>

#include "heap/type_info.hpp"
#include "mallocgc/mallocgc.hpp"

namespace mgc {

Type::Type(const internal::TypeInfo* info)
    : info_(info), size_(info->size), elem_size_(info->elem_size), span_class_(info->span_class) {}

static const internal::TypeInfo* intern_or_throw(std::size_t size, const std::size_t* offsets, std::size_t count) {
  internal::TypeError e;
  const internal::TypeInfo* t = internal::intern_type(size, offsets, count, &e);
  if (t != nullptr) return t;
  if (e == internal::TypeError::kNoMemory || e == internal::TypeError::kTooLarge) throw std::bad_alloc();
  throw std::invalid_argument(std::string("mgc::Type: ") + internal::type_error_string(e));
}

Type::Type(std::size_t size, const std::size_t* pointer_offsets, std::size_t count)
    : Type(intern_or_throw(size, pointer_offsets, count)) {}

}  // namespace mgc
