// peregrine-cli: the engine's command-line front end. Each sub-command lives in its own file.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cli_commands.h"
#include "cli_output.h"
#include "peregrine/error.h"
#include "peregrine/log.h"

namespace {

void print_usage(std::FILE* out) {
  std::fputs(
      "usage: peregrine-cli [--log-level LEVEL] <command> [options]\n"
      "commands:\n"
      "  inspect MODEL.gguf [--json]            architecture, config, tensors, MTP presence\n"
      "  tokenize (--model M.gguf | --tokenizer tokenizer.json) [--no-special]\n"
      "                                         text on stdin -> JSON array of ids\n"
      "  detokenize (--model M.gguf | --tokenizer tokenizer.json)\n"
      "                                         JSON array of ids on stdin -> text\n"
      "  make-synthetic --shape NAME|FILE.json --type Q4_K_M|Q8_0|F16|F32 --out M.gguf\n"
      "                 [--seed S] [--mtp|--no-mtp] [--threads N]\n"
      "  run --model M.gguf (--prompt TEXT | --prompt-tokens 1,2,3) [--chat] [--max-tokens N]\n"
      "      [--temp T] [--seed S] [--threads N] [--ctx N] [--ids]  generate, streaming to stdout\n"
      "  logits --model M.gguf --tokens 1,2,3 --out F.f32 [--mtp-out F2.f32] [--chunk N]\n"
      "                                         raw float32 logits for every position\n"
      "  bench --model M.gguf [-p 512] [-n 128] [--threads N] [--json]\n"
      "                                         prefill and decode tok/s, peak memory\n"
      "  <command> --help                       options of one command (docs/cli.md)\n",
      out);
}

// Runs one command; misuse exits 2, any other failure 1, each with its message on stderr.
int run_command(const std::string& command, const std::vector<std::string>& args) {
  try {
    for (const auto& entry : peregrine::cli::commands())
      if (command == entry.name) return entry.run(args);
    std::fprintf(stderr, "error: unknown command '%s'\n", command.c_str());
    print_usage(stderr);
    return 2;
  } catch (const peregrine::cli::UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

// Output still buffered is written now: a result that cannot be written fails the command.
int finish_output(int rc) {
  try {
    peregrine::cli::flush_stdout();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return rc == 0 ? 1 : rc;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  peregrine::log::init_from_env();
  std::vector<std::string> args(argv + 1, argv + argc);
  while (!args.empty() && args.front() == "--log-level") {
    if (args.size() < 2 || !peregrine::log::set_level(args[1])) {
      std::fputs("error: --log-level needs one of trace, debug, info, warn, error, critical, off\n", stderr);
      return 2;
    }
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty() || args.front() == "--help" || args.front() == "-h" || args.front() == "help") {
    print_usage(args.empty() ? stderr : stdout);
    return finish_output(args.empty() ? 2 : 0);
  }
  const std::string command = args.front();
  args.erase(args.begin());
  return finish_output(run_command(command, args));
}
