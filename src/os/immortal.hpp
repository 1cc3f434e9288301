// Immortal<T>: a T constructed on first use and never destroyed.
//
// Threads of the collector (mark helpers, the sweeper, the finalizer
// thread) wait on condition variables until the process ends; a static
// std::condition_variable_any would be destroyed at exit while they wait,
// which glibc answers by blocking exit forever.
#pragma once

#include <new>
#include <utility>

namespace mgc::internal {

template <class T>
class Immortal {
 public:
  template <class... A>
  explicit Immortal(A&&... args) {
    ::new (static_cast<void*>(storage_)) T(std::forward<A>(args)...);
  }
  T& operator*() { return *std::launder(reinterpret_cast<T*>(storage_)); }
  T* operator->() { return &**this; }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace mgc::internal
