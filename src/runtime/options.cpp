#include "runtime/options.hpp"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "gc/collector.hpp"
#include "gc/pacer.hpp"
#include "gc/scavenger.hpp"
#include "gc/threads.hpp"
#include "heap/mheap.hpp"
#include "os/fatal.hpp"
#include "os/mutex.hpp"
#include "os/trace.hpp"
#include "prof/allocfreetrace.hpp"
#include "prof/sample.hpp"
#include "runtime/collect.hpp"
#include "runtime/heap_profile.hpp"

namespace mgc::internal {

namespace {
Options g_options;
std::atomic<bool> g_ready{false};
void (*g_first_use_hook)() = nullptr;
Mutex g_lock;

template <class T>
std::optional<T> parse_int(std::string_view s, T lo, T hi) {
  T v{};
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end || s.empty() || v < lo || v > hi) return std::nullopt;
  return v;
}

// Every variable and how to read it into Options. Malformed: nullopt-like
// false, and the message says what was expected.
struct Variable {
  const char* name;
  const char* expected;
  bool (*apply)(std::string_view value, Options* o);
};

const Variable kVariables[] = {
    {"MALLOCGC_HUGEPAGES", "0 or 1 (also false/true, off/on, no/yes)",
     [](std::string_view v, Options* o) {
       auto b = parse_bool(v);
       if (b) o->huge_pages = *b;
       return b.has_value();
     }},
    {"MALLOCGC_SCAVENGE", "0 or 1 (also false/true, off/on, no/yes)",
     [](std::string_view v, Options* o) {
       auto b = parse_bool(v);
       if (b) o->scavenge = *b;
       return b.has_value();
     }},
    {"MALLOCGC_GOGC", "a percentage 0..1073741824 or \"off\"",
     [](std::string_view v, Options* o) {
       auto g = parse_gogc(v);
       if (g) o->gogc = *g;
       return g.has_value();
     }},
    {"MALLOCGC_MEMORY_LIMIT", "bytes with an optional suffix B, KiB, MiB, GiB or TiB, or \"off\"",
     [](std::string_view v, Options* o) {
       auto b = parse_bytes(v);
       if (b) o->memory_limit = *b;
       return b.has_value();
     }},
    {"MALLOCGC_MARK_THREADS", "a number of threads 1..64",
     [](std::string_view v, Options* o) {
       auto n = parse_mark_threads(v);
       if (n) o->mark_threads = *n;
       return n.has_value();
     }},
    {"MALLOCGC_MEMPROFILERATE", "bytes between samples (0..1TiB, optional suffix B, KiB, MiB or GiB), or \"off\" (0)",
     [](std::string_view v, Options* o) {
       auto r = parse_memprofile_rate(v);
       if (r) o->memprofile_rate = *r;
       return r.has_value();
     }},
    {"MALLOCGC_HEAPPROFILE", "a file name",
     [](std::string_view v, Options* o) {
       // Points into the environment, which outlives the options.
       o->heap_profile = v.data();
       return !v.empty();
     }},
    {"MALLOCGC_TRACE", "a path of a file to write the collector's trace to",
     [](std::string_view v, Options* o) {
       if (!valid_trace_path(v)) return false;
       o->trace_path = v.data();  // the environment's own string
       return true;
     }},
    {"MALLOCGC_SUSPEND_SIGNAL",
     "a signal number or name (PWR, USR1, USR2, XCPU, XFSZ, VTALRM, PROF, SYS, WINCH, URG, RTMIN+n)",
     [](std::string_view v, Options* o) {
       auto n = parse_signal(v);
       if (n) o->suspend_signal = *n;
       return n.has_value();
     }},
};

// Read the environment into o; a malformed value is fatal.
void read_environment(Options* o) {
  for (const Variable& var : kVariables) {
    const char* v = std::getenv(var.name);
    if (v == nullptr) continue;
    if (!var.apply(v, o)) fatal("%s=\"%s\": expected %s", var.name, v, var.expected);
  }
  if (const char* v = std::getenv("MALLOCGC_DEBUG")) {
    std::string_view bad;
    if (!parse_debug(v, o, &bad))
      fatal(
          "MALLOCGC_DEBUG=\"%s\": cannot use \"%.*s\" (known: gctrace=0|1, gccheckmark=0|1, allocfreetrace=0|1, "
          "gcstoptheworld=0|1, dirtypages=auto|userfaultfd|mprotect)",
          v, static_cast<int>(bad.size()), bad.data());
  }
}

// MALLOCGC_TRACE: a file that cannot be written is said at once, not after
// the program ran (its exit would only warn).
void start_trace_file(const char* path) {
  const int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fatal("MALLOCGC_TRACE=\"%s\": cannot open the file for writing: %s", path, std::strerror(errno));
  close(fd);
  if (!trace_to_file_at_exit(path)) fatal("MALLOCGC_TRACE=\"%s\": no memory for the trace buffer", path);
}

// Start-up check, so that a mistake shows before the program does any work.
// The settings take effect at the first slow path (ensure_options), which
// reads the environment again.
[[gnu::constructor]] void check_environment_at_startup() {
  Options o;
  read_environment(&o);
}

}  // namespace

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "1" || s == "true" || s == "on" || s == "yes") return true;
  if (s == "0" || s == "false" || s == "off" || s == "no") return false;
  return std::nullopt;
}

std::optional<int> parse_gogc(std::string_view s) {
  if (s == "off") return -1;
  return parse_int<int>(s, 0, 1 << 30);
}

