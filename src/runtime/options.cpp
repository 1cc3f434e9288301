#include "runtime/options.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "heap/mheap.hpp"
#include "os/fatal.hpp"

namespace mgc::internal {

namespace {
Options g_options;
std::atomic<bool> g_ready{false};
std::mutex g_lock;

struct BoolOption {
  const char* name;
  bool Options::*field;
};

// The table of every MALLOCGC_* variable read at this stage.
constexpr BoolOption kBoolOptions[] = {
    {"MALLOCGC_HUGEPAGES", &Options::huge_pages},
};
}  // namespace

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "1" || s == "true" || s == "on" || s == "yes") return true;
  if (s == "0" || s == "false" || s == "off" || s == "no") return false;
  return std::nullopt;
}

void ensure_options() {
  if (g_ready.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> g(g_lock);
  if (g_ready.load(std::memory_order_relaxed)) return;
  for (const BoolOption& o : kBoolOptions) {
    const char* v = std::getenv(o.name);
    if (v == nullptr) continue;
    const std::optional<bool> b = parse_bool(v);
    if (!b) fatal("%s=\"%s\": expected 0 or 1 (also false/true, off/on, no/yes)", o.name, v);
    g_options.*o.field = *b;
  }
  mheap().set_huge_pages(g_options.huge_pages);
  g_ready.store(true, std::memory_order_release);
}

const Options& options() { return g_options; }

}  // namespace mgc::internal
