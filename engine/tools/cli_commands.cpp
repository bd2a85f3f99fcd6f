#include "cli_commands.h"

namespace peregrine::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {};
  return table;
}

}  // namespace peregrine::cli
