#include "os/trace.hpp"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mgc::internal {

constinit std::atomic<bool> g_trace_on{false};

namespace {

struct EventInfo {
  const char* name;
  const char* category;
  const char* arg0;  // nullptr: no argument
  const char* arg1;
};

// Indexed by TraceEv. Categories let Perfetto's and chrome://tracing's
// filters pick out the stops, the mark, the sweep or the scavenger.
constexpr EventInfo kEvents[] = {
    {"GC cycle", "gc", "cycle", "forced"},
    {"sweep: finish before cycle", "gc,sweep", "spans", nullptr},
    {"stop the world", "gc,stw", "attempt", nullptr},
    {"stop threads", "gc,stw", nullptr, nullptr},
    {"mark", "gc,mark", "live_bytes", "workers"},
    {"mark roots", "gc,mark", nullptr, nullptr},
    {"mark worker", "gc,mark", "marked_bytes", nullptr},
    {"checkmark", "gc,mark", nullptr, nullptr},
    {"start threads", "gc,stw", nullptr, nullptr},
    {"sweep: everything (collect)", "gc,sweep", "spans", nullptr},
    {"sweep: background", "gc,sweep", "spans", nullptr},
    {"sweep: large objects", "gc,sweep", "bytes", nullptr},
    {"sweep: allocating thread", "gc,sweep", "spans", nullptr},
    {"sweep: cache flush", "gc,sweep", "spans", nullptr},
    {"sweep: reclaim before growth", "gc,sweep", "spans", nullptr},
    {"scavenge", "gc,scavenge", "bytes", nullptr},
    {"scavenge: release_memory", "gc,scavenge", "bytes", nullptr},
    {"scavenge: heap growth", "gc,scavenge", "bytes", nullptr},
    {"heap", "gc", "live", "goal"},
    {"mark: concurrent", "gc,mark", "live_bytes", "rounds"},
    {"mark: written pages", "gc,mark", "written_bytes", nullptr},
    {"mark: termination", "gc,mark,stw", "written_bytes", nullptr},
};
static_assert(sizeof kEvents / sizeof kEvents[0] == static_cast<std::size_t>(TraceEv::kCount));

// One event. seq is the seqlock: 2i+1 while event i is being written into
// the slot, 2i+2 once it is complete. Every field is an atomic (relaxed),
// so that the writer may read a slot being rewritten without a data race;
// the sequence number tells it to skip such a slot.
struct Slot {
  std::atomic<std::uint64_t> seq;
  std::atomic<std::uint64_t> start_ns;
  std::atomic<std::uint64_t> dur_ns;
  std::atomic<std::uint64_t> tid_ev;  // tid << 16 | event
  std::atomic<std::uint64_t> a0;
  std::atomic<std::uint64_t> a1;
};
static_assert(sizeof(Slot) == 48);

// The ring: mapped once, never unmapped (a recorder may be using it at
// any time). capacity is a power of two; head counts events ever claimed.
struct Ring {
  std::size_t capacity;
  std::uint64_t epoch_ns;  // timestamps in the file count from here
  Slot slots[];
};
std::atomic<Ring*> g_ring{nullptr};
std::size_t g_next_capacity = kTraceCapacity;  // of the ring trace_start maps
std::atomic<std::uint64_t> g_head{0};

struct ThreadName {
  std::atomic<int> tid;
  char name[40];
};
constexpr int kMaxNames = 256;
ThreadName g_names[kMaxNames];
std::atomic<int> g_nnames{0};

__thread int tls_tid __attribute__((tls_model("initial-exec")));

int this_tid() {
  int t = tls_tid;
  if (t == 0) {
    t = static_cast<int>(syscall(SYS_gettid));
    tls_tid = t;
  }
  return t;
}

// A child of fork() has a new tid for its one thread: the cached one is
// the parent's.
[[gnu::constructor]] void install_tid_reset() {
  pthread_atfork(nullptr, nullptr, [] { tls_tid = 0; });
}

Ring* map_ring(std::size_t capacity) {
  void* p = mmap(nullptr, sizeof(Ring) + capacity * sizeof(Slot), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  Ring* r = static_cast<Ring*>(p);
  r->capacity = capacity;
  r->epoch_ns = trace_now();
  return r;
}

void record(TraceEv ev, std::uint64_t start, std::uint64_t dur, std::uint64_t a0, std::uint64_t a1) {
  Ring* ring = g_ring.load(std::memory_order_acquire);
  if (ring == nullptr) return;
  const std::uint64_t i = g_head.fetch_add(1, std::memory_order_relaxed);
  Slot& s = ring->slots[i & (ring->capacity - 1)];
  s.seq.store(2 * i + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);  // the odd number before the fields
  s.start_ns.store(start, std::memory_order_relaxed);
  s.dur_ns.store(dur, std::memory_order_relaxed);
  s.tid_ev.store(static_cast<std::uint64_t>(this_tid()) << 16 | static_cast<std::uint64_t>(ev),
                 std::memory_order_relaxed);
  s.a0.store(a0, std::memory_order_relaxed);
  s.a1.store(a1, std::memory_order_relaxed);
  s.seq.store(2 * i + 2, std::memory_order_release);
}

// --- writing -------------------------------------------------------------------

// A buffered writer over a file descriptor: no stdio (its lock and malloc
// are the program's), no allocation.
class Out {
 public:
  void reset(int fd) {
    fd_ = fd;
    failed_ = false;
    used_ = 0;
  }
  void put(const char* s, std::size_t n) {
    while (n > 0) {
      if (used_ == sizeof buf_) flush();
      const std::size_t k = n < sizeof buf_ - used_ ? n : sizeof buf_ - used_;
      std::memcpy(buf_ + used_, s, k);
      used_ += k;
      s += k;
      n -= k;
    }
  }
  [[gnu::format(printf, 2, 3)]] void print(const char* format, ...) {
    char line[512];
    va_list ap;
    va_start(ap, format);
    const int n = std::vsnprintf(line, sizeof line, format, ap);
    va_end(ap);
    if (n > 0) put(line, static_cast<std::size_t>(n) < sizeof line ? static_cast<std::size_t>(n) : sizeof line - 1);
  }
  // A JSON string's contents: quotes, backslashes and control characters
  // escaped.
  void json_string(const char* s) {
    for (; *s != 0; s++) {
      const auto c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        const char e[2] = {'\\', static_cast<char>(c)};
        put(e, 2);
      } else if (c < 0x20) {
        print("\\u%04x", c);
      } else {
        put(s, 1);
      }
    }
  }
  bool flush() {
    std::size_t off = 0;
    while (off < used_) {
      const ssize_t n = write(fd_, buf_ + off, used_ - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        failed_ = true;
        break;
      }
      off += static_cast<std::size_t>(n);
    }
    used_ = 0;
    return !failed_;
  }
  bool failed() const { return failed_; }

 private:
  int fd_ = -1;
  bool failed_ = false;
  std::size_t used_ = 0;
  char buf_[16384];
};

// Microseconds with three decimals (the format wants microseconds; the
// decimals keep nanosecond order for events shorter than one).
void put_us(Out& out, const char* key, std::uint64_t ns) {
  out.print("\"%s\":%llu.%03llu", key, static_cast<unsigned long long>(ns / 1000),
            static_cast<unsigned long long>(ns % 1000));
}

// The name of thread tid: the one it gave itself through trace_name_thread,
// else its name in /proc (the program's threads), else nullptr.
bool thread_name(int tid, char* buf, std::size_t size) {
  const int n = g_nnames.load(std::memory_order_acquire);
  for (int i = n < kMaxNames ? n : kMaxNames; i-- > 0;) {
    if (g_names[i].tid.load(std::memory_order_acquire) == tid) {
      std::snprintf(buf, size, "%s", g_names[i].name);
      return true;
    }
  }
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t k = read(fd, buf, size - 1);
  close(fd);
  if (k <= 0) return false;
  buf[k] = 0;
  if (buf[k - 1] == '\n') buf[k - 1] = 0;
  return true;
}

void write_events(Out& out, Ring* ring, std::uint64_t head, std::uint64_t* written, int* tids, int* ntids,
                  int max_tids) {
  const std::uint64_t first = head > ring->capacity ? head - ring->capacity : 0;
  bool comma = false;
  for (std::uint64_t i = first; i < head; i++) {
    Slot& s = ring->slots[i & (ring->capacity - 1)];
    const std::uint64_t seq = s.seq.load(std::memory_order_acquire);
    if (seq != 2 * i + 2) continue;  // being written, or already overwritten
    const std::uint64_t start = s.start_ns.load(std::memory_order_relaxed);
    const std::uint64_t dur = s.dur_ns.load(std::memory_order_relaxed);
    const std::uint64_t tid_ev = s.tid_ev.load(std::memory_order_relaxed);
    const std::uint64_t a0 = s.a0.load(std::memory_order_relaxed);
    const std::uint64_t a1 = s.a1.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) != seq) continue;  // rewritten while read
    const auto ev = static_cast<std::size_t>(tid_ev & 0xFFFF);
    const auto tid = static_cast<int>(tid_ev >> 16);
    if (ev >= static_cast<std::size_t>(TraceEv::kCount)) continue;
    const EventInfo& info = kEvents[ev];
    const std::uint64_t ts = start > ring->epoch_ns ? start - ring->epoch_ns : 0;
    out.put(comma ? ",\n" : "\n", comma ? 2 : 1);
    comma = true;
    if (static_cast<TraceEv>(ev) == TraceEv::kHeapCounter) {
      out.print("{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"C\",\"pid\":%d,\"tid\":%d,", info.name, info.category,
                static_cast<int>(getpid()), tid);
      put_us(out, "ts", ts);
      out.print(",\"args\":{\"%s\":%llu,\"%s\":%llu}}", info.arg0, static_cast<unsigned long long>(a0), info.arg1,
                static_cast<unsigned long long>(a1));
    } else {
      out.print("{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,", info.name, info.category,
                static_cast<int>(getpid()), tid);
      put_us(out, "ts", ts);
      out.put(",", 1);
      put_us(out, "dur", dur);
      out.put(",\"args\":{", 9);
      if (info.arg0 != nullptr) out.print("\"%s\":%llu", info.arg0, static_cast<unsigned long long>(a0));
      if (info.arg1 != nullptr) out.print(",\"%s\":%llu", info.arg1, static_cast<unsigned long long>(a1));
      out.put("}}", 2);
    }
    (*written)++;
    bool seen = false;
    for (int k = 0; k < *ntids && !seen; k++) seen = tids[k] == tid;
    if (!seen && *ntids < max_tids) tids[(*ntids)++] = tid;
  }
}

