// The sizes MTP speculative decoding (docs/mtp.md) fixes for everything below it: the decoder
// drafts at most kMaxMtpDraftLength tokens, and one verify step evaluates them together with the
// token they follow. The forward pass and the backends size their short-step paths (backend-routed
// MoE, step graphs, the CUDA GEMV kernels) from kMaxVerifyTokens so that every verify step takes
// them. No dependencies: the ui reads the limit too.
#pragma once

namespace peregrine {

inline constexpr int kMaxMtpDraftLength = 8;                     // the longest draft (`--mtp 1..8`)
inline constexpr int kMaxVerifyTokens = kMaxMtpDraftLength + 1;  // the widest verify step: the drafts and their predecessor

}  // namespace peregrine
