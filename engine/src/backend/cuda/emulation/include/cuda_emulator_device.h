// The device side of the host-run CUDA emulation (docs/cuda.md, "Running the CUDA code without a
// GPU"): CUDA's qualifiers, built-in index variables, vector types and intrinsics for .cu sources
// compiled as C++. Every CUDA thread of a block is a fiber of the emulator; threadIdx & co. read
// the running fiber, and __syncthreads / warp operations are barriers that switch fibers.
#pragma once

#if !defined(PEREGRINE_CUDA_EMULATION)
#error "the CUDA emulation headers belong to the PEREGRINE_CUDA_EMULATION build only"
#endif

#include <math.h>  // the unqualified isnan, expf, INFINITY ... device code uses

#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __constant__ static
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// One instance per kernel (blocks run one after another, so one block's shared memory at a time),
// all in the section peregrine_shared, which the emulator fills with 0xFF bytes (NaN) before each
// block as it does dynamic shared memory: a read before a write, or a value expected to survive
// from an earlier block, shows up in results.
#define __shared__ __attribute__((section("peregrine_shared"))) static

// ---- vector types ----

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}  // NOLINT: implicit as in CUDA
  constexpr operator uint3() const { return {x, y, z}; }
};

struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned int x, y; };
struct __align__(16) uint4 { unsigned int x, y, z, w; };
struct __align__(4) char4 { signed char x, y, z, w; };
struct __align__(4) uchar4 { unsigned char x, y, z, w; };
struct __align__(4) short2 { short x, y; };
struct __align__(16) double2 { double x, y; };

inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline char4 make_char4(signed char x, signed char y, signed char z, signed char w) { return {x, y, z, w}; }
inline uchar4 make_uchar4(unsigned char x, unsigned char y, unsigned char z, unsigned char w) { return {x, y, z, w}; }

constexpr int warpSize = 32;

namespace peregrine::cuda_emulation {

// The running CUDA thread (a fiber) and its launch; valid while a kernel body runs.
struct ThreadContext {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
extern ThreadContext* current_thread;
void* dynamic_shared();

enum class WarpOp { Sync, ShflIdx, ShflXor, ShflDown, ShflUp, Ballot };
// A warp operation of the running thread: blocks until every live lane of its warp arrives, and
// returns the value the operation hands this lane (ballot: the vote mask).
uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const std::source_location& where);
void sync_block(const std::source_location& where);

template <class T>
uint64_t warp_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move values of up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <class T>
T from_warp_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

}  // namespace peregrine::cuda_emulation

#define threadIdx (::peregrine::cuda_emulation::current_thread->thread_idx)
#define blockIdx (::peregrine::cuda_emulation::current_thread->block_idx)
#define blockDim (::peregrine::cuda_emulation::current_thread->block_dim)
#define gridDim (::peregrine::cuda_emulation::current_thread->grid_dim)

// ---- barriers and warp operations ----

inline void __syncthreads(const std::source_location& where = std::source_location::current()) {
  ::peregrine::cuda_emulation::sync_block(where);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const std::source_location& where = std::source_location::current()) {
  ::peregrine::cuda_emulation::warp_exchange(::peregrine::cuda_emulation::WarpOp::Sync, mask, 0, 0, 32, where);
}

#define PEREGRINE_EMULATED_SHUFFLE(name, op)                                                                 \
  template <class T>                                                                                        \
  inline T name(unsigned mask, T var, int arg, int width = warpSize,                                        \
                const std::source_location& where = std::source_location::current()) {                      \
    namespace emu = ::peregrine::cuda_emulation;                                                            \
    return emu::from_warp_bits<T>(emu::warp_exchange(emu::WarpOp::op, mask, emu::warp_bits(var), arg, width, where)); \
  }
PEREGRINE_EMULATED_SHUFFLE(__shfl_sync, ShflIdx)
PEREGRINE_EMULATED_SHUFFLE(__shfl_xor_sync, ShflXor)
PEREGRINE_EMULATED_SHUFFLE(__shfl_down_sync, ShflDown)
PEREGRINE_EMULATED_SHUFFLE(__shfl_up_sync, ShflUp)
#undef PEREGRINE_EMULATED_SHUFFLE

