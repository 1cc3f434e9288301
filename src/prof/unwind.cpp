#include "prof/unwind.hpp"

#include <execinfo.h>
#include <link.h>

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstring>
#include <mutex>

#include "heap/meta_alloc.hpp"
#include "os/mutex.hpp"

extern "C" {
// libgcc (libgcc_s, or libgcc_eh where it is linked statically): the FDE
// that covers pc in any loaded object, or in frames registered at run time.
struct dwarf_eh_bases {
  void* tbase;
  void* dbase;
  void* func;
};
const void* _Unwind_Find_FDE(void* pc, struct dwarf_eh_bases* bases);

// The walk proper, entered from the asm entry below with the caller's rbp and
// its stack pointer after the return (the entry's CFA).
__attribute__((visibility("hidden"))) int mgc_internal_fast_backtrace_from(void** out, int max, std::uintptr_t lo,
                                                                           std::uintptr_t hi, std::uintptr_t rbp,
                                                                           std::uintptr_t cfa);
}

// The entry: a jump, not a call, so that it leaves no frame of its own and
// the walk starts at its caller with that caller's own rbp (a C++ function
// could not be sure to see it unchanged).
asm(R"(
  .text
  .p2align 4
  .globl mgc_internal_fast_backtrace
  .hidden mgc_internal_fast_backtrace
  .type mgc_internal_fast_backtrace, @function
mgc_internal_fast_backtrace:
  .cfi_startproc
  mov %rbp, %r8
  lea 8(%rsp), %r9
  jmp mgc_internal_fast_backtrace_from
  .cfi_endproc
  .size mgc_internal_fast_backtrace, .-mgc_internal_fast_backtrace
)");

