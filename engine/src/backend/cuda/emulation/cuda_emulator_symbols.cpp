// Kernel names for the CUDA emulator's messages: kernels are mostly in anonymous namespaces, so
// they are local symbols that dladdr cannot see; the ELF symbol table (.symtab) of the object
// holding the address has them.
#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "cuda_emulator.h"

namespace peregrine::cuda_emulation {
namespace {

struct ObjectOf {
  uintptr_t address = 0;
  uintptr_t base = 0;
  std::string path;
  bool found = false;
};

int find_object(dl_phdr_info* info, size_t, void* data) {
  auto* q = static_cast<ObjectOf*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (q->address >= start && q->address < start + ph.p_memsz) {
      q->base = info->dlpi_addr;
      q->path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : "/proc/self/exe";
      q->found = true;
      return 1;
    }
  }
  return 0;
}

std::string symbol_at(const std::string& path, uintptr_t offset) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  std::string result;
  if (fstat(fd, &st) == 0 && st.st_size > static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
      const auto* bytes = static_cast<const unsigned char*>(map);
      const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(bytes);
      if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64) {
        const auto* sections = reinterpret_cast<const Elf64_Shdr*>(bytes + eh->e_shoff);
        for (int i = 0; i < eh->e_shnum && result.empty(); ++i) {
          if (sections[i].sh_type != SHT_SYMTAB) continue;
          const auto* syms = reinterpret_cast<const Elf64_Sym*>(bytes + sections[i].sh_offset);
          const char* names = reinterpret_cast<const char*>(bytes + sections[sections[i].sh_link].sh_offset);
          const size_t n = sections[i].sh_size / sizeof(Elf64_Sym);
          for (size_t k = 0; k < n; ++k) {
            if (ELF64_ST_TYPE(syms[k].st_info) != STT_FUNC) continue;
            if (offset >= syms[k].st_value && offset < syms[k].st_value + std::max<uint64_t>(syms[k].st_size, 1)) {
              result = names + syms[k].st_name;
              break;
            }
          }
        }
      }
      munmap(map, static_cast<size_t>(st.st_size));
    }
  }
  close(fd);
  return result;
}

}  // namespace

std::string kernel_name(const void* kernel) {
  static std::map<const void*, std::string> cache;
  if (auto it = cache.find(kernel); it != cache.end()) return it->second;
  ObjectOf q;
  q.address = reinterpret_cast<uintptr_t>(kernel);
  dl_iterate_phdr(find_object, &q);
  std::string name;
  if (q.found) {
    const std::string mangled = symbol_at(q.path, q.address - q.base);
    if (!mangled.empty()) {
      int status = 0;
      char* demangled = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
      name = status == 0 && demangled ? demangled : mangled;
      std::free(demangled);
    }
  }
  if (name.empty()) {
    std::ostringstream s;
    s << "at " << kernel;
    name = s.str();
  }
  // "void peregrine::cuda::(anonymous namespace)::add_kernel(float*, ...)" → "add_kernel<...>"
  // is enough to find it; keep the qualified name without the parameter list.
  if (const size_t paren = name.find('('); paren != std::string::npos && paren > 0 && name.rfind("at ", 0) != 0) {
    // The parameter list starts at the last top-level '(' (template arguments may hold parens).
    int depth = 0;
    for (size_t i = name.size(); i-- > 0;) {
      if (name[i] == ')') ++depth;
      if (name[i] == '(' && --depth == 0) {
        name.resize(i);
        break;
      }
    }
  }
  const std::string prefix = "peregrine::cuda::(anonymous namespace)::";
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  cache[kernel] = name;
  return name;
}

}  // namespace peregrine::cuda_emulation