std::optional<std::int64_t> parse_bytes(std::string_view s) {
  if (s == "off") return INT64_MAX;
  struct Suffix {
    std::string_view text;
    int shift;
  };
  constexpr Suffix kSuffixes[] = {{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}};
  int shift = 0;
  for (const Suffix& x : kSuffixes) {
    if (s.size() > x.text.size() && s.substr(s.size() - x.text.size()) == x.text) {
      s.remove_suffix(x.text.size());
      shift = x.shift;
      break;
    }
  }
  auto n = parse_int<std::int64_t>(s, 0, INT64_MAX);
  if (!n || *n > (INT64_MAX >> shift)) return std::nullopt;
  return *n << shift;
}

std::optional<std::int64_t> parse_memprofile_rate(std::string_view s) {
  if (s == "off") return 0;
  // Its "off" (no limit) is beyond the bound. value_or, not !b || *b > ..:
  // GCC merges those two tests into one branch on the payload too, which
  // is undefined in an empty optional (memcheck reports it).
  const std::int64_t b = parse_bytes(s).value_or(-1);
  if (b < 0 || b > (std::int64_t{1} << 40)) return std::nullopt;
  return b;
}

std::optional<int> parse_mark_threads(std::string_view s) { return parse_int<int>(s, 1, 64); }

std::optional<int> parse_signal(std::string_view s) {
  if (s.substr(0, 3) == "SIG") s.remove_prefix(3);
  struct Name {
    std::string_view name;
    int sig;
  };
  const Name kNames[] = {{"PWR", SIGPWR},     {"USR1", SIGUSR1}, {"USR2", SIGUSR2},     {"XCPU", SIGXCPU},
                         {"XFSZ", SIGXFSZ},   {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM}, {"SYS", SIGSYS},
                         {"WINCH", SIGWINCH}, {"URG", SIGURG}};
  for (const Name& n : kNames)
    if (s == n.name) return n.sig;
  if (s.substr(0, 6) == "RTMIN+") {
    auto k = parse_int<int>(s.substr(6), 0, SIGRTMAX - SIGRTMIN);
    if (!k) return std::nullopt;
    return SIGRTMIN + *k;
  }
  auto n = parse_int<int>(s, 1, SIGRTMAX);
  if (!n) return std::nullopt;
  // Signals the kernel or the program's own faults need.
  for (int bad : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGCHLD, SIGCONT})
    if (*n == bad) return std::nullopt;
  return n;
}

bool valid_trace_path(std::string_view s) { return !s.empty() && s.back() != '/'; }

bool parse_debug(std::string_view s, Options* o, std::string_view* bad) {
  while (!s.empty()) {
    const std::size_t comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    *bad = item;
    if (eq == std::string_view::npos) return false;
    const std::string_view key = item.substr(0, eq);
    if (key == "dirtypages") {
      const std::string_view v = item.substr(eq + 1);
      if (v == "auto") {
        o->dirty_pages = os::DirtyMethod::kAuto;
      } else if (v == "userfaultfd") {
        o->dirty_pages = os::DirtyMethod::kUserfaultfd;
      } else if (v == "mprotect") {
        o->dirty_pages = os::DirtyMethod::kMprotect;
      } else {
        return false;
      }
      continue;
    }
    const auto value = parse_int<int>(item.substr(eq + 1), 0, 1);
    if (!value) return false;
    if (key == "gctrace") {
      o->gctrace = *value != 0;
    } else if (key == "gccheckmark") {
      o->gccheckmark = *value != 0;
    } else if (key == "allocfreetrace") {
      o->allocfreetrace = *value != 0;
    } else if (key == "gcstoptheworld") {
      o->gcstoptheworld = *value != 0;
    } else {
      return false;
    }
  }
  return true;
}

void ensure_options() {
  if (g_ready.load(std::memory_order_acquire)) return;
  {
    std::lock_guard<Mutex> g(g_lock);
    if (g_ready.load(std::memory_order_relaxed)) return;
    read_environment(&g_options);
    mheap().set_huge_pages(g_options.huge_pages);
    set_background_scavenge(g_options.scavenge);
    set_growth_scavenge(g_options.scavenge);
    pacer_set_gc_percent(g_options.gogc);
    pacer_set_memory_limit(g_options.memory_limit);
    if (g_options.suspend_signal != 0) set_suspend_signal(g_options.suspend_signal);
    set_profile_hooks({profile_lock, profile_unlock, profile_after_mark});
    g_memprofile_rate.store(g_options.memprofile_rate, std::memory_order_relaxed);
    set_allocfreetrace(g_options.allocfreetrace);
    if (g_options.heap_profile != nullptr) write_heap_profile_at_exit(g_options.heap_profile);
    set_gc_config({g_options.mark_threads, g_options.gctrace, g_options.gccheckmark, g_options.allocfreetrace,
                   !g_options.gcstoptheworld});
    pacer_set_concurrent(!g_options.gcstoptheworld);
    os::set_dirty_tracking_method(g_options.dirty_pages);
    if (g_options.trace_path != nullptr) start_trace_file(g_options.trace_path);
    g_ready.store(true, std::memory_order_release);
  }
  install_fork_handlers();
  // Outside the lock: the hook may read the options (and call in here).
  if (g_first_use_hook != nullptr) g_first_use_hook();
}

void set_first_use_hook(void (*hook)()) { g_first_use_hook = hook; }

const Options& options() { return g_options; }

}  // namespace mgc::internal
