// A separate MTP-only GGUF (`mtp-<trunk>.gguf`, llama.cpp's converter with --mtp): the NextN
// block tensors blk.L.* (L = trunk layers) plus token_embd / output_norm / output, with the
// trunk's arch metadata and block_count = L + 1, nextn_predict_layers = 1. See docs/mtp.md.
#pragma once

#include <filesystem>
#include <memory>

#include "peregrine/model_config.h"

namespace peregrine {

class GgufFile;

// Checks that `mtp_file` holds an MTP block that fits the trunk described by `trunk_config`
// (same architecture and every dimension the block and its head use, trunk layer count L equal,
// its blk.L tensors present with the right shapes and types) and returns the trunk's config
// with the MTP block added (n_nextn = 1). Throws peregrine::Error naming the MTP file and what
// differs. The trunk must not have an MTP block of its own.
ModelConfig attach_mtp_config(const ModelConfig& trunk_config, const GgufFile& trunk_file, const GgufFile& mtp_file);

// `mtp-<name>` next to `trunk_path` (what the converter writes); may not exist.
std::filesystem::path mtp_companion_path(const std::filesystem::path& trunk_path);

// The separate MTP file to attach to a trunk without an MTP block: `explicit_path` when given,
// else the `mtp-<name>` companion when it exists; null when the trunk has its own block or there is
// no file. Throws GgufError for an MTP file that cannot be read.
std::unique_ptr<GgufFile> open_mtp_file_for(const GgufFile& trunk, const std::filesystem::path& trunk_path,
                                            const std::filesystem::path& explicit_path = {});

}  // namespace peregrine
