// The two hashes of the snapshot format: CRC32C over the bytes (corruption) and the model
// fingerprint (which model a snapshot belongs to).
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string_view>

#include "model/sequence_snapshot.h"
#include "peregrine/gguf.h"

namespace peregrine {
namespace {

// Slicing-by-8 tables: table[0] is the classic byte-at-a-time table, table[k][b] the CRC
// contribution of byte b followed by k zero bytes, so eight bytes fold in one step.
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

CrcTables make_crc_tables() {
  constexpr uint32_t kPoly = 0x82F63B78u;  // Castagnoli, bit-reflected
  CrcTables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][b] = c;
  }
  for (int k = 1; k < 8; ++k)
    for (uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  return t;
}

const CrcTables& crc_tables() {
  static const CrcTables tables = make_crc_tables();
  return tables;
}

// FNV-1a over a stream of fields; integers are hashed as 8 little-endian bytes so the width of
// the C++ type does not matter.
class Fnv1a {
 public:
  void bytes(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < n; ++i) h_ = (h_ ^ p[i]) * 0x100000001B3ull;
  }
  void integer(int64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
    bytes(b, 8);
  }
  void real(float v) { integer(std::bit_cast<uint32_t>(v)); }
  void text(std::string_view s) {
    integer(static_cast<int64_t>(s.size()));
    bytes(s.data(), s.size());
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0xCBF29CE484222325ull;
};

}  // namespace

uint32_t crc32c(const uint8_t* data, size_t n, uint32_t crc) {
  static_assert(std::endian::native == std::endian::little, "the slicing step reads little-endian words");
  const CrcTables& t = crc_tables();
  uint32_t c = ~crc;
  for (; n >= 8; n -= 8, data += 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, data, 4);
    std::memcpy(&hi, data + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^
        t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
  }
  for (; n > 0; --n, ++data) c = (c >> 8) ^ t[0][(c ^ *data) & 0xFF];
  return ~c;
}

uint64_t model_fingerprint(const GgufFile& file, const ModelConfig& c) {
  Fnv1a h;
  h.text("peregrine model fingerprint v1");
  h.text(c.arch_name);
  h.text(c.name);
  for (int64_t v : {c.n_vocab, c.n_embd, c.n_layer, c.n_nextn, c.context_length, c.n_head, c.n_head_kv, c.head_dim,
                    c.n_rot, c.ssm_conv_kernel, c.ssm_state_size, c.ssm_group_count, c.ssm_time_step_rank,
                    c.ssm_inner_size, c.full_attention_interval, c.n_ff, c.n_expert, c.n_expert_used, c.n_ff_expert,
                    c.n_ff_shared_expert})
    h.integer(v);
  h.real(c.rms_eps);
  h.real(c.rope_freq_base);
  for (LayerKind k : c.layer_kinds) h.integer(static_cast<int64_t>(k));
  for (int32_t s : c.rope_sections) h.integer(s);

  constexpr uint64_t kSample = 32;
  h.integer(static_cast<int64_t>(file.tensors().size()));
  for (const GgufTensorInfo& t : file.tensors()) {
    h.text(t.name);
    h.integer(static_cast<int64_t>(t.type));
    h.integer(static_cast<int64_t>(t.ne.size()));
    for (int64_t d : t.ne) h.integer(d);
    h.integer(static_cast<int64_t>(t.offset));
    h.integer(static_cast<int64_t>(t.n_bytes));
    if (!t.data || t.n_bytes == 0) continue;
    const uint64_t len = std::min(kSample, t.n_bytes);
    for (uint64_t at : {uint64_t{0}, (t.n_bytes - len) / 2, t.n_bytes - len}) h.bytes(t.data + at, len);
  }
  return h.value();
}

}  // namespace peregrine
