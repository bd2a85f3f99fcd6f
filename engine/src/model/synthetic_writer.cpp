// write_model: streams a synthetic model to disk. Metadata first (keys and types exactly as in
// the llama.cpp-made fixtures), then each tensor in slabs of rows: generated and encoded in
// parallel, written by a background thread while the next slab is made.
//
// Speed: a matrix of more than 2^20 values with more rows than its class's pool (see RowPool)
// is assembled from a pool of pre-encoded random rows at rotating offsets, so a 27B model costs
// about one disk write of its size; smaller tensors get fresh rows. Every row is a proper
// random row either way (docs/cli.md, "Row pools").
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <mutex>
#include <tuple>
#include <future>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/log.h"
#include "peregrine/quant.h"
#include "peregrine/synthetic.h"
#include "synthetic_weights.h"

namespace peregrine::synthetic {
namespace {

constexpr size_t kSlabBytes = 16u << 20;      // encoded bytes per write
constexpr int64_t kPoolFloatBytes = 8 << 20;   // float size of one class's pool of rows
constexpr int64_t kMinPoolRows = 64, kMaxPoolRows = 1024;
constexpr int64_t kPoolFromElements = 1 << 20;  // smaller tensors always get fresh rows
constexpr int64_t kRowsPerTask = 16;          // rows a worker generates and encodes at once

// Runs fn(begin, end) over [0, n) on up to `threads` threads (the caller's included).
template <class F>
void parallel_for(int threads, int64_t n, int64_t grain, F&& fn) {
  const int64_t n_tasks = (n + grain - 1) / grain;
  const int n_threads = static_cast<int>(std::min<int64_t>(threads, n_tasks));
  if (n_threads <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    try {
      for (int64_t t; (t = next.fetch_add(1)) < n_tasks;) fn(t * grain, std::min(n, (t + 1) * grain));
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      next = n_tasks;
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < n_threads; ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

size_t encoded_row_bytes(TensorType type, int64_t n_per_row) {
  if (type == TensorType::F32) return static_cast<size_t>(n_per_row) * 4;
  if (type == TensorType::F16) return static_cast<size_t>(n_per_row) * 2;
  return quant::row_bytes(type, n_per_row);
}

void encode_rows(TensorType type, const float* src, int64_t n_rows, int64_t n_per_row, uint8_t* dst) {
  if (type == TensorType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n_rows * n_per_row) * 4);
  } else if (type == TensorType::F16) {
    auto* out = reinterpret_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n_rows * n_per_row; ++i) out[i] = quant::fp32_to_fp16(src[i]);
  } else {
    quant::quantize(type, src, dst, n_rows, n_per_row);
  }
}

// Generates and encodes rows [first, first + count) of a row stream into dst.
void make_rows(const WeightInit& init, uint64_t key, TensorType type, int64_t n_per_row, int64_t first, int64_t count,
               uint8_t* dst, int threads) {
  const size_t row_bytes = encoded_row_bytes(type, n_per_row);
  const int64_t grain = std::max<int64_t>(1, std::min<int64_t>(kRowsPerTask, (1 << 16) / n_per_row + 1));
  parallel_for(threads, count, grain, [&](int64_t b, int64_t e) {
    std::vector<float> values(static_cast<size_t>((e - b) * n_per_row));
    for (int64_t r = b; r < e; ++r) generate_row(init, key, first + r, n_per_row, values.data() + (r - b) * n_per_row);
    encode_rows(type, values.data(), e - b, n_per_row, dst + static_cast<size_t>(b) * row_bytes);
  });
}

// Rows shared by every large matrix of one class (type, row length, distribution).
struct PoolKey {
  TensorType type;
  int64_t n_per_row;
  WeightInit init;
  bool operator<(const PoolKey& o) const {
    return std::tie(type, n_per_row, init.kind, init.scale) < std::tie(o.type, o.n_per_row, o.init.kind, o.init.scale);
  }
};

int64_t pool_rows_for(int64_t n_per_row) {
  const int64_t fit = std::clamp<int64_t>(kPoolFloatBytes / (n_per_row * 4), kMinPoolRows, kMaxPoolRows);
  int64_t p = 1;
  while (p * 2 <= fit) p *= 2;
  return p;
}

struct RowPool {
  int64_t rows = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> data;
};

// Bytes the file will take: the tensor data (each tensor padded to the GGUF alignment) and a
// generous allowance for the metadata (the vocabulary and merges: under 64 bytes an entry).
// 128-bit: shape bounds keep dimensions below 2^24, so products of three stay far inside it.
__int128 planned_file_bytes(const std::vector<PlannedTensor>& plan, int64_t n_vocab) {
  __int128 total = (int64_t{1} << 20) + __int128{64} * n_vocab;
  for (const PlannedTensor& p : plan) {
    __int128 rows = 1;
    for (size_t d = 1; d < p.ne.size(); ++d) rows *= p.ne[d];
    total += rows * encoded_row_bytes(p.type, p.ne[0]) + GgufFile::kDefaultAlignment;
  }
  return total;
}

// Free space where the file goes, or PEREGRINE_AVAILABLE_DISK_BYTES when set (tests); nullopt
// when unknown (the folder is missing: the writer then reports that).
std::optional<uint64_t> available_disk_bytes(const std::filesystem::path& folder) {
  if (const char* text = std::getenv("PEREGRINE_AVAILABLE_DISK_BYTES")) {
    const std::string_view value(text);
    uint64_t bytes = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), bytes);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size())
      throw Error(fmt::format("PEREGRINE_AVAILABLE_DISK_BYTES='{}': expected a number of bytes", value));
    return bytes;
  }
  std::error_code ec;
  const std::filesystem::space_info space = std::filesystem::space(folder, ec);
  if (ec) return std::nullopt;
  return space.available;
}