inline unsigned __ballot_sync(unsigned mask, int predicate,
                              const std::source_location& where = std::source_location::current()) {
  namespace emu = ::peregrine::cuda_emulation;
  return static_cast<unsigned>(emu::warp_exchange(emu::WarpOp::Ballot, mask, predicate != 0, 0, 32, where));
}
inline int __any_sync(unsigned mask, int predicate, const std::source_location& where = std::source_location::current()) {
  return __ballot_sync(mask, predicate, where) != 0;
}
inline int __all_sync(unsigned mask, int predicate, const std::source_location& where = std::source_location::current()) {
  return __ballot_sync(mask, !predicate, where) == 0;
}

// ---- memory intrinsics (the cache hints do nothing on the host) ----

template <class T>
inline T __ldg(const T* p) { return *p; }
template <class T>
inline T __ldcs(const T* p) { return *p; }
template <class T>
inline T __ldcg(const T* p) { return *p; }
template <class T>
inline void __stcs(T* p, T v) { *p = v; }

// Fibers switch only at barriers, so a read-modify-write is never interleaved with another thread.
template <class T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  if (v > old) *p = v;
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  if (v < old) *p = v;
  return old;
}
template <class T>
inline T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <class T>
inline T atomicCAS(T* p, T compare, T v) {
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- arithmetic intrinsics ----

// The fast-math intrinsics are computed accurately (the GPU's are within a few ulp of these).
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x != x ? 0.0f : x)); }
// The build uses -ffp-contract=off, so these are single correctly rounded operations.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float exp10f(float x) { return powf(10.0f, x); }

inline unsigned __float_as_uint(float f) { return std::bit_cast<unsigned>(f); }
inline float __uint_as_float(unsigned u) { return std::bit_cast<float>(u); }
inline int __float_as_int(float f) { return std::bit_cast<int>(f); }
inline float __int_as_float(int i) { return std::bit_cast<float>(i); }

// Float → int conversions saturate and map NaN to 0, as the GPU's cvt instructions do.
inline int peregrine_emulated_float_to_int(double rounded) {
  if (rounded != rounded) return 0;
  if (rounded >= 2147483647.0) return INT_MAX;
  if (rounded <= -2147483648.0) return INT_MIN;
  return static_cast<int>(rounded);
}
inline int __float2int_rn(float x) { return peregrine_emulated_float_to_int(std::nearbyint(static_cast<double>(x))); }
inline int __float2int_rz(float x) { return peregrine_emulated_float_to_int(std::trunc(static_cast<double>(x))); }
inline int __float2int_rd(float x) { return peregrine_emulated_float_to_int(std::floor(static_cast<double>(x))); }
inline int __float2int_ru(float x) { return peregrine_emulated_float_to_int(std::ceil(static_cast<double>(x))); }

inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}

// Σ_{k<4} int8(a byte k) · int8(b byte k) + c, and the unsigned form.
inline int __dp4a(int a, int b, int c) {
  for (int k = 0; k < 4; ++k)
    c += static_cast<int>(static_cast<int8_t>(a >> (8 * k))) * static_cast<int>(static_cast<int8_t>(b >> (8 * k)));
  return c;
}
inline unsigned __dp4a(unsigned a, unsigned b, unsigned c) {
  for (int k = 0; k < 4; ++k) c += ((a >> (8 * k)) & 0xFFu) * ((b >> (8 * k)) & 0xFFu);
  return c;
}

// CUDA's global min/max overloads for integers (floats use fminf/fmaxf, also global here).
#define PEREGRINE_EMULATED_MINMAX(T)                   \
  inline T min(T a, T b) { return b < a ? b : a; }     \
  inline T max(T a, T b) { return a < b ? b : a; }
PEREGRINE_EMULATED_MINMAX(int)
PEREGRINE_EMULATED_MINMAX(unsigned int)
PEREGRINE_EMULATED_MINMAX(long)
PEREGRINE_EMULATED_MINMAX(unsigned long)
PEREGRINE_EMULATED_MINMAX(long long)
PEREGRINE_EMULATED_MINMAX(unsigned long long)
PEREGRINE_EMULATED_MINMAX(float)
PEREGRINE_EMULATED_MINMAX(double)
#undef PEREGRINE_EMULATED_MINMAX
