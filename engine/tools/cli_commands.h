// The sub-commands of peregrine-cli. Exit codes: 0 ok, 1 failure (bad file, I/O), 2 misuse.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace peregrine::cli {

// Thrown for misuse of the command line (missing/unknown options); main() prints it and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Command {
  const char* name;
  int (*run)(const std::vector<std::string>& args);
};

// The table of commands, defined in cli_commands.cpp.
const std::vector<Command>& commands();

}  // namespace peregrine::cli