std::string size_text(__int128 bytes) {
  if (bytes < 1000000) return fmt::format("{} B", static_cast<int64_t>(bytes));
  if (bytes < 1000000000) return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
  return fmt::format("{:.1f} GB", static_cast<double>(bytes) / 1e9);
}

// Refuses, with both numbers, a model larger than the free space, before a byte is written.
void check_disk_space(const std::filesystem::path& out, __int128 need) {
  const std::filesystem::path folder = out.has_parent_path() ? out.parent_path() : std::filesystem::path(".");
  const std::optional<uint64_t> available = available_disk_bytes(folder);
  if (available && need > *available)
    throw Error(fmt::format("{}: the model would take {}, but only {} are free on {}", out.string(), size_text(need),
                            size_text(*available), folder.string()));
}

void set_metadata(GgufWriter& w, const ModelConfig& c, FileType type) {
  const std::string a = c.arch_name;
  auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  w.set("general.architecture", GgufValue::string(a));
  w.set("general.name", GgufValue::string(c.name));
  w.set("general.file_type", GgufValue::u32(gguf_file_type(type)));
  if (type == FileType::Q8_0 || type == FileType::Q4_K_M) w.set("general.quantization_version", GgufValue::u32(2));
  w.set(a + ".block_count", u32(c.n_block()));
  w.set(a + ".context_length", u32(c.context_length));
  w.set(a + ".embedding_length", u32(c.n_embd));
  if (c.is_moe()) {
    w.set(a + ".expert_count", u32(c.n_expert));
    w.set(a + ".expert_used_count", u32(c.n_expert_used));
    w.set(a + ".expert_feed_forward_length", u32(c.n_ff_expert));
    w.set(a + ".expert_shared_feed_forward_length", u32(c.n_ff_shared_expert));
  } else {
    w.set(a + ".feed_forward_length", u32(c.n_ff));
  }
  w.set(a + ".attention.head_count", u32(c.n_head));
  w.set(a + ".attention.head_count_kv", u32(c.n_head_kv));
  w.set(a + ".attention.key_length", u32(c.head_dim));
  w.set(a + ".attention.value_length", u32(c.head_dim));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(c.rms_eps));
  w.set(a + ".rope.freq_base", GgufValue::f32(c.rope_freq_base));
  w.set(a + ".rope.dimension_count", u32(c.n_rot));
  std::vector<GgufValue> sections;
  for (int32_t s : c.rope_sections) sections.push_back(GgufValue::i32(s));
  w.set(a + ".rope.dimension_sections", GgufValue::array(GgufValueType::INT32, std::move(sections)));
  w.set(a + ".ssm.conv_kernel", u32(c.ssm_conv_kernel));
  w.set(a + ".ssm.state_size", u32(c.ssm_state_size));
  w.set(a + ".ssm.group_count", u32(c.ssm_group_count));
  w.set(a + ".ssm.time_step_rank", u32(c.ssm_time_step_rank));
  w.set(a + ".ssm.inner_size", u32(c.ssm_inner_size));
  w.set(a + ".full_attention_interval", u32(c.full_attention_interval));
  w.set(a + ".nextn_predict_layers", u32(c.n_nextn));

  const Vocabulary v = make_vocabulary(c.n_vocab);
  w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::string("qwen35"));
  std::vector<GgufValue> tokens, types, merges;
  tokens.reserve(v.tokens.size());
  for (const auto& t : v.tokens) tokens.push_back(GgufValue::string(t));
  for (int32_t t : v.token_types) types.push_back(GgufValue::i32(t));
  for (const auto& m : v.merges) merges.push_back(GgufValue::string(m));
  w.set("tokenizer.ggml.tokens", GgufValue::array(GgufValueType::STRING, std::move(tokens)));
  w.set("tokenizer.ggml.token_type", GgufValue::array(GgufValueType::INT32, std::move(types)));
  w.set("tokenizer.ggml.merges", GgufValue::array(GgufValueType::STRING, std::move(merges)));
  w.set("tokenizer.ggml.eos_token_id", u32(v.im_end));
  w.set("tokenizer.ggml.padding_token_id", u32(v.endoftext));
  w.set("tokenizer.ggml.bos_token_id", u32(v.endoftext));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(false));
  w.set("tokenizer.chat_template", GgufValue::string(kChatTemplate));
}

