#include "prof/pprof.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "prof/math.hpp"
#include "prof/sample.hpp"

namespace mgc::internal {

namespace {

// --- protobuf wire format ------------------------------------------------------

enum Wire { kVarint = 0, kBytes = 2 };

void put_varint(std::string& o, std::uint64_t v) {
  while (v >= 0x80) {
    o.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  o.push_back(static_cast<char>(v));
}

void put_key(std::string& o, int field, Wire w) { put_varint(o, (static_cast<std::uint64_t>(field) << 3) | w); }

void put_int(std::string& o, int field, std::uint64_t v) {
  if (v == 0) return;  // proto3: zero is the default and is not written
  put_key(o, field, kVarint);
  put_varint(o, v);
}

void put_bytes(std::string& o, int field, const std::string& b) {
  put_key(o, field, kBytes);
  put_varint(o, b.size());
  o += b;
}

void put_packed(std::string& o, int field, const std::vector<std::uint64_t>& v) {
  std::string body;
  for (std::uint64_t x : v) put_varint(body, x);
  put_bytes(o, field, body);
}

// --- profile.proto ------------------------------------------------------------

// Field numbers of profile.proto (github.com/google/pprof/proto).
enum ProfileField {
  kSampleType = 1,
  kSample = 2,
  kMapping = 3,
  kLocation = 4,
  kFunction = 5,
  kStringTable = 6,
  kTimeNanos = 9,
  kPeriodType = 11,
  kPeriod = 12,
};

class Strings {
 public:
  Strings() { index(""); }
  std::uint64_t index(const std::string& s) {
    auto [it, added] = ids_.emplace(s, table_.size());
    if (added) table_.push_back(s);
    return it->second;
  }
  void write(std::string& o) const {
    for (const std::string& s : table_) put_bytes(o, kStringTable, s);
  }

 private:
  std::unordered_map<std::string, std::uint64_t> ids_;
  std::vector<std::string> table_;
};

std::string value_type(Strings& st, const char* type, const char* unit) {
  std::string m;
  put_int(m, 1, st.index(type));
  put_int(m, 2, st.index(unit));
  return m;
}

// A function symbol of an ELF file: its address in the file's own address
// space (before the load bias).
struct Symbol {
  std::uint64_t start, size;
  std::string name;
};

// The function symbols of the ELF file at path, sorted by address: its
// full symbol table (.symtab) when it has one, else its dynamic one. The
// full table names what dladdr cannot: local functions and the ".cold"
// and ".part" pieces GCC splits off (a call to the cold allocation slow
// path usually lies in one), which are named here after their function.
std::vector<Symbol> read_symbols(const std::string& path) {
  std::vector<Symbol> out;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st {};
  void* map = MAP_FAILED;
  if (fstat(fd, &st) == 0 && st.st_size > static_cast<off_t>(sizeof(ElfW(Ehdr))))
    map = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return out;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto size = static_cast<std::size_t>(st.st_size);
  ElfW(Ehdr) eh;
  std::memcpy(&eh, base, sizeof eh);
  const bool elf = std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
                   eh.e_shentsize == sizeof(ElfW(Shdr)) && eh.e_shoff + eh.e_shnum * sizeof(ElfW(Shdr)) <= size;
  if (elf) {
    const auto* sh = reinterpret_cast<const ElfW(Shdr)*>(base + eh.e_shoff);
    const ElfW(Shdr)* table = nullptr;
    for (int pass = 0; pass < 2 && table == nullptr; pass++)
      for (int i = 0; i < eh.e_shnum; i++)
        if (sh[i].sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM)) table = &sh[i];
    if (table != nullptr && table->sh_link < eh.e_shnum && table->sh_offset + table->sh_size <= size &&
        sh[table->sh_link].sh_offset + sh[table->sh_link].sh_size <= size) {
      const ElfW(Shdr)& strs = sh[table->sh_link];
      const auto* names = reinterpret_cast<const char*>(base + strs.sh_offset);
      const std::size_t n = table->sh_size / sizeof(ElfW(Sym));
      for (std::size_t i = 0; i < n; i++) {
        ElfW(Sym) sym;
        std::memcpy(&sym, base + table->sh_offset + i * sizeof sym, sizeof sym);
        if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF || sym.st_value == 0 ||
            sym.st_name >= strs.sh_size)
          continue;
        std::string name(names + sym.st_name, strnlen(names + sym.st_name, strs.sh_size - sym.st_name));
        // foo.cold, foo.part.0, foo.constprop.0, foo.isra.0: foo.
        const std::size_t dot = name.find('.', 1);
        if (dot != std::string::npos) name.resize(dot);
        out.push_back({sym.st_value, sym.st_size, std::move(name)});
      }
    }
  }
  munmap(map, size);
  std::sort(out.begin(), out.end(), [](const Symbol& a, const Symbol& b) { return a.start < b.start; });
  return out;
}

// The function of syms that contains file address a, or nullptr.
const std::string* lookup(const std::vector<Symbol>& syms, std::uint64_t a) {
  auto it = std::upper_bound(syms.begin(), syms.end(), a, [](std::uint64_t x, const Symbol& s) { return x < s.start; });
  while (it != syms.begin()) {
    --it;
    if (a < it->start + std::max<std::uint64_t>(it->size, 1)) return &it->name;
    if (it->size != 0) return nullptr;  // past the nearest sized function
  }
  return nullptr;
}

struct Mapping {
  std::uint64_t start, limit, offset;
  std::uint64_t bias;  // load bias: the file's address = the address - bias
  std::string file, build_id;
  std::size_t named = 0, unnamed = 0;  // locations given a name, or not
  const std::vector<Symbol>* symbols = nullptr;
};

std::string hex(const unsigned char* p, std::size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; i++) {
    s.push_back(kDigits[p[i] >> 4]);
    s.push_back(kDigits[p[i] & 15]);
  }
  return s;
}

