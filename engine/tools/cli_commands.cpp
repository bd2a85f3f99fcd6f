#include "cli_commands.h"
#include "cli_decode_commands.h"

namespace peregrine::cli {

int run_inspect(const std::vector<std::string>& args);
int run_tokenize(const std::vector<std::string>& args);
int run_detokenize(const std::vector<std::string>& args);
int run_make_synthetic(const std::vector<std::string>& args);

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"inspect", run_inspect},
      {"tokenize", run_tokenize},
      {"detokenize", run_detokenize},
      {"make-synthetic", run_make_synthetic},
      {"run", run_run},
      {"logits", run_logits},
      {"bench", run_bench},
  };
  return table;
}

}  // namespace peregrine::cli
