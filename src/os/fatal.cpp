#include "os/fatal.hpp"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace mgc::internal {

namespace {
void (*g_fatal_hook)(const char*) = nullptr;
}

void set_fatal_hook(void (*hook)(const char*)) { g_fatal_hook = hook; }

void fatal(const char* format, ...) {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "mallocgc: fatal error: ");
  va_list ap;
  va_start(ap, format);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<unsigned>(n) - 1, format, ap);
  va_end(ap);
  if (m < 0) m = 0;
  std::size_t len = static_cast<std::size_t>(n + m);
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  if (g_fatal_hook != nullptr) {
    buf[len - 1] = '\0';
    g_fatal_hook(buf);
    buf[len - 1] = '\n';
  }
  const char* p = buf;
  while (len > 0) {
    ssize_t w = ::write(STDERR_FILENO, p, len);
    if (w <= 0) break;
    p += w;
    len -= static_cast<std::size_t>(w);
  }
  std::abort();
}

}  // namespace mgc::internal
