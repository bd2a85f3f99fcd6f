// peregrine-cli logits: raw float32 logits of the trunk (and of the MTP head) for given token ids,
// in the layout of the fixtures in tests/data/qwen35-tiny (row = position, no header).
#include <algorithm>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli_args.h"
#include "cli_commands.h"
#include "cli_decode_commands.h"
#include "cli_output.h"
#include "model/mtp_file.h"
#include "peregrine/error.h"
#include "peregrine/gguf.h"
#include "peregrine/log.h"
#include "peregrine/model.h"

namespace peregrine::cli {
namespace {

constexpr const char* kUsage =
    "usage: peregrine-cli logits --model M.gguf --tokens 1,2,3 --out F.f32 [--mtp-out F2.f32]\n"
    "                            [--threads N] [--backend B] [--chunk N] [--float-activations]\n"
    "Writes float32 logits [n_tokens][n_vocab] (little-endian, row-major, no header).\n"
    "  --chunk N             evaluate the tokens in steps of N (default: one step)\n"
    "  --mtp-out F2.f32      also the MTP head's logits: row p is fed token p and the trunk's hidden\n"
    "                        row p-1 (zeros for p = 0), as the fixtures' mtp_logits\n"
    "  --float-activations   multiply quantized weights by float activations (the float32 reference;\n"
    "                        default: round activations to 8 bits like llama.cpp's CPU backend)\n";

}  // namespace

int run_logits(const std::vector<std::string>& args) {
  const std::string cmd = "logits";
  const ParsedArgs a = parse_args(cmd, args, {"--float-activations"},
                                  {"--model", "--tokens", "--out", "--mtp-out", "--threads", "--chunk", "--backend"});
  if (a.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!a.positionals.empty()) throw UsageError(cmd + ": unexpected argument '" + a.positionals.front() + "'");
  const std::string& model_path = a.required(cmd, "--model");
  const std::vector<int32_t> tokens = parse_id_list("--tokens", a.required(cmd, "--tokens"));
  const std::string& out_path = a.required(cmd, "--out");
  const auto mtp_path = a.value("--mtp-out");
  const int64_t n = static_cast<int64_t>(tokens.size());
  int64_t chunk = n;
  if (auto c = a.value("--chunk")) {
    chunk = static_cast<int64_t>(parse_u64("--chunk", *c));
    if (chunk == 0) throw UsageError(cmd + ": --chunk must be at least 1");
    chunk = std::min(chunk, n);
  }

  ModelOptions options;
  options.n_threads = parse_threads(cmd, a);
  options.backend = parse_backend(cmd, a);
  options.context_length = n;
  options.max_batch = chunk;
  options.activations = a.has("--float-activations") ? ActivationMode::Float : ActivationMode::Quantized8;
  const GgufFile file = GgufFile::open(model_path);
  const auto mtp_file = open_mtp_file_for(file, model_path);  // a separate mtp-<name>.gguf, if any
  auto model = Model::load(file, options, mtp_file.get());
  const ModelConfig& c = model->config();
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] >= c.n_vocab)
      throw Error(fmt::format("--tokens: token {} (id {}) is outside the vocabulary of {} ({} ids)", i, tokens[i],
                              model_path, c.n_vocab));
  if (mtp_path && !c.has_mtp()) throw Error(fmt::format("{}: the model has no MTP head (--mtp-out)", model_path));

  Sequence seq = model->new_sequence();
  ReplacingFile out(out_path);  // takes its final name only once complete
  // The MTP head needs every trunk hidden row, so they are kept across chunks.
  std::vector<float> hidden(mtp_path ? static_cast<size_t>(n * c.n_embd) : 0);
  const std::span<const int32_t> all(tokens);
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    out.write(std::as_bytes(model->evaluate(seq, all.subspan(start, len), start, LogitsFor::EveryToken)));
    if (mtp_path) std::copy_n(seq.hidden().begin(), len * c.n_embd, hidden.begin() + start * c.n_embd);
  }
  if (mtp_path) {
    // Row p of the head's input: hidden row p-1, zeros at p = 0.
    std::vector<float> shifted(hidden.size(), 0.0f);
    std::copy_n(hidden.begin(), (n - 1) * c.n_embd, shifted.begin() + c.n_embd);
    ReplacingFile mtp_out(*mtp_path);
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t len = std::min(chunk, n - start);
      const std::span<const float> rows = model->evaluate_mtp(
          seq, all.subspan(start, len), std::span<const float>(shifted).subspan(start * c.n_embd, len * c.n_embd),
          start, LogitsFor::EveryToken);
      mtp_out.write(std::as_bytes(rows));
    }
    mtp_out.commit();
  }
  out.commit();  // the trunk's file last: a failure while writing the MTP file leaves neither
  log::get("cli")->info("wrote logits of {} tokens × {} to {}{}", n, c.n_vocab, out_path,
                        mtp_path ? " and " + *mtp_path : std::string());
  return 0;
}

}  // namespace peregrine::cli