// The GNU build ID of a loaded object, from its PT_NOTE segments.
std::string build_id(const dl_phdr_info* info) {
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    const unsigned char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) nh;
      std::memcpy(&nh, p, sizeof nh);
      const unsigned char* name = p + sizeof nh;
      const unsigned char* desc = name + ((nh.n_namesz + 3) & ~3u);
      if (desc + nh.n_descsz > end) break;
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0)
        return hex(desc, nh.n_descsz);
      p = desc + ((nh.n_descsz + 3) & ~3u);
    }
  }
  return {};
}

std::string self_exe() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

int add_mappings(dl_phdr_info* info, std::size_t, void* arg) {
  auto* out = static_cast<std::vector<Mapping>*>(arg);
  std::string file = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (file.empty() && out->empty()) file = self_exe();  // the first object is the program
  const std::string id = build_id(info);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    Mapping m;
    // Whole pages, as /proc/self/maps shows them and pprof expects.
    const std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    const std::uint64_t start = info->dlpi_addr + ph.p_vaddr;
    m.start = start & ~(page - 1);
    m.limit = (start + ph.p_memsz + page - 1) & ~(page - 1);
    m.offset = ph.p_offset & ~(page - 1);
    m.bias = info->dlpi_addr;
    m.file = file;
    m.build_id = id;
    out->push_back(m);
  }
  return 0;
}

// Go: scaleHeapSample. An object of size s is sampled with probability
// 1 - exp(-s / rate); dividing by it estimates what was allocated.
void scale(std::uint64_t count, std::uint64_t bytes, std::int64_t rate, std::uint64_t* c, std::uint64_t* b) {
  if (count == 0 || bytes == 0) {
    *c = *b = 0;
    return;
  }
  if (rate <= 1) {
    *c = count;
    *b = bytes;
    return;
  }
  const double avg = static_cast<double>(bytes) / static_cast<double>(count);
  const double k = 1 / (1 - exp_of(-avg / static_cast<double>(rate)));
  *c = static_cast<std::uint64_t>(static_cast<double>(count) * k);
  *b = static_cast<std::uint64_t>(static_cast<double>(bytes) * k);
}