namespace mgc::internal {
namespace {

// How to find a frame's caller, at one return address.
enum class RuleKind : std::uint8_t {
  kEmpty,        // a free cache entry
  kRsp,          // CFA = rsp + cfa_off
  kRbp,          // CFA = rbp + cfa_off
  kEnd,          // the outermost frame: no FDE, or the return address is undefined
  kUnsupported,  // rules the interpreter does not follow: backtrace() must
};
constexpr std::int16_t kRbpSame = INT16_MIN;  // rbp not saved: the caller's is the frame's

struct Rule {
  RuleKind kind = RuleKind::kEmpty;
  std::int16_t rbp_off = kRbpSame;  // else the caller's rbp is at CFA + rbp_off
  std::int32_t cfa_off = 0;
};

// --- reading .eh_frame --------------------------------------------------------

std::uint64_t uleb(const std::uint8_t*& p) {
  std::uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const std::uint8_t b = *p++;
    if (shift < 64) v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
}

std::int64_t sleb(const std::uint8_t*& p) {
  std::uint64_t v = 0;
  int shift = 0;
  std::uint8_t b;
  do {
    b = *p++;
    if (shift < 64) v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80);
  if (shift < 64 && (b & 0x40)) v |= ~std::uint64_t{0} << shift;
  return static_cast<std::int64_t>(v);
}

template <class T>
T read(const std::uint8_t*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}

constexpr std::uint8_t kEncOmit = 0xff;

// A pointer encoded as enc says (DW_EH_PE_*). Only the pc-relative and
// absolute applications are needed here (set_loc); false for the others.
bool read_encoded(const std::uint8_t*& p, std::uint8_t enc, std::uintptr_t* out) {
  const std::uint8_t* const field = p;
  std::uint64_t v;
  switch (enc & 0x0f) {
    case 0x00:
      v = read<std::uint64_t>(p);
      break;
    case 0x01:
      v = uleb(p);
      break;
    case 0x02:
      v = read<std::uint16_t>(p);
      break;
    case 0x03:
      v = read<std::uint32_t>(p);
      break;
    case 0x04:
      v = read<std::uint64_t>(p);
      break;
    case 0x09:
      v = static_cast<std::uint64_t>(sleb(p));
      break;
    case 0x0a:
      v = static_cast<std::uint64_t>(static_cast<std::int64_t>(read<std::int16_t>(p)));
      break;
    case 0x0b:
      v = static_cast<std::uint64_t>(static_cast<std::int64_t>(read<std::int32_t>(p)));
      break;
    case 0x0c:
      v = read<std::uint64_t>(p);
      break;
    default:
      return false;
  }
  switch (enc & 0x70) {
    case 0x00:
      break;
    case 0x10:
      v += reinterpret_cast<std::uintptr_t>(field);
      break;
    default:
      return false;
  }
  if (enc & 0x80) return false;  // indirect
  *out = v;
  return true;
}

// Size of a value encoded as enc (its format only); 0 for a variable size.
std::size_t encoded_size(std::uint8_t enc) {
  switch (enc & 0x0f) {
    case 0x00:
    case 0x04:
    case 0x0c:
      return 8;
    case 0x02:
    case 0x0a:
      return 2;
    case 0x03:
    case 0x0b:
      return 4;
    default:
      return 0;
  }
}

// The interpreter's state: the CFA's rule, and rbp's and the return
// address's (x86-64 DWARF registers 6 and 16; 7 is rsp).
constexpr unsigned kRegRbp = 6, kRegRsp = 7, kRegRa = 16;
enum class RegRule : std::uint8_t { kSame, kOffset, kUndefined, kOther };
struct CfaState {
  unsigned cfa_reg = kRegRsp;
  std::int64_t cfa_off = 8;
  bool cfa_ok = true;  // false: an expression
  RegRule rbp = RegRule::kSame;
  std::int64_t rbp_off = 0;
  RegRule ra = RegRule::kOffset;
  std::int64_t ra_off = -8;
};

struct Cie {
  std::uint64_t code_align;
  std::int64_t data_align;
  std::uint8_t fde_enc = 0;
  bool augmented = false;  // "z": FDEs carry an augmentation length
  const std::uint8_t* insns;
  const std::uint8_t* end;
};

bool parse_cie(const std::uint8_t* p, Cie* c) {
  const std::uint32_t len = read<std::uint32_t>(p);
  if (len == 0 || len == 0xffffffffu) return false;
  c->end = p + len;
  if (read<std::uint32_t>(p) != 0) return false;  // not a CIE
  const std::uint8_t version = *p++;
  if (version != 1 && version != 3) return false;
  const char* aug = reinterpret_cast<const char*>(p);
  p += std::strlen(aug) + 1;
  c->code_align = uleb(p);
  c->data_align = sleb(p);
  const std::uint64_t ra_reg = version == 1 ? *p++ : uleb(p);
  if (ra_reg != kRegRa) return false;
  if (aug[0] == 'z') {
    c->augmented = true;
    const std::uint64_t aug_len = uleb(p);
    const std::uint8_t* const aug_end = p + aug_len;
    for (const char* a = aug + 1; *a != 0; a++) {
      switch (*a) {
        case 'R':
          c->fde_enc = *p++;
          break;
        case 'L':
          p++;
          break;
        case 'P': {
          const std::uint8_t enc = *p++;
          const std::size_t n = encoded_size(enc);
          if (n == 0) {
            if ((enc & 0x0f) != 0x01 && (enc & 0x0f) != 0x09) return false;
            (void)uleb(p);
          } else {
            p += n;
          }
          break;
        }
        case 'S':
          return false;  // a signal frame: its caller's pc is not a return address
        default:
          return false;
      }
    }
    p = aug_end;
  } else if (aug[0] != 0) {
    return false;
  }
  c->insns = p;
  return true;
}

// Runs the instructions [p, end) from location loc, stopping before the
// first advance past target. initial: the CIE's state (DW_CFA_restore).
bool run_cfa(const std::uint8_t* p, const std::uint8_t* end, const Cie& cie, std::uintptr_t loc, std::uintptr_t target,
             const CfaState& initial, CfaState* s) {
  CfaState saved[4];
  int nsaved = 0;
  auto set_reg = [&](std::uint64_t reg, RegRule rule, std::int64_t off) {
    if (reg == kRegRbp) s->rbp = rule, s->rbp_off = off;
    if (reg == kRegRa) s->ra = rule, s->ra_off = off;
  };
  auto restore_reg = [&](std::uint64_t reg) {
    if (reg == kRegRbp) s->rbp = initial.rbp, s->rbp_off = initial.rbp_off;
    if (reg == kRegRa) s->ra = initial.ra, s->ra_off = initial.ra_off;
  };
  auto advance = [&](std::uint64_t delta) {
    loc += delta * cie.code_align;
    return loc <= target;
  };
  while (p < end) {
    const std::uint8_t op = *p++;
    switch (op & 0xc0) {
      case 0x40:
        if (!advance(op & 0x3f)) return true;
        continue;
      case 0x80:
        set_reg(op & 0x3f, RegRule::kOffset, static_cast<std::int64_t>(uleb(p)) * cie.data_align);
        continue;
      case 0xc0:
        restore_reg(op & 0x3f);
        continue;
      default:
        break;
    }
    switch (op) {
      case 0x00:
        break;      // nop
      case 0x01: {  // set_loc
        std::uintptr_t v;
        if (!read_encoded(p, cie.fde_enc, &v)) return false;
        if (v > target) return true;
        loc = v;
        break;
      }
      case 0x02:
        if (!advance(read<std::uint8_t>(p))) return true;
        break;
      case 0x03:
        if (!advance(read<std::uint16_t>(p))) return true;
        break;
      case 0x04:
        if (!advance(read<std::uint32_t>(p))) return true;
        break;
      case 0x05: {  // offset_extended
        const std::uint64_t reg = uleb(p);
        set_reg(reg, RegRule::kOffset, static_cast<std::int64_t>(uleb(p)) * cie.data_align);
        break;
      }
      case 0x06:
        restore_reg(uleb(p));
        break;
      case 0x07:
        set_reg(uleb(p), RegRule::kUndefined, 0);
        break;
      case 0x08:
        set_reg(uleb(p), RegRule::kSame, 0);
        break;
      case 0x09: {  // register: the value is in another register
        const std::uint64_t reg = uleb(p);
        (void)uleb(p);
        set_reg(reg, RegRule::kOther, 0);
        break;
      }
      case 0x0a:
        if (nsaved == 4) return false;
        saved[nsaved++] = *s;
        break;
      case 0x0b:
        if (nsaved == 0) return false;
        {
          // The CFA's rule is restored too (GCC's own unwinder does the same).
          *s = saved[--nsaved];
        }
        break;
      case 0x0c:  // def_cfa
        s->cfa_reg = static_cast<unsigned>(uleb(p));
        s->cfa_off = static_cast<std::int64_t>(uleb(p));
        s->cfa_ok = true;
        break;
      case 0x0d:
        s->cfa_reg = static_cast<unsigned>(uleb(p));
        s->cfa_ok = true;  // an expression's CFA is replaced by a register's
        break;
      case 0x0e:
        s->cfa_off = static_cast<std::int64_t>(uleb(p));
        break;
      case 0x0f:  // def_cfa_expression
        s->cfa_ok = false;
        p += uleb(p);
        break;
      case 0x10:    // expression
      case 0x11: {  // offset_extended_sf
        const std::uint64_t reg = uleb(p);
        set_reg(reg, RegRule::kOffset, sleb(p) * cie.data_align);
        break;
      }
      case 0x12:  // def_cfa_sf
        s->cfa_reg = static_cast<unsigned>(uleb(p));
        s->cfa_off = sleb(p) * cie.data_align;
        s->cfa_ok = true;
        break;
      case 0x13:
        s->cfa_off = sleb(p) * cie.data_align;
        break;
      case 0x14:    // val_offset
      case 0x15: {  // val_offset_sf
        const std::uint64_t reg = uleb(p);
        if (op == 0x14) {
          (void)uleb(p);
        } else {
          (void)sleb(p);
        }
        set_reg(reg, RegRule::kOther, 0);
        break;
      }
      case 0x16: {  // val_expression
        const std::uint64_t reg = uleb(p);
        p += uleb(p);
        set_reg(reg, RegRule::kOther, 0);
        break;
      }
      case 0x2e:
        (void)uleb(p);
        break;      // GNU_args_size
      case 0x2f: {  // GNU_negative_offset_extended
        const std::uint64_t reg = uleb(p);
        set_reg(reg, RegRule::kOffset, -static_cast<std::int64_t>(uleb(p)) * cie.data_align);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

// The rule at return address ra (the call is at ra - 1).
__attribute__((no_sanitize("address", "undefined"))) Rule compute_rule(std::uintptr_t ra) {
  Rule unsupported;
  unsupported.kind = RuleKind::kUnsupported;
  dwarf_eh_bases bases{};
  const std::uintptr_t target = ra - 1;
  const auto* fde = static_cast<const std::uint8_t*>(_Unwind_Find_FDE(reinterpret_cast<void*>(target), &bases));
  Rule r;
  if (fde == nullptr) {
    r.kind = RuleKind::kEnd;  // as libgcc: no FDE ends the stack
    return r;
  }
  const std::uint8_t* p = fde;
  const std::uint32_t len = read<std::uint32_t>(p);
  if (len == 0 || len == 0xffffffffu) return unsupported;
  const std::uint8_t* const fde_end = p + len;
  const std::uint8_t* const cie_field = p;
  const std::uint32_t cie_off = read<std::uint32_t>(p);
  Cie cie;
  if (!parse_cie(cie_field - cie_off, &cie)) return unsupported;
  const std::size_t n = encoded_size(cie.fde_enc);
  if (n == 0) return unsupported;
  p += 2 * n;  // pc_begin (bases.func has it applied) and pc_range
  if (cie.augmented) p += uleb(p);
  CfaState initial;
  if (!run_cfa(cie.insns, cie.end, cie, 0, UINTPTR_MAX, initial, &initial)) return unsupported;
  CfaState s = initial;
  if (!run_cfa(p, fde_end, cie, reinterpret_cast<std::uintptr_t>(bases.func), target, initial, &s)) return unsupported;
  if (s.ra == RegRule::kUndefined) {
    r.kind = RuleKind::kEnd;
    return r;
  }
  if (s.ra != RegRule::kOffset || s.ra_off != -8 || !s.cfa_ok) return unsupported;
  if (s.cfa_reg == kRegRsp) {
    r.kind = RuleKind::kRsp;
  } else if (s.cfa_reg == kRegRbp) {
    r.kind = RuleKind::kRbp;
  } else {
    return unsupported;
  }
  if (s.cfa_off < INT32_MIN || s.cfa_off > INT32_MAX) return unsupported;
  r.cfa_off = static_cast<std::int32_t>(s.cfa_off);
  if (s.rbp == RegRule::kOffset) {
    if (s.rbp_off <= INT16_MIN || s.rbp_off > INT16_MAX) return unsupported;
    r.rbp_off = static_cast<std::int16_t>(s.rbp_off);
  } else if (s.rbp != RegRule::kSame) {
    return unsupported;
  }
  return r;
}

// --- the cache ----------------------------------------------------------------

struct Entry {
  std::uintptr_t ra;
  Rule rule;
};
constexpr std::size_t kEntries = kMaxMetaBlock / sizeof(Entry);  // 4,096
static_assert((kEntries & (kEntries - 1)) == 0);

Mutex g_lock;
std::atomic<Entry*> g_cache{nullptr};  // metadata memory: not a root, not scanned
std::atomic<std::uint64_t> g_fast{0};
std::atomic<std::uint64_t> g_fallback{0};
std::atomic<std::uint64_t> g_flushes{0};
// The loader's count of unloaded objects when the cache was last valid: an
// object unloaded may leave its addresses to another's code, whose rules
// differ (lock held).
unsigned long long g_subs = 0;

// How many objects the loader has unloaded so far (glibc's dlpi_subs).
unsigned long long loader_subs() {
  unsigned long long subs = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t size, void* out) {
        if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
          *static_cast<unsigned long long*>(out) = info->dlpi_subs;
        return 1;  // the first object has it
      },
      &subs);
  return subs;
}

std::size_t slot_of(std::uintptr_t ra) { return static_cast<std::size_t>((ra * 0x9E3779B97F4A7C15ull) >> 52); }

// Lock held; dropped while the rule is computed (_Unwind_Find_FDE may take
// the loader's lock, which a thread waiting for this one could hold): the
// lock is never held while another is taken.
Rule rule_at(Entry* cache, std::uintptr_t ra, std::unique_lock<Mutex>& g) {
  Entry& e = cache[slot_of(ra)];
  if (e.ra == ra && e.rule.kind != RuleKind::kEmpty) return e.rule;
  g.unlock();
  const Rule r = compute_rule(ra);
  g.lock();
  // The address last: a child of fork whose parent's thread was here finds
  // the entry empty rather than another address's rule.
  e.ra = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  e.rule = r;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  e.ra = ra;
  return r;
}

// The cache, mapped at the first walk without the lock held (the
// metadata allocator's lock is taken before this one at fork).
Entry* cache() {
  Entry* c = g_cache.load(std::memory_order_acquire);
  if (c != nullptr) return c;
  auto* fresh = static_cast<Entry*>(meta_alloc(kEntries * sizeof(Entry)));
  if (fresh == nullptr) return nullptr;
  if (g_cache.compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) return fresh;
  meta_free(fresh, kEntries * sizeof(Entry));
  return c;
}

// backtrace(), from the frame whose return address is first on (the
// caller's), for the walks the rules do not cover.
int fallback(void** out, int max, std::uintptr_t first) {
  g_fallback.fetch_add(1, std::memory_order_relaxed);
  void* frames[128];
  const int n = backtrace(frames, max + 8 < 128 ? max + 8 : 128);
  int start = 0;
  for (int i = 0; i < n; i++) {
    if (reinterpret_cast<std::uintptr_t>(frames[i]) == first) {
      start = i;
      break;
    }
  }
  const int k = n - start < max ? n - start : max;
  std::memcpy(out, frames + start, static_cast<std::size_t>(k) * sizeof(void*));
  return k;
}

}  // namespace

// Reads the program's stack words, which the sanitizers may consider out of
// bounds (other frames' locals, redzones).
extern "C" __attribute__((no_sanitize("address", "undefined", "thread"))) int mgc_internal_fast_backtrace_from(
    void** out, int max, std::uintptr_t lo, std::uintptr_t hi, std::uintptr_t rbp, std::uintptr_t cfa) {
  if (max <= 0) return 0;
  std::uintptr_t sp = cfa;
  std::uintptr_t ra = *reinterpret_cast<const std::uintptr_t*>(cfa - 8);
  if (lo == 0 || sp < lo || sp >= hi) return fallback(out, max, ra);
  Entry* const rules = cache();
  if (rules == nullptr) return fallback(out, max, ra);
  std::unique_lock<Mutex> g(g_lock);
  // Under our lock, which fork's prepare handler takes: no thread is then
  // inside dl_iterate_phdr for us, whose loader lock a child would
  // inherit held (children of forks hung so). No thread waits for our
  // lock while it holds the loader's: only the loader's own list updates
  // hold it, and they run no code of the program.
  const unsigned long long subs = loader_subs();
  if (subs != g_subs) {
    std::memset(static_cast<void*>(rules), 0, kEntries * sizeof(Entry));
    g_subs = subs;
    g_flushes.fetch_add(1, std::memory_order_relaxed);
  }
  int n = 0;
  while (n < max) {
    out[n++] = reinterpret_cast<void*>(ra);
    const Rule r = rule_at(rules, ra, g);
    if (r.kind == RuleKind::kEnd) break;
    if (r.kind == RuleKind::kUnsupported) {
      g.unlock();
      return fallback(out, max, reinterpret_cast<std::uintptr_t>(out[0]));
    }
    const std::uintptr_t next_cfa = (r.kind == RuleKind::kRsp ? sp : rbp) + static_cast<std::intptr_t>(r.cfa_off);
    // Each frame's CFA lies above the last, inside the stack: else the
    // rules or the stack are not what they seem, and libgcc decides.
    if (next_cfa < sp + 8 || next_cfa > hi) {
      g.unlock();
      return fallback(out, max, reinterpret_cast<std::uintptr_t>(out[0]));
    }
    if (r.rbp_off != kRbpSame) {
      const std::uintptr_t at = next_cfa + static_cast<std::intptr_t>(r.rbp_off);
      if (at < sp || at + 8 > hi) {
        g.unlock();
        return fallback(out, max, reinterpret_cast<std::uintptr_t>(out[0]));
      }
      rbp = *reinterpret_cast<const std::uintptr_t*>(at);
    }
    ra = *reinterpret_cast<const std::uintptr_t*>(next_cfa - 8);
    sp = next_cfa;
    if (ra == 0) break;
  }
  g.unlock();
  g_fast.fetch_add(1, std::memory_order_relaxed);
  return n;
}

UnwindCounts unwind_counts() {
  return {g_fast.load(std::memory_order_relaxed), g_fallback.load(std::memory_order_relaxed),
          g_flushes.load(std::memory_order_relaxed)};
}

void unwind_lock() { g_lock.lock(); }
void unwind_unlock() { g_lock.unlock(); }

}  // namespace mgc::internal
