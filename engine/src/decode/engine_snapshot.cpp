#include "decode/engine_snapshot.h"

#include <cstring>

#include <fmt/format.h>

#include "model/sequence_snapshot.h"

namespace peregrine {
namespace {

namespace offset {
inline constexpr size_t kVersion = 8, kTokenCount = 16, kCrc = 24, kTokens = kEngineSnapshotHeaderBytes;
}

template <class T>
T read_at(std::span<const uint8_t> in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  return v;
}

template <class T>
void write_at(std::vector<uint8_t>& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);
}

uint32_t envelope_crc(std::span<const uint8_t> bytes, uint64_t n_tokens) {
  const uint32_t crc = crc32c(bytes.data(), offset::kCrc);
  return crc32c(bytes.data() + offset::kTokens, n_tokens * sizeof(int32_t), crc);
}

}  // namespace

void write_engine_snapshot(const Model& model, const Sequence& seq, std::span<const int32_t> tokens,
                           std::vector<uint8_t>& out) {
  if (static_cast<int64_t>(tokens.size()) != seq.n_past())
    throw Error(fmt::format("snapshot: the engine's list of evaluated ids has {} entries but the sequence is at "
                            "position {}", tokens.size(), seq.n_past()));
  const std::vector<uint8_t> state = model.snapshot(seq);
  const size_t ids_bytes = tokens.size() * sizeof(int32_t);
  out.assign(kEngineSnapshotHeaderBytes + ids_bytes + state.size(), 0);
  std::memcpy(out.data(), kEngineSnapshotMagic, sizeof kEngineSnapshotMagic);
  write_at<uint32_t>(out, offset::kVersion, kEngineSnapshotVersion);
  write_at<uint64_t>(out, offset::kTokenCount, tokens.size());
  if (ids_bytes > 0) std::memcpy(out.data() + offset::kTokens, tokens.data(), ids_bytes);
  std::memcpy(out.data() + offset::kTokens + ids_bytes, state.data(), state.size());
  write_at<uint32_t>(out, offset::kCrc, envelope_crc(out, tokens.size()));
}

void read_engine_snapshot(const Model& model, Sequence& seq, std::vector<int32_t>& tokens,
                          std::span<const uint8_t> bytes) {
  using Code = SnapshotErrorCode;
  if (bytes.size() < kEngineSnapshotHeaderBytes)
    throw SnapshotError(Code::Truncated, fmt::format("restore: {} bytes is shorter than the engine snapshot header "
                                                     "({} bytes)", bytes.size(), kEngineSnapshotHeaderBytes));
  if (std::memcmp(bytes.data(), kEngineSnapshotMagic, sizeof kEngineSnapshotMagic) != 0)
    throw SnapshotError(Code::NotASnapshot, "restore: the bytes do not start with the engine snapshot magic "
                                            "\"PRGNENG\" (not a snapshot made by peregrine::Engine)");
  if (const auto version = read_at<uint32_t>(bytes, offset::kVersion); version != kEngineSnapshotVersion)
    throw SnapshotError(Code::Version, fmt::format("restore: engine snapshot version {}, this build reads version {}",
                                                   version, kEngineSnapshotVersion));
  const auto n_tokens = read_at<uint64_t>(bytes, offset::kTokenCount);
  const uint64_t room = (bytes.size() - kEngineSnapshotHeaderBytes) / sizeof(int32_t);
  if (n_tokens > room)
    throw SnapshotError(Code::Truncated, fmt::format("restore: the engine snapshot lists {} token ids but only {} "
                                                     "bytes follow its header", n_tokens,
                                                     bytes.size() - kEngineSnapshotHeaderBytes));
  if (envelope_crc(bytes, n_tokens) != read_at<uint32_t>(bytes, offset::kCrc))
    throw SnapshotError(Code::Corrupt, "restore: the engine snapshot's checksum (CRC32C over its header and token "
                                       "ids) does not match: the bytes are corrupt");

  const std::span<const uint8_t> state = bytes.subspan(offset::kTokens + n_tokens * sizeof(int32_t));
  // The ids must describe the state they travel with, or prefix reuse would continue from the
  // wrong text; the model snapshot's own checks (fingerprint, CRC, sizes) come in restore().
  if (state.size() >= kSnapshotHeaderBytes) {
    const auto n_past = read_at<int64_t>(state, snapshot_offset::kNPast);
    if (n_past < 0 || static_cast<uint64_t>(n_past) != n_tokens)
      throw SnapshotError(Code::Corrupt, fmt::format("restore: the engine snapshot lists {} token ids but its "
                                                     "sequence state is at position {}", n_tokens, n_past));
  }
  const int64_t n_vocab = model.config().n_vocab;
  std::vector<int32_t> ids(n_tokens);
  if (n_tokens > 0) std::memcpy(ids.data(), bytes.data() + offset::kTokens, n_tokens * sizeof(int32_t));
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= n_vocab)
      throw SnapshotError(Code::Corrupt, fmt::format("restore: token id {} (at {}) of the engine snapshot is outside "
                                                     "the model's vocabulary [0, {})", ids[i], i, n_vocab));

  model.restore(seq, state);  // throws before touching seq
  tokens = std::move(ids);
}

}  // namespace peregrine