// Keeps one write in flight while the next slab is produced.
class AsyncWriter {
 public:
  explicit AsyncWriter(GgufWriter& w) : writer_(w) {}
  ~AsyncWriter() {
    if (pending_.valid()) pending_.wait();
  }
  std::vector<uint8_t>& buffer() { return buffers_[current_]; }
  void submit(size_t n) {
    drain();
    std::vector<uint8_t>* buf = &buffers_[current_];
    pending_ = std::async(std::launch::async, [this, buf, n] { writer_.write_tensor_data(buf->data(), n); });
    current_ ^= 1;
  }
  void drain() {
    if (pending_.valid()) pending_.get();
  }

 private:
  GgufWriter& writer_;
  std::vector<uint8_t> buffers_[2];
  int current_ = 0;
  std::future<void> pending_;
};

}  // namespace

Report write_model(const Options& options) {
  auto log = log::get("synthetic");
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig config = make_config(options.shape, options.mtp);
  const std::vector<PlannedTensor> plan = plan_tensors(config, options.type);
  // Before anything is allocated or written; the int64 sizes below rely on it too.
  check_disk_space(options.out, planned_file_bytes(plan, config.n_vocab));
  const int threads = options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());

  struct Item {
    WeightInit init;
    uint64_t key;
    int64_t n_per_row, n_rows;
    size_t row_bytes;
    bool pooled;
    PoolKey pool_key;
  };
  std::vector<Item> items;
  std::map<PoolKey, size_t> pool_last_use;
  uint64_t total_bytes = 0;
  Report report;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    Item it;
    it.n_per_row = p.ne[0];
    it.n_rows = 1;
    for (size_t d = 1; d < p.ne.size(); ++d) it.n_rows *= p.ne[d];
    it.init = weight_init_for(p.name, it.n_per_row, config.n_layer);
    it.key = hash_combine(options.seed, hash_string(p.name));
    it.row_bytes = encoded_row_bytes(p.type, it.n_per_row);
    it.pool_key = PoolKey{p.type, it.n_per_row, it.init};
    it.pooled = it.n_rows * it.n_per_row > kPoolFromElements && it.n_rows > pool_rows_for(it.n_per_row);
    if (it.pooled) pool_last_use[it.pool_key] = i;
    total_bytes += it.row_bytes * static_cast<uint64_t>(it.n_rows);
    report.n_parameters += it.n_rows * it.n_per_row;
    items.push_back(it);
  }
  log->info("make-synthetic: shape {} ({}), {}, {} tensors, {:.2f} GB of tensor data, {} MTP block(s), seed {}, {} threads",
            options.shape.name, config.arch_name, file_type_name(options.type), plan.size(), total_bytes / 1e9,
            config.n_nextn, options.seed, threads);

  GgufWriter writer(options.out);
  set_metadata(writer, config, options.type);
  for (const PlannedTensor& p : plan) writer.add_tensor(p.name, p.type, p.ne);
  writer.begin();

  std::map<PoolKey, RowPool> pools;
  AsyncWriter out(writer);
  uint64_t written = 0;
  auto last_log = std::chrono::steady_clock::now();
  for (size_t i = 0; i < plan.size(); ++i) {
    const Item& it = items[i];
    const PlannedTensor& p = plan[i];
    const RowPool* pool = nullptr;
    if (it.pooled) {
      RowPool& rp = pools[it.pool_key];
      if (rp.data.empty()) {
        rp.rows = pool_rows_for(it.n_per_row);
        rp.row_bytes = it.row_bytes;
        rp.data.resize(rp.row_bytes * static_cast<size_t>(rp.rows));
        const uint64_t pool_seed = hash_combine(options.seed, hash_combine(static_cast<uint64_t>(p.type) + 1,
                                                                           static_cast<uint64_t>(it.n_per_row)));
        make_rows(it.init, hash_combine(pool_seed, hash_string(fmt::format("{}", it.init.scale))), p.type,
                  it.n_per_row, 0, rp.rows, rp.data.data(), threads);
        log->debug("pool for {} rows of {} x {}: {} rows", tensor_type_info(p.type).name, it.n_per_row,
                   it.init.scale, rp.rows);
      }
      pool = &rp;
    }
    const int64_t slab_rows = std::max<int64_t>(1, static_cast<int64_t>(kSlabBytes / it.row_bytes));
    // Rotating offset and odd stride: any window of pool.rows consecutive rows is a permutation.
    const int64_t offset = pool ? static_cast<int64_t>(it.key % static_cast<uint64_t>(pool->rows)) : 0;
    const int64_t stride = pool ? static_cast<int64_t>(((it.key >> 24) | 1) % static_cast<uint64_t>(pool->rows)) | 1 : 1;
    for (int64_t first = 0; first < it.n_rows; first += slab_rows) {
      const int64_t count = std::min(slab_rows, it.n_rows - first);
      const size_t bytes = static_cast<size_t>(count) * it.row_bytes;
      std::vector<uint8_t>& buf = out.buffer();
      if (buf.size() < bytes) buf.resize(bytes);
      if (pool) {
        for (int64_t r = 0; r < count; ++r) {
          const int64_t src = (offset + (first + r) * stride) & (pool->rows - 1);
          std::memcpy(buf.data() + r * it.row_bytes, pool->data.data() + src * it.row_bytes, it.row_bytes);
        }
      } else {
        make_rows(it.init, it.key, p.type, it.n_per_row, first, count, buf.data(), threads);
      }
      out.submit(bytes);
      written += bytes;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_log > std::chrono::seconds(5)) {
        last_log = now;
        log->info("make-synthetic: {:.2f} / {:.2f} GB ({:.0f}%), at {}", written / 1e9, total_bytes / 1e9,
                  100.0 * written / std::max<uint64_t>(1, total_bytes), p.name);
      }
    }
    if (it.pooled && pool_last_use[it.pool_key] == i) pools.erase(it.pool_key);
  }
  out.drain();
  writer.finish();

  report.n_tensors = static_cast<int64_t>(plan.size());
  report.file_bytes = std::filesystem::file_size(options.out);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log->info("make-synthetic: wrote {} ({:.3f} GB, {} tensors, {} parameters) in {:.1f} s", options.out.string(),
            report.file_bytes / 1e9, report.n_tensors, report.n_parameters, report.seconds);
  return report;
}

}  // namespace peregrine::synthetic