char g_exit_path[4096];
int g_exit_pid = 0;

void write_at_exit() {
  // A child of fork() inherits the handler, not the file.
  if (getpid() != g_exit_pid) return;
  if (!write_trace_file(g_exit_path)) {
    char msg[4200];
    const int n = std::snprintf(msg, sizeof msg, "mallocgc: warning: MALLOCGC_TRACE=\"%s\": cannot write: %s\n",
                                g_exit_path, std::strerror(errno));
    if (n > 0) {
      const ssize_t k = write(2, msg, static_cast<std::size_t>(n) < sizeof msg ? static_cast<std::size_t>(n) : 0);
      (void)k;
    }
  }
}

}  // namespace

std::uint64_t trace_now() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1000000000u + static_cast<std::uint64_t>(t.tv_nsec);
}

bool trace_start() {
  if (g_ring.load(std::memory_order_acquire) == nullptr) {
    static std::atomic_flag mapping = ATOMIC_FLAG_INIT;
    while (mapping.test_and_set(std::memory_order_acquire)) {
    }
    if (g_ring.load(std::memory_order_relaxed) == nullptr) {
      Ring* ring = map_ring(g_next_capacity);
      if (ring != nullptr) g_ring.store(ring, std::memory_order_release);
    }
    mapping.clear(std::memory_order_release);
    if (g_ring.load(std::memory_order_acquire) == nullptr) return false;
  }
  g_trace_on.store(true, std::memory_order_relaxed);
  return true;
}

