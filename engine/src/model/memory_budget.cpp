#include "model/memory_budget.h"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "model/qwen35_forward.h"
#include "model/qwen35_state.h"
#include "model/qwen35_weights.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/log.h"
#include "peregrine/mtp_limits.h"

namespace peregrine {

std::optional<uint64_t> available_memory(const Backend& backend) {
  const char* text = std::getenv(kAvailableMemoryVariable);
  if (!text) return backend.free_memory();
  const std::string_view value(text);
  uint64_t bytes = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), bytes);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size())
    throw Error(fmt::format("{}='{}': expected a number of bytes", kAvailableMemoryVariable, value));
  return bytes;
}

std::string human_bytes(uint64_t bytes) {
  constexpr double kKiB = 1024.0, kMiB = kKiB * 1024.0, kGiB = kMiB * 1024.0;
  if (bytes >= uint64_t{1} << 30) return fmt::format("{:.2f} GiB", bytes / kGiB);
  if (bytes >= uint64_t{1} << 20) return fmt::format("{:.1f} MiB", bytes / kMiB);
  if (bytes >= uint64_t{1} << 10) return fmt::format("{:.1f} KiB", bytes / kKiB);
  return fmt::format("{} B", bytes);
}

void check_memory_budget(const GgufFile& file, const GgufFile* mtp, const ModelConfig& c, const ModelOptions& o,
                         const Qwen35Weights& weights, const Backend& backend) {
  const std::optional<uint64_t> available = available_memory(backend);
  if (!available) return;
  const bool device = !backend.host_memory();
  // A device backend's own workspaces (cuBLAS, dequantized tiles) need headroom too.
  const uint64_t workspace = device ? uint64_t{512} << 20 : 0;
  const uint64_t weight_bytes = device ? weights.placed_bytes(file, mtp) : 0;
  const SequenceMemory seq = Sequence::Impl::planned_memory(c, o.context_length, o.kv_type);
  // The speculative decoder keeps every delta-net state once per verified token to roll back.
  const uint64_t checkpoints = c.has_mtp() ? (seq.conv_bytes + seq.recurrent_bytes) * kMaxVerifyTokens : 0;
  const uint64_t sequence_bytes = seq.total() + checkpoints;
  const uint64_t scratch = Qwen35Forward::scratch_bytes(c, o.max_batch);
  const uint64_t need = weight_bytes + workspace + sequence_bytes + scratch;
  const std::string where = fmt::format("the {} backend has {} available{}", backend.name(), human_bytes(*available),
                                        std::getenv(kAvailableMemoryVariable) ? fmt::format(" ({})", kAvailableMemoryVariable)
                                        : device                              ? ""
                                                                              : " (MemAvailable)");
  const std::string fixed = device ? fmt::format("weights {} + workspace {} + ", human_bytes(weight_bytes),
                                                 human_bytes(workspace))
                                   : "";
  log::get("model")->info("{} memory: {}sequence (context {}) {} + scratch {} = {}; {}", backend.name(), fixed,
                          o.context_length, human_bytes(sequence_bytes), human_bytes(scratch), human_bytes(need),
                          where);
  if (need <= *available) return;
  const std::string advice =
      device ? "use a smaller context, a smaller quantization, or the CPU backend" : "use a smaller context";
  if (weight_bytes + workspace + scratch > *available)
    throw Error(fmt::format("{}: does not fit: {}scratch {} = {} before any context, but {}; {}", file.display_name(),
                            fixed, human_bytes(scratch), human_bytes(weight_bytes + workspace + scratch), where,
                            advice));
  throw Error(fmt::format("{}: a context of {} tokens needs {} for the sequence (KV cache {} as {}, delta-net "
                          "states {}{}); with {}scratch {} that is {}, but {}; {}",
                          file.display_name(), o.context_length, human_bytes(sequence_bytes),
                          human_bytes(seq.kv_bytes + seq.mtp_kv_bytes), tensor_type_info(o.kv_type).name,
                          human_bytes(seq.conv_bytes + seq.recurrent_bytes),
                          checkpoints ? fmt::format(", rollback checkpoints {}", human_bytes(checkpoints)) : "",
                          fixed, human_bytes(scratch), human_bytes(need), where, advice));
}

}  // namespace peregrine
