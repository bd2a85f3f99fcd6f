// The byte format of a sequence snapshot (Model::snapshot / Model::restore) and the hashes it
// relies on. Layout, version 1 (all integers little-endian; docs/state.md has the table):
//
//   header (kSnapshotHeaderBytes):
//     0   magic "PRGNSEQ\0"          8 bytes
//     8   format version             u32 (kSnapshotVersion)
//     12  header bytes               u32 (kSnapshotHeaderBytes)
//     16  model fingerprint          u64 (model_fingerprint)
//     24  trunk position n_past      i64
//     32  MTP position mtp_n_past    i64
//     40  KV type                    u32 (GGUF / ggml type id)
//     44  section count              u32 (kSnapshotSections)
//     48  section sizes              u64 × kSnapshotSections, in payload order (SnapshotSection)
//     96  payload bytes              u64 (their sum)
//     104 context length at save     i64 (informational: restore needs only room for the positions)
//     112 CRC32C                     u32 over header bytes [0, 112) and the whole payload
//     116 reserved                   u32 (zero)
//   payload: the sections, back to back:
//     trunk KV   per attention layer: K rows [0, n_past), then V rows [0, n_past), cache encoding
//     conv       per delta-net layer: conv state, F32
//     recurrent  per delta-net layer: recurrent state, F32
//     MTP KV     K rows [0, mtp_n_past), then V rows [0, mtp_n_past)
//     logits     the last evaluated token's logits (n_vocab F32), or empty
//     hidden     the last evaluated token's final hidden row (n_embd F32), or empty
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "model/qwen35_state.h"

namespace peregrine {

class GgufFile;

inline constexpr char kSnapshotMagic[8] = {'P', 'R', 'G', 'N', 'S', 'E', 'Q', '\0'};
inline constexpr uint32_t kSnapshotVersion = 1;
inline constexpr uint32_t kSnapshotHeaderBytes = 120;

enum class SnapshotSection : uint32_t { TrunkKv, Conv, Recurrent, MtpKv, Logits, Hidden };
inline constexpr uint32_t kSnapshotSections = 6;

// Byte offsets of the header fields (tests patch fields through these).
namespace snapshot_offset {
inline constexpr size_t kVersion = 8, kHeaderBytes = 12, kFingerprint = 16, kNPast = 24, kMtpNPast = 32,
                        kKvType = 40, kSectionCount = 44, kSections = 48, kPayloadBytes = 96, kContext = 104,
                        kCrc = 112;
}

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), zlib-style chaining: pass the CRC of the
// bytes before to continue. crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const uint8_t* data, size_t n, uint32_t crc = 0);

// 64-bit FNV-1a of the configuration and the tensor table of `file`: names, types, shapes,
// offsets, sizes, and up to 3 × 32 bytes sampled from each tensor's data (start, middle, end), so
// two files with the same shapes but different weights differ, without reading all the weights.
uint64_t model_fingerprint(const GgufFile& file, const ModelConfig& config);

// Serialises `seq` into `out` (resized to the exact snapshot size).
void write_snapshot(const Sequence::Impl& seq, const ModelConfig& config, uint64_t fingerprint,
                    std::vector<uint8_t>& out);

// Validates `bytes` completely (header, sizes, checksum, model, KV type, context) and only then
// loads it into `seq`. Throws SnapshotError; `seq` is unchanged when it throws. `model_name`
// is for messages.
void read_snapshot(Sequence::Impl& seq, const ModelConfig& config, uint64_t fingerprint,
                   std::span<const uint8_t> bytes, std::string_view model_name);

}  // namespace peregrine
