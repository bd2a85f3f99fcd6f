// Backend memory of the CPU backend: ordinary, aligned host memory.
#include <cstdlib>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "backend/cpu/cpu_backend.h"
#include "peregrine/error.h"

namespace peregrine::cpu {
namespace {
constexpr uint64_t kAlignment = 256;
}

void* CpuBackend::allocate(uint64_t bytes) {
  const uint64_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (!p) throw Error(fmt::format("cpu backend: out of memory allocating {} bytes", bytes));
  std::memset(p, 0, rounded == 0 ? kAlignment : rounded);
  return p;
}

void CpuBackend::release(void* p) noexcept { std::free(p); }

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

const uint8_t* CpuBackend::place_weights(const uint8_t* host, uint64_t, std::string_view) { return host; }

}  // namespace peregrine::cpu
