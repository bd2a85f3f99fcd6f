// peregrine-cli run / logits / bench: the commands that evaluate a model. The dispatcher table
// (cli_commands.cpp) lists them as {"run", run_run}, {"logits", run_logits}, {"bench", run_bench}.
#pragma once

#include "peregrine/backend.h"

#include <cstdint>
#include <string>
#include <vector>

#include "cli_args.h"
#include "peregrine/engine.h"

namespace peregrine::cli {

int run_run(const std::vector<std::string>& args);
int run_logits(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);

// Shared option parsing of these commands (cli_decode_common.cpp); misuse throws UsageError.
float parse_float(const std::string& option, const std::string& text);
// "1,2,3" -> ids (non-negative, at least one).
std::vector<int32_t> parse_id_list(const std::string& option, const std::string& text);
// --threads N (1..1024); default: the hardware's thread count.
int parse_threads(const std::string& command, const ParsedArgs& args);
// --backend cpu|cuda|auto; without it the PEREGRINE_BACKEND environment variable, else auto
// (CUDA when this build has it and a device exists).
BackendKind parse_backend(const std::string& command, const ParsedArgs& args);
// --mtp K|auto|off (K in 1..8).
MtpSetting parse_mtp(const std::string& option, const std::string& text);
// "0.8,0.6,0.45" -> per-position acceptance probabilities (each in [0, 1], 1..8 of them).
std::vector<double> parse_acceptance(const std::string& option, const std::string& text);

}  // namespace peregrine::cli
