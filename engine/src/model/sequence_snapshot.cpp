// Writing and reading sequence snapshots (format: sequence_snapshot.h, docs/state.md).
#include "model/sequence_snapshot.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "peregrine/quant.h"

namespace peregrine {
namespace {

using Sizes = std::array<uint64_t, kSnapshotSections>;

template <class T>
void put(std::vector<uint8_t>& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);
}

template <class T>
T get(std::span<const uint8_t> in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  return v;
}

bool is_attention(const KvCache& kv) { return !kv.k.empty(); }
// (empty arrays: a delta-net layer's KvCache, an attention layer's DeltaNetState)
bool is_delta_net(const DeltaNetState& d) { return !d.recurrent.empty(); }

// Section sizes of a sequence at trunk position n and MTP position m, with or without the
// last-token outputs.
Sizes section_sizes(const Sequence::Impl& seq, const ModelConfig& c, int64_t n, int64_t m, bool logits,
                    bool hidden) {
  Sizes s{};
  auto& [trunk_kv, conv, recurrent, mtp_kv, logits_bytes, hidden_bytes] = s;
  for (const KvCache& kv : seq.kv)
    if (is_attention(kv)) trunk_kv += 2 * static_cast<uint64_t>(n) * kv.row_bytes;
  for (const DeltaNetState& d : seq.delta) {
    conv += d.conv.bytes();
    recurrent += d.recurrent.bytes();
  }
  if (is_attention(seq.mtp_kv)) mtp_kv = 2 * static_cast<uint64_t>(m) * seq.mtp_kv.row_bytes;
  logits_bytes = logits ? c.n_vocab * sizeof(float) : 0;
  hidden_bytes = hidden ? c.n_embd * sizeof(float) : 0;
  return s;
}

uint64_t sum(const Sizes& s) {
  uint64_t total = 0;
  for (uint64_t v : s) total += v;
  return total;
}

// Copies between the sequence and a payload; `Dir` decides which way. States live in backend
// memory (state()), the last-token outputs in host memory (bytes()).
enum class Dir { Save, Load };

template <Dir dir>
class PayloadCursor {
 public:
  using Byte = std::conditional_t<dir == Dir::Save, uint8_t, const uint8_t>;
  PayloadCursor(Backend& backend, Byte* at) : be_(backend), at_(at) {}
  template <class Mem>
  void bytes(Mem* mem, uint64_t n) {
    if constexpr (dir == Dir::Save)
      std::memcpy(at_, mem, n);
    else
      std::memcpy(mem, at_, n);
    at_ += n;
  }
  template <class Mem>
  void state(Mem* mem, uint64_t n) {
    if constexpr (dir == Dir::Save)
      be_.download(at_, mem, n);
    else
      be_.upload(mem, at_, n);
    at_ += n;
  }
  void kv_rows(std::conditional_t<dir == Dir::Save, const KvCache, KvCache>& kv, int64_t rows) {
    const uint64_t n = static_cast<uint64_t>(rows) * kv.row_bytes;
    state(kv.k.data(), n);
    state(kv.v.data(), n);
  }

 private:
  Backend& be_;
  Byte* at_;
};

// Walks the sections in payload order; the same walk saves and loads, so the two cannot drift.
template <Dir dir, class Seq>
void transfer(Seq& seq, PayloadCursor<dir>& cur, int64_t n, int64_t m) {
  for (auto& kv : seq.kv)
    if (is_attention(kv)) cur.kv_rows(kv, n);
  for (auto& d : seq.delta)
    if (is_delta_net(d)) cur.state(d.conv.data(), d.conv.bytes());
  for (auto& d : seq.delta)
    if (is_delta_net(d)) cur.state(d.recurrent.data(), d.recurrent.bytes());
  if (is_attention(seq.mtp_kv)) cur.kv_rows(seq.mtp_kv, m);
}

[[noreturn]] void fail(SnapshotErrorCode code, std::string_view model, const std::string& what) {
  throw SnapshotError(code, fmt::format("{}: cannot restore sequence snapshot: {}", model, what));
}

}  // namespace

void write_snapshot(const Sequence::Impl& seq, const ModelConfig& c, uint64_t fingerprint, std::vector<uint8_t>& out) {
  const int64_t n = seq.n_past, m = seq.mtp_n_past;
  const bool has_outputs = n > 0 && !seq.hidden.empty() && !seq.logits.empty();
  const Sizes sizes = section_sizes(seq, c, n, m, has_outputs, has_outputs);
  const uint64_t payload = sum(sizes);
  out.resize(kSnapshotHeaderBytes + payload);

  namespace off = snapshot_offset;
  std::memcpy(out.data(), kSnapshotMagic, sizeof kSnapshotMagic);
  put<uint32_t>(out, off::kVersion, kSnapshotVersion);
  put<uint32_t>(out, off::kHeaderBytes, kSnapshotHeaderBytes);
  put<uint64_t>(out, off::kFingerprint, fingerprint);
  put<int64_t>(out, off::kNPast, n);
  put<int64_t>(out, off::kMtpNPast, m);
  put<uint32_t>(out, off::kKvType, static_cast<uint32_t>(seq.kv_type));
  put<uint32_t>(out, off::kSectionCount, kSnapshotSections);
  for (uint32_t i = 0; i < kSnapshotSections; ++i) put<uint64_t>(out, off::kSections + 8 * i, sizes[i]);
  put<uint64_t>(out, off::kPayloadBytes, payload);
  put<int64_t>(out, off::kContext, seq.n_ctx);
  put<uint32_t>(out, off::kCrc + 4, 0);

  PayloadCursor<Dir::Save> cur(*seq.backend, out.data() + kSnapshotHeaderBytes);
  transfer(seq, cur, n, m);
  if (has_outputs) {
    cur.bytes(seq.logits.data() + seq.logits.size() - c.n_vocab, c.n_vocab * sizeof(float));
    cur.bytes(seq.hidden.data() + seq.hidden.size() - c.n_embd, c.n_embd * sizeof(float));
  }

  const uint32_t crc = crc32c(out.data() + kSnapshotHeaderBytes, payload, crc32c(out.data(), off::kCrc));
  put<uint32_t>(out, off::kCrc, crc);
}

