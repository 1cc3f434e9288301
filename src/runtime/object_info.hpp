// Which object an address lies in, exactly: find_object's answer, except
// that a tiny object reports its own start and bytes (up to the next
// object of its block), not its block's. For the Boehm face's GC_base and
// GC_size, whose callers may hold tiny objects.
#pragma once

#include "mallocgc/mallocgc.hpp"

namespace mgc::internal {

bool find_object_exact(const void* p, ObjectInfo* info);

}  // namespace mgc::internal
