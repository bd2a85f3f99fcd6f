// CpuBackend's sampling operations: backend memory is host memory, so they are the host
// reference (logit_select.h) applied in place, with no copy.
#include "backend/cpu/cpu_backend.h"

namespace peregrine::cpu {

void CpuBackend::penalize_logits(float* row, int64_t /*n*/, const LogitPenalties& penalties) {
  apply_logit_penalties(row, penalties);
}

void CpuBackend::top_k_rows(const float* x, int64_t n_rows, int64_t row_stride, int64_t n_valid, int64_t k,
                            int32_t* ids, float* values) {
  // Rows are independent: a verify pass's rows go to different threads.
  pool_.parallel_for(n_rows, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) select_top_k(x + r * row_stride, n_valid, k, ids + r * k, values + r * k);
  });
}

}  // namespace peregrine::cpu
