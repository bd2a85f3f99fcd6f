// Random-weight Qwen 3.5/3.6 models with real tensor names, shapes and metadata, for tests and
// benchmarks (`peregrine-cli make-synthetic`). Files load in llama.cpp as `qwen35` / `qwen35moe`.
//
// The writer streams: tensors are generated (and quantized) a slab at a time by a worker pool
// and written in declaration order, so memory stays at a few hundred MB whatever the model size.
// Large matrices reuse a per-shape-class pool of random rows at rotating offsets (speed does not
// depend on the values); see docs/cli.md for the exact scheme.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peregrine/model_config.h"
#include "peregrine/tensor_type.h"

namespace peregrine::synthetic {

// The dimensions of a synthetic model (the built-in ones: docs/cli.md, "Built-in shapes").
struct Shape {
  std::string name;
  Architecture arch = Architecture::Qwen35;
  int64_t n_embd = 0;
  int64_t n_layer = 0;                 // trunk layers (the MTP block comes on top)
  int64_t n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t n_rot = 0;                   // 0: head_dim / 4
  std::vector<int32_t> rope_sections;  // empty: [11,11,10,0] scaled to n_rot / 2 pairs
  float rope_freq_base = 1e7f;
  float rms_eps = 1e-6f;
  int64_t context_length = 262144;
  int64_t ssm_group_count = 0, ssm_time_step_rank = 0, ssm_state_size = 0, ssm_conv_kernel = 4;
  int64_t full_attention_interval = 4;
  int64_t n_ff = 0;                    // dense FFN width (qwen35)
  int64_t n_expert = 0, n_expert_used = 0, n_ff_expert = 0, n_ff_shared_expert = 0;  // qwen35moe
  int64_t n_vocab = 0;
};

// Built-in shapes: qwen3.6-27b, qwen3.6-35b-a3b, bench-3b, bench-1b, tiny, tiny-moe.
const std::vector<Shape>& builtin_shapes();
std::optional<Shape> builtin_shape(std::string_view name);
// A shape from a JSON object (fields as in Shape; "base": "<builtin>" starts from a built-in
// shape). Throws peregrine::Error naming the source and field.
Shape shape_from_json_text(std::string_view json_text, const std::string& source);
Shape shape_from_json_file(const std::filesystem::path& path);

// The config the synthetic file will describe (validated). `mtp`: one NextN block after the trunk.
ModelConfig make_config(const Shape& shape, bool mtp);

enum class FileType { F32, F16, Q8_0, Q4_K_M };
std::optional<FileType> file_type_from_name(std::string_view name);  // "Q4_K_M", "q8_0", ...
std::string_view file_type_name(FileType type);
uint32_t gguf_file_type(FileType type);  // general.file_type: 0, 1, 7, 15

// One tensor as it will be written: the type chosen by llama-quantize's rules for `type`.
struct PlannedTensor {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<int64_t> ne;
};
std::vector<PlannedTensor> plan_tensors(const ModelConfig& config, FileType type);

// The Qwen-like byte-level BPE vocabulary written into synthetic files.
struct Vocabulary {
  std::vector<std::string> tokens;   // byte-level alphabet ("Ġthe"); specials as raw text
  std::vector<int32_t> token_types;  // llama.cpp: 1 normal, 3 control, 4 user-defined, 5 unused
  std::vector<std::string> merges;   // "Ġ t"
  int32_t endoftext = 0, im_start = 0, im_end = 0, think = 0, end_think = 0;
};
// Throws peregrine::Error when n_vocab is too small to hold bytes and specials (< 300).
Vocabulary make_vocabulary(int64_t n_vocab);
extern const char* const kChatTemplate;  // plain ChatML

struct Options {
  Shape shape;
  FileType type = FileType::F32;
  std::filesystem::path out;
  uint64_t seed = 0;
  bool mtp = true;
  int threads = 0;  // 0: hardware concurrency
};

struct Report {
  uint64_t file_bytes = 0;
  int64_t n_tensors = 0;
  int64_t n_parameters = 0;
  double seconds = 0;
};

// Writes the model. Deterministic for a given seed (independent of `threads`). Throws on error;
// the output appears only when complete.
Report write_model(const Options& options);

}  // namespace peregrine::synthetic
