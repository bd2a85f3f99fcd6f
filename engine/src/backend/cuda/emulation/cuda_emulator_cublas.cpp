// The CUDA emulator's cuBLAS: handles and float32 cublasGemmEx, queued on the handle's stream.
#include <cublas_v2.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_emulator.h"
#include "peregrine/log.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
};

using namespace peregrine::cuda_emulation;  // NOLINT: the API below is cuBLAS's, at global scope

namespace {

// float32 → TF32 (10 explicit mantissa bits), round to nearest with ties away from zero, as the
// tensor cores' conversion does; infinities and NaN pass through.
float to_tf32(float x) {
  if (!std::isfinite(x)) return x;
  uint32_t bits = std::bit_cast<uint32_t>(x);
  bits = (bits + 0x1000u) & ~0x1FFFu;
  return std::bit_cast<float>(bits);
}

// PEREGRINE_CUDA_EMULATION_TF32=0 computes FAST_TF32 products in full float32: a diagnostic to
// tell a test's TF32 rounding from a kernel bug (the default models the tensor cores).
bool tf32_rounding_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("PEREGRINE_CUDA_EMULATION_TF32");
    return !(env && std::string(env) == "0");
  }();
  return enabled;
}

cublasStatus_t invalid(const std::string& why) {
  peregrine::log::get("cuda")->error("CUDA emulator: cublasGemmEx: {}", why);
  return CUBLAS_STATUS_INVALID_VALUE;
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t) {
  return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  }
  return "unknown error";
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  std::lock_guard lock(api_mutex());
  if (Atype != CUDA_R_32F || Btype != CUDA_R_32F || Ctype != CUDA_R_32F)
    return invalid("only float32 matrices are emulated");
  if (computeType != CUBLAS_COMPUTE_32F && computeType != CUBLAS_COMPUTE_32F_FAST_TF32 &&
      computeType != CUBLAS_COMPUTE_32F_PEDANTIC)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (transa == CUBLAS_OP_C || transb == CUBLAS_OP_C) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (m < 0 || n < 0 || k < 0) return invalid("negative dimension");
  const int a_rows = transa == CUBLAS_OP_N ? m : k, a_cols = transa == CUBLAS_OP_N ? k : m;
  const int b_rows = transb == CUBLAS_OP_N ? k : n, b_cols = transb == CUBLAS_OP_N ? n : k;
  if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return invalid(cat_text("leading dimensions lda ", lda, ", ldb ", ldb, ", ldc ", ldc, " for m ", m, ", n ", n,
                            ", k ", k));
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  auto extent = [](int rows, int cols, int ld) { return (static_cast<uint64_t>(cols - 1) * ld + rows) * sizeof(float); };
  if (k > 0 && !device_range_valid(A, extent(a_rows, a_cols, lda)))
    return invalid(cat_text("A (", A, ") is not inside one device allocation"));
  if (k > 0 && !device_range_valid(B, extent(b_rows, b_cols, ldb)))
    return invalid(cat_text("B (", B, ") is not inside one device allocation"));
  if (!device_range_valid(C, extent(m, n, ldc))) return invalid(cat_text("C (", C, ") is not inside one device allocation"));
  const bool device_scalars = handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE;
  const float alpha_host = device_scalars ? 0.0f : *static_cast<const float*>(alpha);
  const float beta_host = device_scalars ? 0.0f : *static_cast<const float*>(beta);
  const bool tf32 = computeType == CUBLAS_COMPUTE_32F_FAST_TF32 && tf32_rounding_enabled();
  const auto* a = static_cast<const float*>(A);
  const auto* b = static_cast<const float*>(B);
  auto* c = static_cast<float*>(C);
  const auto* alpha_dev = static_cast<const float*>(alpha);
  const auto* beta_dev = static_cast<const float*>(beta);
  Operation op;
  op.kind = Operation::Kind::Gemm;
  op.what = "cublasGemmEx";
  op.run = [=] {
    const float al = device_scalars ? *alpha_dev : alpha_host;
    const float be = device_scalars ? *beta_dev : beta_host;
    auto a_at = [&](int i, int p) { return transa == CUBLAS_OP_N ? a[static_cast<int64_t>(p) * lda + i] : a[static_cast<int64_t>(i) * lda + p]; };
    auto b_at = [&](int p, int j) { return transb == CUBLAS_OP_N ? b[static_cast<int64_t>(j) * ldb + p] : b[static_cast<int64_t>(p) * ldb + j]; };
    std::vector<float> row(static_cast<size_t>(k));
    for (int i = 0; i < m; ++i) {
      for (int p = 0; p < k; ++p) row[static_cast<size_t>(p)] = tf32 ? to_tf32(a_at(i, p)) : a_at(i, p);
      for (int j = 0; j < n; ++j) {
        float sum = 0.0f;
        for (int p = 0; p < k; ++p) {
          const float bv = tf32 ? to_tf32(b_at(p, j)) : b_at(p, j);
          sum += row[static_cast<size_t>(p)] * bv;
        }
        float& out = c[static_cast<int64_t>(j) * ldc + i];
        // beta = 0 ignores C's old contents (they may be NaN), as BLAS specifies.
        out = be == 0.0f ? al * sum : al * sum + be * out;
      }
    }
  };
  return submit(handle->stream, std::move(op)) == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
