// Named spdlog loggers, one per subsystem ("gguf", "quant", "tokenizer", "model", "cli", ...).
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/logger.h>

namespace peregrine::log {

// The logger of one subsystem, created on first use with the process-wide level and sink
// (stderr, so that machine-readable stdout of the CLI stays clean).
std::shared_ptr<spdlog::logger> get(std::string_view subsystem);

// Sets the level of every logger, existing and future: trace, debug, info, warn, error, critical, off.
// Returns false (and changes nothing) for an unknown level name.
bool set_level(std::string_view level);

// Reads PEREGRINE_LOG (a level name) if set. Called by the CLI and the app at start-up.
void init_from_env();

}  // namespace peregrine::log
