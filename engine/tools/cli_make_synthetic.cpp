// peregrine-cli make-synthetic: writes a random-weight qwen35 / qwen35moe model.
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "cli_args.h"
#include "cli_commands.h"
#include "cli_output.h"
#include "peregrine/synthetic.h"

namespace peregrine::cli {
namespace {

constexpr const char* kUsage =
    "usage: peregrine-cli make-synthetic --shape NAME|FILE.json --type Q4_K_M|Q8_0|F16|F32 --out M.gguf\n"
    "                                    [--seed S] [--mtp|--no-mtp] [--threads N]\n"
    "shapes: qwen3.6-27b, qwen3.6-35b-a3b, bench-3b, bench-1b, tiny, tiny-moe, or a JSON file (docs/cli.md)\n";

}  // namespace

int run_make_synthetic(const std::vector<std::string>& args) {
  const std::string cmd = "make-synthetic";
  const ParsedArgs a = parse_args(cmd, args, {"--mtp", "--no-mtp"}, {"--shape", "--type", "--out", "--seed", "--threads"});
  if (a.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!a.positionals.empty()) throw UsageError(cmd + ": unexpected argument '" + a.positionals.front() + "'");
  if (a.has("--mtp") && a.has("--no-mtp")) throw UsageError(cmd + ": --mtp and --no-mtp exclude each other");

  synthetic::Options options;
  const std::string& shape = a.required(cmd, "--shape");
  if (auto builtin = synthetic::builtin_shape(shape)) {
    options.shape = *builtin;
  } else if (shape.size() > 5 && shape.substr(shape.size() - 5) == ".json") {
    options.shape = synthetic::shape_from_json_file(shape);  // a bad file is an Error: exit 1
  } else {
    std::string names;
    for (const auto& s : synthetic::builtin_shapes()) names += (names.empty() ? "" : ", ") + s.name;
    throw UsageError(fmt::format("{}: unknown shape '{}' (expected one of {} or a .json file)", cmd, shape, names));
  }
  const std::string& type = a.required(cmd, "--type");
  auto file_type = synthetic::file_type_from_name(type);
  if (!file_type) throw UsageError(fmt::format("{}: unknown --type '{}' (expected Q4_K_M, Q8_0, F16 or F32)", cmd, type));
  options.type = *file_type;
  options.out = a.required(cmd, "--out");
  if (auto seed = a.value("--seed")) options.seed = parse_u64("--seed", *seed);
  if (auto threads = a.value("--threads")) {
    const uint64_t n = parse_u64("--threads", *threads);
    if (n == 0 || n > 1024) throw UsageError(cmd + ": --threads must be between 1 and 1024");
    options.threads = static_cast<int>(n);
  }
  options.mtp = !a.has("--no-mtp");

  const synthetic::Report r = synthetic::write_model(options);
  write_stdout(fmt::format("wrote {}: {} tensors, {} parameters, {} bytes, {:.1f} s\n", options.out.string(),
                           r.n_tensors, r.n_parameters, r.file_bytes, r.seconds));
  return 0;
}

}  // namespace peregrine::cli