void read_snapshot(Sequence::Impl& seq, const ModelConfig& c, uint64_t fingerprint, std::span<const uint8_t> in,
                   std::string_view model) {
  namespace off = snapshot_offset;
  // Framing first: everything after it can be trusted to lie inside the buffer.
  if (in.size() < kSnapshotHeaderBytes)
    fail(SnapshotErrorCode::Truncated, model,
         fmt::format("{} bytes is shorter than the {}-byte header", in.size(), kSnapshotHeaderBytes));
  if (std::memcmp(in.data(), kSnapshotMagic, sizeof kSnapshotMagic) != 0)
    fail(SnapshotErrorCode::NotASnapshot, model, "bad magic (not a peregrine sequence snapshot)");
  const auto version = get<uint32_t>(in, off::kVersion);
  if (version != kSnapshotVersion)
    fail(SnapshotErrorCode::Version, model,
         fmt::format("format version {}, this build reads version {}", version, kSnapshotVersion));
  const auto header_bytes = get<uint32_t>(in, off::kHeaderBytes);
  const auto section_count = get<uint32_t>(in, off::kSectionCount);
  if (header_bytes != kSnapshotHeaderBytes || section_count != kSnapshotSections)
    fail(SnapshotErrorCode::Corrupt, model,
         fmt::format("header of {} bytes with {} sections, expected {} and {}", header_bytes, section_count,
                     kSnapshotHeaderBytes, kSnapshotSections));
  const auto payload = get<uint64_t>(in, off::kPayloadBytes);
  const uint64_t available = in.size() - kSnapshotHeaderBytes;
  if (payload > available)
    fail(SnapshotErrorCode::Truncated, model,
         fmt::format("the header announces {} payload bytes, the buffer holds {}", payload, available));
  if (payload < available)
    fail(SnapshotErrorCode::Corrupt, model,
         fmt::format("{} bytes after the {}-byte payload", available - payload, payload));

  // Integrity before meaning: a flipped bit anywhere reads as corruption, not as another model.
  const uint32_t crc = crc32c(in.data() + kSnapshotHeaderBytes, payload, crc32c(in.data(), off::kCrc));
  const auto stored_crc = get<uint32_t>(in, off::kCrc);
  if (crc != stored_crc)
    fail(SnapshotErrorCode::Corrupt, model,
         fmt::format("checksum mismatch (CRC32C {:08x}, stored {:08x}): the buffer is corrupt", crc, stored_crc));

  const auto their_fingerprint = get<uint64_t>(in, off::kFingerprint);
  if (their_fingerprint != fingerprint)
    fail(SnapshotErrorCode::OtherModel, model,
         fmt::format("it was taken with another model (fingerprint {:016x}, this model {:016x})", their_fingerprint,
                     fingerprint));
  const auto kv_raw = get<uint32_t>(in, off::kKvType);
  if (kv_raw != static_cast<uint32_t>(seq.kv_type)) {
    const auto info = tensor_type_info(kv_raw);
    fail(SnapshotErrorCode::KvType, model,
         fmt::format("its KV cache type is {}, this sequence's is {}", info ? info->name : std::string_view("unknown"),
                     tensor_type_info(seq.kv_type).name));
  }
  const auto n = get<int64_t>(in, off::kNPast), m = get<int64_t>(in, off::kMtpNPast);
  if (n < 0 || m < 0 || (m > 0 && !is_attention(seq.mtp_kv)))
    fail(SnapshotErrorCode::Corrupt, model, fmt::format("impossible positions {} / MTP {}", n, m));
  if (n > seq.n_ctx || m > seq.n_ctx)
    fail(SnapshotErrorCode::Context, model,
         fmt::format("position {} (MTP {}) does not fit this sequence's context of {}", n, m, seq.n_ctx));

  Sizes sizes{};
  for (uint32_t i = 0; i < kSnapshotSections; ++i) sizes[i] = get<uint64_t>(in, off::kSections + 8 * i);
  const auto outputs = sizes[static_cast<size_t>(SnapshotSection::Logits)] != 0;
  const Sizes expected = section_sizes(seq, c, n, m, outputs, outputs);
  if (sizes != expected || sum(sizes) != payload)
    fail(SnapshotErrorCode::Corrupt, model, "section sizes do not match this model's layout at that position");

  // Everything checked: load.
  PayloadCursor<Dir::Load> cur(*seq.backend, in.data() + kSnapshotHeaderBytes);
  transfer(seq, cur, n, m);
  seq.logits.resize(outputs ? c.n_vocab : 0);
  seq.hidden.resize(outputs ? c.n_embd : 0);
  if (outputs) {
    cur.bytes(seq.logits.data(), c.n_vocab * sizeof(float));
    cur.bytes(seq.hidden.data(), c.n_embd * sizeof(float));
  }
  seq.n_past = n;
  seq.mtp_n_past = m;
  seq.mtp_logits.clear();
  seq.mtp_hidden.clear();
}

}  // namespace peregrine
