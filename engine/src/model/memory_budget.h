// Before a model is placed: what it and one sequence need in backend memory, against what the
// backend has available, so that a model or a context that cannot fit is refused with the numbers
// instead of stalling in (or failing part-way through) its allocations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "peregrine/backend.h"
#include "peregrine/model.h"
#include "peregrine/model_config.h"

namespace peregrine {

class GgufFile;
struct Qwen35Weights;

// The environment variable that, when set to a number of bytes, replaces the backend's own probe
// (host MemAvailable, cudaMemGetInfo): tests refuse a modest context with it without the machine
// being short of memory.
inline constexpr const char* kAvailableMemoryVariable = "PEREGRINE_AVAILABLE_MEMORY_BYTES";

// kAvailableMemoryVariable when set, else backend.free_memory(). Throws peregrine::Error when the
// variable is not a number of bytes.
std::optional<uint64_t> available_memory(const Backend& backend);

// "512 B", "3.5 KiB", "64.0 MiB", "16.00 GiB".
std::string human_bytes(uint64_t bytes);

// Throws peregrine::Error, naming both numbers and what makes up the need, when the weights (on a
// device backend: they are copied there; the CPU backend reads the mapping in place), one sequence
// over options.context_length and the forward scratch exceed the available memory. Does nothing
// when the backend does not know its available memory.
void check_memory_budget(const GgufFile& file, const GgufFile* mtp, const ModelConfig& config,
                         const ModelOptions& options, const Qwen35Weights& weights, const Backend& backend);

}  // namespace peregrine