std::string encode_profile() {
  std::size_t nb = 0;
  ProfileBucket* buckets = profile_snapshot(&nb);
  const std::int64_t rate = g_memprofile_rate.load(std::memory_order_relaxed);
  Strings st;
  std::string out;
  put_bytes(out, kSampleType, value_type(st, "alloc_objects", "count"));
  put_bytes(out, kSampleType, value_type(st, "alloc_space", "bytes"));
  put_bytes(out, kSampleType, value_type(st, "inuse_objects", "count"));
  put_bytes(out, kSampleType, value_type(st, "inuse_space", "bytes"));

  std::vector<Mapping> maps;
  dl_iterate_phdr(add_mappings, &maps);
  std::map<std::string, std::vector<Symbol>> symbol_files;  // read when a location needs them

  // Locations and functions, numbered from 1 as they are first met.
  std::map<std::uintptr_t, std::uint64_t> locs;
  std::unordered_map<std::string, std::uint64_t> funcs;
  std::string loc_msgs, func_msgs;
  auto location = [&](const void* pc) -> std::uint64_t {
    const auto addr = reinterpret_cast<std::uintptr_t>(pc) - 1;  // inside the call
    auto [it, added] = locs.emplace(addr, locs.size() + 1);
    if (!added) return it->second;
    std::string l;
    put_int(l, 1, it->second);
    for (std::size_t i = 0; i < maps.size(); i++) {
      if (addr >= maps[i].start && addr < maps[i].limit) {
        put_int(l, 2, i + 1);
        Mapping& m = maps[i];
        if (m.symbols == nullptr) {
          auto [sf, fresh] = symbol_files.emplace(m.file, std::vector<Symbol>());
          if (fresh) sf->second = read_symbols(m.file);
          m.symbols = &sf->second;
        }
        std::string sys;
        if (const std::string* name = lookup(*m.symbols, addr - m.bias)) {
          sys = *name;
        } else {
          Dl_info di{};
          if (dladdr(reinterpret_cast<void*>(addr), &di) != 0 && di.dli_sname != nullptr) sys = di.dli_sname;
        }
        if (sys.empty()) {
          m.unnamed++;
        } else {
          m.named++;
          auto [f, fadded] = funcs.emplace(sys, funcs.size() + 1);
          if (fadded) {
            int status = 0;
            char* d = abi::__cxa_demangle(sys.c_str(), nullptr, nullptr, &status);
            std::string fn;
            put_int(fn, 1, f->second);
            put_int(fn, 2, st.index(status == 0 && d != nullptr ? d : sys));
            put_int(fn, 3, st.index(sys));
            std::free(d);
            put_bytes(func_msgs, kFunction, fn);
          }
          std::string line;
          put_int(line, 1, f->second);
          put_bytes(l, 4, line);
        }
        break;
      }
    }
    put_int(l, 3, addr);
    put_bytes(loc_msgs, kLocation, l);
    return it->second;
  };

  const std::uint64_t bytes_key = st.index("bytes");
  for (std::size_t i = 0; i < nb; i++) {
    const ProfileBucket& b = buckets[i];
    std::vector<std::uint64_t> ids, values(4);
    for (int k = 0; k < b.depth; k++) ids.push_back(location(b.stack[k]));
    scale(b.allocs, b.alloc_bytes, rate, &values[0], &values[1]);
    scale(b.allocs - b.frees, b.alloc_bytes - b.free_bytes, rate, &values[2], &values[3]);
    std::string sm;
    put_packed(sm, 1, ids);
    put_packed(sm, 2, values);
    std::string label;  // Go's "bytes" label: the object size
    put_int(label, 1, bytes_key);
    put_int(label, 3, b.size);
    put_bytes(sm, 3, label);
    put_bytes(out, kSample, sm);
  }
  std::free(buckets);

  for (std::size_t i = 0; i < maps.size(); i++) {
    const Mapping& m = maps[i];
    std::string mm;
    put_int(mm, 1, i + 1);
    put_int(mm, 2, m.start);
    put_int(mm, 3, m.limit);
    put_int(mm, 4, m.offset);
    put_int(mm, 5, st.index(m.file));
    put_int(mm, 6, st.index(m.build_id));
    // Only a mapping whose every location has a name says it has functions:
    // pprof leaves those alone, and may symbolize the others from the file
    // (google/pprof with binutils does; `go tool pprof` only for Go).
    put_int(mm, 7, m.named != 0 && m.unnamed == 0 ? 1 : 0);
    put_bytes(out, kMapping, mm);
  }
  out += loc_msgs;
  out += func_msgs;
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  put_int(out, kTimeNanos, static_cast<std::uint64_t>(t.tv_sec) * 1000000000u + static_cast<std::uint64_t>(t.tv_nsec));
  put_bytes(out, kPeriodType, value_type(st, "space", "bytes"));
  put_int(out, kPeriod, static_cast<std::uint64_t>(rate));
  st.write(out);  // last: every string is in the table by now
  return out;
}

// --- gzip with stored deflate blocks (RFC 1951 3.2.4, RFC 1952) ---------------

std::uint32_t crc32(const std::string& data) {
  static std::uint32_t table[256];
  static bool ready = false;
  if (!ready) {
    for (std::uint32_t n = 0; n < 256; n++) {
      std::uint32_t c = n;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[n] = c;
    }
    ready = true;
  }
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put_le(std::string& o, std::uint32_t v, int bytes) {
  for (int i = 0; i < bytes; i++) o.push_back(static_cast<char>(v >> (8 * i)));
}

std::string gzip_stored(const std::string& data) {
  std::string o = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, 0, '\xff'};  // deflate, no flags, no time, OS unknown
  std::size_t pos = 0;
  do {
    const std::size_t n = std::min<std::size_t>(data.size() - pos, 65535);
    const bool last = pos + n == data.size();
    o.push_back(last ? 1 : 0);  // BFINAL, BTYPE 00: stored
    put_le(o, static_cast<std::uint32_t>(n), 2);
    put_le(o, static_cast<std::uint32_t>(~n & 0xFFFF), 2);
    o.append(data, pos, n);
    pos += n;
  } while (pos < data.size());
  put_le(o, crc32(data), 4);
  put_le(o, static_cast<std::uint32_t>(data.size()), 4);
  return o;
}

}  // namespace

bool write_pprof_heap_profile(const char* path) {
  const std::string gz = gzip_stored(encode_profile());
  std::FILE* f = std::fopen(path, "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(gz.data(), 1, gz.size(), f) == gz.size();
  const int saved = errno;
  if (std::fclose(f) != 0 || !ok) {
    if (!ok) errno = saved;
    return false;
  }
  return true;
}

}  // namespace mgc::internal
