// Backend memory of the CPU backend: ordinary, aligned host memory.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "backend/cpu/cpu_backend.h"
#include "peregrine/error.h"

namespace peregrine::cpu {
namespace {
constexpr uint64_t kAlignment = 256;
}

// Zero-filled through calloc, which gets large blocks straight from the kernel as pages that are
// zero until first touched: a KV cache for a long context costs its pages only as positions are
// written, not a multi-gigabyte memset before the first token. calloc aligns to 16 bytes only,
// so the block is over-allocated and the pointer calloc gave is kept just below the aligned one.
void* CpuBackend::allocate(uint64_t bytes) {
  const uint64_t rounded = std::max<uint64_t>((bytes + kAlignment - 1) / kAlignment * kAlignment, kAlignment);
  void* block = std::calloc(1, rounded + kAlignment + sizeof(void*));
  if (!block) throw Error(fmt::format("cpu backend: out of memory allocating {} bytes", bytes));
  const uintptr_t first_free = reinterpret_cast<uintptr_t>(block) + sizeof(void*);
  void** aligned = reinterpret_cast<void**>((first_free + kAlignment - 1) / kAlignment * kAlignment);
  aligned[-1] = block;
  return aligned;
}

void CpuBackend::release(void* p) noexcept {
  if (p) std::free(static_cast<void**>(p)[-1]);
}

void CpuBackend::upload(void* dst, const void* host_src, uint64_t bytes) {
  if (bytes) std::memcpy(dst, host_src, bytes);
}

void CpuBackend::download(void* host_dst, const void* src, uint64_t bytes) {
  if (bytes) std::memcpy(host_dst, src, bytes);
}

void CpuBackend::copy(void* dst, const void* src, uint64_t bytes) {
  if (bytes && dst != src) std::memmove(dst, src, bytes);
}

void CpuBackend::fill_zero(void* dst, uint64_t bytes) {
  if (bytes) std::memset(dst, 0, bytes);
}

// MemAvailable of /proc/meminfo: what the kernel estimates can be allocated without swapping
// (free memory plus the page cache it can drop). Unknown where there is no such file.
std::optional<uint64_t> CpuBackend::free_memory() const {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    uint64_t kib = 0;
    std::string unit;
    if (fields >> kib >> unit && unit == "kB") return kib * 1024;
    return std::nullopt;
  }
  return std::nullopt;
}

const uint8_t* CpuBackend::place_weights(const uint8_t* host, uint64_t, std::string_view) { return host; }

}  // namespace peregrine::cpu
