// The Engine's snapshot bytes: the model's sequence snapshot (model/sequence_snapshot.h) wrapped
// in an envelope that adds the token ids evaluated into the sequence. The ids are what lets a
// later Generate whose prompt extends them evaluate only the rest (prefix reuse), in this engine
// or in another one that loaded the same model. Layout, version 1 (little-endian):
//
//   0   magic "PRGNENG\0"            8 bytes
//   8   envelope version             u32 (kEngineSnapshotVersion)
//   12  reserved                     u32 (zero)
//   16  token count n                u64 (equals the model snapshot's trunk position)
//   24  CRC32C                       u32 over bytes [0, 24) and the token ids
//   28  reserved                     u32 (zero)
//   32  token ids                    i32 × n
//   32 + 4n  the model snapshot      (its own header, fingerprint and CRC32C; docs/state.md)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "peregrine/model.h"

namespace peregrine {

inline constexpr char kEngineSnapshotMagic[8] = {'P', 'R', 'G', 'N', 'E', 'N', 'G', '\0'};
inline constexpr uint32_t kEngineSnapshotVersion = 1;
inline constexpr size_t kEngineSnapshotHeaderBytes = 32;

// Serialises `seq` (which holds exactly the ids `tokens`) into `out`.
void write_engine_snapshot(const Model& model, const Sequence& seq, std::span<const int32_t> tokens,
                           std::vector<uint8_t>& out);

// Validates the envelope, checks that its ids agree with the model snapshot's position, and
// restores the sequence; `tokens` becomes the snapshot's ids. Throws SnapshotError naming what
// is wrong; `seq` and `tokens` are then unchanged.
void read_engine_snapshot(const Model& model, Sequence& seq, std::vector<int32_t>& tokens,
                          std::span<const uint8_t> bytes);

}  // namespace peregrine