void trace_stop() { g_trace_on.store(false, std::memory_order_relaxed); }

void trace_complete(TraceEv ev, std::uint64_t start_ns, std::uint64_t a0, std::uint64_t a1) {
  const std::uint64_t end = trace_now();
  record(ev, start_ns, end > start_ns ? end - start_ns : 0, a0, a1);
}

void trace_counter(TraceEv ev, std::uint64_t a0, std::uint64_t a1) { record(ev, trace_now(), 0, a0, a1); }

void trace_name_thread(const char* name) {
  const int i = g_nnames.fetch_add(1, std::memory_order_relaxed);
  if (i >= kMaxNames) return;
  std::snprintf(g_names[i].name, sizeof g_names[i].name, "%s", name);
  g_names[i].tid.store(this_tid(), std::memory_order_release);
}

bool write_trace_file(const char* path) {
  const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  // Static: the writer may run on a small thread stack. Writers are rare
  // and serialised by this flag.
  static std::atomic_flag busy = ATOMIC_FLAG_INIT;
  while (busy.test_and_set(std::memory_order_acquire)) {
  }
  static Out out;
  out.reset(fd);
  constexpr int kMaxTids = 1024;
  static int tids[kMaxTids];
  int ntids = 0;
  std::uint64_t written = 0;
  const int pid = static_cast<int>(getpid());
  out.print("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[");
  Ring* ring = g_ring.load(std::memory_order_acquire);
  const std::uint64_t head = g_head.load(std::memory_order_acquire);
  if (ring != nullptr) write_events(out, ring, head, &written, tids, &ntids, kMaxTids);
  // Names of the process and of every thread that has an event.
  out.print("%s\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"mallocgc\"}}",
            written != 0 ? "," : "", pid, pid);
  for (int k = 0; k < ntids; k++) {
    char name[64];
    if (!thread_name(tids[k], name, sizeof name)) std::snprintf(name, sizeof name, "thread %d", tids[k]);
    out.print(",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"", pid, tids[k]);
    out.json_string(name);
    out.put("\"}}", 3);
  }
  const std::uint64_t dropped = ring != nullptr && head > ring->capacity ? head - ring->capacity : 0;
  out.print("\n],\"otherData\":{\"recorder\":\"mallocgc\",\"events_recorded\":%llu,\"events_dropped\":%llu}}\n",
            static_cast<unsigned long long>(head), static_cast<unsigned long long>(dropped));
  const bool ok = out.flush();
  const int saved = errno;
  busy.clear(std::memory_order_release);
  if (close(fd) != 0 || !ok) {
    errno = ok ? errno : (saved != 0 ? saved : EIO);
    return false;
  }
  return true;
}

std::uint64_t trace_recorded() { return g_head.load(std::memory_order_relaxed); }

std::uint64_t trace_dropped() {
  const std::uint64_t head = g_head.load(std::memory_order_relaxed);
  Ring* ring = g_ring.load(std::memory_order_acquire);
  return ring != nullptr && head > ring->capacity ? head - ring->capacity : 0;
}

bool trace_to_file_at_exit(const char* path) {
  if (!trace_start()) return false;
  std::snprintf(g_exit_path, sizeof g_exit_path, "%s", path);
  static bool registered = false;
  g_exit_pid = static_cast<int>(getpid());
  if (!registered) {
    registered = true;
    std::atexit(write_at_exit);
  }
  return true;
}

void trace_reset_for_testing(std::size_t capacity) {
  // The old ring stays mapped: a background thread may still be writing
  // into it (its slots are never read again).
  const bool on = trace_on();
  g_trace_on.store(false, std::memory_order_relaxed);
  g_ring.store(nullptr, std::memory_order_release);
  g_next_capacity = capacity;
  g_head.store(0, std::memory_order_relaxed);
  if (on) trace_start();
}

}  // namespace mgc::internal
